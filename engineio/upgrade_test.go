package engineio

import (
	"testing"
	"time"
)

// probe opens an upgrade WebSocket for sid and completes "2probe"/"3probe".
func (e *testEnv) probe(sid string) *wsClient {
	e.t.Helper()
	c := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
	c.sendText("2probe")
	c.expectText("3probe")
	return c
}

// upgrade moves a polling session to a WebSocket.
func (e *testEnv) upgrade(sid string) *wsClient {
	e.t.Helper()
	c := e.probe(sid)
	c.sendText("5")
	s := e.session(sid)
	eventually(e.t, 2*time.Second, func() bool { return s.Transport() == TransportWebSocket })
	return c
}

func TestUpgrade(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	sid, _ := e.handshake("")
	s := e.session(sid)
	pending := e.pollAsync("EIO=4&transport=polling&sid=" + sid)
	eventually(t, 2*time.Second, func() bool { return pollPending(s) })

	c := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
	if s.Transport() != TransportPolling {
		t.Errorf("Transport() = %q before the probe, want polling", s.Transport())
	}
	c.sendText("2probe")
	c.expectText("3probe")
	// The pending GET is released with a noop, and so is a new one.
	if r := waitResponse(t, pending); r.status != 200 || r.body != "6" {
		t.Errorf("pending GET = %d %q, want 200 \"6\"", r.status, r.body)
	}
	if r := e.poll(sid); r.status != 200 || r.body != "6" {
		t.Errorf("GET during the upgrade = %d %q, want 200 \"6\"", r.status, r.body)
	}
	if s.Transport() != TransportPolling {
		t.Errorf("Transport() = %q before \"5\", want polling", s.Transport())
	}
	c.sendText("5")
	eventually(t, 2*time.Second, func() bool { return s.Transport() == TransportWebSocket })

	c.sendText("4hello")
	c.expectText("4hello")
	c.sendBinary([]byte{1, 2, 3})
	c.expectBinary([]byte{1, 2, 3})

	// Polling requests with that sid are refused from now on.
	wantError(t, e.poll(sid), 400, ErrBadRequest, "Bad request")
	wantError(t, e.post(sid, "4x"), 400, ErrBadRequest, "Bad request")
	if s.CloseReason() != "" {
		t.Errorf("session closed: %q", s.CloseReason())
	}
	c.sendText("4still")
	c.expectText("4still")
}

func TestUpgradeFlushesQueueInOrder(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	sid, _ := e.handshake("")
	s := e.session(sid)
	// Queued before the probe, never polled.
	s.Send(NewMessage([]byte("before"), false))
	c := e.probe(sid)
	// Queued during the upgrade, from the server and by a last POST.
	s.Send(NewMessage([]byte("m1"), false), NewMessage([]byte{0xfe}, true))
	if r := e.post(sid, "4m2\x1ebAQ=="); r.status != 200 || r.body != "ok" {
		t.Errorf("POST during the upgrade = %d %q, want 200 ok", r.status, r.body)
	}
	s.Send(NewMessage([]byte("m3"), false))
	c.sendText("5")
	c.expectText("4before")
	c.expectText("4m1")
	c.expectBinary([]byte{0xfe})
	c.expectText("4m2")
	c.expectBinary([]byte{1})
	c.expectText("4m3")
	s.Send(NewMessage([]byte("after"), false))
	c.expectText("4after")
}

func TestUpgradeSecondWebSocket(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	sid, _ := e.handshake("")
	c := e.upgrade(sid)
	c2 := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
	c2.expectEnd(2 * time.Second)
	c.sendText("4first")
	c.expectText("4first")
	if e.session(sid).CloseReason() != "" {
		t.Errorf("session closed: %q", e.session(sid).CloseReason())
	}
}

// Only one upgrade at a time: a second probe while the first is running is
// closed, and the first one completes.
func TestUpgradeConcurrentProbe(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	sid, _ := e.handshake("")
	c := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
	s := e.session(sid)
	eventually(t, 2*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.probe != nil
	})
	c2 := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
	c2.expectEnd(2 * time.Second)
	c.sendText("2probe")
	c.expectText("3probe")
	c.sendText("5")
	c.sendText("4via ws")
	c.expectText("4via ws")
	if s.Transport() != TransportWebSocket {
		t.Errorf("Transport() = %q, want websocket", s.Transport())
	}
}

func TestUpgradeAborted(t *testing.T) {
	tests := []struct {
		name   string
		frames func(c *wsClient)
	}{
		{"message instead of probe", func(c *wsClient) { c.sendText("4hello") }},
		{"upgrade without probe", func(c *wsClient) { c.sendText("5") }},
		{"wrong probe data", func(c *wsClient) { c.sendText("2nope") }},
		{"message instead of upgrade", func(c *wsClient) {
			c.sendText("2probe")
			c.expectText("3probe")
			c.sendText("4hello")
		}},
		{"invalid packet", func(c *wsClient) {
			c.sendText("2probe")
			c.expectText("3probe")
			c.sendText("abc")
		}},
		{"client closes", func(c *wsClient) {
			c.sendText("2probe")
			c.expectText("3probe")
			c.conn.Close()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &received{}
			e := newEnv(t, Config{}, recordingEcho(rec))
			sid, _ := e.handshake("")
			s := e.session(sid)
			c := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
			tt.frames(c)
			c.expectEnd(2 * time.Second)
			eventually(t, 2*time.Second, func() bool {
				s.mu.Lock()
				defer s.mu.Unlock()
				return s.probe == nil && !s.upgrading
			})
			if got := s.Transport(); got != TransportPolling {
				t.Errorf("Transport() = %q, want polling", got)
			}
			if s.CloseReason() != "" {
				t.Fatalf("session closed by a failed probe: %q", s.CloseReason())
			}
			// Polling keeps working, with a long-poll that waits again.
			pending := e.pollAsync("EIO=4&transport=polling&sid=" + sid)
			eventually(t, 2*time.Second, func() bool { return pollPending(s) })
			if r := e.post(sid, "4on polling"); r.body != "ok" {
				t.Fatalf("POST = %d %q", r.status, r.body)
			}
			if r := waitResponse(t, pending); r.status != 200 || r.body != "4on polling" {
				t.Errorf("GET = %d %q, want 200 \"4on polling\"", r.status, r.body)
			}
			if got := rec.get(); len(got) != 1 || got[0] != "t:on polling" {
				t.Errorf("OnMessage got %q; the probe's packets must not be delivered", got)
			}
			// A later upgrade succeeds.
			c2 := e.upgrade(sid)
			c2.sendText("4ws")
			c2.expectText("4ws")
		})
	}
}

func TestUpgradeTimeout(t *testing.T) {
	for _, answered := range []bool{false, true} {
		name := "no probe"
		if answered {
			name = "probe answered"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, Config{UpgradeTimeout: 100 * time.Millisecond}, nil)
			sid, _ := e.handshake("")
			s := e.session(sid)
			start := time.Now()
			c := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
			if answered {
				c.sendText("2probe")
				c.expectText("3probe")
			}
			c.expectEnd(2 * time.Second)
			if d := time.Since(start); d < 90*time.Millisecond {
				t.Errorf("probe closed after %v, want about UpgradeTimeout (100ms)", d)
			}
			if got := s.Transport(); got != TransportPolling || s.CloseReason() != "" {
				t.Errorf("Transport() = %q, CloseReason() = %q; want an open polling session", got, s.CloseReason())
			}
			if r := e.post(sid, "4x"); r.body != "ok" {
				t.Fatalf("POST = %d %q", r.status, r.body)
			}
			if r := e.poll(sid); r.body != "4x" {
				t.Errorf("GET = %q, want 4x", r.body)
			}
		})
	}
}

func TestUpgradeDisabled(t *testing.T) {
	e := newEnv(t, Config{DisableUpgrades: true}, nil)
	sid, _ := e.handshake("")
	c := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
	c.expectEnd(2 * time.Second)
	s := e.session(sid)
	if s.Transport() != TransportPolling || s.CloseReason() != "" {
		t.Errorf("Transport() = %q, CloseReason() = %q", s.Transport(), s.CloseReason())
	}
	e.post(sid, "4x")
	if r := e.poll(sid); r.body != "4x" {
		t.Errorf("GET = %q, want 4x", r.body)
	}
}

func TestUpgradeHeartbeatContinues(t *testing.T) {
	e := newEnv(t, Config{PingInterval: 80 * time.Millisecond, PingTimeout: 80 * time.Millisecond}, nil)
	sid, _ := e.handshake("")
	c := e.upgrade(sid)
	for i := 0; i < 3; i++ {
		c.expectText("2")
		c.sendText("3")
	}
	s := e.session(sid)
	if s.CloseReason() != "" {
		t.Fatalf("session closed: %q", s.CloseReason())
	}
	c.expectText("2")
	c.expectEnd(2 * time.Second)
	if got := waitClosed(t, s); got != ReasonPingTimeout {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonPingTimeout)
	}
}

func TestUpgradeCloseDuringProbe(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	sid, _ := e.handshake("")
	s := e.session(sid)
	c := e.probe(sid)
	s.Close()
	c.expectEnd(2 * time.Second)
	if got := s.CloseReason(); got != ReasonForcedClose {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonForcedClose)
	}
}

func TestUpgradeServerCloseAfterUpgrade(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	sid, _ := e.handshake("")
	s := e.session(sid)
	c := e.upgrade(sid)
	s.Send(NewMessage([]byte("bye"), false))
	s.Close()
	c.expectText("4bye")
	c.expectCloseFrame(1000)
	wantError(t, e.poll(sid), 400, ErrSessionIDUnknown, "Session ID unknown")
}

func TestUpgradeV3(t *testing.T) {
	e := newEnv(t, Config{AllowEIO3: true}, nil)
	sid, op := e.handshake("EIO=3&transport=polling")
	if len(op.Upgrades) != 1 || op.Upgrades[0] != "websocket" {
		t.Fatalf("v3 upgrades = %q", op.Upgrades)
	}
	s := e.session(sid)
	pending := e.pollAsync(v3Query(sid))
	eventually(t, 2*time.Second, func() bool { return pollPending(s) })
	c := e.dialWS("EIO=3&transport=websocket&sid=" + sid)
	c.sendText("2probe")
	c.expectText("3probe")
	if r := waitResponse(t, pending); r.body != "1:6" {
		t.Errorf("pending v3 GET = %q, want 1:6", r.body)
	}
	s.Send(NewMessage([]byte{7}, true))
	c.sendText("5")
	c.expectBinary([]byte{0x04, 7})
	c.sendBinary([]byte{0x04, 1, 2})
	c.expectBinary([]byte{0x04, 1, 2})
	// A v3 client pings over the WebSocket now.
	c.sendText("2")
	c.expectText("3")
}
