package engineio

import (
	"net"
	"runtime"
	"sync"
	"time"
)

// flusher writes the queued frames of many WebSocket sessions, and the
// answers of long polls that Serve holds (Session.answerPoll), from a few
// goroutines (at most GOMAXPROCS) instead of starting a writer goroutine per
// session. A broadcast to 10k sockets used to start 10k goroutines, one per
// recipient, each doing one write; now each recipient is appended to one
// list and a worker writes it with a non-blocking write (writev for several
// frames). Writing is all that is left per delivery.
//
// Under load the list also coalesces: while the workers are busy, the next
// broadcasts queue behind the frames not yet written, and a session's turn
// writes all of them in one writev. No timer ever delays a write.
//
// A session whose frames do not fit in its socket buffer (a slow client)
// is handed to a goroutine of its own (wsConn.finishWrite), which waits
// with the write deadline, so a slow client never holds up the workers.
// Connections that cannot be written without blocking (TLS) always use
// that goroutine.
type flusher struct {
	srv        *Server
	maxWorkers int

	mu      sync.Mutex  // guards the fields below; taken after a Session's mu, never before
	pending []flushItem // pending[head:] wait for a worker; one entry per session at most
	head    int
	workers int // running workers
}

// flushItem is a session whose queue waits for a worker: a WebSocket whose
// writer role is taken (wsConn.writing), or, with c nil, a long poll to
// answer (Session.pollQueued).
type flushItem struct {
	s *Session
	c *wsConn
}

// iovMax is Linux's limit on the buffers of one writev (IOV_MAX); frame
// lists longer than that are not kept for reuse either.
const iovMax = 1024

// flushChunk is how many sessions a worker takes at a time: small enough
// for the workers to share a broadcast, large enough to take the lock
// rarely.
const flushChunk = 64

func newFlusher(srv *Server) *flusher {
	return &flusher{srv: srv, maxWorkers: runtime.GOMAXPROCS(0)}
}

// add queues s for writing. The caller holds s.mu and has set c.writing.
func (f *flusher) add(s *Session, c *wsConn) {
	f.push(flushItem{s, c})
}

// addPoll queues s's pending long poll for answering (Session.answerPoll).
// The caller holds s.mu and has set s.pollQueued.
func (f *flusher) addPoll(s *Session) {
	f.push(flushItem{s: s})
}

func (f *flusher) push(it flushItem) {
	f.mu.Lock()
	f.pending = append(f.pending, it)
	// One worker, plus one more per core while the backlog is long.
	start := f.workers == 0 ||
		f.workers < f.maxWorkers && len(f.pending)-f.head > 4*flushChunk*f.workers
	if start {
		f.workers++
	}
	f.mu.Unlock()
	if start {
		f.srv.wg.Add(1)
		go f.work()
	}
}

// work writes pending sessions until none is left. It runs on a goroutine
// counted in srv.wg.
func (f *flusher) work() {
	defer f.srv.wg.Done()
	var batch [flushChunk]flushItem
	for {
		f.mu.Lock()
		n := copy(batch[:], f.pending[f.head:])
		f.head += n
		switch {
		case f.head == len(f.pending):
			clear(f.pending)
			f.pending, f.head = f.pending[:0], 0
		case f.head >= 1024 && 2*f.head >= len(f.pending):
			// Under sustained load the list may never empty: move the
			// waiting entries down so that it does not grow for ever.
			m := copy(f.pending, f.pending[f.head:])
			clear(f.pending[m:])
			f.pending, f.head = f.pending[:m], 0
		}
		if n == 0 {
			f.workers--
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		for i := range batch[:n] {
			if c := batch[i].c; c != nil {
				c.flush(batch[i].s, f)
			} else {
				batch[i].s.answerPoll()
			}
			batch[i] = flushItem{}
		}
	}
}

// flush writes what s has queued for c without blocking, on a flusher
// worker. What the socket does not take goes on in a goroutine of its own.
func (c *wsConn) flush(s *Session, f *flusher) {
	s.mu.Lock()
	if len(s.queue) == 0 || s.ws != c {
		if c.closing {
			c.handOffLocked(s) // the close frame may block: writeLoop writes it
		} else {
			c.writing = false
		}
		s.mu.Unlock()
		return
	}
	if !c.writeMu.TryLock() {
		// The reader is writing a control frame and may block on a slow
		// client: let a goroutine of its own wait for it.
		c.handOffLocked(s)
		s.mu.Unlock()
		return
	}
	batch := s.takeQueueLocked()
	s.mu.Unlock()

	fp := iovecPool.Get().(*net.Buffers)
	frames := (*fp)[:0]
	total := 0
	for _, m := range batch {
		frame := m.webSocketFrame(s.protocol)
		frames = append(frames, frame)
		total += len(frame)
	}
	var n int
	if len(frames) == 1 {
		n = c.tryWrite(frames[0]) // write is cheaper than writev
	} else {
		n = c.tryWritev(frames)
	}
	if n < total {
		// The socket buffer is full (or the write failed): the rest goes
		// on in a goroutine, which keeps writeMu so that nothing else
		// writes into the middle of a frame.
		s.srv.wg.Add(1)
		go c.finishWrite(s, batch, fp, frames, n)
		return
	}
	c.writeMu.Unlock()
	putFrames(fp, frames)

	s.mu.Lock()
	s.recycleLocked(batch)
	if len(s.queue) > 0 || c.closing {
		f.add(s, c) // more came while writing, or the close frame: another turn
	} else {
		c.writing = false
	}
	s.mu.Unlock()
}

// handOffLocked passes the writer role to a goroutine running writeLoop.
// The caller holds s.mu; c.writing stays set.
func (c *wsConn) handOffLocked(s *Session) {
	s.srv.wg.Add(1)
	go c.writeLoop(s)
}

// finishWrite writes frames from byte offset written on, waiting with the
// write deadline, then goes on as the session's writer. The caller holds
// writeMu, which finishWrite releases. It runs on a goroutine counted in
// srv.wg.
func (c *wsConn) finishWrite(s *Session, batch []*Message, fp *net.Buffers, frames [][]byte, written int) {
	defer s.srv.wg.Done()
	rest := frames
	for written > 0 && len(rest) > 0 { // skip what the socket took
		if written >= len(rest[0]) {
			written -= len(rest[0])
			rest = rest[1:]
			continue
		}
		rest[0] = rest[0][written:]
		written = 0
	}
	c.conn.SetWriteDeadline(time.Now().Add(s.srv.writeTimeout))
	bufs := net.Buffers(rest)
	_, err := bufs.WriteTo(c.conn)
	c.writeMu.Unlock()
	putFrames(fp, frames)
	s.recycle(batch)
	if err != nil {
		c.writeFailed(s)
		return
	}
	c.drainQueue(s)
}

// putFrames returns a frame list taken from iovecPool, without its
// references to the frames.
func putFrames(fp *net.Buffers, frames [][]byte) {
	clear(frames)
	if cap(frames) > iovMax {
		return // a burst's large list: let it go
	}
	*fp = frames[:0]
	iovecPool.Put(fp)
}
