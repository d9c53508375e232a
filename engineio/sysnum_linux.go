//go:build linux && !386

package engineio

import "syscall"

// The socket system calls the flusher writes with (netpoll_linux.go).
const (
	sysSendto  = syscall.SYS_SENDTO
	sysSendmsg = syscall.SYS_SENDMSG
)
