package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/adapter/redis"
	"github.com/herald-rt/herald/balancer"
	"github.com/herald-rt/herald/cluster"
	"github.com/herald-rt/herald/engineio"
	"github.com/herald-rt/herald/internal/testutil"
)

func TestLBUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "at least one --backend"},
		{[]string{"--backend", "localhost:3000"}, "want http://host:port"},
		{[]string{"--backend", "http://127.0.0.1:1", "extra"}, "unexpected argument"},
		{[]string{"--backend", "http://127.0.0.1:1", "--log-level", "loud"}, "--log-level"},
		{[]string{"--no-such-flag"}, "no-such-flag"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		if code := run(append([]string{"lb"}, tt.args...), &stdout, &stderr); code != 2 {
			t.Errorf("herald lb %v: exit %d; want 2 (stderr %q)", tt.args, code, stderr.String())
		}
		if !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("herald lb %v: stderr %q; want it to mention %q", tt.args, stderr.String(), tt.want)
		}
	}
}

func TestLBHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"lb", "-h"}, &stdout, &stderr); code != 0 {
		t.Fatalf("herald lb -h: exit %d", code)
	}
	for _, want := range []string{"--backend", "--listen", "--redis", "--health-interval", "/lb/metrics"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("herald lb -h lacks %q:\n%s", want, stderr.String())
		}
	}
	stdout.Reset()
	run([]string{"help"}, &stdout, &stderr)
	if strings.Contains(stdout.String(), "not built yet") || !strings.Contains(stdout.String(), "herald lb") {
		t.Errorf("herald help still says lb is missing:\n%s", stdout.String())
	}
}

func TestNodeURL(t *testing.T) {
	tests := []struct {
		addr string
		want string
		ok   bool
	}{
		{"127.0.0.1:3000", "http://127.0.0.1:3000", true},
		{"[::1]:3000", "http://[::1]:3000", true},
		{"node-3.internal:3000", "http://node-3.internal:3000", true},
		{"http://10.0.0.5:3000/", "http://10.0.0.5:3000", true},
		{":3000", "", false},
		{"0.0.0.0:3000", "", false},
		{"[::]:3000", "", false},
		{"nonsense", "", false},
	}
	for _, tt := range tests {
		got, ok := nodeURL(tt.addr)
		if got != tt.want || ok != tt.ok {
			t.Errorf("nodeURL(%q) = %q, %v; want %q, %v", tt.addr, got, ok, tt.want, tt.ok)
		}
	}
}

// eioNode is a real Engine.IO echo server with the /health endpoint of a
// Herald node.
func eioNode(t *testing.T, id string) *httptest.Server {
	t.Helper()
	srv, err := engineio.NewServer(engineio.Config{NodeID: id, PingInterval: 5 * time.Second, PingTimeout: 5 * time.Second}, func(s *engineio.Session) {
		s.OnMessage(func(data []byte, binary bool) { s.Send(engineio.NewMessage(data, binary)) })
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/engine.io/", srv)
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok node=%s sessions=%d\n", srv.NodeID(), srv.Count())
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hs.Close()
	})
	return hs
}

var sidRE = regexp.MustCompile(`"sid":"([^"]+)"`)

// Engine.IO sessions opened through `herald lb` spread over the nodes and
// every later request of a session reaches its owner.
func TestLBRoutesEngineIOSessions(t *testing.T) {
	n1, n2 := eioNode(t, "n1"), eioNode(t, "n2")
	b, err := balancer.New(balancer.Config{Backends: []string{n1.URL, n2.URL}, HealthInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runBalancer(ctx, b, addr, 5*time.Second, slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("runBalancer: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("runBalancer did not return after cancel")
		}
	}()
	base := "http://" + addr
	waitFor(t, func() bool {
		res, err := http.Get(base + "/lb/health")
		if err == nil {
			res.Body.Close()
		}
		return err == nil && res.StatusCode == 200
	})

	perNode := map[string]int{}
	var sids []string
	for range 6 {
		res, body := httpDo(t, http.MethodGet, base+"/engine.io/?EIO=4&transport=polling", "")
		m := sidRE.FindStringSubmatch(body)
		if res.StatusCode != 200 || m == nil {
			t.Fatalf("handshake through herald lb: %d %q", res.StatusCode, body)
		}
		node, _ := engineio.SessionNodeID(m[1])
		perNode[node]++
		sids = append(sids, m[1])
	}
	if perNode["n1"] != 3 || perNode["n2"] != 3 {
		t.Errorf("sessions per node = %v; want 3 on each (fewest sessions first)", perNode)
	}
	for _, sid := range sids {
		q := "/engine.io/?EIO=4&transport=polling&sid=" + sid
		if res, body := httpDo(t, http.MethodPost, base+q, "4hello"); res.StatusCode != 200 || body != "ok" {
			t.Errorf("POST for %s through herald lb: %d %q; want 200 ok", sid, res.StatusCode, body)
		}
		if res, body := httpDo(t, http.MethodGet, base+q, ""); res.StatusCode != 200 || !strings.Contains(body, "4hello") {
			t.Errorf("GET for %s through herald lb: %d %q", sid, res.StatusCode, body)
		}
	}
	// The other node does not know the session: routing is what made it work.
	wrong := n2.URL
	if node, _ := engineio.SessionNodeID(sids[0]); node == "n2" {
		wrong = n1.URL
	}
	if res, _ := httpDo(t, http.MethodGet, wrong+"/engine.io/?EIO=4&transport=polling&sid="+sids[0], ""); res.StatusCode != 400 {
		t.Errorf("the non-owner answered %d for the session; want 400", res.StatusCode)
	}
	res, metrics := httpDo(t, http.MethodGet, base+"/lb/metrics", "")
	if res.StatusCode != 200 || !strings.Contains(metrics, `herald_lb_new_sessions_total{backend="`+n1.URL+`",node="n1"} 3`) {
		t.Errorf("/lb/metrics: %d\n%s", res.StatusCode, metrics)
	}
}

func httpDo(t *testing.T, method, url, body string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// With --redis, herald lb finds the nodes in the node registry (a real
// redis-server) and drops the ones that leave it.
func TestLBDiscoversNodesFromRegistry(t *testing.T) {
	rs := testutil.StartRedis(t)
	n1, n2 := eioNode(t, "n1"), eioNode(t, "n2")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	clients, err := redis.Dial(ctx, rs.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer clients.Close()
	reg := cluster.NewRegistry(clients.Pub, "")
	// n1 as a node with --advertise-url registers it; an older entry has
	// only the listen address.
	if err := reg.Register(ctx, cluster.NodeInfo{ID: "n1", Addr: "[::]:1", URL: n1.URL}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(ctx, cluster.NodeInfo{ID: "n2", Addr: strings.TrimPrefix(n2.URL, "http://")}, time.Minute); err != nil {
		t.Fatal(err)
	}
	b, err := balancer.New(balancer.Config{
		Discovery:         registryDiscovery{reg: reg, log: slog.New(slog.DiscardHandler)},
		DiscoveryInterval: 50 * time.Millisecond,
		HealthInterval:    50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	healthy := func() string {
		var ids []string
		for _, s := range b.Status() {
			if s.State == balancer.Healthy {
				ids = append(ids, s.NodeID)
			}
		}
		return strings.Join(ids, ",")
	}
	waitFor(t, func() bool { return healthy() == "n1,n2" || healthy() == "n2,n1" })
	if err := reg.Deregister(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(b.Status()) == 1 && healthy() == "n1" })
}
