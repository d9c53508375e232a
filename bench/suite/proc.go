package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procs is every child process this orchestrator started; killAll stops them.
var procs struct {
	mu  sync.Mutex
	all []*proc
}

// proc is a child in its own process group, with a parent-death signal so
// it cannot outlive the orchestrator.
type proc struct {
	name  string
	cmd   *exec.Cmd
	pid   int
	stdin io.WriteCloser
	lines chan map[string]any // JSON lines from stdout
	done  chan struct{}

	tailMu sync.Mutex
	tail   []string
}

// startProc starts argv pinned to cpu with taskset (if cpu != "").
func startProc(name, dir string, env []string, cpu string, argv []string) (*proc, error) {
	if cpu != "" {
		argv = append([]string{"taskset", "-c", cpu}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 3 * time.Second
	p := &proc{name: name, cmd: cmd, lines: make(chan map[string]any, 64), done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p.pid = cmd.Process.Pid
	procs.mu.Lock()
	procs.all = append(procs.all, p)
	procs.mu.Unlock()
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				p.lines <- m
			}
		}
	}()
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.tailMu.Lock()
			if len(p.tail) >= 15 {
				p.tail = p.tail[1:]
			}
			p.tail = append(p.tail, sc.Text())
			p.tailMu.Unlock()
			if verbose {
				fmt.Fprintf(os.Stderr, "  [%s] %s\n", name, sc.Text())
			}
		}
	}()
	go func() {
		readers.Wait()
		cmd.Wait()
		close(p.lines)
		close(p.done)
	}()
	return p, nil
}

var verbose bool

func (p *proc) stderrTail() string {
	p.tailMu.Lock()
	defer p.tailMu.Unlock()
	return strings.Join(p.tail, "\n")
}

// send writes one JSON command line to the child's stdin.
func (p *proc) send(v any) error {
	b, _ := json.Marshal(v)
	_, err := p.stdin.Write(append(b, '\n'))
	return err
}

// await returns the next stdout JSON line whose "event" is event.
func (p *proc) await(ctx context.Context, event string, timeout time.Duration) (map[string]any, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case m, ok := <-p.lines:
			if !ok {
				return nil, fmt.Errorf("%s exited while waiting for %q: %s", p.name, event, p.stderrTail())
			}
			if m["event"] == event {
				return m, nil
			}
		case <-t.C:
			return nil, fmt.Errorf("%s: no %q within %s: %s", p.name, event, timeout, p.stderrTail())
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// stop sends SIGTERM to the group, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.done:
	default:
		syscall.Kill(-p.pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	syscall.Kill(-p.pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// kill stops the process at once (a crash, for the reconnect storm).
func (p *proc) kill() {
	syscall.Kill(-p.pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

func killAll() {
	procs.mu.Lock()
	all := procs.all
	procs.all = nil
	procs.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range all {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop(2 * time.Second) }()
	}
	wg.Wait()
}

// runCmd runs a short command (build, version probe) with a timeout.
func runCmd(ctx context.Context, dir string, env []string, timeout time.Duration, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, lastLines(string(out), 30))
	}
	return strings.TrimSpace(string(out)), nil
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// cpuTicks is utime+stime of pid (all threads) in clock ticks (USER_HZ=100).
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(s[i+1:])
	// fields after ")": state(3) ... utime is field 14, stime 15 (1-based overall).
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st, nil
}

// cpuSeconds sums the CPU time of pids: the on-CPU nanoseconds of every
// thread from /proc/<pid>/task/*/schedstat (exact, where /proc/<pid>/stat
// counts 10 ms ticks), or the ticks if schedstat is missing.
func cpuSeconds(pids []int) float64 {
	var total float64
	for _, p := range pids {
		if ns, ok := schedstatNS(p); ok {
			total += float64(ns) / 1e9
			continue
		}
		v, _ := cpuTicks(p)
		total += float64(v) / 100
	}
	return total
}

func schedstatNS(pid int) (int64, bool) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) == 0 {
		return 0, false
	}
	var sum int64
	for _, e := range ents {
		b, err := os.ReadFile(dir + "/" + e.Name() + "/schedstat")
		if err != nil {
			continue // the thread has exited
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, false
		}
		v, _ := strconv.ParseInt(f[0], 10, 64)
		sum += v
	}
	return sum, true
}

func rssKB(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// cpuTimes are the machine's CPU times from the first line of /proc/stat,
// in clock ticks: busy (not idle, not waiting for I/O; steal included),
// steal (time the hypervisor ran something else while a vCPU wanted to
// run) and the total.
type cpuTimes struct{ busy, steal, total uint64 }

func readCPUTimes() (cpuTimes, error) {
	var t cpuTimes
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return t, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return t, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return t, fmt.Errorf("/proc/stat: %w", err)
		}
		t.total += n
		switch i {
		case 3, 4: // idle, iowait
		case 7:
			t.steal += n
			t.busy += n
		default:
			t.busy += n
		}
	}
	return t, nil
}

// stealShare is the share of the machine's CPU time stolen by the host
// between two readings (0 when unknown).
func stealShare(t0, t1 cpuTimes) float64 {
	if t1.total <= t0.total {
		return 0
	}
	return float64(t1.steal-t0.steal) / float64(t1.total-t0.total)
}

// cpuBusy returns the share of the machine's CPU time spent busy over d.
func cpuBusy(ctx context.Context, d time.Duration) (float64, error) {
	t0, err := readCPUTimes()
	if err != nil {
		return 0, err
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(d):
	}
	t1, err := readCPUTimes()
	if err != nil {
		return 0, err
	}
	if t1.total <= t0.total {
		return 0, nil
	}
	return float64(t1.busy-t0.busy) / float64(t1.total-t0.total), nil
}

// waitQuiet waits until the machine's CPUs were busy less than
// o.quietBusy over a second, for at most o.quietWait. What runs
// before a measurement (another process, the previous run's exiting
// children) would otherwise be measured with it: the kernel's share of a
// message's cost moves by ±20% with background load. It returns the last
// busy share seen and how long it waited.
func waitQuiet(ctx context.Context, o *options) (float64, time.Duration) {
	if o.quietBusy <= 0 {
		return 0, 0
	}
	start := time.Now()
	for {
		busy, err := cpuBusy(ctx, time.Second)
		if err != nil || busy < o.quietBusy || time.Since(start) >= o.quietWait {
			return busy, time.Since(start)
		}
	}
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return ""
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitListening polls until addr accepts TCP connections.
func waitListening(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening after %s: %v", addr, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}
