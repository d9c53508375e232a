//go:build !linux

package engineio

import (
	"net"
	"syscall"
)

// directIO is direct_linux.go's; elsewhere the net.Conn does the I/O.
type directIO struct{}

func (*directIO) init(net.Conn) {}

func (*directIO) rawConn() syscall.RawConn { return nil }

func (d *directConn) read(p []byte) (int, error) { return d.conn.Read(p) }

func (d *directConn) tryWrite([]byte) int { return 0 }
