package emitter_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/adapter/adaptertest"
	"github.com/herald-rt/herald/adapter/redis"
	"github.com/herald-rt/herald/emitter"
	"github.com/herald-rt/herald/internal/testutil"
)

var keySeq atomic.Int64

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

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// count returns how many times s received event.
func count(s *adaptertest.Socket, event string) int {
	n := 0
	for _, e := range s.Events() {
		if e == event {
			n++
		}
	}
	return n
}

func last(s *adaptertest.Socket, event string) adaptertest.Received {
	var r adaptertest.Received
	for _, x := range s.Received() {
		if name, _ := x.Packet.EventName(); name == event {
			r = x
		}
	}
	return r
}

// testCluster is two Herald nodes (fake namespaces on real Redis
// adapters) and an emitter:
//
//	node A, "/":      a1 in r1
//	node B, "/":      b1 in r1 and r2; b2 (a socket-id-like name) in r2
//	node B, "/admin": c1
type testCluster struct {
	a, b, admin *adaptertest.Namespace
	a1, b1, b2  *adaptertest.Socket
	c1          *adaptertest.Socket
	all         []*adaptertest.Socket
	em          *emitter.Emitter
	key         string
	barriers    int
}

const b2ID = "b2-socket-id-0000000" // 20 characters, like a Socket.IO id

func newCluster(t *testing.T, url string, sharded bool, mode string) *testCluster {
	key := fmt.Sprintf("emtest%d", keySeq.Add(1))
	cfg := redis.Config{Key: key, SubscriptionMode: mode, RequestsTimeout: 3 * time.Second}
	factory := func() adapter.Factory {
		if sharded {
			return redis.NewShardedAdapter(dial(t, url), cfg)
		}
		return redis.NewAdapter(dial(t, url), cfg)
	}
	attach := func(name string, node int, f adapter.Factory) *adaptertest.Namespace {
		nsp := adaptertest.NewNamespace(name, node)
		a, err := nsp.Attach(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		return nsp
	}
	c := &testCluster{key: key}
	fb := factory()
	c.a = attach("/", 0, factory())
	c.b = attach("/", 1, fb)
	c.admin = attach("/admin", 1, fb)
	c.a1 = c.a.Connect("a1", "r1")
	c.b1 = c.b.Connect("b1", "r1", "r2")
	c.b2 = c.b.Connect(b2ID, "r2")
	c.c1 = c.admin.Connect("c1")
	c.all = []*adaptertest.Socket{c.a1, c.b1, c.b2}

	client := dial(t, url).Pub
	c.em = emitter.New(client, emitter.Config{Key: key, Sharded: sharded, SubscriptionMode: mode})
	return c
}

// barrier emits an event to every socket of "/" and waits until all
// received it: anything published before it has arrived too.
func (c *testCluster) barrier(t *testing.T) {
	t.Helper()
	c.barriers++
	name := fmt.Sprintf("barrier-%d", c.barriers)
	if err := c.em.Emit(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	for _, s := range c.all {
		waitFor(t, s.ID()+" to get "+name, func() bool { return count(s, name) == 1 })
	}
}

// expect waits until exactly the sockets want received event (once or,
// with retries, more), then checks after a barrier that the others did
// not.
func (c *testCluster) expect(t *testing.T, event string, want ...*adaptertest.Socket) {
	t.Helper()
	for _, s := range want {
		waitFor(t, s.ID()+" to get "+event, func() bool { return count(s, event) > 0 })
	}
	c.barrier(t)
	for _, s := range c.all {
		if !slices.Contains(want, s) && count(s, event) != 0 {
			t.Errorf("%s got %s", s.ID(), event)
		}
	}
}

func TestWithHeraldAdapters(t *testing.T) {
	r := testutil.StartRedis(t)
	modes := []struct {
		name    string
		sharded bool
		mode    string
	}{
		{"classic", false, ""},
		{"sharded-dynamic", true, "dynamic"},
		{"sharded-static", true, "static"},
		{"sharded-dynamic-private", true, "dynamic-private"},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			c := newCluster(t, r.URL(), m.sharded, m.mode)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			em := c.em

			n, err := em.ServerCount(ctx)
			if err != nil || n != 2 {
				t.Errorf("ServerCount = %d, %v; want 2", n, err)
			}
			if n, err := em.Of("/admin").ServerCount(ctx); err != nil || n != 1 {
				t.Errorf("ServerCount(/admin) = %d, %v; want 1", n, err)
			}

			// Broadcasts.
			if err := em.Emit(ctx, "all", 1, "two", map[string]any{"three": 3}); err != nil {
				t.Fatal(err)
			}
			c.expect(t, "all", c.all...)
			if got := string(last(c.b2, "all").Packet.Data); got != `["all",1,"two",{"three":3}]` {
				t.Errorf("payload %s", got)
			}
			if err := em.To("r1").Emit(ctx, "r1"); err != nil {
				t.Fatal(err)
			}
			c.expect(t, "r1", c.a1, c.b1)
			if err := em.To("r1").Except("r2").Emit(ctx, "r1-not-r2"); err != nil {
				t.Fatal(err)
			}
			c.expect(t, "r1-not-r2", c.a1)
			if err := em.To("r1", "r2").Except(b2ID).Emit(ctx, "multi"); err != nil {
				t.Fatal(err)
			}
			c.expect(t, "multi", c.a1, c.b1)
			if err := em.To(b2ID).Emit(ctx, "private"); err != nil {
				t.Fatal(err)
			}
			c.expect(t, "private", c.b2)
			if err := em.Except("r1").Volatile().Compress(false).Emit(ctx, "flags"); err != nil {
				t.Fatal(err)
			}
			c.expect(t, "flags", c.b2)
			if f := last(c.b2, "flags").Flags; !f.Volatile || f.Compress == nil || *f.Compress {
				t.Errorf("flags %+v", f)
			}
			if err := em.Emit(ctx, "bin", []byte{1, 2, 3}, map[string]any{"b": []byte{4}}); err != nil {
				t.Fatal(err)
			}
			c.expect(t, "bin", c.all...)
			p := last(c.a1, "bin").Packet
			if string(p.Data) != `["bin",{"_placeholder":true,"num":0},{"b":{"_placeholder":true,"num":1}}]` ||
				len(p.Attachments) != 2 || !bytes.Equal(p.Attachments[0], []byte{1, 2, 3}) || !bytes.Equal(p.Attachments[1], []byte{4}) {
				t.Errorf("binary payload %s %x", p.Data, p.Attachments)
			}

			// Namespaces: /admin exists on node B only.
			if err := em.Of("admin").Emit(ctx, "adm", 1); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "c1 to get adm", func() bool { return count(c.c1, "adm") == 1 })
			c.barrier(t)
			for _, s := range c.all {
				if count(s, "adm") != 0 {
					t.Errorf("%s of / got an event for /admin", s.ID())
				}
			}

			// Server-side emits.
			if err := em.ServerSideEmit(ctx, "sse", 1, "two"); err != nil {
				t.Fatal(err)
			}
			for _, nsp := range []*adaptertest.Namespace{c.a, c.b} {
				waitFor(t, "the server-side emit", func() bool { return len(nsp.ServerSideEmits()) == 1 })
				e := nsp.ServerSideEmits()[0]
				if string(e.Data) != `["sse",1,"two"]` || e.WithReply {
					t.Errorf("node %d got server-side emit %s (reply %v)", nsp.Node(), e.Data, e.WithReply)
				}
			}
			if n := len(c.admin.ServerSideEmits()); n != 0 {
				t.Errorf("/admin got %d server-side emits", n)
			}
			if err := em.ServerSideEmit(ctx, "sse-bin", []byte{7}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the binary server-side emit", func() bool { return len(c.b.ServerSideEmits()) == 2 })
			if e := c.b.ServerSideEmits()[1]; string(e.Data) != `["sse-bin",{"_placeholder":true,"num":0}]` || len(e.Attachments) != 1 || e.Attachments[0][0] != 7 {
				t.Errorf("binary server-side emit %s %x", e.Data, e.Attachments)
			}

			// Joins and leaves.
			rooms := func(nsp *adaptertest.Namespace, id string) []string { return nsp.Adapter().SocketRooms(id) }
			if err := em.In("r1").Except(b2ID).SocketsJoin(ctx, "r3", "r4"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "a1 and b1 to join r3 and r4", func() bool {
				return slices.Contains(rooms(c.a, "a1"), "r4") && slices.Contains(rooms(c.b, "b1"), "r4")
			})
			if slices.Contains(rooms(c.b, b2ID), "r3") {
				t.Error("b2 joined r3")
			}
			// A dynamic node subscribes to r3's channel while joining:
			// emit until the subscription is live.
			waitFor(t, "a1 and b1 to get in-r3", func() bool {
				em.To("r3").Emit(ctx, "in-r3")
				time.Sleep(20 * time.Millisecond)
				return count(c.a1, "in-r3") > 0 && count(c.b1, "in-r3") > 0
			})
			c.expect(t, "in-r3", c.a1, c.b1)
			if err := em.In("r3").SocketsLeave(ctx, "r3"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "a1 and b1 to leave r3", func() bool {
				return !slices.Contains(rooms(c.a, "a1"), "r3") && !slices.Contains(rooms(c.b, "b1"), "r3")
			})
			if !slices.Contains(rooms(c.a, "a1"), "r4") {
				t.Error("a1 left r4 too")
			}
			if err := em.To("r3").Emit(ctx, "left-r3"); err != nil {
				t.Fatal(err)
			}
			c.expect(t, "left-r3")

			// Disconnections.
			if err := em.In("r2").Except("r1").DisconnectSockets(ctx, true); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "b2 to be disconnected", func() bool { d, _ := c.b2.Disconnected(); return d })
			if _, closed := c.b2.Disconnected(); !closed {
				t.Error("b2 disconnected without close")
			}
			if err := em.In("r1").DisconnectSockets(ctx, false); err != nil {
				t.Fatal(err)
			}
			for _, s := range []*adaptertest.Socket{c.a1, c.b1} {
				waitFor(t, s.ID()+" to be disconnected", func() bool { d, _ := s.Disconnected(); return d })
				if _, closed := s.Disconnected(); closed {
					t.Errorf("%s closed", s.ID())
				}
			}
			if d, _ := c.c1.Disconnected(); d {
				t.Error("c1 of /admin was disconnected")
			}
		})
	}
}

// TestProtocolMismatch shows why Config.Sharded must match the nodes: a
// classic emitter does not reach sharded nodes (the limitation of
// @socket.io/redis-emitter), a sharded one does.
func TestProtocolMismatch(t *testing.T) {
	r := testutil.StartRedis(t)
	c := newCluster(t, r.URL(), true, "")
	ctx := context.Background()
	classic := emitter.New(dial(t, r.URL()).Pub, emitter.Config{Key: c.key})
	if n, err := classic.ServerCount(ctx); err != nil || n != 0 {
		t.Errorf("classic ServerCount against sharded nodes = %d, %v; want 0", n, err)
	}
	if err := classic.Emit(ctx, "lost"); err != nil {
		t.Fatal(err)
	}
	c.barrier(t)
	if count(c.a1, "lost") != 0 {
		t.Error("a sharded node got a classic broadcast")
	}
	// A "static" emitter reaches nodes in any mode: it always uses the
	// main channel, to which every node subscribes.
	static := emitter.New(dial(t, r.URL()).Pub, emitter.Config{Key: c.key, Sharded: true, SubscriptionMode: "static"})
	if err := static.To("r1").Emit(ctx, "static"); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "static", c.a1, c.b1)
}
