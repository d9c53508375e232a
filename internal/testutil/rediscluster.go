package testutil

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RedisCluster is a Redis Cluster of masters without replicas, started for
// a test: one redis-server per master on free loopback ports, joined with
// `redis-cli --cluster create`.
type RedisCluster struct {
	Addrs []string // host:port of each master
	Ports []int

	dir  string
	cmds []*exec.Cmd
	cli  string
	t    testing.TB
}

// URL returns redis://Addrs[0]; a cluster-aware client finds the other
// masters from there.
func (c *RedisCluster) URL() string { return "redis://" + c.Addrs[0] }

// StartRedisCluster starts a Redis Cluster of masters (no replicas) with
// --cluster-node-timeout 2000 and no persistence, waits until every node
// reports cluster_state:ok and knows all the others, and stops it when the
// test ends. Without redis-server or redis-cli the test is skipped (it
// fails under CI=true).
func StartRedisCluster(t testing.TB, masters int) *RedisCluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("a Redis Cluster needs at least 3 masters, not %d", masters)
	}
	bin := RequireBinary(t, "redis-server")
	cli := RequireBinary(t, "redis-cli")
	c := &RedisCluster{dir: t.TempDir(), cli: cli, t: t}
	t.Cleanup(c.Stop)
	for range masters {
		// The cluster bus port is given explicitly (--cluster-port, Redis
		// 7+): the default, port+10000, may be taken or out of range.
		port, busPort := FreePort(t), FreePort(t)
		for busPort == port {
			busPort = FreePort(t)
		}
		c.Ports = append(c.Ports, port)
		c.Addrs = append(c.Addrs, "127.0.0.1:"+strconv.Itoa(port))
		logf, err := os.Create(filepath.Join(c.dir, fmt.Sprintf("redis-%d.log", port)))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin,
			"--port", strconv.Itoa(port),
			"--cluster-port", strconv.Itoa(busPort),
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(c.dir, fmt.Sprintf("nodes-%d.conf", port)),
			"--cluster-node-timeout", "2000",
			"--save", "",
			"--appendonly", "no",
			"--bind", "127.0.0.1",
			"--dir", c.dir,
		)
		cmd.Stdout, cmd.Stderr = logf, logf
		err = cmd.Start()
		logf.Close()
		if err != nil {
			t.Fatalf("start redis-server on port %d: %v", port, err)
		}
		c.cmds = append(c.cmds, cmd)
	}
	for i, addr := range c.Addrs {
		c.waitFor(10*time.Second, fmt.Sprintf("redis-server on %s answering PING", addr), func() (bool, string) {
			out, err := c.CLI(i, "PING")
			return err == nil && strings.TrimSpace(out) == "PONG", out
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s%s", err, out, c.logs())
	}
	want := fmt.Sprintf("cluster_known_nodes:%d", masters)
	for i := range c.Addrs {
		c.waitFor(20*time.Second, fmt.Sprintf("CLUSTER INFO of %s", c.Addrs[i]), func() (bool, string) {
			out, err := c.CLI(i, "CLUSTER", "INFO")
			return err == nil &&
				strings.Contains(out, "cluster_state:ok") &&
				strings.Contains(out, "cluster_slots_ok:16384") &&
				strings.Contains(out, want), out
		})
	}
	// Every node must also agree on who serves which slots: a client that
	// reads CLUSTER SHARDS from a node whose view is stale gets MOVED
	// redirections, and subscriptions may land on the wrong node.
	c.waitFor(20*time.Second, "all nodes agreeing on the slot map", func() (bool, string) {
		var first string
		for i := range c.Addrs {
			out, err := c.CLI(i, "CLUSTER", "SLOTS")
			if err != nil {
				return false, out
			}
			if i == 0 {
				first = out
			} else if out != first {
				return false, first + "\n---\n" + out
			}
		}
		return true, ""
	})
	return c
}

// CLI runs redis-cli against master i with args and returns its output.
func (c *RedisCluster) CLI(i int, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	full := append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(c.Ports[i])}, args...)
	out, err := exec.CommandContext(ctx, c.cli, full...).CombinedOutput()
	return string(out), err
}

// Stop kills every server and waits for them to exit.
func (c *RedisCluster) Stop() {
	for _, cmd := range c.cmds {
		if cmd != nil && cmd.Process != nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	c.cmds = nil
}

func (c *RedisCluster) waitFor(timeout time.Duration, what string, cond func() (bool, string)) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("redis cluster: timed out after %v waiting for %s; last answer:\n%s%s", timeout, what, last, c.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logs returns the tail of every server's log, for failure messages.
func (c *RedisCluster) logs() string {
	var b bytes.Buffer
	for _, p := range c.Ports {
		data, err := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("redis-%d.log", p)))
		if err != nil {
			continue
		}
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		fmt.Fprintf(&b, "\n--- redis-server :%d log (tail) ---\n%s", p, data)
	}
	return b.String()
}
