package adaptertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/parser"
)

// clusterCases run on clusters of 2 or 3 nodes (Options.MaxNodes >= 2).
var clusterCases = []testCase{
	{name: "ServerCount", run: testClusterServerCount},
	{name: "Broadcast", run: testClusterBroadcast},
	{name: "BroadcastLocal", run: testClusterBroadcastLocal},
	{name: "BroadcastFlags", run: testClusterBroadcastFlags},
	{name: "BroadcastWithAck", run: testClusterBroadcastWithAck},
	{name: "FetchSockets", run: testClusterFetchSockets},
	{name: "AddSockets", run: testClusterAddSockets},
	{name: "DelSockets", run: testClusterDelSockets},
	{name: "DisconnectSockets", run: testClusterDisconnectSockets},
	{name: "ServerSideEmit", run: testClusterServerSideEmit},
	{name: "ServerSideEmitWithAck", run: testClusterServerSideEmitWithAck},
	{name: "Namespaces", run: testClusterNamespaces},
	{name: "Close", run: testClusterClose},
	{name: "RestoreOnOtherNode", run: testClusterRestore, recovery: true},
}

// clusterFixture is a cluster where node i has sockets "ni-a" in rooms r
// and x, "ni-b" in r, and "ni-c" in none.
type clusterFixture struct {
	nsps []*Namespace
	a, b []*Socket // per node
	c    []*Socket
	all  []*Socket
}

func (h *harness) clusterFixture(t *testing.T) *clusterFixture {
	f := &clusterFixture{nsps: h.cluster(t, h.nodes())}
	for i, nsp := range f.nsps {
		f.a = append(f.a, nsp.Connect(fmt.Sprintf("n%d-a", i), "r", "x"))
		f.b = append(f.b, nsp.Connect(fmt.Sprintf("n%d-b", i), "r"))
		f.c = append(f.c, nsp.Connect(fmt.Sprintf("n%d-c", i)))
	}
	f.all = slices.Concat(f.a, f.b, f.c)
	return f
}

func (f *clusterFixture) adapter(i int) adapter.Adapter { return f.nsps[i].Adapter() }

func testClusterServerCount(t *testing.T, h *harness) {
	n := h.nodes()
	for i, nsp := range h.cluster(t, n) {
		got, err := nsp.Adapter().ServerCount(h.ctx(t))
		if err != nil || got != n {
			t.Errorf("node %d: ServerCount = %d, %v; want %d", i, got, err, n)
		}
	}
}

func testClusterBroadcast(t *testing.T, h *harness) {
	f := h.clusterFixture(t)
	a0 := f.adapter(0)
	h.broadcast(t, a0, "all", adapter.BroadcastOptions{}, f.all, f.all...)
	h.broadcast(t, a0, "r", adapter.BroadcastOptions{Rooms: []string{"r"}}, f.all, slices.Concat(f.a, f.b)...)
	h.broadcast(t, a0, "r+x", adapter.BroadcastOptions{Rooms: []string{"x", "r"}}, f.all, slices.Concat(f.a, f.b)...)
	for _, nsp := range f.nsps {
		checkDeliveries(t, nsp, "r+x")
	}
	h.broadcast(t, a0, "r-except-x", adapter.BroadcastOptions{Rooms: []string{"r"}, Except: []string{"x"}}, f.all, f.b...)
	// A socket id names a socket on another node.
	remote := f.a[1]
	var rest []*Socket
	for _, s := range f.all {
		if s != remote {
			rest = append(rest, s)
		}
	}
	h.broadcast(t, a0, "except-remote", adapter.BroadcastOptions{Except: []string{remote.ID()}}, f.all, rest...)
	h.broadcast(t, a0, "to-remote", adapter.BroadcastOptions{Rooms: []string{remote.ID()}}, f.all, remote)
	// From another node, with binary attachments.
	pkt := event(t, "/", "bin", []byte{1, 2, 3}, map[string]any{"z": []byte{}, "s": "é]"})
	if err := f.adapter(1).Broadcast(h.ctx(t), pkt, adapter.BroadcastOptions{Rooms: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	h.waitReceived(t, pkt, h.expectOffset(pkt, adapter.Flags{}, false), f.a, slices.Concat(f.b, f.c)...)
}

func testClusterBroadcastLocal(t *testing.T, h *harness) {
	f := h.clusterFixture(t)
	h.broadcast(t, f.adapter(0), "local", adapter.BroadcastOptions{Flags: adapter.Flags{Local: true}}, f.nsp0(), f.nsp0()...)
	// The same broadcast without the flag, after it: once it has reached
	// the other nodes, the local one would have too.
	h.broadcast(t, f.adapter(0), "marker", adapter.BroadcastOptions{}, f.all, f.all...)
	for _, s := range f.all {
		if want := map[bool]int{true: 1, false: 0}[slices.Contains(f.nsp0(), s)]; len(received(s, "local")) != want {
			t.Errorf("socket %s got a local broadcast of node 0 %d times, want %d", s.ID(), len(received(s, "local")), want)
		}
	}
}

// nsp0 returns the sockets of node 0.
func (f *clusterFixture) nsp0() []*Socket { return []*Socket{f.a[0], f.b[0], f.c[0]} }

func testClusterBroadcastFlags(t *testing.T, h *harness) {
	f := h.clusterFixture(t)
	no := false
	flags := adapter.Flags{Volatile: true, Compress: &no}
	rs := h.broadcast(t, f.adapter(0), "volatile", adapter.BroadcastOptions{Rooms: []string{"r"}, Flags: flags}, f.all, slices.Concat(f.a, f.b)...)
	for i, r := range rs {
		checkFlags(t, fmt.Sprintf("socket %d", i), r.Flags, flags, false)
	}
}

func testClusterBroadcastWithAck(t *testing.T, h *harness) {
	f := h.clusterFixture(t)
	pkt := event(t, "/", "ask", "q", 1)
	c, errc := h.broadcastWithAck(t, f.adapter(0), pkt, adapter.BroadcastOptions{Rooms: []string{"r"}})
	targets := slices.Concat(f.a, f.b)
	rs := h.waitReceived(t, pkt, false, targets, f.c...)
	var want []string
	for i, s := range targets {
		if !rs[i].WithAck {
			t.Errorf("socket %s: Deliver without an ack callback", s.ID())
		}
		h.waitFor(t, func() bool { return s.PendingAcks() == 1 }, func() string { return s.ID() + " owes no ack" })
		if n := s.Ack(json.RawMessage(`["ack-` + s.ID() + `"]`)); n != 1 {
			t.Errorf("socket %s answered %d acks, want 1", s.ID(), n)
		}
		want = append(want, "ack-"+s.ID())
	}
	h.waitAcks(t, c, want...)
	n := h.nodes()
	h.waitFor(t, func() bool { counts, _ := c.get(); return len(counts) >= n },
		func() string {
			counts, _ := c.get()
			return fmt.Sprintf("onClientCount calls %v, want one per node (%d)", counts, n)
		})
	h.waitErr(t, "BroadcastWithAck", errc)
	counts, acks := c.get()
	if !slices.Equal(counts, slices.Repeat([]int{2}, n)) {
		t.Errorf("onClientCount calls %v, want %v", counts, slices.Repeat([]int{2}, n))
	}
	if len(acks) != len(want) {
		t.Errorf("%d acks, want %d", len(acks), len(want))
	}
}

func testClusterFetchSockets(t *testing.T, h *harness) {
	f := h.clusterFixture(t)
	a1 := f.adapter(1)
	h.fetch(t, a1, adapter.BroadcastOptions{}, f.all...)
	h.fetch(t, a1, adapter.BroadcastOptions{Rooms: []string{"x"}}, f.a...)
	h.fetch(t, a1, adapter.BroadcastOptions{Rooms: []string{"x", "r"}}, slices.Concat(f.a, f.b)...)
	h.fetch(t, a1, adapter.BroadcastOptions{Rooms: []string{"r"}, Except: []string{"x"}}, f.b...)
	h.fetch(t, a1, adapter.BroadcastOptions{Rooms: []string{f.c[0].ID(), f.a[1].ID()}}, f.c[0], f.a[1])
	h.fetch(t, a1, adapter.BroadcastOptions{Rooms: []string{"nope"}})
	f.b[0].Disconnect(false)
	h.fetch(t, a1, adapter.BroadcastOptions{Rooms: []string{"r"}, Except: []string{"x"}}, f.b[1:]...)
}

func testClusterAddSockets(t *testing.T, h *harness) {
	f := h.clusterFixture(t)
	if err := f.adapter(0).AddSockets(h.ctx(t), adapter.BroadcastOptions{Rooms: []string{"r"}, Except: []string{"x"}}, []string{"y", "z"}); err != nil {
		t.Fatal(err)
	}
	for i, nsp := range f.nsps {
		a := nsp.Adapter()
		h.waitRooms(t, a, f.b[i].ID(), f.b[i].ID(), "r", "y", "z")
		checkRooms(t, a, f.a[i].ID(), f.a[i].ID(), "r", "x")
		checkRooms(t, a, f.c[i].ID(), f.c[i].ID())
	}
	h.broadcast(t, f.adapter(h.nodes()-1), "to-y", adapter.BroadcastOptions{Rooms: []string{"y"}}, f.all, f.b...)
}

func testClusterDelSockets(t *testing.T, h *harness) {
	f := h.clusterFixture(t)
	if err := f.adapter(0).DelSockets(h.ctx(t), adapter.BroadcastOptions{Rooms: []string{"x"}}, []string{"r", "nope"}); err != nil {
		t.Fatal(err)
	}
	for i, nsp := range f.nsps {
		a := nsp.Adapter()
		h.waitRooms(t, a, f.a[i].ID(), f.a[i].ID(), "x")
		checkRooms(t, a, f.b[i].ID(), f.b[i].ID(), "r")
	}
	h.broadcast(t, f.adapter(1), "to-r", adapter.BroadcastOptions{Rooms: []string{"r"}}, f.all, f.b...)
}

func testClusterDisconnectSockets(t *testing.T, h *harness) {
	f := h.clusterFixture(t)
	ctx := h.ctx(t)
	if err := f.adapter(0).DisconnectSockets(ctx, adapter.BroadcastOptions{Rooms: []string{"x"}}, true); err != nil {
		t.Fatal(err)
	}
	for _, s := range f.a {
		h.waitDisconnected(t, s, true)
	}
	checkConnected(t, slices.Concat(f.b, f.c)...)
	if err := f.adapter(1).DisconnectSockets(ctx, adapter.BroadcastOptions{Except: []string{"r"}}, false); err != nil {
		t.Fatal(err)
	}
	for _, s := range f.c {
		h.waitDisconnected(t, s, false)
	}
	checkConnected(t, f.b...)
	for i, nsp := range f.nsps {
		if got := nsp.Adapter().Sockets(); !slices.Equal(got, []string{f.b[i].ID()}) {
			t.Errorf("node %d: Sockets() = %v, want [%s]", i, got, f.b[i].ID())
		}
	}
	h.fetch(t, f.adapter(0), adapter.BroadcastOptions{}, f.b...)
}

// waitEmits waits until nsp has n server-side emits.
func (h *harness) waitEmits(t *testing.T, nsp *Namespace, n int) []ServerSideEmit {
	t.Helper()
	h.waitFor(t, func() bool { return len(nsp.ServerSideEmits()) >= n }, func() string {
		return fmt.Sprintf("node %d %q got %d server-side emits, want %d", nsp.Node(), nsp.Name(), len(nsp.ServerSideEmits()), n)
	})
	return nsp.ServerSideEmits()
}

// serverSideEmitWithAck sends data from nsp and checks that every other
// node of nsps answered once.
func (h *harness) serverSideEmitWithAck(t *testing.T, nsps []*Namespace, from int, data string) {
	t.Helper()
	var mu sync.Mutex
	var answers []string
	err := nsps[from].Adapter().ServerSideEmit(h.ctx(t), json.RawMessage(data), nil, func(a adapter.Ack) {
		mu.Lock()
		answers = append(answers, fmt.Sprint(firstArg(a.Args)))
		mu.Unlock()
	})
	if err != nil {
		t.Fatalf("ServerSideEmit with ack: %v", err)
	}
	var want []string
	for i := range nsps {
		if i != from {
			want = append(want, fmt.Sprintf("node-%d", i))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !sameSet(answers, want) {
		t.Errorf("ServerSideEmit with ack from node %d: answers %v, want %v", from, sorted(answers), want)
	}
}

func testClusterServerSideEmit(t *testing.T, h *harness) {
	nsps := h.cluster(t, h.nodes())
	ctx := h.ctx(t)
	if err := nsps[0].Adapter().ServerSideEmit(ctx, json.RawMessage(`["sse",{"a":1},"b"]`), nil, nil); err != nil {
		t.Fatal(err)
	}
	bin := [][]byte{{1, 2, 3}, {}}
	if err := nsps[0].Adapter().ServerSideEmit(ctx, json.RawMessage(`["sse-bin",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`), bin, nil); err != nil {
		t.Fatal(err)
	}
	for _, nsp := range nsps[1:] {
		got := h.waitEmits(t, nsp, 2)
		if len(got) != 2 {
			t.Errorf("node %d got %d server-side emits, want 2", nsp.Node(), len(got))
			continue
		}
		if !jsonEqual(got[0].Data, []byte(`["sse",{"a":1},"b"]`)) || got[0].WithReply || len(got[0].Attachments) != 0 {
			t.Errorf("node %d got %+v, want [\"sse\",{\"a\":1},\"b\"] without reply", nsp.Node(), got[0])
		}
		if !jsonEqual(got[1].Data, []byte(`["sse-bin",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)) || got[1].WithReply ||
			len(got[1].Attachments) != 2 || !bytes.Equal(got[1].Attachments[0], bin[0]) || len(got[1].Attachments[1]) != 0 {
			t.Errorf("node %d got %s with attachments %x, want the binary emit", nsp.Node(), got[1].Data, got[1].Attachments)
		}
	}
	// A request and its answers go round the cluster after the emits.
	h.serverSideEmitWithAck(t, nsps, 0, `["barrier"]`)
	if got := nsps[0].ServerSideEmits(); len(got) != 0 {
		t.Errorf("the sender got its own server-side emits: %+v", got)
	}
}

func testClusterServerSideEmitWithAck(t *testing.T, h *harness) {
	nsps := h.cluster(t, h.nodes())
	h.serverSideEmitWithAck(t, nsps, 1, `["question",42]`)
	for i, nsp := range nsps {
		got := nsp.ServerSideEmits()
		switch {
		case i == 1 && len(got) != 0:
			t.Errorf("the sender got its own server-side emit: %+v", got)
		case i != 1 && (len(got) != 1 || !got[0].WithReply || !jsonEqual(got[0].Data, []byte(`["question",42]`))):
			t.Errorf("node %d got %+v, want one [\"question\",42] with a reply", i, got)
		}
	}
	// A node answering with several arguments: the first one arrives.
	for _, nsp := range nsps {
		nsp.SetServerSideReply(func(json.RawMessage) json.RawMessage {
			return json.RawMessage(fmt.Sprintf(`["node-%d",{"more":true}]`, nsp.Node()))
		})
	}
	h.serverSideEmitWithAck(t, nsps, 0, `["again"]`)
}

func testClusterNamespaces(t *testing.T, h *harness) {
	n := h.nodes()
	nsps := h.clusterWith(t, ClusterConfig{Nodes: n, Recovery: h.recovery}, "/", "/other")
	var main, other []*Socket
	for i := range n {
		main = append(main, nsps["/"][i].Connect(fmt.Sprintf("m%d", i), "r"))
		other = append(other, nsps["/other"][i].Connect(fmt.Sprintf("o%d", i), "r"))
	}
	all := slices.Concat(main, other)
	h.broadcast(t, nsps["/"][0].Adapter(), "main", adapter.BroadcastOptions{Rooms: []string{"r"}}, all, main...)
	h.broadcast(t, nsps["/other"][0].Adapter(), "other", adapter.BroadcastOptions{}, all, other...)
	for _, s := range other {
		if len(received(s, "main")) != 0 {
			t.Errorf("a broadcast in / reached %s in /other", s.ID())
		}
	}
	h.fetch(t, nsps["/"][1].Adapter(), adapter.BroadcastOptions{Rooms: []string{"r"}}, main...)
	h.serverSideEmitWithAck(t, nsps["/"], 0, `["main-sse"]`)
	h.serverSideEmitWithAck(t, nsps["/other"], 0, `["other-sse"]`)
	for i, nsp := range nsps["/other"] {
		for _, e := range nsp.ServerSideEmits() {
			if jsonEqual(e.Data, []byte(`["main-sse"]`)) {
				t.Errorf("node %d: a server-side emit in / reached /other", i)
			}
		}
	}
}

func testClusterClose(t *testing.T, h *harness) {
	f := h.clusterFixture(t)
	n := h.nodes()
	if err := f.adapter(n - 1).Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i := range n - 1 {
		h.waitServerCount(t, f.nsps[i], n-1)
	}
	var live []*Socket
	for _, s := range f.all {
		if !slices.Contains([]*Socket{f.a[n-1], f.b[n-1], f.c[n-1]}, s) {
			live = append(live, s)
		}
	}
	h.broadcast(t, f.adapter(0), "after-close", adapter.BroadcastOptions{}, live, live...)
	h.fetch(t, f.adapter(0), adapter.BroadcastOptions{Rooms: []string{"x"}}, f.a[:n-1]...)
	h.serverSideEmitWithAck(t, f.nsps[:n-1], 0, `["after-close"]`)
}

// testClusterRestore: a client that was on node 0 reconnects to node 1.
func testClusterRestore(t *testing.T, h *harness) {
	nsps := h.cluster(t, 2)
	a0, a1 := nsps[0].Adapter(), nsps[1].Adapter()
	s := nsps[0].Connect("s", "r")
	obs := nsps[1].Connect("obs", "other")
	// The offset comes with a broadcast from the other node.
	o0 := h.offsetOf(t, a1, s, event(t, "/", "p0"), adapter.BroadcastOptions{})
	sess := persist(t, a0, s, "pid-x")
	p1 := event(t, "/", "p1", 1)
	p2 := event(t, "/", "p2", 2)
	p3 := event(t, "/", "p3", 3)
	p4 := event(t, "/", "p4", 4)
	ctx := h.ctx(t)
	for _, b := range []struct {
		a    adapter.Adapter
		pkt  *parser.Packet
		opts adapter.BroadcastOptions
	}{
		{a1, p1, adapter.BroadcastOptions{Rooms: []string{"r"}}},      // missed
		{a0, p2, adapter.BroadcastOptions{Rooms: []string{"other"}}},  // not for s
		{a0, p3, adapter.BroadcastOptions{Except: []string{"other"}}}, // missed
		{a1, p4, adapter.BroadcastOptions{}},                          // missed
	} {
		if err := b.a.Broadcast(ctx, b.pkt, b.opts); err != nil {
			t.Fatal(err)
		}
	}
	h.waitReceived(t, p4, true, []*Socket{obs})
	r, err := a1.RestoreSession("pid-x", o0)
	if err != nil || r == nil {
		t.Fatalf("RestoreSession on node 1 = %v, %v; want the session persisted on node 0", r, err)
	}
	checkSession(t, r.Session, sess)
	var names []string
	for _, p := range r.MissedPackets {
		n, _ := p.EventName()
		names = append(names, n)
	}
	if !slices.Equal(names, []string{"p1", "p3", "p4"}) {
		t.Fatalf("missed packets %v, want [p1 p3 p4]", names)
	}
	for i, sent := range []*parser.Packet{p1, p3, p4} {
		checkPayload(t, "missed "+names[i], sent, *r.MissedPackets[i], true)
	}
}
