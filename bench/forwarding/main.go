// Command forwarding measures what request forwarding costs: Engine.IO
// long-polling message throughput of clients talking to three Herald nodes
//
//	(a) sticky:      every request goes to the node that owns the session;
//	(b) round robin: every request goes to the next node, so two requests
//	                 in three reach a node that forwards them to the owner.
//
// It prints one JSON line with messages per second and per CPU-second of
// the three server processes (utime+stime from /proc) for both, and the
// ratios round robin / sticky. Run it from the repository root:
//
//	go run ./bench/forwarding -duration 5s
//
// It builds interop/testserver (or uses -testserver), starts three nodes
// (--mode eio, static --peers, a cluster secret) on free loopback ports,
// optionally pinned with taskset (-server-cpus), and stops them at the end.
// Each client loops POST one message, GET its echo; a message is one such
// round trip.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type options struct {
	duration   time.Duration
	warmup     time.Duration
	clients    int
	payload    int
	testserver string
	serverCPUs string
	clientCPUs string
}

// Result is the JSON line the program prints.
type Result struct {
	Scenario        string     `json:"scenario"`
	DurationSeconds float64    `json:"duration_s"`
	Clients         int        `json:"clients"`
	PayloadBytes    int        `json:"payload_bytes"`
	Sticky          Throughput `json:"sticky"`
	RoundRobin      Throughput `json:"round_robin"`
	// Ratios are round robin / sticky.
	RatioMsgsPerSecond    float64 `json:"ratio_msgs_per_s"`
	RatioMsgsPerCPUSecond float64 `json:"ratio_msgs_per_cpu_s"`
}

// Throughput is one scenario's figures.
type Throughput struct {
	Messages        int64   `json:"messages"`
	MsgsPerSecond   float64 `json:"msgs_per_s"`
	ServerCPUSecond float64 `json:"server_cpu_s"`
	MsgsPerCPUSec   float64 `json:"msgs_per_cpu_s"`
	Forwarded       float64 `json:"forwarded_fraction"` // of requests sent to a non-owner
	Errors          int64   `json:"errors"`
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured time per scenario")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "discarded warm-up per scenario")
	flag.IntVar(&o.clients, "clients", 24, "concurrent polling clients")
	flag.IntVar(&o.payload, "payload", 64, "message size in bytes")
	flag.StringVar(&o.testserver, "testserver", "", "testserver binary (default: go build ./interop/testserver)")
	flag.StringVar(&o.serverCPUs, "server-cpus", "", "taskset CPU list for the three nodes, e.g. 0 (empty: no pinning)")
	flag.StringVar(&o.clientCPUs, "client-cpus", "", "CPU list this process pins itself to, e.g. 1 (empty: no pinning)")
	flag.Parse()
	res, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "forwarding:", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(res)
}

func run(o options) (*Result, error) {
	if o.clientCPUs != "" {
		if out, err := exec.Command("taskset", "-pc", o.clientCPUs, strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("taskset: %v: %s", err, out)
		}
	}
	bin := o.testserver
	if bin == "" {
		dir, err := os.MkdirTemp("", "herald-fwd-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "testserver")
		if out, err := exec.Command("go", "build", "-o", bin, "./interop/testserver").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building the testserver (run from the repository root): %v\n%s", err, out)
		}
	}
	nodes, err := startNodes(bin, o.serverCPUs)
	defer stopNodes(nodes)
	if err != nil {
		return nil, err
	}
	res := &Result{Scenario: "forwarding", DurationSeconds: o.duration.Seconds(), Clients: o.clients, PayloadBytes: o.payload}
	if res.Sticky, err = measure(o, nodes, false); err != nil {
		return nil, err
	}
	if res.RoundRobin, err = measure(o, nodes, true); err != nil {
		return nil, err
	}
	if res.Sticky.MsgsPerSecond > 0 {
		res.RatioMsgsPerSecond = round(res.RoundRobin.MsgsPerSecond / res.Sticky.MsgsPerSecond)
	}
	if res.Sticky.MsgsPerCPUSec > 0 {
		res.RatioMsgsPerCPUSecond = round(res.RoundRobin.MsgsPerCPUSec / res.Sticky.MsgsPerCPUSec)
	}
	return res, nil
}

type node struct {
	id, url string
	cmd     *exec.Cmd
	pid     int
}

func startNodes(bin, cpus string) ([]*node, error) {
	var nodes []*node
	var peers []string
	for _, id := range []string{"a", "b", "c"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		addr := ln.Addr().String()
		ln.Close()
		nodes = append(nodes, &node{id: id, url: "http://" + addr})
		peers = append(peers, id+"=http://"+addr)
	}
	for _, n := range nodes {
		argv := []string{bin, "--mode", "eio", "--addr", strings.TrimPrefix(n.url, "http://"), "--node-id", n.id,
			"--peers", strings.Join(peers, ","), "--cluster-secret", "bench-secret",
			"--ping-interval", "25s", "--ping-timeout", "20s", "--log-level", "warn"}
		if cpus != "" {
			argv = append([]string{"taskset", "-c", cpus}, argv...) // taskset execs: same pid
		}
		n.cmd = exec.Command(argv[0], argv[1:]...)
		n.cmd.Stderr = os.Stderr
		n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := n.cmd.Start(); err != nil {
			return nodes, err
		}
		n.pid = n.cmd.Process.Pid
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range nodes {
		for {
			res, err := http.Get(n.url + "/health")
			if err == nil {
				res.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				return nodes, fmt.Errorf("node %s did not start: %v", n.id, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nodes, nil
}

func stopNodes(nodes []*node) {
	for _, n := range nodes {
		if n.cmd != nil && n.cmd.Process != nil {
			n.cmd.Process.Kill()
			n.cmd.Wait()
		}
	}
}

// cpuSeconds is utime+stime of the processes, from /proc/<pid>/stat.
func cpuSeconds(nodes []*node) (float64, error) {
	const clkTck = 100 // USER_HZ on Linux
	var total float64
	for _, n := range nodes {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n.pid))
		if err != nil {
			return 0, err
		}
		s := string(b)
		// Fields after the command name, which is in parentheses.
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		ut, _ := strconv.ParseFloat(f[11], 64) // field 14 overall
		st, _ := strconv.ParseFloat(f[12], 64) // field 15
		total += (ut + st) / clkTck
	}
	return total, nil
}

// measure runs the clients for warm-up plus duration and counts the round
// trips completed in the measured window.
func measure(o options, nodes []*node, roundRobin bool) (Throughput, error) {
	var (
		counting  atomic.Bool
		messages  atomic.Int64
		requests  atomic.Int64
		forwarded atomic.Int64
		errs      atomic.Int64
	)
	ctx, cancel := context.WithTimeout(context.Background(), o.warmup+o.duration+30*time.Second)
	defer cancel()
	stop := make(chan struct{})
	tr := &http.Transport{MaxIdleConnsPerHost: o.clients * 2, MaxIdleConns: o.clients * 6}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	msg := "4" + strings.Repeat("x", o.payload)
	var wg sync.WaitGroup
	for i := 0; i < o.clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := i
			// The session opens on node i%3; sticky keeps to it.
			sid, err := handshake(ctx, hc, nodes[i%len(nodes)].url)
			if err != nil {
				errs.Add(1)
				fmt.Fprintln(os.Stderr, "handshake:", err)
				return
			}
			owner := nodes[i%len(nodes)]
			pick := func() *node {
				if !roundRobin {
					return owner
				}
				next++
				return nodes[next%len(nodes)]
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := pick()
				if err := poll(ctx, hc, n.url, sid, "POST", msg, "ok"); err != nil {
					errs.Add(1)
					return
				}
				m := pick()
				if err := poll(ctx, hc, m.url, sid, "GET", "", msg); err != nil {
					errs.Add(1)
					return
				}
				if counting.Load() {
					messages.Add(1)
					requests.Add(2)
					for _, x := range []*node{n, m} {
						if x != owner {
							forwarded.Add(1)
						}
					}
				}
			}
		}()
	}
	time.Sleep(o.warmup)
	cpu0, err := cpuSeconds(nodes)
	if err != nil {
		close(stop)
		wg.Wait()
		return Throughput{}, err
	}
	start := time.Now()
	counting.Store(true)
	time.Sleep(o.duration)
	counting.Store(false)
	elapsed := time.Since(start)
	cpu1, err := cpuSeconds(nodes)
	close(stop)
	wg.Wait()
	if err != nil {
		return Throughput{}, err
	}
	t := Throughput{Messages: messages.Load(), Errors: errs.Load(), ServerCPUSecond: round(cpu1 - cpu0)}
	t.MsgsPerSecond = round(float64(t.Messages) / elapsed.Seconds())
	if cpu := cpu1 - cpu0; cpu > 0 {
		t.MsgsPerCPUSec = round(float64(t.Messages) / cpu)
	}
	if r := requests.Load(); r > 0 {
		t.Forwarded = round(float64(forwarded.Load()) / float64(r))
	}
	if t.Messages == 0 {
		return t, errors.New("no message completed: is the server working?")
	}
	return t, nil
}

func handshake(ctx context.Context, hc *http.Client, base string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/engine.io/?EIO=4&transport=polling", nil)
	res, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var open struct{ SID string }
	if res.StatusCode != 200 || len(b) == 0 || json.Unmarshal(b[1:], &open) != nil {
		return "", fmt.Errorf("handshake: %d %q", res.StatusCode, b)
	}
	return open.SID, nil
}

func poll(ctx context.Context, hc *http.Client, base, sid, method, body, want string) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(ctx, method, base+"/engine.io/?EIO=4&transport=polling&sid="+sid, rd)
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != 200 || string(b) != want {
		return fmt.Errorf("%s: %d %q, want %q", method, res.StatusCode, b, want)
	}
	return nil
}

func round(f float64) float64 {
	return float64(int64(f*1000+0.5)) / 1000
}
