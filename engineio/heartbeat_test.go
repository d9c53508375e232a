package engineio

import (
	"testing"
	"time"
)

var fastHeartbeat = Config{PingInterval: 50 * time.Millisecond, PingTimeout: 50 * time.Millisecond}

func TestHeartbeatPolling(t *testing.T) {
	e := newEnv(t, fastHeartbeat, nil)
	start := time.Now()
	sid, op := e.handshake("")
	if op.PingInterval != 50 || op.PingTimeout != 50 {
		t.Fatalf("open = %s", op.raw)
	}
	for round := 0; round < 4; round++ {
		r := e.poll(sid)
		if r.status != 200 || r.body != "2" {
			t.Fatalf("round %d: GET = %d %q, want 200 \"2\"", round, r.status, r.body)
		}
		if round == 0 {
			if d := time.Since(start); d < 40*time.Millisecond {
				t.Errorf("first ping after %v, want about pingInterval (50ms)", d)
			}
		}
		if r := e.post(sid, "3"); r.status != 200 || r.body != "ok" {
			t.Fatalf("round %d: POST 3 = %d %q (after %v, reason %q)", round, r.status, r.body, time.Since(start), e.session(sid).CloseReason())
		}
	}
	if !e.isOpen(sid) {
		t.Fatalf("session closed although every ping was answered (reason %q)", e.session(sid).CloseReason())
	}
	// Stop answering.
	s := e.session(sid)
	stop := time.Now()
	if got := waitClosed(t, s); got != ReasonPingTimeout {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonPingTimeout)
	}
	if d := time.Since(stop); d < 80*time.Millisecond {
		t.Errorf("closed %v after the last pong, want about pingInterval+pingTimeout (100ms)", d)
	}
	wantError(t, e.poll(sid), 400, ErrSessionIDUnknown, "Session ID unknown")
	e.wantCloseReasons(t, sid, ReasonPingTimeout)
}

// The ping timeout runs from when the ping is queued, so a client that
// does not poll at all times out too (engine.io suite "closes the session
// upon ping timeout").
func TestHeartbeatPollingNoPoll(t *testing.T) {
	e := newEnv(t, fastHeartbeat, nil)
	start := time.Now()
	sid, _ := e.handshake("")
	s := e.session(sid)
	if got := waitClosed(t, s); got != ReasonPingTimeout {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonPingTimeout)
	}
	if d := time.Since(start); d < 90*time.Millisecond || d > 2*time.Second {
		t.Errorf("closed after %v, want about 100ms", d)
	}
	wantError(t, e.poll(sid), 400, ErrSessionIDUnknown, "Session ID unknown")
}

// A ping that is not answered although the client keeps polling.
func TestHeartbeatPollingUnanswered(t *testing.T) {
	e := newEnv(t, fastHeartbeat, nil)
	sid, _ := e.handshake("")
	s := e.session(sid)
	if r := e.poll(sid); r.body != "2" {
		t.Fatalf("GET = %q, want 2", r.body)
	}
	// A pending GET is answered with "1" when the session times out.
	r := e.poll(sid)
	if r.status != 200 || r.body != "1" {
		t.Errorf("GET after the unanswered ping = %d %q, want 200 \"1\"", r.status, r.body)
	}
	if got := waitClosed(t, s); got != ReasonPingTimeout {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonPingTimeout)
	}
}

func TestHeartbeatWebSocket(t *testing.T) {
	e := newEnv(t, fastHeartbeat, nil)
	c := e.dialWS("EIO=4&transport=websocket")
	op := c.readOpen()
	for round := 0; round < 4; round++ {
		c.expectText("2")
		c.sendText("3")
	}
	s := e.session(op.SID)
	if !e.isOpen(op.SID) {
		t.Fatalf("session closed although every ping was answered (reason %q)", s.CloseReason())
	}
	// Messages still flow between pings.
	c.sendText("4still here")
	for {
		_, p := c.next()
		if string(p) == "2" {
			c.sendText("3")
			continue
		}
		if string(p) != "4still here" {
			t.Fatalf("got %q, want echo", p)
		}
		break
	}
	// Stop answering: the connection ends.
	c.expectText("2")
	c.expectEnd(2 * time.Second)
	if got := waitClosed(t, s); got != ReasonPingTimeout {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonPingTimeout)
	}
}

func TestClientPingV4ClosesPolling(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	sid, _ := e.handshake("")
	s := e.session(sid)
	e.post(sid, "2")
	if got := waitClosed(t, s); got != ReasonTransportError {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonTransportError)
	}
	wantError(t, e.poll(sid), 400, ErrSessionIDUnknown, "Session ID unknown")
}

func TestClientPingV4ClosesWebSocket(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	c := e.dialWS("EIO=4&transport=websocket")
	op := c.readOpen()
	c.sendText("2")
	c.expectEnd(2 * time.Second)
	if got := waitClosed(t, e.session(op.SID)); got != ReasonTransportError {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonTransportError)
	}
}

// An unsolicited pong is harmless in v4.
func TestUnsolicitedPongV4(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	sid, _ := e.handshake("")
	if r := e.post(sid, "3\x1e4a"); r.body != "ok" {
		t.Fatalf("POST = %q", r.body)
	}
	if r := e.poll(sid); r.body != "4a" {
		t.Errorf("GET = %q, want 4a", r.body)
	}
}

func v3Query(sid string) string { return "EIO=3&transport=polling&sid=" + sid }

func TestHeartbeatV3Polling(t *testing.T) {
	e := newEnv(t, Config{AllowEIO3: true, PingInterval: 50 * time.Millisecond, PingTimeout: 50 * time.Millisecond}, nil)
	sid, op := e.handshake("EIO=3&transport=polling")
	if op.PingInterval != 50 || op.PingTimeout != 50 || op.MaxPayload != 1000000 {
		t.Fatalf("v3 open = %s", op.raw)
	}
	s := e.session(sid)
	// The client pings for 300ms, longer than pingInterval+pingTimeout.
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; {
		if r := e.mustRequest("POST", v3Query(sid), "1:2", "Content-Type", "text/plain;charset=UTF-8"); r.status != 200 || r.body != "ok" {
			t.Fatalf("POST 1:2 = %d %q", r.status, r.body)
		}
		r := e.mustRequest("GET", v3Query(sid), "")
		if r.status != 200 || r.body != "1:3" {
			t.Fatalf("GET = %d %q, want 200 \"1:3\"", r.status, r.body)
		}
		if got := r.header.Get("Content-Type"); got != "text/plain; charset=UTF-8" {
			t.Errorf("v3 GET Content-Type = %q", got)
		}
		time.Sleep(20 * time.Millisecond) // the client's ping period
	}
	if !e.isOpen(sid) {
		t.Fatalf("v3 session closed although the client pinged (reason %q)", s.CloseReason())
	}
	// Probe-style ping data is echoed.
	e.mustRequest("POST", v3Query(sid), "6:2probe")
	if r := e.mustRequest("GET", v3Query(sid), ""); r.body != "6:3probe" {
		t.Errorf("GET = %q, want 6:3probe", r.body)
	}
	// The server never pings a v3 client: with no client ping the session
	// times out after pingInterval+pingTimeout.
	stop := time.Now()
	if got := waitClosed(t, s); got != ReasonPingTimeout {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonPingTimeout)
	}
	if d := time.Since(stop); d < 80*time.Millisecond {
		t.Errorf("v3 session closed %v after the last ping, want about 100ms", d)
	}
	wantError(t, e.mustRequest("GET", v3Query(sid), ""), 400, ErrSessionIDUnknown, "Session ID unknown")
}

func TestHeartbeatV3NoServerPing(t *testing.T) {
	e := newEnv(t, Config{AllowEIO3: true, PingInterval: 30 * time.Millisecond, PingTimeout: 300 * time.Millisecond}, nil)
	sid, _ := e.handshake("EIO=3&transport=polling")
	s := e.session(sid)
	s.Send(NewMessage([]byte("marker"), false))
	// Several ping intervals pass; only the message is queued, no ping.
	time.Sleep(120 * time.Millisecond)
	if r := e.mustRequest("GET", v3Query(sid), ""); r.body != "7:4marker" {
		t.Errorf("GET = %q, want only 7:4marker (no server ping in v3)", r.body)
	}
}

func TestClientPongV3Closes(t *testing.T) {
	e := newEnv(t, Config{AllowEIO3: true}, nil)
	sid, _ := e.handshake("EIO=3&transport=polling")
	e.mustRequest("POST", v3Query(sid), "1:3")
	if got := waitClosed(t, e.session(sid)); got != ReasonTransportError {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonTransportError)
	}
}

func TestHeartbeatV3WebSocket(t *testing.T) {
	e := newEnv(t, Config{AllowEIO3: true, PingInterval: 50 * time.Millisecond, PingTimeout: 50 * time.Millisecond}, nil)
	c := e.dialWS("EIO=3&transport=websocket")
	op := c.readOpen()
	for i := 0; i < 5; i++ {
		c.sendText("2")
		c.expectText("3")
		time.Sleep(20 * time.Millisecond)
	}
	c.sendText("2probe")
	c.expectText("3probe")
	s := e.session(op.SID)
	if !e.isOpen(op.SID) {
		t.Fatalf("v3 session closed (reason %q)", s.CloseReason())
	}
	c.expectEnd(2 * time.Second)
	if got := waitClosed(t, s); got != ReasonPingTimeout {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonPingTimeout)
	}
}
