package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHTTPConn(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			w.Write(b)
		case "/chunked":
			w.Write([]byte("abc"))
			w.(http.Flusher).Flush()
			w.Write([]byte(strings.Repeat("d", 20000)))
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		case "/missing":
			http.Error(w, "no such session", http.StatusBadRequest)
		case "/block":
			<-r.Context().Done()
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	h, err := newHTTPConn(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	ctx := context.Background()

	for i, body := range []string{"40", strings.Repeat("x", 40000), "3"} {
		got, err := h.do(ctx, "/echo", []byte(body))
		if err != nil || string(got) != body {
			t.Fatalf("POST %d: %d bytes, %v; want %d bytes", i, len(got), err, len(body))
		}
	}
	if got, err := h.do(ctx, "/chunked", nil); err != nil || string(got) != "abc"+strings.Repeat("d", 20000) {
		t.Fatalf("chunked GET: %d bytes, %v", len(got), err)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 4 requests, want 1 (kept alive)", n)
	}
	if _, err := h.do(ctx, "/missing", nil); err == nil || !strings.Contains(err.Error(), "HTTP 400") || !strings.Contains(err.Error(), "no such session") {
		t.Errorf("400 response: err %v", err)
	}
	// Connection: close, then the server's idle timeout: the next request
	// goes out on a new connection either way.
	if got, err := h.do(ctx, "/close", nil); err != nil || string(got) != "bye" {
		t.Fatalf("close: %q %v", got, err)
	}
	if got, err := h.do(ctx, "/echo", []byte("after close")); err != nil || string(got) != "after close" {
		t.Fatalf("after close: %q %v", got, err)
	}
	srv.CloseClientConnections() // a server closing an idle kept-alive connection
	if got, err := h.do(ctx, "/echo", []byte("after idle close")); err != nil || string(got) != "after idle close" {
		t.Fatalf("after idle close: %q %v", got, err)
	}
	// Cancelling the context interrupts a request in flight.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	t0 := time.Now()
	if _, err := h.do(cctx, "/block", nil); err == nil {
		t.Error("blocked request returned no error after cancel")
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("cancel took %v", d)
	}
	if got, err := h.do(ctx, "/echo", []byte("x")); err != nil || string(got) != "x" {
		t.Fatalf("after cancel: %q %v", got, err)
	}
}
