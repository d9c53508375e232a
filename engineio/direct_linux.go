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
	// A read and a write may run at once (a flusher worker answers a long
	// poll while its connection's goroutine waits in a read), so each has
	// its own fields.
	p     []byte // the read's buffer
	n     int
	errno syscall.Errno
	wp    []byte // the write's bytes
	wn    int
}

func (dio *directIO) init(c net.Conn) {
	sc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	dio.raw = raw
	dio.readFn = dio.recv
	dio.writeFn = dio.send
}

// rawConn is the connection's RawConn, nil if it is not a plain TCP one;
// a WebSocket that takes the connection over reuses it.
func (dio *directIO) rawConn() syscall.RawConn { return dio.raw }

func (dio *directIO) recv(fd uintptr) bool {
	for {
		n, _, errno := syscall.Syscall6(sysRecvfrom, fd, uintptr(unsafe.Pointer(&dio.p[0])), uintptr(len(dio.p)), syscall.MSG_DONTWAIT, 0, 0)
		if errno == syscall.ENOSYS { // linux/386 before 4.3 (sysnum_linux_386.go)
			n, _, errno = syscall.Syscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&dio.p[0])), uintptr(len(dio.p)))
		}
		if errno == syscall.EINTR {
			continue
		}
		if errno == syscall.EAGAIN {
			return false // wait for the socket (or the read deadline)
		}
		dio.n, dio.errno = int(n), errno
		return true
	}
}

// read is conn.Read: at least one byte, io.EOF at the end, or the error
// (os.ErrDeadlineExceeded for a read deadline that passed).
func (d *directConn) read(p []byte) (int, error) {
	dio := &d.io
	if dio.raw == nil || len(p) == 0 {
		return d.conn.Read(p)
	}
	dio.p, dio.n, dio.errno = p, 0, 0
	err := dio.raw.Read(dio.readFn)
	dio.p = nil
	switch {
	case err != nil:
		return 0, err
	case dio.errno != 0:
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: dio.errno}
	case dio.n == 0:
		return 0, io.EOF
	}
	return dio.n, nil
}

func (dio *directIO) send(fd uintptr) bool {
	dio.wn = sendSome(fd, dio.wp) // the caller writes the rest through the net.Conn
	return true                   // never wait here
}

// tryWrite writes what the socket takes of b without blocking, and
// returns how much that was.
func (d *directConn) tryWrite(b []byte) int {
	dio := &d.io
	if dio.raw == nil || len(b) == 0 {
		return 0
	}
	dio.wp, dio.wn = b, 0
	dio.raw.Write(dio.writeFn)
	dio.wp = nil
	return dio.wn
}
