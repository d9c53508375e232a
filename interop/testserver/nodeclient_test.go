package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-rt/herald/internal/testutil"
)

// roundRobin is the least sticky balancer there is: every request, polling
// or WebSocket, goes to the next node. It counts "Session ID unknown".
type roundRobin struct {
	targets []*url.URL
	next    atomic.Uint64
	unknown atomic.Int64
	proxies []*httputil.ReverseProxy

	mu     sync.Mutex
	errors []string // every answer other than 200 and 101, for diagnostics
}

func newRoundRobin(t *testing.T, nodes []*node) *roundRobin {
	rr := &roundRobin{}
	for _, n := range nodes {
		u, err := url.Parse(n.url)
		if err != nil {
			t.Fatal(err)
		}
		rr.proxies = append(rr.proxies, &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() },
			// Pooled upstream connections (the default transport), as
			// Traefik or nginx with keepalive use them.
			ModifyResponse: func(res *http.Response) error {
				if res.StatusCode == http.StatusBadRequest {
					rr.unknown.Add(1)
				}
				if res.StatusCode != 200 && res.StatusCode != 101 {
					rr.mu.Lock()
					rr.errors = append(rr.errors, fmt.Sprintf("%s %s via %s: %d", res.Request.Method, res.Request.URL.RequestURI(), u.Host, res.StatusCode))
					rr.mu.Unlock()
				}
				return nil
			},
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				rr.mu.Lock()
				rr.errors = append(rr.errors, fmt.Sprintf("%s %s via %s: proxy error %v", r.Method, r.URL.RequestURI(), u.Host, err))
				rr.mu.Unlock()
				w.WriteHeader(http.StatusBadGateway)
			},
		})
	}
	return rr
}

func (rr *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rr.proxies[int(rr.next.Add(1))%len(rr.proxies)].ServeHTTP(w, r)
}

// TestOfficialClientRoundRobin runs the official socket.io-client (polling
// only, and polling then upgrade) through a round-robin proxy in front of
// three nodes sharing Redis: acks, rooms and broadcasts work and no request
// gets 400.
func TestOfficialClientRoundRobin(t *testing.T) {
	nodeBin := testutil.RequireBinary(t, "node")
	modules, _ := filepath.Abs("../node_modules/socket.io-client")
	if _, err := os.Stat(modules); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("interop/node_modules is missing (./scripts/test runs npm ci): %v", err)
		}
		t.Skip("interop/node_modules missing: run npm ci in interop/")
	}
	r := testutil.StartRedis(t)
	// A relaxed heartbeat: the official client runs in another process
	// on a loaded 2-core machine.
	nodes := startNodes(t, r.URL(), []string{"--ping-interval", "2s", "--ping-timeout", "10s"}, "a", "b", "c")
	rr := newRoundRobin(t, nodes)
	proxy := httptest.NewServer(rr)
	defer proxy.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, "testdata/roundrobin-client.mjs", proxy.URL, "10")
	out, err := cmd.CombinedOutput()
	t.Logf("client: %s", strings.TrimSpace(string(out)))
	if err != nil {
		rr.mu.Lock()
		t.Logf("answers other than 200/101:\n%s", strings.Join(rr.errors, "\n"))
		rr.mu.Unlock()
		t.Fatalf("socket.io-client run failed: %v", err)
	}
	if n := rr.unknown.Load(); n != 0 {
		t.Errorf("%d responses were 400 (Session ID unknown)", n)
	}
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if len(rr.errors) > 0 {
		t.Logf("answers other than 200/101:\n%s", strings.Join(rr.errors, "\n"))
	}
}
