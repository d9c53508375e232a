//go:build !linux

package engineio

import "syscall"

// controlListener has nothing to set outside Linux (listen_linux.go).
func controlListener(network, address string, c syscall.RawConn) error { return nil }
