// Package testutil holds helpers for Herald's own tests: real servers
// started on free loopback ports and stopped when the test ends.
package testutil

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// RequireBinary returns the path of a program the test needs. When it is
// missing the test is skipped, except under CI=true where it fails: a CI
// run must not pass by skipping what it could not run.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found in PATH (./scripts/test installs it)", name)
		}
		t.Skipf("%s not found in PATH; run ./scripts/test to install it", name)
	}
	return path
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Redis is a redis-server started for a test.
type Redis struct {
	Addr string // host:port
	Port int
	cmd  *exec.Cmd
	args []string
	bin  string
	t    testing.TB
}

// URL returns redis://Addr.
func (r *Redis) URL() string { return "redis://" + r.Addr }

// StartRedis starts a redis-server (no persistence) on a free loopback port
// and stops it when the test ends. Extra arguments are passed to it.
func StartRedis(t testing.TB, extra ...string) *Redis {
	t.Helper()
	bin := RequireBinary(t, "redis-server")
	port := FreePort(t)
	r := &Redis{Addr: "127.0.0.1:" + strconv.Itoa(port), Port: port, bin: bin, t: t}
	// --dir: a replica's initial sync writes an RDB file even without --save.
	r.args = append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir()}, extra...)
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Start (re)starts the server on its port and waits until it answers.
func (r *Redis) Start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, r.args...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", r.Addr, 200*time.Millisecond); err == nil {
			fmt.Fprint(c, "PING\r\n")
			buf := make([]byte, 16)
			c.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := c.Read(buf)
			c.Close()
			if n > 0 && string(buf[:n]) == "+PONG\r\n" {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("redis-server on %s did not start", r.Addr)
}

// Stop kills the server and waits for it to exit.
func (r *Redis) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Kill()
	r.cmd.Wait()
	r.cmd = nil
}
