package balancer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// node is a fake Herald node: /health as the contract says, and every other
// path answers "node=<id> path=<path>" so a test sees where a request went.
type node struct {
	id  string
	srv *httptest.Server

	mu       sync.Mutex
	health   string // "ok", "draining", or "broken" (500)
	sessions int
	hits     int
}

func newNode(t *testing.T, id string, sessions int) *node {
	t.Helper()
	n := &node{id: id, health: "ok", sessions: sessions}
	n.srv = httptest.NewServer(http.HandlerFunc(n.serve))
	t.Cleanup(n.srv.Close)
	return n
}

func (n *node) set(health string, sessions int) {
	n.mu.Lock()
	n.health, n.sessions = health, sessions
	n.mu.Unlock()
}

func (n *node) serve(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	health, sessions := n.health, n.sessions
	if r.URL.Path != "/health" {
		n.hits++
	}
	n.mu.Unlock()
	switch {
	case r.URL.Path == "/health" && health == "ok":
		fmt.Fprintf(w, "ok node=%s sessions=%d\n", n.id, sessions)
	case r.URL.Path == "/health" && health == "draining":
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "draining node=%s sessions=%d\n", n.id, sessions)
	case r.URL.Path == "/health":
		http.Error(w, "boom", http.StatusInternalServerError)
	case r.Header.Get("Upgrade") == "websocket":
		n.echoUpgrade(w, r)
	default:
		fmt.Fprintf(w, "node=%s path=%s xff=%s", n.id, r.URL.Path, r.Header.Get("X-Forwarded-For"))
	}
}

// echoUpgrade switches protocols and echoes bytes, prefixed by the node id.
func (n *node) echoUpgrade(w http.ResponseWriter, r *http.Request) {
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" + n.id + ":")
	rw.Flush()
	io.Copy(conn, rw)
}

func (n *node) hitCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hits
}

// newBalancer starts a balancer on the nodes with a health interval long
// enough that the test drives every check itself (checkAll).
func newBalancer(t *testing.T, cfg Config, nodes ...*node) *Balancer {
	t.Helper()
	for _, n := range nodes {
		cfg.Backends = append(cfg.Backends, n.srv.URL)
	}
	if cfg.HealthInterval == 0 {
		cfg.HealthInterval = time.Hour
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return b
}

// get sends a request through b and returns status and body.
func get(t *testing.T, b *Balancer, target string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	b.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func servedBy(body string) string {
	id, _, _ := strings.Cut(strings.TrimPrefix(body, "node="), " ")
	return id
}

const unknownBody = `{"code":1,"message":"Session ID unknown"}`

func TestSessionNodeID(t *testing.T) {
	tests := []struct {
		sid  string
		node string
		ok   bool
	}{
		{"nodeA1-abcdefghijklmnopqrst", "nodeA1", true},
		{"n-ab-cd_efghijklmnopqrs", "n", true}, // the random part may hold '-'
		{"-abcdefghijklmnopqrst", "", false},
		{"nodeA1-", "", false},
		{"no_dash", "", false},
		{"bad_node-abcdefghijklmnopqrst", "", false},
		{strings.Repeat("x", 33) + "-abc", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		node, ok := SessionNodeID(tt.sid)
		if node != tt.node || ok != tt.ok {
			t.Errorf("SessionNodeID(%q) = %q, %v; want %q, %v", tt.sid, node, ok, tt.node, tt.ok)
		}
	}
}

func TestParseHealth(t *testing.T) {
	tests := []struct {
		line    string
		want    healthReport
		wantErr bool
	}{
		{"ok node=a1 sessions=3\n", healthReport{Healthy, "a1", 3}, false},
		{"draining node=b sessions=0\n", healthReport{Draining, "b", 0}, false},
		{"ok node=a1\n", healthReport{Healthy, "a1", 0}, false},
		{"ok sessions=3\n", healthReport{}, true},
		{"ok node=a1 sessions=x\n", healthReport{}, true},
		{"ok node=a-1 sessions=1\n", healthReport{}, true},
		{"fine node=a1\n", healthReport{}, true},
		{"", healthReport{}, true},
	}
	for _, tt := range tests {
		got, err := parseHealth(tt.line)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseHealth(%q) = %+v, %v; want %+v, error %v", tt.line, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestNewRejectsBadBackend(t *testing.T) {
	for _, raw := range []string{"", "127.0.0.1:3000", "ftp://h:1", "http://"} {
		_, err := New(Config{Backends: []string{raw}})
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != "Backends" {
			t.Errorf("New(Backends: %q) = %v; want a *ConfigError", raw, err)
		}
	}
}

func TestRoutesBySessionID(t *testing.T) {
	a, bn, c := newNode(t, "a", 0), newNode(t, "b", 0), newNode(t, "c", 0)
	b := newBalancer(t, Config{}, a, bn, c)
	tests := []struct {
		sid        string
		wantStatus int
		wantNode   string
	}{
		{"a-AAAAAAAAAAAAAAAAAAAA", 200, "a"},
		{"b-BB-BBBBBBBBBBBBBBBBB", 200, "b"},
		{"c-CCCCCCCCCCCCCCCCCCCC", 200, "c"},
		{"zz-ZZZZZZZZZZZZZZZZZZZ", 400, ""}, // no such node
		{"garbage", 400, ""},
	}
	for _, tt := range tests {
		for range 3 { // the same owner every time
			status, body := get(t, b, "/socket.io/?EIO=4&transport=polling&sid="+tt.sid)
			if status != tt.wantStatus {
				t.Fatalf("sid %s: status %d %q; want %d", tt.sid, status, body, tt.wantStatus)
			}
			if tt.wantStatus == 400 {
				if body != unknownBody {
					t.Errorf("sid %s: body %q; want %q", tt.sid, body, unknownBody)
				}
				continue
			}
			if got := servedBy(body); got != tt.wantNode {
				t.Errorf("sid %s served by %q; want %q (%q)", tt.sid, got, tt.wantNode, body)
			}
		}
	}
}

func TestNewSessionsGoToFewestSessions(t *testing.T) {
	a, bn, c := newNode(t, "a", 10), newNode(t, "b", 4), newNode(t, "c", 7)
	b := newBalancer(t, Config{}, a, bn, c)
	got := map[string]int{}
	for range 9 {
		status, body := get(t, b, "/socket.io/?EIO=4&transport=polling")
		if status != 200 {
			t.Fatalf("handshake: %d %q", status, body)
		}
		got[servedBy(body)]++
	}
	// b takes 4 to reach c (4+3=7), then b and c share the rest until both
	// reach a: 10-7=3 each. 3+3+3 = 9 handshakes.
	if got["a"] != 0 || got["b"] != 6 || got["c"] != 3 {
		t.Errorf("handshakes per node = %v; want a:0 b:6 c:3", got)
	}
	// A health check replaces the estimate with what the nodes report.
	bn.set("ok", 100)
	b.checkAll(context.Background())
	for _, s := range b.Status() {
		if s.Assigned != 0 {
			t.Errorf("%s: Assigned = %d after a health check; want 0", s.NodeID, s.Assigned)
		}
	}
	if status, body := get(t, b, "/socket.io/?EIO=4&transport=polling"); status != 200 || servedBy(body) != "c" {
		t.Errorf("after the check: %d %q; want node c", status, body)
	}
	// Requests that are not handshakes do not count as sessions.
	before := b.Status()
	get(t, b, "/herald-client.js")
	for i, s := range b.Status() {
		if s.Assigned != before[i].Assigned {
			t.Errorf("%s: a static file counted as a session", s.NodeID)
		}
	}
}

func TestHealthRemovesAndRestoresBackend(t *testing.T) {
	a, bn := newNode(t, "a", 0), newNode(t, "b", 50)
	b := newBalancer(t, Config{FailAfter: 2}, a, bn)
	ctx := context.Background()
	state := func(id string) State {
		for _, s := range b.Status() {
			if s.NodeID == id {
				return s.State
			}
		}
		t.Fatalf("no node %s", id)
		return Unknown
	}
	a.set("broken", 0)
	b.checkAll(ctx)
	if got := state("a"); got != Healthy {
		t.Fatalf("after one failed check a is %v; want still healthy (FailAfter 2)", got)
	}
	b.checkAll(ctx)
	if got := state("a"); got != Down {
		t.Fatalf("after two failed checks a is %v; want down", got)
	}
	if _, body := get(t, b, "/socket.io/?EIO=4&transport=polling"); servedBy(body) != "b" {
		t.Errorf("new session went to %q with a down; want b", body)
	}
	if status, body := get(t, b, "/socket.io/?EIO=4&transport=polling&sid=a-AAAAAAAAAAAAAAAAAAAA"); status != 400 || body != unknownBody {
		t.Errorf("sid of a down node: %d %q; want 400 %s", status, body, unknownBody)
	}
	if code, _ := get(t, b, "/lb/health"); code != 200 {
		t.Errorf("/lb/health = %d with one healthy backend; want 200", code)
	}
	a.set("ok", 0)
	b.checkAll(ctx)
	if got := state("a"); got != Healthy {
		t.Fatalf("after a good check a is %v; want healthy", got)
	}
	if _, body := get(t, b, "/socket.io/?EIO=4&transport=polling"); servedBy(body) != "a" {
		t.Errorf("new session went to %q with a back; want a", body)
	}
}

func TestDrainingBackendKeepsItsSessionsOnly(t *testing.T) {
	a, bn := newNode(t, "a", 0), newNode(t, "b", 50)
	b := newBalancer(t, Config{}, a, bn)
	a.set("draining", 3)
	b.checkAll(context.Background())
	for range 3 {
		if _, body := get(t, b, "/socket.io/?EIO=4&transport=polling"); servedBy(body) != "b" {
			t.Fatalf("new session went to %q while a drains; want b", body)
		}
	}
	if status, body := get(t, b, "/socket.io/?EIO=4&transport=polling&sid=a-AAAAAAAAAAAAAAAAAAAA"); status != 200 || servedBy(body) != "a" {
		t.Errorf("sid of the draining node: %d %q; want served by a", status, body)
	}
	bn.set("draining", 50)
	b.checkAll(context.Background())
	if status, _ := get(t, b, "/socket.io/?EIO=4&transport=polling"); status != http.StatusServiceUnavailable {
		t.Errorf("new session with every node draining: %d; want 503", status)
	}
	if code, _ := get(t, b, "/lb/health"); code != http.StatusServiceUnavailable {
		t.Errorf("/lb/health = %d with every backend draining; want 503", code)
	}
}

func TestUnreachableBackendIsSkippedAtOnce(t *testing.T) {
	a, bn := newNode(t, "a", 0), newNode(t, "b", 50)
	b := newBalancer(t, Config{}, a, bn)
	a.srv.Close() // dies between two health checks
	// The handshake is replayed on b; a is marked down.
	status, body := get(t, b, "/socket.io/?EIO=4&transport=polling")
	if status != 200 || servedBy(body) != "b" {
		t.Fatalf("handshake with a dead: %d %q; want served by b", status, body)
	}
	if status, body := get(t, b, "/socket.io/?EIO=4&transport=polling&sid=a-AAAAAAAAAAAAAAAAAAAA"); status != 400 || body != unknownBody {
		t.Errorf("sid of a dead node: %d %q; want 400 %s", status, body, unknownBody)
	}
	for _, s := range b.Status() {
		if s.NodeID == "a" && (s.State != Down || s.Errors == 0) {
			t.Errorf("a: state %v, %d errors; want down with errors counted", s.State, s.Errors)
		}
	}
}

func TestForwardsClientAddress(t *testing.T) {
	tests := []struct {
		trust bool
		want  string
	}{
		{false, "xff=127.0.0.1"},             // a client's own header is not believed
		{true, "xff=203.0.113.7, 127.0.0.1"}, // behind a trusted proxy: appended
	}
	for _, tt := range tests {
		a := newNode(t, "a", 0)
		b := newBalancer(t, Config{TrustForwarded: tt.trust}, a)
		front := httptest.NewServer(b)
		req, _ := http.NewRequest(http.MethodGet, front.URL+"/socket.io/?EIO=4&transport=polling", nil)
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		front.Close()
		if !strings.HasSuffix(string(body), tt.want) {
			t.Errorf("TrustForwarded %v: backend saw %q; want it to end in %q", tt.trust, body, tt.want)
		}
	}
}

func TestWebSocketPassThrough(t *testing.T) {
	a, bn := newNode(t, "a", 0), newNode(t, "b", 0)
	b := newBalancer(t, Config{}, a, bn)
	front := httptest.NewServer(b)
	defer front.Close()
	for _, owner := range []string{"a", "b"} {
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(front.URL, "http://"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "GET /socket.io/?EIO=4&transport=websocket&sid=%s-XXXXXXXXXXXXXXXXXXXX HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", owner)
		br := bufio.NewReader(conn)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade via the balancer: %s", res.Status)
		}
		io.WriteString(conn, "hello")
		want := owner + ":hello"
		got := make([]byte, len(want))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != want {
			t.Errorf("echo through the upgraded connection = %q, %v; want %q", got, err, want)
		}
		conn.Close()
	}
}

func TestMetrics(t *testing.T) {
	a, bn := newNode(t, "a", 0), newNode(t, "b", 50)
	b := newBalancer(t, Config{}, a, bn)
	get(t, b, "/socket.io/?EIO=4&transport=polling")
	get(t, b, "/socket.io/?EIO=4&transport=polling&sid=a-AAAAAAAAAAAAAAAAAAAA")
	get(t, b, "/socket.io/?EIO=4&transport=polling&sid=q-AAAAAAAAAAAAAAAAAAAA")
	bn.set("draining", 50)
	b.checkAll(context.Background())
	code, text := get(t, b, "/lb/metrics")
	if code != 200 {
		t.Fatalf("/lb/metrics: %d", code)
	}
	for _, want := range []string{
		fmt.Sprintf(`herald_lb_requests_total{backend="%s",node="a"} 2`, a.srv.URL),
		fmt.Sprintf(`herald_lb_new_sessions_total{backend="%s",node="a"} 1`, a.srv.URL),
		fmt.Sprintf(`herald_lb_new_sessions_total{backend="%s",node="b"} 0`, bn.srv.URL),
		fmt.Sprintf(`herald_lb_backend_state{backend="%s",node="a",state="healthy"} 1`, a.srv.URL),
		fmt.Sprintf(`herald_lb_backend_state{backend="%s",node="b",state="draining"} 1`, bn.srv.URL),
		fmt.Sprintf(`herald_lb_backend_sessions{backend="%s",node="b"} 50`, bn.srv.URL),
		fmt.Sprintf(`herald_lb_proxy_errors_total{backend="%s",node="a"} 0`, a.srv.URL),
		"herald_lb_unknown_session_total 1",
		"# TYPE herald_lb_requests_total counter",
	} {
		if !strings.Contains(text, want+"\n") && !strings.HasSuffix(text, want) {
			t.Errorf("/lb/metrics lacks %q:\n%s", want, text)
		}
	}
	if a.hitCount() != 2 {
		t.Errorf("node a saw %d requests; want 2", a.hitCount())
	}
}

// listDiscovery is a Discovery whose answer the test changes.
type listDiscovery struct {
	mu   sync.Mutex
	urls []string
	err  error
}

func (d *listDiscovery) Backends(context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.urls, d.err
}

func TestDiscovery(t *testing.T) {
	a, bn, c := newNode(t, "a", 0), newNode(t, "b", 0), newNode(t, "c", 0)
	d := &listDiscovery{urls: []string{bn.srv.URL, c.srv.URL}}
	b := newBalancer(t, Config{Discovery: d, DiscoveryInterval: time.Hour}, a)
	ids := func() string {
		var out []string
		for _, s := range b.Status() {
			out = append(out, s.NodeID+":"+s.State.String())
		}
		return strings.Join(out, " ")
	}
	nodesSeen := func() map[string]bool {
		m := map[string]bool{}
		for _, s := range b.Status() {
			m[s.NodeID] = s.State == Healthy
		}
		return m
	}
	if m := nodesSeen(); !m["a"] || !m["b"] || !m["c"] {
		t.Fatalf("after Start: %s; want a, b, c healthy", ids())
	}
	// c leaves the registry; the static backend a stays even though
	// discovery never lists it.
	d.mu.Lock()
	d.urls = []string{bn.srv.URL}
	d.mu.Unlock()
	b.discover(context.Background())
	if m := nodesSeen(); len(m) != 2 || !m["a"] || !m["b"] {
		t.Errorf("after c left: %s; want a and b", ids())
	}
	// A failing discovery keeps what is known.
	d.mu.Lock()
	d.err = fmt.Errorf("redis away")
	d.mu.Unlock()
	b.discover(context.Background())
	if m := nodesSeen(); len(m) != 2 {
		t.Errorf("after a failed discovery: %s; want a and b kept", ids())
	}
}

// The background loop checks on its own and Close waits for it.
func TestLoopChecksAndCloseStopsIt(t *testing.T) {
	a := newNode(t, "a", 0)
	before := runtime.NumGoroutine()
	b, err := New(Config{Backends: []string{a.srv.URL}, HealthInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.set("draining", 0)
	deadline := time.Now().Add(10 * time.Second)
	for b.Status()[0].State != Draining {
		if time.Now().After(deadline) {
			t.Fatalf("the loop never saw a drain: %+v", b.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.done:
	default:
		t.Fatal("Close returned before the loop ended")
	}
	if err := b.Start(context.Background()); err != ErrClosed {
		t.Errorf("Start after Close = %v; want ErrClosed", err)
	}
	// Idle keep-alive connections were closed too: the goroutine count
	// returns to where it was.
	deadline = time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCloseWithoutStart(t *testing.T) {
	b, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status, _ := get(t, b, "/socket.io/?EIO=4&transport=polling"); status != http.StatusServiceUnavailable {
		t.Errorf("no backends: %d; want 503", status)
	}
}
