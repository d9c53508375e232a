package redis_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/adapter/adaptertest"
	"github.com/herald-rt/herald/adapter/redis"
	"github.com/herald-rt/herald/internal/clusterwire"
	"github.com/herald-rt/herald/internal/testutil"
	"github.com/herald-rt/herald/parser"
)

// TestCluster runs the Redis adapters against a 3-master Redis Cluster
// (redis-server --cluster-enabled yes, joined by redis-cli --cluster
// create): the conformance suite for the sharded adapter (SSUBSCRIBE and
// SPUBLISH go to the master of each channel's slot) and for the classic
// one (PUBLISH is propagated cluster-wide; PUBSUB NUMSUB is per node and
// the adapter sums it), then broadcasts to 20 rooms whose channels hash to
// slots of all three masters.
func TestCluster(t *testing.T) {
	start := time.Now()
	rc := testutil.StartRedisCluster(t, 3)
	t.Logf("Redis Cluster of 3 masters %v ready in %v", rc.Addrs, time.Since(start).Round(time.Millisecond))

	// redis.Dial detects the cluster by itself from one address.
	c := dial(t, rc.URL())
	if m := c.Pub.Mode(); m != rueidis.ClientModeCluster {
		t.Fatalf("client mode %q against a Redis Cluster, want %q", m, rueidis.ClientModeCluster)
	}
	if n := len(c.Pub.Nodes()); n != 3 {
		t.Fatalf("client knows %d nodes, want the 3 masters", n)
	}

	t.Run("ShardedConformance", func(t *testing.T) {
		for _, mode := range []string{"dynamic", "static"} {
			t.Run(mode, func(t *testing.T) {
				begin := time.Now()
				adaptertest.Run(t, clusterFactories(rc, func(c *redis.Clients, key string, _ int) adapter.Factory {
					return redis.NewShardedAdapter(c, redis.Config{Key: key, SubscriptionMode: mode, RequestsTimeout: 3 * time.Second})
				}), adaptertest.Options{MaxNodes: 3})
				t.Logf("conformance suite, sharded %s, on the Redis Cluster: %v", mode, time.Since(begin).Round(time.Millisecond))
			})
		}
	})
	t.Run("ClassicConformance", func(t *testing.T) {
		begin := time.Now()
		adaptertest.Run(t, clusterFactories(rc, func(c *redis.Clients, key string, i int) adapter.Factory {
			return redis.NewAdapter(c, redis.Config{
				Key:                              key,
				PublishOnSpecificResponseChannel: i%2 == 1,
				RequestsTimeout:                  3 * time.Second,
			})
		}), adaptertest.Options{MaxNodes: 3})
		t.Logf("conformance suite, classic, on the Redis Cluster: %v", time.Since(begin).Round(time.Millisecond))
	})

	// One sender's messages on several channels of one master (sharded:
	// channels on different masters have no common order, in Node.js
	// either) or of the classic adapter (all through one node) keep
	// their order.
	t.Run("Order", func(t *testing.T) {
		for _, oc := range orderCases {
			t.Run(oc.name, func(t *testing.T) {
				key := fmt.Sprintf("order%d", clusterSeq.Add(1))
				rooms, target := sameMasterRooms(t, c, key)
				testOrder(t, rc.URL(), oc, key, rooms, target)
			})
		}
	})

	t.Run("Rooms", func(t *testing.T) {
		kinds := []struct {
			name    string
			sharded bool
			mode    string
		}{
			{"Classic", false, ""},
			{"ShardedDynamic", true, "dynamic"},
			{"ShardedStatic", true, "static"},
			{"ShardedDynamicPrivate", true, "dynamic-private"},
		}
		for _, k := range kinds {
			t.Run(k.name, func(t *testing.T) {
				key := fmt.Sprintf("rooms-%s", strings.ToLower(k.name))
				testClusterRooms(t, rc, key, k.sharded, func(c *redis.Clients) adapter.Factory {
					cfg := redis.Config{Key: key, SubscriptionMode: k.mode, RequestsTimeout: 3 * time.Second}
					if k.sharded {
						return redis.NewShardedAdapter(c, cfg)
					}
					return redis.NewAdapter(c, cfg)
				})
			})
		}
	})
}

// clusterFactories returns the suite's NewCluster: each node gets its own
// clients to the Redis Cluster, and each cluster of the suite its own key.
func clusterFactories(rc *testutil.RedisCluster, newAdapter func(c *redis.Clients, key string, node int) adapter.Factory) adaptertest.NewCluster {
	return func(t *testing.T, cfg adaptertest.ClusterConfig) []adapter.Factory {
		key := fmt.Sprintf("cluster%d", clusterSeq.Add(1))
		var nodes []adapter.Factory
		for i := range cfg.Nodes {
			nodes = append(nodes, newAdapter(dial(t, rc.URL()), key, i))
		}
		return nodes
	}
}

const clusterRooms = 20

// testClusterRooms builds 3 nodes, puts sockets in 20 rooms (each room on
// a subset of the nodes), checks that the rooms' channels are spread over
// the 3 masters, and that a broadcast to each room, from a node that
// varies, reaches exactly the room's members on every node; then
// multi-room broadcasts with except, and FetchSockets per room.
func testClusterRooms(t *testing.T, rc *testutil.RedisCluster, key string, sharded bool, newFactory func(*redis.Clients) adapter.Factory) {
	const nodes = 3
	c := dial(t, rc.URL())
	rooms := make([]string, clusterRooms)
	for r := range rooms {
		rooms[r] = fmt.Sprintf("room-%02d", r)
	}

	// Where each room's channel lives. For the sharded adapter this is the
	// master its SSUBSCRIBE/SPUBLISH go to; the classic adapter's PUBLISH
	// reaches every node anyway.
	master := slotMasters(t, c)
	perMaster := map[string][]string{}
	for _, room := range rooms {
		ch := clusterwire.RoomChannel(key, "/", room)
		slot, err := c.Pub.Do(context.Background(), c.Pub.B().ClusterKeyslot().Key(ch).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		perMaster[master(slot)] = append(perMaster[master(slot)], room)
	}
	var spread []string
	for _, addr := range rc.Addrs {
		spread = append(spread, fmt.Sprintf("%s: %d", addr, len(perMaster[addr])))
	}
	t.Logf("room channels per master (by CLUSTER KEYSLOT): %s", strings.Join(spread, ", "))
	if len(perMaster) != nodes {
		t.Fatalf("the %d room channels hash to %d masters, want all %d: %v", clusterRooms, len(perMaster), nodes, perMaster)
	}

	// Three nodes, each with its own clients.
	setup := time.Now()
	var nsps []*adaptertest.Namespace
	for i := range nodes {
		nsp := adaptertest.NewNamespace("/", i)
		a, err := nsp.Attach(newFactory(dial(t, rc.URL())))
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		t.Cleanup(func() { a.Close() })
		nsps = append(nsps, nsp)
	}
	for i, nsp := range nsps {
		if d, err := waitServerCount(nsp.Adapter(), nodes, 10*time.Second); err != nil {
			t.Fatalf("node %d: %v (after %v)", i, err, d)
		}
	}
	// Room r has a member on node i unless i == r%3 and r is odd, so some
	// rooms span the 3 nodes and others 2; node r%3 sends to room r. Socket
	// ids are 20 characters long, as real ones, so that no mode takes them
	// for public rooms.
	members := map[string][]*adaptertest.Socket{} // room → member sockets
	var all []*adaptertest.Socket
	for r, room := range rooms {
		for i, nsp := range nsps {
			if i == r%nodes && r%2 == 1 {
				continue
			}
			id := fmt.Sprintf("%-20s", fmt.Sprintf("n%d-%s", i, room))
			id = strings.ReplaceAll(id, " ", "_")
			s := nsp.Connect(id, room)
			members[room] = append(members[room], s)
			all = append(all, s)
		}
	}
	t.Logf("%d sockets in %d rooms on %d nodes connected in %v", len(all), len(rooms), nodes, time.Since(setup).Round(time.Millisecond))
	if sharded {
		var chans []string
		for i := range rc.Addrs {
			out, err := rc.CLI(i, "PUBSUB", "SHARDCHANNELS", key+"*")
			if err != nil {
				t.Fatalf("PUBSUB SHARDCHANNELS on %s: %v %s", rc.Addrs[i], err, out)
			}
			chans = append(chans, fmt.Sprintf("%s: %d", rc.Addrs[i], len(strings.Fields(out))))
		}
		t.Logf("sharded channels subscribed per master (PUBSUB SHARDCHANNELS): %s", strings.Join(chans, ", "))
	}

	// One broadcast per room, all at once, then wait for every member.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sentAt := make(map[string]time.Time, len(rooms))
	begin := time.Now()
	for r, room := range rooms {
		sender := nsps[r%nodes].Adapter()
		pkt, err := parser.NewEvent("/", "to-"+room, r)
		if err != nil {
			t.Fatal(err)
		}
		sentAt[room] = time.Now()
		if err := sender.Broadcast(ctx, pkt, adapter.BroadcastOptions{Rooms: []string{room}}); err != nil {
			t.Fatalf("broadcast to %s from node %d: %v", room, r%nodes, err)
		}
	}
	var slowest time.Duration
	var slowestRoom string
	for _, room := range rooms {
		event := "to-" + room
		ok := pollUntil(5*time.Second, func() bool {
			for _, s := range members[room] {
				if !slices.Contains(s.Events(), event) {
					return false
				}
			}
			return true
		})
		if !ok {
			var missing []string
			for _, s := range members[room] {
				if !slices.Contains(s.Events(), event) {
					missing = append(missing, s.ID())
				}
			}
			t.Errorf("broadcast to %s (channel on %s) never reached %v", room, masterOf(perMaster, room), missing)
			continue
		}
		if d := time.Since(sentAt[room]); d > slowest {
			slowest, slowestRoom = d, room
		}
	}
	t.Logf("%d room broadcasts reached all their members in %v (slowest room %s, %v after its send)",
		len(rooms), time.Since(begin).Round(time.Millisecond), slowestRoom, slowest.Round(time.Millisecond))

	// Multi-room broadcasts with except, from each node i: to rooms i and
	// i+7 (main channel, not a room channel), except one member of room i.
	for i := range nodes {
		r1, r2 := rooms[i], rooms[i+7]
		excluded := members[r1][0]
		pkt, err := parser.NewEvent("/", fmt.Sprintf("multi-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		opts := adapter.BroadcastOptions{Rooms: []string{r1, r2}, Except: []string{excluded.ID()}}
		if err := nsps[i].Adapter().Broadcast(ctx, pkt, opts); err != nil {
			t.Fatalf("multi-room broadcast from node %d: %v", i, err)
		}
		want := slices.DeleteFunc(append(slices.Clone(members[r1]), members[r2]...), func(s *adaptertest.Socket) bool { return s == excluded })
		event := fmt.Sprintf("multi-%d", i)
		if !pollUntil(5*time.Second, func() bool {
			for _, s := range want {
				if !slices.Contains(s.Events(), event) {
					return false
				}
			}
			return true
		}) {
			t.Errorf("multi-room broadcast %s from node %d did not reach every member of %s and %s", event, i, r1, r2)
		}
	}

	// A last broadcast to everyone from each node, so that anything still
	// in flight has arrived, then: no socket got a broadcast twice or one
	// for a room it is not in.
	for i, nsp := range nsps {
		pkt, _ := parser.NewEvent("/", fmt.Sprintf("end-%d", i))
		if err := nsp.Adapter().Broadcast(ctx, pkt, adapter.BroadcastOptions{}); err != nil {
			t.Fatalf("broadcast to all from node %d: %v", i, err)
		}
	}
	if !pollUntil(5*time.Second, func() bool {
		for _, s := range all {
			for i := range nodes {
				if !slices.Contains(s.Events(), fmt.Sprintf("end-%d", i)) {
					return false
				}
			}
		}
		return true
	}) {
		t.Errorf("a broadcast to everyone did not reach every socket")
	}
	time.Sleep(50 * time.Millisecond)
	for room, ss := range members {
		for _, s := range ss {
			events := s.Events()
			counts := map[string]int{}
			for _, e := range events {
				counts[e]++
			}
			for e, n := range counts {
				if n != 1 {
					t.Errorf("socket %s got %q %d times", s.ID(), e, n)
				}
				if strings.HasPrefix(e, "to-") && e != "to-"+room {
					t.Errorf("socket %s (in %s) got %q", s.ID(), room, e)
				}
			}
		}
	}

	// FetchSockets per room from a node that varies: requests and
	// responses cross the masters too.
	begin = time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for r, room := range rooms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from := (r + 1) % nodes
			infos, err := nsps[from].Adapter().FetchSockets(ctx, adapter.BroadcastOptions{Rooms: []string{room}})
			var got, want []string
			for _, info := range infos {
				got = append(got, info.ID)
			}
			for _, s := range members[room] {
				want = append(want, s.ID())
			}
			slices.Sort(got)
			slices.Sort(want)
			if err != nil || !slices.Equal(got, want) {
				mu.Lock()
				t.Errorf("FetchSockets(%s) from node %d = %v, %v; want %v", room, from, got, err, want)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d concurrent FetchSockets (one per room) answered in %v", len(rooms), time.Since(begin).Round(time.Millisecond))
}

// slotMasters returns a function that maps a slot to the address of the
// master serving it, from CLUSTER SLOTS.
func slotMasters(t *testing.T, c *redis.Clients) func(slot int64) string {
	t.Helper()
	res, err := c.Pub.Do(context.Background(), c.Pub.B().ClusterSlots().Build()).ToArray()
	if err != nil {
		t.Fatalf("CLUSTER SLOTS: %v", err)
	}
	type rng struct {
		from, to int64
		addr     string
	}
	var ranges []rng
	for _, e := range res {
		f, err := e.ToArray()
		if err != nil || len(f) < 3 {
			t.Fatalf("CLUSTER SLOTS entry %v: %v", e, err)
		}
		from, _ := f[0].AsInt64()
		to, _ := f[1].AsInt64()
		node, _ := f[2].ToArray()
		if len(node) < 2 {
			t.Fatalf("CLUSTER SLOTS node %v", f[2])
		}
		ip, _ := node[0].ToString()
		port, _ := node[1].AsInt64()
		ranges = append(ranges, rng{from, to, fmt.Sprintf("%s:%d", ip, port)})
	}
	return func(slot int64) string {
		for _, r := range ranges {
			if slot >= r.from && slot <= r.to {
				return r.addr
			}
		}
		t.Fatalf("slot %d is served by no master", slot)
		return ""
	}
}

func masterOf(perMaster map[string][]string, room string) string {
	for addr, rooms := range perMaster {
		if slices.Contains(rooms, room) {
			return addr
		}
	}
	return "?"
}

// sameMasterRooms returns four room names and a 20-character socket id
// whose sharded channels live on the master of the namespace's main
// channel.
func sameMasterRooms(t *testing.T, c *redis.Clients, key string) (rooms []string, target string) {
	t.Helper()
	master := slotMasters(t, c)
	masterOfChannel := func(ch string) string {
		slot, err := c.Pub.Do(context.Background(), c.Pub.B().ClusterKeyslot().Key(ch).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		return master(slot)
	}
	main := masterOfChannel(clusterwire.BroadcastChannel(key, "/"))
	for i := 0; i < 1000 && (len(rooms) < 4 || target == ""); i++ {
		if room := fmt.Sprintf("order-%d", i); len(rooms) < 4 && masterOfChannel(clusterwire.RoomChannel(key, "/", room)) == main {
			rooms = append(rooms, room)
		}
		if id := fmt.Sprintf("ordertargetsocket%03d", i); target == "" && masterOfChannel(clusterwire.RoomChannel(key, "/", id)) == main {
			target = id
		}
	}
	if len(rooms) < 4 || target == "" {
		t.Fatalf("no rooms found on master %s", main)
	}
	return rooms, target
}
