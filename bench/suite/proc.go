package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/herald-rt/herald/bench/internal/child"
)

// proc is a load generator, server or Redis, with the JSON lines of its
// stdout: the load generators' events ("ready", "phase", ...).
type proc struct {
	*child.Proc
	lines chan map[string]any // closed once the child has exited
}

// startProc starts argv pinned to cpu with taskset (if cpu != "").
func startProc(name, dir string, env []string, cpu string, argv []string) (*proc, error) {
	lines := make(chan map[string]any, 64)
	c, err := child.Start(child.Options{Name: name, Dir: dir, Env: env, CPU: cpu, Argv: argv,
		Stdout: func(l string) {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil {
				lines <- m
			}
		},
		Stderr: func(l string) {
			if verbose {
				fmt.Fprintf(os.Stderr, "  [%s] %s\n", name, l)
			}
		}})
	if err != nil {
		return nil, err
	}
	go func() {
		<-c.Done() // no more Stdout calls after it
		close(lines)
	}()
	return &proc{Proc: c, lines: lines}, nil
}

var verbose bool

// send writes one JSON command line to the child's stdin.
func (p *proc) send(v any) error {
	b, _ := json.Marshal(v)
	_, err := p.Stdin.Write(append(b, '\n'))
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
				return nil, fmt.Errorf("%s exited while waiting for %q: %s", p.Name, event, p.StderrTail())
			}
			if m["event"] == event {
				return m, nil
			}
		case <-t.C:
			return nil, fmt.Errorf("%s: no %q within %s: %s", p.Name, event, timeout, p.StderrTail())
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
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
