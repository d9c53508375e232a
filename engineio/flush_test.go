package engineio

import (
	"bytes"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// TestFlusherBroadcastOrder broadcasts numbered messages to many WebSocket
// sessions from one goroutine while the clients read at different speeds,
// so that some sessions are written by the flusher workers, some coalesce
// several frames per writev, and some fill their socket buffer and go on in
// a goroutine of their own (finishWrite). Every client must get every
// message, once, in order.
func TestFlusherBroadcastOrder(t *testing.T) {
	const (
		clients  = 24
		messages = 3000
		size     = 1500
	)
	e := newEnv(t, Config{MaxBufferedBytes: 64 << 20}, func(*Session) {})
	conns := make([]*wsClient, clients)
	sessions := make([]*Session, clients)
	for i := range conns {
		conns[i] = e.dialWS("EIO=4&transport=websocket")
		sessions[i] = e.session(conns[i].readOpen().SID)
	}

	pad := bytes.Repeat([]byte("x"), size)
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%3 == 0 {
				time.Sleep(300 * time.Millisecond) // let the socket buffer fill
			}
			for want := 0; want < messages; want++ {
				c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				f, err := ws.ReadFrame(c.r)
				if err != nil {
					errs <- fmt.Errorf("client %d: message %d: %v", i, want, err)
					return
				}
				// "4<n> xxx…": the message packet's data is "<n> <pad>".
				num, _, _ := bytes.Cut(f.Payload[1:], []byte(" "))
				if got, err := strconv.Atoi(string(num)); err != nil || got != want {
					errs <- fmt.Errorf("client %d: got message %q, want %d", i, num, want)
					return
				}
			}
		}()
	}
	for n := 0; n < messages; n++ {
		m := NewMessage(append(strconv.AppendInt(nil, int64(n), 10), append([]byte(" "), pad...)...), false)
		for _, s := range sessions {
			if err := s.Send(m); err != nil {
				t.Fatalf("Send %d: %v", n, err)
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestFlusherSlowClientDoesNotBlockOthers fills one client's socket buffer
// (it never reads) and checks that another session still gets its
// messages at once: the flusher hands the stuck session to a goroutine of
// its own instead of waiting for it.
func TestFlusherSlowClientDoesNotBlockOthers(t *testing.T) {
	e := newEnv(t, Config{MaxBufferedBytes: 256 << 20, WriteTimeout: 30 * time.Second}, func(*Session) {})
	stuck := e.dialWS("EIO=4&transport=websocket")
	stuckSess := e.session(stuck.readOpen().SID)
	live := e.dialWS("EIO=4&transport=websocket")
	liveSess := e.session(live.readOpen().SID)

	big := NewMessage(bytes.Repeat([]byte("y"), 64<<10), false)
	for i := 0; i < 400; i++ { // 25 MB: far more than loopback socket buffers take
		if err := stuckSess.Send(big); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	for i := 0; i < 50; i++ {
		if err := liveSess.Send(NewMessage([]byte("ping "+strconv.Itoa(i)), false)); err != nil {
			t.Fatalf("Send: %v", err)
		}
		start := time.Now()
		live.expectText("4ping " + strconv.Itoa(i))
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("message %d took %v behind a stuck client", i, d)
		}
	}
	// The stuck client still gets everything once it reads.
	for i := 0; i < 400; i++ {
		f, err := stuck.readFrame(10 * time.Second)
		if err != nil {
			t.Fatalf("stuck client, frame %d: %v", i, err)
		}
		if len(f.Payload) != 1+64<<10 {
			t.Fatalf("stuck client, frame %d: %d bytes", i, len(f.Payload))
		}
	}
}

// TestSendDirectOrder mixes SendDirect and Send on one session, with
// messages large enough to fill the socket buffer while the client is not
// reading: the direct writes must neither overtake queued frames nor be
// lost when the socket cannot take them at once.
func TestSendDirectOrder(t *testing.T) {
	e := newEnv(t, Config{MaxBufferedBytes: 256 << 20}, func(*Session) {})
	c := e.dialWS("EIO=4&transport=websocket")
	s := e.session(c.readOpen().SID)
	const n = 2000
	pad := bytes.Repeat([]byte("z"), 8<<10)
	for i := 0; i < n; i++ {
		m := NewMessage(append(strconv.AppendInt(nil, int64(i), 10), append([]byte(" "), pad...)...), false)
		send := s.Send
		if i%3 != 0 {
			send = s.SendDirect
		}
		if err := send(m); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	for want := 0; want < n; want++ {
		f, err := c.readFrame(10 * time.Second)
		if err != nil {
			t.Fatalf("message %d: %v", want, err)
		}
		num, _, _ := bytes.Cut(f.Payload[1:], []byte(" "))
		if got, err := strconv.Atoi(string(num)); err != nil || got != want {
			t.Fatalf("got message %q, want %d", num, want)
		}
	}
}

// TestSendLater: SendLater starts no write; what is sent next takes it
// along, in order, and Flush writes it when nothing follows.
func TestSendLater(t *testing.T) {
	e := newEnv(t, Config{}, func(*Session) {})
	msg := func(s string) *Message { return NewMessage([]byte(s), false) }
	t.Run("websocket", func(t *testing.T) {
		c := e.dialWS("EIO=4&transport=websocket")
		s := e.session(c.readOpen().SID)
		if err := s.SendLater(msg("a")); err != nil {
			t.Fatal(err)
		}
		if f, err := c.readFrame(100 * time.Millisecond); err == nil {
			t.Fatalf("SendLater wrote %q at once", f.Payload)
		}
		s.SendDirect(msg("b"))
		c.expectText("4a")
		c.expectText("4b")
		s.SendLater(msg("c"))
		s.Send(msg("d")) // through a flusher worker
		c.expectText("4c")
		c.expectText("4d")
		s.SendLater(msg("e"))
		s.Flush()
		c.expectText("4e")
		s.Flush() // nothing waits
		if f, err := c.readFrame(100 * time.Millisecond); err == nil {
			t.Fatalf("an empty Flush wrote %q", f.Payload)
		}
	})
	t.Run("polling", func(t *testing.T) {
		sid, _ := e.handshake("EIO=4&transport=polling")
		s := e.session(sid)
		ch := e.pollAsync("EIO=4&transport=polling&sid=" + sid)
		eventually(t, 2*time.Second, func() bool { return pollPending(s) })
		s.SendLater(msg("a"))
		select {
		case r := <-ch:
			t.Fatalf("SendLater answered the pending poll: %q", r.body)
		case <-time.After(100 * time.Millisecond):
		}
		s.SendLater(msg("b"))
		s.Flush()
		if r := waitResponse(t, ch); r.body != "4a\x1e4b" {
			t.Fatalf("poll = %q, want both messages", r.body)
		}
	})
	t.Run("closed", func(t *testing.T) {
		sid, _ := e.handshake("EIO=4&transport=polling")
		s := e.session(sid)
		s.Close()
		if err := s.SendLater(msg("a")); err != ErrSessionClosed {
			t.Fatalf("SendLater on a closed session = %v, want ErrSessionClosed", err)
		}
		s.Flush() // must not panic or block
	})
}
