//go:build linux && !386

package engineio

import "syscall"

// The socket system calls of the flusher (netpoll_linux.go) and of Serve
// (direct_linux.go).
const (
	sysSendto   = syscall.SYS_SENDTO
	sysRecvfrom = syscall.SYS_RECVFROM
	sysSendmsg  = syscall.SYS_SENDMSG
)
