package engineio

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// wsConn is one WebSocket connection. At most one goroutine reads it
// (readLoop) and at most one writes session packets at a time (the writer
// role, c.writing: a flusher worker, a goroutine of the connection's own, or
// a SendDirect caller; see flush.go). On Linux an idle connection has no
// reader goroutine either: it is parked in an epoll set (netpoll_linux.go)
// and a reader starts when data arrives, so an idle connection holds no
// buffers and no goroutine stack.
type wsConn struct {
	conn net.Conn
	// rd reads frames: the connection itself, or first the bytes the HTTP
	// server had already buffered after the upgrade request (early).
	rd    io.Reader
	early *bytes.Reader
	// br buffers rd while the reader runs: one read system call takes
	// every frame that has arrived. Taken from readBufPool when reading
	// starts and given back before the connection parks, so an idle
	// connection holds no buffer. Used by the reading goroutine only.
	br *bufio.Reader
	// raw is the descriptor of a plain TCP or Unix connection, which can be
	// parked while idle; nil for others (TLS keeps bytes in user space).
	raw syscall.RawConn

	// Parking state, guarded by the poller's mu (netpoll_linux.go).
	token     int32    // registration in the epoll set; 0 if none
	armed     bool     // parked, waiting for an event
	closed    bool     // closed: never park again
	sess      *Session // whom to resume when the event comes
	closeOnce sync.Once

	// writeMu serialises writes to conn: the writer's batches and the frames
	// the reader answers directly (pong, probe reply, close).
	writeMu sync.Mutex

	// eager: the reader waits parkDelay before parking (netpoll_linux.go).
	// Set for a new connection; used by the reading goroutine only.
	eager bool

	// Guarded by the owning session's mu.
	writing  bool   // a writer (flusher worker or goroutine) has the queue
	closing  bool   // write the close frame and close once the queue is drained
	closeMsg []byte // close frame to send when closing
}

// readBufPool holds the read buffers of WebSocket readers.
var readBufPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// reader returns the connection's read buffer, taking one if it has none.
func (c *wsConn) reader() *bufio.Reader {
	if c.br == nil {
		c.br = readBufPool.Get().(*bufio.Reader)
		c.br.Reset(c.rd)
	}
	return c.br
}

// releaseReader gives the read buffer back unless it holds unread bytes,
// and reports whether nothing is left buffered in it.
func (c *wsConn) releaseReader() bool {
	if c.br != nil {
		if c.br.Buffered() > 0 {
			return false
		}
		c.dropReader()
	}
	return true
}

// dropReader gives the read buffer back, discarding what it holds: the
// connection is done.
func (c *wsConn) dropReader() {
	if c.br != nil {
		c.br.Reset(nil)
		readBufPool.Put(c.br)
		c.br = nil
	}
}

// earlyDrained reports whether the bytes read ahead by the HTTP server have
// all been consumed, so that the socket alone says whether input waits.
func (c *wsConn) earlyDrained() bool {
	if c.early == nil {
		return true
	}
	if c.early.Len() > 0 {
		return false
	}
	c.early, c.rd = nil, c.conn
	return true
}

// close closes the connection, first taking it out of the poller.
func (c *wsConn) close() {
	c.unpark()
	c.conn.Close()
}

// resume reads a parked connection that became readable. It runs on a
// goroutine that holds the slot the parked connection kept in srv.wg.
func (c *wsConn) resume(s *Session) {
	defer s.srv.wg.Done()
	c.readLoop(s, false)
}

// writeDirect writes one frame now, bypassing the session queue. It is for
// frames the reader must answer itself.
func (c *wsConn) writeDirect(frame []byte, timeout time.Duration) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(timeout))
	_, err := c.conn.Write(frame)
	return err
}

// startWriterLocked makes sure a writer will write the queue: a flusher
// worker (flush.go), or for connections that cannot be written without
// blocking, a goroutine of the connection's own.
// The caller holds s.mu.
func (c *wsConn) startWriterLocked(s *Session) {
	if c.writing {
		return
	}
	c.writing = true
	if c.raw != nil {
		s.srv.flusher.add(s, c)
		return
	}
	c.handOffLocked(s)
}

// closeLocked ends the connection: gracefully after the queue drains, or now.
// The caller holds s.mu.
func (c *wsConn) closeLocked(s *Session, graceful bool) {
	if !graceful {
		c.close()
		return
	}
	c.closing = true
	c.closeMsg = closeFrame(1000, "")
	c.startWriterLocked(s)
}

// iovecPool holds the frame lists of batched writes, so that neither an
// idle connection nor each write owns one.
var iovecPool = sync.Pool{New: func() any { return new(net.Buffers) }}

// writeLoop drains the session queue into the connection, many frames per
// write (writev), until the queue is empty. It runs on a goroutine counted
// in srv.wg.
func (c *wsConn) writeLoop(s *Session) {
	defer s.srv.wg.Done()
	c.drainQueue(s)
}

// drainQueue is writeLoop's body: the caller holds the writer role
// (c.writing), which drainQueue gives up when the queue is empty.
func (c *wsConn) drainQueue(s *Session) {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 || s.ws != c {
			c.writing = false
			closing := c.closing
			s.mu.Unlock()
			if closing {
				c.writeDirect(c.closeMsg, s.srv.writeTimeout)
				c.close()
			}
			return
		}
		batch := s.takeQueueLocked()
		s.mu.Unlock()

		err := c.writeBatch(batch, s)
		s.recycle(batch)
		if err != nil {
			c.writeFailed(s)
			return
		}
	}
}

// writeFailed gives up the writer role after a failed write and closes the
// session.
func (c *wsConn) writeFailed(s *Session) {
	s.mu.Lock()
	c.writing = false
	s.mu.Unlock()
	// closeWith closes the connection; closing it first would let the
	// reader report "transport close" for what is a write failure.
	s.closeWith(ReasonTransportError, false)
	c.close()
}

// writeBatch writes the frames of batch in one system call: write for one
// frame, writev for several.
func (c *wsConn) writeBatch(batch []*Message, s *Session) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if len(batch) == 1 {
		// A fan-out's single frames nearly always fit in the socket buffer:
		// try without blocking first, which spares arming the deadline
		// timer (3% of a 10k fan-out's CPU); only a write that would block
		// gets the deadline.
		frame := batch[0].webSocketFrame(s.protocol)
		n := c.tryWrite(frame)
		if n == len(frame) {
			return nil
		}
		c.conn.SetWriteDeadline(time.Now().Add(s.srv.writeTimeout))
		_, err := c.conn.Write(frame[n:])
		return err
	}
	c.conn.SetWriteDeadline(time.Now().Add(s.srv.writeTimeout))
	bufs := iovecPool.Get().(*net.Buffers)
	frames := (*bufs)[:0]
	for _, m := range batch {
		frames = append(frames, m.webSocketFrame(s.protocol))
	}
	*bufs = frames
	_, err := bufs.WriteTo(c.conn) // consumes *bufs, not frames; a local copy would escape
	putFrames(bufs, frames)
	return err
}

// errFrameTooLarge marks a message over Config.MaxPayload.
var errFrameTooLarge = errors.New("engineio: message too large")

// readMessage reads one complete data message, answering control frames on
// the way. It returns the opcode (text or binary) and the unmasked payload.
func (c *wsConn) readMessage(max int64, writeTimeout time.Duration) (byte, []byte, error) {
	var (
		op   byte
		data []byte
	)
	rd := c.reader()
	for {
		h, err := ws.ReadHeader(rd)
		if err != nil {
			return 0, nil, err
		}
		if !h.Masked {
			c.writeDirect(closeFrame(1002, "frames must be masked"), writeTimeout)
			return 0, nil, ws.ErrProtocolMaskRequired
		}
		if h.Rsv != 0 {
			// No extension is negotiated, so every RSV bit must be clear.
			c.writeDirect(closeFrame(1002, "reserved bits set"), writeTimeout)
			return 0, nil, ws.ErrProtocolNonZeroRsv
		}
		switch h.OpCode {
		case ws.OpContinuation, ws.OpText, ws.OpBinary, ws.OpClose, ws.OpPing, ws.OpPong:
		default:
			c.writeDirect(closeFrame(1002, "reserved opcode"), writeTimeout)
			return 0, nil, ws.ErrProtocolOpCodeReserved
		}
		if h.OpCode.IsControl() {
			if h.Length > 125 || !h.Fin {
				return 0, nil, ws.ErrProtocolControlPayloadOverflow
			}
			payload := make([]byte, h.Length)
			if _, err := io.ReadFull(rd, payload); err != nil {
				return 0, nil, err
			}
			ws.Cipher(payload, h.Mask, 0)
			switch h.OpCode {
			case ws.OpPing:
				if err := c.writeDirect(appendFrame(nil, opPong, nil, payload), writeTimeout); err != nil {
					return 0, nil, err
				}
			case ws.OpClose:
				code := uint16(1000)
				if len(payload) >= 2 {
					code = uint16(payload[0])<<8 | uint16(payload[1])
				}
				c.writeDirect(closeFrame(code, ""), writeTimeout)
				return 0, nil, io.EOF
			}
			continue
		}
		switch {
		case h.OpCode == ws.OpContinuation && data == nil && op == 0:
			return 0, nil, ws.ErrProtocolContinuationUnexpected
		case h.OpCode != ws.OpContinuation && op != 0:
			return 0, nil, ws.ErrProtocolContinuationExpected
		case h.OpCode != ws.OpContinuation:
			op = byte(h.OpCode)
		}
		if h.Length > max || int64(len(data))+h.Length > max {
			c.writeDirect(closeFrame(1009, "message too big"), writeTimeout)
			return 0, nil, errFrameTooLarge
		}
		start := len(data)
		data = append(data, make([]byte, h.Length)...)
		if _, err := io.ReadFull(rd, data[start:]); err != nil {
			return 0, nil, err
		}
		ws.Cipher(data[start:], h.Mask, 0)
		if h.Fin {
			if op == opText && !utf8.Valid(data) {
				c.writeDirect(closeFrame(1007, "invalid UTF-8"), writeTimeout)
				return 0, nil, ws.ErrProtocolNonZeroRsv
			}
			if data == nil {
				data = []byte{}
			}
			return op, data, nil
		}
	}
}

// lingerAfterClose gives a close frame the server has just sent (1009,
// 1002, 1007) a chance to reach the client: closing a socket that still has
// unread input makes the kernel send a reset, and the client would drop the
// close frame. It half-closes, then discards input until the client closes,
// for at most a second.
func (c *wsConn) lingerAfterClose() {
	if tc, ok := c.conn.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
	c.conn.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, io.LimitReader(c.reader(), 4<<20))
}

// decodeFrame turns a WebSocket data message into an Engine.IO packet.
func decodeFrame(op byte, data []byte, protocol int) (packet, error) {
	if op == opBinary {
		if protocol == 3 {
			if len(data) == 0 || data[0] > 6 {
				return packet{}, parseErrorf("bad binary packet type")
			}
			return packet{typ: packetType(data[0]), data: data[1:], binary: true}, nil
		}
		return packet{typ: packetMessage, data: data, binary: true}, nil
	}
	if len(data) > 0 && data[0] == 'b' {
		return packet{}, parseErrorf("unknown packet type 'b'")
	}
	return decodeTextPacket(data, protocol)
}

// readLoop reads the session's WebSocket until it fails or the session ends.
// When probing is set, the connection is an upgrade probe for a polling
// session: it must see "2probe" then "5" before it carries the session.
func (c *wsConn) readLoop(s *Session, probing bool) {
	if !c.read(s, probing) {
		c.dropReader() // the connection is done
	}
}

// read is readLoop's body. It returns true when the connection has been
// parked (and may already be read by another goroutine).
func (c *wsConn) read(s *Session, probing bool) (parked bool) {
	srv := s.srv
	var upgradeTimer *time.Timer
	if probing {
		upgradeTimer = time.AfterFunc(srv.upgradeTimeout, func() { s.abortProbe(c) })
		defer upgradeTimer.Stop()
	}
	for {
		if !probing && c.park(s) {
			return true // an event resumes reading on a new goroutine
		}
		op, data, err := c.readMessage(srv.maxPayload, srv.writeTimeout)
		if err != nil {
			if probing {
				s.abortProbe(c)
				return false
			}
			reason := ReasonTransportError
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				reason = ReasonTransportClose
			} else {
				c.lingerAfterClose()
			}
			s.closeWith(reason, false)
			c.close()
			return false
		}
		p, err := decodeFrame(op, data, s.protocol)
		if err != nil {
			if probing {
				s.abortProbe(c)
				return false
			}
			c.close()
			s.closeWith(ReasonParseError, false)
			return false
		}
		if probing {
			switch {
			case p.typ == packetPing && string(p.data) == "probe":
				if !s.probeAnswered(c) || c.writeDirect(probeMessage.webSocketFrame(s.protocol), srv.writeTimeout) != nil {
					s.abortProbe(c)
					return false
				}
			case p.typ == packetUpgrade:
				if !s.completeUpgrade(c) {
					s.abortProbe(c)
					return false
				}
				upgradeTimer.Stop()
				probing = false
			case p.typ == packetNoop:
			default:
				s.abortProbe(c)
				return false
			}
			continue
		}
		s.onPacket(p)
	}
}

// probeAnswered records that the probe got "3probe": polling GETs from now
// on get noop so the client can pause polling.
func (s *Session) probeAnswered(c *wsConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateOpen || s.probe != c {
		return false
	}
	s.upgrading = true
	// Release the pending poll with a noop, but not at once: when "5"
	// follows right behind "2probe" (already on the wire), the poll must
	// see the finished upgrade instead.
	s.probeGrace = time.AfterFunc(probeGrace, func() {
		s.mu.Lock()
		if s.upgrading && s.probe == c && s.pollWake != nil {
			s.wakePollLocked()
		}
		s.mu.Unlock()
	})
	return true
}

// probeGrace is how long a pending poll is held after "3probe".
const probeGrace = 10 * time.Millisecond

// completeUpgrade switches the session to the probe connection and flushes
// what polling had buffered over it.
func (s *Session) completeUpgrade(c *wsConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateOpen || s.probe != c || !s.upgrading {
		return false
	}
	s.probe = nil
	s.upgrading = false
	if s.probeGrace != nil {
		s.probeGrace.Stop()
	}
	s.transport = TransportWebSocket
	s.ws = c
	if s.pollWake != nil {
		s.wakePollLocked()
	}
	if len(s.queue) > 0 {
		c.startWriterLocked(s)
	}
	return true
}

// abortProbe closes a failed upgrade probe; the session stays on polling.
func (s *Session) abortProbe(c *wsConn) {
	c.close()
	s.mu.Lock()
	if s.probe == c {
		s.probe = nil
		s.upgrading = false
		if len(s.queue) > 0 {
			s.kickLocked()
		}
	}
	s.mu.Unlock()
}
