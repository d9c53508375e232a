package herald_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/herald-rt/herald"
	"github.com/herald-rt/herald/engineio"
)

// BenchmarkIdleSocketIO measures the Go heap and goroutine stacks that an
// idle Socket.IO connection (WebSocket, main namespace joined) adds to the
// process, client ends included (they hold no goroutine or buffer; a bare
// TCP pair is about 0.6 KB of heap). Run with -benchtime=1x;
// HERALD_IDLE_PROFILE=file writes a heap profile taken while the
// connections are open.
func BenchmarkIdleSocketIO(b *testing.B) {
	const n = 2000
	for range b.N {
		srv, err := herald.NewServer(herald.Config{
			Engine: engineio.Config{PingInterval: time.Hour, PingTimeout: time.Hour},
		})
		if err != nil {
			b.Fatal(err)
		}
		// What interop/testserver, the application idlemem measures, does
		// for each socket: an "auth" event from the handshake, then as many
		// handlers as it registers, made once as it does (they find their
		// socket with Event.Socket).
		handlers := make([]func(*herald.Event), len(idleEvents))
		for i, name := range idleEvents {
			handlers[i] = func(e *herald.Event) { e.Socket().Emit(name+"-back", e.Args.Values()...) }
		}
		srv.OnConnection(func(s *herald.Socket) {
			s.Emit("auth", s.Auth())
			for i, name := range idleEvents {
				s.On(name, handlers[i])
			}
		})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		hs := &http.Server{Handler: srv}
		go hs.Serve(ln)
		u := "ws://" + ln.Addr().String() + "/socket.io/?EIO=4&transport=websocket"

		heap0, stack0 := heapAndStack()
		conns := make([]net.Conn, 0, n)
		for range n {
			conns = append(conns, dialIdleSocketIO(b, u))
		}
		time.Sleep(200 * time.Millisecond)
		heap1, stack1 := heapAndStack()
		b.ReportMetric(float64(heap1-heap0)/n, "heap-B/conn")
		b.ReportMetric(float64(stack1-stack0)/n, "stack-B/conn")
		if f := os.Getenv("HERALD_IDLE_PROFILE"); f != "" {
			out, err := os.Create(f)
			if err != nil {
				b.Fatal(err)
			}
			pprof.Lookup("heap").WriteTo(out, 0)
			out.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		srv.Shutdown(ctx)
		for _, c := range conns {
			c.Close()
		}
		hs.Shutdown(ctx)
		cancel()
	}
}

var idleEvents = []string{"message", "message-with-ack", "join", "leave", "broadcast", "fetch",
	"whoami", "server-count", "server-side-emit", "sockets-join", "sockets-leave", "disconnect-sockets"}

func heapAndStack() (heap, stack int64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc), int64(ms.StackInuse)
}

// dialIdleSocketIO connects to "/" and returns the bare connection.
func dialIdleSocketIO(b *testing.B, u string) net.Conn {
	conn, _ := dialSocketIO(b, u)
	return conn
}

// dialSocketIO opens a WebSocket Socket.IO session and connects it to "/".
// It returns the connection and the reader to go on reading it from (which
// includes anything the WebSocket handshake read ahead).
func dialSocketIO(b *testing.B, u string) (net.Conn, io.Reader) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, br, _, err := ws.Dial(ctx, u)
	if err != nil {
		b.Fatalf("dial: %v", err)
	}
	var rd io.Reader = conn
	if br != nil {
		rd = io.MultiReader(br, conn)
	}
	rw := struct {
		io.Reader
		io.Writer
	}{rd, conn}
	if data, err := wsutil.ReadServerText(rw); err != nil || !strings.HasPrefix(string(data), "0{") {
		b.Fatalf("open packet: %q %v", data, err)
	}
	if err := wsutil.WriteClientText(conn, []byte("40")); err != nil {
		b.Fatal(err)
	}
	if data, err := wsutil.ReadServerText(rw); err != nil || !strings.HasPrefix(string(data), "40{") {
		b.Fatalf("connect answer: %q %v", data, err)
	}
	return conn, rd
}
