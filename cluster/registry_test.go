package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/herald-rt/herald/cluster"
	"github.com/herald-rt/herald/internal/testutil"
)

func TestRegistry(t *testing.T) {
	r := testutil.StartRedis(t)
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{r.Addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	reg := cluster.NewRegistry(client, "t")
	ctx := context.Background()
	if err := reg.Register(ctx, cluster.NodeInfo{ID: "b", Addr: "127.0.0.1:2", Sockets: 7}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(ctx, cluster.NodeInfo{ID: "a", Addr: "127.0.0.1:1", Sockets: 3}, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	nodes, err := reg.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[0].ID != "a" || nodes[1].ID != "b" || nodes[1].Sockets != 7 || nodes[0].Addr != "127.0.0.1:1" {
		t.Fatalf("nodes = %+v", nodes)
	}
	// A node that stops refreshing expires.
	deadline := time.Now().Add(3 * time.Second)
	for {
		nodes, _ = reg.Nodes(ctx)
		if len(nodes) == 1 && nodes[0].ID == "b" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node a did not expire: %+v", nodes)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Heartbeat registers, and deregisters when stopped.
	hctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		reg.Heartbeat(hctx, 50*time.Millisecond, func() cluster.NodeInfo { return cluster.NodeInfo{ID: "c", Sockets: 1} }, nil)
		close(done)
	}()
	deadline = time.Now().Add(3 * time.Second)
	for {
		nodes, _ = reg.Nodes(ctx)
		if len(nodes) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("heartbeat node missing: %+v", nodes)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	<-done
	if nodes, _ = reg.Nodes(ctx); len(nodes) != 1 {
		t.Fatalf("after stop: %+v, want only b", nodes)
	}
	if err := reg.Deregister(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if nodes, _ = reg.Nodes(ctx); len(nodes) != 0 {
		t.Fatalf("after deregister: %+v", nodes)
	}
}
