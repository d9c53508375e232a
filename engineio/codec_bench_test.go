package engineio

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

var benchText = []byte(`2["news",{"hello":"world","seq":123456}]`)

// BenchmarkMessageWebSocketFrame builds a message and its WebSocket frame:
// what a broadcast pays once, whatever the number of recipients.
func BenchmarkMessageWebSocketFrame(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		m := NewMessage(benchText, false)
		if len(m.webSocketFrame(4)) == 0 {
			b.Fatal("empty frame")
		}
	}
}

func BenchmarkDecodeFrameText(b *testing.B) {
	data := append([]byte{'4'}, benchText...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeFrame(opText, data, 4); err != nil {
			b.Fatal(err)
		}
	}
}

// benchPayload is ten messages of a polling payload, v4.
func benchPayload() []byte {
	var body []byte
	for i := range 10 {
		if i > 0 {
			body = append(body, recordSeparator)
		}
		body = append(body, '4')
		body = append(body, benchText...)
	}
	return body
}

func BenchmarkDecodePayloadV4(b *testing.B) {
	body := benchPayload()
	b.ReportAllocs()
	for b.Loop() {
		ps, err := decodePayloadV4(body)
		if err != nil || len(ps) != 10 {
			b.Fatal(len(ps), err)
		}
	}
}

// discardResponse is a ResponseWriter that keeps nothing.
type discardResponse struct{ h http.Header }

func (d *discardResponse) Header() http.Header         { return d.h }
func (d *discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardResponse) WriteHeader(int)             {}

// BenchmarkWritePollV4 encodes ten new messages into one polling response.
func BenchmarkWritePollV4(b *testing.B) {
	s := &Session{protocol: 4}
	w := &discardResponse{h: make(http.Header)}
	batch := make([]*Message, 10)
	b.ReportAllocs()
	for b.Loop() {
		for i := range batch {
			batch[i] = NewMessage(benchText, false)
		}
		s.writePoll(w, batch)
	}
}

func BenchmarkPayloadV3String(b *testing.B) {
	ps := make([]packet, 10)
	for i := range ps {
		ps[i] = packet{typ: packetMessage, data: benchText}
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = appendPayloadV3String(buf[:0], ps)
		}
	})
	body := appendPayloadV3String(nil, ps)
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodePayloadV3String(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkPayloadV3Binary(b *testing.B) {
	blob := bytes.Repeat([]byte{0xab}, 1024)
	ps := []packet{{typ: packetMessage, data: benchText}, {typ: packetMessage, data: blob, binary: true}}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = appendPayloadV3Binary(buf[:0], ps)
		}
	})
	body := appendPayloadV3Binary(nil, ps)
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodePayloadV3Binary(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSessionSend is the writer path of one WebSocket session: Send
// queues a shared message, the writer drains the queue into write/writev.
// "each" waits until the client has read every frame before the next Send
// (one frame per write, a writer started each time); "burst" sends back to
// back, so the writer coalesces.
func BenchmarkSessionSend(b *testing.B) {
	for _, mode := range []string{"each", "burst"} {
		b.Run(mode, func(b *testing.B) {
			sessions := make(chan *Session, 1)
			srv, err := NewServer(Config{PingInterval: time.Hour, PingTimeout: time.Hour, MaxBufferedBytes: 1 << 30},
				func(s *Session) { sessions <- s })
			if err != nil {
				b.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			hs := &http.Server{Handler: srv}
			go hs.Serve(ln)
			conn := dialIdle(b, ln.Addr().String())
			s := <-sessions
			var received atomic.Int64
			done := make(chan struct{})
			progress := make(chan struct{}, 1)
			go func() {
				defer close(done)
				buf := make([]byte, 64<<10)
				for {
					n, err := conn.Read(buf)
					received.Add(int64(n))
					select {
					case progress <- struct{}{}:
					default:
					}
					if err != nil {
						return
					}
				}
			}()
			m := NewMessage(benchText, false)
			frame := int64(len(m.webSocketFrame(4)))
			tick := time.NewTicker(100 * time.Millisecond) // re-checks the deadline
			defer tick.Stop()
			wait := func(want int64) {
				deadline := time.Now().Add(30 * time.Second)
				for received.Load() < want {
					if time.Now().After(deadline) {
						b.Fatalf("read %d bytes, want %d", received.Load(), want)
					}
					select {
					case <-progress:
					case <-tick.C:
					}
				}
			}
			var want int64
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := s.Send(m); err != nil {
					b.Fatal(err)
				}
				want += frame
				if mode == "each" {
					wait(want)
				}
			}
			wait(want)
			b.StopTimer()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
			conn.Close()
			<-done
			hs.Shutdown(ctx)
		})
	}
}

// BenchmarkSessionEcho is one message's round trip through a WebSocket
// session that goes idle between messages: the read (the reader parks the
// connection, an event resumes it), the echo handler's Send and the write.
// The client end writes a pre-masked frame and reads the answer without
// allocating, so allocs/op are the server's.
func BenchmarkSessionEcho(b *testing.B) {
	srv, err := NewServer(Config{PingInterval: time.Hour, PingTimeout: time.Hour},
		func(s *Session) { s.OnMessage(func(d []byte, bin bool) { s.Send(NewMessage(d, bin)) }) })
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	conn := dialIdle(b, ln.Addr().String())
	payload := append([]byte{'4'}, benchText...)
	mask := [4]byte{1, 2, 3, 4}
	frame := []byte{0x81, 0x80 | byte(len(payload)), mask[0], mask[1], mask[2], mask[3]}
	for i, c := range payload {
		frame = append(frame, c^mask[i%4])
	}
	answer := make([]byte, 2+len(payload))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := conn.Write(frame); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(conn, answer); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if !bytes.Equal(answer[2:], payload) {
		b.Fatalf("echo = %q, want %q", answer[2:], payload)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	conn.Close()
	hs.Shutdown(ctx)
}
