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
