package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/adapter/adaptertest"
	"github.com/herald-rt/herald/adapter/redis"
	"github.com/herald-rt/herald/internal/testutil"
)

var clusterSeq atomic.Int64

func dial(t *testing.T, url string) *redis.Clients {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := redis.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestClassicConformance(t *testing.T) {
	r := testutil.StartRedis(t)
	newCluster := func(t *testing.T, cfg adaptertest.ClusterConfig) []adapter.Factory {
		key := fmt.Sprintf("test%d", clusterSeq.Add(1))
		var nodes []adapter.Factory
		for i := range cfg.Nodes {
			nodes = append(nodes, redis.NewAdapter(dial(t, r.URL()), redis.Config{
				Key:                              key,
				PublishOnSpecificResponseChannel: i%2 == 1, // mix both settings, as in mixed clusters
				RequestsTimeout:                  3 * time.Second,
			}))
		}
		return nodes
	}
	adaptertest.Run(t, newCluster, adaptertest.Options{MaxNodes: 3})
}

func TestShardedConformance(t *testing.T) {
	r := testutil.StartRedis(t)
	for _, mode := range []string{"dynamic", "static", "dynamic-private"} {
		t.Run(mode, func(t *testing.T) {
			newCluster := func(t *testing.T, cfg adaptertest.ClusterConfig) []adapter.Factory {
				key := fmt.Sprintf("test%d", clusterSeq.Add(1))
				var nodes []adapter.Factory
				for range cfg.Nodes {
					nodes = append(nodes, redis.NewShardedAdapter(dial(t, r.URL()), redis.Config{
						Key:              key,
						SubscriptionMode: mode,
						RequestsTimeout:  3 * time.Second,
					}))
				}
				return nodes
			}
			adaptertest.Run(t, newCluster, adaptertest.Options{MaxNodes: 3})
		})
	}
}

// Starting against a read-only replica fails at once with an error that
// says what is wrong: a replica accepts PUBLISH but only its own
// subscribers hear it, so nodes would silently miss each other.
func TestDialRefusesReplica(t *testing.T) {
	primary := testutil.StartRedis(t)
	replica := testutil.StartRedis(t, "--replicaof", "127.0.0.1", fmt.Sprint(primary.Port))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := redis.Dial(ctx, replica.URL())
	if !errors.Is(err, redis.ErrReadOnlyReplica) {
		t.Fatalf("Dial(replica) error = %v, want ErrReadOnlyReplica", err)
	}
	if !strings.Contains(err.Error(), "primary") {
		t.Errorf("error %q does not say what to do", err)
	}
	c, err := redis.Dial(ctx, primary.URL())
	if err != nil {
		t.Fatalf("Dial(primary): %v", err)
	}
	c.Close()
}

func TestDialBadURL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := redis.Dial(ctx, "http://nope"); err == nil || !strings.Contains(err.Error(), "bad URL") {
		t.Fatalf("Dial(http://nope) = %v, want a bad URL error", err)
	}
	port := testutil.FreePort(t) // nothing listens there
	if _, err := redis.Dial(ctx, fmt.Sprintf("redis://127.0.0.1:%d", port)); err == nil {
		t.Fatal("Dial to a closed port succeeded")
	}
}

// All the namespaces of one server share one subscription connection per
// Redis node (as the Node.js adapters share their subscriber client), so
// that many namespaces, dynamic ones included, do not each hold a Redis
// connection. Two servers built with the same Clients still subscribe
// apart: PUBSUB NUMSUB must count them as two nodes.
func TestSharedSubscriptionConnection(t *testing.T) {
	r := testutil.StartRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, kind := range []string{"classic", "sharded"} {
		t.Run(kind, func(t *testing.T) {
			c := dial(t, r.URL())
			key := fmt.Sprintf("shared%d", clusterSeq.Add(1))
			newFactory := func() adapter.Factory {
				if kind == "sharded" {
					return redis.NewShardedAdapter(c, redis.Config{Key: key})
				}
				return redis.NewAdapter(c, redis.Config{Key: key})
			}
			// Connections in subscription mode, from CLIENT LIST.
			pubsubConns := func() int {
				list, err := c.Pub.Do(ctx, c.Pub.B().ClientList().Build()).ToString()
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for line := range strings.Lines(list) {
					for f := range strings.FieldsSeq(line) {
						if flags, ok := strings.CutPrefix(f, "flags="); ok && strings.Contains(flags, "P") {
							n++
						}
					}
				}
				return n
			}
			// Subscribers of a namespace's channel that every node has.
			numsub := func(nsp string) int64 {
				if kind == "sharded" {
					ch := key + "#" + nsp + "#"
					m, err := c.Pub.Do(ctx, c.Pub.B().PubsubShardnumsub().Channel(ch).Build()).AsIntMap()
					if err != nil {
						t.Fatal(err)
					}
					return m[ch]
				}
				ch := key + "-request#" + nsp + "#"
				m, err := c.Pub.Do(ctx, c.Pub.B().PubsubNumsub().Channel(ch).Build()).AsIntMap()
				if err != nil {
					t.Fatal(err)
				}
				return m[ch]
			}
			base := pubsubConns()
			server := newFactory()
			var adapters []adapter.Adapter
			for i := range 12 {
				a, err := adaptertest.NewNamespace(fmt.Sprintf("/tenant-%d", i), 0).Attach(server)
				if err != nil {
					t.Fatal(err)
				}
				adapters = append(adapters, a)
			}
			if n := pubsubConns() - base; n != 1 {
				t.Errorf("12 namespaces hold %d subscription connections, want 1", n)
			}
			other, err := adaptertest.NewNamespace("/tenant-0", 1).Attach(newFactory())
			if err != nil {
				t.Fatal(err)
			}
			if n := pubsubConns() - base; n != 2 {
				t.Errorf("two servers on the same Clients hold %d subscription connections, want 2", n)
			}
			if n := numsub("/tenant-0"); n != 2 {
				t.Errorf("NUMSUB of /tenant-0 = %d with two servers, want 2", n)
			}
			// Closing namespaces unsubscribes theirs and nothing else.
			for _, a := range adapters[1:] {
				a.Close()
			}
			if n := numsub("/tenant-5"); n != 0 {
				t.Errorf("NUMSUB of a closed namespace = %d, want 0", n)
			}
			if n := numsub("/tenant-0"); n != 2 {
				t.Errorf("NUMSUB of /tenant-0 = %d after other namespaces closed, want 2", n)
			}
			adapters[0].Close()
			other.Close()
			deadline := time.Now().Add(5 * time.Second)
			for pubsubConns() != base && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if n := pubsubConns() - base; n != 0 {
				t.Errorf("%d subscription connections left after every adapter closed", n)
			}
		})
	}
}
