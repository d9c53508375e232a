package adaptertest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/parser"
)

// nodeCases run on a cluster of one node.
var nodeCases = []testCase{
	{name: "Rooms", run: testRooms},
	{name: "BroadcastAll", run: testBroadcastAll},
	{name: "BroadcastRoom", run: testBroadcastRoom},
	{name: "BroadcastRooms", run: testBroadcastRooms},
	{name: "BroadcastExcept", run: testBroadcastExcept},
	{name: "BroadcastNoTarget", run: testBroadcastNoTarget},
	{name: "BroadcastLocal", run: testBroadcastLocal},
	{name: "BroadcastFlags", run: testBroadcastFlags},
	{name: "BroadcastBinary", run: testBroadcastBinary},
	{name: "BroadcastKeepsPacket", run: testBroadcastKeepsPacket},
	{name: "BroadcastWithAck", run: testBroadcastWithAck},
	{name: "BroadcastWithAckNoTarget", run: testBroadcastWithAckNoTarget},
	{name: "FetchSockets", run: testFetchSockets},
	{name: "AddSockets", run: testAddSockets},
	{name: "DelSockets", run: testDelSockets},
	{name: "DisconnectSockets", run: testDisconnectSockets},
	{name: "ServerCount", run: testServerCount},
	{name: "ServerSideEmitNoPeers", run: testServerSideEmitNoPeers},
	{name: "Namespaces", run: testNamespaces},
	{name: "Concurrent", run: testConcurrent},
	{name: "ReentrantDeliver", run: testReentrantDeliver},
	{name: "Close", run: testClose},
}

func testRooms(t *testing.T, h *harness) {
	a := h.cluster(t, 1)[0].Adapter()
	a.AddAll("s1", "s1", "r1", "r2")
	a.AddAll("s2", "s2", "r2")
	a.AddAll("s2", "r2", "r3") // r2 again: no change
	checkRooms(t, a, "s1", "s1", "r1", "r2")
	checkRooms(t, a, "s2", "s2", "r2", "r3")
	if got := a.SocketRooms("ghost"); got != nil {
		t.Errorf("SocketRooms of an unknown socket = %v, want nil", got)
	}
	checkSockets := func(rooms []string, want ...string) {
		t.Helper()
		if got := a.Sockets(rooms...); !sameSet(got, want) {
			t.Errorf("Sockets(%v) = %v, want %v", rooms, sorted(got), sorted(want))
		}
	}
	checkAllRooms := func(want ...string) {
		t.Helper()
		if got := a.Rooms(); !sameSet(got, want) {
			t.Errorf("Rooms() = %v, want %v", sorted(got), sorted(want))
		}
	}
	checkSockets(nil, "s1", "s2")
	checkSockets([]string{"r2"}, "s1", "s2")
	checkSockets([]string{"r1", "r2"}, "s1", "s2") // no duplicates
	checkSockets([]string{"r1", "r3"}, "s1", "s2")
	checkSockets([]string{"s2"}, "s2")
	checkSockets([]string{"nope"})
	checkAllRooms("s1", "s2", "r1", "r2", "r3")

	a.Del("s1", "r1")
	checkRooms(t, a, "s1", "s1", "r2")
	checkAllRooms("s1", "s2", "r2", "r3") // r1 is empty: gone
	checkSockets([]string{"r1"})
	a.Del("s1", "nope")
	a.Del("ghost", "r2")
	checkSockets([]string{"r2"}, "s1", "s2")

	a.DelAll("s2")
	if got := a.SocketRooms("s2"); got != nil {
		t.Errorf("SocketRooms after DelAll = %v, want nil", got)
	}
	checkAllRooms("s1", "r2")
	checkSockets(nil, "s1")
	checkSockets([]string{"r3"})
	a.DelAll("ghost")

	a.AddAll("s3") // registers a socket without rooms
	if got := a.SocketRooms("s3"); got == nil || len(got) != 0 {
		t.Errorf("SocketRooms of a socket added to no room = %#v, want an empty non-nil slice", got)
	}
	checkSockets(nil, "s1", "s3")
	checkAllRooms("s1", "r2")
}

// fixture: sockets s1 in r1; s2 in r1, r2; s3 in r2; s4 in none.
func fixture(t *testing.T, h *harness) (*Namespace, adapter.Adapter, []*Socket) {
	nsp := h.cluster(t, 1)[0]
	socks := []*Socket{
		nsp.Connect("s1", "r1"),
		nsp.Connect("s2", "r1", "r2"),
		nsp.Connect("s3", "r2"),
		nsp.Connect("s4"),
	}
	return nsp, nsp.Adapter(), socks
}

// broadcast broadcasts an event named name through a and checks that it
// reaches exactly want among all, once each, with its payload.
func (h *harness) broadcast(t *testing.T, a adapter.Adapter, name string, opts adapter.BroadcastOptions, all []*Socket, want ...*Socket) []Received {
	t.Helper()
	pkt := event(t, "/", name, name, 1, map[string]any{"k": []int{1, 2}})
	if err := a.Broadcast(h.ctx(t), pkt, opts); err != nil {
		t.Fatalf("Broadcast(%s, %+v): %v", name, opts, err)
	}
	var others []*Socket
	for _, s := range all {
		if !slices.Contains(want, s) {
			others = append(others, s)
		}
	}
	return h.waitReceived(t, pkt, h.expectOffset(pkt, opts.Flags, false), want, others...)
}

// checkDeliveries checks that no Deliver call for the event name listed a
// socket twice.
func checkDeliveries(t *testing.T, nsp *Namespace, name string) {
	t.Helper()
	for _, d := range nsp.Deliveries() {
		if n, _ := d.Packet.EventName(); n != name {
			continue
		}
		seen := map[string]bool{}
		for _, id := range d.IDs {
			if seen[id] {
				t.Errorf("node %d: Deliver(%q) got socket %s twice: %v", nsp.Node(), name, id, d.IDs)
			}
			seen[id] = true
		}
	}
}

func testBroadcastAll(t *testing.T, h *harness) {
	nsp, a, s := fixture(t, h)
	h.broadcast(t, a, "all", adapter.BroadcastOptions{}, s, s...)
	checkDeliveries(t, nsp, "all")
}

func testBroadcastRoom(t *testing.T, h *harness) {
	_, a, s := fixture(t, h)
	h.broadcast(t, a, "r1", adapter.BroadcastOptions{Rooms: []string{"r1"}}, s, s[0], s[1])
	h.broadcast(t, a, "r2", adapter.BroadcastOptions{Rooms: []string{"r2"}}, s, s[1], s[2])
	h.broadcast(t, a, "to-id", adapter.BroadcastOptions{Rooms: []string{"s4"}}, s, s[3])
}

func testBroadcastRooms(t *testing.T, h *harness) {
	nsp, a, s := fixture(t, h)
	h.broadcast(t, a, "r1+r2", adapter.BroadcastOptions{Rooms: []string{"r1", "r2"}}, s, s[0], s[1], s[2])
	checkDeliveries(t, nsp, "r1+r2")
	h.broadcast(t, a, "r2+s1+s2", adapter.BroadcastOptions{Rooms: []string{"r2", "s1", "s2"}}, s, s[0], s[1], s[2])
	checkDeliveries(t, nsp, "r2+s1+s2")
	h.broadcast(t, a, "r1+nope", adapter.BroadcastOptions{Rooms: []string{"nope", "r1"}}, s, s[0], s[1])
}

func testBroadcastExcept(t *testing.T, h *harness) {
	_, a, s := fixture(t, h)
	h.broadcast(t, a, "except-r1", adapter.BroadcastOptions{Except: []string{"r1"}}, s, s[2], s[3])
	h.broadcast(t, a, "r2-except-s3", adapter.BroadcastOptions{Rooms: []string{"r2"}, Except: []string{"s3"}}, s, s[1])
	h.broadcast(t, a, "r1r2-except-r2", adapter.BroadcastOptions{Rooms: []string{"r1", "r2"}, Except: []string{"r2"}}, s, s[0])
	h.broadcast(t, a, "except-s1-s4", adapter.BroadcastOptions{Except: []string{"s1", "s4"}}, s, s[1], s[2])
	h.broadcast(t, a, "except-nope", adapter.BroadcastOptions{Except: []string{"nope"}}, s, s...)
}

func testBroadcastNoTarget(t *testing.T, h *harness) {
	nsp, a, s := fixture(t, h)
	ctx := h.ctx(t)
	for _, opts := range []adapter.BroadcastOptions{
		{Rooms: []string{"nope"}},
		{Except: []string{"r1", "r2", "s4"}},
		{Rooms: []string{"r1"}, Except: []string{"r1"}},
	} {
		if err := a.Broadcast(ctx, event(t, "/", "none"), opts); err != nil {
			t.Fatalf("Broadcast(%+v): %v", opts, err)
		}
	}
	// A broadcast to every socket after them: once it has arrived, the
	// others would have too.
	h.broadcast(t, a, "marker", adapter.BroadcastOptions{}, s, s...)
	for _, sock := range s {
		if n := len(received(sock, "none")); n != 0 {
			t.Errorf("socket %s got %d broadcasts that targeted no socket", sock.ID(), n)
		}
	}
	for _, d := range nsp.Deliveries() {
		if n, _ := d.Packet.EventName(); n == "none" && len(d.Recipients) > 0 {
			t.Errorf("Deliver(none) for %v", d.IDs)
		}
	}
}

func testBroadcastLocal(t *testing.T, h *harness) {
	_, a, s := fixture(t, h)
	h.broadcast(t, a, "local", adapter.BroadcastOptions{Flags: adapter.Flags{Local: true}}, s, s...)
	// socket.emit with recovery on goes this way.
	h.broadcast(t, a, "local-to-s2", adapter.BroadcastOptions{Rooms: []string{"s2"}, Flags: adapter.Flags{Local: true}}, s, s[1])
}

func testBroadcastFlags(t *testing.T, h *harness) {
	_, a, s := fixture(t, h)
	no, yes := false, true
	for _, c := range []struct {
		name  string
		flags adapter.Flags
	}{
		{"none", adapter.Flags{}},
		{"volatile", adapter.Flags{Volatile: true}},
		{"volatile-nocompress", adapter.Flags{Volatile: true, Compress: &no}},
		{"compress", adapter.Flags{Compress: &yes}},
	} {
		rs := h.broadcast(t, a, c.name, adapter.BroadcastOptions{Rooms: []string{"r1"}, Flags: c.flags}, s, s[0], s[1])
		for _, r := range rs {
			checkFlags(t, c.name, r.Flags, c.flags, true)
			if r.WithAck {
				t.Errorf("%s: delivered with an ack callback", c.name)
			}
		}
	}
}

// checkFlags checks that Deliver got the flags that change how a packet is
// written. exact also compares an unset Compress.
func checkFlags(t *testing.T, what string, got, want adapter.Flags, exact bool) {
	t.Helper()
	if got.Volatile != want.Volatile {
		t.Errorf("%s: Deliver got Volatile %v, want %v", what, got.Volatile, want.Volatile)
	}
	switch {
	case want.Compress != nil && (got.Compress == nil || *got.Compress != *want.Compress):
		t.Errorf("%s: Deliver got Compress %s, want %v", what, fmtBoolPtr(got.Compress), *want.Compress)
	case want.Compress == nil && exact && got.Compress != nil:
		t.Errorf("%s: Deliver got Compress %v, want unset", what, *got.Compress)
	}
}

func fmtBoolPtr(b *bool) string {
	if b == nil {
		return "unset"
	}
	return fmt.Sprint(*b)
}

func testBroadcastBinary(t *testing.T, h *harness) {
	_, a, s := fixture(t, h)
	pkt := event(t, "/", "bin", []byte{1, 2, 3}, map[string]any{"b": []byte{0xff, 0}, "s": "x"})
	if len(pkt.Attachments) != 2 {
		t.Fatalf("test packet has %d attachments", len(pkt.Attachments))
	}
	opts := adapter.BroadcastOptions{Rooms: []string{"r2"}}
	if err := a.Broadcast(h.ctx(t), pkt, opts); err != nil {
		t.Fatal(err)
	}
	h.waitReceived(t, pkt, h.expectOffset(pkt, opts.Flags, false), []*Socket{s[1], s[2]}, s[0], s[3])
}

func testBroadcastKeepsPacket(t *testing.T, h *harness) {
	_, a, s := fixture(t, h)
	pkt := event(t, "/", "keep", "a]b", []byte{7})
	data := slices.Clone(pkt.Data)
	att := slices.Clone(pkt.Attachments[0])
	ctx := h.ctx(t)
	for range 2 {
		if err := a.Broadcast(ctx, pkt, adapter.BroadcastOptions{Rooms: []string{"s1"}}); err != nil {
			t.Fatal(err)
		}
	}
	h.waitFor(t, func() bool { return len(received(s[0], "keep")) == 2 },
		func() string { return fmt.Sprintf("s1 got %d of 2 broadcasts", len(received(s[0], "keep"))) })
	if string(pkt.Data) != string(data) || len(pkt.Attachments) != 1 || string(pkt.Attachments[0]) != string(att) || pkt.HasID || pkt.Type != parser.Event {
		t.Errorf("Broadcast modified the caller's packet: %+v, was data %s", pkt, data)
	}
	rs := received(s[0], "keep")
	o1 := checkPayload(t, "s1", pkt, rs[0].Packet, h.expectOffset(pkt, adapter.Flags{}, false))
	o2 := checkPayload(t, "s1", pkt, rs[1].Packet, h.expectOffset(pkt, adapter.Flags{}, false))
	if h.recovery > 0 && o1 == o2 {
		t.Errorf("two broadcasts of one packet got the same offset %q", o1)
	}
}

// ackCollector gathers what BroadcastWithAck reports.
type ackCollector struct {
	mu     sync.Mutex
	counts []int
	acks   []adapter.Ack
}

func (c *ackCollector) onCount(n int) {
	c.mu.Lock()
	c.counts = append(c.counts, n)
	c.mu.Unlock()
}

func (c *ackCollector) onAck(a adapter.Ack) {
	c.mu.Lock()
	c.acks = append(c.acks, a)
	c.mu.Unlock()
}

func (c *ackCollector) get() ([]int, []adapter.Ack) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.counts), slices.Clone(c.acks)
}

// broadcastWithAck starts BroadcastWithAck in a goroutine (an adapter may
// return at once or when every ack is in) and returns its collector and
// its result.
func (h *harness) broadcastWithAck(t *testing.T, a adapter.Adapter, pkt *parser.Packet, opts adapter.BroadcastOptions) (*ackCollector, <-chan error) {
	c := &ackCollector{}
	errc := make(chan error, 1)
	ctx := h.ctx(t)
	opts.Flags.Timeout = h.opts.Timeout
	go func() { errc <- a.BroadcastWithAck(ctx, pkt, opts, c.onCount, c.onAck) }()
	return c, errc
}

func (h *harness) waitErr(t *testing.T, what string, errc <-chan error) {
	t.Helper()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	case <-time.After(h.opts.Timeout + time.Second):
		t.Fatalf("%s did not return", what)
	}
}

// waitAcks waits until c has n acks and checks that their first
// arguments are want, in any order.
func (h *harness) waitAcks(t *testing.T, c *ackCollector, want ...string) {
	t.Helper()
	h.waitFor(t, func() bool { _, acks := c.get(); return len(acks) >= len(want) },
		func() string { _, acks := c.get(); return fmt.Sprintf("%d acks of %d", len(acks), len(want)) })
	_, acks := c.get()
	var firsts []string
	for _, a := range acks {
		firsts = append(firsts, fmt.Sprint(firstArg(a.Args)))
	}
	if !sameSet(firsts, want) {
		t.Errorf("acks with first arguments %v, want %v", sorted(firsts), sorted(want))
	}
}

func testBroadcastWithAck(t *testing.T, h *harness) {
	_, a, s := fixture(t, h)
	pkt := event(t, "/", "ask", "q")
	c, errc := h.broadcastWithAck(t, a, pkt, adapter.BroadcastOptions{Rooms: []string{"r1"}})
	rs := h.waitReceived(t, pkt, false, []*Socket{s[0], s[1]}, s[2], s[3])
	for i, r := range rs {
		if !r.WithAck {
			t.Errorf("socket %s: Deliver without an ack callback", s[i].ID())
		}
	}
	h.waitFor(t, func() bool { counts, _ := c.get(); return len(counts) >= 1 }, func() string { return "onClientCount was never called" })
	if s[0].Ack(json.RawMessage(`["from-s1"]`)) != 1 || s[1].Ack(json.RawMessage(`["from-s2",{"x":1}]`)) != 1 {
		t.Errorf("sockets s1 and s2 should owe one ack each")
	}
	h.waitAcks(t, c, "from-s1", "from-s2")
	h.waitErr(t, "BroadcastWithAck", errc)
	counts, acks := c.get()
	if !slices.Equal(counts, []int{2}) {
		t.Errorf("onClientCount calls %v, want [2]", counts)
	}
	if len(acks) != 2 {
		t.Errorf("%d acks, want 2", len(acks))
	}
	for _, ack := range acks {
		if firstArg(ack.Args) == "from-s2" && !jsonEqual(ack.Args, []byte(`["from-s2",{"x":1}]`)) {
			// Cluster adapters carry only the first argument, as the
			// Node.js ones do; the in-memory adapter passes them all.
			var v []any
			if json.Unmarshal(ack.Args, &v) != nil || len(v) != 1 {
				t.Errorf("ack args %s, want [\"from-s2\",{\"x\":1}] or [\"from-s2\"]", ack.Args)
			}
		}
	}
}

func testBroadcastWithAckNoTarget(t *testing.T, h *harness) {
	_, a, s := fixture(t, h)
	pkt := event(t, "/", "ask-none")
	c, errc := h.broadcastWithAck(t, a, pkt, adapter.BroadcastOptions{Rooms: []string{"nope"}})
	h.waitErr(t, "BroadcastWithAck", errc)
	h.waitFor(t, func() bool { counts, _ := c.get(); return len(counts) >= 1 }, func() string { return "onClientCount was never called" })
	counts, acks := c.get()
	if !slices.Equal(counts, []int{0}) || len(acks) != 0 {
		t.Errorf("onClientCount calls %v and %d acks, want [0] and none", counts, len(acks))
	}
	for _, sock := range s {
		if len(received(sock, "ask-none")) != 0 {
			t.Errorf("socket %s got the broadcast", sock.ID())
		}
	}
}

func (h *harness) fetch(t *testing.T, a adapter.Adapter, opts adapter.BroadcastOptions, want ...*Socket) {
	t.Helper()
	infos, err := a.FetchSockets(h.ctx(t), opts)
	if err != nil {
		t.Fatalf("FetchSockets(%+v): %v", opts, err)
	}
	checkInfos(t, infos, want...)
	// The presence query selects the same sockets.
	ids, err := a.SocketIDs(h.ctx(t), opts)
	if err != nil {
		t.Fatalf("SocketIDs(%+v): %v", opts, err)
	}
	wantIDs := make([]string, len(want))
	for i, s := range want {
		wantIDs[i] = s.ID()
	}
	if !sameSet(ids, wantIDs) || len(ids) != len(wantIDs) {
		t.Errorf("SocketIDs(%+v) = %v, want %v", opts, sorted(ids), sorted(wantIDs))
	}
}

func testFetchSockets(t *testing.T, h *harness) {
	_, a, s := fixture(t, h)
	h.fetch(t, a, adapter.BroadcastOptions{}, s...)
	h.fetch(t, a, adapter.BroadcastOptions{Rooms: []string{"r1"}}, s[0], s[1])
	h.fetch(t, a, adapter.BroadcastOptions{Rooms: []string{"r1", "r2"}}, s[0], s[1], s[2])
	h.fetch(t, a, adapter.BroadcastOptions{Except: []string{"r2"}}, s[0], s[3])
	h.fetch(t, a, adapter.BroadcastOptions{Rooms: []string{"r2"}, Except: []string{"s3"}}, s[1])
	h.fetch(t, a, adapter.BroadcastOptions{Rooms: []string{"s4"}}, s[3])
	h.fetch(t, a, adapter.BroadcastOptions{Rooms: []string{"nope"}})
	s[1].Disconnect(false)
	h.fetch(t, a, adapter.BroadcastOptions{Rooms: []string{"r1"}}, s[0])
}

// waitRooms waits until socket id has exactly rooms want in a.
func (h *harness) waitRooms(t *testing.T, a adapter.Adapter, id string, want ...string) {
	t.Helper()
	h.waitFor(t, func() bool { return sameSet(a.SocketRooms(id), want) }, func() string {
		return fmt.Sprintf("socket %s has rooms %v, want %v", id, sorted(a.SocketRooms(id)), sorted(want))
	})
}

func testAddSockets(t *testing.T, h *harness) {
	_, a, s := fixture(t, h)
	ctx := h.ctx(t)
	if err := a.AddSockets(ctx, adapter.BroadcastOptions{Rooms: []string{"r1"}, Except: []string{"s2"}}, []string{"x", "y"}); err != nil {
		t.Fatal(err)
	}
	h.waitRooms(t, a, "s1", "s1", "r1", "x", "y")
	checkRooms(t, a, "s2", "s2", "r1", "r2")
	checkRooms(t, a, "s3", "s3", "r2")
	checkRooms(t, a, "s4", "s4")
	if err := a.AddSockets(ctx, adapter.BroadcastOptions{}, []string{"z"}); err != nil {
		t.Fatal(err)
	}
	h.waitRooms(t, a, "s1", "s1", "r1", "x", "y", "z")
	h.waitRooms(t, a, "s2", "s2", "r1", "r2", "z")
	h.waitRooms(t, a, "s3", "s3", "r2", "z")
	h.waitRooms(t, a, "s4", "s4", "z")
	h.broadcast(t, a, "to-x", adapter.BroadcastOptions{Rooms: []string{"x"}}, s, s[0])
}

func testDelSockets(t *testing.T, h *harness) {
	nsp := h.cluster(t, 1)[0]
	a := nsp.Adapter()
	s := []*Socket{
		nsp.Connect("s1", "r1", "r2", "x"),
		nsp.Connect("s2", "r1", "x"),
		nsp.Connect("s3", "x"),
	}
	if err := a.DelSockets(h.ctx(t), adapter.BroadcastOptions{Rooms: []string{"r1"}}, []string{"x", "r2"}); err != nil {
		t.Fatal(err)
	}
	h.waitRooms(t, a, "s1", "s1", "r1")
	h.waitRooms(t, a, "s2", "s2", "r1")
	checkRooms(t, a, "s3", "s3", "x")
	if got := a.Rooms(); !sameSet(got, []string{"s1", "s2", "s3", "r1", "x"}) {
		t.Errorf("Rooms() = %v, want [r1 s1 s2 s3 x]", sorted(got))
	}
	h.broadcast(t, a, "to-x", adapter.BroadcastOptions{Rooms: []string{"x"}}, s, s[2])
}

// waitDisconnected waits until s is disconnected and checks close.
func (h *harness) waitDisconnected(t *testing.T, s *Socket, close bool) {
	t.Helper()
	h.waitFor(t, func() bool { d, _ := s.Disconnected(); return d },
		func() string { return fmt.Sprintf("socket %s was not disconnected", s.ID()) })
	if _, c := s.Disconnected(); c != close {
		t.Errorf("socket %s disconnected with close %v, want %v", s.ID(), c, close)
	}
}

func checkConnected(t *testing.T, socks ...*Socket) {
	t.Helper()
	for _, s := range socks {
		if d, _ := s.Disconnected(); d {
			t.Errorf("socket %s was disconnected", s.ID())
		}
	}
}

func testDisconnectSockets(t *testing.T, h *harness) {
	_, a, s := fixture(t, h)
	ctx := h.ctx(t)
	if err := a.DisconnectSockets(ctx, adapter.BroadcastOptions{Rooms: []string{"r1"}, Except: []string{"s2"}}, false); err != nil {
		t.Fatal(err)
	}
	h.waitDisconnected(t, s[0], false)
	checkConnected(t, s[1], s[2], s[3])
	if err := a.DisconnectSockets(ctx, adapter.BroadcastOptions{Rooms: []string{"r2"}}, true); err != nil {
		t.Fatal(err)
	}
	h.waitDisconnected(t, s[1], true)
	h.waitDisconnected(t, s[2], true)
	checkConnected(t, s[3])
	if got := a.Sockets(); !slices.Equal(got, []string{"s4"}) {
		t.Errorf("Sockets() = %v, want [s4]", got)
	}
	if got := a.Rooms(); !slices.Equal(got, []string{"s4"}) {
		t.Errorf("Rooms() = %v, want [s4]", got)
	}
	if err := a.DisconnectSockets(ctx, adapter.BroadcastOptions{Rooms: []string{"nope"}}, true); err != nil {
		t.Fatal(err)
	}
	h.broadcast(t, a, "after", adapter.BroadcastOptions{}, s, s[3])
}

func testServerCount(t *testing.T, h *harness) {
	a := h.cluster(t, 1)[0].Adapter()
	n, err := a.ServerCount(h.ctx(t))
	if err != nil || n < 1 {
		t.Errorf("ServerCount = %d, %v; want >= 1", n, err)
	}
}

func testServerSideEmitNoPeers(t *testing.T, h *harness) {
	nsp := h.cluster(t, 1)[0]
	a := nsp.Adapter()
	ctx := h.ctx(t)
	if err := a.ServerSideEmit(ctx, json.RawMessage(`["hello",1]`), nil, nil); err != nil {
		t.Errorf("ServerSideEmit: %v", err)
	}
	var calls int
	var mu sync.Mutex
	start := time.Now()
	err := a.ServerSideEmit(ctx, json.RawMessage(`["hello-ack",2]`), nil, func(adapter.Ack) {
		mu.Lock()
		calls++
		mu.Unlock()
	})
	if d := time.Since(start); d > h.opts.Timeout/2 {
		t.Errorf("ServerSideEmit with ack and no peers took %v", d)
	}
	if err != nil {
		t.Errorf("ServerSideEmit with ack and no peers: %v", err)
	}
	// A broadcast after the emits: an adapter that hears its own traffic
	// would have heard them first.
	s := nsp.Connect("s1")
	h.broadcast(t, a, "marker", adapter.BroadcastOptions{}, []*Socket{s}, s)
	mu.Lock()
	defer mu.Unlock()
	if calls != 0 {
		t.Errorf("onAck called %d times with no peers", calls)
	}
	if e := nsp.ServerSideEmits(); len(e) != 0 {
		t.Errorf("the sender's namespace got its own server-side emits: %+v", e)
	}
}

func testNamespaces(t *testing.T, h *harness) {
	nsps := h.clusterWith(t, ClusterConfig{Nodes: 1, Recovery: h.recovery}, "/", "/other")
	main, other := nsps["/"][0], nsps["/other"][0]
	m1 := main.Connect("m1", "r")
	o1 := other.Connect("o1", "r", "only-other")
	if got := main.Adapter().Rooms(); !sameSet(got, []string{"m1", "r"}) {
		t.Errorf("Rooms() of / = %v, want [m1 r]", sorted(got))
	}
	h.broadcast(t, main.Adapter(), "main", adapter.BroadcastOptions{Rooms: []string{"r"}}, []*Socket{m1, o1}, m1)
	h.broadcast(t, other.Adapter(), "other", adapter.BroadcastOptions{}, []*Socket{m1, o1}, o1)
	if n := len(received(o1, "main")); n != 0 {
		t.Errorf("a broadcast in / reached /other %d times", n)
	}
	h.fetch(t, main.Adapter(), adapter.BroadcastOptions{}, m1)
	h.fetch(t, other.Adapter(), adapter.BroadcastOptions{Rooms: []string{"r"}}, o1)
}

func testConcurrent(t *testing.T, h *harness) {
	nsp := h.cluster(t, 1)[0]
	a := nsp.Adapter()
	ctx := h.ctx(t)
	const goroutines, rounds = 8, 50
	same := event(t, "/", "same", "shared packet")
	var wg sync.WaitGroup
	var survivors []*Socket
	var mu sync.Mutex
	for g := range goroutines {
		wg.Go(func() {
			own := fmt.Sprintf("g%d", g)
			for i := range rounds {
				id := fmt.Sprintf("g%d-%d", g, i)
				s := nsp.Connect(id, "shared", own)
				pkt, err := parser.NewEvent("/", "c", g, i)
				if err != nil {
					t.Error(err)
					return
				}
				if err := a.Broadcast(ctx, pkt, adapter.BroadcastOptions{Rooms: []string{own}}); err != nil {
					t.Errorf("Broadcast: %v", err)
				}
				if err := a.Broadcast(ctx, same, adapter.BroadcastOptions{Rooms: []string{own}}); err != nil {
					t.Errorf("Broadcast: %v", err)
				}
				a.Sockets("shared")
				a.Rooms()
				// Delivery may be asynchronous: leave once both arrived.
				if !h.eventually(func() bool { return len(s.Received()) == 2 }) {
					t.Errorf("socket %s got %v, want [c same]", id, s.Events())
					return
				}
				if _, err := a.FetchSockets(ctx, adapter.BroadcastOptions{Rooms: []string{own}}); err != nil {
					t.Errorf("FetchSockets: %v", err)
				}
				s.Leave(own)
				if got := a.SocketRooms(id); !sameSet(got, []string{id, "shared"}) {
					t.Errorf("SocketRooms(%s) = %v, want [%s shared]", id, got, id)
				}
				if i%2 == 0 {
					s.Disconnect(false)
				} else {
					mu.Lock()
					survivors = append(survivors, s)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	want := ids(survivors...)
	if got := a.Sockets("shared"); !sameSet(got, want) {
		t.Errorf("Sockets(shared) has %d sockets, want %d", len(got), len(want))
	}
	if got := a.Rooms(); !sameSet(got, append(want, "shared")) {
		t.Errorf("Rooms() has %d rooms, want %d", len(got), len(want)+1)
	}
	for _, s := range survivors {
		if got := s.Events(); !sameSet(got, []string{"c", "same"}) {
			t.Errorf("socket %s got %v, want [c same]", s.ID(), got)
		}
	}
	h.broadcast(t, a, "final", adapter.BroadcastOptions{Rooms: []string{"shared"}}, survivors, survivors...)
}

// eventually polls cond until it holds or Options.Timeout passes, and
// reports whether it held. Unlike waitFor it may run in any goroutine.
func (h *harness) eventually(cond func() bool) bool {
	deadline := time.Now().Add(h.opts.Timeout)
	for wait := time.Millisecond; !cond(); wait = min(2*wait, 20*time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(wait)
	}
	return true
}

func testClose(t *testing.T, h *harness) {
	nsp := h.cluster(t, 1)[0]
	nsp.Connect("s1", "r")
	a := nsp.Adapter()
	if err := a.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := a.Close(); err != nil && !errors.Is(err, adapter.ErrClosed) {
		t.Errorf("second Close: %v, want nil or ErrClosed", err)
	}
}

// testReentrantDeliver calls the adapter from inside Deliver, as the server
// does when a write disconnects a slow client whose disconnect handler
// emits: the adapter must not hold a lock across Deliver.
func testReentrantDeliver(t *testing.T, h *harness) {
	nsp, a, s := fixture(t, h)
	ctx := h.ctx(t)
	outer, inner := event(t, "/", "outer"), event(t, "/", "inner")
	var once sync.Once
	nsp.OnDeliver(func(d Delivery) {
		if name, _ := d.Packet.EventName(); name != "outer" {
			return
		}
		once.Do(func() {
			a.PersistSession(adapter.Session{SID: "s4", PID: "pid-s4", Rooms: a.SocketRooms("s4")})
			s[3].Disconnect(false)
			if err := a.Broadcast(ctx, inner, adapter.BroadcastOptions{Rooms: []string{"r1"}}); err != nil {
				t.Errorf("Broadcast inside Deliver: %v", err)
			}
			a.Sockets()
			a.Rooms()
		})
	})
	done := make(chan error, 1)
	go func() { done <- a.Broadcast(ctx, outer, adapter.BroadcastOptions{}) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(h.opts.Timeout):
		t.Fatal("Broadcast did not return: a call into the adapter from inside Deliver deadlocked")
	}
	h.waitFor(t, func() bool { return len(received(s[0], "inner")) == 1 && len(received(s[1], "inner")) == 1 },
		func() string { return "the broadcast made inside Deliver never arrived" })
	for _, sock := range s[:2] {
		if got := sock.Events(); !slices.Equal(got, []string{"outer", "inner"}) {
			t.Errorf("socket %s got %v, want [outer inner]", sock.ID(), got)
		}
	}
	if got := s[2].Events(); !slices.Equal(got, []string{"outer"}) {
		t.Errorf("socket s3 got %v, want [outer]", got)
	}
	if got := a.Sockets(); !sameSet(got, []string{"s1", "s2", "s3"}) {
		t.Errorf("Sockets() = %v, want [s1 s2 s3]", sorted(got))
	}
}
