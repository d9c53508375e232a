package main

// Reading connected WebSocket sockets without a goroutine each. With Go's
// poller every frame that arrives alone costs a goroutine wake-up, the read,
// and one more read that finds the socket empty; in S2a/S2b (10k sockets)
// that was most of the load generator's user-space CPU. Here a connected
// socket leaves Go's poller (dup, then the os.File is closed) and joins an
// edge-triggered epoll set of the process's own: one loop goroutine takes
// every ready socket from one epoll_wait and reads each into its one
// buffer. The loop parks in Go's poller on the epoll fd itself, so it never
// blocks a thread and the senders' goroutines keep running on time. (The
// price of the nesting: an arrival also runs the wake-up callback of that
// epoll fd, in the kernel on the sender's side; small next to a delivery,
// and not visible in the servers' CPU figures.)
//
// Only the loop closes a socket it owns: close() from elsewhere shuts the
// socket down, the loop sees the end and closes it, so no fd number is
// reused while the loop may still read it.

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type pollLoop struct {
	epfd   int
	rc     syscall.RawConn // the epoll fd, in Go's poller
	n      int
	events [512]syscall.EpollEvent
	buf    readBuf
}

// epollET is EPOLLET as the uint32 the event mask is (syscall's constant is
// negative on some ports).
const epollET = 1 << 31

// maxFD bounds the fd numbers the loops look up (RLIMIT_NOFILE is 20,000 on
// the build machines).
const maxFD = 1 << 16

var loops struct {
	once  sync.Once
	err   error
	all   []*pollLoop
	next  atomic.Uint32
	slots [maxFD]atomic.Pointer[wsConn] // by fd: the connection a loop owns
	reads atomic.Int64                  // reads with data, for the client profile (frames per read)
}

func startLoops() error {
	loops.once.Do(func() {
		for k := 0; k < runtime.GOMAXPROCS(0); k++ {
			l, err := newPollLoop()
			if err != nil {
				loops.err = err
				return
			}
			loops.all = append(loops.all, l)
			go l.run()
		}
	})
	return loops.err
}

func newPollLoop() (*pollLoop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	f := os.NewFile(uintptr(epfd), "epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &pollLoop{epfd: epfd, rc: rc}, nil
}

func (l *pollLoop) run() {
	wait := func(uintptr) bool {
		for {
			n, err := syscall.EpollWait(l.epfd, l.events[:], 0)
			if err == syscall.EINTR {
				continue
			}
			l.n = max(n, 0)
			return n > 0 // none ready: park in Go's poller until one is
		}
	}
	for {
		if err := l.rc.Read(wait); err != nil {
			return
		}
		for i := 0; i < l.n; i++ {
			fd := int(l.events[i].Fd)
			if fd < 0 || fd >= maxFD {
				continue
			}
			if w := loops.slots[fd].Load(); w != nil {
				l.readConn(fd, w)
			}
		}
	}
}

// readConn reads what one ready socket holds. The set is edge-triggered:
// a read shorter than the buffer emptied the socket, and anything arriving
// later is a new event, so one read per event is the rule and the socket
// is not polled again until then.
func (l *pollLoop) readConn(fd int, w *wsConn) {
	for {
		n, err := syscall.Read(fd, l.buf[:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return
		case err == nil && n > 0:
			loops.reads.Add(1)
			if w.feed(l.buf[:n]) != nil {
				break
			}
			if n < len(l.buf) {
				return
			}
			continue
		}
		l.drop(fd, w)
		return
	}
}

// drop closes a connection the loop owns and ends its serve.
func (l *pollLoop) drop(fd int, w *wsConn) {
	w.mu.Lock()
	w.closed = true
	loops.slots[fd].Store(nil)
	syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
	syscall.Close(fd)
	w.mu.Unlock()
	close(w.done)
}

// handToLoop moves a connected socket from Go's poller to a loop.
func (w *wsConn) handToLoop() error {
	if err := startLoops(); err != nil {
		return err
	}
	var nfd int
	var derr error
	if err := w.rc.Control(func(fd uintptr) { nfd, derr = syscall.Dup(int(fd)) }); err != nil {
		return err
	}
	if derr != nil {
		return os.NewSyscallError("dup", derr)
	}
	if nfd >= maxFD {
		syscall.Close(nfd)
		return errors.New("fd out of range")
	}
	l := loops.all[int(loops.next.Add(1))%len(loops.all)]
	w.mu.Lock()
	w.f.Close() // leaves Go's poller; the dup keeps the socket open
	w.fd, w.loop, w.done = nfd, l, make(chan struct{})
	loops.slots[nfd].Store(w)
	w.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET, Fd: int32(nfd)}
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, nfd, &ev); err != nil {
		l.drop(nfd, w)
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// writeRaw writes b whole to a socket a loop owns (w.mu held). The socket is
// non-blocking; a full send buffer is rare here (small frames), so waiting
// is a short sleep rather than a poller registration.
func (w *wsConn) writeRaw(b []byte) error {
	deadline := time.Time{}
	for len(b) > 0 {
		if w.closed {
			return errClosed
		}
		n, err := syscall.Write(w.fd, b)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			if deadline.IsZero() {
				deadline = time.Now().Add(15 * time.Second)
			} else if time.Now().After(deadline) {
				return os.NewSyscallError("write", err)
			}
			time.Sleep(200 * time.Microsecond)
			continue
		case err != nil:
			return os.NewSyscallError("write", err)
		}
		b = b[n:]
	}
	return nil
}
