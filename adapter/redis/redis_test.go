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
