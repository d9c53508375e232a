package cluster_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/redis/rueidis"

	"github.com/herald-rt/herald/cluster"
	"github.com/herald-rt/herald/engineio"
	"github.com/herald-rt/herald/internal/testutil"
)

const secret = "test-cluster-secret"

// clientIP is the loopback address test clients connect from, so a node
// can tell the client (127.0.0.2) from a forwarding node (127.0.0.1).
const clientIP = "127.0.0.2"

// seenRequest is what a node's Engine.IO handler saw of one request for a
// session it owns.
type seenRequest struct {
	remote, xff, forwardedBy string
}

// testNode is one in-process node: an Engine.IO echo server behind the
// forwarding verification, with /health.
type testNode struct {
	id  string
	url string
	eio *engineio.Server
	fwd *cluster.Forwarder
	srv *http.Server

	mu   sync.Mutex
	seen []seenRequest
}

func (n *testNode) requests() []seenRequest {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]seenRequest(nil), n.seen...)
}

type clusterOpts struct {
	redis bool              // look nodes up in a Redis registry instead of a static list
	extra map[string]string // extra static peers (id → URL)
}

// startCluster starts one node per id and stops them when the test ends.
func startCluster(t testing.TB, ids []string, o clusterOpts) []*testNode {
	t.Helper()
	lns := make([]net.Listener, len(ids))
	peers := map[string]string{}
	for i, id := range ids {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
		peers[id] = "http://" + ln.Addr().String()
	}
	for id, u := range o.extra {
		peers[id] = u
	}
	var reg *cluster.Registry
	if o.redis {
		r := testutil.StartRedis(t)
		client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{r.Addr}, DisableCache: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(client.Close)
		reg = cluster.NewRegistry(client, "fwdtest")
	}
	nodes := make([]*testNode, len(ids))
	for i, id := range ids {
		n := &testNode{id: id, url: peers[id]}
		cfg := cluster.Config{NodeID: id, Secret: secret, Registry: reg, RefreshInterval: 200 * time.Millisecond}
		if !o.redis {
			cfg.Peers = peers
		}
		fwd, err := cluster.NewForwarder(cfg)
		if err != nil {
			t.Fatal(err)
		}
		n.fwd = fwd
		n.eio, err = engineio.NewServer(engineio.Config{
			NodeID: id, Forwarder: fwd, PingInterval: 20 * time.Second, PingTimeout: 20 * time.Second,
		}, func(s *engineio.Session) {
			s.OnMessage(func(data []byte, binary bool) { s.Send(engineio.NewMessage(data, binary)) })
		})
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle("/health", cluster.HealthHandler(n.eio))
		mux.Handle("/engine.io/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if owner, ok := engineio.SessionNodeID(r.URL.Query().Get("sid")); ok && owner == id && n.eio.Session(r.URL.Query().Get("sid")) != nil {
				from, _ := cluster.ForwardedBy(r)
				n.mu.Lock()
				n.seen = append(n.seen, seenRequest{r.RemoteAddr, r.Header.Get("X-Forwarded-For"), from})
				n.mu.Unlock()
			}
			n.eio.ServeHTTP(w, r)
		}))
		srv := &http.Server{Handler: fwd.Handler(mux)}
		n.srv = srv
		go srv.Serve(lns[i])
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			n.eio.Shutdown(ctx)
			srv.Close()
			fwd.Close()
		})
		nodes[i] = n
	}
	if reg != nil {
		// Registered after the forwarders started: lookups must find them
		// by refreshing on a miss.
		for _, n := range nodes {
			if err := reg.Register(context.Background(), cluster.NodeInfo{ID: n.id, URL: n.url}, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
	}
	return nodes
}

// eioClient is a minimal Engine.IO v4 polling client that connects from
// clientIP.
type eioClient struct {
	t    testing.TB
	http *http.Client
	sid  string
}

func clientDialer() *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP)}, Timeout: 5 * time.Second}
}

func newClient(t testing.TB) *eioClient {
	tr := &http.Transport{DialContext: clientDialer().DialContext, MaxIdleConnsPerHost: 4}
	t.Cleanup(tr.CloseIdleConnections)
	return &eioClient{t: t, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (c *eioClient) do(method, base, sid, body string) (int, string, error) {
	u := base + "/engine.io/?EIO=4&transport=polling"
	if sid != "" {
		u += "&sid=" + sid
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, u, rd)
	res, err := c.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

func (c *eioClient) handshake(base string) error {
	status, body, err := c.do("GET", base, "", "")
	if err != nil {
		return err
	}
	if status != 200 || !strings.HasPrefix(body, "0") {
		return fmt.Errorf("handshake: %d %q", status, body)
	}
	var open struct{ SID string }
	if err := json.Unmarshal([]byte(body[1:]), &open); err != nil {
		return err
	}
	c.sid = open.SID
	return nil
}

func randomPart() string {
	var b [15]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// TestForwardingRoundRobin sends every polling request of several clients to
// the next node in turn, so most land on a node that does not own the
// session, and checks that none gets "Session ID unknown", that every
// echo comes back in order, and that the owner sees the client's address.
func TestForwardingRoundRobin(t *testing.T) {
	for _, mode := range []struct {
		name  string
		redis bool
	}{{"static peers", false}, {"redis registry", true}} {
		t.Run(mode.name, func(t *testing.T) {
			nodes := startCluster(t, []string{"a", "b", "c"}, clusterOpts{redis: mode.redis})
			const clients, rounds = 6, 12
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for ci := 0; ci < clients; ci++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := newClient(t)
					next := ci
					node := func() string { next++; return nodes[next%len(nodes)].url }
					if err := c.handshake(node()); err != nil {
						errs <- err
						return
					}
					for k := 0; k < rounds; k++ {
						msg := fmt.Sprintf("4client%d-msg%d", ci, k)
						if status, body, err := c.do("POST", node(), c.sid, msg); err != nil || status != 200 || body != "ok" {
							errs <- fmt.Errorf("client %d POST %d: %d %q %v", ci, k, status, body, err)
							return
						}
						status, body, err := c.do("GET", node(), c.sid, "")
						if err != nil || status != 200 {
							errs <- fmt.Errorf("client %d GET %d: %d %q %v", ci, k, status, body, err)
							return
						}
						if body != msg {
							errs <- fmt.Errorf("client %d GET %d: %q, want %q", ci, k, body, msg)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			forwarded := 0
			for _, n := range nodes {
				for _, r := range n.requests() {
					host, _, _ := net.SplitHostPort(r.remote)
					if host != clientIP || !strings.Contains(r.xff, clientIP) && r.forwardedBy != "" {
						t.Errorf("node %s saw a request from %+v: want the client's address %s", n.id, r, clientIP)
					}
					if r.forwardedBy != "" {
						forwarded++
					}
				}
			}
			if forwarded == 0 {
				t.Error("no request was forwarded: the test did not exercise forwarding")
			}
		})
	}
}

// TestForwardingWebSocketUpgrade upgrades a polling session through a node
// that does not own it.
func TestForwardingWebSocketUpgrade(t *testing.T) {
	nodes := startCluster(t, []string{"a", "b", "c"}, clusterOpts{})
	c := newClient(t)
	if err := c.handshake(nodes[0].url); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := ws.Dialer{NetDial: clientDialer().DialContext}
	u := "ws" + strings.TrimPrefix(nodes[1].url, "http") + "/engine.io/?EIO=4&transport=websocket&sid=" + c.sid
	conn, br, _, err := d.Dial(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	rw := struct {
		io.Reader
		io.Writer
	}{conn, conn}
	if br != nil {
		rw.Reader = io.MultiReader(br, conn)
	}
	rwc := bufio.NewReadWriter(bufio.NewReader(rw.Reader), bufio.NewWriter(conn))
	send := func(s string) {
		if err := wsutil.WriteClientText(rwc, []byte(s)); err != nil {
			t.Fatal(err)
		}
		rwc.Flush()
	}
	expect := func(want string) {
		got, err := wsutil.ReadServerText(rwc)
		if err != nil || string(got) != want {
			t.Fatalf("read %q, %v; want %q", got, err, want)
		}
	}
	send("2probe")
	expect("3probe")
	send("5")
	send("4over websocket")
	expect("4over websocket")
	if s := nodes[0].eio.Session(c.sid); s == nil || s.Transport() != engineio.TransportWebSocket {
		t.Fatalf("owner's session after the upgrade: %v", s)
	}
}

// TestForwardingUnknownSessions: requests no node can serve still get the
// protocol's 400 "Session ID unknown".
func TestForwardingUnknownSessions(t *testing.T) {
	nodes := startCluster(t, []string{"a", "b", "c"}, clusterOpts{extra: map[string]string{"gone": "http://127.0.0.1:1"}})
	c := newClient(t)
	for _, tc := range []struct{ name, sid string }{
		{"unknown node", "zz-" + randomPart()},
		{"expired session on another node", "b-" + randomPart()},
		{"unknown session on this node", "a-" + randomPart()},
		{"owner unreachable", "gone-" + randomPart()},
		{"not a herald id", "nonsense"},
	} {
		for _, method := range []string{"GET", "POST"} {
			status, body, err := c.do(method, nodes[0].url, tc.sid, map[string]string{"GET": "", "POST": "4x"}[method])
			if err != nil {
				t.Fatal(err)
			}
			if status != 400 || !strings.Contains(body, `"code":1`) || !strings.Contains(body, "Session ID unknown") {
				t.Errorf("%s %s: %d %q, want 400 Session ID unknown", tc.name, method, status, body)
			}
		}
	}
}

// capturedRequest is a forwarded request as it went over the wire.
type capturedRequest struct {
	method, uri string
	header      http.Header
	body        string
}

// TestForgedAndReplayedForwardsRefused captures a genuine forwarded request
// (a node forwards to a peer that is really a recorder), then plays it and
// forgeries of it to a real node from outside.
func TestForgedAndReplayedForwardsRefused(t *testing.T) {
	captured := make(chan capturedRequest, 1)
	recorder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case captured <- capturedRequest{r.Method, r.RequestURI, r.Header.Clone(), string(b)}:
		default:
		}
		io.WriteString(w, "ok")
	}))
	defer recorder.Close()
	nodes := startCluster(t, []string{"a", "b"}, clusterOpts{extra: map[string]string{"rec": recorder.URL}})
	owned := newClient(t)
	if err := owned.handshake(nodes[1].url); err != nil {
		t.Fatal(err)
	}

	// A genuine forward of a POST for a session of "rec", captured.
	c := newClient(t)
	sid := "rec-" + randomPart()
	if status, _, err := c.do("POST", nodes[0].url, sid, "4captured"); err != nil || status != 200 {
		t.Fatalf("forward to the recorder: %d %v", status, err)
	}
	var orig capturedRequest
	select {
	case orig = <-captured:
	case <-time.After(10 * time.Second):
		t.Fatal("nothing captured")
	}
	if orig.header.Get(cluster.HeaderSignature) == "" {
		t.Fatalf("captured request is not signed: %v", orig.header)
	}

	// The outsider sends it to node b, which holds a real session.
	send := func(r capturedRequest) (int, string) {
		req, _ := http.NewRequest(r.method, nodes[1].url+r.uri, strings.NewReader(r.body))
		req.Header = r.header.Clone()
		res, err := c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	modified := func(f func(*capturedRequest)) capturedRequest {
		r := orig
		r.header = orig.header.Clone()
		f(&r)
		return r
	}
	otherSession := strings.Replace(orig.uri, sid, owned.sid, 1)
	cases := []struct {
		name string
		req  capturedRequest
		want int
	}{
		// Signed for another URI: the signature does not match.
		{"redirected to a real session", modified(func(r *capturedRequest) { r.uri = otherSession }), 403},
		{"body swapped", modified(func(r *capturedRequest) { r.body = "4forged" }), 403},
		{"client address changed", modified(func(r *capturedRequest) { r.header.Set(cluster.HeaderClient, "203.0.113.9:1") }), 403},
		{"signature stripped", modified(func(r *capturedRequest) { r.header.Del(cluster.HeaderSignature) }), 403},
		{"made-up signature", modified(func(r *capturedRequest) {
			r.header.Set(cluster.HeaderSignature, strings.Repeat("ab", 32))
		}), 403},
		// The genuine request once is accepted (b answers for the session,
		// which it cannot find: 400, and does not forward it again) ...
		{"genuine, first time", orig, 400},
		// ... and never again.
		{"replayed", orig, 403},
	}
	for _, tc := range cases {
		if status, body := send(tc.req); status != tc.want {
			t.Errorf("%s: %d %q, want %d", tc.name, status, body, tc.want)
		}
	}
	select {
	case <-captured:
		t.Error("node b forwarded a forwarded request again (one hop only)")
	default:
	}

	// A node with the wrong secret cannot forward to b.
	outsider, err := cluster.NewForwarder(cluster.Config{NodeID: "a", Secret: "wrong", Peers: map[string]string{"b": nodes[1].url}})
	if err != nil {
		t.Fatal(err)
	}
	defer outsider.Close()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/engine.io/?EIO=4&transport=polling&sid="+owned.sid, nil)
	if !outsider.ForwardSession(rec, req, owned.sid) || rec.Code != 403 {
		t.Errorf("wrong secret: %d %q, want 403", rec.Code, rec.Body.String())
	}
}

// TestDrainingNodeForwardsHandshakes: a draining node opens no session
// itself; it passes handshakes to a node that is not draining, and answers
// 503 when every node drains.
func TestDrainingNodeForwardsHandshakes(t *testing.T) {
	for _, mode := range []struct {
		name  string
		redis bool
	}{{"static peers", false}, {"redis registry", true}} {
		t.Run(mode.name, func(t *testing.T) {
			nodes := startCluster(t, []string{"a", "b", "c"}, clusterOpts{redis: mode.redis})
			nodes[0].eio.Drain()
			if got := health(t, nodes[0].url); got != "503 draining node=a sessions=0\n" {
				t.Errorf("health of a draining node: %q", got)
			}
			for i := 0; i < 4; i++ {
				c := newClient(t)
				if err := c.handshake(nodes[0].url); err != nil {
					t.Fatal(err)
				}
				owner, _ := engineio.SessionNodeID(c.sid)
				if owner == "a" {
					t.Fatalf("draining node a opened session %s", c.sid)
				}
				var s *engineio.Session
				for _, n := range nodes {
					if n.id == owner {
						s = n.eio.Session(c.sid)
					}
				}
				if s == nil {
					t.Fatalf("owner %s does not hold %s", owner, c.sid)
				}
				if host, _, _ := net.SplitHostPort(s.Handshake().RemoteAddr); host != clientIP {
					t.Errorf("owner saw the handshake from %s, want the client's address %s", s.Handshake().RemoteAddr, clientIP)
				}
			}
			if got := health(t, nodes[1].url); !strings.HasPrefix(got, "200 ok node=b sessions=") {
				t.Errorf("health of b: %q", got)
			}
			nodes[1].eio.Drain()
			nodes[2].eio.Drain()
			c := newClient(t)
			if status, body, _ := c.do("GET", nodes[0].url, "", ""); status != 503 {
				t.Errorf("handshake with every node draining: %d %q, want 503", status, body)
			}
		})
	}
}

func health(t *testing.T, base string) string {
	t.Helper()
	res, err := http.Get(base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	head, err := http.Head(base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.StatusCode != res.StatusCode || head.ContentLength != int64(len(b)) {
		t.Errorf("HEAD /health: %d (length %d), GET: %d (%d bytes)", head.StatusCode, head.ContentLength, res.StatusCode, len(b))
	}
	return fmt.Sprintf("%d %s", res.StatusCode, b)
}

// TestForwardingSurvivesClosedPooledConnections: when the owner closes the
// idle connections a forwarder keeps (a restart, an idle timeout), the next
// forwarded requests are sent again on fresh connections, not failed.
func TestForwardingSurvivesClosedPooledConnections(t *testing.T) {
	nodes := startCluster(t, []string{"a", "b"}, clusterOpts{})
	c := newClient(t)
	if err := c.handshake(nodes[0].url); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 5; round++ {
		for _, method := range []string{"POST", "GET"} {
			body := map[string]string{"POST": fmt.Sprintf("4round %d", round)}[method]
			want := map[string]string{"POST": "ok", "GET": fmt.Sprintf("4round %d", round)}[method]
			status, got, err := c.do(method, nodes[1].url, c.sid, body)
			if err != nil || status != 200 || got != want {
				t.Fatalf("round %d %s through b: %d %q %v, want %q", round, method, status, got, err, want)
			}
		}
		// The owner drops every idle connection, b's pooled ones included.
		nodes[0].srv.SetKeepAlivesEnabled(false)
		nodes[0].srv.SetKeepAlivesEnabled(true)
	}
}
