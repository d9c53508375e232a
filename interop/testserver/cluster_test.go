package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/herald-rt/herald/cluster"
	"github.com/herald-rt/herald/engineio"
	"github.com/herald-rt/herald/internal/testutil"
)

// These tests run three testserver processes (the built binary) behind no
// sticky balancer at all: the test client sends each request to the next
// node in turn.

const clusterSecret = "interop-secret"

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// testserverBinary builds the testserver once per test run.
func testserverBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "herald-testserver-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "testserver")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// node is one running testserver process.
type node struct {
	id, url string
	cmd     *exec.Cmd
	log     *syncBuffer
	done    chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startNodes starts one sio testserver per id, with the Redis adapter and
// registry when redisURL is set, else with a static peer list. extra flags
// come last, so they override the defaults here.
func startNodes(t *testing.T, redisURL string, extra []string, ids ...string) []*node {
	t.Helper()
	bin := testserverBinary(t)
	nodes := make([]*node, len(ids))
	var peers []string
	for i, id := range ids {
		port := testutil.FreePort(t)
		nodes[i] = &node{id: id, url: fmt.Sprintf("http://127.0.0.1:%d", port), log: &syncBuffer{}, done: make(chan struct{})}
		peers = append(peers, id+"="+nodes[i].url)
	}
	for _, n := range nodes {
		args := []string{"--mode", "sio", "--addr", strings.TrimPrefix(n.url, "http://"), "--node-id", n.id,
			"--cluster-secret", clusterSecret, "--ping-interval", "1s", "--ping-timeout", "5s", "--drain-delay", "500ms"}
		if redisURL != "" {
			args = append(args, "--redis", redisURL, "--adapter", "redis")
		} else {
			args = append(args, "--peers", strings.Join(peers, ","))
		}
		args = append(args, extra...)
		n.cmd = exec.Command(bin, args...)
		n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
		if err := n.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { n.cmd.Wait(); close(n.done) }()
		t.Cleanup(func() {
			n.cmd.Process.Kill()
			<-n.done
			if t.Failed() {
				t.Logf("node %s log:\n%s", n.id, n.log.String())
			}
		})
	}
	for _, n := range nodes {
		waitFor(t, 20*time.Second, "node "+n.id+" healthy", func() bool {
			res, err := http.Get(n.url + "/health")
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.StatusCode == 200
		})
	}
	return nodes
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sioClient is a raw Socket.IO-over-polling client whose every request goes
// to the next node in the list (round robin, no stickiness).
type sioClient struct {
	t       *testing.T
	nodes   []*node
	next    int
	http    *http.Client
	sid     string
	pending []string // packets received but not yet consumed
	unknown int      // "Session ID unknown" answers
	closed  bool     // an Engine.IO close packet arrived
}

func newSIOClient(t *testing.T, nodes []*node, start int) *sioClient {
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	t.Cleanup(tr.CloseIdleConnections)
	return &sioClient{t: t, nodes: nodes, next: start, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (c *sioClient) node() *node {
	n := c.nodes[c.next%len(c.nodes)]
	c.next++
	return n
}

func (c *sioClient) request(method, body string) (int, string, error) {
	u := c.node().url + "/socket.io/?EIO=4&transport=polling"
	if c.sid != "" {
		u += "&sid=" + c.sid
	}
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	res, err := c.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if res.StatusCode == 400 && strings.Contains(string(b), "Session ID unknown") {
		c.unknown++
	}
	return res.StatusCode, string(b), err
}

// connect opens an Engine.IO session and the main namespace; it retries a
// 503 (every node it reached was draining) a few times.
func (c *sioClient) connect() error {
	c.sid, c.pending, c.closed = "", nil, false
	var status int
	var body string
	var err error
	for try := 0; try < 10; try++ {
		if status, body, err = c.request("GET", ""); err == nil && status == 200 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || status != 200 || !strings.HasPrefix(body, "0") {
		return fmt.Errorf("handshake: %d %q %v", status, body, err)
	}
	var open struct{ SID string }
	json.Unmarshal([]byte(body[1:]), &open)
	c.sid = open.SID
	if err := c.post("40"); err != nil {
		return err
	}
	p, err := c.packet()
	if err != nil {
		return err
	}
	if !strings.HasPrefix(p, "0") {
		return fmt.Errorf("connect: got %q", p)
	}
	return nil
}

func (c *sioClient) post(packets ...string) error {
	status, body, err := c.request("POST", strings.Join(packets, "\x1e"))
	if err != nil || status != 200 {
		return fmt.Errorf("POST: %d %q %v", status, body, err)
	}
	return nil
}

// packet returns the next Socket.IO packet, polling (and answering pings)
// as needed.
func (c *sioClient) packet() (string, error) {
	deadline := time.Now().Add(20 * time.Second)
	for len(c.pending) == 0 {
		if c.closed {
			return "", errClosed
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no packet for 20s")
		}
		status, body, err := c.request("GET", "")
		if err != nil || status != 200 {
			return "", fmt.Errorf("GET: %d %q %v", status, body, err)
		}
		for _, p := range strings.Split(body, "\x1e") {
			switch {
			case p == "2":
				if err := c.post("3"); err != nil {
					return "", err
				}
			case p == "1":
				c.closed = true
			case strings.HasPrefix(p, "4"):
				c.pending = append(c.pending, p[1:])
			}
		}
	}
	p := c.pending[0]
	c.pending = c.pending[1:]
	return p, nil
}

var errClosed = fmt.Errorf("engine.io session closed by the server")

// call emits an event with an ack and returns the ack's arguments.
func (c *sioClient) call(id int, event string, args ...any) (string, error) {
	payload, _ := json.Marshal(append([]any{event}, args...))
	if err := c.post(fmt.Sprintf("42%d%s", id, payload)); err != nil {
		return "", err
	}
	var skipped []string
	defer func() { c.pending = append(skipped, c.pending...) }() // events stay for later reads
	for {
		p, err := c.packet()
		if err != nil {
			return "", err
		}
		if rest, ok := strings.CutPrefix(p, fmt.Sprintf("3%d", id)); ok {
			return rest, nil
		}
		skipped = append(skipped, p)
	}
}

func (c *sioClient) owner() string {
	id, _ := engineio.SessionNodeID(c.sid)
	return id
}

// TestRoundRobinWithoutStickiness: Socket.IO clients whose every request
// goes to another node keep working (acks, broadcasts across nodes) with
// zero "Session ID unknown", with the Redis registry and with a static list.
func TestRoundRobinWithoutStickiness(t *testing.T) {
	for _, mode := range []string{"redis", "static"} {
		t.Run(mode, func(t *testing.T) {
			redisURL := ""
			if mode == "redis" {
				redisURL = testutil.StartRedis(t).URL()
			}
			nodes := startNodes(t, redisURL, nil, "a", "b", "c")
			clients := make([]*sioClient, 3)
			for i := range clients {
				clients[i] = newSIOClient(t, nodes, i)
				if err := clients[i].connect(); err != nil {
					t.Fatal(err)
				}
			}
			owners := map[string]bool{}
			for i, c := range clients {
				owners[c.owner()] = true
				for k := 0; k < 10; k++ {
					want := fmt.Sprintf(`[%d,"round %d"]`, i, k)
					got, err := c.call(k, "message-with-ack", i, fmt.Sprintf("round %d", k))
					if err != nil || got != want {
						t.Fatalf("client %d round %d: %q %v, want %q", i, k, got, err, want)
					}
				}
				who, err := c.call(100, "whoami")
				if err != nil || !strings.Contains(who, `"node":"`+c.owner()+`"`) {
					t.Fatalf("whoami: %q %v, want node %s", who, err, c.owner())
				}
			}
			if len(owners) < 2 {
				t.Fatalf("every session on %v: handshakes did not spread", owners)
			}
			if mode == "redis" {
				// A broadcast from one client reaches the others, whichever
				// node owns them and whichever node serves their polls.
				if _, err := clients[0].call(200, "broadcast", map[string]any{"event": "hello", "args": []any{"all"}}); err != nil {
					t.Fatal(err)
				}
				for i, c := range clients {
					for {
						p, err := c.packet()
						if err != nil {
							t.Fatalf("client %d: %v", i, err)
						}
						if p == `2["hello","all"]` {
							break
						}
					}
				}
			}
			for i, c := range clients {
				if c.unknown != 0 {
					t.Errorf("client %d got %d Session ID unknown", i, c.unknown)
				}
			}
		})
	}
}

// TestDrainOnSIGTERM: a node that gets SIGTERM reports draining, opens no
// new session, tells its clients to reconnect (they land on other nodes and
// keep working), leaves the registry and exits; a node that is killed
// leaves the registry within seconds.
func TestDrainOnSIGTERM(t *testing.T) {
	r := testutil.StartRedis(t)
	nodes := startNodes(t, r.URL(), nil, "a", "b", "c")
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{r.Addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	reg := cluster.NewRegistry(client, "")
	registered := func() map[string]cluster.NodeInfo {
		list, err := reg.Nodes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]cluster.NodeInfo{}
		for _, n := range list {
			m[n.ID] = n
		}
		return m
	}
	waitFor(t, 10*time.Second, "three registered nodes", func() bool { return len(registered()) == 3 })
	if u := registered()["a"].URL; u != nodes[0].url {
		t.Errorf("node a registered URL %q, want %q", u, nodes[0].url)
	}

	// Clients until one is owned by node a (handshakes spread round robin).
	var onA []*sioClient
	for i := 0; len(onA) < 2 && i < 12; i++ {
		c := newSIOClient(t, nodes, i)
		if err := c.connect(); err != nil {
			t.Fatal(err)
		}
		if c.owner() == "a" {
			onA = append(onA, c)
		}
	}
	if len(onA) == 0 {
		t.Fatal("no session landed on node a")
	}

	a := nodes[0]
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a reports draining", func() bool {
		res, err := http.Get(a.url + "/health")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res.StatusCode == 503 && strings.HasPrefix(string(b), "draining node=a sessions=")
	})
	waitFor(t, 10*time.Second, "a marked draining in the registry", func() bool { return registered()["a"].Draining })
	// A new session asked of the draining node opens elsewhere.
	fresh := newSIOClient(t, []*node{a}, 0)
	if err := fresh.connect(); err != nil {
		t.Fatal(err)
	}
	if fresh.owner() == "a" {
		t.Fatalf("draining node opened session %s", fresh.sid)
	}
	// a's clients are told to close, reconnect elsewhere and work there.
	others := nodes[1:]
	for i, c := range onA {
		for {
			_, err := c.packet()
			if err == errClosed {
				break
			}
			if err != nil {
				t.Fatalf("client %d on a: %v", i, err)
			}
		}
		c.nodes = others
		if err := c.connect(); err != nil {
			t.Fatal(err)
		}
		if c.owner() == "a" {
			t.Fatalf("client reconnected to the draining node: %s", c.sid)
		}
		if got, err := c.call(1, "message-with-ack", "after"); err != nil || got != `["after"]` {
			t.Fatalf("after reconnecting: %q %v", got, err)
		}
	}
	select {
	case <-a.done:
	case <-time.After(20 * time.Second):
		t.Fatal("node a did not exit after draining")
	}
	if _, ok := registered()["a"]; ok {
		t.Error("node a is still in the registry after exiting")
	}

	// A node that dies leaves the registry within seconds (TTL).
	b := nodes[1]
	b.cmd.Process.Kill()
	<-b.done
	killed := time.Now()
	waitFor(t, 15*time.Second, "killed node b to expire", func() bool { _, ok := registered()["b"]; return !ok })
	if d := time.Since(killed); d > 10*time.Second {
		t.Errorf("killed node left the registry after %v, want ≤ 10s", d)
	}
	for _, c := range onA {
		if c.unknown != 0 {
			t.Errorf("a client got %d Session ID unknown", c.unknown)
		}
	}
}
