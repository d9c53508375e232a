package herald_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/herald-rt/herald"
	"github.com/herald-rt/herald/engineio"
)

// wsClient is a raw Engine.IO v4 / Socket.IO v5 client over WebSocket. It
// answers pings itself and hands every other frame to the test.
type wsClient struct {
	t      *testing.T
	conn   net.Conn
	rd     io.Reader
	frames chan frame
	mu     sync.Mutex // serialises writes
}

type frame struct {
	text   string
	binary []byte
}

func dial(t *testing.T, srvURL string) *wsClient {
	t.Helper()
	u := "ws" + strings.TrimPrefix(srvURL, "http") + "/socket.io/?EIO=4&transport=websocket"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, br, _, err := ws.Dial(ctx, u)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c := &wsClient{t: t, conn: conn, rd: conn, frames: make(chan frame, 256)}
	if br != nil {
		// Frames that arrived with the handshake response.
		c.rd = io.MultiReader(br, conn)
	}
	go c.readLoop()
	t.Cleanup(func() { conn.Close() })
	open := c.next()
	if !strings.HasPrefix(open.text, "0{") {
		t.Fatalf("first frame = %q, want open packet", open.text)
	}
	return c
}

func (c *wsClient) readLoop() {
	defer close(c.frames)
	for {
		data, op, err := wsutil.ReadServerData(readWriter{c.rd, c.conn})
		if err != nil {
			return
		}
		if op == ws.OpText && string(data) == "2" {
			c.send("3")
			continue
		}
		if op == ws.OpBinary {
			c.frames <- frame{binary: data}
		} else {
			c.frames <- frame{text: string(data)}
		}
	}
}

// readWriter reads from r and writes (control frame replies) to w.
type readWriter struct {
	io.Reader
	io.Writer
}

func (c *wsClient) send(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	wsutil.WriteClientText(c.conn, []byte(s))
}

func (c *wsClient) sendBinary(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	wsutil.WriteClientBinary(c.conn, b)
}

// next returns the next frame, failing after a timeout.
func (c *wsClient) next() frame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("connection closed while waiting for a frame")
		}
		return f
	case <-time.After(5 * time.Second):
		c.t.Fatalf("timed out waiting for a frame")
	}
	return frame{}
}

func (c *wsClient) expect(want string) {
	c.t.Helper()
	if got := c.next().text; got != want {
		c.t.Fatalf("got frame %q, want %q", got, want)
	}
}

// expectClosed waits for the server to close the connection.
func (c *wsClient) expectClosed() {
	c.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-c.frames:
			if !ok {
				return
			}
		case <-timeout:
			c.t.Fatalf("connection still open")
		}
	}
}

// expectNothing checks that no frame arrives for d.
func (c *wsClient) expectNothing(d time.Duration) {
	c.t.Helper()
	select {
	case f := <-c.frames:
		c.t.Fatalf("unexpected frame %+v", f)
	case <-time.After(d):
	}
}

// connect joins a namespace and returns the socket id.
func (c *wsClient) connect(nsp, auth string) string {
	c.t.Helper()
	prefix := "40"
	if nsp != "/" {
		prefix += nsp + ","
	}
	c.send(prefix + auth)
	f := c.next().text
	if !strings.HasPrefix(f, prefix+"{") {
		c.t.Fatalf("connect reply %q, want %s{...}", f, prefix)
	}
	var reply struct {
		SID string `json:"sid"`
		PID string `json:"pid"`
	}
	if err := json.Unmarshal([]byte(f[len(prefix):]), &reply); err != nil || reply.SID == "" {
		c.t.Fatalf("connect reply %q: %v", f, err)
	}
	return reply.SID
}

func newTestServer(t *testing.T, cfg herald.Config, setup func(*herald.Server)) (*herald.Server, string) {
	t.Helper()
	if cfg.Engine.PingInterval == 0 {
		cfg.Engine.PingInterval = time.Second
		cfg.Engine.PingTimeout = time.Second
	}
	srv, err := herald.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(srv)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hs.Close()
	})
	return srv, hs.URL
}

func TestEventsAndAcks(t *testing.T) {
	got := make(chan string, 4)
	_, url := newTestServer(t, herald.Config{}, func(srv *herald.Server) {
		srv.OnConnection(func(s *herald.Socket) {
			s.On("hello", func(e *herald.Event) {
				var who string
				var n int
				if err := e.Bind(&who, &n); err != nil {
					t.Errorf("bind: %v", err)
				}
				got <- who
				e.Ack("hi "+who, n+1)
			})
			s.On("ask", func(e *herald.Event) {
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					defer cancel()
					reply, err := s.EmitWithAck(ctx, "question", 42)
					if err != nil {
						got <- "error: " + err.Error()
						return
					}
					var answer string
					reply.Bind(&answer)
					got <- answer
				}()
			})
		})
	})
	c := dial(t, url)
	c.connect("/", "")
	c.send(`427["hello","bob",1]`)
	c.expect(`437["hi bob",2]`)
	if who := <-got; who != "bob" {
		t.Fatalf("handler got %q", who)
	}
	c.send(`42["ask"]`)
	f := c.next().text
	m := regexp.MustCompile(`^42(\d+)\["question",42\]$`).FindStringSubmatch(f)
	if m == nil {
		t.Fatalf("got %q, want an event with an ack id", f)
	}
	c.send("43" + m[1] + `["forty-two"]`)
	if a := <-got; a != "forty-two" {
		t.Fatalf("ack answer %q", a)
	}
}

// TestConnectAnswerWithHandlerEmits: the CONNECT answer waits for the
// connection handlers' first packet (one write for both) or their return,
// but never for a handler that blocks after it has emitted.
func TestConnectAnswerWithHandlerEmits(t *testing.T) {
	release := make(chan struct{})
	// No heartbeat within the test: a ping would flush a held answer.
	cfg := herald.Config{Engine: engineio.Config{PingInterval: time.Minute, PingTimeout: time.Minute}}
	_, url := newTestServer(t, cfg, func(srv *herald.Server) {
		srv.OnConnection(func(s *herald.Socket) {
			s.Emit("hello", 1)
			<-release
			s.Emit("released")
		})
		srv.Of("/quiet").OnConnection(func(s *herald.Socket) {})
		srv.Of("/joins").OnConnection(func(s *herald.Socket) {
			s.Join("r")
			s.Namespace().To("r").Emit("room") // a broadcast: written by a flusher worker
		})
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	c := dial(t, url)
	c.connect("/", "") // fails after 5 s if the answer waits for the handler
	c.expect(`42["hello",1]`)
	close(release)
	c.expect(`42["released"]`)
	c.connect("/quiet", "") // sent when the handler returns
	c.connect("/joins", "")
	c.expect(`42/joins,["room"]`)
}

func TestEmitWithAckTimeout(t *testing.T) {
	result := make(chan error, 1)
	_, url := newTestServer(t, herald.Config{}, func(srv *herald.Server) {
		srv.OnConnection(func(s *herald.Socket) {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				_, err := s.EmitWithAck(ctx, "never")
				result <- err
			}()
		})
	})
	c := dial(t, url)
	c.connect("/", "")
	if f := c.next().text; !strings.HasPrefix(f, `420["never"]`) {
		t.Fatalf("got %q", f)
	}
	select {
	case err := <-result:
		if !errors.Is(err, herald.ErrAckTimeout) {
			t.Fatalf("err = %v, want ErrAckTimeout", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("EmitWithAck did not time out")
	}
}

func TestBinaryEcho(t *testing.T) {
	_, url := newTestServer(t, herald.Config{}, func(srv *herald.Server) {
		srv.OnConnection(func(s *herald.Socket) {
			s.On("bin", func(e *herald.Event) {
				var payload struct {
					Data []byte `json:"data"`
				}
				e.Bind(&payload)
				s.Emit("bin-back", map[string]any{"nested": []any{payload.Data, []byte{9}}})
			})
		})
	})
	c := dial(t, url)
	c.connect("/", "")
	c.send(`451-["bin",{"data":{"_placeholder":true,"num":0}}]`)
	c.sendBinary([]byte{1, 2, 3})
	c.expect(`452-["bin-back",{"nested":[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]}]`)
	if b := c.next().binary; string(b) != "\x01\x02\x03" {
		t.Fatalf("attachment 0 = %v", b)
	}
	if b := c.next().binary; string(b) != "\x09" {
		t.Fatalf("attachment 1 = %v", b)
	}
}

func TestRoomsAndExcept(t *testing.T) {
	_, url := newTestServer(t, herald.Config{}, func(srv *herald.Server) {
		srv.OnConnection(func(s *herald.Socket) {
			s.On("join", func(e *herald.Event) {
				var room string
				e.Bind(&room)
				s.Join(room)
				e.Ack()
			})
			s.On("say", func(e *herald.Event) {
				var room, text string
				e.Bind(&room, &text)
				s.To(room).Emit("said", text)
			})
			s.On("all-but", func(e *herald.Event) {
				var room string
				e.Bind(&room)
				srv.Except(room).Emit("news")
			})
		})
	})
	a, b, c := dial(t, url), dial(t, url), dial(t, url)
	a.connect("/", "")
	b.connect("/", "")
	c.connect("/", "")
	a.send(`421["join","r1"]`)
	a.expect(`431[]`)
	b.send(`421["join","r1"]`)
	b.expect(`431[]`)
	a.send(`42["say","r1","hey"]`)
	b.expect(`42["said","hey"]`) // a is the sender: excluded
	c.send(`42["all-but","r1"]`)
	c.expect(`42["news"]`)
	a.expectNothing(100 * time.Millisecond)
	b.expectNothing(0)
}

func TestMiddlewareAndNamespaces(t *testing.T) {
	_, url := newTestServer(t, herald.Config{}, func(srv *herald.Server) {
		priv := srv.Of("/private")
		priv.Use(func(s *herald.Socket) error {
			var auth struct{ Token string }
			json.Unmarshal(s.Handshake().Auth, &auth)
			if auth.Token != "secret" {
				return herald.NewConnectError("not authorized", map[string]string{"why": "token"})
			}
			return nil
		})
		dyn := srv.OfRegexp(regexp.MustCompile(`^/dyn-\d+$`))
		dyn.Use(func(s *herald.Socket) error {
			s.SetData("checked")
			return nil
		})
		dyn.OnConnection(func(s *herald.Socket) {
			s.Emit("welcome", s.Namespace().Name(), s.Data())
		})
	})
	c := dial(t, url)
	c.send(`40/private,{"token":"x"}`)
	c.expect(`44/private,{"message":"not authorized","data":{"why":"token"}}`)
	c.connect("/private", `{"token":"secret"}`)
	c.send(`40/nope,`)
	c.expect(`44/nope,{"message":"Invalid namespace"}`)
	c.connect("/dyn-12", "")
	c.expect(`42/dyn-12,["welcome","/dyn-12","checked"]`)
	// A second CONNECT to a joined namespace closes the connection.
	c.send(`40/dyn-12,`)
	c.expectClosed()
}

func TestDisconnectReasons(t *testing.T) {
	reasons := make(chan herald.DisconnectReason, 4)
	_, url := newTestServer(t, herald.Config{}, func(srv *herald.Server) {
		srv.OnConnection(func(s *herald.Socket) {
			s.OnDisconnect(func(r herald.DisconnectReason) { reasons <- r })
			s.On("kick", func(e *herald.Event) { s.Disconnect(false) })
		})
	})
	wait := func(want herald.DisconnectReason) {
		t.Helper()
		select {
		case r := <-reasons:
			if r != want {
				t.Fatalf("reason %q, want %q", r, want)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("no disconnect, want %q", want)
		}
	}
	c := dial(t, url)
	c.connect("/", "")
	c.send("41")
	wait(herald.ReasonClientNamespaceDisconnect)

	c.connect("/", "")
	c.send(`42["kick"]`)
	c.expect("41")
	wait(herald.ReasonServerNamespaceDisconnect)

	c.connect("/", "")
	c.conn.Close()
	wait(herald.ReasonTransportClose)

	c2 := dial(t, url)
	c2.connect("/", "")
	c2.send(`42{}`) // invalid payload
	wait(herald.ReasonParseError)
	c2.expectClosed()
}

func TestConnectionStateRecovery(t *testing.T) {
	srv, url := newTestServer(t, herald.Config{Recovery: herald.RecoveryConfig{MaxDisconnection: time.Minute}}, func(srv *herald.Server) {
		srv.OnConnection(func(s *herald.Socket) {
			s.On("join", func(e *herald.Event) {
				var room string
				e.Bind(&room)
				s.Join(room)
				e.Ack()
			})
			s.Emit("hello", s.Recovered())
		})
	})
	c := dial(t, url)
	c.send("40")
	f := c.next().text
	var reply struct{ SID, PID string }
	json.Unmarshal([]byte(f[2:]), &reply)
	if reply.PID == "" {
		t.Fatalf("connect reply %q has no pid", f)
	}
	hello := c.next().text
	m := regexp.MustCompile(`^42\["hello",false,"([^"]+)"\]$`).FindStringSubmatch(hello)
	if m == nil {
		t.Fatalf("got %q, want hello with an offset", hello)
	}
	c.send(`421["join","room"]`)
	c.expect(`431[]`)
	c.conn.Close()

	// Wait until the server has seen the disconnect, then broadcast.
	deadline := time.Now().Add(3 * time.Second)
	for len(srv.Of("/").Sockets()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	srv.To("room").Emit("missed", 1)
	srv.To("elsewhere").Emit("not-for-you", 2)

	c2 := dial(t, url)
	c2.send(`40{"pid":"` + reply.PID + `","offset":"` + m[1] + `"}`)
	c2.expect(`40{"sid":"` + reply.SID + `","pid":"` + reply.PID + `"}`)
	if f := c2.next().text; !strings.HasPrefix(f, `42["missed",1,"`) {
		t.Fatalf("got %q, want the missed packet", f)
	}
	if f := c2.next().text; !strings.HasPrefix(f, `42["hello",true,"`) {
		t.Fatalf("got %q, want hello with recovered=true", f)
	}
}

func TestBroadcastWithAcks(t *testing.T) {
	result := make(chan []herald.Args, 1)
	_, url := newTestServer(t, herald.Config{}, func(srv *herald.Server) {
		srv.OnConnection(func(s *herald.Socket) {
			s.On("go", func(e *herald.Event) {
				go func() {
					replies, err := srv.Timeout(2*time.Second).EmitWithAck(context.Background(), "poll")
					if err != nil {
						t.Errorf("EmitWithAck: %v", err)
					}
					result <- replies
				}()
			})
		})
	})
	a, b := dial(t, url), dial(t, url)
	a.connect("/", "")
	b.connect("/", "")
	a.send(`42["go"]`)
	for i, c := range []*wsClient{a, b} {
		f := c.next().text
		m := regexp.MustCompile(`^42(\d+)\["poll"\]$`).FindStringSubmatch(f)
		if m == nil {
			t.Fatalf("got %q", f)
		}
		c.send("43" + m[1] + `[` + string(rune('1'+i)) + `]`)
	}
	select {
	case replies := <-result:
		if len(replies) != 2 {
			t.Fatalf("%d replies, want 2", len(replies))
		}
		sum := 0
		for _, r := range replies {
			var n int
			r.Bind(&n)
			sum += n
		}
		if sum != 3 {
			t.Fatalf("replies sum %d, want 3", sum)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no result")
	}
}

// TestNoGoroutineLeak opens and closes connections and checks that the
// server's goroutines are gone afterwards.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		srv, err := herald.NewServer(herald.Config{})
		if err != nil {
			t.Fatal(err)
		}
		srv.OnConnection(func(s *herald.Socket) {
			s.On("x", func(e *herald.Event) { e.Ack(1) })
		})
		hs := httptest.NewServer(srv)
		sub := &testing.T{}
		_ = sub
		for i := 0; i < 20; i++ {
			c := dial(t, hs.URL)
			c.connect("/", "")
			c.send(`421["x"]`)
			c.expect(`431[1]`)
			if i%2 == 0 {
				c.conn.Close()
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		hs.Close()
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}
