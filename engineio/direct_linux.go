package engineio

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// directIO reads and writes a directly served connection with recvfrom and
// sendto through its RawConn: the socket calls skip the file layer that
// read and write go through (≈ 7% of the server's CPU per long-poll
// message; docs/performance-work.md §7), and a response that the socket
// takes whole needs no write deadline. The callbacks are bound once per
// connection so that no call allocates.
type directIO struct {
	raw     syscall.RawConn // nil: not a plain socket (TLS); use the net.Conn
	readFn  func(uintptr) bool
	writeFn func(uintptr) bool
	p       []byte // the call's buffer
	n       int
	errno   syscall.Errno
}

func (io *directIO) init(c net.Conn) {
	sc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	io.raw = raw
	io.readFn = io.recv
	io.writeFn = io.send
}

func (io *directIO) recv(fd uintptr) bool {
	for {
		n, _, errno := syscall.Syscall6(sysRecvfrom, fd, uintptr(unsafe.Pointer(&io.p[0])), uintptr(len(io.p)), syscall.MSG_DONTWAIT, 0, 0)
		if errno == syscall.ENOSYS { // linux/386 before 4.3 (sysnum_linux_386.go)
			n, _, errno = syscall.Syscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&io.p[0])), uintptr(len(io.p)))
		}
		if errno == syscall.EINTR {
			continue
		}
		if errno == syscall.EAGAIN {
			return false // wait for the socket (or the read deadline)
		}
		io.n, io.errno = int(n), errno
		return true
	}
}

// read is conn.Read: at least one byte, io.EOF at the end, or the error
// (os.ErrDeadlineExceeded for a read deadline that passed).
func (d *directConn) read(p []byte) (int, error) {
	io_ := &d.io
	if io_.raw == nil || len(p) == 0 {
		return d.conn.Read(p)
	}
	io_.p, io_.n, io_.errno = p, 0, 0
	err := io_.raw.Read(io_.readFn)
	io_.p = nil
	switch {
	case err != nil:
		return 0, err
	case io_.errno != 0:
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: io_.errno}
	case io_.n == 0:
		return 0, io.EOF
	}
	return io_.n, nil
}

func (io *directIO) send(fd uintptr) bool {
	for io.n < len(io.p) {
		n, _, errno := syscall.Syscall6(sysSendto, fd, uintptr(unsafe.Pointer(&io.p[io.n])), uintptr(len(io.p)-io.n), sendFlags, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 || int(n) <= 0 {
			break // EAGAIN or an error: the caller writes the rest through the net.Conn
		}
		io.n += int(n)
	}
	return true // never wait here
}

// tryWrite writes what the socket takes of b without blocking, and
// returns how much that was.
func (d *directConn) tryWrite(b []byte) int {
	io := &d.io
	if io.raw == nil || len(b) == 0 {
		return 0
	}
	io.p, io.n = b, 0
	io.raw.Write(io.writeFn)
	io.p = nil
	return io.n
}
