// Command idlemem measures the memory an idle WebSocket connection costs a
// server (benchmark S1 of reference/performance-anchors.md §7).
//
//	go run ./bench/idlemem -n 10000
//
// For each target (Herald's interop/testserver in --mode eio and --mode sio,
// and the Node.js engine.io / socket.io peers of bench/node/server.mjs) and
// each run, it:
//
//  1. starts the server pinned to CPU 0 (taskset -c 0) on a free 127.0.0.1 port;
//  2. runs a warm-up cycle (-warmup connections opened, then closed) and
//     waits 2 s;
//  3. samples VmRSS from /proc/<pid>/status (-samples, median) = RSS_0;
//  4. opens -n connections with bench/loadgen pinned to CPU 1 (one process
//     per -per-proc connections), waits until all are connected, then -settle;
//  5. samples VmRSS again = RSS_N, and reports (RSS_N - RSS_0) / N;
//  6. Node: sends SIGUSR2 (gc() + process.memoryUsage()) and samples again
//     ("after GC"). Go: with -gc-wait, waits for the next GC cycle, seen
//     through GODEBUG=gctrace=1 (idle traffic triggers one, else the
//     runtime forces one 2 min after the last), then samples again; the
//     gctrace line gives the live heap and the stack sizes;
//  7. checks every connection is still open (loadgen SIGUSR1), then, for
//     Go, counts goroutines from the SIGQUIT dump (GOTRACEBACK=all);
//  8. stops everything.
//
// Runs rotate the target order. The summary is the median over runs, printed
// as a Markdown table; -out writes every figure as JSON. Every process is
// started in its own process group, with a parent-death signal, and is
// killed at the end of its measurement, on error, on SIGINT/SIGTERM and at
// -timeout.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/herald-rt/herald/bench/internal/child"
)

type options struct {
	n            int
	runs         int
	targets      []string
	rate         float64
	perProc      int
	warmup       int
	settle       time.Duration
	samples      int
	sampleEvery  time.Duration
	pingInterval time.Duration
	pingTimeout  time.Duration
	gcWait       time.Duration
	goroutines   bool
	serverCPU    string
	clientCPU    string
	runTimeout   time.Duration
	timeout      time.Duration
	out          string
	md           string
	nodeInstall  bool
	root         string
	bin          string
}

var allTargets = []string{"herald-eio", "herald-sio", "node-eio", "node-sio"}

func main() {
	o := &options{}
	var targets string
	flag.IntVar(&o.n, "n", 10000, "idle connections per measurement (≤ 19000: the server's open-file limit is 20000)")
	flag.IntVar(&o.runs, "runs", 3, "runs per target (the summary is the median)")
	flag.StringVar(&targets, "targets", strings.Join(allTargets, ","), "comma-separated targets: "+strings.Join(allTargets, ", "))
	flag.Float64Var(&o.rate, "rate", 2000, "connections per second, per load generator process")
	flag.IntVar(&o.perProc, "per-proc", 10000, "most connections per load generator process (each process may hold ~19000 sockets)")
	flag.IntVar(&o.warmup, "warmup", 200, "connections opened and closed before RSS_0 is taken")
	flag.DurationVar(&o.settle, "settle", 3*time.Second, "wait after the last connection before sampling")
	flag.IntVar(&o.samples, "samples", 5, "RSS samples per reading (median)")
	flag.DurationVar(&o.sampleEvery, "sample-interval", 500*time.Millisecond, "time between RSS samples")
	flag.DurationVar(&o.pingInterval, "ping-interval", 25*time.Second, "server ping interval")
	flag.DurationVar(&o.pingTimeout, "ping-timeout", 20*time.Second, "server ping timeout")
	flag.DurationVar(&o.gcWait, "gc-wait", 0, "Go targets: wait up to this long for a GC cycle with every connection open (the runtime forces one 2m after the last), to read the live heap and the after-GC RSS; 0 skips it (use 200s)")
	flag.BoolVar(&o.goroutines, "goroutines", true, "Go targets: count goroutines from a SIGQUIT dump at the end of the measurement")
	flag.StringVar(&o.serverCPU, "server-cpu", "0", "taskset CPU list for the server (empty: no pinning)")
	flag.StringVar(&o.clientCPU, "client-cpu", "1", "taskset CPU list for the load generators (empty: no pinning)")
	flag.DurationVar(&o.runTimeout, "run-timeout", 0, "limit for one measurement (0: derived from -n, -rate and -gc-wait)")
	flag.DurationVar(&o.timeout, "timeout", 0, "limit for the whole benchmark (0: derived)")
	flag.StringVar(&o.out, "out", "", "write every measurement and the summary as JSON to this `file`")
	flag.StringVar(&o.md, "md", "", "write the summary table as Markdown to this `file`")
	flag.BoolVar(&o.nodeInstall, "node-install", true, "run `npm ci` in bench/node when its node_modules is missing")
	flag.StringVar(&o.bin, "bin", "", "directory with prebuilt testserver and loadgen binaries (default: build them into a temp dir)")
	flag.Parse()

	for _, t := range strings.Split(targets, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		if !slices.Contains(allTargets, t) {
			fatalf("unknown target %q (want %s)", t, strings.Join(allTargets, ", "))
		}
		o.targets = append(o.targets, t)
	}
	if o.n <= 0 || o.n > 19000 {
		fatalf("-n must be in 1..19000 (one server process holds at most ~19,900 sockets)")
	}
	if o.perProc <= 0 || o.perProc > 19000 {
		fatalf("-per-proc must be in 1..19000")
	}
	if o.runs <= 0 || o.samples <= 0 || o.rate <= 0 {
		fatalf("-runs, -samples and -rate must be > 0")
	}
	if o.runTimeout == 0 {
		connect := time.Duration(float64(o.n)/o.rate*float64(time.Second)) * 2
		o.runTimeout = 90*time.Second + connect + o.settle + 2*time.Duration(o.samples)*o.sampleEvery + o.gcWait
	}
	if o.timeout == 0 {
		o.timeout = 5*time.Minute + time.Duration(o.runs*len(o.targets))*o.runTimeout
	}

	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	err := benchmark(ctx, o)
	stop()
	cancel()
	child.StopAll()
	if err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	child.StopAll()
	fmt.Fprintf(os.Stderr, "idlemem: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "idlemem: "+format+"\n", args...)
}

// environment describes the machine and toolchains, for the report.
type environment struct {
	Date      string `json:"date"`
	Host      string `json:"host"`
	Kernel    string `json:"kernel"`
	NProc     int    `json:"nproc"`
	CPUModel  string `json:"cpu_model"`
	MemTotal  string `json:"mem_total"`
	Go        string `json:"go"`
	Node      string `json:"node,omitempty"`
	EngineIO  string `json:"engine_io,omitempty"`
	SocketIO  string `json:"socket_io,omitempty"`
	WS        string `json:"ws,omitempty"`
	Commit    string `json:"commit"`
	NoFile    string `json:"rlimit_nofile"`
	Command   string `json:"command"`
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
}

func benchmark(ctx context.Context, o *options) error {
	root, err := child.Run(ctx, ".", nil, time.Minute, "go", "env", "GOMOD")
	if err != nil || root == "" || root == os.DevNull {
		return fmt.Errorf("run idlemem from inside the herald module: %v", err)
	}
	o.root = filepath.Dir(root)

	env := probeEnvironment(ctx, o)
	logf("%s, %d CPU (%s), %s, node %s, commit %s, load %s", env.Date, env.NProc, env.CPUModel, env.Go, env.Node, env.Commit, env.LoadStart)

	// Binaries.
	bin := o.bin
	if bin == "" {
		dir, err := os.MkdirTemp("", "herald-idlemem-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		bin = dir
		for _, pkg := range []string{"interop/testserver", "bench/loadgen"} {
			out := filepath.Join(bin, filepath.Base(pkg))
			logf("go build -o %s ./%s", out, pkg)
			if _, err := child.Run(ctx, o.root, nil, 5*time.Minute, "go", "build", "-o", out, "./"+pkg); err != nil {
				return err
			}
		}
	}
	// Node peers.
	if slices.ContainsFunc(o.targets, func(t string) bool { return strings.HasPrefix(t, "node-") }) {
		if err := ensureNode(ctx, o); err != nil {
			logf("skipping the Node targets: %v", err)
			o.targets = slices.DeleteFunc(o.targets, func(t string) bool { return strings.HasPrefix(t, "node-") })
		} else {
			env = probeEnvironment(ctx, o)
		}
	}

	var all []*measurement
	for r := 0; r < o.runs; r++ {
		order := slices.Clone(o.targets)
		k := r % len(order)
		order = append(order[k:], order[:k]...)
		for _, t := range order {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			logf("run %d/%d: %s, n=%d", r+1, o.runs, t, o.n)
			m := measure(ctx, o, bin, t, r)
			all = append(all, m)
			child.StopAll()
			for _, w := range m.Warnings {
				logf("run %d %s: warning: %s", r+1, t, w)
			}
			if m.Error != "" {
				logf("run %d %s FAILED: %s", r+1, t, m.Error)
			} else {
				logf("run %d %s: RSS %.1f -> %.1f MB, %.2f KB/conn%s", r+1, t,
					float64(m.RSS0KB)/1024, float64(m.RSSNKB)/1024, m.KBPerConn, m.extra())
			}
			// Let the kernel reap the closed sockets before the next server.
			sleep(ctx, 2*time.Second)
		}
	}
	env.LoadEnd = loadavg()

	sum := summarize(o, all)
	table := markdown(o, env, sum)
	fmt.Println(table)
	if o.md != "" {
		if err := os.WriteFile(o.md, []byte(table), 0o644); err != nil {
			return err
		}
	}
	if o.out != "" {
		b, err := json.MarshalIndent(map[string]any{"environment": env, "summary": sum, "runs": all}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.out, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	for _, m := range all {
		if m.Error != "" {
			return errors.New("some measurements failed (see above)")
		}
	}
	return nil
}

func probeEnvironment(ctx context.Context, o *options) environment {
	env := environment{
		Date:      time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		NProc:     runtime.NumCPU(),
		LoadStart: loadavg(),
		Command:   strings.Join(append([]string{"go run ./bench/idlemem"}, os.Args[1:]...), " "),
	}
	env.Host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				env.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		env.Kernel = strings.TrimSpace(string(b))
	}
	env.MemTotal = fmt.Sprintf("%.1f GiB", float64(meminfo("MemTotal"))/(1<<20))
	env.Go, _ = child.Run(ctx, o.root, nil, time.Minute, "go", "version")
	env.Node, _ = child.Run(ctx, o.root, nil, time.Minute, "node", "--version")
	env.Commit, _ = child.Run(ctx, o.root, nil, time.Minute, "git", "rev-parse", "--short", "HEAD")
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		env.NoFile = fmt.Sprintf("%d/%d", rl.Cur, rl.Max)
	}
	nm := filepath.Join(o.root, "bench", "node", "node_modules")
	env.EngineIO = pkgVersion(filepath.Join(nm, "engine.io"))
	env.SocketIO = pkgVersion(filepath.Join(nm, "socket.io"))
	env.WS = pkgVersion(filepath.Join(nm, "ws"))
	return env
}

func pkgVersion(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return ""
	}
	var p struct{ Version string }
	json.Unmarshal(b, &p)
	return p.Version
}

func ensureNode(ctx context.Context, o *options) error {
	if _, err := child.Run(ctx, o.root, nil, time.Minute, "node", "--version"); err != nil {
		return fmt.Errorf("node not found: %v", err)
	}
	dir := filepath.Join(o.root, "bench", "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "socket.io", "package.json")); err == nil {
		return nil
	}
	if !o.nodeInstall {
		return errors.New("bench/node/node_modules is missing (run `npm ci` in bench/node)")
	}
	logf("npm ci in %s", dir)
	_, err := child.Run(ctx, dir, nil, 3*time.Minute, "npm", "ci", "--no-audit", "--no-fund")
	return err
}

// measurement is one target, one run.
type measurement struct {
	Target string `json:"target"`
	Run    int    `json:"run"`
	N      int    `json:"n"`
	Error  string `json:"error,omitempty"`
	// Warnings are problems that leave some figures out but not the RSS ones.
	Warnings []string `json:"warnings,omitempty"`

	ServerPID   int     `json:"server_pid"`
	RSS0KB      int64   `json:"rss0_kb"`
	RSSNKB      int64   `json:"rssN_kb"`
	RSS0Samples []int64 `json:"rss0_samples_kb"`
	RSSNSamples []int64 `json:"rssN_samples_kb"`
	KBPerConn   float64 `json:"kb_per_conn"`
	// After a full GC: Node gc() via SIGUSR2; Go the first GC cycle seen with -gc-wait.
	RSS0GCKB       int64   `json:"rss0_gc_kb,omitempty"`
	RSSNGCKB       int64   `json:"rssN_gc_kb,omitempty"`
	KBPerConnGC    float64 `json:"kb_per_conn_gc,omitempty"`
	Heap0KB        int64   `json:"heap0_kb,omitempty"` // Node heapUsed / Go live heap after the last GC
	HeapNKB        int64   `json:"heapN_kb,omitempty"`
	HeapKBPerConn  float64 `json:"heap_kb_per_conn,omitempty"`
	GoStacksMB     int64   `json:"go_stacks_mb,omitempty"` // gctrace "MB stacks" at that GC
	GoGCLine       string  `json:"go_gc_line,omitempty"`
	Goroutines     int     `json:"goroutines,omitempty"`
	GoroutinesConn float64 `json:"goroutines_per_conn,omitempty"`
	SlabKBPerConn  float64 `json:"slab_kb_per_conn"` // system-wide Slab Δ / N (both ends of each socket, plus noise)
	Connected      int64   `json:"connected"`
	ConnectS       float64 `json:"connect_s"`
	ConnectP99Ms   float64 `json:"connect_p99_ms"`
	Dropped        int64   `json:"dropped"`
	PingsAnswered  int64   `json:"pings_answered"`
	ClientRSSKB    int64   `json:"client_rss_kb"`
	LoadBefore     string  `json:"loadavg_before"`
	LoadAfter      string  `json:"loadavg_after"`
}

func (m *measurement) extra() string {
	var s []string
	if m.KBPerConnGC != 0 {
		s = append(s, fmt.Sprintf("after GC %.2f KB/conn", m.KBPerConnGC))
	}
	if m.HeapKBPerConn != 0 {
		s = append(s, fmt.Sprintf("heap %.2f KB/conn", m.HeapKBPerConn))
	}
	if m.Goroutines != 0 {
		s = append(s, fmt.Sprintf("%d goroutines", m.Goroutines))
	}
	if len(s) == 0 {
		return ""
	}
	return ", " + strings.Join(s, ", ")
}

// gcTrace is one GODEBUG=gctrace=1 line.
type gcTrace struct {
	at               time.Time
	num              int
	liveMB, stacksMB int64
	forced           bool
	line             string
}

var gcRe = regexp.MustCompile(`^gc (\d+) @[\d.]+s .*?(\d+)->(\d+)->(\d+) MB, (\d+) MB goal, (\d+) MB stacks, .*?( \(forced\))?$`)

// serverState collects what a server prints.
type serverState struct {
	mu         sync.Mutex
	gcs        []gcTrace
	goroutines int
	quitSent   bool
	nodeMem    chan map[string]any
	listening  chan struct{}
}

func (s *serverState) onStderr(l string) {
	if m := gcRe.FindStringSubmatch(l); m != nil {
		num, _ := strconv.Atoi(m[1])
		live, _ := strconv.ParseInt(m[4], 10, 64)
		stacks, _ := strconv.ParseInt(m[6], 10, 64)
		s.mu.Lock()
		s.gcs = append(s.gcs, gcTrace{at: time.Now(), num: num, liveMB: live, stacksMB: stacks, forced: m[7] != "", line: l})
		s.mu.Unlock()
		return
	}
	if strings.HasPrefix(l, "goroutine ") && strings.HasSuffix(l, ":") && strings.Contains(l, " [") {
		s.mu.Lock()
		if s.quitSent {
			s.goroutines++
		}
		s.mu.Unlock()
	}
}

func (s *serverState) onStdout(l string) {
	var ev map[string]any
	if json.Unmarshal([]byte(l), &ev) != nil {
		return
	}
	switch ev["event"] {
	case "mem":
		select {
		case s.nodeMem <- ev:
		default:
		}
	}
}

func (s *serverState) lastGC() (gcTrace, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.gcs) == 0 {
		return gcTrace{}, false
	}
	return s.gcs[len(s.gcs)-1], true
}

// gcAfter returns the first GC that started after t: with every connection
// open, either one the idle traffic triggered or the runtime's periodic
// forced GC.
func (s *serverState) gcAfter(t time.Time) (gcTrace, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.gcs {
		if g.at.After(t) {
			return g, true
		}
	}
	return gcTrace{}, false
}

// loadgenEvent is a JSON line of bench/loadgen.
type loadgenEvent struct {
	Event       string         `json:"event"`
	N           int            `json:"n"`
	Connected   int64          `json:"connected"`
	Open        int64          `json:"open"`
	Failed      int64          `json:"failed"`
	Dropped     int64          `json:"dropped"`
	Pings       int64          `json:"pings_answered"`
	ConnectS    float64        `json:"connect_phase_s"`
	ConnectP99  float64        `json:"connect_p99_ms"`
	ClientRSSKB int64          `json:"client_rss_kb"`
	Errors      map[string]int `json:"errors"`
	DropErrors  map[string]int `json:"drop_errors"`
}

type loadgen struct {
	p      *child.Proc
	events chan loadgenEvent
}

func startLoadgen(o *options, bin, name, url, mode string, n int, src string, hold time.Duration, quiet bool) (*loadgen, error) {
	lg := &loadgen{events: make(chan loadgenEvent, 16)}
	argv := []string{filepath.Join(bin, "loadgen"), "-url", url, "-mode", mode, "-n", strconv.Itoa(n),
		"-rate", strconv.FormatFloat(o.rate, 'f', -1, 64), "-src", src, "-hold", hold.String(),
		"-max-duration", (hold + 2*time.Minute).String()}
	if quiet {
		argv = append(argv, "-progress", "0")
	} else {
		argv = append(argv, "-progress", "2s")
	}
	p, err := child.Start(child.Options{Name: name, Dir: o.root, CPU: o.clientCPU, Argv: argv,
		Stdout: func(l string) {
			var ev loadgenEvent
			if json.Unmarshal([]byte(l), &ev) == nil && ev.Event != "" {
				select {
				case lg.events <- ev:
				default:
				}
			}
		},
		Stderr: func(l string) {
			if !quiet {
				fmt.Fprintln(os.Stderr, "  "+l)
			}
		}})
	if err != nil {
		return nil, err
	}
	lg.p = p
	return lg, nil
}

// await waits for the next event of the given kind.
func (lg *loadgen) await(ctx context.Context, kind string, timeout time.Duration) (loadgenEvent, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case ev := <-lg.events:
			if ev.Event == kind {
				return ev, nil
			}
		case <-lg.p.Done():
			// Drain what it printed before exiting.
			for {
				select {
				case ev := <-lg.events:
					if ev.Event == kind {
						return ev, nil
					}
				default:
					return loadgenEvent{}, fmt.Errorf("%s exited (%v) before %q: %s", lg.p.Name, lg.p.Err(), kind, lg.p.StderrTail())
				}
			}
		case <-t.C:
			return loadgenEvent{}, fmt.Errorf("%s: no %q within %s", lg.p.Name, kind, timeout)
		case <-ctx.Done():
			return loadgenEvent{}, ctx.Err()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// sampleRSS takes o.samples VmRSS readings and returns their median and the samples.
func sampleRSS(ctx context.Context, o *options, pid int) (int64, []int64, error) {
	var xs []int64
	for i := 0; i < o.samples; i++ {
		if i > 0 && !sleep(ctx, o.sampleEvery) {
			return 0, nil, ctx.Err()
		}
		st, err := procStatus(pid, "VmRSS")
		if err != nil {
			return 0, nil, err
		}
		xs = append(xs, st["VmRSS"])
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2], xs, nil
}

func measure(ctx context.Context, o *options, bin, target string, run int) *measurement {
	m := &measurement{Target: target, Run: run + 1, N: o.n, LoadBefore: loadavg()}
	ctx, cancel := context.WithTimeout(ctx, o.runTimeout)
	defer cancel()
	if err := measureInto(ctx, o, bin, target, run, m); err != nil {
		m.Error = err.Error()
	}
	m.LoadAfter = loadavg()
	return m
}

func measureInto(ctx context.Context, o *options, bin, target string, run int, m *measurement) error {
	port, err := child.FreePort()
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	kind, mode, _ := strings.Cut(target, "-")
	isGo := kind == "herald"

	st := &serverState{nodeMem: make(chan map[string]any, 4)}
	var argv, env []string
	if isGo {
		argv = []string{filepath.Join(bin, "testserver"), "--mode", mode, "--addr", addr,
			"--ping-interval", o.pingInterval.String(), "--ping-timeout", o.pingTimeout.String(), "--log-level", "error"}
		env = []string{"GODEBUG=gctrace=1", "GOTRACEBACK=all"}
	} else {
		argv = []string{"node", "--expose-gc", filepath.Join("bench", "node", "server.mjs"), "--mode", mode, "--addr", addr,
			"--ping-interval", strconv.FormatInt(o.pingInterval.Milliseconds(), 10),
			"--ping-timeout", strconv.FormatInt(o.pingTimeout.Milliseconds(), 10),
			"--exit-on-stdin-eof", "--max-lifetime", strconv.Itoa(int(o.runTimeout.Seconds()) + 60)}
	}
	srv, err := child.Start(child.Options{Name: target, Dir: o.root, Env: env, CPU: o.serverCPU, Argv: argv,
		Stdout: st.onStdout, Stderr: st.onStderr})
	if err != nil {
		return err
	}
	defer srv.Stop(3 * time.Second)
	m.ServerPID = srv.Pid
	if err := child.WaitListening(ctx, addr, srv, 20*time.Second); err != nil {
		return err
	}
	url := "ws://" + addr

	// Warm-up cycle.
	if o.warmup > 0 {
		wu, err := startLoadgen(o, bin, "loadgen-warmup", url, mode, o.warmup, "127.0.0.1", 500*time.Millisecond, true)
		if err != nil {
			return err
		}
		ev, err := wu.await(ctx, "final", time.Minute)
		wu.p.Stop(time.Second)
		if err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		if ev.Connected != int64(o.warmup) {
			return fmt.Errorf("warm-up: %d of %d connected: %v", ev.Connected, o.warmup, ev.Errors)
		}
		if !sleep(ctx, 2*time.Second) {
			return ctx.Err()
		}
	}

	// RSS at 0 connections.
	slab0 := meminfo("Slab")
	if m.RSS0KB, m.RSS0Samples, err = sampleRSS(ctx, o, srv.Pid); err != nil {
		return err
	}
	if isGo {
		if g, ok := st.lastGC(); ok {
			m.Heap0KB = g.liveMB * 1024
		}
	} else {
		ev, err := nodeGC(ctx, srv, st)
		if err != nil {
			return err
		}
		m.Heap0KB = int64(num(ev["heapUsed"])) / 1024
		if !sleep(ctx, time.Second) {
			return ctx.Err()
		}
		if m.RSS0GCKB, _, err = sampleRSS(ctx, o, srv.Pid); err != nil {
			return err
		}
	}

	// Open the connections.
	nproc := (o.n + o.perProc - 1) / o.perProc
	var lgs []*loadgen
	defer func() {
		for _, lg := range lgs {
			lg.p.Stop(5 * time.Second)
		}
	}()
	hold := o.runTimeout + time.Minute // idlemem ends the hold itself
	for k := 0; k < nproc; k++ {
		n := o.n / nproc
		if k < o.n%nproc {
			n++
		}
		// Two source addresses per process, different in every run, so that
		// no run waits for an earlier one's TIME_WAIT ports.
		base := 2 + (run*8+k*2)%240
		src := fmt.Sprintf("127.0.0.%d,127.0.0.%d", base, base+1)
		lg, err := startLoadgen(o, bin, fmt.Sprintf("loadgen-%d", k), url, mode, n, src, hold, false)
		if err != nil {
			return err
		}
		lgs = append(lgs, lg)
	}
	connectTimeout := time.Duration(float64(o.n/nproc)/o.rate*float64(time.Second))*2 + 30*time.Second
	for _, lg := range lgs {
		ev, err := lg.await(ctx, "ready", connectTimeout)
		if err != nil {
			return err
		}
		m.Connected += ev.Connected
		m.ConnectS = math.Max(m.ConnectS, ev.ConnectS)
		m.ConnectP99Ms = math.Max(m.ConnectP99Ms, ev.ConnectP99)
		if ev.Failed > 0 {
			return fmt.Errorf("%s: %d connections failed: %v", lg.p.Name, ev.Failed, ev.Errors)
		}
	}
	readyAt := time.Now()
	if !sleep(ctx, o.settle) {
		return ctx.Err()
	}

	// RSS at N connections.
	if m.RSSNKB, m.RSSNSamples, err = sampleRSS(ctx, o, srv.Pid); err != nil {
		return err
	}
	m.SlabKBPerConn = float64(meminfo("Slab")-slab0) / float64(o.n)
	m.KBPerConn = float64(m.RSSNKB-m.RSS0KB) / float64(o.n)

	if isGo {
		if o.gcWait > 0 {
			logf("  waiting up to %s for a GC cycle (gctrace)", o.gcWait)
			deadline := time.Now().Add(o.gcWait)
			var g gcTrace
			var ok bool
			for time.Now().Before(deadline) {
				if g, ok = st.gcAfter(readyAt.Add(time.Second)); ok {
					break
				}
				if !sleep(ctx, 500*time.Millisecond) {
					return ctx.Err()
				}
			}
			if ok {
				m.HeapNKB = g.liveMB * 1024
				m.GoStacksMB = g.stacksMB
				m.GoGCLine = g.line
				m.HeapKBPerConn = float64(m.HeapNKB-m.Heap0KB) / float64(o.n)
				if !sleep(ctx, time.Second) {
					return ctx.Err()
				}
				if m.RSSNGCKB, _, err = sampleRSS(ctx, o, srv.Pid); err != nil {
					return err
				}
				// Go has no "after GC" baseline at 0 connections that we can
				// force; use the steady one (it is small either way).
				m.RSS0GCKB = m.RSS0KB
				m.KBPerConnGC = float64(m.RSSNGCKB-m.RSS0GCKB) / float64(o.n)
			} else {
				logf("  no GC cycle within %s", o.gcWait)
			}
		}
	} else {
		ev, err := nodeGC(ctx, srv, st)
		if err != nil {
			return err
		}
		if c := int(num(ev["clients"])); c != o.n {
			return fmt.Errorf("node reports %d clients, want %d", c, o.n)
		}
		m.HeapNKB = int64(num(ev["heapUsed"])) / 1024
		m.HeapKBPerConn = float64(m.HeapNKB-m.Heap0KB) / float64(o.n)
		if !sleep(ctx, time.Second) {
			return ctx.Err()
		}
		if m.RSSNGCKB, _, err = sampleRSS(ctx, o, srv.Pid); err != nil {
			return err
		}
		m.KBPerConnGC = float64(m.RSSNGCKB-m.RSS0GCKB) / float64(o.n)
	}

	// Every connection must still be open.
	for _, lg := range lgs {
		if err := lg.p.Signal(syscall.SIGUSR1); err != nil {
			return err
		}
		ev, err := lg.await(ctx, "status", 10*time.Second)
		if err != nil {
			return err
		}
		m.Dropped += ev.Dropped
		m.PingsAnswered += ev.Pings
		if ev.Dropped > 0 || ev.Open != int64(ev.N) {
			return fmt.Errorf("%s: %d of %d open, %d dropped: %v", lg.p.Name, ev.Open, ev.N, ev.Dropped, ev.DropErrors)
		}
	}

	// Goroutines (Go): SIGQUIT makes the runtime dump every goroutine and exit.
	if isGo && o.goroutines {
		st.mu.Lock()
		st.quitSent = true
		st.mu.Unlock()
		if err := srv.Signal(syscall.SIGQUIT); err != nil {
			return err
		}
		// The dump of 10k+ goroutines takes a while on a busy single CPU. A
		// missing count only leaves that column empty.
		select {
		case <-srv.Done():
			st.mu.Lock()
			m.Goroutines = st.goroutines
			st.mu.Unlock()
			m.GoroutinesConn = float64(m.Goroutines) / float64(o.n)
		case <-time.After(60 * time.Second):
			m.Warnings = append(m.Warnings, "no goroutine count: the server did not finish its SIGQUIT dump within 60s")
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	// End the load generators and collect their final figures.
	for _, lg := range lgs {
		lg.p.Signal(syscall.SIGTERM)
	}
	for _, lg := range lgs {
		ev, err := lg.await(ctx, "final", 20*time.Second)
		if err != nil {
			return err
		}
		m.ClientRSSKB += ev.ClientRSSKB
	}
	return nil
}

// nodeGC asks the Node server to gc() and report process.memoryUsage().
func nodeGC(ctx context.Context, srv *child.Proc, st *serverState) (map[string]any, error) {
	if err := srv.Signal(syscall.SIGUSR2); err != nil {
		return nil, err
	}
	select {
	case ev := <-st.nodeMem:
		if ev["gc"] != true {
			return nil, errors.New("node server could not run gc(): start it with --expose-gc")
		}
		return ev, nil
	case <-time.After(30 * time.Second):
		return nil, errors.New("node server: no memory report after SIGUSR2")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}
