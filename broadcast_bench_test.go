package herald_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-rt/herald"
	"github.com/herald-rt/herald/engineio"
	"github.com/herald-rt/herald/parser"
)

// fanoutEnv is a server with n connected Socket.IO clients on loopback, each
// draining its connection on a goroutine that only counts bytes.
type fanoutEnv struct {
	srv      *herald.Server
	received atomic.Int64 // bytes read by every client together
	conns    []net.Conn
	wg       sync.WaitGroup
}

// countingWriter adds what it is given to a shared counter.
type countingWriter struct{ n *atomic.Int64 }

func (w countingWriter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	return len(p), nil
}

func newFanoutEnv(b *testing.B, n int) *fanoutEnv {
	b.Helper()
	srv, err := herald.NewServer(herald.Config{
		Engine: engineio.Config{PingInterval: time.Hour, PingTimeout: time.Hour, MaxBufferedBytes: 64 << 20},
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
	e := &fanoutEnv{srv: srv}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		for _, c := range e.conns {
			c.Close()
		}
		hs.Shutdown(ctx)
		e.wg.Wait()
	})
	connected := make(chan struct{}, n)
	srv.OnConnection(func(*herald.Socket) { connected <- struct{}{} })
	u := "ws://" + ln.Addr().String() + "/socket.io/?EIO=4&transport=websocket"
	for range n {
		e.dial(b, u)
	}
	for range n {
		select {
		case <-connected:
		case <-time.After(30 * time.Second):
			b.Fatal("clients did not connect")
		}
	}
	return e
}

// dial connects one client to "/" and starts its counting reader once the
// CONNECT answer has arrived.
func (e *fanoutEnv) dial(b *testing.B, u string) {
	conn, rd := dialSocketIO(b, u)
	e.conns = append(e.conns, conn)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		io.Copy(countingWriter{&e.received}, rd)
	}()
}

// waitReceived waits until the clients have read want bytes in total.
func (e *fanoutEnv) waitReceived(b *testing.B, want int64) {
	deadline := time.Now().Add(60 * time.Second)
	for e.received.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("clients read %d bytes, want %d", e.received.Load(), want)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// broadcastFrameLen is the size of one delivered frame of the benchmark event.
func broadcastFrameLen(b *testing.B) int64 {
	p, err := parser.NewEvent("/", "news", map[string]any{"hello": "world", "seq": 123456})
	if err != nil {
		b.Fatal(err)
	}
	text, _, err := parser.Encode(p)
	if err != nil {
		b.Fatal(err)
	}
	if len(text)+1 >= 126 {
		b.Fatal("frame needs an extended length")
	}
	return int64(2 + 1 + len(text)) // header, Engine.IO type, Socket.IO packet
}

var newsPayload = map[string]any{"hello": "world", "seq": 123456}

// BenchmarkBroadcast measures one broadcast through the in-memory adapter to
// n local WebSocket sockets, up to the point where every client has read
// its frame: allocations and time per broadcast (…/op) and per delivery.
//
// "single" waits for every delivery before the next broadcast (one frame per
// write); "burst" broadcasts back to back and waits at the end, so writes
// coalesce several frames.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{100, 1000} {
		for _, mode := range []string{"single", "burst"} {
			b.Run(mode+"/clients="+itoa(n), func(b *testing.B) {
				e := newFanoutEnv(b, n)
				frame := broadcastFrameLen(b)
				var want int64
				b.ReportAllocs()
				b.ResetTimer()
				// Not b.Loop: the timer must keep running through the final
				// wait, which is where a burst's writes happen.
				for range b.N {
					if err := e.srv.Emit("news", newsPayload); err != nil {
						b.Fatal(err)
					}
					want += frame * int64(n)
					if mode == "single" {
						e.waitReceived(b, want)
					}
				}
				e.waitReceived(b, want)
				b.StopTimer()
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
			})
		}
	}
}

func itoa(n int) string {
	const digits = "0123456789"
	if n == 0 {
		return "0"
	}
	var out []byte
	for ; n > 0; n /= 10 {
		out = append([]byte{digits[n%10]}, out...)
	}
	return string(out)
}
