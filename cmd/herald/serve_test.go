package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/internal/cliflags"
	"github.com/herald-rt/herald/internal/testutil"
)

// TestServeHealthAndDrain runs `herald serve` in process: /health follows
// the contract, and cancelling (what SIGTERM does) drains: /health turns
// 503, an open polling client gets the Engine.IO close, then it returns.
func TestServeHealthAndDrain(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	opts := cliflags.Register(fs, cliflags.Defaults{Addr: ":3000", PingInterval: 25 * time.Second, PingTimeout: 20 * time.Second, MaxPayload: 1e6})
	addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	if err := fs.Parse([]string{"--addr", addr, "--node-id", "n1", "--drain-delay", "300ms"}); err != nil {
		t.Fatal(err)
	}
	if err := opts.Validate(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- runServer(ctx, opts, 10*time.Second, slog.New(slog.DiscardHandler)) }()

	get := func(method, path string) (int, string) {
		req, _ := http.NewRequest(method, base+path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if status, _ := get("GET", "/health"); status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A polling client with an open session.
	_, open := get("GET", "/socket.io/?EIO=4&transport=polling")
	sid := strings.Split(strings.Split(open, `"sid":"`)[1], `"`)[0]
	for _, tc := range []struct{ method, want string }{
		{"GET", "ok node=n1 sessions=1\n"},
		{"HEAD", ""},
	} {
		if status, body := get(tc.method, "/health"); status != 200 || body != tc.want {
			t.Errorf("%s /health: %d %q, want 200 %q", tc.method, status, body, tc.want)
		}
	}

	stop() // as on SIGTERM
	deadline = time.Now().Add(10 * time.Second)
	for {
		status, body := get("GET", "/health")
		if status == 503 {
			if body != "draining node=n1 sessions=1\n" {
				t.Errorf("draining /health: %q", body)
			}
			if s, b := get("HEAD", "/health"); s != 503 || b != "" {
				t.Errorf("draining HEAD /health: %d %q", s, b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health never reported draining: %d %q", status, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// No new session while draining (no other node to forward to).
	if status, body := get("GET", "/socket.io/?EIO=4&transport=polling"); status != 503 {
		t.Errorf("handshake while draining: %d %q, want 503", status, body)
	}
	// The open session's next poll carries the close packet.
	if status, body := get("GET", "/socket.io/?EIO=4&transport=polling&sid="+sid); status != 200 || !strings.HasSuffix(body, "1") {
		t.Errorf("poll while draining: %d %q, want the close packet", status, body)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("runServer: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("runServer did not return after draining")
	}
}
