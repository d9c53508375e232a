//go:build linux

package engineio

import (
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Idle WebSocket connections park here instead of keeping a reader
// goroutine blocked in Read: a goroutine costs a 2–8 KB stack for as long as
// the connection lives, which at 10k idle connections was the largest part of
// Herald's memory per connection (see docs/performance-work.md). A parked
// connection is registered, one-shot, in an epoll set of our own; when it
// becomes readable (data, EOF or error) a fresh goroutine reads it until it
// is idle again and parks it again.
//
// The epoll descriptor is itself handed to Go's network poller, so waiting
// for events costs no thread, and the loop goroutine runs only while some
// connection is parked.

// netPoller is the process-wide set of parked connections.
type netPoller struct {
	epfd int             // the epoll descriptor, open for the life of the process
	file *os.File        // epfd, pollable by the Go runtime
	raw  syscall.RawConn // file's raw access for EpollWait

	// Used by the one loop goroutine only; made once, because the loop
	// stops and starts again whenever the last parked connection leaves.
	events []syscall.EpollEvent
	ready  int // events filled by the last wait
	waitFn func(uintptr) bool

	mu      sync.Mutex
	conns   map[int32]*wsConn // registered connections by token
	next    int32             // last token handed out
	armed   int               // connections waiting for an event
	running bool              // the loop goroutine is alive
}

var (
	pollerOnce sync.Once
	poller     *netPoller // nil when epoll is unavailable: readers block instead
)

// sharedPoller returns the process's poller, creating it on first use.
func sharedPoller() *netPoller {
	pollerOnce.Do(func() {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return
		}
		if err := syscall.SetNonblock(fd, true); err != nil {
			syscall.Close(fd)
			return
		}
		f := os.NewFile(uintptr(fd), "engineio-epoll")
		// A deadline only works when the runtime polls the descriptor; the
		// loop needs it to stop when nothing is parked.
		if f.SetReadDeadline(time.Time{}) != nil {
			f.Close()
			return
		}
		raw, err := f.SyscallConn()
		if err != nil {
			f.Close()
			return
		}
		poller = &netPoller{epfd: fd, file: f, raw: raw, conns: make(map[int32]*wsConn),
			events: make([]syscall.EpollEvent, 128)}
		poller.waitFn = poller.wait
	})
	return poller
}

// park registers c to be resumed on s when readable, and reports whether it
// did. On true the caller's goroutine must return without touching c's
// reading side again: the session's tracked-goroutine slot now belongs to
// the parked connection (released by resume or by unpark).
func (c *wsConn) park(s *Session) bool {
	// Nothing may be left in user space: the poller sees only the socket.
	if c.raw == nil || !c.releaseReader() || !c.earlyDrained() {
		return false
	}
	p := sharedPoller()
	if p == nil {
		return false
	}
	// Bytes already waiting (the next frame of a burst, or EOF), or coming
	// within parkDelay: keep reading on this goroutine rather than hopping
	// through the poller.
	delay := time.Duration(0)
	if c.eager {
		delay = parkDelay
	}
	if c.awaitReadable(delay) {
		return false
	}
	// Nothing came while waiting: from now on this connection parks at
	// once, so a mostly idle client pays for one timed-out wait in its life.
	c.eager = false
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.closed {
		return false
	}
	op := syscall.EPOLL_CTL_MOD
	if c.token == 0 {
		op = syscall.EPOLL_CTL_ADD
		for {
			p.next++
			if p.next <= 0 {
				p.next = 1
			}
			if _, used := p.conns[p.next]; !used {
				break
			}
		}
		c.token = p.next
	}
	o := rawOps.Get().(*rawOp)
	o.epfd, o.op = p.epfd, op
	o.ev = syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd:     c.token,
	}
	// Control holds a reference on the descriptor, so it cannot be closed
	// (and its number reused) while it is being registered.
	err := c.raw.Control(o.registerFn)
	ctlErr := o.err
	o.err = nil
	rawOps.Put(o)
	if err != nil || ctlErr != nil {
		if op == syscall.EPOLL_CTL_ADD {
			c.token = 0
		}
		return false
	}
	p.conns[c.token] = c
	c.sess = s
	c.armed = true
	p.armed++
	s.srv.wg.Add(1) // the parked connection's slot; the caller still holds its own
	if !p.running {
		p.running = true
		p.file.SetReadDeadline(time.Time{})
		go p.loop()
	}
	return true
}

// rawOp carries one system call made through a syscall.RawConn. The
// callbacks are bound once per pooled rawOp: a closure made per call would
// escape through the RawConn interface and cost allocations on every
// message read.
type rawOp struct {
	peekFn     func(uintptr) bool
	registerFn func(uintptr)
	writeFn    func(uintptr) bool
	writevFn   func(uintptr) bool
	peekWaitFn func(uintptr) bool

	wbuf []byte          // write: what to write
	wn   int             // write, writev: how much was written
	iov  []syscall.Iovec // writev: the frames to write

	buf   [1]byte
	ready bool // peek: a read would not block

	epfd, op int // register: epoll_ctl arguments
	ev       syscall.EpollEvent
	err      error
}

var rawOps = sync.Pool{New: func() any {
	o := new(rawOp)
	o.peekFn = o.peek
	o.registerFn = o.registerRaw
	o.writeFn = o.write
	o.writevFn = o.writev
	o.peekWaitFn = func(fd uintptr) bool { o.peek(fd); return o.ready }
	return o
}}

func (o *rawOp) write(fd uintptr) bool {
	o.wn = sendSome(fd, o.wbuf)
	return true // never wait here
}

// sendSome writes as much of b to the non-blocking socket fd as it takes
// and returns how much that was; it stops at EAGAIN (buffer full) or an
// error, which the caller's ordinary write then meets again.
func sendSome(fd uintptr, b []byte) int {
	n := 0
	for n < len(b) {
		call := syscall.Syscall6
		if len(b)-n <= rawSendMax {
			// Not announced to the scheduler: a send that cannot block
			// need not let sysmon hand this goroutine's P to another
			// thread mid-burst (which let the reads of the next requests
			// overtake a broadcast's last answers; docs/performance-work.md §11).
			call = syscall.RawSyscall6
		}
		m, _, errno := call(sysSendto, fd, uintptr(unsafe.Pointer(&b[n])), uintptr(len(b)-n), sendFlags, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 || int(m) <= 0 {
			break
		}
		n += int(m)
	}
	return n
}

// tryWrite writes as much of b as the socket takes without blocking and
// returns how much that was: 0 for a connection that cannot be written this
// way or whose write deadline has passed. The caller writes the rest the
// ordinary way, with a fresh deadline, so a write that does not block never
// arms the deadline timer.
func (c *wsConn) tryWrite(b []byte) int {
	if c.raw == nil {
		return 0
	}
	o := rawOps.Get().(*rawOp)
	o.wbuf, o.wn = b, 0
	c.raw.Write(o.writeFn)
	n := o.wn
	o.wbuf = nil
	rawOps.Put(o)
	return n
}

func (o *rawOp) writev(fd uintptr) bool {
	iov := o.iov
	for len(iov) > 0 {
		msg := syscall.Msghdr{Iov: &iov[0]}
		// Iovlen is as wide as a pointer on every Linux port (uint64 or
		// uint32), so it is set through a uint.
		*(*uint)(unsafe.Pointer(&msg.Iovlen)) = uint(min(len(iov), iovMax))
		m, _, errno := syscall.Syscall(sysSendmsg, fd, uintptr(unsafe.Pointer(&msg)), sendFlags)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 || int(m) <= 0 {
			break // EAGAIN (buffer full) or an error: the caller goes on
		}
		o.wn += int(m)
		for n := uint64(m); n > 0; { // skip what was written
			if l := uint64(iov[0].Len); n >= l {
				n -= l
				iov = iov[1:]
				continue
			}
			iov[0].Base = (*byte)(unsafe.Add(unsafe.Pointer(iov[0].Base), n))
			iov[0].SetLen(int(uint64(iov[0].Len) - n))
			n = 0
		}
	}
	return true // never wait here
}

// tryWritev is tryWrite for several frames, written with as few writev
// calls as the socket allows. It returns how many bytes were written.
func (c *wsConn) tryWritev(frames [][]byte) int {
	if c.raw == nil {
		return 0
	}
	o := rawOps.Get().(*rawOp)
	for _, f := range frames {
		if len(f) > 0 {
			v := syscall.Iovec{Base: &f[0]}
			v.SetLen(len(f))
			o.iov = append(o.iov, v)
		}
	}
	o.wn = 0
	c.raw.Write(o.writevFn)
	n := o.wn
	clear(o.iov) // drop the references to the frames
	if cap(o.iov) > iovMax {
		o.iov = nil
	} else {
		o.iov = o.iov[:0]
	}
	rawOps.Put(o)
	return n
}

func (o *rawOp) peek(fd uintptr) bool {
	_, _, err := syscall.Recvfrom(int(fd), o.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	o.ready = err != syscall.EAGAIN && err != syscall.EWOULDBLOCK
	return true // never wait here
}

func (o *rawOp) registerRaw(fd uintptr) {
	o.err = syscall.EpollCtl(o.epfd, o.op, int(fd), &o.ev)
}

// unpark forgets c: it is being closed. A parked connection gives its
// tracked-goroutine slot back, since no event will come for it now.
func (c *wsConn) unpark() {
	if c.raw == nil {
		return // never parked
	}
	c.closeOnce.Do(func() {
		p := sharedPoller()
		if p == nil {
			return
		}
		p.mu.Lock()
		c.closed = true
		var s *Session
		if c.armed {
			c.armed = false
			s = c.sess
			p.disarmedLocked()
		}
		if c.token != 0 {
			delete(p.conns, c.token)
		}
		c.sess = nil
		p.mu.Unlock()
		if s != nil {
			s.srv.wg.Done()
		}
	})
}

// disarmedLocked counts one connection less waiting, and lets the loop end
// when none is left.
func (p *netPoller) disarmedLocked() {
	p.armed--
	if p.armed == 0 && p.running {
		p.file.SetReadDeadline(time.Now()) // wakes the loop so it can exit
	}
}

// loop waits for events and resumes each ready connection on a goroutine of
// its own. It returns once no connection is parked.
func (p *netPoller) loop() {
	for {
		p.ready = 0
		err := p.raw.Read(p.waitFn)
		p.mu.Lock()
		for _, ev := range p.events[:p.ready] {
			c := p.conns[ev.Fd]
			if c == nil || !c.armed {
				continue // closed meanwhile
			}
			c.armed = false
			p.disarmedLocked()
			s := c.sess
			go c.resume(s)
		}
		if p.armed == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		if err != nil {
			// The deadline that asked the loop to stop, but a connection
			// parked again since.
			p.file.SetReadDeadline(time.Time{})
		}
		p.mu.Unlock()
	}
}

// wait collects ready events into p.events without blocking, and reports
// whether there were any (if not, RawConn.Read waits for the epoll
// descriptor to become readable and calls it again).
func (p *netPoller) wait(fd uintptr) bool {
	n, err := syscall.EpollWait(int(fd), p.events, 0)
	if err != nil {
		n = 0 // EINTR: wait for readiness again
	}
	p.ready = n
	return n > 0
}

// parkDelay is how long the reader of a new connection waits on Go's
// network poller for the next message before it parks the connection.
// Parking and resuming cost two epoll_ctl calls, a wake-up of the poller
// loop and a fresh goroutine whose stack grows again; a new connection is
// about to speak (the Socket.IO CONNECT, and for a short-lived client its
// close), so waiting is cheaper. The first wait that times out ends the
// waiting for good (wsConn.eager): a timed-out wait costs a timer and a
// wake-up, more than parking at once, and that is what a client sending
// now and then would pay for every message (S3 at 1k msg/s: +30% CPU per
// echo). A variable for the tests only.
var parkDelay = 10 * time.Millisecond

// awaitReadable reports whether a read would not block (data or EOF is
// waiting) now or within d, without consuming anything.
func (c *wsConn) awaitReadable(d time.Duration) bool {
	o := rawOps.Get().(*rawOp)
	o.ready = true // if the descriptor is unusable, let the read report it
	if d > 0 && c.conn.SetReadDeadline(time.Now().Add(d)) == nil {
		c.raw.Read(o.peekWaitFn) // returns at the deadline if nothing came
		c.conn.SetReadDeadline(time.Time{})
	} else {
		c.raw.Read(o.peekFn)
	}
	ready := o.ready
	rawOps.Put(o)
	return ready
}

// sendFlags: the writes never block (the socket is non-blocking anyway) and
// never raise SIGPIPE. sendto and sendmsg rather than write and writev: they
// go straight to the socket, skipping the file layer's checks (≈ 3% of the
// server's CPU per delivery in a one-frame fan-out; docs/performance-work.md §7).
const sendFlags = syscall.MSG_DONTWAIT | syscall.MSG_NOSIGNAL

// rawSendMax is the largest send made without telling the scheduler: small
// enough that copying it into the socket stays in the microseconds.
const rawSendMax = 16 << 10
