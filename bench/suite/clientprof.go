package main

// Self-measurement of the load generator, off unless SUITE_CLIENT_PROFILE
// names a directory (the orchestrator's environment reaches its children, so
// no flag needs plumbing): each phase or churn window of a client process is
// CPU-profiled into DIR/client-<pid>-<seq>-<op>.pprof, and one JSON line per
// window (client CPU seconds, frames or handshakes) is appended to
// DIR/client-<pid>.jsonl. This is how the client's own cost per frame and per
// handshake is checked; it does not change what the report measures.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"
)

var clientProf struct {
	once sync.Once
	dir  string
	seq  int
	mu   sync.Mutex
}

// profWindow is one profiled window; a nil *profWindow does nothing.
type profWindow struct {
	op   string
	seq  int
	usr0 time.Duration
	sys0 time.Duration
	t0   time.Time
	f    *os.File
}

// processCPU is the process's user and system (kernel) CPU time so far.
func processCPU() (user, sys time.Duration) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// startProfWindow begins a window's profile (nil when profiling is off).
func startProfWindow(op string) *profWindow {
	clientProf.once.Do(func() { clientProf.dir = os.Getenv("SUITE_CLIENT_PROFILE") })
	if clientProf.dir == "" {
		return nil
	}
	clientProf.mu.Lock()
	clientProf.seq++
	w := &profWindow{op: op, seq: clientProf.seq}
	clientProf.mu.Unlock()
	os.MkdirAll(clientProf.dir, 0o755)
	f, err := os.Create(filepath.Join(clientProf.dir, fmt.Sprintf("client-%d-%d-%s.pprof", os.Getpid(), w.seq, op)))
	if err == nil && pprof.StartCPUProfile(f) == nil {
		w.f = f
	} else if f != nil {
		f.Close()
	}
	w.usr0, w.sys0 = processCPU()
	w.t0 = time.Now()
	return w
}

// end stops the profile and logs the window's figures (count: frames or
// handshakes counted by the window).
func (w *profWindow) end(extra map[string]any) {
	if w == nil {
		return
	}
	usr, sys := processCPU()
	usr, sys = usr-w.usr0, sys-w.sys0
	wall := time.Since(w.t0)
	if w.f != nil {
		pprof.StopCPUProfile()
		w.f.Close()
	}
	rec := map[string]any{"op": w.op, "seq": w.seq, "cpu_s": (usr + sys).Seconds(), "user_s": usr.Seconds(), "sys_s": sys.Seconds(), "wall_s": wall.Seconds()}
	for k, v := range extra {
		rec[k] = v
	}
	b, _ := json.Marshal(rec)
	f, err := os.OpenFile(filepath.Join(clientProf.dir, fmt.Sprintf("client-%d.jsonl", os.Getpid())), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err == nil {
		f.Write(append(b, '\n'))
		f.Close()
	}
}
