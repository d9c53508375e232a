package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Sentinel is a Redis deployment watched by one redis-server in sentinel
// mode: a primary and one replica, both started for a test.
type Sentinel struct {
	Addr       string // the sentinel's host:port
	MasterName string // the monitored master's name
	Primary    *Redis
	Replica    *Redis
	cmd        *exec.Cmd
}

// URL returns the URL clients use to reach the current primary through
// the sentinel (rueidis syntax: ?master_set=NAME).
func (s *Sentinel) URL() string {
	return "redis://" + s.Addr + "?master_set=" + s.MasterName
}

// StartSentinel starts a primary, a replica of it and a sentinel that
// declares the primary down after downAfter without answers (then fails
// over to the replica), and stops them all when the test ends.
func StartSentinel(t testing.TB, downAfter time.Duration) *Sentinel {
	t.Helper()
	primary := StartRedis(t)
	replica := StartRedis(t, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port))
	s := &Sentinel{MasterName: "herald", Primary: primary, Replica: replica}
	port := FreePort(t)
	s.Addr = "127.0.0.1:" + strconv.Itoa(port)
	// A sentinel rewrites its configuration file, so it gets its own.
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	ms := strconv.FormatInt(downAfter.Milliseconds(), 10)
	body := strings.Join([]string{
		"port " + strconv.Itoa(port),
		"bind 127.0.0.1",
		"sentinel resolve-hostnames no",
		fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 1", s.MasterName, primary.Port),
		fmt.Sprintf("sentinel down-after-milliseconds %s %s", s.MasterName, ms),
		// A failover the sentinel abandons (it may still hold an old
		// INFO of the replica that says its link is down, which makes
		// the replica ineligible) is retried after twice this.
		fmt.Sprintf("sentinel failover-timeout %s 2000", s.MasterName),
		fmt.Sprintf("sentinel parallel-syncs %s 1", s.MasterName),
		"",
	}, "\n")
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(primary.bin, conf, "--sentinel")
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start redis-server --sentinel: %v", err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	})
	// Ready once the replica has synced with the primary (a replica whose
	// link never came up cannot be promoted) and the sentinel has found it.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		info, err := Command(replica.Addr, "INFO", "replication")
		if err == nil && strings.Contains(info, "master_link_status:up") {
			if reply, err := Command(s.Addr, "SENTINEL", "REPLICAS", s.MasterName); err == nil &&
				strings.Contains(reply, strconv.Itoa(replica.Port)) {
				return s
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("sentinel on %s did not see the replica %d in sync", s.Addr, replica.Port)
	return nil
}

// MasterPort asks the sentinel which port the current primary listens on.
func (s *Sentinel) MasterPort() (int, error) {
	reply, err := Command(s.Addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.MasterName)
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(reply) // "127.0.0.1" "6379"
	if len(fields) != 2 {
		return 0, fmt.Errorf("unexpected reply %q", reply)
	}
	return strconv.Atoi(fields[1])
}

// Command runs one Redis command against addr with redis-cli and returns
// its raw output.
func Command(addr string, args ...string) (string, error) {
	host, port, ok := strings.Cut(addr, ":")
	if !ok {
		return "", fmt.Errorf("bad address %q", addr)
	}
	out, err := exec.Command("redis-cli", append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("redis-cli %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
