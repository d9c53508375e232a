// Command suite runs Herald's benchmark scenarios S1–S6
// (reference/performance-anchors.md §7) side by side with Node.js socket.io
// 4.8.4 in the same run, and writes a table of ratios, a JSON and Markdown
// report and a PNG plot. ./scripts/bench is the way to call it:
//
//	go run ./bench/suite             # full: ≥ 5 runs per scenario, ~40 min
//	go run ./bench/suite -quick      # 1 run, small counts, < 3 min; exit 1 if Herald is slower
//
// The same binary is also the load generator: the orchestrator re-executes
// itself as `suite -role client` (pinned to the client CPU), one process per
// ≤ 9,000 connections. See bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/herald-rt/herald/bench/internal/child"
)

// options of one orchestrator run. The zero value is not used: main fills
// every field from flags (quick or full defaults).
type options struct {
	quick      bool
	quietBusy  float64       // wait before a measurement until the CPUs are busy less than this share
	quietWait  time.Duration // for at most this long
	runs       int
	scenarios  []string
	peers      []string // "herald", "node"
	serverCPU  string
	clientCPU  string
	timeout    time.Duration
	outDir     string // where <date>.json/.md/.png go
	name       string // report base name
	root       string // module root
	bin        string // built binaries
	self       string // this executable (client role)
	forwardCmd string
	command    string // how the run was started, for the report
	replot     string // report JSON to re-render
	profile    string // if set: Herald runs as bench/profserver and each main window is CPU-profiled into this directory
	skipS1     bool
	skipAlloc  bool
}

var allScenarios = []string{"s1", "s2", "s3", "s4", "s5", "s6"}

func main() {
	if len(os.Args) > 2 && os.Args[1] == "-role" && os.Args[2] == "client" {
		if err := clientMain(os.Args[3:]); err != nil {
			fmt.Fprintln(os.Stderr, "suite client:", err)
			os.Exit(2)
		}
		return
	}
	o := &options{}
	var scen, peers string
	flag.BoolVar(&o.quick, "quick", false, "a few seconds per scenario, small counts, 1 run; exit 1 if Herald is slower than Node on any scenario")
	flag.IntVar(&o.runs, "runs", 0, "runs per scenario and peer (median reported; default 5, quick 1)")
	flag.StringVar(&scen, "scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios to run")
	flag.StringVar(&peers, "peers", "herald,node", "servers to measure")
	flag.StringVar(&o.serverCPU, "server-cpu", "0", "taskset CPU list for servers and Redis")
	flag.StringVar(&o.clientCPU, "client-cpu", "1", "taskset CPU list for load generators")
	flag.DurationVar(&o.timeout, "timeout", 0, "limit for the whole benchmark (default 75m, quick 4m)")
	flag.StringVar(&o.outDir, "out-dir", "bench/results", "directory for the JSON, Markdown and PNG report")
	flag.StringVar(&o.name, "name", "", "report base name (default: the UTC date, plus -quick, or -partial for a subset of scenarios or peers, fewer runs or -profile)")
	flag.StringVar(&o.bin, "bin", "", "directory with prebuilt testserver, loadgen and idlemem binaries (default: build into a temp dir)")
	flag.StringVar(&o.forwardCmd, "forwarding", "", "command (run from the module root) printing one JSON line of polling throughput through forwarding; default: go run ./bench/forwarding if it exists")
	flag.BoolVar(&verbose, "v", false, "echo the children's stderr")
	flag.StringVar(&o.replot, "replot", "", "re-render the Markdown and PNG of an earlier report `file` (bench/results/<date>.json) and exit")
	flag.StringVar(&o.profile, "profile", "", "`directory`: run Herald as bench/profserver and write a CPU profile (and its pprof -top) of each main measurement window there")
	flag.StringVar(&o.command, "command", "", "the command line to record in the report (default: this process's arguments)")
	flag.Float64Var(&o.quietBusy, "quiet-busy", -1, "before each measurement wait (at most -quiet-wait) until the machine's CPUs were busy less than this share over one second; 0 turns the wait off (default 0.1, quick 0: its time budget is 3 minutes)")
	flag.DurationVar(&o.quietWait, "quiet-wait", 45*time.Second, "longest wait for a quiet machine before a measurement (then it runs anyway and the report says so)")
	flag.Parse()
	o.scenarios = splitList(scen)
	o.peers = splitList(peers)
	for _, s := range o.scenarios {
		if !slices.Contains(allScenarios, s) {
			fatalf("unknown scenario %q", s)
		}
	}
	if o.runs == 0 {
		o.runs = 5
		if o.quick {
			o.runs = 1
		}
	}
	if o.quietBusy < 0 {
		o.quietBusy = 0.1
		if o.quick {
			o.quietBusy = 0
		}
	}
	if o.timeout == 0 {
		o.timeout = 75 * time.Minute
		if o.quick {
			o.timeout = 4 * time.Minute
		}
	}
	if o.name == "" {
		o.name = time.Now().UTC().Format("2006-01-02")
		switch {
		case o.quick:
			o.name += "-quick"
		case len(o.scenarios) < len(allScenarios) || len(o.peers) < 2 || o.runs < 5 || o.profile != "":
			// A partial run must not overwrite the day's full report.
			o.name += "-partial"
		}
	}
	if o.replot != "" {
		if err := replot(o); err != nil {
			fatalf("%v", err)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	code, err := benchmark(ctx, o)
	stop()
	cancel()
	child.StopAll()
	if err != nil {
		fatalf("%v", err)
	}
	os.Exit(code)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func fatalf(format string, args ...any) {
	child.StopAll()
	fmt.Fprintf(os.Stderr, "suite: "+format+"\n", args...)
	os.Exit(2)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05")}, args...)...)
}

// environment describes the machine and versions of a run.
type environment struct {
	Date      string `json:"date"`
	Kernel    string `json:"kernel"`
	NProc     int    `json:"nproc"`
	CPUModel  string `json:"cpu_model"`
	MemTotal  string `json:"mem_total"`
	Go        string `json:"go"`
	Node      string `json:"node"`
	SocketIO  string `json:"socket_io"`
	WS        string `json:"ws"`
	Adapter   string `json:"redis_adapter"`
	Redis     string `json:"redis"`
	Commit    string `json:"commit"`
	NoFile    string `json:"rlimit_nofile"`
	Command   string `json:"command"`
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
	Quick     bool   `json:"quick"`
	Runs      int    `json:"runs"`
}

func benchmark(ctx context.Context, o *options) (int, error) {
	start := time.Now()
	var err error
	if o.root, err = child.Run(ctx, ".", nil, time.Minute, "go", "env", "GOMOD"); err != nil {
		return 2, err
	}
	o.root = filepath.Dir(o.root)
	if o.self, err = os.Executable(); err != nil {
		return 2, err
	}
	if o.bin == "" {
		dir, err := os.MkdirTemp("", "herald-bench-")
		if err != nil {
			return 2, err
		}
		defer os.RemoveAll(dir)
		o.bin = dir
		for _, pkg := range []string{"interop/testserver", "bench/loadgen", "bench/idlemem", "bench/profserver"} {
			logf("go build ./%s", pkg)
			if _, err := child.Run(ctx, o.root, nil, 5*time.Minute, "go", "build", "-o", filepath.Join(dir, filepath.Base(pkg)), "./"+pkg); err != nil {
				return 2, err
			}
		}
	}
	if _, err := os.Stat(filepath.Join(o.root, "bench/node/node_modules/@socket.io/redis-adapter")); err != nil {
		logf("npm ci in bench/node")
		if _, err := child.Run(ctx, filepath.Join(o.root, "bench/node"), nil, 5*time.Minute, "npm", "ci", "--no-audit", "--no-fund"); err != nil {
			return 2, err
		}
	}
	if o.profile != "" {
		if o.profile, err = filepath.Abs(o.profile); err != nil {
			return 2, err
		}
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return 2, err
		}
	}
	env := probeEnvironment(ctx, o)
	logf("load average %s; %d run(s); scenarios %v", env.LoadStart, o.runs, o.scenarios)

	rep := &report{Env: env, Results: map[string]*scenarioResult{}}
	for _, s := range o.scenarios {
		if ctx.Err() != nil {
			break
		}
		logf("=== %s", strings.ToUpper(s))
		sr, err := runScenario(ctx, o, s)
		if err != nil {
			logf("%s failed: %v", s, err)
			if sr == nil {
				sr = &scenarioResult{}
			}
			sr.Error = err.Error()
		}
		rep.Results[s] = sr
	}
	if !o.skipAlloc && ctx.Err() == nil {
		rep.Allocs = allocBenchmarks(ctx, o)
		hasBroadcast := false
		for _, a := range rep.Allocs {
			hasBroadcast = hasBroadcast || strings.Contains(strings.ToLower(a.Name), "broadcast") && !strings.Contains(a.Name, "EncodeBroadcast")
		}
		if !hasBroadcast {
			rep.AllocNote = "No Benchmark of the broadcast path (root package or engineio) exists yet: only the codec benchmarks below. Allocations per broadcast are not measured."
		}
	}
	if ctx.Err() == nil {
		rep.Forwarding = forwarding(ctx, o)
	}
	profileWG.Wait()
	rep.Env.LoadEnd = loadavg()
	rep.ElapsedS = time.Since(start).Seconds()
	rep.build(o)
	if err := rep.write(o); err != nil {
		return 2, err
	}
	fmt.Println(rep.table())
	logf("report: %s/%s.{json,md,png} (%.0f s)", o.outDir, o.name, rep.ElapsedS)
	if ctx.Err() != nil {
		return 2, fmt.Errorf("stopped early: %v", ctx.Err())
	}
	if o.quick {
		if slower := rep.slower(); len(slower) > 0 {
			fmt.Fprintf(os.Stderr, "suite: Herald is slower than Node on: %s\n", strings.Join(slower, ", "))
			return 1, nil
		}
	}
	return 0, nil
}

func probeEnvironment(ctx context.Context, o *options) environment {
	e := environment{Date: time.Now().UTC().Format(time.RFC3339), NProc: runtime.NumCPU(), Go: runtime.Version(),
		LoadStart: loadavg(), Quick: o.quick, Runs: o.runs, Command: o.command}
	if e.Command == "" {
		e.Command = strings.Join(os.Args, " ")
	}
	e.Kernel, _ = child.Run(ctx, ".", nil, 10*time.Second, "uname", "-r")
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				e.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		e.MemTotal = strings.TrimSpace(strings.TrimPrefix(strings.Split(string(b), "\n")[0], "MemTotal:"))
	}
	e.Node, _ = child.Run(ctx, ".", nil, 10*time.Second, "node", "--version")
	e.Redis, _ = child.Run(ctx, ".", nil, 10*time.Second, "redis-server", "--version")
	e.Commit, _ = child.Run(ctx, o.root, nil, 10*time.Second, "git", "rev-parse", "--short", "HEAD")
	if st, _ := child.Run(ctx, o.root, nil, 10*time.Second, "git", "status", "--porcelain", "--untracked-files=no"); st != "" {
		e.Commit += " (+ uncommitted changes)"
	}
	e.NoFile, _ = child.Run(ctx, ".", nil, 10*time.Second, "sh", "-c", "ulimit -n")
	e.SocketIO = pkgVersion(o.root, "socket.io")
	e.WS = pkgVersion(o.root, "ws")
	e.Adapter = pkgVersion(o.root, "@socket.io/redis-adapter")
	return e
}

func pkgVersion(root, pkg string) string {
	b, err := os.ReadFile(filepath.Join(root, "bench/node/node_modules", pkg, "package.json"))
	if err != nil {
		return ""
	}
	var p struct {
		Version string `json:"version"`
	}
	json.Unmarshal(b, &p)
	return p.Version
}

// replot re-renders the Markdown and PNG of a saved report (after a change
// to the report code), keeping its figures.
func replot(o *options) error {
	b, err := os.ReadFile(o.replot)
	if err != nil {
		return err
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return err
	}
	o.quick, o.runs = rep.Env.Quick, rep.Env.Runs
	o.outDir, _ = filepath.Abs(filepath.Dir(o.replot))
	o.name = strings.TrimSuffix(filepath.Base(o.replot), ".json")
	rep.Rows, rep.Goals = nil, nil
	rep.build(o)
	return rep.write(o)
}
