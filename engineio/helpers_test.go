package engineio

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// TestMain fails the run if any goroutine running this package's (non-test)
// code is still alive once every test has finished.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(5 * time.Second)
		var leaked []string
		for {
			leaked = moduleGoroutines()
			if len(leaked) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if len(leaked) > 0 {
			fmt.Fprintf(os.Stderr, "engineio: %d goroutine(s) leaked after the tests:\n\n%s\n",
				len(leaked), strings.Join(leaked, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

const pkgPrefix = "github.com/herald-rt/herald/engineio."

// moduleGoroutines returns the stacks of the goroutines that are running
// code of this package outside of test files.
func moduleGoroutines() []string { return goroutinesOf(false) }

// sessionGoroutines is moduleGoroutines without those of the listener:
// Serve's accept loop and the connections it keeps alive between requests
// (net/http's, under httptest, are not this package's code either).
func sessionGoroutines() []string { return goroutinesOf(true) }

// listenerFrame reports whether a goroutine whose innermost frame of this
// package is fn waits for connections or requests: Serve's accept loop, an
// idle worker, a connection between requests.
func listenerFrame(fn string) bool {
	for _, f := range []string{"(*directConn).readHead", "(*handoffListener).Accept", "(*Server).Serve(", "(*directServer).worker("} {
		if strings.HasPrefix(fn, pkgPrefix+f) {
			return true
		}
	}
	return false
}

func goroutinesOf(skipListener bool) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		lines := strings.Split(g, "\n")
		for i := 1; i+1 < len(lines); i += 2 {
			fn := strings.TrimSpace(lines[i])
			file := strings.TrimSpace(lines[i+1])
			if strings.HasPrefix(fn, pkgPrefix+"(*directConn).read(") {
				continue // the socket read; its caller says what waits
			}
			if strings.HasPrefix(fn, pkgPrefix) && !strings.Contains(file, "_test.go:") {
				if skipListener && listenerFrame(fn) {
					break
				}
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// eventually polls cond until it holds or timeout passes, then fails the test.
func eventually(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	if !waitFor(timeout, cond) {
		t.Fatalf("condition not met within %v", timeout)
	}
}

// waitFor polls cond until it holds or timeout passes and reports whether it held.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// echo is the session handler used by most tests: every message comes back.
func echo(s *Session) {
	s.OnMessage(func(d []byte, b bool) { s.Send(NewMessage(d, b)) })
}

// serveDirect makes every testEnv serve through Server.Serve instead of an
// httptest server (net/http): ENGINEIO_TEST_SERVE=direct. scripts/test runs
// the package both ways.
var serveDirect = os.Getenv("ENGINEIO_TEST_SERVE") == "direct"

// testEnv is one Server behind an httptest server. Cleanup shuts both down
// and checks that the goroutine count returns to what it was before.
type testEnv struct {
	t      *testing.T
	srv    *Server
	base   string // http://host:port
	path   string
	client *http.Client

	mu       sync.Mutex
	sessions map[string]*Session
	closes   map[string][]CloseReason // OnClose calls, by sid
}

// newEnv starts a server with cfg. onSession may be nil (echo is used). The
// env records every session and wraps OnClose so tests can see the reasons;
// a handler that sets its own OnClose replaces the recording one.
func newEnv(t *testing.T, cfg Config, onSession func(*Session)) *testEnv {
	t.Helper()
	baseline := runtime.NumGoroutine()
	if onSession == nil {
		onSession = echo
	}
	e := &testEnv{
		t:        t,
		path:     cfg.path(),
		sessions: make(map[string]*Session),
		closes:   make(map[string][]CloseReason),
	}
	srv, err := NewServer(cfg, func(s *Session) {
		e.mu.Lock()
		e.sessions[s.ID()] = s
		e.mu.Unlock()
		s.OnClose(func(r CloseReason) {
			e.mu.Lock()
			e.closes[s.ID()] = append(e.closes[s.ID()], r)
			e.mu.Unlock()
		})
		onSession(s)
	})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	e.srv = srv
	var stop func()
	if serveDirect {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: srv}
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ln, ServeOptions{HTTP: hs}) }()
		e.base = "http://" + ln.Addr().String()
		tr := &http.Transport{}
		e.client = &http.Client{Transport: tr}
		stop = func() {
			hs.Close()
			if err := <-done; err != http.ErrServerClosed {
				t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
			}
			tr.CloseIdleConnections()
		}
	} else {
		ts := httptest.NewServer(srv)
		e.base = ts.URL
		e.client = ts.Client()
		stop = func() {
			ts.CloseClientConnections()
			ts.Close()
		}
	}
	e.client.Timeout = 10 * time.Second
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		stop()
		if !waitFor(5*time.Second, func() bool { return runtime.NumGoroutine() <= baseline }) {
			t.Errorf("goroutines: %d after cleanup, want <= %d (baseline)\n%s",
				runtime.NumGoroutine(), baseline, strings.Join(moduleGoroutines(), "\n\n"))
		}
	})
	return e
}

// session returns a session the server opened, even after it closed.
func (e *testEnv) session(sid string) *Session {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.sessions[sid]
	if s == nil {
		e.t.Fatalf("no session %q", sid)
	}
	return s
}

func (e *testEnv) closeReasons(sid string) []CloseReason {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]CloseReason(nil), e.closes[sid]...)
}

func (e *testEnv) url(query string) string {
	return e.base + e.path + "?" + query
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   string
	err    error
}

// request sends one HTTP request; headers are name, value pairs.
func (e *testEnv) request(method, query, body string, headers ...string) response {
	return e.requestCtx(context.Background(), method, query, body, headers...)
}

func (e *testEnv) requestCtx(ctx context.Context, method, query, body string, headers ...string) response {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.url(query), rd)
	if err != nil {
		return response{err: err}
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return response{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b), err: err}
}

// mustRequest is request that fails the test on a transport error.
func (e *testEnv) mustRequest(method, query, body string, headers ...string) response {
	e.t.Helper()
	r := e.request(method, query, body, headers...)
	if r.err != nil {
		e.t.Fatalf("%s ?%s: %v", method, query, r.err)
	}
	return r
}

// handshake opens a polling session with the query (default EIO=4 polling)
// and returns the sid and the open packet's JSON.
func (e *testEnv) handshake(query string) (string, openPacket) {
	e.t.Helper()
	if query == "" {
		query = "EIO=4&transport=polling"
	}
	r := e.mustRequest("GET", query, "")
	if r.status != http.StatusOK {
		e.t.Fatalf("handshake ?%s: status %d, body %q", query, r.status, r.body)
	}
	body := r.body
	if strings.Contains(query, "EIO=4") {
		if !strings.HasPrefix(body, "0{") {
			e.t.Fatalf("handshake body %q, want 0{...}", body)
		}
		body = body[1:]
	} else {
		ps, err := decodePayloadV3String([]byte(body))
		if err != nil || len(ps) != 1 || ps[0].typ != packetOpen {
			e.t.Fatalf("v3 handshake body %q: packets %v, err %v", body, ps, err)
		}
		body = string(ps[0].data)
	}
	op := parseOpen(e.t, body)
	return op.SID, op
}

func (e *testEnv) poll(sid string) response {
	e.t.Helper()
	return e.mustRequest("GET", "EIO=4&transport=polling&sid="+sid, "")
}

func (e *testEnv) post(sid, body string) response {
	e.t.Helper()
	return e.mustRequest("POST", "EIO=4&transport=polling&sid="+sid, body,
		"Content-Type", "text/plain;charset=UTF-8")
}

// pollAsync starts a GET and returns its result channel.
func (e *testEnv) pollAsync(query string) <-chan response {
	ch := make(chan response, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ch <- e.requestCtx(ctx, "GET", query, "")
	}()
	return ch
}

// pollPending reports whether a GET of s is waiting in the server.
func pollPending(s *Session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pollWake != nil
}

// waitResponse waits for an async response.
func waitResponse(t *testing.T, ch <-chan response) response {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("request failed: %v", r.err)
		}
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no response within 5s")
	}
	return response{}
}

// openPacket is the handshake JSON.
type openPacket struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int64    `json:"pingInterval"`
	PingTimeout  int64    `json:"pingTimeout"`
	MaxPayload   int64    `json:"maxPayload"`
	keys         []string
	raw          string
}

func parseOpen(t testing.TB, data string) openPacket {
	t.Helper()
	var op openPacket
	dec := json.NewDecoder(strings.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&op); err != nil {
		t.Fatalf("open packet %q: %v", data, err)
	}
	if op.Upgrades == nil {
		t.Fatalf("open packet %q: upgrades is not an array", data)
	}
	op.keys = jsonKeys(t, data)
	op.raw = data
	return op
}

// jsonKeys returns the top-level keys of a JSON object in order.
func jsonKeys(t testing.TB, data string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(data))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		t.Fatalf("%q is not a JSON object", data)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		keys = append(keys, k.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%q: %v", data, err)
		}
	}
	return keys
}

// wantError checks an Engine.IO JSON error answer exactly.
func wantError(t *testing.T, r response, status int, code ErrorCode, message string) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("request failed: %v", r.err)
	}
	if r.status != status {
		t.Errorf("status = %d, want %d (body %q)", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	want := fmt.Sprintf(`{"code":%d,"message":%q}`, int(code), message)
	if r.body != want {
		t.Errorf("body = %q, want %q", r.body, want)
	}
}

// wsClient is a raw WebSocket client: it masks what it sends and checks
// nothing of what it gets, so tests see the server's frames as they are.
type wsClient struct {
	t    *testing.T
	conn net.Conn
	r    io.Reader
}

// dialWS opens a WebSocket to the env with the query. The connection is
// closed when the test ends.
func (e *testEnv) dialWS(query string) *wsClient {
	e.t.Helper()
	c, err := e.tryDialWS(query)
	if err != nil {
		e.t.Fatalf("dial ?%s: %v", query, err)
	}
	return c
}

func (e *testEnv) tryDialWS(query string) (*wsClient, error) {
	u := "ws" + strings.TrimPrefix(e.base, "http") + e.path + "?" + query
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, br, _, err := ws.Dialer{}.Dial(ctx, u)
	if err != nil {
		return nil, err
	}
	c := &wsClient{t: e.t, conn: conn, r: conn}
	if br != nil {
		c.r = br
	}
	e.t.Cleanup(func() { conn.Close() })
	return c, nil
}

// writeFrame writes one masked frame.
func (c *wsClient) writeFrame(op ws.OpCode, fin bool, payload []byte) {
	c.t.Helper()
	f := ws.MaskFrame(ws.NewFrame(op, fin, append([]byte(nil), payload...)))
	c.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	if err := ws.WriteFrame(c.conn, f); err != nil {
		c.t.Fatalf("write frame: %v", err)
	}
}

func (c *wsClient) sendText(s string)   { c.t.Helper(); c.writeFrame(ws.OpText, true, []byte(s)) }
func (c *wsClient) sendBinary(b []byte) { c.t.Helper(); c.writeFrame(ws.OpBinary, true, b) }

// readFrame reads one server frame within timeout.
func (c *wsClient) readFrame(timeout time.Duration) (ws.Frame, error) {
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	f, err := ws.ReadFrame(c.r)
	if err == nil && f.Header.Masked {
		return f, errors.New("server sent a masked frame")
	}
	return f, err
}

// next reads the next data frame, failing on anything else.
func (c *wsClient) next() (ws.OpCode, []byte) {
	c.t.Helper()
	f, err := c.readFrame(3 * time.Second)
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	if !f.Header.Fin {
		c.t.Fatalf("server sent a fragmented frame")
	}
	return f.Header.OpCode, f.Payload
}

// expectText reads a frame and checks it is the text frame want.
func (c *wsClient) expectText(want string) {
	c.t.Helper()
	op, p := c.next()
	if op != ws.OpText || string(p) != want {
		c.t.Fatalf("frame = op %v %q, want text %q", op, p, want)
	}
}

func (c *wsClient) expectBinary(want []byte) {
	c.t.Helper()
	op, p := c.next()
	if op != ws.OpBinary || !bytes.Equal(p, want) {
		c.t.Fatalf("frame = op %v %q, want binary %q", op, p, want)
	}
}

// expectCloseFrame reads a frame and checks it is a close frame with code.
func (c *wsClient) expectCloseFrame(code ws.StatusCode) {
	c.t.Helper()
	op, p := c.next()
	if op != ws.OpClose {
		c.t.Fatalf("frame = op %v %q, want close %d", op, p, code)
	}
	got, _ := ws.ParseCloseFrameData(p)
	if got != code {
		c.t.Fatalf("close code = %d, want %d", got, code)
	}
}

// expectEnd reads until the server ends the connection (close frame or
// EOF), failing if a data frame arrives first or nothing ends in time.
func (c *wsClient) expectEnd(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		f, err := c.readFrame(time.Until(deadline))
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.t.Fatalf("connection still open after %v", timeout)
			}
			// EOF / reset: the server ended it. Close our side, as a
			// client does once it sees the end.
			c.conn.Close()
			return
		}
		if f.Header.OpCode == ws.OpClose {
			continue // then EOF
		}
		c.t.Fatalf("got frame op %v %q, want the connection to end", f.Header.OpCode, f.Payload)
	}
}

// readOpen reads the open packet of a WebSocket handshake.
func (c *wsClient) readOpen() openPacket {
	c.t.Helper()
	op, p := c.next()
	if op != ws.OpText || len(p) == 0 || p[0] != '0' {
		c.t.Fatalf("first frame = op %v %q, want open packet", op, p)
	}
	return parseOpen(c.t, string(p[1:]))
}

// rawConn is a plain TCP connection to the test server for requests the
// http.Client cannot make (bodies that never finish).
func (e *testEnv) rawConn() (net.Conn, *bufio.Reader) {
	e.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return conn, bufio.NewReader(conn)
}

// isOpen reports whether the server still holds sid as an open session.
func (e *testEnv) isOpen(sid string) bool {
	s := e.srv.Session(sid)
	if s == nil {
		return false
	}
	select {
	case <-s.Done():
		return false
	default:
		return true
	}
}

// waitClosed waits for the session to close and returns its reason.
func waitClosed(t *testing.T, s *Session) CloseReason {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("session %s still open after 5s", s.ID())
	}
	return s.CloseReason()
}

// wantCloseReasons waits until OnClose has run for sid and checks every
// call it got. Done is closed before OnClose runs, so this polls.
func (e *testEnv) wantCloseReasons(t *testing.T, sid string, want ...CloseReason) {
	t.Helper()
	if !waitFor(2*time.Second, func() bool { return len(e.closeReasons(sid)) >= len(want) }) {
		t.Errorf("OnClose calls = %q, want %q", e.closeReasons(sid), want)
		return
	}
	if got := e.closeReasons(sid); !slices.Equal(got, want) {
		t.Errorf("OnClose calls = %q, want %q", got, want)
	}
}

// drainUntilEnd skips data frames until the server ends the connection and
// reports whether it did within timeout.
func (c *wsClient) drainUntilEnd(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		_, err := c.readFrame(time.Until(deadline))
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return false
			}
			c.conn.Close()
			return true
		}
	}
}
