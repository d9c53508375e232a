package engineio

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// received records what a session's OnMessage got.
type received struct {
	mu   sync.Mutex
	msgs []string // "t:<text>" or "b:<hex>"
}

func (r *received) add(d []byte, b bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b {
		r.msgs = append(r.msgs, fmt.Sprintf("b:%x", d))
	} else {
		r.msgs = append(r.msgs, "t:"+string(d))
	}
}

func (r *received) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

// recordingEcho echoes and records every message.
func recordingEcho(rec *received) func(*Session) {
	return func(s *Session) {
		s.OnMessage(func(d []byte, b bool) {
			rec.add(d, b)
			s.Send(NewMessage(d, b))
		})
	}
}

func TestPollingPostAndEcho(t *testing.T) {
	rec := &received{}
	e := newEnv(t, Config{}, recordingEcho(rec))
	sid, _ := e.handshake("")

	r := e.post(sid, "4hello")
	if r.status != 200 || r.body != "ok" {
		t.Fatalf("POST = %d %q, want 200 \"ok\"", r.status, r.body)
	}
	if got := r.header.Get("Content-Type"); got != "text/html" {
		t.Errorf("POST Content-Type = %q, want text/html", got)
	}
	if got := r.header.Get("Content-Length"); got != "2" {
		t.Errorf("POST Content-Length = %q, want 2", got)
	}
	g := e.poll(sid)
	if g.status != 200 || g.body != "4hello" {
		t.Fatalf("GET = %d %q, want 200 \"4hello\"", g.status, g.body)
	}
	if got := g.header.Get("Content-Type"); got != "text/plain; charset=UTF-8" {
		t.Errorf("GET Content-Type = %q", got)
	}
	if got := g.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("GET Cache-Control = %q", got)
	}
	if got := g.header.Get("Content-Length"); got != "6" {
		t.Errorf("GET Content-Length = %q, want 6", got)
	}
	if got := rec.get(); !slices.Equal(got, []string{"t:hello"}) {
		t.Errorf("OnMessage got %q", got)
	}
}

func TestPollingPayloads(t *testing.T) {
	tests := []struct {
		name string
		post string
		want []string // OnMessage calls
	}{
		{"one text", "4hello", []string{"t:hello"}},
		{"several text", "4test1\x1e4test2\x1e4test3", []string{"t:test1", "t:test2", "t:test3"}},
		{"text and binary", "4hello\x1ebAQIDBA==", []string{"t:hello", "b:01020304"}},
		{"empty text message", "4", []string{"t:"}},
		{"empty binary message", "b", []string{"b:"}},
		{"utf8", "4é😀\x1e4€", []string{"t:é😀", "t:€"}},
		{"noop ignored", "6\x1e4x\x1e6", []string{"t:x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &received{}
			e := newEnv(t, Config{}, recordingEcho(rec))
			sid, _ := e.handshake("")
			if r := e.post(sid, tt.post); r.status != 200 || r.body != "ok" {
				t.Fatalf("POST = %d %q", r.status, r.body)
			}
			if got := rec.get(); !slices.Equal(got, tt.want) {
				t.Errorf("OnMessage got %q, want %q", got, tt.want)
			}
			// The echo is the same payload with noops dropped.
			var want []string
			for _, p := range strings.Split(tt.post, "\x1e") {
				if p != "6" {
					want = append(want, p)
				}
			}
			if g := e.poll(sid); g.status != 200 || g.body != strings.Join(want, "\x1e") {
				t.Errorf("GET = %d %q, want %q", g.status, g.body, strings.Join(want, "\x1e"))
			}
		})
	}
}

func TestPollingBinaryFromServer(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	sid, _ := e.handshake("")
	s := e.session(sid)
	if err := s.Send(NewMessage([]byte{1, 2, 3}, true), NewMessage([]byte("x"), false), NewMessage(nil, true)); err != nil {
		t.Fatal(err)
	}
	if g := e.poll(sid); g.body != "bAQID\x1e4x\x1eb" {
		t.Errorf("GET = %q, want %q", g.body, "bAQID\x1e4x\x1eb")
	}
}

// Messages sent while the client is between polls are all in the next poll,
// in order, and many concurrent sends keep their order.
func TestPollingOrder(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	sid, _ := e.handshake("")
	s := e.session(sid)
	const n = 300
	go func() {
		for i := 0; i < n; i++ {
			s.Send(NewMessage([]byte(fmt.Sprint(i)), false))
		}
	}()
	var got []string
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		g := e.poll(sid)
		if g.status != 200 {
			t.Fatalf("GET = %d %q", g.status, g.body)
		}
		got = append(got, strings.Split(g.body, "\x1e")...)
	}
	if len(got) != n {
		t.Fatalf("got %d messages, want %d", len(got), n)
	}
	for i, m := range got {
		if m != fmt.Sprintf("4%d", i) {
			t.Fatalf("message %d = %q, want %q", i, m, fmt.Sprintf("4%d", i))
		}
	}
}

func TestPollingPayloadTooLarge(t *testing.T) {
	e := newEnv(t, Config{MaxPayload: 1000}, nil)
	sid, op := e.handshake("")
	if op.MaxPayload != 1000 {
		t.Fatalf("maxPayload = %d", op.MaxPayload)
	}
	r := e.post(sid, "4"+strings.Repeat("a", 2000))
	if r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("POST 2001 bytes: status %d, want 413", r.status)
	}
	if !e.isOpen(sid) {
		t.Fatal("session closed by a 413")
	}
	// A chunked body (no Content-Length) over the limit is refused too.
	req, _ := http.NewRequest("POST", e.url("EIO=4&transport=polling&sid="+sid),
		io.MultiReader(strings.NewReader("4"), strings.NewReader(strings.Repeat("b", 1500))))
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked POST 1501 bytes: status %d, want 413", resp.StatusCode)
	}
	if !e.isOpen(sid) {
		t.Fatal("session closed by a chunked 413")
	}
	// Exactly MaxPayload is accepted.
	body := "4" + strings.Repeat("c", 999)
	if r := e.post(sid, body); r.status != 200 || r.body != "ok" {
		t.Fatalf("POST 1000 bytes: %d %q, want 200 ok", r.status, r.body)
	}
	if g := e.poll(sid); g.body != body {
		t.Errorf("echo of 1000 bytes: got %d bytes", len(g.body))
	}
}

func TestPollingOctetStreamV4(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	sid, _ := e.handshake("")
	s := e.session(sid)
	r := e.mustRequest("POST", "EIO=4&transport=polling&sid="+sid, "\x01\x04\xff\x04\x01\x02\x03",
		"Content-Type", "application/octet-stream")
	if r.status != 400 {
		t.Errorf("POST octet-stream: status %d, want 400", r.status)
	}
	if got := waitClosed(t, s); got != ReasonTransportError {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonTransportError)
	}
	wantError(t, e.poll(sid), 400, ErrSessionIDUnknown, "Session ID unknown")
}

func TestPollingInvalidPacket(t *testing.T) {
	rec := &received{}
	e := newEnv(t, Config{}, recordingEcho(rec))
	sid, _ := e.handshake("")
	s := e.session(sid)
	r := e.post(sid, "4one\x1eabc\x1e4two")
	if r.status != 400 && r.status != 200 {
		t.Errorf("POST abc: status %d, want 400 (or 200 like the reference)", r.status)
	}
	if got := waitClosed(t, s); got != ReasonParseError {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonParseError)
	}
	// Decoding stops at the bad packet: the one before it was delivered.
	if got := rec.get(); !slices.Equal(got, []string{"t:one"}) {
		t.Errorf("OnMessage got %q, want [t:one]", got)
	}
	wantError(t, e.poll(sid), 400, ErrSessionIDUnknown, "Session ID unknown")
	e.wantCloseReasons(t, sid, ReasonParseError)
}

func TestPollingInvalidPayloads(t *testing.T) {
	for _, body := range []string{"abc", "7", "b!!!", "4a\x1e", "\x1e4a", "bAQ=D"} {
		t.Run(fmt.Sprintf("%q", body), func(t *testing.T) {
			e := newEnv(t, Config{}, nil)
			sid, _ := e.handshake("")
			s := e.session(sid)
			e.post(sid, body)
			if got := waitClosed(t, s); got != ReasonParseError {
				t.Errorf("CloseReason() = %q, want %q", got, ReasonParseError)
			}
		})
	}
}

func TestPollingDuplicateGet(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	sid, _ := e.handshake("")
	s := e.session(sid)
	first := e.pollAsync("EIO=4&transport=polling&sid=" + sid)
	eventually(t, 2*time.Second, func() bool { return pollPending(s) })

	second := e.poll(sid)
	if second.status != 400 {
		t.Errorf("second GET: status %d, want 400 (body %q)", second.status, second.body)
	}
	r := waitResponse(t, first)
	if r.status != 200 || r.body != "1" {
		t.Errorf("pending GET = %d %q, want 200 \"1\"", r.status, r.body)
	}
	if got := waitClosed(t, s); got != ReasonTransportError {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonTransportError)
	}
	wantError(t, e.poll(sid), 400, ErrSessionIDUnknown, "Session ID unknown")
	e.wantCloseReasons(t, sid, ReasonTransportError)
}

// startStalledPost sends a POST whose body never completes, so the server
// is still inside the handler for it.
func startStalledPost(t *testing.T, e *testEnv, sid string) (net.Conn, *bytesReader) {
	t.Helper()
	conn, br := e.rawConn()
	fmt.Fprintf(conn, "POST %s?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: x\r\n"+
		"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 100\r\n\r\n4partial", e.path, sid)
	return conn, &bytesReader{conn: conn, br: br}
}

type bytesReader struct {
	conn interface {
		SetReadDeadline(time.Time) error
	}
	br io.Reader
}

// readAll reads until EOF, error or timeout and reports whether the
// connection ended (EOF) and what it got.
func (b *bytesReader) readAll(timeout time.Duration) (ended bool, data []byte) {
	b.conn.SetReadDeadline(time.Now().Add(timeout))
	var buf bytes.Buffer
	_, err := io.Copy(&buf, b.br)
	if err == nil {
		return true, buf.Bytes()
	}
	if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
		return false, buf.Bytes()
	}
	return true, buf.Bytes()
}

func TestPollingDuplicatePost(t *testing.T) {
	rec := &received{}
	e := newEnv(t, Config{}, recordingEcho(rec))
	sid, _ := e.handshake("")
	s := e.session(sid)
	conn, first := startStalledPost(t, e, sid)
	defer conn.Close()
	eventually(t, 2*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.postActive
	})

	second := e.post(sid, "4second")
	if second.status != 400 {
		t.Errorf("second POST: status %d, want 400 (body %q)", second.status, second.body)
	}
	if got := waitClosed(t, s); got != ReasonTransportError {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonTransportError)
	}
	wantError(t, e.poll(sid), 400, ErrSessionIDUnknown, "Session ID unknown")
	if got := rec.get(); len(got) != 0 {
		t.Errorf("OnMessage got %q, want nothing", got)
	}

	// The reference destroys the first POST's connection (protocol notes
	// §1.5); a server that keeps waiting for its body holds the handler
	// until the client gives up.
	t.Run("first POST connection ended", func(t *testing.T) {
		ended, data := first.readAll(2 * time.Second)
		if !ended && len(data) == 0 {
			t.Errorf("first POST: connection still open and unanswered 2s after the duplicate closed the session")
		}
	})
}

func TestPollingClientClose(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	sid, _ := e.handshake("")
	s := e.session(sid)
	pending := e.pollAsync("EIO=4&transport=polling&sid=" + sid)
	eventually(t, 2*time.Second, func() bool { return pollPending(s) })

	if r := e.post(sid, "1"); r.status != 200 || r.body != "ok" {
		t.Errorf("POST 1 = %d %q, want 200 ok", r.status, r.body)
	}
	if r := waitResponse(t, pending); r.status != 200 || r.body != "6" {
		t.Errorf("pending GET = %d %q, want 200 \"6\"", r.status, r.body)
	}
	if got := waitClosed(t, s); got != ReasonTransportClose {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonTransportClose)
	}
	wantError(t, e.poll(sid), 400, ErrSessionIDUnknown, "Session ID unknown")
	e.wantCloseReasons(t, sid, ReasonTransportClose)
}

func TestPollingClientCloseNoPendingGet(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	sid, _ := e.handshake("")
	if r := e.post(sid, "1"); r.status != 200 || r.body != "ok" {
		t.Errorf("POST 1 = %d %q, want 200 ok", r.status, r.body)
	}
	if got := e.session(sid).CloseReason(); got != ReasonTransportClose {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonTransportClose)
	}
	// By design (session.go onPacket, packetClose) the session lingers so a
	// GET racing the close POST gets a noop; the reference answers 400 at
	// once. Either way the session is gone after that one poll.
	if r := e.poll(sid); r.status != 200 || r.body != "6" {
		t.Errorf("GET after POST 1 = %d %q, want 200 \"6\"", r.status, r.body)
	}
	wantError(t, e.poll(sid), 400, ErrSessionIDUnknown, "Session ID unknown")
}

func TestPollingServerCloseWithPendingGet(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	sid, _ := e.handshake("")
	s := e.session(sid)
	pending := e.pollAsync("EIO=4&transport=polling&sid=" + sid)
	eventually(t, 2*time.Second, func() bool { return pollPending(s) })
	s.Close()
	if r := waitResponse(t, pending); r.status != 200 || r.body != "1" {
		t.Errorf("pending GET = %d %q, want 200 \"1\"", r.status, r.body)
	}
	if got := s.CloseReason(); got != ReasonForcedClose {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonForcedClose)
	}
	s.Close() // idempotent
	if got := e.closeReasons(sid); !slices.Equal(got, []CloseReason{ReasonForcedClose}) {
		t.Errorf("OnClose calls = %q, want one forced close", got)
	}
	if err := s.Send(NewMessage([]byte("late"), false)); err != ErrSessionClosed {
		t.Errorf("Send after Close = %v, want ErrSessionClosed", err)
	}
	wantError(t, e.poll(sid), 400, ErrSessionIDUnknown, "Session ID unknown")
}

// Send then Close with a GET pending: whatever the interleaving, the client
// sees the queued messages then "1", and nothing after.
func TestPollingServerCloseFlushesQueue(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	sid, _ := e.handshake("")
	s := e.session(sid)
	pending := e.pollAsync("EIO=4&transport=polling&sid=" + sid)
	eventually(t, 2*time.Second, func() bool { return pollPending(s) })
	s.Send(NewMessage([]byte("a"), false))
	s.Send(NewMessage([]byte("b"), false))
	s.Close()
	r := waitResponse(t, pending)
	got := strings.Split(r.body, "\x1e")
	for got[len(got)-1] != "1" {
		r = e.poll(sid)
		if r.status != 200 {
			t.Fatalf("poll after %q: %d %q", got, r.status, r.body)
		}
		got = append(got, strings.Split(r.body, "\x1e")...)
	}
	if want := []string{"4a", "4b", "1"}; !slices.Equal(got, want) {
		t.Errorf("client saw %q, want %q", got, want)
	}
	wantError(t, e.poll(sid), 400, ErrSessionIDUnknown, "Session ID unknown")
}

func TestPollingServerCloseNoPendingGet(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	sid, _ := e.handshake("")
	s := e.session(sid)
	s.Send(NewMessage([]byte("a"), false), NewMessage([]byte{7}, true))
	s.Close()
	select {
	case <-s.Done():
	default:
		t.Error("Done() not closed after Close")
	}
	if got := s.CloseReason(); got != ReasonForcedClose {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonForcedClose)
	}
	if got := e.closeReasons(sid); !slices.Equal(got, []CloseReason{ReasonForcedClose}) {
		t.Errorf("OnClose calls = %q", got)
	}
	if err := s.Send(NewMessage([]byte("late"), false)); err != ErrSessionClosed {
		t.Errorf("Send after Close = %v, want ErrSessionClosed", err)
	}
	// The queued packets first, the close packet in a poll of its own (the
	// official client would act on a close before packets of the same
	// payload), then the session is gone.
	if r := e.poll(sid); r.status != 200 || r.body != "4a\x1ebBw==" {
		t.Errorf("next GET = %d %q, want 200 %q", r.status, r.body, "4a\x1ebBw==")
	}
	if r := e.poll(sid); r.status != 200 || r.body != "1" {
		t.Errorf("following GET = %d %q, want 200 %q", r.status, r.body, "1")
	}
	wantError(t, e.poll(sid), 400, ErrSessionIDUnknown, "Session ID unknown")
	if e.srv.Count() != 0 {
		t.Errorf("Count() = %d, want 0", e.srv.Count())
	}
}

// A closed session that is never polled again is dropped after
// pingInterval+pingTimeout.
func TestPollingServerCloseLingerExpires(t *testing.T) {
	e := newEnv(t, Config{PingInterval: 30 * time.Millisecond, PingTimeout: 30 * time.Millisecond}, nil)
	sid, _ := e.handshake("")
	e.session(sid).Close()
	if e.srv.Session(sid) == nil {
		t.Fatal("session dropped at once; the next poll could not get its close packet")
	}
	eventually(t, 2*time.Second, func() bool { return e.srv.Session(sid) == nil })
	wantError(t, e.poll(sid), 400, ErrSessionIDUnknown, "Session ID unknown")
}

func TestPollingSlowClient(t *testing.T) {
	e := newEnv(t, Config{MaxBufferedBytes: 100}, nil)
	sid, _ := e.handshake("")
	s := e.session(sid)
	msg := NewMessage(bytes.Repeat([]byte("x"), 59), false) // counts 60
	if err := s.Send(msg); err != nil {
		t.Fatalf("first Send: %v", err)
	}
	// A poll drains the queue, so the bound is per backlog, not per session.
	if r := e.poll(sid); r.body != "4"+strings.Repeat("x", 59) {
		t.Fatalf("GET = %q", r.body)
	}
	if err := s.Send(msg); err != nil {
		t.Fatalf("Send after drain: %v", err)
	}
	if err := s.Send(msg); err != ErrSessionClosed {
		t.Fatalf("Send over MaxBufferedBytes = %v, want ErrSessionClosed", err)
	}
	if got := s.CloseReason(); got != ReasonSlowClient {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonSlowClient)
	}
	if got := e.closeReasons(sid); !slices.Equal(got, []CloseReason{ReasonSlowClient}) {
		t.Errorf("OnClose calls = %q, want [%q]", got, ReasonSlowClient)
	}
	wantError(t, e.poll(sid), 400, ErrSessionIDUnknown, "Session ID unknown")
}

func TestPollingUnboundedBuffer(t *testing.T) {
	e := newEnv(t, Config{MaxBufferedBytes: -1}, nil)
	sid, _ := e.handshake("")
	s := e.session(sid)
	big := NewMessage(bytes.Repeat([]byte("y"), 1<<20), false)
	for i := 0; i < 10; i++ { // 10 MiB > the 8 MiB default
		if err := s.Send(big); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	if r := e.poll(sid); r.status != 200 || len(r.body) != 10*(1<<20+1)+9 {
		t.Errorf("GET = %d, %d bytes", r.status, len(r.body))
	}
}

func TestPollingClientAbortsGet(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	sid, _ := e.handshake("")
	s := e.session(sid)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan response, 1)
	go func() { done <- e.requestCtx(ctx, "GET", "EIO=4&transport=polling&sid="+sid, "") }()
	eventually(t, 2*time.Second, func() bool { return pollPending(s) })
	cancel()
	<-done
	if got := waitClosed(t, s); got != ReasonTransportError {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonTransportError)
	}
}

func TestTrySendPolling(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	sid, _ := e.handshake("")
	s := e.session(sid)
	if s.TrySend(NewMessage([]byte("dropped"), false)) {
		t.Error("TrySend with no GET pending = true, want false")
	}
	pending := e.pollAsync("EIO=4&transport=polling&sid=" + sid)
	eventually(t, 2*time.Second, func() bool { return pollPending(s) })
	if !s.TrySend(NewMessage([]byte("kept"), false)) {
		t.Error("TrySend with a GET pending = false, want true")
	}
	if r := waitResponse(t, pending); r.body != "4kept" {
		t.Errorf("GET = %q, want 4kept", r.body)
	}
}
