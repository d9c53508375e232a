package engineio

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// upgradePollWait is how long a poll that arrives mid-upgrade waits for the
// upgrade to complete.
const upgradePollWait = 100 * time.Millisecond

// handlePollGet answers a long-poll GET: it returns at once with whatever is
// queued, or waits until something is.
func (s *Session) handlePollGet(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.transport != TransportPolling {
		s.mu.Unlock()
		writeRequestError(w, ErrBadRequest, "")
		return
	}
	if s.pollActive {
		// A second concurrent GET is a protocol violation: the session closes
		// and the pending GET completes with a close packet.
		s.mu.Unlock()
		s.closeWith(ReasonTransportError, false)
		writeRequestError(w, ErrBadRequest, "")
		return
	}
	s.pollActive = true
	waited := false
	// A poll that arrives while an upgrade probe is under way waits briefly
	// for the upgrade to finish: the client sends "5" right after "2probe",
	// and once upgraded the session must refuse polling (400), not answer
	// with a noop that makes the poll look valid.
	duringUpgrade := s.upgrading || s.probe != nil
	upgradeWaited := false
	for {
		switch {
		case s.state == stateClosing && len(s.queue) > 0:
			// The farewell goes in the next poll, after these.
			batch := s.takeQueueLocked()
			s.pollActive = false
			s.mu.Unlock()
			s.writePoll(w, batch)
			return
		case s.state != stateOpen:
			batch := s.takeQueueLocked()
			farewell := s.farewell
			lingering := s.state == stateClosing
			s.state = stateClosed
			s.pollActive = false
			if s.lingering != nil {
				s.lingering.Stop()
			}
			s.mu.Unlock()
			if lingering {
				s.srv.remove(s)
			}
			s.writePoll(w, append(batch, farewell))
			return
		case s.transport != TransportPolling && duringUpgrade:
			s.pollActive = false
			s.mu.Unlock()
			writeRequestError(w, ErrBadRequest, "")
			return
		case s.upgrading && duringUpgrade && !upgradeWaited:
			upgradeWaited = true
			wake := make(chan struct{})
			s.pollWake = wake
			s.mu.Unlock()
			t := time.NewTimer(upgradePollWait)
			select {
			case <-wake:
			case <-t.C:
			case <-r.Context().Done():
			}
			t.Stop()
			s.mu.Lock()
			if s.pollWake == wake {
				s.pollWake = nil
			}
			continue
		case s.upgrading || s.transport != TransportPolling:
			// The client is switching to WebSocket: release this poll.
			s.pollActive = false
			s.mu.Unlock()
			s.writePoll(w, []*Message{noopMessage})
			return
		case len(s.queue) > 0:
			batch := s.takeQueueLocked()
			s.pollActive = false
			s.mu.Unlock()
			s.writePoll(w, batch)
			s.recycle(batch)
			return
		case waited:
			// Woken with nothing to send (e.g. an aborted probe): wait again.
		}
		wake := make(chan struct{})
		s.pollWake = wake
		direct, _ := w.(*directResponse)
		if direct != nil {
			s.pollConn = direct.d
			direct.d.pipelined, direct.d.answered = false, false
		}
		s.mu.Unlock()
		gone := false
		if direct != nil {
			switch direct.d.awaitPoll(s, wake) {
			case pollAnswered:
				return // answerPoll wrote the response
			case pollGone:
				gone = true
			}
		} else {
			select {
			case <-wake:
			case <-r.Context().Done():
				gone = true
			}
		}
		if gone {
			s.mu.Lock()
			if s.pollWake == wake {
				s.pollWake = nil
				s.pollConn = nil
			}
			s.pollActive = false
			s.mu.Unlock()
			// The client gave up on a poll mid-wait: the reference treats
			// this as a transport error.
			s.closeWith(ReasonTransportError, false)
			return
		}
		waited = true
		s.mu.Lock()
	}
}

// pollAnswerableLocked reports whether the pending GET can be answered by
// answerPoll: Serve holds it on a plain, kept-alive connection and the
// session is plainly polling. The caller holds s.mu.
func (s *Session) pollAnswerableLocked() bool {
	d := s.pollConn
	return d != nil && s.pollWake != nil && d.answerable && !d.pipelined &&
		s.state == stateOpen && s.transport == TransportPolling && !s.upgrading
}

// answerPoll answers the pending GET with what is queued, from the calling
// goroutine: a flusher worker, or a SendDirect caller. The GET's own
// goroutine stays in its read of the connection (directConn.awaitPoll),
// where the client's next request will find it, so an answer costs one
// write and no goroutine switch, and a broadcast's answers leave one after
// another as Node.js writes them. The write does not block: what the socket
// does not take, the GET's goroutine writes with the write deadline.
//
// If the GET cannot be answered this way any more (the session is closing
// or upgrading, the client pipelined a request), its goroutine is woken to
// answer as before.
func (s *Session) answerPoll() {
	s.mu.Lock()
	s.pollQueued = false
	d := s.pollConn
	switch {
	case s.pollWake == nil || len(s.queue) == 0:
		s.mu.Unlock()
		return // woken or answered meanwhile: nothing left to do
	case !s.pollAnswerableLocked() || d.ds.closing.Load():
		s.wakePollLocked()
		s.mu.Unlock()
		return
	}
	batch := s.takeQueueLocked()
	s.pollActive = false
	s.pollWake, s.pollConn = nil, nil
	// awaitPoll waits for answer before it touches the response or the
	// connection's output buffer again.
	d.answer.Lock()
	d.answered = true
	s.mu.Unlock()

	s.writePoll(&d.resp, batch)
	d.out = d.resp.appendResponse(d.out[:0])
	n := d.tryWrite(d.out)
	if n < len(d.out) {
		d.unsent = d.out[n:] // a slow client: awaitPoll's goroutine writes it
		d.interrupt()
	} else if t := d.ds.idleTimeout(); t > 0 {
		// The connection now waits for its next request, as in readHead.
		d.conn.SetReadDeadline(time.Now().Add(t))
	}
	d.answer.Unlock()
	s.recycle(batch)
}

// writePoll writes packets as one polling payload in the session's framing.
func (s *Session) writePoll(w http.ResponseWriter, batch []*Message) {
	var body []byte
	contentType := contentTypeText
	if s.protocol == 4 {
		// A text packet is its type digit and its data, written straight
		// into the body; only the base64 form of a binary message is worth
		// building once and keeping for other recipients.
		n := len(batch)
		for _, m := range batch {
			if m.p.binary {
				n += len(m.pollingV4())
			} else {
				n += 1 + len(m.p.data)
			}
		}
		body = make([]byte, 0, n)
		for i, m := range batch {
			if i > 0 {
				body = append(body, recordSeparator)
			}
			if m.p.binary {
				body = append(body, m.pollingV4()...)
			} else {
				body = appendPacketV4Text(body, m.p)
			}
		}
	} else {
		ps := make([]packet, len(batch))
		binary := false
		for i, m := range batch {
			ps[i] = m.p
			binary = binary || m.p.binary
		}
		if binary && !s.b64 {
			contentType = "application/octet-stream"
			body = appendPayloadV3Binary(nil, ps)
		} else {
			body = appendPayloadV3String(nil, ps)
		}
	}
	h := w.Header()
	if contentType == contentTypeText {
		h["Content-Type"] = headerTextPlain
	} else {
		h["Content-Type"] = []string{contentType}
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h["Cache-Control"] = headerNoStore
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// Header values every poll response has, shared rather than allocated per
// response. A handler chain may replace them (Set) or add to them (Add
// copies: their capacity is 1), but must not change their elements.
var (
	headerTextPlain = []string{contentTypeText}
	headerNoStore   = []string{"no-store"}
	headerTextHTML  = []string{"text/html"}
	headerLength2   = []string{"2"}
)

const contentTypeText = "text/plain; charset=UTF-8"

// handlePollPost reads one POSTed payload and handles its packets in order.
func (s *Session) handlePollPost(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.state != stateOpen || s.transport != TransportPolling && !s.upgrading {
		s.mu.Unlock()
		writeRequestError(w, ErrBadRequest, "")
		return
	}
	if s.postActive {
		s.mu.Unlock()
		s.closeWith(ReasonTransportError, false)
		writeRequestError(w, ErrBadRequest, "")
		return
	}
	s.postActive = true
	// If the session closes while this POST is still reading its body
	// (e.g. a duplicate POST), the read is cut short.
	rc := http.NewResponseController(w)
	s.postAbort = func() { rc.SetReadDeadline(time.Now()) }
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.postActive = false
		s.postAbort = nil
		s.mu.Unlock()
	}()

	binaryBody := strings.HasPrefix(r.Header.Get("Content-Type"), "application/octet-stream")
	if binaryBody && s.protocol == 4 {
		// v4 polling is text only; binary travels as "b"+base64.
		s.closeWith(ReasonTransportError, false)
		writeRequestError(w, ErrBadRequest, "")
		return
	}
	max := s.srv.maxPayload
	if r.ContentLength > max {
		writePayloadTooLarge(w)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	// The body is in: a close from here on (e.g. the client's own close
	// packet) must not cut the connection's next request on keep-alive.
	s.mu.Lock()
	s.postAbort = nil
	s.mu.Unlock()
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writePayloadTooLarge(w)
			return
		}
		s.closeWith(ReasonTransportError, false)
		// Drop the connection without an answer, as the reference does.
		panic(http.ErrAbortHandler)
	}
	var packets []packet
	switch {
	case s.protocol == 4:
		packets, err = decodePayloadV4(body)
	case binaryBody:
		packets, err = decodePayloadV3Binary(body)
	default:
		packets, err = decodePayloadV3String(body)
	}
	for _, p := range packets {
		s.onPacket(p)
	}
	if err != nil {
		s.closeWith(ReasonParseError, false)
		writeRequestError(w, ErrBadRequest, "")
		return
	}
	h := w.Header()
	h["Content-Type"] = headerTextHTML
	h["Content-Length"] = headerLength2
	w.WriteHeader(http.StatusOK)
	w.Write(okBody)
}

var okBody = []byte("ok")

func writePayloadTooLarge(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Connection", "close")
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	io.WriteString(w, "payload too large")
}
