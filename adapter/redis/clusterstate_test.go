package redis_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/adapter/redis"
	"github.com/herald-rt/herald/internal/testutil"
)

// A Redis Cluster node that cannot see a working cluster (cluster_state:
// fail) is refused at once with an error that says what is wrong and how
// to look into it: with no hash slot assigned at all, and with only some
// slots served (the rest of the cluster out of reach).
func TestDialRefusesFailedCluster(t *testing.T) {
	for _, slots := range []string{"", "0 1000"} {
		t.Run("slots="+slots, func(t *testing.T) {
			r := testutil.StartRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", t.TempDir()+"/nodes.conf")
			if slots != "" {
				if out, err := testutil.Command(r.Addr, append([]string{"CLUSTER", "ADDSLOTSRANGE"}, strings.Fields(slots)...)...); err != nil || !strings.Contains(out, "OK") {
					t.Fatalf("CLUSTER ADDSLOTSRANGE: %q %v", out, err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := redis.Dial(ctx, r.URL())
			if err == nil {
				c.Close()
				t.Fatal("Dial to a node with cluster_state:fail succeeded")
			}
			if !errors.Is(err, redis.ErrClusterDown) {
				t.Fatalf("Dial error = %v, want ErrClusterDown", err)
			}
			if !strings.Contains(err.Error(), "redis-cli --cluster check") {
				t.Errorf("error %q does not say how to look into it", err)
			}
			t.Log(err)
		})
	}
}
