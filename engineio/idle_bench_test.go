package engineio

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// idleConns is how many idle WebSocket sessions BenchmarkIdleWebSocket
// holds open. HERALD_IDLE_CONNS overrides it (at most ~9,000: client and
// server ends share this process's open-file limit).
func idleConns(b *testing.B) int {
	if v := os.Getenv("HERALD_IDLE_CONNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("HERALD_IDLE_CONNS=%q: want a positive count", v)
		}
		return n
	}
	return 2000
}

// memSnapshot is the part of the runtime's memory statistics that idle
// connections grow.
type memSnapshot struct {
	heap, stack, rss uint64
	goroutines       int
}

func takeSnapshot(b *testing.B) memSnapshot {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSnapshot{heap: ms.HeapAlloc, stack: ms.StackInuse, rss: readRSS(b), goroutines: runtime.NumGoroutine()}
}

// readRSS returns VmRSS from /proc/self/status, or 0 where there is none.
func readRSS(b *testing.B) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// perConn reports (after - before) / n for each figure.
func perConn(b *testing.B, prefix string, before, after memSnapshot, n int) {
	diff := func(a, c uint64) float64 { return (float64(c) - float64(a)) / float64(n) }
	b.ReportMetric(diff(before.heap, after.heap), prefix+"heap-B/conn")
	b.ReportMetric(diff(before.stack, after.stack), prefix+"stack-B/conn")
	b.ReportMetric(diff(before.rss, after.rss), prefix+"rss-B/conn")
	b.ReportMetric(float64(after.goroutines-before.goroutines)/float64(n), prefix+"goroutines/conn")
}

// dialIdle opens a WebSocket session by hand and keeps only the net.Conn:
// the client end holds no goroutine and no buffer, so what grows is the
// server's share plus two bare sockets.
func dialIdle(b *testing.B, addr string) net.Conn {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		b.Fatalf("dial: %v", err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	req := "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: " + addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		b.Fatalf("write upgrade: %v", err)
	}
	// Read the 101 response and the open packet byte by byte so nothing of
	// the stream is left in a buffer.
	br := bufio.NewReaderSize(conn, 16)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			b.Fatalf("read upgrade response: %v", err)
		}
		if line == "\r\n" {
			break
		}
	}
	h, err := ws.ReadHeader(br)
	if err != nil || h.OpCode != ws.OpText {
		b.Fatalf("open frame: %v %v", h.OpCode, err)
	}
	if _, err := br.Discard(int(h.Length)); err != nil {
		b.Fatalf("open frame body: %v", err)
	}
	if br.Buffered() != 0 {
		b.Fatalf("unexpected bytes after the open packet")
	}
	conn.SetDeadline(time.Time{})
	return conn
}

// BenchmarkIdleWebSocket measures what an idle Engine.IO WebSocket session
// costs the process: Go heap, goroutine stacks and RSS per connection, with
// the same figures for bare accepted TCP connections (prefix "bare-") to
// subtract. Run with -benchtime=1x; HERALD_IDLE_PROFILE=file writes a heap
// profile taken while the sessions are open.
func BenchmarkIdleWebSocket(b *testing.B) {
	n := idleConns(b)
	for b.Loop() {
		bare := measureBare(b, n)
		perConn(b, "bare-", bare[0], bare[1], n)

		srv, err := NewServer(Config{PingInterval: time.Hour, PingTimeout: time.Hour}, func(s *Session) {
			s.OnMessage(func(d []byte, bin bool) { s.Send(NewMessage(d, bin)) })
		})
		if err != nil {
			b.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		hs := &http.Server{Handler: srv}
		go hs.Serve(ln)

		before := takeSnapshot(b)
		conns := make([]net.Conn, 0, n)
		for range n {
			conns = append(conns, dialIdle(b, ln.Addr().String()))
		}
		deadline := time.Now().Add(30 * time.Second)
		for srv.Count() != n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond) // writers finish and exit
		after := takeSnapshot(b)
		perConn(b, "", before, after, n)
		if f := os.Getenv("HERALD_IDLE_PROFILE"); f != "" {
			writeHeapProfile(b, f)
		}

		for _, c := range conns {
			c.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		srv.Shutdown(ctx)
		hs.Shutdown(ctx)
		cancel()
	}
}

// measureBare accepts n plain TCP connections and keeps both ends.
func measureBare(b *testing.B, n int) [2]memSnapshot {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	before := takeSnapshot(b)
	conns := make([]net.Conn, 0, 2*n)
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c, s)
	}
	after := takeSnapshot(b)
	for _, c := range conns {
		c.Close()
	}
	return [2]memSnapshot{before, after}
}

func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}
