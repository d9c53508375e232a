package engineio

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// waitNoModuleGoroutines waits until no goroutine runs this package's code.
func waitNoModuleGoroutines(t *testing.T, timeout time.Duration) {
	t.Helper()
	if !waitFor(timeout, func() bool { return len(sessionGoroutines()) == 0 }) {
		g := sessionGoroutines()
		t.Fatalf("%d goroutine(s) still running engineio code:\n\n%s", len(g), strings.Join(g, "\n\n"))
	}
}

// The detector itself: an open WebSocket session has a reader goroutine, or
// (Linux, idle) the poller loop that will start one.
func TestLeakDetectorSeesReader(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	waitNoModuleGoroutines(t, 5*time.Second)
	c := e.dialWS("EIO=4&transport=websocket")
	op := c.readOpen()
	found := waitFor(2*time.Second, func() bool {
		for _, g := range sessionGoroutines() {
			if strings.Contains(g, pkgPrefix+"(*wsConn).readLoop") || strings.Contains(g, pkgPrefix+"(*netPoller).loop") {
				return true
			}
		}
		return false
	})
	if !found {
		t.Fatalf("no readLoop goroutine found for an open WebSocket session:\n%s", strings.Join(sessionGoroutines(), "\n\n"))
	}
	c.conn.Close()
	waitClosed(t, e.session(op.SID))
	waitNoModuleGoroutines(t, 5*time.Second)
}

// Many sessions on every transport, closed from both sides, leave no
// goroutine behind, before and without Shutdown.
func TestNoGoroutineLeaks(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	waitNoModuleGoroutines(t, 5*time.Second)
	const n = 50

	type wsSess struct {
		c *wsClient
		s *Session
	}
	var wss []wsSess
	for i := 0; i < n; i++ {
		c := e.dialWS("EIO=4&transport=websocket")
		op := c.readOpen()
		wss = append(wss, wsSess{c, e.session(op.SID)})
	}
	var polls []string
	for i := 0; i < n; i++ {
		sid, _ := e.handshake("")
		polls = append(polls, sid)
	}
	// Ten of the polling sessions are upgraded, five more hold a probe.
	var upgraded []*wsClient
	for i := 0; i < 10; i++ {
		upgraded = append(upgraded, e.upgrade(polls[i]))
	}
	var probes []*wsClient
	for i := 10; i < 15; i++ {
		probes = append(probes, e.probe(polls[i]))
	}
	// Pending GETs on twenty sessions.
	pending := make(map[string]<-chan response)
	for i := 15; i < 35; i++ {
		sid := polls[i]
		pending[sid] = e.pollAsync("EIO=4&transport=polling&sid=" + sid)
		s := e.session(sid)
		eventually(t, 2*time.Second, func() bool { return pollPending(s) })
	}
	if got := e.srv.Count(); got != 2*n {
		t.Fatalf("Count() = %d, want %d", got, 2*n)
	}
	if len(sessionGoroutines()) == 0 {
		t.Fatal("no engineio goroutines with 100 open sessions: the leak check sees nothing")
	}

	// Close everything, half from each side, concurrently.
	var wg sync.WaitGroup
	for i, w := range wss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch i % 3 {
			case 0:
				w.s.Close()
			case 1:
				f := ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(1000, "")))
				ws.WriteFrame(w.c.conn, f)
			default:
				w.c.conn.Close()
			}
		}()
	}
	for i, c := range upgraded {
		if i%2 == 0 {
			e.session(polls[i]).Close()
		} else {
			c.conn.Close()
		}
	}
	for i, c := range probes {
		sid := polls[10+i]
		if i%2 == 0 {
			e.session(sid).Close()
		} else {
			// The probe goes away, then the client closes over polling.
			c.conn.Close()
			s := e.session(sid)
			eventually(t, 2*time.Second, func() bool {
				s.mu.Lock()
				defer s.mu.Unlock()
				return s.probe == nil
			})
			e.post(sid, "1")
		}
	}
	for i := 15; i < n; i++ {
		sid := polls[i]
		if i%2 == 0 {
			e.session(sid).Close()
		} else {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.request("POST", "EIO=4&transport=polling&sid="+sid, "1", "Content-Type", "text/plain")
			}()
		}
	}
	wg.Wait()
	for sid, ch := range pending {
		r := waitResponse(t, ch)
		if r.body != "1" && r.body != "6" {
			t.Errorf("pending GET of %s = %d %q, want 1 or 6", sid, r.status, r.body)
		}
	}
	// Polling sessions closed by the server with no GET pending wait for one
	// last poll to hand out their close packet.
	for i := 10; i < n; i++ {
		if _, ok := pending[polls[i]]; !ok && e.srv.Session(polls[i]) != nil {
			// "1" after a server close; a client close may answer "6" or 400.
			if r := e.poll(polls[i]); r.body != "1" && r.body != "6" && r.status != 400 {
				t.Errorf("last poll of %s = %d %q, want \"1\"", polls[i], r.status, r.body)
			}
		}
	}
	for _, w := range wss {
		waitClosed(t, w.s)
	}
	for _, sid := range polls {
		waitClosed(t, e.session(sid))
	}
	eventually(t, 5*time.Second, func() bool { return e.srv.Count() == 0 })
	waitNoModuleGoroutines(t, 5*time.Second)
}

// Shutdown closes every kind of session and returns once every goroutine of
// the server has ended.
func TestShutdownLeavesNoGoroutines(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	waitNoModuleGoroutines(t, 5*time.Second)
	var clients []*wsClient
	for i := 0; i < 10; i++ {
		c := e.dialWS("EIO=4&transport=websocket")
		c.readOpen()
		clients = append(clients, c)
	}
	sidA, _ := e.handshake("")
	sidB, _ := e.handshake("")
	sidC, _ := e.handshake("")
	upgradedC := e.upgrade(sidC)
	sidD, _ := e.handshake("")
	probeD := e.probe(sidD)
	pending := e.pollAsync("EIO=4&transport=polling&sid=" + sidA)
	sA := e.session(sidA)
	eventually(t, 2*time.Second, func() bool { return pollPending(sA) })

	if err := e.srv.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if r := waitResponse(t, pending); r.body != "1" {
		t.Errorf("pending GET during Shutdown = %q, want \"1\"", r.body)
	}
	for _, c := range clients {
		c.expectCloseFrame(1000)
	}
	upgradedC.expectCloseFrame(1000)
	probeD.expectEnd(2 * time.Second)
	for _, sid := range []string{sidA, sidB, sidC, sidD} {
		if got := e.session(sid).CloseReason(); got != ReasonServerShutdown {
			t.Errorf("%s: CloseReason() = %q, want %q", sid, got, ReasonServerShutdown)
		}
	}
	if e.srv.Count() != 0 {
		t.Errorf("Count() = %d after Shutdown", e.srv.Count())
	}
	waitNoModuleGoroutines(t, 5*time.Second)
	wantError(t, e.poll(sidB), 400, ErrSessionIDUnknown, "Session ID unknown")
}

// Handshakes racing with Shutdown: every session that got through is
// closed, and Shutdown still returns once all goroutines are gone.
func TestShutdownDuringHandshakes(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var clients []*wsClient
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := e.tryDialWS("EIO=4&transport=websocket")
				if err != nil {
					continue // 503 once shutting down
				}
				mu.Lock()
				clients = append(clients, c)
				mu.Unlock()
			}
		}()
	}
	eventually(t, 5*time.Second, func() bool { return e.srv.Count() >= 20 })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := e.srv.Shutdown(ctx)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Errorf("Shutdown with handshakes in flight: %v", err)
	}
	// Every WebSocket that was accepted is closed by the server.
	open := 0
	for _, c := range clients {
		if !c.drainUntilEnd(3 * time.Second) {
			open++
		}
	}
	if open > 0 {
		t.Errorf("%d of %d accepted WebSockets still open after Shutdown", open, len(clients))
	}
	if n := e.srv.Count(); n != 0 {
		t.Errorf("Count() = %d after Shutdown", n)
	}
	waitNoModuleGoroutines(t, 2*time.Second)
}
