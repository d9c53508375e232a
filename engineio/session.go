package engineio

import (
	"net/http"
	"net/url"
	"runtime/debug"
	"sync"
	"time"
)

// Handshake is what the server kept of the request that opened a session.
type Handshake struct {
	Header     http.Header // request headers; must not be modified
	Query      url.Values  // query parameters of the handshake URL; must not be modified
	RemoteAddr string      // client address as seen by this server
	URL        string      // request URI of the handshake
	Secure     bool        // true when the request came over TLS
	Time       time.Time   // when the handshake was received
}

// SessionForwarder handles requests that name a session this server does not
// hold, for example by proxying them to the node that owns it. It is how the
// cluster layer plugs in without engineio knowing about clusters.
type SessionForwarder interface {
	// ForwardSession handles the request and returns true, or returns false
	// without writing anything to let the server answer 400 "Session ID
	// unknown".
	ForwardSession(w http.ResponseWriter, r *http.Request, sid string) bool
}

type sessionState uint8

const (
	stateOpen sessionState = iota
	// stateClosing: closed for the application, but a farewell (queued
	// packets then close) is still waiting for the client's next poll.
	stateClosing
	stateClosed
)

// Session is one Engine.IO connection, whatever transport carries it.
//
// Concurrency: Send, Close and the accessors may be called from any
// goroutine. Messages are delivered to the OnMessage handler one at a time,
// in order, from the goroutine reading the transport; a handler that blocks
// stops reading for that session only.
type Session struct {
	srv       *Server
	id        string
	protocol  int
	handshake Handshake
	// header is the handshake's headers, packed (packHeader) until
	// Handshake first builds handshake.Header from it; guarded by mu.
	header string

	// deliverMu serialises calls into onMessage: during an upgrade a last
	// polling POST may overlap the first WebSocket frames.
	deliverMu sync.Mutex
	onMessage func(data []byte, binary bool)
	onClose   func(reason CloseReason)

	// b64 is set for v3 polling clients that cannot take binary framing.
	// Set before the session is shared, never changed; it sits with the
	// small fields below so that they share one word.
	b64 bool

	mu sync.Mutex // guards every field below
	// The one-byte fields together: the struct stays in a smaller size
	// class (it is per connection).
	state      sessionState
	pollActive bool // a GET is inside its handler
	postActive bool // a POST is inside its handler
	upgrading  bool // probe answered: polling GETs now get noop
	pollQueued bool // a flusher worker or a SendDirect caller is to answer the pending GET (answerPoll)

	transport   string
	closeReason CloseReason
	queue       []*Message
	spare       []*Message // recycled backing array for queue
	queued      int64      // bytes in queue

	// Polling.
	pollWake  chan struct{} // closed to wake the pending GET
	pollConn  *directConn   // the pending GET's connection when Serve answers it
	postAbort func()        // cuts short the body read of that POST
	farewell  *Message      // last packet for the pending/next GET once closed

	// WebSocket.
	ws         *wsConn     // the active WebSocket transport
	probe      *wsConn     // an upgrade probe in progress
	probeGrace *time.Timer // releases the pending poll after "3probe"

	// heartbeat is the session's one timer. v4: it fires when the next
	// ping is due, then when the answer is due; v3: when the client's
	// heartbeat is due. One timer rather than two saves a runtime timer
	// per idle connection.
	heartbeat *time.Timer
	// pingDue is when the next ping is scheduled and pongDeadline when
	// the client's answer is due (zero when none is awaited). A request
	// arriving after the deadline closes the session even if the timer
	// has not run yet, so timer latency never extends the timeout.
	pingDue      time.Time
	pongDeadline time.Time
	lingering    *time.Timer // stateClosing: drops the session if never polled

	done chan struct{} // made by Done when first needed; closed once closed
}

// ID returns the session id.
func (s *Session) ID() string { return s.id }

// Protocol returns the Engine.IO protocol version: 4, or 3 for old clients.
func (s *Session) Protocol() int { return s.protocol }

// Handshake returns the request data captured when the session opened.
//
// The header map is built on the first call: most sessions are never asked.
func (s *Session) Handshake() *Handshake {
	s.mu.Lock()
	if s.handshake.Header == nil {
		s.handshake.Header = unpackHeader(s.header)
		s.header = ""
	}
	s.mu.Unlock()
	return &s.handshake
}

// Transport returns the name of the transport currently carrying the session.
func (s *Session) Transport() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transport
}

// Done is closed when the session has closed.
func (s *Session) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		// Made on first use: most sessions are never asked.
		if s.state != stateOpen {
			return closedChan
		}
		s.done = make(chan struct{})
	}
	return s.done
}

// closedChan is Done's answer for a session closed before anyone asked.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// CloseReason returns why the session closed, or "" while it is open.
func (s *Session) CloseReason() CloseReason {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeReason
}

// OnMessage sets the function that receives each message from the client.
// Set it in the server's session handler: messages are not read before the
// handler returns. data belongs to the callee.
func (s *Session) OnMessage(f func(data []byte, binary bool)) {
	s.deliverMu.Lock()
	s.onMessage = f
	s.deliverMu.Unlock()
}

// OnClose sets the function called once when the session closes. Set it in
// the server's session handler.
func (s *Session) OnClose(f func(reason CloseReason)) {
	s.mu.Lock()
	s.onClose = f
	s.mu.Unlock()
}

// Send queues messages for the client, in order and adjacent, and returns at
// once: a writer delivers them. It returns ErrSessionClosed if the session
// has closed. If the queue would grow past Config.MaxBufferedBytes, the
// session closes with ReasonSlowClient and Send returns ErrSessionClosed.
//
// Send is for fan-out: the writes of many sessions are shared out among a
// few writers and coalesce under load. For a reply to one client use
// SendDirect.
func (s *Session) Send(msgs ...*Message) error {
	return s.send(msgs, sendQueued)
}

// SendDirect is Send that, when nothing else is being written to the
// client's WebSocket, writes the messages from the calling goroutine
// without blocking; what the socket does not take at once is left to a
// writer as with Send. A long poll that Serve holds is answered the same
// way, from the calling goroutine. It is for replies to one client (an event's answer,
// an acknowledgement), usually sent from the session's own reader, where
// handing the write to another goroutine would cost more than the write.
func (s *Session) SendDirect(msgs ...*Message) error {
	return s.send(msgs, sendDirect)
}

// SendLater queues messages like Send but starts no write: they leave with
// whatever is sent next (Send, SendDirect, a heartbeat), in the same write,
// or at Flush. It is for an answer that the caller knows more will follow at
// once, such as Socket.IO's CONNECT answer and what the connection handlers
// emit: one write instead of several. Call Flush when done.
func (s *Session) SendLater(msgs ...*Message) error {
	return s.send(msgs, sendLater)
}

// Flush writes what SendLater left queued, as SendDirect would. It does
// nothing if nothing waits or a writer is already at work.
func (s *Session) Flush() {
	s.mu.Lock()
	if s.state != stateOpen || len(s.queue) == 0 {
		s.mu.Unlock()
		return
	}
	s.writeQueueUnlock(true)
}

// sendMode is how send has what it queues written.
type sendMode uint8

const (
	sendQueued sendMode = iota // by a writer: a flusher worker or the poll
	sendDirect                 // by the caller if it can (SendDirect)
	sendLater                  // with the next send, or at Flush
)

func (s *Session) send(msgs []*Message, mode sendMode) error {
	s.mu.Lock()
	if s.state != stateOpen {
		s.mu.Unlock()
		return ErrSessionClosed
	}
	if max := s.srv.maxBuffered; max >= 0 {
		n := s.queued
		for _, m := range msgs {
			n += int64(m.size())
		}
		if n > max {
			s.mu.Unlock()
			s.closeWith(ReasonSlowClient, false)
			return ErrSessionClosed
		}
	}
	s.appendLocked(msgs)
	if mode == sendLater {
		s.mu.Unlock()
		return nil
	}
	s.writeQueueUnlock(mode == sendDirect)
	return nil
}

// writeQueueUnlock has the queue written, then releases s.mu, which the
// caller holds: by the caller itself when direct and it can take the
// writer role (takeWriterLocked), else by the transport's writer.
func (s *Session) writeQueueUnlock(direct bool) {
	if direct {
		if c := s.takeWriterLocked(); c != nil {
			s.mu.Unlock()
			c.flush(s, s.srv.flusher)
			return
		}
		if s.pollAnswerableLocked() && !s.pollQueued {
			s.pollQueued = true
			s.mu.Unlock()
			s.answerPoll()
			return
		}
	}
	s.kickLocked()
	s.mu.Unlock()
}

// takeWriterLocked takes the writer role for the caller, who then writes
// the queue with c.flush (flush.go), if the session is on a WebSocket that
// can be written without blocking and nothing else is writing it; else it
// returns nil. The caller holds s.mu.
func (s *Session) takeWriterLocked() *wsConn {
	c := s.ws
	if c == nil || c.raw == nil || c.writing || s.transport != TransportWebSocket {
		return nil
	}
	c.writing = true
	return c
}

// TrySend is Send for messages that may be dropped (volatile emits): it
// queues the messages only if the transport can take them now without
// buffering them for later, and reports whether it did.
func (s *Session) TrySend(msgs ...*Message) bool {
	s.mu.Lock()
	writable := s.state == stateOpen && !s.upgrading &&
		(s.transport == TransportWebSocket && s.ws != nil && !s.ws.writing ||
			s.transport == TransportPolling && s.pollWake != nil)
	s.mu.Unlock()
	if !writable {
		return false
	}
	return s.Send(msgs...) == nil
}

// Close closes the session with ReasonForcedClose after writing what is
// already queued. It is safe to call more than once.
func (s *Session) Close() {
	s.closeWith(ReasonForcedClose, true)
}

// enqueueLocked appends to the queue and wakes the writer.
func (s *Session) enqueueLocked(msgs ...*Message) {
	s.appendLocked(msgs)
	s.kickLocked()
}

// appendLocked appends to the queue.
func (s *Session) appendLocked(msgs []*Message) {
	if s.queue == nil && s.spare != nil {
		s.queue, s.spare = s.spare[:0], nil
	}
	for _, m := range msgs {
		s.queue = append(s.queue, m)
		s.queued += int64(m.size())
	}
}

// takeQueueLocked removes and returns everything queued. The caller returns
// the slice with recycleLocked when done with it.
func (s *Session) takeQueueLocked() []*Message {
	q := s.queue
	s.queue = nil
	s.queued = 0
	return q
}

func (s *Session) recycle(q []*Message) {
	s.mu.Lock()
	s.recycleLocked(q)
	s.mu.Unlock()
}

// recycleLocked is recycle for a caller that holds s.mu.
func (s *Session) recycleLocked(q []*Message) {
	if cap(q) > 256 {
		return // don't keep a burst's large array on an idle session
	}
	clear(q)
	if s.spare == nil {
		s.spare = q[:0]
	}
}

// wakePollLocked wakes the pending GET. A GET that Serve answers waits in a
// Read of its connection (directConn.awaitPoll), which a deadline ends.
func (s *Session) wakePollLocked() {
	close(s.pollWake)
	s.pollWake = nil
	if s.pollConn != nil {
		s.pollConn.interrupt()
		s.pollConn = nil
	}
}

// kickLocked wakes whichever transport writes for the session.
func (s *Session) kickLocked() {
	switch {
	case s.transport == TransportWebSocket && s.ws != nil:
		s.ws.startWriterLocked(s)
	case s.pollQueued:
		// A flusher worker will answer the pending GET with the whole queue.
	case s.pollAnswerableLocked():
		s.pollQueued = true
		s.srv.flusher.addPoll(s)
	case s.pollWake != nil:
		s.wakePollLocked()
	}
}

// closeWith closes the session. graceful writes what is queued (and, on
// polling, a close packet on the next poll) before the transport closes;
// otherwise the transport is torn down at once. The close handler runs once,
// on the calling goroutine.
func (s *Session) closeWith(reason CloseReason, graceful bool) {
	s.mu.Lock()
	if s.state != stateOpen {
		s.mu.Unlock()
		return
	}
	s.closeReason = reason
	s.stopTimersLocked()
	farewell := closeMessage
	if reason == ReasonTransportClose {
		// The client asked to close: a pending poll just completes.
		farewell = noopMessage
	}
	s.farewell = farewell
	lingering := false
	switch {
	case s.transport == TransportWebSocket && s.ws != nil:
		s.state = stateClosed
		s.ws.closeLocked(s, graceful)
	case graceful && s.transport == TransportPolling:
		// Keep the session reachable until the client has polled what is
		// queued and then, in a poll of its own, the close packet: the
		// official client handles a close at once but decoded packets a
		// tick later, so a close in the same payload would overtake them.
		s.state = stateClosing
		lingering = true
		s.lingering = time.AfterFunc(s.srv.lingerTimeout(), func() { s.srv.remove(s) })
		if s.pollWake != nil {
			s.wakePollLocked()
		}
	case s.pollWake != nil:
		// A GET is waiting: it writes the queue and the farewell.
		s.state = stateClosed
		s.wakePollLocked()
	default:
		s.state = stateClosed
	}
	if s.probe != nil {
		s.probe.close()
		s.probe = nil
	}
	if s.postAbort != nil {
		s.postAbort()
	}
	onClose := s.onClose
	s.onClose = nil
	done := s.done
	s.mu.Unlock()

	if !lingering {
		s.srv.remove(s)
	}
	if done != nil {
		close(done)
	}
	if onClose != nil {
		onClose(reason)
	}
}

func (s *Session) stopTimersLocked() {
	if s.heartbeat != nil {
		s.heartbeat.Stop()
	}
}

// startHeartbeatLocked arms the heartbeat for a new session. In v4 the
// server pings; in v3 the client pings and the server only times out.
func (s *Session) startHeartbeatLocked() {
	if s.protocol == 3 {
		s.pongDeadline = time.Now().Add(s.srv.pingInterval + s.srv.pingTimeout)
		s.heartbeat = time.AfterFunc(s.srv.pingInterval+s.srv.pingTimeout, s.onHeartbeat)
		return
	}
	s.pingDue = time.Now().Add(s.srv.pingInterval)
	s.heartbeat = time.AfterFunc(s.srv.pingInterval, s.onHeartbeat)
}

// onHeartbeat runs when the heartbeat timer fires: it sends the ping that
// is due, or closes the session whose answer is overdue. A run that lost a
// race with a Reset (the answer came meanwhile) finds nothing due and does
// nothing: the timer is armed again for the new time.
func (s *Session) onHeartbeat() {
	s.mu.Lock()
	if s.state != stateOpen {
		s.mu.Unlock()
		return
	}
	now := time.Now()
	if !s.pongDeadline.IsZero() {
		late := !now.Before(s.pongDeadline)
		s.mu.Unlock()
		if late {
			s.closeWith(ReasonPingTimeout, false)
		}
		return
	}
	if s.protocol == 4 && !now.Before(s.pingDue) {
		s.sendPingLocked()
	}
	s.mu.Unlock()
}

// expired reports whether the client has missed its heartbeat deadline; it
// closes the session if so.
func (s *Session) expired() bool {
	s.mu.Lock()
	late := s.state == stateOpen && !s.pongDeadline.IsZero() && time.Now().After(s.pongDeadline)
	s.mu.Unlock()
	if late {
		s.closeWith(ReasonPingTimeout, false)
	}
	return late
}

// sendPingLocked queues a ping and arms the timer for its answer.
func (s *Session) sendPingLocked() {
	// The timeout starts when the ping is queued, not when it is delivered:
	// a polling client that does not poll times out too.
	s.enqueueLocked(pingMessage)
	// Count the timeout from when the ping was due, not from when this
	// timer got to run.
	s.pongDeadline = s.pingDue.Add(s.srv.pingTimeout)
	s.heartbeat.Reset(time.Until(s.pongDeadline))
}

// onPacket handles one packet from the client, on the reading goroutine.
func (s *Session) onPacket(p packet) {
	switch p.typ {
	case packetMessage:
		if s.deliver(p) {
			s.closeWith(ReasonTransportError, false)
		}
	case packetPong:
		if s.protocol == 3 {
			s.closeWith(ReasonTransportError, false) // v3 servers never ping
			return
		}
		s.mu.Lock()
		if s.state == stateOpen {
			s.pongDeadline = time.Time{}
			s.pingDue = time.Now().Add(s.srv.pingInterval)
			s.heartbeat.Reset(s.srv.pingInterval)
		}
		s.mu.Unlock()
	case packetPing:
		if s.protocol == 4 {
			// Invalid heartbeat direction in v4.
			s.closeWith(ReasonTransportError, false)
			return
		}
		s.mu.Lock()
		if s.state == stateOpen {
			s.pongDeadline = time.Now().Add(s.srv.pingInterval + s.srv.pingTimeout)
			s.heartbeat.Reset(s.srv.pingInterval + s.srv.pingTimeout)
			s.enqueueLocked(controlMessage(packetPong, p.data))
		}
		s.mu.Unlock()
	case packetClose:
		// Over polling the close usually comes by POST while a GET is
		// pending, but the GET may also arrive just after: linger so it gets
		// its noop rather than an unknown-session error.
		s.mu.Lock()
		polling := s.transport == TransportPolling
		s.mu.Unlock()
		s.closeWith(ReasonTransportClose, polling)
	default:
		// open, upgrade and noop carry nothing for an established session.
	}
}

// deliver hands a message to the application. A panic in the handler is
// logged and reported (panicked true) so only this session closes.
func (s *Session) deliver(p packet) (panicked bool) {
	s.deliverMu.Lock()
	defer s.deliverMu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			s.srv.log.Error("engineio: message handler panicked", "sid", s.id, "panic", r, "stack", string(debug.Stack()))
			panicked = true
		}
	}()
	if s.onMessage != nil {
		s.onMessage(p.data, p.binary)
	}
	return false
}
