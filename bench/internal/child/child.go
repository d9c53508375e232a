// Package child starts and stops the benchmark tools' helper processes
// (servers, Redis, load generators) for bench/suite and bench/idlemem.
//
// Each child runs in its own process group with a parent-death signal, so
// neither it nor anything it starts outlives the tool, even one that dies
// without cleaning up; Stop and StopAll end the whole group.
package child

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options describe a child to start.
type Options struct {
	Name string   // for error messages
	Dir  string   // working directory
	Env  []string // added to this process's environment
	CPU  string   // taskset CPU list to pin the child to; "" leaves it unpinned
	Argv []string

	// Stdout and Stderr get each output line, from the goroutine copying
	// that stream; either may be nil. A Stdout that blocks stalls the
	// child's writes, which is how a slow reader keeps every line.
	Stdout, Stderr func(line string)
}

// A Proc is a started child.
type Proc struct {
	Name  string
	Pid   int            // the program's own (taskset execs it)
	Stdin io.WriteCloser // kept open: children that watch stdin exit when the tool goes away

	done chan struct{} // closed once the child has exited and its output is drained
	err  error         // Wait's result, valid after done

	tailMu sync.Mutex
	tail   []string // the last stderr lines, for error messages
}

// tracked is every child Start made and Untrack did not remove; StopAll
// stops them.
var tracked struct {
	mu  sync.Mutex
	all []*Proc
}

const tailLines = 20

// Start starts a child as o describes.
func Start(o Options) (*Proc, error) {
	argv := o.Argv
	if o.CPU != "" {
		argv = append([]string{"taskset", "-c", o.CPU}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), o.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	p := &Proc{Name: o.Name, done: make(chan struct{})}
	cmd.Stdout = &lineWriter{fn: o.Stdout}
	cmd.Stderr = &lineWriter{fn: func(l string) {
		if o.Stderr != nil {
			o.Stderr(l)
		}
		p.tailMu.Lock()
		if len(p.tail) >= tailLines {
			p.tail = p.tail[1:]
		}
		p.tail = append(p.tail, l)
		p.tailMu.Unlock()
	}}
	var err error
	if p.Stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", o.Name, err)
	}
	p.Pid = cmd.Process.Pid
	tracked.mu.Lock()
	tracked.all = append(tracked.all, p)
	tracked.mu.Unlock()
	go func() {
		p.err = cmd.Wait() // returns once both output streams are drained
		close(p.done)
	}()
	return p, nil
}

// Done is closed once the child has exited and all its output was handed on.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is how the child ended (exec.Cmd.Wait's result); valid once Done is closed.
func (p *Proc) Err() error { return p.err }

// Exited reports whether Done is closed.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// StderrTail is the child's last stderr lines.
func (p *Proc) StderrTail() string {
	p.tailMu.Lock()
	defer p.tailMu.Unlock()
	return strings.Join(p.tail, "\n")
}

// Signal sends sig to the child itself (not its group).
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return errors.New(p.Name + " has exited")
	}
	return syscall.Kill(p.Pid, sig)
}

// Stop sends SIGTERM to the child's group, waits up to grace, then kills
// whatever is left of the group. It returns once the child has exited, or
// after 10 s more, saying so on stderr.
func (p *Proc) Stop(grace time.Duration) {
	if !p.Exited() {
		syscall.Kill(-p.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	p.Kill()
}

// Kill ends the child's group at once (a crash, for a reconnect storm) and
// waits as Stop does.
func (p *Proc) Kill() {
	syscall.Kill(-p.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		fmt.Fprintf(os.Stderr, "%s (pid %d) did not exit after SIGKILL\n", p.Name, p.Pid)
	}
}

// Untrack takes p out of StopAll's reach: for a child that outlives the
// measurements StopAll ends between (Redis, for a whole scenario). Its
// owner stops it; the parent-death signal still holds.
func (p *Proc) Untrack() {
	tracked.mu.Lock()
	defer tracked.mu.Unlock()
	for i, q := range tracked.all {
		if q == p {
			tracked.all = append(tracked.all[:i], tracked.all[i+1:]...)
			return
		}
	}
}

// StopAll stops every tracked child, concurrently, with a 2 s grace.
func StopAll() {
	tracked.mu.Lock()
	all := tracked.all
	tracked.all = nil
	tracked.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range all {
		wg.Go(func() { p.Stop(2 * time.Second) })
	}
	wg.Wait()
}

// lineWriter calls fn (if not nil) with each complete line written to it.
type lineWriter struct {
	buf []byte
	fn  func(string)
}

// maxLine bounds a line held while waiting for its end; a longer one is
// dropped. A load generator's report of one phase, histograms included, is
// a few KB.
const maxLine = 16 << 20

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		if w.fn != nil {
			w.fn(string(w.buf[:i]))
		}
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > maxLine {
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

// Run runs a short command (a build, a version probe) in its own process
// group, killed with it after timeout, and returns its trimmed combined
// output; on failure the error holds the output's last 30 lines.
func Run(ctx context.Context, dir string, env []string, timeout time.Duration, argv ...string) (string, error) {
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
		return string(out), fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, LastLines(string(out), 30))
	}
	return strings.TrimSpace(string(out)), nil
}

// LastLines is the last n lines of s, for error messages.
func LastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// FreePort asks the kernel for a free loopback port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitListening returns once addr accepts TCP connections. It tries every
// 5 ms (a reconnect storm is timed from it). p, when not nil, is the child
// expected to listen: it fails early if p exits first, and its errors carry
// p's last stderr lines.
func WaitListening(ctx context.Context, addr string, p *Proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if p != nil && p.Exited() {
			return fmt.Errorf("%s exited (%v) before listening on %s: %s", p.Name, p.Err(), addr, p.StderrTail())
		}
		if time.Now().After(deadline) {
			err = fmt.Errorf("not listening on %s after %s: %v", addr, timeout, err)
			if p != nil {
				err = fmt.Errorf("%s: %w: %s", p.Name, err, p.StderrTail())
			}
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}
