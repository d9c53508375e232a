package child

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestStartLinesAndExit(t *testing.T) {
	var mu sync.Mutex
	var out []string
	p, err := Start(Options{Name: "sh", Argv: []string{"sh", "-c", `echo one; echo two; echo oops >&2; printf tail; exit 3`},
		Stdout: func(l string) { mu.Lock(); out = append(out, l); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("child did not exit")
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(out, ",") != "one,two" { // "tail" has no newline: not a line
		t.Errorf("stdout lines = %q", out)
	}
	if got := p.StderrTail(); got != "oops" {
		t.Errorf("stderr tail = %q", got)
	}
	var ee *exec.ExitError
	if !errors.As(p.Err(), &ee) || ee.ExitCode() != 3 {
		t.Errorf("Err = %v, want exit status 3", p.Err())
	}
	if !p.Exited() || p.Signal(syscall.SIGTERM) == nil {
		t.Error("an exited child must say so, and refuse signals")
	}
}

// TestStopEndsTheGroup: a child that ignores SIGTERM and has started a
// grandchild is killed with it after the grace period.
func TestStopEndsTheGroup(t *testing.T) {
	pidLine := make(chan string, 1)
	p, err := Start(Options{Name: "stubborn", Argv: []string{"sh", "-c", `trap '' TERM; sleep 60 & echo $!; wait`},
		Stdout: func(l string) { pidLine <- l }})
	if err != nil {
		t.Fatal(err)
	}
	var grandchild int
	select {
	case l := <-pidLine:
		grandchild, _ = strconv.Atoi(l)
	case <-time.After(10 * time.Second):
		t.Fatal("no grandchild pid")
	}
	start := time.Now()
	p.Stop(200 * time.Millisecond)
	if !p.Exited() {
		t.Fatal("Stop returned before the child exited")
	}
	if time.Since(start) < 200*time.Millisecond {
		t.Error("Stop did not give the child its grace period")
	}
	// The grandchild, reparented, may linger as a zombie for a moment; a
	// live one still answers signal 0 after the deadline.
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(grandchild, 0) == nil && !isZombie(grandchild) {
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d survived Stop", grandchild)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// isZombie reports whether pid has exited and waits to be reaped (or is
// gone): the state field of /proc/<pid>/stat, after the command's ")".
func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return strings.HasPrefix(rest, "Z") || strings.HasPrefix(rest, "X")
}

func TestStopAllSkipsUntracked(t *testing.T) {
	a, err := Start(Options{Name: "a", Argv: []string{"sleep", "60"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Start(Options{Name: "b", Argv: []string{"sleep", "60"}})
	if err != nil {
		t.Fatal(err)
	}
	b.Untrack()
	StopAll()
	if !a.Exited() {
		t.Error("StopAll left a tracked child running")
	}
	if b.Exited() {
		t.Error("StopAll stopped an untracked child")
	}
	b.Kill()
	if !b.Exited() {
		t.Error("Kill returned before the child exited")
	}
}

func TestWaitListening(t *testing.T) {
	ctx := context.Background()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := WaitListening(ctx, l.Addr().String(), nil, time.Second); err != nil {
		t.Errorf("listening address: %v", err)
	}
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p, err := Start(Options{Name: "quitter", Argv: []string{"sh", "-c", "echo bad flag >&2; exit 2"}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = WaitListening(ctx, addr, p, 30*time.Second)
	if err == nil || !strings.Contains(err.Error(), "bad flag") {
		t.Errorf("exited child: err = %v, want its stderr", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Error("WaitListening did not stop when the child exited")
	}
	if err := WaitListening(ctx, addr, nil, 50*time.Millisecond); err == nil {
		t.Error("nothing listening, yet no error")
	}
}

func TestRun(t *testing.T) {
	out, err := Run(context.Background(), ".", []string{"CHILD_TEST=x"}, 10*time.Second, "sh", "-c", "echo  $CHILD_TEST ")
	if err != nil || out != "x" {
		t.Errorf("Run = %q, %v", out, err)
	}
	_, err = Run(context.Background(), ".", nil, 10*time.Second, "sh", "-c", "seq 100; exit 1")
	if err == nil || !strings.Contains(err.Error(), "\n100") || strings.Contains(err.Error(), "\n70\n") {
		t.Errorf("failure: err = %v, want the output's last 30 lines", err)
	}
	start := time.Now()
	if _, err := Run(context.Background(), ".", nil, 100*time.Millisecond, "sleep", "30"); err == nil {
		t.Error("a command past its timeout did not fail")
	}
	if time.Since(start) > 10*time.Second {
		t.Error("the timeout did not kill the command")
	}
}
