package redis_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/adapter/adaptertest"
	"github.com/herald-rt/herald/adapter/redis"
	"github.com/herald-rt/herald/internal/testutil"
	"github.com/herald-rt/herald/parser"
)

// TestSentinel runs the adapters through a Redis Sentinel (URL with
// ?master_set=NAME): the conformance suite, then a failover while one node
// broadcasts to a room on the other. The nodes must follow the sentinel to
// the promoted replica by themselves; the test logs how long that took.
func TestSentinel(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a primary, a replica and a sentinel")
	}
	s := testutil.StartSentinel(t, 500*time.Millisecond)

	t.Run("Conformance", func(t *testing.T) {
		newCluster := func(t *testing.T, cfg adaptertest.ClusterConfig) []adapter.Factory {
			key := fmt.Sprintf("sentinel%d", clusterSeq.Add(1))
			var nodes []adapter.Factory
			for range cfg.Nodes {
				nodes = append(nodes, redis.NewAdapter(dial(t, s.URL()), redis.Config{Key: key, RequestsTimeout: 3 * time.Second}))
			}
			return nodes
		}
		adaptertest.Run(t, newCluster, adaptertest.Options{MaxNodes: 2})
	})

	kinds := []struct {
		name    string
		factory func(*redis.Clients, redis.Config) adapter.Factory
	}{
		{"FailoverClassic", redis.NewAdapter},
		{"FailoverSharded", redis.NewShardedAdapter},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			// A failover leaves the old primary stopped: each kind gets
			// its own deployment.
			testSentinelFailover(t, testutil.StartSentinel(t, 500*time.Millisecond), k.factory)
		})
	}
}

func testSentinelFailover(t *testing.T, s *testutil.Sentinel, factory func(*redis.Clients, redis.Config) adapter.Factory) {
	key := fmt.Sprintf("failover%d", clusterSeq.Add(1))
	cfg := redis.Config{Key: key, RequestsTimeout: 3 * time.Second}
	nsA, nsB := adaptertest.NewNamespace("/", 0), adaptertest.NewNamespace("/", 1)
	aA, err := nsA.Attach(factory(dial(t, s.URL()), cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { aA.Close() })
	aB, err := nsB.Attach(factory(dial(t, s.URL()), cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { aB.Close() })
	nsB.Connect("sentinelb1", "room")

	var lastSeq atomic.Int64 // highest seq B has received
	nsB.OnDeliver(func(d adaptertest.Delivery) {
		if seq, ok := seqOf(d.Packet); ok && int64(seq) > lastSeq.Load() {
			lastSeq.Store(int64(seq))
		}
	})
	var sent atomic.Int64
	broadcast := func() {
		seq := int(sent.Add(1))
		pkt, err := parser.NewEvent("/", restartEvent, seq)
		if err != nil {
			t.Error(err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		aA.Broadcast(ctx, pkt, adapter.BroadcastOptions{Rooms: []string{"room"}}) // errors expected during the failover
	}
	// heard broadcasts until B receives one sent after the call, or the
	// timeout passes.
	heard := func(timeout time.Duration) bool {
		return pollUntil(timeout, func() bool {
			broadcast()
			return lastSeq.Load() >= sent.Load()-1 && lastSeq.Load() > 0
		})
	}
	if !heard(10 * time.Second) {
		t.Fatalf("before the failover B heard nothing (sent %d)", sent.Load())
	}

	oldPort := s.Primary.Port
	killed := time.Now()
	s.Primary.Stop()
	if !pollUntil(30*time.Second, func() bool {
		p, err := s.MasterPort()
		return err == nil && p != oldPort
	}) {
		t.Fatal("the sentinel did not promote the replica within 30s")
	}
	promoted := time.Now()
	sentBefore := sent.Load()
	if !pollUntil(30*time.Second, func() bool {
		broadcast()
		return lastSeq.Load() > sentBefore
	}) {
		t.Fatalf("after the failover B did not hear A again within 30s (B's last seq %d, sent %d)", lastSeq.Load(), sent.Load())
	}
	t.Logf("primary killed; sentinel promoted the replica after %v; broadcasts flowed again %v after that",
		promoted.Sub(killed).Round(time.Millisecond), time.Since(promoted).Round(time.Millisecond))

	// Cluster requests work against the new primary too (the first ones
	// may still fail while the client switches over).
	var n int
	err = fmt.Errorf("not called")
	pollUntil(10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err = aA.ServerCount(ctx)
		return err == nil && n == 2
	})
	if err != nil || n != 2 {
		t.Errorf("ServerCount after failover = %d, %v; want 2", n, err)
	}
}
