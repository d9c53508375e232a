package engineio

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

func TestParseDirectHead(t *testing.T) {
	const path = "/engine.io/"
	tests := []struct {
		name, head string
		ok         bool
		length     int64
		closeAfter bool
	}{
		{"poll", "GET /engine.io/?EIO=4&transport=polling&sid=abc HTTP/1.1\r\nHost: x\r\n\r\n", true, 0, false},
		{"post", "POST /engine.io/?EIO=4&transport=polling&sid=abc HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\n", true, 12, false},
		{"options", "OPTIONS /engine.io/?EIO=4 HTTP/1.1\r\nHost: x\r\n\r\n", true, 0, false},
		{"close", "GET /engine.io/ HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Close\r\n\r\n", true, 0, true},
		{"spaces around a value", "GET /engine.io/ HTTP/1.1\r\nHost:  x \t\r\n\r\n", true, 0, false},
		{"other path", "GET /other HTTP/1.1\r\nHost: x\r\n\r\n", false, 0, false},
		{"escaped path", "GET /engine.io/%61 HTTP/1.1\r\nHost: x\r\n\r\n", false, 0, false},
		{"HTTP/1.0", "GET /engine.io/ HTTP/1.0\r\nHost: x\r\n\r\n", false, 0, false},
		{"HEAD", "HEAD /engine.io/ HTTP/1.1\r\nHost: x\r\n\r\n", false, 0, false},
		{"absolute form", "GET http://x/engine.io/ HTTP/1.1\r\nHost: x\r\n\r\n", false, 0, false},
		{"no host", "GET /engine.io/ HTTP/1.1\r\n\r\n", false, 0, false},
		{"two hosts", "GET /engine.io/ HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", false, 0, false},
		{"chunked", "POST /engine.io/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", false, 0, false},
		{"expect", "POST /engine.io/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n", false, 0, false},
		{"two lengths", "POST /engine.io/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", false, 0, false},
		{"signed length", "POST /engine.io/ HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n", false, 0, false},
		{"negative zero length", "POST /engine.io/ HTTP/1.1\r\nHost: x\r\nContent-Length: -0\r\n\r\n", false, 0, false},
		{"folded line", "GET /engine.io/ HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n", false, 0, false},
		{"space before colon", "GET /engine.io/ HTTP/1.1\r\nHost : x\r\n\r\n", false, 0, false},
		{"control character", "GET /engine.io/ HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", false, 0, false},
		{"pass-through header", "GET /engine.io/ HTTP/1.1\r\nHost: x\r\nx-herald-client: 1.2.3.4:5\r\n\r\n", false, 0, false},
		{"bare LF", "GET /engine.io/ HTTP/1.1\nHost: x\r\n\r\n", false, 0, false},
		{"double space", "GET  /engine.io/ HTTP/1.1\r\nHost: x\r\n\r\n", false, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dr, ok := parseDirectHead([]byte(tt.head), path, []string{"X-Herald-"}, nil)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if dr.contentLength != tt.length || dr.closeAfter != tt.closeAfter {
				t.Errorf("contentLength, closeAfter = %d, %v; want %d, %v", dr.contentLength, dr.closeAfter, tt.length, tt.closeAfter)
			}
		})
	}
}

// Whatever parseDirectHead accepts, net/http reads the same way: method,
// target, host, length and every header value.
func FuzzParseDirectHead(f *testing.F) {
	f.Add([]byte("GET /engine.io/?EIO=4&transport=polling&sid=abc HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("POST /engine.io/?sid=a HTTP/1.1\r\nHost: h:1\r\nContent-Length: 3\r\nContent-Type: text/plain;charset=UTF-8\r\nConnection: close\r\n\r\n"))
	f.Add([]byte("POST /engine.io/?sid=a HTTP/1.1\r\nHost: h\r\nContent-Length: -0\r\n\r\n"))
	f.Add([]byte("GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nuser-agent: a\r\n\r\n"))
	f.Fuzz(func(t *testing.T, head []byte) {
		dr, ok := parseDirectHead(head, "/engine.io/", []string{"X-Herald-"}, nil)
		if !ok {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			t.Fatalf("accepted a head net/http refuses (%v): %q", err, head)
		}
		if req.Method != dr.method || req.RequestURI != string(head[dr.target[0]:dr.target[1]]) ||
			req.Host != string(head[dr.host[0]:dr.host[1]]) || req.ContentLength != dr.contentLength {
			t.Fatalf("net/http reads %s %q host %q length %d; direct %s %q host %q length %d",
				req.Method, req.RequestURI, req.Host, req.ContentLength, dr.method,
				head[dr.target[0]:dr.target[1]], head[dr.host[0]:dr.host[1]], dr.contentLength)
		}
		fields := 0
		for _, f := range dr.fields {
			key := textproto.CanonicalMIMEHeaderKey(string(head[f.name[0]:f.name[1]]))
			if key == "Host" {
				continue // net/http moves it to req.Host
			}
			fields++
			if !slices.Contains(req.Header[key], string(head[f.value[0]:f.value[1]])) {
				t.Fatalf("header %s: net/http has %q, direct %q", key, req.Header[key], head[f.value[0]:f.value[1]])
			}
		}
		n := 0
		for _, vs := range req.Header {
			n += len(vs)
		}
		if n != fields {
			t.Fatalf("net/http has %d header values, direct %d", n, fields)
		}
	})
}

func TestParseEngineQuery(t *testing.T) {
	tests := []struct {
		raw  string
		want engineQuery
	}{
		{"EIO=4&transport=polling&sid=abc", engineQuery{eio: "4", transport: "polling", sid: "abc"}},
		{"EIO=4&transport=polling&t=Pa1b", engineQuery{eio: "4", transport: "polling"}},
		{"sid=a&sid=b", engineQuery{sid: "a"}},
		{"sid=&sid=b", engineQuery{}}, // the first value counts, empty or not
		{"s%69d=x%2By+z", engineQuery{sid: "x+y z"}},
		{"sid=%zz&sid=ok", engineQuery{sid: "ok"}},
		{"sid=a;b&sid=c", engineQuery{sid: "c"}},
		{"&&b64=1", engineQuery{b64: true}},
		{"b64", engineQuery{}},
		{"b64=&b64=1", engineQuery{}},
		{"EIO=3&transport=websocket&b64=1&sid=s", engineQuery{eio: "3", transport: "websocket", sid: "s", b64: true}},
	}
	for _, tt := range tests {
		if got := parseEngineQuery(tt.raw); got != tt.want {
			t.Errorf("parseEngineQuery(%q) = %+v, want %+v", tt.raw, got, tt.want)
		}
	}
}

// A session keeps its transport's name for its life: it must not be a
// substring of the request, which would keep the whole header block.
func TestParseEngineQueryTransportIsConstant(t *testing.T) {
	for _, name := range []string{TransportPolling, TransportWebSocket} {
		raw := string(append([]byte("EIO=4&transport="), name...)) // a fresh block
		got := parseEngineQuery(raw).transport
		if got != name || unsafe.StringData(got) == unsafe.StringData(raw[len(raw)-len(name):]) {
			t.Errorf("transport %q points into the query, not at the constant", got)
		}
	}
}

// parseEngineQuery reads every parameter as url.ParseQuery does.
func FuzzParseEngineQuery(f *testing.F) {
	f.Add("EIO=4&transport=polling&sid=abc&t=x")
	f.Add("s%69d=x%2By+z&sid=2&b64=1")
	f.Add("sid=%zz&sid=ok;&EIO=3")
	f.Fuzz(func(t *testing.T, raw string) {
		got := parseEngineQuery(raw)
		values, _ := url.ParseQuery(raw) // keeps what it could parse
		want := engineQuery{eio: values.Get("EIO"), transport: values.Get("transport"), sid: values.Get("sid"), b64: values.Get("b64") != ""}
		if got != want {
			t.Fatalf("parseEngineQuery(%q) = %+v; url.ParseQuery gives %+v", raw, got, want)
		}
	})
}

// directEnv is a Server behind Serve, with an http.Server whose handler
// counts what reaches it.
type directEnv struct {
	srv     *Server
	addr    string
	hs      *http.Server
	netHTTP atomic.Int32 // requests that went through net/http
	done    chan error
}

func newDirectEnv(t *testing.T) *directEnv { return newDirectEnvWith(t, Config{}, nil) }

// newDirectEnvWith serves cfg; setup may change the http.Server first.
func newDirectEnvWith(t *testing.T, cfg Config, setup func(*http.Server)) *directEnv {
	t.Helper()
	srv, err := NewServer(cfg, echo)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &directEnv{srv: srv, addr: ln.Addr().String(), done: make(chan error, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("/other", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "other")
	})
	mux.Handle("/engine.io/", srv)
	e.hs = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.netHTTP.Add(1)
		mux.ServeHTTP(w, r)
	})}
	if setup != nil {
		setup(e.hs)
	}
	go func() {
		e.done <- srv.Serve(ln, ServeOptions{HTTP: e.hs, PassThroughHeaderPrefixes: []string{"X-Pass-"}})
	}()
	t.Cleanup(func() { e.stop(t) })
	return e
}

func (e *directEnv) stop(t *testing.T) {
	if e.done == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.srv.Shutdown(ctx)
	e.hs.Shutdown(ctx)
	select {
	case err := <-e.done:
		if err != http.ErrServerClosed {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Serve did not return after the http.Server shut down")
	}
	e.done = nil
}

// rawConn is a client connection that writes requests by hand.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func (e *directEnv) dial(t *testing.T) *rawConn {
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, conn: c, br: bufio.NewReader(c)}
}

func (c *rawConn) send(req string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, req); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawConn) response() (*http.Response, string) {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.t.Fatalf("reading a response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("reading a body: %v", err)
	}
	return resp, string(body)
}

// openSession does a polling handshake on c and returns the session id.
func (c *rawConn) openSession() string {
	c.t.Helper()
	c.send("GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body := c.response()
	if resp.StatusCode != 200 || !strings.HasPrefix(body, `0{"sid":"`) {
		c.t.Fatalf("handshake: %d %q", resp.StatusCode, body)
	}
	sid, _, _ := strings.Cut(strings.TrimPrefix(body, `0{"sid":"`), `"`)
	return sid
}

// One keep-alive connection carries a handshake, a POST and the GET that
// fetches its echo, then two pipelined requests answered in order, all
// without net/http.
func TestServeKeepAliveAndPipelining(t *testing.T) {
	e := newDirectEnv(t)
	c := e.dial(t)
	sid := c.openSession()
	poll := "GET /engine.io/?EIO=4&transport=polling&sid=" + sid + " HTTP/1.1\r\nHost: x\r\n\r\n"
	post := func(payload string) string {
		return "POST /engine.io/?EIO=4&transport=polling&sid=" + sid + " HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: " +
			strconv.Itoa(len(payload)) + "\r\n\r\n" + payload
	}
	c.send(post("4hello\x1e4world"))
	if resp, body := c.response(); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("POST: %d %q", resp.StatusCode, body)
	}
	c.send(poll)
	if resp, body := c.response(); resp.StatusCode != 200 || body != "4hello\x1e4world" {
		t.Fatalf("GET: %d %q", resp.StatusCode, body)
	}
	c.send(post("4again") + poll)
	if resp, body := c.response(); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("pipelined POST: %d %q", resp.StatusCode, body)
	}
	if resp, body := c.response(); resp.StatusCode != 200 || body != "4again" {
		t.Fatalf("pipelined GET: %d %q", resp.StatusCode, body)
	}
	if n := e.netHTTP.Load(); n != 0 {
		t.Errorf("%d requests went through net/http, want 0", n)
	}
}

// Requests on one connection reuse one header map: a header of one request
// is not seen by the next. A GET may carry any Content-Type; a v4 POST
// with application/octet-stream is refused, so a POST after such a GET
// shows whether the header carried over.
func TestServeHeadersDoNotCarryOver(t *testing.T) {
	e := newDirectEnv(t)
	c := e.dial(t)
	sid := c.openSession()
	target := "/engine.io/?EIO=4&transport=polling&sid=" + sid
	post := func(payload string) {
		t.Helper()
		c.send("POST " + target + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(payload)) + "\r\n\r\n" + payload)
		if resp, body := c.response(); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("POST %q: %d %q", payload, resp.StatusCode, body)
		}
	}
	post("4one")
	// Content-Type last: the POST has fewer fields, so a stale entry
	// would still point at its value.
	c.send("GET " + target + " HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nAccept-Language: en\r\nContent-Type: application/octet-stream\r\n\r\n")
	if resp, body := c.response(); resp.StatusCode != 200 || body != "4one" {
		t.Fatalf("GET: %d %q", resp.StatusCode, body)
	}
	post("4two")
	if n := e.netHTTP.Load(); n != 0 {
		t.Errorf("%d requests went through net/http, want 0", n)
	}
}

// A GET waiting for data is answered when the session sends; one whose
// client goes away closes the session as the reference does.
func TestServePendingPoll(t *testing.T) {
	e := newDirectEnv(t)
	c := e.dial(t)
	sid := c.openSession()
	s := e.srv.Session(sid)
	poll := "GET /engine.io/?EIO=4&transport=polling&sid=" + sid + " HTTP/1.1\r\nHost: x\r\n\r\n"
	c.send(poll)
	eventually(t, 2*time.Second, func() bool { return pollPending(s) })
	s.Send(NewMessage([]byte("late"), false))
	if resp, body := c.response(); resp.StatusCode != 200 || body != "4late" {
		t.Fatalf("GET: %d %q", resp.StatusCode, body)
	}
	c.send(poll)
	eventually(t, 2*time.Second, func() bool { return pollPending(s) })
	reason := make(chan CloseReason, 1)
	s.OnClose(func(r CloseReason) { reason <- r })
	c.conn.Close()
	select {
	case r := <-reason:
		if r != ReasonTransportError {
			t.Errorf("close reason %q, want %q", r, ReasonTransportError)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the session did not close after its client went away mid-poll")
	}
}

// What Serve does not handle itself reaches the http.Server with every
// byte: other paths, pass-through headers, HTTP/1.0, unknown sessions, a
// header block larger than the read buffer. The connection stays with
// net/http afterwards.
func TestServeHandsOff(t *testing.T) {
	e := newDirectEnv(t)
	big := strings.Repeat("a", 5000)
	tests := []struct {
		name, req string
		status    int
		body      string
	}{
		{"other path", "GET /other HTTP/1.1\r\nHost: x\r\n\r\n", 200, "other"},
		{"pass-through header", "GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nX-Pass-Me: 1\r\n\r\n", 200, `0{"sid":"`},
		{"HTTP/1.0", "GET /other HTTP/1.0\r\nHost: x\r\n\r\n", 200, "other"},
		{"unknown session", "GET /engine.io/?EIO=4&transport=polling&sid=nope HTTP/1.1\r\nHost: x\r\n\r\n", 400, `{"code":1,"message":"Session ID unknown"}`},
		{"large header", "GET /other HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n", 200, "other"},
		{"chunked body", "POST /other HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 200, "other"},
		{"bare LF", "GET /other HTTP/1.1\nHost: x\n\n", 200, "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.netHTTP.Load()
			c := e.dial(t)
			c.send(tt.req)
			resp, body := c.response()
			if resp.StatusCode != tt.status || !strings.HasPrefix(body, tt.body) {
				t.Fatalf("got %d %q, want %d %q...", resp.StatusCode, body, tt.status, tt.body)
			}
			if e.netHTTP.Load() != before+1 {
				t.Fatal("the request did not go through net/http")
			}
			if strings.Contains(tt.req, "HTTP/1.0") { // net/http closes it
				return
			}
			// The next request on the connection is net/http's too.
			c.send("GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
			if _, body := c.response(); body != "other" {
				t.Fatalf("second request: %q", body)
			}
			if e.netHTTP.Load() != before+2 {
				t.Fatal("the second request did not go through net/http")
			}
		})
	}
}

// Connection: close ends the connection after the response; so does a
// handler that answers with it (413 for a body over MaxPayload).
func TestServeConnectionClose(t *testing.T) {
	e := newDirectEnv(t)
	c := e.dial(t)
	sid := c.openSession()
	c.send("GET /engine.io/?EIO=4&transport=polling&sid=" + sid + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	s := e.srv.Session(sid)
	eventually(t, 2*time.Second, func() bool { return pollPending(s) })
	s.Send(NewMessage([]byte("bye"), false))
	if _, body := c.response(); body != "4bye" {
		t.Fatalf("GET: %q", body)
	}
	if n, err := c.br.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("after Connection: close, read %d, %v; want EOF", n, err)
	}

	c = e.dial(t)
	sid = c.openSession()
	c.send("POST /engine.io/?EIO=4&transport=polling&sid=" + sid + " HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n")
	if resp, _ := c.response(); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized POST: %d, want 413", resp.StatusCode)
	}
	if n, err := c.br.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("after 413, read %d, %v; want EOF", n, err)
	}
}

// Shutting the http.Server down stops Serve and closes idle keep-alive
// connections it was serving.
func TestServeStopsWithHTTPServer(t *testing.T) {
	e := newDirectEnv(t)
	c := e.dial(t)
	c.openSession()
	e.stop(t)
	if n, err := c.br.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("idle connection after shutdown: read %d, %v; want it closed", n, err)
	}
	if _, err := net.DialTimeout("tcp", e.addr, time.Second); err == nil {
		t.Fatal("the listener still accepts after shutdown")
	}
}

// The http.Server's timeouts bound directly served connections as they do
// net/http's: ReadHeaderTimeout a new connection that sends nothing, or
// half a head; IdleTimeout a kept-alive one between requests.
func TestServeTimeouts(t *testing.T) {
	e := newDirectEnvWith(t, Config{}, func(hs *http.Server) {
		hs.ReadHeaderTimeout = 200 * time.Millisecond
		hs.IdleTimeout = 400 * time.Millisecond
	})
	closedWithin := func(c *rawConn, min, max time.Duration) {
		t.Helper()
		start := time.Now()
		n, err := c.br.Read(make([]byte, 1))
		took := time.Since(start)
		if n != 0 || err == nil {
			t.Fatalf("read %d, %v; want the connection closed", n, err)
		}
		if took < min || took > max {
			t.Fatalf("closed after %v, want between %v and %v", took, min, max)
		}
	}
	silent := e.dial(t)
	closedWithin(silent, 100*time.Millisecond, 2*time.Second)

	half := e.dial(t)
	half.send("GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n")
	closedWithin(half, 100*time.Millisecond, 2*time.Second)

	kept := e.dial(t)
	kept.openSession()
	closedWithin(kept, 300*time.Millisecond, 3*time.Second)
}

// A kept-alive connection's idle deadline does not bound a request body or
// a long poll: with no ReadTimeout neither has a deadline, as in net/http.
func TestServeIdleDeadlineSparesBodyAndPoll(t *testing.T) {
	e := newDirectEnvWith(t, Config{}, func(hs *http.Server) { hs.IdleTimeout = 300 * time.Millisecond })
	c := e.dial(t)
	sid := c.openSession()
	target := "/engine.io/?EIO=4&transport=polling&sid=" + sid
	c.send("POST " + target + " HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n4hel")
	time.Sleep(700 * time.Millisecond) // past the idle deadline armed before the POST
	c.send("lo")
	if resp, body := c.response(); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("slow POST body: %d %q", resp.StatusCode, body)
	}
	c.send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := c.response(); resp.StatusCode != 200 || body != "4hello" {
		t.Fatalf("poll: %d %q", resp.StatusCode, body)
	}
	c.send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(700 * time.Millisecond) // a poll waiting past the idle deadline
	if err := e.srv.Session(sid).Send(NewMessage([]byte("late"), false)); err != nil {
		t.Fatal(err)
	}
	if resp, body := c.response(); resp.StatusCode != 200 || body != "4late" {
		t.Fatalf("late poll: %d %q", resp.StatusCode, body)
	}
	if n := e.netHTTP.Load(); n != 0 {
		t.Errorf("%d requests went through net/http, want 0", n)
	}
}

// forwardRecorder is a SessionForwarder that answers 200 with a request
// header's value.
type forwardRecorder struct{ header string }

func (f forwardRecorder) ForwardSession(w http.ResponseWriter, r *http.Request, sid string) bool {
	io.WriteString(w, "forwarded "+r.Header.Get(f.header))
	return true
}

// A long poll is parsed without its header map (nothing reads it), but a
// request that goes on to the Forwarder (its session expired between the
// lookup and the handler) carries its headers.
func TestServeForwardedPollKeepsHeaders(t *testing.T) {
	e := newDirectEnvWith(t, Config{Forwarder: forwardRecorder{"X-Probe"}}, nil)
	c := e.dial(t)
	sid := c.openSession()
	s := e.srv.Session(sid)
	s.mu.Lock()
	s.pongDeadline = time.Now().Add(-time.Second) // expired: the pong is late
	s.mu.Unlock()
	c.send("GET /engine.io/?EIO=4&transport=polling&sid=" + sid + " HTTP/1.1\r\nHost: x\r\nX-Probe: kept\r\n\r\n")
	if resp, body := c.response(); resp.StatusCode != 200 || body != "forwarded kept" {
		t.Fatalf("forwarded poll: %d %q, want the Forwarder's answer with the header", resp.StatusCode, body)
	}
	if n := e.netHTTP.Load(); n != 0 {
		t.Errorf("%d requests went through net/http, want 0 (served directly)", n)
	}
}

// A long poll's header map is left empty (nothing reads it), with no
// line of the connection's previous request left in it; filled on demand,
// it has the poll's own lines.
func TestServePollHeaderFilledOnDemand(t *testing.T) {
	e := newDirectEnv(t)
	c := e.dial(t)
	sid := c.openSession()
	s := e.srv.Session(sid)
	target := "/engine.io/?EIO=4&transport=polling&sid=" + sid
	c.send("POST " + target + " HTTP/1.1\r\nHost: x\r\nX-Probe: post\r\nContent-Length: 6\r\n\r\n4hello")
	if resp, body := c.response(); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("POST: %d %q", resp.StatusCode, body)
	}
	c.send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := c.response(); resp.StatusCode != 200 || body != "4hello" {
		t.Fatalf("poll: %d %q", resp.StatusCode, body)
	}
	c.send("GET " + target + " HTTP/1.1\r\nHost: x\r\nX-Probe: get\r\n\r\n")
	eventually(t, 2*time.Second, func() bool { return pollPending(s) })
	// The GET's goroutine waits in awaitPoll; it set these before it
	// registered the poll under the session's lock.
	s.mu.Lock()
	d := s.pollConn
	n, unfilled := len(d.req.Header), d.unfilledHead != ""
	if unfilled {
		d.fillHeader()
	}
	got := d.req.Header.Get("X-Probe")
	s.mu.Unlock()
	if n != 0 || !unfilled {
		t.Errorf("waiting poll: %d header keys, unfilled %v; want an empty map left to fill", n, unfilled)
	}
	if got != "get" {
		t.Errorf("filled header X-Probe = %q, want the poll's own %q", got, "get")
	}
	s.Send(NewMessage([]byte("x"), false))
	if resp, body := c.response(); resp.StatusCode != 200 || body != "4x" {
		t.Fatalf("poll: %d %q", resp.StatusCode, body)
	}
}

// A direct response's write deadline does not outlive it: a request
// handed to net/http later on the same connection (net/http with no
// WriteTimeout sets none) is answered.
func TestServeHandOffClearsDeadlines(t *testing.T) {
	e := newDirectEnvWith(t, Config{WriteTimeout: 200 * time.Millisecond}, nil)
	c := e.dial(t)
	c.openSession()
	time.Sleep(400 * time.Millisecond)
	c.send("GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := c.response(); resp.StatusCode != 200 || body != "other" {
		t.Fatalf("handed-off request: %d %q", resp.StatusCode, body)
	}
}

// Shutting the http.Server down lets a request being answered finish (Serve
// returns after it, and its response says Connection: close), and ends a
// pending long poll.
func TestServeShutdownWaitsForRequests(t *testing.T) {
	e := newDirectEnv(t)
	c := e.dial(t)
	sid := c.openSession()
	c.send("POST /engine.io/?EIO=4&transport=polling&sid=" + sid + " HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n4hel")

	p := e.dial(t)
	psid := p.openSession()
	ps := e.srv.Session(psid)
	p.send("GET /engine.io/?EIO=4&transport=polling&sid=" + psid + " HTTP/1.1\r\nHost: x\r\n\r\n")
	eventually(t, 2*time.Second, func() bool { return pollPending(ps) })
	time.Sleep(50 * time.Millisecond) // the POST is reading its body

	go e.hs.Shutdown(context.Background())
	select {
	case err := <-e.done:
		t.Fatalf("Serve returned (%v) with a request still being read", err)
	case <-time.After(200 * time.Millisecond):
	}
	c.send("lo\x1e4xy")
	resp, body := c.response()
	if resp.StatusCode != 200 || body != "ok" || !resp.Close {
		t.Fatalf("in-flight POST: %d %q close=%v; want 200 ok with Connection: close", resp.StatusCode, body, resp.Close)
	}
	select {
	case err := <-e.done:
		if err != http.ErrServerClosed {
			t.Errorf("Serve returned %v", err)
		}
		e.done = nil
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return after its last request")
	}
	waitClosed(t, ps)
}

// A body over MaxPayload is answered 413 while the client is still sending
// it: the client reads the 413 (no reset before it).
func TestServe413WhileSending(t *testing.T) {
	e := newDirectEnv(t)
	for i := 0; i < 3; i++ {
		c := e.dial(t)
		sid := c.openSession()
		c.send("POST /engine.io/?EIO=4&transport=polling&sid=" + sid + " HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n")
		go func() {
			chunk := bytes.Repeat([]byte("a"), 64<<10)
			for j := 0; j < 30; j++ {
				if _, err := c.conn.Write(chunk); err != nil {
					return
				}
			}
		}()
		resp, _ := c.response()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
			t.Fatalf("try %d: %d close=%v, want 413 with Connection: close", i, resp.StatusCode, resp.Close)
		}
	}
}

// A CORS preflight's 204 carries no Content-Length (RFC 9110 §8.6).
func TestServeNoContentHasNoLength(t *testing.T) {
	e := newDirectEnvWith(t, Config{CORS: CORSConfig{AllowedOrigins: []string{"*"}}}, nil)
	c := e.dial(t)
	c.send("OPTIONS /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nOrigin: http://a\r\n\r\n")
	var head []string
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
		head = append(head, strings.TrimSpace(line))
	}
	if !strings.HasPrefix(head[0], "HTTP/1.1 204") {
		t.Fatalf("status line %q, want 204", head[0])
	}
	for _, h := range head[1:] {
		if strings.HasPrefix(strings.ToLower(h), "content-length") {
			t.Fatalf("204 with %q", h)
		}
	}
	if e.netHTTP.Load() != 0 {
		t.Fatal("the preflight went through net/http")
	}
}
