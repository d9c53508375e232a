package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/herald-rt/herald/bench/internal/child"
)

// metrics are one measurement's figures, by key (see metricDefs).
type metrics map[string]float64

// curvePoint is one step of a rate sweep (S3): the plot's data.
type curvePoint struct {
	Rate  float64 `json:"rate"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Loss  float64 `json:"loss"`
	CPUUs float64 `json:"cpu_us_per_msg"`
}

// scenarioResult holds every run of one scenario, per peer.
type scenarioResult struct {
	Runs   map[string][]metrics                 `json:"runs"`             // peer -> runs
	Curves map[string]map[string][][]curvePoint `json:"curves,omitempty"` // peer -> variant -> runs
	Notes  []string                             `json:"notes,omitempty"`
	Error  string                               `json:"error,omitempty"`
}

func (sr *scenarioResult) add(peer string, m metrics) {
	if sr.Runs == nil {
		sr.Runs = map[string][]metrics{}
	}
	sr.Runs[peer] = append(sr.Runs[peer], m)
}

func (sr *scenarioResult) addCurve(peer, variant string, c []curvePoint) {
	if sr.Curves == nil {
		sr.Curves = map[string]map[string][][]curvePoint{}
	}
	if sr.Curves[peer] == nil {
		sr.Curves[peer] = map[string][][]curvePoint{}
	}
	sr.Curves[peer][variant] = append(sr.Curves[peer][variant], c)
}

// sizes are the counts and durations of a run: full or quick.
type sizes struct {
	window, drain, warm time.Duration
	s2N, s2PerProc      int
	s2RateA, s2RateB    float64
	s3N                 int
	s3Rates             []float64
	s4PerNode           int
	s4Low, s4High       float64
	s5N                 int
	s5Rates             [3]float64 // broadcasts/s of S5's steps: low (one request per message), middle, saturating
	s6Workers, s6Storm  int
	s1N                 []int
}

func sizesFor(o *options) sizes {
	if o.quick {
		return sizes{window: 1500 * time.Millisecond, drain: 400 * time.Millisecond, warm: 500 * time.Millisecond,
			s2N: 2000, s2PerProc: 2000, s2RateA: 2, s2RateB: 50,
			s3N: 200, s3Rates: []float64{1000, 5000, 10000},
			s4PerNode: 200, s4Low: 5, s4High: 300,
			s5N: 200, s5Rates: [3]float64{10, 30, 100},
			s6Workers: 16, s6Storm: 1000,
			s1N: []int{1000}}
	}
	return sizes{window: 5 * time.Second, drain: time.Second, warm: 2 * time.Second,
		s2N: 10000, s2PerProc: 5000, s2RateA: 2, s2RateB: 50,
		s3N: 1000, s3Rates: []float64{1000, 2500, 5000, 10000, 15000, 20000},
		s4PerNode: 3000, s4Low: 2, s4High: 30,
		s5N: 1000, s5Rates: [3]float64{10, 30, 100},
		s6Workers: 32, s6Storm: 9000,
		s1N: []int{10000, 19000}}
}

func runScenario(ctx context.Context, o *options, s string) (*scenarioResult, error) {
	sz := sizesFor(o)
	sr := &scenarioResult{}
	if s == "s1" {
		return sr, runS1(ctx, o, sz, sr)
	}
	var redis *redisServer
	if s == "s4" {
		var err error
		if redis, err = startRedis(ctx, o); err != nil {
			return sr, err
		}
		defer redis.p.Stop(2 * time.Second)
	}
	var errs []string
	for run := 0; run < o.runs; run++ {
		for k := range o.peers {
			peer := o.peers[(k+run)%len(o.peers)] // rotate the order
			if ctx.Err() != nil {
				return sr, ctx.Err()
			}
			busy, waited := waitQuiet(ctx, o)
			t0 := time.Now()
			cpu0, _ := readCPUTimes()
			var m metrics
			var err error
			switch s {
			case "s2":
				m, err = runS2(ctx, o, sz, peer)
			case "s3":
				m, err = runS3(ctx, o, sz, peer, sr)
			case "s4":
				m, err = runS4(ctx, o, sz, peer, redis)
			case "s5":
				m, err = runS5(ctx, o, sz, peer)
			case "s6":
				m, err = runS6(ctx, o, sz, peer)
			}
			cpu1, _ := readCPUTimes()
			child.StopAll() // nothing from this measurement survives into the next
			if err != nil {
				logf("  %s run %d %s: %v", s, run+1, peer, err)
				errs = append(errs, fmt.Sprintf("run %d %s: %v", run+1, peer, err))
				continue
			}
			m["loadavg1"] = load1()
			m["busy_before"] = busy
			// A VM's host can take CPU time from it: the figures of a run
			// with much steal are not comparable with a quiet one's.
			m[s+"_steal_pct"] = 100 * stealShare(cpu0, cpu1)
			sr.add(peer, m)
			logf("  %s run %d %-6s %s (%.0fs, load %s, CPUs %.0f%% busy before, after waiting %.0fs)", s, run+1, peer, brief(m), time.Since(t0).Seconds(), loadavg(), 100*busy, waited.Seconds())
			if o.quietBusy > 0 && busy >= o.quietBusy {
				sr.Notes = append(sr.Notes, fmt.Sprintf("run %d %s started on a busy machine (CPUs %.0f%% busy over the second before)", run+1, peer, 100*busy))
			}
		}
	}
	if len(errs) > 0 {
		sr.Notes = append(sr.Notes, errs...)
	}
	return sr, nil
}

func load1() float64 {
	f := strings.Fields(loadavg())
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func brief(m metrics) string {
	var parts []string
	for _, d := range metricDefs {
		if v, ok := m[d.key]; ok {
			parts = append(parts, fmt.Sprintf("%s=%.4g", d.key, v))
		}
	}
	return strings.Join(parts, " ")
}

// ---- servers ----

type server struct {
	p    *proc
	url  string
	addr string
}

// startServer starts one Socket.IO server of peer on a free port (or port,
// if > 0), with the idle-realistic heartbeat (25 s / 20 s), and waits until
// it accepts connections.
func startServer(ctx context.Context, o *options, peer string, port int, adapter, redisURL string) (*server, error) {
	var err error
	if port == 0 {
		if port, err = child.FreePort(); err != nil {
			return nil, err
		}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var argv, env []string
	switch peer {
	case "herald":
		argv = []string{filepath.Join(o.bin, "testserver"), "--mode", "sio", "--addr", addr,
			"--ping-interval", "25s", "--ping-timeout", "20s", "--log-level", "error"}
		if o.profile != "" {
			argv = []string{filepath.Join(o.bin, "profserver"), "-profile-dir", o.profile, "--addr", addr,
				"--ping-interval", "25s", "--ping-timeout", "20s", "--log-level", "error"}
		}
		if adapter != "" {
			argv = append(argv, "--adapter", adapter, "--redis", redisURL)
		}
	case "node":
		argv = []string{"node", filepath.Join(o.root, "bench/node/server.mjs"), "--mode", "sio", "--addr", addr,
			"--ping-interval", "25000", "--ping-timeout", "20000", "--max-lifetime", "900"}
		if adapter != "" {
			argv = append(argv, "--adapter", adapter, "--redis", redisURL)
		}
	default:
		return nil, fmt.Errorf("unknown peer %q", peer)
	}
	p, err := startProc(peer+"@"+addr, o.root, env, o.serverCPU, argv)
	if err != nil {
		return nil, err
	}
	if err := child.WaitListening(ctx, addr, p.Proc, 30*time.Second); err != nil {
		p.Stop(time.Second)
		return nil, err
	}
	return &server{p: p, url: "http://" + addr, addr: addr}, nil
}

type redisServer struct {
	p   *proc
	url string
}

func startRedis(ctx context.Context, o *options) (*redisServer, error) {
	port, err := child.FreePort()
	if err != nil {
		return nil, err
	}
	p, err := startProc("redis", os.TempDir(), nil, o.serverCPU, []string{"redis-server", "--port", strconv.Itoa(port),
		"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", os.TempDir()})
	if err != nil {
		return nil, fmt.Errorf("redis-server (apt install redis-server): %w", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := child.WaitListening(ctx, addr, p.Proc, 20*time.Second); err != nil {
		p.Stop(time.Second)
		return nil, err
	}
	p.Untrack() // it lives for the whole scenario, across the measurements' StopAll
	return &redisServer{p: p, url: "redis://" + addr}, nil
}

// ---- load generator processes ----

// srcCounter gives every load generator process fresh 127.0.x.y source
// addresses, so no run meets the TIME_WAIT sockets of the previous one.
var srcCounter atomic.Int64

func nextSrc() string {
	var ips []string
	for k := 0; k < 2; k++ {
		v := srcCounter.Add(1)
		ips = append(ips, fmt.Sprintf("127.0.%d.%d", 1+(v/250)%250, 2+v%250))
	}
	return strings.Join(ips, ",")
}

type clientSpec struct {
	urls      []string
	n         int
	perProc   int
	transport string
	publisher bool
	reconnect bool
	probe     int
}

// startClients starts ⌈n/perProc⌉ load generators pinned to the client CPU
// and waits until each has made all its connections.
func startClients(ctx context.Context, o *options, cs clientSpec) ([]*proc, error) {
	if cs.perProc <= 0 || cs.perProc > 9500 {
		cs.perProc = 9000
	}
	if cs.transport == "" {
		cs.transport = "websocket"
	}
	var kids []*proc
	var counts []int
	for left, k := cs.n, 0; left > 0; k++ {
		n := min(left, cs.perProc)
		left -= n
		argv := []string{o.self, "-role", "client", "-urls", strings.Join(cs.urls, ","), "-n", strconv.Itoa(n),
			"-transport", cs.transport, "-rate", "3000", "-max-duration", "15m"}
		if cs.transport == "websocket" {
			argv = append(argv, "-src", nextSrc())
		}
		if cs.publisher && k == 0 {
			argv = append(argv, "-publisher")
		}
		if cs.reconnect {
			argv = append(argv, "-reconnect")
		}
		if cs.probe > 0 && k == 0 {
			argv = append(argv, "-probe", strconv.Itoa(cs.probe))
		}
		p, err := startProc(fmt.Sprintf("client%d", k), o.root, nil, o.clientCPU, argv)
		if err != nil {
			return nil, err
		}
		kids = append(kids, p)
		counts = append(counts, n)
	}
	timeout := 60*time.Second + time.Duration(cs.n/500)*time.Second
	for i, p := range kids {
		m, err := p.await(ctx, "ready", timeout)
		if err != nil {
			return nil, err
		}
		if got := num(m["connected"]); int(got) != counts[i] {
			return nil, fmt.Errorf("%s connected %d of %d (failed %v): %s", p.Name, int(got), counts[i], m["failed"], p.StderrTail())
		}
	}
	return kids, nil
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

// phaseResult is one measurement window, merged over load generators.
type phaseResult struct {
	recv     map[string]float64 // deliveries received during the window, by kind
	inWin    map[string]float64 // messages sent in the window and received by its end + drain
	sentPub  float64            // broadcasts sent by the publisher
	sentEcho float64            // echo/ack requests sent
	cpuS     float64            // servers' CPU seconds during the window
	wallS    float64
	lat      map[string]sparseHist
	sendLate sparseHist // how late the load generators' sends left (µs)
	// newsByNode is the broadcast latency per server (index in the urls).
	newsByNode []sparseHist
	drops      float64
}

// runPhase opens a window 300 ms from now on every load generator, and reads
// the servers' CPU time at its start and end.
func runPhase(ctx context.Context, kids []*proc, pids []int, c command) (*phaseResult, error) {
	start := time.Now().Add(300 * time.Millisecond)
	c.Op = "phase"
	c.Start = start.UnixNano()
	for _, k := range kids {
		if err := k.send(c); err != nil {
			return nil, err
		}
	}
	time.Sleep(time.Until(start))
	cpu0 := cpuSeconds(pids)
	label := profiling.label
	profiling.label = ""
	if label != "" {
		syscall.Kill(profiling.pid, syscall.SIGUSR1)
	}
	dur := time.Duration(c.DurMs) * time.Millisecond
	time.Sleep(time.Until(start.Add(dur)))
	cpu1 := cpuSeconds(pids)
	if label != "" {
		syscall.Kill(profiling.pid, syscall.SIGUSR2)
		profileWG.Add(1)
		go collectProfile(ctx, profiling.dir, profiling.bin, profiling.pid, label)
	}
	pr := &phaseResult{recv: map[string]float64{}, inWin: map[string]float64{}, lat: map[string]sparseHist{},
		sendLate: sparseHist{}, cpuS: cpu1 - cpu0, wallS: dur.Seconds()}
	for _, k := range kids {
		m, err := k.await(ctx, "phase", dur+time.Duration(c.DrainMs)*time.Millisecond+60*time.Second)
		if err != nil {
			return nil, err
		}
		pr.sentPub += num(m["sent_pub"])
		pr.sentEcho += num(m["sent_echo"])
		pr.drops += num(m["drops"])
		for kind, v := range asMap(m["recv"]) {
			pr.recv[kind] += num(v)
		}
		for kind, v := range asMap(m["in_win"]) {
			pr.inWin[kind] += num(v)
		}
		for b, cnt := range asMap(m["send_late"]) {
			i, _ := strconv.Atoi(b)
			pr.sendLate[i] += uint64(num(cnt))
		}
		nodes, _ := m["news_by_node"].([]any)
		for i, v := range nodes {
			for len(pr.newsByNode) <= i {
				pr.newsByNode = append(pr.newsByNode, sparseHist{})
			}
			for b, cnt := range asMap(v) {
				k, _ := strconv.Atoi(b)
				pr.newsByNode[i][k] += uint64(num(cnt))
			}
		}
		for kind, v := range asMap(m["lat"]) {
			if pr.lat[kind] == nil {
				pr.lat[kind] = sparseHist{}
			}
			for b, cnt := range asMap(v) {
				i, _ := strconv.Atoi(b)
				pr.lat[kind][i] += uint64(num(cnt))
			}
		}
	}
	return pr, nil
}

// profileWG tracks the collectProfile goroutines; benchmark waits for them.
var profileWG sync.WaitGroup

// profiling names the next window to CPU-profile (bench/profserver).
var profiling struct {
	dir, bin, label string
	pid             int
}

// profileNext makes the next runPhase profile srv (Herald under -profile only).
func profileNext(o *options, peer string, srv *server, label string) {
	if o.profile == "" || peer != "herald" {
		return
	}
	profiling.dir, profiling.bin, profiling.pid = o.profile, filepath.Join(o.bin, "profserver"), srv.p.Pid
	profiling.label = fmt.Sprintf("%s-%d", label, time.Now().Unix())
}

// collectProfile waits for the server's finished profile, names it after
// the window and writes `go tool pprof -top` next to it.
func collectProfile(ctx context.Context, dir, bin string, pid int, label string) {
	defer profileWG.Done()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		matches, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("cpu-%d-*.pprof", pid)))
		if len(matches) > 0 {
			dst := filepath.Join(dir, label+".pprof")
			if os.Rename(matches[0], dst) != nil {
				return
			}
			out, err := child.Run(ctx, dir, nil, time.Minute, "go", "tool", "pprof", "-top", "-nodecount=35", bin, dst)
			if err != nil {
				out += "\n" + err.Error()
			}
			os.WriteFile(filepath.Join(dir, label+".top.txt"), []byte(out+"\n"), 0o644)
			logf("  profile %s", filepath.Join(dir, label+".top.txt"))
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func ms(d time.Duration) int { return int(d / time.Millisecond) }

// ---- S1: idle memory (bench/idlemem) ----

func runS1(ctx context.Context, o *options, sz sizes, sr *scenarioResult) error {
	for _, n := range sz.s1N {
		out := filepath.Join(o.bin, fmt.Sprintf("idlemem-%d.json", n))
		argv := []string{filepath.Join(o.bin, "idlemem"), "-n", strconv.Itoa(n), "-runs", strconv.Itoa(o.runs),
			"-targets", "herald-sio,node-sio", "-bin", o.bin, "-out", out, "-server-cpu", o.serverCPU, "-client-cpu", o.clientCPU}
		if n > 9500 {
			argv = append(argv, "-per-proc", strconv.Itoa((n+1)/2))
		}
		if o.quick {
			argv = append(argv, "-warmup", "50", "-settle", "1s", "-samples", "3", "-sample-interval", "200ms", "-goroutines=false")
		}
		logf("  %s", strings.Join(argv[1:], " "))
		if _, err := child.Run(ctx, o.root, nil, 40*time.Minute, argv...); err != nil {
			return err
		}
		b, err := os.ReadFile(out)
		if err != nil {
			return err
		}
		var res struct {
			Summary []struct {
				Target    string `json:"target"`
				KBPerConn struct {
					Median float64 `json:"median"`
				} `json:"kb_per_conn"`
				HeapKB struct {
					Median float64 `json:"median"`
				} `json:"heap_kb_per_conn"`
			} `json:"summary"`
			Runs json.RawMessage `json:"runs"`
		}
		if err := json.Unmarshal(b, &res); err != nil {
			return err
		}
		for _, t := range res.Summary {
			peer := strings.TrimSuffix(t.Target, "-sio")
			m := metrics{fmt.Sprintf("s1_rss_kb_%dk", n/1000): t.KBPerConn.Median}
			sr.add(peer, m)
			logf("  S1 n=%d %s: %.2f KB/conn", n, peer, t.KBPerConn.Median)
		}
	}
	// One metrics entry per peer: merge the per-n entries.
	for peer, runs := range sr.Runs {
		merged := metrics{}
		for _, m := range runs {
			for k, v := range m {
				merged[k] = v
			}
		}
		sr.Runs[peer] = []metrics{merged}
	}
	sr.Notes = append(sr.Notes, fmt.Sprintf("bench/idlemem, %d run(s) per size; figures are idlemem's medians", o.runs))
	return nil
}

// ---- S2: broadcast fan-out ----

func runS2(ctx context.Context, o *options, sz sizes, peer string) (metrics, error) {
	srv, err := startServer(ctx, o, peer, 0, "", "")
	if err != nil {
		return nil, err
	}
	kids, err := startClients(ctx, o, clientSpec{urls: []string{srv.url}, n: sz.s2N, perProc: sz.s2PerProc, publisher: true})
	if err != nil {
		return nil, err
	}
	pids := []int{srv.p.Pid}
	// Warm-up, discarded.
	if _, err := runPhase(ctx, kids, pids, command{PubRate: sz.s2RateA, DurMs: ms(sz.warm), DrainMs: ms(sz.drain), Pad: 8}); err != nil {
		return nil, err
	}
	m := metrics{}
	rss0 := rssKB(srv.p.Pid)
	for _, v := range []struct {
		name string
		rate float64
	}{{"s2a", sz.s2RateA}, {"s2b", sz.s2RateB}} {
		profileNext(o, peer, srv, v.name)
		pr, err := runPhase(ctx, kids, pids, command{PubRate: v.rate, DurMs: ms(sz.window), DrainMs: ms(sz.drain), Pad: 8})
		if err != nil {
			return nil, err
		}
		d := pr.recv["news"]
		m[v.name+"_rate"] = d / pr.wallS
		m[v.name+"_cpu_us"] = safeDiv(pr.cpuS*1e6, d)
		h := pr.lat["news"]
		m[v.name+"_p50"] = h.quantileMs(0.5)
		m[v.name+"_p99"] = h.quantileMs(0.99)
		m[v.name+"_p999"] = h.quantileMs(0.999)
		m[v.name+"_loss"] = 1 - safeDiv(pr.inWin["news"], pr.sentPub*float64(sz.s2N))
		m[v.name+"_drops"] = pr.drops
	}
	m["s2_rss_growth_mb"] = float64(rssKB(srv.p.Pid)-rss0) / 1024
	return m, nil
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// ---- S3: echo and ack latency, open loop ----

func runS3(ctx context.Context, o *options, sz sizes, peer string, sr *scenarioResult) (metrics, error) {
	srv, err := startServer(ctx, o, peer, 0, "", "")
	if err != nil {
		return nil, err
	}
	kids, err := startClients(ctx, o, clientSpec{urls: []string{srv.url}, n: sz.s3N})
	if err != nil {
		return nil, err
	}
	pids := []int{srv.p.Pid}
	if _, err := runPhase(ctx, kids, pids, command{EchoRate: 500, DurMs: ms(sz.warm), DrainMs: ms(sz.drain), Pad: 8}); err != nil {
		return nil, err
	}
	m := metrics{}
	window := sz.window
	if !o.quick {
		window = 3 * time.Second // many steps: shorter windows keep the run bounded
	}
	for _, variant := range []string{"echo", "ack"} {
		var curve []curvePoint
		best := 0.0
		for _, rate := range sz.s3Rates {
			if rate == 10000 {
				profileNext(o, peer, srv, "s3-"+variant+"-10k")
			}
			pr, err := runPhase(ctx, kids, pids, command{EchoRate: rate, Ack: variant == "ack", DurMs: ms(window), DrainMs: ms(sz.drain), Pad: 8})
			if err != nil {
				return nil, err
			}
			h := pr.lat[variant]
			pt := curvePoint{Rate: rate, P50: h.quantileMs(0.5), P99: h.quantileMs(0.99), P999: h.quantileMs(0.999),
				Loss: 1 - safeDiv(pr.inWin[variant], pr.sentEcho), CPUUs: safeDiv(pr.cpuS*1e6, pr.recv[variant])}
			curve = append(curve, pt)
			if pt.P99 <= 10 && pt.Loss < 0.01 {
				best = rate
			}
			if rate == 5000 || rate == 10000 {
				m[fmt.Sprintf("s3_%s_p99_%dk", variant, int(rate/1000))] = pt.P99
			}
			if rate == 10000 {
				// The load generator's own share of the latency above.
				m["s3_"+variant+"_sendlate_p99_10k"] = pr.sendLate.quantileMs(0.99)
			}
			if rate == 1000 {
				m["s3_"+variant+"_cpu_us"] = pt.CPUUs
				m["s3_"+variant+"_p50_1k"] = pt.P50
			}
			if pt.P50 > 100 || pt.Loss > 0.05 {
				break // saturated (the median waits too): higher rates only queue more
			}
		}
		m["s3_"+variant+"_max_rate"] = best
		sr.addCurve(peer, variant, curve)
	}
	return m, nil
}

// ---- S4: cross-node broadcast over Redis, 3 nodes ----

func runS4(ctx context.Context, o *options, sz sizes, peer string, redis *redisServer) (metrics, error) {
	m := metrics{}
	for _, ad := range []struct{ name, adapter string }{{"s4c", "redis"}, {"s4s", "redis-sharded"}} {
		var urls []string
		var pids []int
		var first *server
		for i := 0; i < 3; i++ {
			srv, err := startServer(ctx, o, peer, 0, ad.adapter, redis.url)
			if err != nil {
				return nil, err
			}
			urls = append(urls, srv.url)
			pids = append(pids, srv.p.Pid)
			if first == nil {
				first = srv
			}
		}
		n := 3 * sz.s4PerNode
		kids, err := startClients(ctx, o, clientSpec{urls: urls, n: n, perProc: 4500, publisher: true, probe: 30})
		if err != nil {
			return nil, err
		}
		if _, err := runPhase(ctx, kids, pids, command{PubRate: sz.s4Low, DurMs: ms(sz.warm), DrainMs: ms(sz.drain), Pad: 8}); err != nil {
			return nil, err
		}
		low, err := runPhase(ctx, kids, pids, command{PubRate: sz.s4Low, DurMs: ms(sz.window), DrainMs: ms(sz.drain), Pad: 8})
		if err != nil {
			return nil, err
		}
		h := low.lat["news"]
		m[ad.name+"_p50"] = h.quantileMs(0.5)
		m[ad.name+"_p99"] = h.quantileMs(0.99)
		// The Redis hop: broadcasts to a room of 30 sockets, 10 on each
		// node. The publisher's node (0) delivers them without Redis, nodes
		// 1 and 2 after it, so the difference is the hop, not fan-out time.
		hop, err := runPhase(ctx, kids, pids, command{PubRate: 50, Room: "probe", DurMs: ms(sz.window), DrainMs: ms(sz.drain), Pad: 8})
		if err != nil {
			return nil, err
		}
		if len(hop.newsByNode) == 3 {
			remote := sparseHist{}
			remote.merge(hop.newsByNode[1])
			remote.merge(hop.newsByNode[2])
			m[ad.name+"_hop_p50"] = remote.quantileMs(0.5) - hop.newsByNode[0].quantileMs(0.5)
			m[ad.name+"_hop_p99"] = remote.quantileMs(0.99) - hop.newsByNode[0].quantileMs(0.99)
			m[ad.name+"_probe_p50"] = remote.quantileMs(0.5)
		}
		// Redis's idle cost with everything connected (keep-alive PINGs of
		// the nodes' connections, its own timers), to subtract from the high
		// phase: at 30 broadcasts/s it would otherwise dominate the figure.
		// The INFO reads stay outside both CPU windows.
		rc, rcErr := dialRedis(redis)
		var idle0, idle1, stats0, stats1 map[string]int64
		if rcErr == nil {
			defer rc.Close()
			idle0, rcErr = rc.commandStats()
		}
		idleRate := redisIdleRate(ctx, redis.p.Pid, s4RedisIdleWindow)
		if rcErr == nil {
			idle1, rcErr = rc.commandStats()
		}
		if rcErr == nil {
			stats0, rcErr = rc.commandStats()
		}
		redisCPU0, redisT0 := cpuSeconds([]int{redis.p.Pid}), time.Now()
		profileNext(o, peer, first, ad.name+"-node0")
		high, err := runPhase(ctx, kids, pids, command{PubRate: sz.s4High, DurMs: ms(sz.window), DrainMs: ms(sz.drain), Pad: 8})
		if err != nil {
			return nil, err
		}
		redisCPU1, redisWall := cpuSeconds([]int{redis.p.Pid}), time.Since(redisT0)
		if rcErr == nil {
			stats1, rcErr = rc.commandStats()
		}
		// Per broadcast that Redis relayed in the window: a publisher node
		// that falls behind the offered rate (Node's does in the high
		// phase) has sent Redis fewer broadcasts than its clients asked
		// for. Without command counts, per broadcast sent.
		raw := redisCPU1 - redisCPU0
		relayed := high.sentPub
		var cmds, pub int64
		if rcErr == nil {
			// stats0's own INFO shows in stats1 (Redis counts a command after
			// its reply), idle0's in idle1.
			cmds, pub = commandDelta(stats0, stats1, 1)
			if pub > 0 {
				relayed = float64(pub)
			}
		}
		m[ad.name+"_redis_idle_cpu_ms_per_s"] = idleRate * 1e3
		m[ad.name+"_redis_cpu_raw_us"] = safeDiv(raw*1e6, relayed)
		m[ad.name+"_redis_cpu_us"] = safeDiv((raw-idleRate*redisWall.Seconds())*1e6, relayed)
		if rcErr != nil {
			logf("  %s %s: Redis INFO commandstats: %v (no command counts)", ad.name, peer, rcErr)
		} else {
			m[ad.name+"_redis_publish_per_bcast"] = safeDiv(float64(pub), high.sentPub)
			m[ad.name+"_redis_cmds_per_bcast"] = safeDiv(float64(cmds), high.sentPub)
			idleCmds, _ := commandDelta(idle0, idle1, 1)
			logf("  %s %s Redis: idle %.2f ms/s, %d commands in %v (%s); high phase %.2f s: %d broadcasts, %d commands (%s)",
				ad.name, peer, idleRate*1e3, idleCmds, s4RedisIdleWindow, topCommands(idle0, idle1, 1),
				redisWall.Seconds(), int(high.sentPub), cmds, topCommands(stats0, stats1, 1))
		}
		m[ad.name+"_rate"] = high.recv["news"] / high.wallS
		m[ad.name+"_bcast_rate"] = high.recv["news"] / high.wallS / float64(n)
		m[ad.name+"_cpu_us"] = safeDiv(high.cpuS*1e6, high.recv["news"])
		m[ad.name+"_loss_low"] = 1 - safeDiv(low.inWin["news"], low.sentPub*float64(n))
		child.StopAll()
	}
	return m, nil
}

// s4RedisIdleWindow is how long S4 reads Redis's idle CPU before its high
// phase.
const s4RedisIdleWindow = 2 * time.Second

// redisIdleRate is Redis's CPU seconds per second over d, while nothing is
// sent.
func redisIdleRate(ctx context.Context, pid int, d time.Duration) float64 {
	c0, t0 := cpuSeconds([]int{pid}), time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	return safeDiv(cpuSeconds([]int{pid})-c0, time.Since(t0).Seconds())
}

// redisConn is the suite's own connection to Redis, for INFO commandstats.
type redisConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialRedis(redis *redisServer) (*redisConn, error) {
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(redis.url, "redis://"), 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &redisConn{c: c, r: bufio.NewReader(c)}, nil
}

func (rc *redisConn) Close() error { return rc.c.Close() }

// commandStats sends INFO commandstats and returns the calls per command.
func (rc *redisConn) commandStats() (map[string]int64, error) {
	rc.c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(rc.c, "*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n"); err != nil {
		return nil, err
	}
	line, err := rc.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	n, err := strconv.Atoi(strings.TrimPrefix(line, "$"))
	if !strings.HasPrefix(line, "$") || err != nil || n < 0 || n > 1<<20 {
		return nil, fmt.Errorf("unexpected reply %q", line)
	}
	body := make([]byte, n+2) // and the CRLF
	if _, err := io.ReadFull(rc.r, body); err != nil {
		return nil, err
	}
	return parseCommandStats(string(body[:n])), nil
}

// parseCommandStats reads the calls of each command from INFO commandstats:
// lines "cmdstat_<name>:calls=N,usec=…" (subcommands as "client|setinfo").
func parseCommandStats(info string) map[string]int64 {
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, "cmdstat_")
		if !ok {
			continue
		}
		name, fields, ok := strings.Cut(rest, ":")
		if !ok || name == "" {
			continue
		}
		for _, f := range strings.Split(fields, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				if n, err := strconv.ParseInt(v, 10, 64); err == nil {
					out[strings.ToLower(name)] = n
				}
				break
			}
		}
	}
	return out
}

// commandDelta counts the commands between two commandstats, less ownInfo
// INFO calls of the suite's own, and the PUBLISH and SPUBLISH among them.
func commandDelta(before, after map[string]int64, ownInfo int64) (all, publish int64) {
	for name, n := range after {
		d := n - before[name]
		all += d
		if name == "publish" || name == "spublish" {
			publish += d
		}
	}
	return all - ownInfo, publish
}

// topCommands lists the commands between two commandstats, most called
// first, for the log.
func topCommands(before, after map[string]int64, ownInfo int64) string {
	type nc struct {
		name string
		n    int64
	}
	var l []nc
	for name, n := range after {
		d := n - before[name]
		if name == "info" {
			d -= ownInfo
		}
		if d > 0 {
			l = append(l, nc{name, d})
		}
	}
	slices.SortFunc(l, func(a, b nc) int { return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.name, b.name)) })
	var parts []string
	for _, x := range l {
		parts = append(parts, fmt.Sprintf("%s %d", x.name, x.n))
	}
	return strings.Join(parts, ", ")
}

// ---- S5: long-polling throughput ----

func runS5(ctx context.Context, o *options, sz sizes, peer string) (metrics, error) {
	srv, err := startServer(ctx, o, peer, 0, "", "")
	if err != nil {
		return nil, err
	}
	kids, err := startClients(ctx, o, clientSpec{urls: []string{srv.url}, n: sz.s5N, transport: "polling", publisher: true})
	if err != nil {
		return nil, err
	}
	pids := []int{srv.p.Pid}
	// Every client posts 1 message/s (echoed back to it) while the publisher
	// steps the broadcast rate. At the low step every broadcast finds every
	// poll waiting: one HTTP request cycle per message. The top step
	// saturates both servers at full size: what one core serves. Packets
	// queued while a poll is in flight leave in one response (joined by
	// \x1e), but at saturation the broadcasts wait too (the publisher's
	// POST takes its turn among the polls), so responses still carry
	// about one message each (docs/performance-work.md §9).
	c := command{PubRate: sz.s5Rates[0], EchoRate: float64(sz.s5N), DurMs: ms(sz.warm), DrainMs: ms(sz.drain), Pad: 8}
	if _, err := runPhase(ctx, kids, pids, c); err != nil {
		return nil, err
	}
	m := metrics{}
	for k, prefix := range []string{"s5", "s5mid", "s5sat"} {
		c.PubRate, c.DurMs = sz.s5Rates[k], ms(sz.window)
		if k != 1 {
			profileNext(o, peer, srv, prefix)
		}
		pr, err := runPhase(ctx, kids, pids, c)
		if err != nil {
			return nil, err
		}
		// Messages = deliveries to clients (broadcasts and echoes) + client POSTs.
		msgs := pr.recv["news"] + pr.recv["echo"] + pr.sentEcho + pr.sentPub
		m[prefix+"_msgs_per_cpu_s"] = safeDiv(msgs, pr.cpuS)
		m[prefix+"_rate"] = msgs / pr.wallS
		m[prefix+"_cpu_us"] = safeDiv(pr.cpuS*1e6, msgs)
		m[prefix+"_p99"] = pr.lat["news"].quantileMs(0.99)
		m[prefix+"_loss"] = 1 - safeDiv(pr.inWin["news"], pr.sentPub*float64(sz.s5N))
		m[prefix+"_server_cpu"] = safeDiv(pr.cpuS, pr.wallS)
		m[prefix+"_drops"] = pr.drops
	}
	return m, nil
}

// ---- S6: connection rate and reconnect storm ----

func runS6(ctx context.Context, o *options, sz sizes, peer string) (metrics, error) {
	m := metrics{}
	// (a) churn: workers connect (full Socket.IO handshake) and close in a loop.
	srv, err := startServer(ctx, o, peer, 0, "", "")
	if err != nil {
		return nil, err
	}
	kids, err := startClients(ctx, o, clientSpec{urls: []string{srv.url}, n: 1})
	if err != nil {
		return nil, err
	}
	for i, dur := range []time.Duration{sz.warm, sz.window} {
		start := time.Now().Add(300 * time.Millisecond)
		kids[0].send(command{Op: "churn", Start: start.UnixNano(), DurMs: ms(dur), Workers: sz.s6Workers})
		time.Sleep(time.Until(start))
		cpu0 := cpuSeconds([]int{srv.p.Pid})
		profiled := i == 1 && o.profile != "" && peer == "herald"
		if profiled {
			syscall.Kill(srv.p.Pid, syscall.SIGUSR1)
		}
		time.Sleep(time.Until(start.Add(dur)))
		cpu1 := cpuSeconds([]int{srv.p.Pid})
		if profiled {
			syscall.Kill(srv.p.Pid, syscall.SIGUSR2)
			profileWG.Add(1)
			go collectProfile(ctx, o.profile, filepath.Join(o.bin, "profserver"), srv.p.Pid, fmt.Sprintf("s6-churn-%d", time.Now().Unix()))
		}
		r, err := kids[0].await(ctx, "churn", dur+60*time.Second)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			continue // warm-up
		}
		ok := num(r["ok"])
		h := sparseHist{}
		for b, c := range asMap(r["lat"]) {
			k, _ := strconv.Atoi(b)
			h[k] += uint64(num(c))
		}
		m["s6_hs_rate"] = ok / dur.Seconds()
		m["s6_hs_cpu_us"] = safeDiv((cpu1-cpu0)*1e6, ok)
		m["s6_hs_p99"] = h.quantileMs(0.99)
		m["s6_hs_failed"] = num(r["failed"])
	}
	child.StopAll()

	// (b) storm: N connected clients, the server crashes (SIGKILL) and is
	// restarted on the same port; every client reconnects at once.
	srv, err = startServer(ctx, o, peer, 0, "", "")
	if err != nil {
		return nil, err
	}
	port, _ := strconv.Atoi(srv.addr[strings.LastIndexByte(srv.addr, ':')+1:])
	kids, err = startClients(ctx, o, clientSpec{urls: []string{srv.url}, n: sz.s6Storm, perProc: 4500, reconnect: true})
	if err != nil {
		return nil, err
	}
	for _, k := range kids {
		k.send(command{Op: "storm"})
	}
	time.Sleep(200 * time.Millisecond)
	srv.p.Kill()
	restart := time.Now()
	srv, err = startServer(ctx, o, peer, port, "", "")
	if err != nil {
		return nil, err
	}
	listening := time.Now()
	var last int64
	for _, k := range kids {
		r, err := k.await(ctx, "allback", 90*time.Second)
		if err != nil {
			return nil, fmt.Errorf("storm: %w", err)
		}
		last = max(last, int64(num(r["t"])))
	}
	back := time.Unix(0, last)
	m["s6_storm_s"] = back.Sub(listening).Seconds()
	m["s6_storm_from_restart_s"] = back.Sub(restart).Seconds()
	m["s6_storm_hs_rate"] = float64(sz.s6Storm) / back.Sub(listening).Seconds()
	if m["s6_storm_s"] <= 0 {
		return m, errors.New("storm: clients back before the server listened")
	}
	return m, nil
}
