package engineio

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// echoRounds sends messages one at a time on c, idling now and then so the
// server's reader parks, and checks each echo when check is set. It stops at
// the first error, which it returns.
func echoRounds(c *wsClient, id, messages int, check bool) error {
	for j := range messages {
		msg := fmt.Sprintf("4s%d-m%d", id, j)
		f := ws.MaskFrame(ws.NewTextFrame([]byte(msg)))
		c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := ws.WriteFrame(c.conn, f); err != nil {
			return fmt.Errorf("session %d message %d: write: %v", id, j, err)
		}
		got, err := c.readFrame(5 * time.Second)
		if err != nil {
			return fmt.Errorf("session %d message %d: read: %v", id, j, err)
		}
		if check && string(got.Payload) != msg {
			return fmt.Errorf("session %d: got %q, want %q", id, got.Payload, msg)
		}
		if j%3 == 0 {
			time.Sleep(time.Duration(id%4) * time.Millisecond) // idle: the reader parks
		}
	}
	return nil
}

// Sessions that go idle between messages park and resume over and over:
// every echo comes back in order. Then the server shuts down while they are
// still at it: Shutdown returns, and no goroutine of the package is left.
//
// With the default parkDelay the short idle spells are waited out on Go's
// poller; with none, every one of them parks.
func TestParkedSessionsChurnThenShutdown(t *testing.T) {
	for _, delay := range []time.Duration{parkDelay, 0} {
		t.Run(fmt.Sprintf("parkDelay=%v", delay), func(t *testing.T) {
			saved := parkDelay
			parkDelay = delay
			t.Cleanup(func() { parkDelay = saved })
			testParkedSessionsChurnThenShutdown(t)
		})
	}
}

func testParkedSessionsChurnThenShutdown(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	waitNoModuleGoroutines(t, 5*time.Second)
	const sessions = 20
	clients := make([]*wsClient, sessions)
	for i := range clients {
		clients[i] = e.dialWS("EIO=4&transport=websocket")
		clients[i].readOpen()
	}
	run := func(messages int, check bool) []error {
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
		)
		for i, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := echoRounds(c, i, messages, check); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return errs
	}
	for _, err := range run(30, true) {
		t.Error(err)
	}

	done := make(chan []error)
	go func() { done <- run(1000, false) }()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v (a parked connection's goroutine slot was never released?)", err)
	}
	select {
	case <-done: // the clients stopped at their first error (the server went away)
	case <-time.After(30 * time.Second):
		t.Fatal("clients still running 30s after Shutdown")
	}
	if e.srv.Count() != 0 {
		t.Errorf("Count() = %d after Shutdown", e.srv.Count())
	}
	waitNoModuleGoroutines(t, 5*time.Second)
}

// Frames that arrive together are read with one read into the reader's
// buffer; the connection must not park while some of them are still in
// that buffer (the poller would not report them), and a batch that ends in
// the middle of a frame must be completed by the next read.
func TestBatchedFramesAcrossParking(t *testing.T) {
	saved := parkDelay
	parkDelay = 0 // park whenever nothing is buffered
	t.Cleanup(func() { parkDelay = saved })
	e := newEnv(t, Config{}, nil)
	c := e.dialWS("EIO=4&transport=websocket")
	c.readOpen()
	for round := range 5 {
		var batch []byte
		for j := range 50 {
			f := ws.MaskFrame(ws.NewTextFrame(fmt.Appendf(nil, "4r%d-m%d", round, j)))
			b, err := ws.CompileFrame(f)
			if err != nil {
				t.Fatal(err)
			}
			batch = append(batch, b...)
		}
		// Half now, the rest (starting mid-frame) a little later.
		cut := len(batch)/2 + 3
		c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.conn.Write(batch[:cut]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		if _, err := c.conn.Write(batch[cut:]); err != nil {
			t.Fatal(err)
		}
		for j := range 50 {
			c.expectText(fmt.Sprintf("4r%d-m%d", round, j))
		}
		time.Sleep(20 * time.Millisecond) // idle: the reader parks
	}
}
