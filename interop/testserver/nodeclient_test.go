package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
			ModifyResponse: func(res *http.Response) error {
				if res.StatusCode == http.StatusBadRequest {
					rr.unknown.Add(1)
				}
				return nil
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
	nodes := startNodes(t, r.URL(), "a", "b", "c")
	rr := newRoundRobin(t, nodes)
	proxy := httptest.NewServer(rr)
	defer proxy.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, "testdata/roundrobin-client.mjs", proxy.URL, "10")
	out, err := cmd.CombinedOutput()
	t.Logf("client: %s", strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("socket.io-client run failed: %v", err)
	}
	if n := rr.unknown.Load(); n != 0 {
		t.Errorf("%d responses were 400 (Session ID unknown)", n)
	}
}
