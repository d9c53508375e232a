//go:build linux

package engineio

import (
	"os"
	"sync"
	"syscall"
	"time"
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
	file *os.File        // the epoll descriptor, pollable by the Go runtime
	raw  syscall.RawConn // file's raw access for EpollWait

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
		poller = &netPoller{file: f, raw: raw, conns: make(map[int32]*wsConn)}
	})
	return poller
}

// park registers c to be resumed on s when readable, and reports whether it
// did. On true the caller's goroutine must return without touching c's
// reading side again: the session's tracked-goroutine slot now belongs to
// the parked connection (released by resume or by unpark).
func (c *wsConn) park(s *Session) bool {
	if c.raw == nil || !c.earlyDrained() {
		return false
	}
	p := sharedPoller()
	if p == nil {
		return false
	}
	// Bytes already waiting (the next frame of a burst, or EOF): keep reading
	// on this goroutine rather than hopping through the poller.
	if c.readable() {
		return false
	}
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
	ev := syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd:     c.token,
	}
	var ctlErr error
	// Control holds a reference on the descriptor, so it cannot be closed
	// (and its number reused) while it is being registered.
	err := c.raw.Control(func(fd uintptr) {
		ctlErr = syscall.EpollCtl(int(p.fd()), op, int(fd), &ev)
	})
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

// fd returns the epoll descriptor. The file stays open for the life of the
// process, so the number is stable.
func (p *netPoller) fd() uintptr { return p.file.Fd() }

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
	events := make([]syscall.EpollEvent, 128)
	for {
		var n int
		err := p.raw.Read(func(fd uintptr) bool {
			var werr error
			n, werr = syscall.EpollWait(int(fd), events, 0)
			if werr != nil {
				n = 0 // EINTR: wait for readiness again
			}
			return n > 0
		})
		p.mu.Lock()
		for _, ev := range events[:n] {
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

// readable reports whether a read would not block: data or EOF is waiting.
func (c *wsConn) readable() bool {
	var b [1]byte
	ready := true
	c.raw.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ready = err != syscall.EAGAIN && err != syscall.EWOULDBLOCK
		return true // never wait here
	})
	return ready
}
