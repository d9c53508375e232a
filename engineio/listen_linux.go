package engineio

import (
	"os"
	"strings"
	"syscall"
)

// controlListener sets TCP_DEFER_ACCEPT on a listening socket (Listen).
func controlListener(network, address string, c syscall.RawConn) error {
	if !strings.HasPrefix(network, "tcp") {
		return nil
	}
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, deferAcceptSeconds)
	})
	if err != nil {
		return err
	}
	return os.NewSyscallError("setsockopt", serr)
}
