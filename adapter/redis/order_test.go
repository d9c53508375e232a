package redis_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/adapter/adaptertest"
	"github.com/herald-rt/herald/adapter/redis"
	"github.com/herald-rt/herald/internal/testutil"
	"github.com/herald-rt/herald/parser"
)

// orderMessages is how many numbered messages the sender publishes per
// case: enough that a receiver which reads its subscriptions on separate
// goroutines almost surely swaps some (it did, every run, before the
// adapters read each connection through one ordered reader).
const orderMessages = 1500

// TestOrder checks that one sender's messages reach another node in the
// order they were sent, whatever channel or pattern each one travels on:
//
//   - classic: broadcasts to a room (PSUBSCRIBE), broadcasts with acks
//     (request channel, SUBSCRIBE) and remote joins followed by a broadcast
//     to the joined room (the broadcast is lost if it overtakes the join);
//   - sharded dynamic and dynamic-private: broadcasts alternating between
//     four rooms, the socket's own room and the whole namespace (one
//     SSUBSCRIBE channel each).
//
// It reports the number of messages that arrived out of order, or never.
func TestOrder(t *testing.T) {
	r := testutil.StartRedis(t)
	for _, c := range orderCases {
		t.Run(c.name, func(t *testing.T) {
			testOrder(t, r.URL(), c, fmt.Sprintf("order%d", clusterSeq.Add(1)), orderRooms, "ordertargetsocket001")
		})
	}
}

// orderCase is one adapter setting TestOrder runs.
type orderCase struct {
	name    string
	factory func(*redis.Clients, redis.Config) adapter.Factory
	mode    string
	send    func(ctx context.Context, a adapter.Adapter, seq int, rooms []string, target string) error
}

var orderCases = []orderCase{
	{"Classic", redis.NewAdapter, "", sendClassic},
	{"ShardedDynamic", redis.NewShardedAdapter, "dynamic", sendSharded},
	{"ShardedDynamicPrivate", redis.NewShardedAdapter, "dynamic-private", sendSharded},
}

// testOrder runs one case on the Redis at url: node A sends, node B's
// socket target (in rooms) records.
func testOrder(t *testing.T, url string, c orderCase, key string, rooms []string, target string) {
	cfg := redis.Config{Key: key, SubscriptionMode: c.mode, RequestsTimeout: 3 * time.Second}
	nsA, nsB := adaptertest.NewNamespace("/", 0), adaptertest.NewNamespace("/", 1)
	aA, err := nsA.Attach(c.factory(dial(t, url), cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { aA.Close() })
	aB, err := nsB.Attach(c.factory(dial(t, url), cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { aB.Close() })
	// target has 20 characters: a socket's own room in dynamic-private.
	s := nsB.Connect(target, rooms...)
	if d, err := waitServerCount(aA, 2, 10*time.Second); err != nil {
		t.Fatalf("%v (after %v)", err, d)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for seq := 1; seq <= orderMessages; seq++ {
		if err := c.send(ctx, aA, seq, rooms, target); err != nil {
			t.Fatalf("message #%d: %v", seq, err)
		}
	}
	// Once the last message is in, everything before it is in or lost.
	pollUntil(20*time.Second, func() bool {
		got := socketSeqs(s)
		return len(got) > 0 && slices.Max(got) == orderMessages
	})
	got := socketSeqs(s)
	swapped, lost := orderViolations(got, orderMessages)
	t.Logf("%s: %d messages sent, %d received, %d out of order, %d lost", c.name, orderMessages, len(got), swapped, lost)
	if swapped > 0 || lost > 0 {
		t.Errorf("one sender's messages must arrive in order and all of them: %d out of order, %d lost (first received: %v)", swapped, lost, got[:min(len(got), 20)])
	}
}

var orderRooms = []string{"order-a", "order-b", "order-c", "order-d"}

// sendClassic cycles through a broadcast to a room, a broadcast with acks
// (a request) and a join of the target into a new room followed by a
// broadcast to that room; every third message is the one after a join.
func sendClassic(ctx context.Context, a adapter.Adapter, seq int, rooms []string, target string) error {
	pkt, err := parser.NewEvent("/", restartEvent, seq)
	if err != nil {
		return err
	}
	switch seq % 3 {
	case 1:
		return a.Broadcast(ctx, pkt, adapter.BroadcastOptions{Rooms: []string{rooms[seq%len(rooms)]}})
	case 2:
		opts := adapter.BroadcastOptions{Rooms: []string{rooms[seq%len(rooms)]}}
		opts.Flags.Timeout = 100 * time.Millisecond
		return a.BroadcastWithAck(ctx, pkt, opts, func(int) {}, func(adapter.Ack) {})
	default:
		room := fmt.Sprintf("order-joined-%d", seq)
		if err := a.AddSockets(ctx, adapter.BroadcastOptions{Rooms: []string{target}}, []string{room}); err != nil {
			return err
		}
		return a.Broadcast(ctx, pkt, adapter.BroadcastOptions{Rooms: []string{room}})
	}
}

// sendSharded cycles through broadcasts to the rooms, to the target's own
// room and to the whole namespace: one channel each in the dynamic modes.
func sendSharded(ctx context.Context, a adapter.Adapter, seq int, rooms []string, target string) error {
	pkt, err := parser.NewEvent("/", restartEvent, seq)
	if err != nil {
		return err
	}
	var opts adapter.BroadcastOptions
	switch i := seq % (len(rooms) + 2); {
	case i < len(rooms):
		opts.Rooms = []string{rooms[i]}
	case i == len(rooms):
		opts.Rooms = []string{target}
	}
	if seq == orderMessages {
		opts.Rooms = []string{rooms[0]}
	}
	return a.Broadcast(ctx, pkt, opts)
}

// orderViolations counts the received messages that came after a higher
// number (out of order) and the numbers 1..sent never received.
func orderViolations(got []int, sent int) (swapped, lost int) {
	seen := make(map[int]bool, len(got))
	highest := 0
	for _, n := range got {
		if n < highest {
			swapped++
		}
		highest = max(highest, n)
		seen[n] = true
	}
	for n := 1; n <= sent; n++ {
		if !seen[n] {
			lost++
		}
	}
	return swapped, lost
}

// TestOrderAcrossNamespaces: one sender's broadcasts alternating between
// two namespaces reach another node in the order they were sent, as with
// the Node.js adapters, whose namespaces share one subscriber connection
// and one event loop.
func TestOrderAcrossNamespaces(t *testing.T) {
	r := testutil.StartRedis(t)
	for _, c := range orderCases[:2] { // classic, sharded dynamic
		t.Run(c.name, func(t *testing.T) {
			cfg := redis.Config{Key: fmt.Sprintf("order%d", clusterSeq.Add(1)), SubscriptionMode: c.mode, RequestsTimeout: 3 * time.Second}
			serverA, serverB := c.factory(dial(t, r.URL()), cfg), c.factory(dial(t, r.URL()), cfg)
			names := []string{"/", "/other"}
			var senders []adapter.Adapter
			var mu sync.Mutex
			var got []int
			for _, name := range names {
				nsA, nsB := adaptertest.NewNamespace(name, 0), adaptertest.NewNamespace(name, 1)
				aA, err := nsA.Attach(serverA)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { aA.Close() })
				aB, err := nsB.Attach(serverB)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { aB.Close() })
				nsB.OnDeliver(func(d adaptertest.Delivery) {
					if n, ok := seqOf(d.Packet); ok {
						mu.Lock()
						got = append(got, n)
						mu.Unlock()
					}
				})
				nsB.Connect("s"+name, "room")
				if d, err := waitServerCount(aA, 2, 10*time.Second); err != nil {
					t.Fatalf("%s: %v (after %v)", name, err, d)
				}
				senders = append(senders, aA)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for seq := 1; seq <= orderMessages; seq++ {
				a := senders[seq%2]
				pkt, err := parser.NewEvent(names[seq%2], restartEvent, seq)
				if err != nil {
					t.Fatal(err)
				}
				if err := a.Broadcast(ctx, pkt, adapter.BroadcastOptions{Rooms: []string{"room"}}); err != nil {
					t.Fatalf("message #%d: %v", seq, err)
				}
			}
			received := func() []int {
				mu.Lock()
				defer mu.Unlock()
				return slices.Clone(got)
			}
			pollUntil(20*time.Second, func() bool { return len(received()) == orderMessages })
			seqs := received()
			swapped, lost := orderViolations(seqs, orderMessages)
			t.Logf("%s: %d messages sent over 2 namespaces, %d received, %d out of order, %d lost", c.name, orderMessages, len(seqs), swapped, lost)
			if swapped > 0 || lost > 0 {
				t.Errorf("one sender's messages to two namespaces must arrive in order: %d out of order, %d lost", swapped, lost)
			}
		})
	}
}
