package engineio

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// dialEcho opens a WebSocket-only session on an echo server.
func dialEcho(t *testing.T, cfg Config) (*testEnv, *wsClient, *Session) {
	t.Helper()
	e := newEnv(t, cfg, nil)
	c := e.dialWS("EIO=4&transport=websocket")
	op := c.readOpen()
	return e, c, e.session(op.SID)
}

func TestWebSocketHandshake(t *testing.T) {
	e := newEnv(t, Config{PingInterval: time.Second, PingTimeout: 500 * time.Millisecond, MaxPayload: 5000}, nil)
	c := e.dialWS("EIO=4&transport=websocket")
	op, p := c.next()
	if op != ws.OpText {
		t.Fatalf("first frame op = %v, want text", op)
	}
	var open openPacket
	if len(p) > 0 {
		open = parseOpen(t, string(p[1:]))
	}
	want := fmt.Sprintf(`0{"sid":%q,"upgrades":[],"pingInterval":1000,"pingTimeout":500,"maxPayload":5000}`, open.SID)
	if string(p) != want {
		t.Errorf("open frame = %q, want %q", p, want)
	}
	s := e.session(open.SID)
	if s.Transport() != TransportWebSocket || s.Protocol() != 4 {
		t.Errorf("Transport() = %q, Protocol() = %d", s.Transport(), s.Protocol())
	}
}

func TestWebSocketEcho(t *testing.T) {
	rec := &received{}
	e := newEnv(t, Config{}, recordingEcho(rec))
	c := e.dialWS("EIO=4&transport=websocket")
	c.readOpen()

	c.sendText("4hello")
	c.expectText("4hello")
	c.sendBinary([]byte{1, 2, 3, 4})
	c.expectBinary([]byte{1, 2, 3, 4})
	c.sendText("4")
	c.expectText("4")
	c.sendBinary(nil)
	c.expectBinary([]byte{})
	c.sendText("4é😀")
	c.expectText("4é😀")
	// 16-bit and 64-bit extended lengths, both ways.
	mid := "4" + strings.Repeat("m", 300)
	c.sendText(mid)
	c.expectText(mid)
	big := bytes.Repeat([]byte{0xab}, 70000)
	c.sendBinary(big)
	c.expectBinary(big)
	// Noop is accepted and ignored.
	c.sendText("6")
	c.sendText("4after noop")
	c.expectText("4after noop")

	want := []string{"t:hello", "b:01020304", "t:", "b:", "t:é😀", "t:" + mid[1:], fmt.Sprintf("b:%x", big), "t:after noop"}
	if got := rec.get(); !slices.Equal(got, want) {
		t.Errorf("OnMessage got %d messages, want %d", len(got), len(want))
	}
}

func TestWebSocketOrder(t *testing.T) {
	e, c, s := dialEcho(t, Config{})
	_ = e
	const n = 500
	go func() {
		for i := 0; i < n; i++ {
			s.Send(NewMessage([]byte(fmt.Sprint(i)), i%2 == 1))
		}
	}()
	for i := 0; i < n; i++ {
		if i%2 == 1 {
			c.expectBinary([]byte(fmt.Sprint(i)))
		} else {
			c.expectText("4" + fmt.Sprint(i))
		}
	}
}

func TestWebSocketOversize(t *testing.T) {
	tests := []struct {
		name string
		send func(c *wsClient)
	}{
		{"text", func(c *wsClient) { c.sendText("4" + strings.Repeat("a", 100)) }},
		{"binary", func(c *wsClient) { c.sendBinary(make([]byte, 101)) }},
		{"fragmented", func(c *wsClient) {
			c.writeFrame(ws.OpText, false, []byte("4"+strings.Repeat("a", 60)))
			c.writeFrame(ws.OpContinuation, true, []byte(strings.Repeat("a", 60)))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c, s := dialEcho(t, Config{MaxPayload: 100})
			// Exactly MaxPayload is fine.
			ok := "4" + strings.Repeat("z", 99)
			c.sendText(ok)
			c.expectText(ok)
			tt.send(c)
			c.expectCloseFrame(1009)
			c.expectEnd(2 * time.Second)
			if got := waitClosed(t, s); got != ReasonTransportError {
				t.Errorf("CloseReason() = %q, want %q", got, ReasonTransportError)
			}
		})
	}
}

func TestWebSocketInvalidPackets(t *testing.T) {
	tests := []struct {
		name   string
		op     ws.OpCode
		data   string
		reason CloseReason
	}{
		{"abc", ws.OpText, "abc", ReasonParseError},
		{"empty text", ws.OpText, "", ReasonParseError},
		{"type 7", ws.OpText, "7x", ReasonParseError},
		{"base64 in a text frame", ws.OpText, "bAQID", ReasonParseError},
		{"invalid utf8", ws.OpText, "4\xff\xfe", ReasonTransportError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c, s := dialEcho(t, Config{})
			c.writeFrame(tt.op, true, []byte(tt.data))
			c.expectEnd(2 * time.Second)
			if got := waitClosed(t, s); got != tt.reason {
				t.Errorf("CloseReason() = %q, want %q", got, tt.reason)
			}
		})
	}
}

func TestWebSocketFragmented(t *testing.T) {
	_, c, _ := dialEcho(t, Config{})
	c.writeFrame(ws.OpText, false, []byte("4hel"))
	c.writeFrame(ws.OpContinuation, false, []byte("lo w"))
	c.writeFrame(ws.OpPing, true, []byte("mid")) // control frames may interleave
	c.writeFrame(ws.OpContinuation, true, []byte("orld"))
	op, p := c.next()
	if op != ws.OpPong || string(p) != "mid" {
		t.Fatalf("got op %v %q, want pong \"mid\"", op, p)
	}
	c.expectText("4hello world")

	c.writeFrame(ws.OpBinary, false, []byte{1})
	c.writeFrame(ws.OpContinuation, false, nil)
	c.writeFrame(ws.OpContinuation, true, []byte{2, 3})
	c.expectBinary([]byte{1, 2, 3})

	// A multi-byte character split across fragments is still valid UTF-8.
	c.writeFrame(ws.OpText, false, []byte("4\xc3"))
	c.writeFrame(ws.OpContinuation, true, []byte("\xa9"))
	c.expectText("4é")
}

func TestWebSocketFragmentErrors(t *testing.T) {
	tests := []struct {
		name   string
		frames func(c *wsClient)
	}{
		{"continuation first", func(c *wsClient) { c.writeFrame(ws.OpContinuation, true, []byte("4x")) }},
		{"new message inside fragmented one", func(c *wsClient) {
			c.writeFrame(ws.OpText, false, []byte("4a"))
			c.writeFrame(ws.OpText, true, []byte("4b"))
		}},
		{"fragmented control frame", func(c *wsClient) { c.writeFrame(ws.OpPing, false, []byte("x")) }},
		{"control frame over 125 bytes", func(c *wsClient) { c.writeFrame(ws.OpPing, true, make([]byte, 126)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c, s := dialEcho(t, Config{})
			tt.frames(c)
			c.expectEnd(2 * time.Second)
			if got := waitClosed(t, s); got != ReasonTransportError {
				t.Errorf("CloseReason() = %q, want %q", got, ReasonTransportError)
			}
		})
	}
}

// RFC 6455 §5.2: reserved opcodes and RSV bits without an extension must
// fail the connection.
func TestWebSocketReservedBits(t *testing.T) {
	t.Run("reserved data opcode", func(t *testing.T) {
		rec := &received{}
		e := newEnv(t, Config{}, recordingEcho(rec))
		c := e.dialWS("EIO=4&transport=websocket")
		op := c.readOpen()
		c.writeFrame(ws.OpCode(0x3), true, []byte("4sneaky"))
		c.expectEnd(2 * time.Second)
		waitClosed(t, e.session(op.SID))
		if got := rec.get(); len(got) != 0 {
			t.Errorf("a frame with reserved opcode 0x3 was delivered as %q", got)
		}
	})
	t.Run("reserved control opcode", func(t *testing.T) {
		_, c, s := dialEcho(t, Config{})
		c.writeFrame(ws.OpCode(0xb), true, []byte("x"))
		c.expectEnd(2 * time.Second)
		waitClosed(t, s)
	})
	t.Run("rsv1 without extension", func(t *testing.T) {
		rec := &received{}
		e := newEnv(t, Config{}, recordingEcho(rec))
		c := e.dialWS("EIO=4&transport=websocket")
		op := c.readOpen()
		f := ws.MaskFrame(ws.NewTextFrame([]byte("4compressed?")))
		f.Header.Rsv = ws.Rsv(true, false, false)
		if err := ws.WriteFrame(c.conn, f); err != nil {
			t.Fatal(err)
		}
		c.expectEnd(2 * time.Second)
		waitClosed(t, e.session(op.SID))
		if got := rec.get(); len(got) != 0 {
			t.Errorf("a frame with RSV1 set was delivered as %q", got)
		}
	})
}

func TestWebSocketPingFrame(t *testing.T) {
	_, c, s := dialEcho(t, Config{})
	c.writeFrame(ws.OpPing, true, []byte("hello?"))
	op, p := c.next()
	if op != ws.OpPong || string(p) != "hello?" {
		t.Fatalf("got op %v %q, want pong \"hello?\"", op, p)
	}
	c.writeFrame(ws.OpPing, true, nil)
	op, p = c.next()
	if op != ws.OpPong || len(p) != 0 {
		t.Fatalf("got op %v %q, want empty pong", op, p)
	}
	// Unsolicited pongs are ignored.
	c.writeFrame(ws.OpPong, true, []byte("x"))
	c.sendText("4still")
	c.expectText("4still")
	if s.CloseReason() != "" {
		t.Errorf("session closed: %q", s.CloseReason())
	}
}

func TestWebSocketUnmaskedFrame(t *testing.T) {
	_, c, s := dialEcho(t, Config{})
	if err := ws.WriteFrame(c.conn, ws.NewTextFrame([]byte("4unmasked"))); err != nil {
		t.Fatal(err)
	}
	c.expectEnd(2 * time.Second)
	if got := waitClosed(t, s); got != ReasonTransportError {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonTransportError)
	}
}

func TestWebSocketClientCloseFrame(t *testing.T) {
	e, c, s := dialEcho(t, Config{})
	c.writeFrame(ws.OpClose, true, ws.NewCloseFrameBody(4001, "bye"))
	c.expectCloseFrame(4001)
	c.expectEnd(2 * time.Second)
	if got := waitClosed(t, s); got != ReasonTransportClose {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonTransportClose)
	}
	e.wantCloseReasons(t, s.ID(), ReasonTransportClose)
}

func TestWebSocketClientCloseTCP(t *testing.T) {
	_, c, s := dialEcho(t, Config{})
	c.conn.Close()
	if got := waitClosed(t, s); got != ReasonTransportClose {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonTransportClose)
	}
}

// The reference ignores "1" over WebSocket; Herald treats it as a close.
func TestWebSocketClosePacket(t *testing.T) {
	e, c, s := dialEcho(t, Config{})
	c.sendText("1")
	c.expectEnd(2 * time.Second)
	if got := waitClosed(t, s); got != ReasonTransportClose {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonTransportClose)
	}
	// Done may have been made after the close began (it is then closed at
	// once), before the server dropped the session: wait for that too.
	if !waitFor(2*time.Second, func() bool { return e.srv.Session(s.ID()) == nil }) {
		t.Error("closed session still held")
	}
}

func TestWebSocketServerClose(t *testing.T) {
	e, c, s := dialEcho(t, Config{})
	s.Send(NewMessage([]byte("last"), false), NewMessage([]byte{1}, true))
	s.Close()
	if got := s.CloseReason(); got != ReasonForcedClose {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonForcedClose)
	}
	e.wantCloseReasons(t, s.ID(), ReasonForcedClose)
	c.expectText("4last")
	c.expectBinary([]byte{1})
	c.expectCloseFrame(1000)
	c.expectEnd(2 * time.Second)
	if err := s.Send(NewMessage([]byte("late"), false)); err != ErrSessionClosed {
		t.Errorf("Send after Close = %v, want ErrSessionClosed", err)
	}
	if e.srv.Count() != 0 {
		t.Errorf("Count() = %d, want 0", e.srv.Count())
	}
}

func TestWebSocketShutdown(t *testing.T) {
	e, c, s := dialEcho(t, Config{})
	s.Send(NewMessage([]byte("bye"), false))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	c.expectText("4bye")
	c.expectCloseFrame(1000)
	if got := s.CloseReason(); got != ReasonServerShutdown {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonServerShutdown)
	}
}

func TestWebSocketV3(t *testing.T) {
	e := newEnv(t, Config{AllowEIO3: true}, nil)
	c := e.dialWS("EIO=3&transport=websocket")
	op := c.readOpen()
	if !slices.Equal(op.keys, openKeys) || len(op.Upgrades) != 0 {
		t.Errorf("v3 open = %s", op.raw)
	}
	s := e.session(op.SID)
	if s.Protocol() != 3 {
		t.Fatalf("Protocol() = %d, want 3", s.Protocol())
	}
	c.sendText("4hi")
	c.expectText("4hi")
	// A v3 binary frame is the packet type byte then the data.
	c.sendBinary([]byte{0x04, 1, 2, 3})
	c.expectBinary([]byte{0x04, 1, 2, 3})
	s.Send(NewMessage([]byte{9, 8}, true))
	c.expectBinary([]byte{0x04, 9, 8})
	// A v3 binary frame with a bad type byte closes the session.
	c.sendBinary([]byte{0x07, 1})
	c.expectEnd(2 * time.Second)
	if got := waitClosed(t, s); got != ReasonParseError {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonParseError)
	}
}

func TestWebSocketV3EmptyBinary(t *testing.T) {
	e := newEnv(t, Config{AllowEIO3: true}, nil)
	c := e.dialWS("EIO=3&transport=websocket")
	op := c.readOpen()
	c.sendBinary(nil) // no type byte
	c.expectEnd(2 * time.Second)
	if got := waitClosed(t, e.session(op.SID)); got != ReasonParseError {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonParseError)
	}
}

// Frames the client sends in the same segment as its upgrade request are
// read, not lost in the HTTP server's buffer.
func TestWebSocketPipelinedFrames(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	conn, br := e.rawConn()
	var req bytes.Buffer
	fmt.Fprintf(&req, "GET %s?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"+
		"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", e.path)
	ws.WriteFrame(&req, ws.MaskFrame(ws.NewTextFrame([]byte("4early"))))
	ws.WriteFrame(&req, ws.MaskFrame(ws.NewBinaryFrame([]byte{5, 6})))
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	c := &wsClient{t: t, conn: conn, r: br}
	c.readOpen()
	c.expectText("4early")
	c.expectBinary([]byte{5, 6})
}

func TestWebSocketSlowClient(t *testing.T) {
	e, c, s := dialEcho(t, Config{MaxBufferedBytes: 4 << 20})
	_ = c // never read again
	big := NewMessage(bytes.Repeat([]byte("s"), 1<<20), false)
	var err error
	for i := 0; i < 2000 && err == nil; i++ {
		err = s.Send(big)
		if err == nil && i%8 == 7 {
			time.Sleep(time.Millisecond) // let the writer fill the socket
		}
	}
	if err != ErrSessionClosed {
		t.Fatalf("Send kept succeeding with a client that never reads")
	}
	if got := waitClosed(t, s); got != ReasonSlowClient {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonSlowClient)
	}
	e.wantCloseReasons(t, s.ID(), ReasonSlowClient)
}

func TestWebSocketWriteTimeout(t *testing.T) {
	_, _, s := dialEcho(t, Config{MaxBufferedBytes: -1, WriteTimeout: 100 * time.Millisecond})
	big := NewMessage(bytes.Repeat([]byte("w"), 1<<20), false)
	for i := 0; i < 64; i++ {
		if err := s.Send(big); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	if got := waitClosed(t, s); got != ReasonTransportError {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonTransportError)
	}
}

func TestTrySendWebSocket(t *testing.T) {
	_, c, s := dialEcho(t, Config{})
	eventually(t, 2*time.Second, func() bool { return s.TrySend(NewMessage([]byte("v"), false)) })
	c.expectText("4v")
}

// A second WebSocket naming a WebSocket-only session is accepted and closed.
func TestWebSocketSecondConnectionForWebSocketSession(t *testing.T) {
	e, c, s := dialEcho(t, Config{})
	c2 := e.dialWS("EIO=4&transport=websocket&sid=" + s.ID())
	c2.expectEnd(2 * time.Second)
	c.sendText("4first")
	c.expectText("4first")
	wantError(t, e.poll(s.ID()), 400, ErrBadRequest, "Bad request")
	if r := e.post(s.ID(), "4x"); r.status != 400 {
		t.Errorf("POST to a websocket session: status %d, want 400", r.status)
	}
	if s.CloseReason() != "" {
		t.Errorf("session closed: %q", s.CloseReason())
	}
}

// A single frame larger than the socket buffers is written partly without
// blocking, then the rest with the deadline: it must arrive whole, byte for
// byte, and the frames after it in order.
func TestWebSocketLargeFramePartialWrite(t *testing.T) {
	_, c, s := dialEcho(t, Config{MaxBufferedBytes: -1})
	payload := make([]byte, 8<<20)
	for i := range payload {
		payload[i] = byte(i % 251)
	}
	if err := s.Send(NewMessage(payload, true)); err != nil {
		t.Fatal(err)
	}
	// The writer takes the frame alone (a batch of one), fills the socket
	// and blocks; the next message waits for the next batch.
	time.Sleep(50 * time.Millisecond)
	if err := s.Send(NewMessage([]byte("after"), false)); err != nil {
		t.Fatal(err)
	}
	f, err := c.readFrame(10 * time.Second)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	if f.Header.OpCode != ws.OpBinary || !bytes.Equal(f.Payload, payload) {
		t.Fatalf("got opcode %v, %d bytes; want the %d-byte binary frame intact", f.Header.OpCode, len(f.Payload), len(payload))
	}
	c.expectText("4after")
}
