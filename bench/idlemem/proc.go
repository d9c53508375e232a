package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procs is every child process started by this run; killAll stops them.
var procs struct {
	mu  sync.Mutex
	all []*proc
}

// proc is a child process in its own process group. Pdeathsig kills it if
// this harness dies without cleaning up.
type proc struct {
	name string
	cmd  *exec.Cmd
	pid  int
	done chan struct{} // closed when the process has exited and its output is drained
	err  error         // Wait's result, valid after done

	tailMu sync.Mutex
	tail   []string // last stderr lines, for error messages
}

// lineWriter calls fn for each complete line written to it.
type lineWriter struct {
	buf []byte
	fn  func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.fn(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 1<<20 { // a runaway line: drop it
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

// startProc starts argv with taskset pinning to cpu (if cpu != ""). taskset
// execs the program, so the pid is the program's own. onStdout and onStderr
// get each output line (either may be nil).
func startProc(name, dir string, env []string, cpu string, argv []string, onStdout, onStderr func(string)) (*proc, error) {
	if cpu != "" {
		argv = append([]string{"taskset", "-c", cpu}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout = &lineWriter{fn: func(l string) {
		if onStdout != nil {
			onStdout(l)
		}
	}}
	cmd.Stderr = &lineWriter{fn: func(l string) {
		if onStderr != nil {
			onStderr(l)
		}
		p.tailMu.Lock()
		if len(p.tail) >= 20 {
			p.tail = p.tail[1:]
		}
		p.tail = append(p.tail, l)
		p.tailMu.Unlock()
	}}
	// Keep stdin open (a pipe we never write to): servers that watch it exit
	// when this harness goes away.
	if _, err := cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p.pid = cmd.Process.Pid
	procs.mu.Lock()
	procs.all = append(procs.all, p)
	procs.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) stderrTail() string {
	p.tailMu.Lock()
	defer p.tailMu.Unlock()
	return strings.Join(p.tail, "\n")
}

// signal sends sig to the process itself (not its group).
func (p *proc) signal(sig syscall.Signal) error {
	if p.exited() {
		return errors.New(p.name + " has exited")
	}
	return syscall.Kill(p.pid, sig)
}

// stop sends SIGTERM to the process group, waits up to grace, then SIGKILLs
// the group. It always returns once the process has exited.
func (p *proc) stop(grace time.Duration) {
	if !p.exited() {
		syscall.Kill(-p.pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	// Anything left in the group (the process itself or helpers) goes now.
	syscall.Kill(-p.pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		fmt.Fprintf(os.Stderr, "idlemem: %s (pid %d) did not exit after SIGKILL\n", p.name, p.pid)
	}
}

// killAll stops every child started by this harness.
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

// run executes a short command (builds, version probes) with a timeout.
func runCmd(ctx context.Context, dir string, timeout time.Duration, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// procStatus reads fields (in kB) from /proc/<pid>/status.
func procStatus(pid int, fields ...string) (map[string]int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		for _, f := range fields {
			if k == f {
				n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				out[k] = n
			}
		}
	}
	return out, nil
}

// meminfo reads one field (kB) of /proc/meminfo.
func meminfo(field string) int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return ""
}
