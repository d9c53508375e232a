package adaptertest

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/parser"
)

// recoveryCases run on one node with Options.Recovery.
var recoveryCases = []testCase{
	{name: "Offsets", run: testOffsets},
	{name: "NoOffset", run: testNoOffset},
	{name: "Restore", run: testRestore},
	{name: "RestoreUnknown", run: testRestoreUnknown},
	{name: "Expiry", run: testExpiry},
	{name: "DeliveryOrder", run: testDeliveryOrder},
}

// offsetOf broadcasts pkt with opts and returns the offset s received
// with it.
func (h *harness) offsetOf(t *testing.T, a adapter.Adapter, s *Socket, pkt *parser.Packet, opts adapter.BroadcastOptions) string {
	t.Helper()
	if err := a.Broadcast(h.ctx(t), pkt, opts); err != nil {
		t.Fatalf("Broadcast: %v", err)
	}
	rs := h.waitReceived(t, pkt, true, []*Socket{s})
	off := checkPayload(t, s.ID(), pkt, rs[0].Packet, true)
	if off == "" {
		t.FailNow()
	}
	return off
}

// persist stores s's session as the server does when s goes away with a
// recoverable reason: PersistSession with its rooms, then DelAll.
func persist(t *testing.T, a adapter.Adapter, s *Socket, pid string) adapter.Session {
	t.Helper()
	sess := adapter.Session{SID: s.ID(), PID: pid, Rooms: a.SocketRooms(s.ID()), Data: json.RawMessage(`{"user":"` + pid + `","n":[1,2]}`)}
	a.PersistSession(sess)
	s.Disconnect(false)
	return sess
}

func checkSession(t *testing.T, got, want adapter.Session) {
	t.Helper()
	if got.SID != want.SID || got.PID != want.PID || !sameSet(got.Rooms, want.Rooms) || !jsonEqual(got.Data, want.Data) {
		t.Errorf("restored session {SID:%s PID:%s Rooms:%v Data:%s}, want {SID:%s PID:%s Rooms:%v Data:%s}",
			got.SID, got.PID, sorted(got.Rooms), got.Data, want.SID, want.PID, sorted(want.Rooms), want.Data)
	}
}

func testOffsets(t *testing.T, h *harness) {
	nsp := h.cluster(t, 1)[0]
	a := nsp.Adapter()
	s := nsp.Connect("s1", "r")
	var offsets []string
	for _, c := range []struct {
		pkt  *parser.Packet
		opts adapter.BroadcastOptions
	}{
		{event(t, "/", "e1", "x"), adapter.BroadcastOptions{}},
		{event(t, "/", "e2"), adapter.BroadcastOptions{Rooms: []string{"r"}}},
		{event(t, "/", "e3", []any{1, []int{2}}, "]"), adapter.BroadcastOptions{Rooms: []string{"s1"}, Flags: adapter.Flags{Local: true}}},
		{event(t, "/", "e4", []byte{1, 2}, map[string]any{"a": "]"}), adapter.BroadcastOptions{Except: []string{"nope"}}},
	} {
		data := slices.Clone(c.pkt.Data)
		off := h.offsetOf(t, a, s, c.pkt, c.opts)
		if string(c.pkt.Data) != string(data) {
			t.Errorf("Broadcast appended the offset to the caller's packet: %s", c.pkt.Data)
		}
		if slices.Contains(offsets, off) {
			t.Errorf("offset %q given twice", off)
		}
		offsets = append(offsets, off)
	}
}

func testNoOffset(t *testing.T, h *harness) {
	nsp := h.cluster(t, 1)[0]
	a := nsp.Adapter()
	s := nsp.Connect("s1")
	ctx := h.ctx(t)
	volatile := event(t, "/", "volatile", 1)
	if err := a.Broadcast(ctx, volatile, adapter.BroadcastOptions{Flags: adapter.Flags{Volatile: true}}); err != nil {
		t.Fatal(err)
	}
	h.waitReceived(t, volatile, false, []*Socket{s})

	withID := event(t, "/", "with-id", 2)
	withID.ID, withID.HasID = 7, true
	if err := a.Broadcast(ctx, withID, adapter.BroadcastOptions{Flags: adapter.Flags{Local: true}}); err != nil {
		t.Fatal(err)
	}
	h.waitReceived(t, withID, false, []*Socket{s})

	ask := event(t, "/", "ask", 3)
	c, errc := h.broadcastWithAck(t, a, ask, adapter.BroadcastOptions{})
	h.waitReceived(t, ask, false, []*Socket{s})
	s.Ack(json.RawMessage(`["ok"]`))
	h.waitAcks(t, c, "ok")
	h.waitErr(t, "BroadcastWithAck", errc)
}

func testRestore(t *testing.T, h *harness) {
	nsp := h.cluster(t, 1)[0]
	a := nsp.Adapter()
	s1 := nsp.Connect("s1", "r")
	obs := nsp.Connect("obs", "other")
	o0 := h.offsetOf(t, a, s1, event(t, "/", "p0"), adapter.BroadcastOptions{})
	sess := persist(t, a, s1, "pid-1")
	ctx := h.ctx(t)
	type bc struct {
		pkt    *parser.Packet
		opts   adapter.BroadcastOptions
		missed bool // the socket would have got it
	}
	bcs := []bc{
		{event(t, "/", "p1", 1), adapter.BroadcastOptions{Rooms: []string{"r"}}, true},
		{event(t, "/", "p2", 2), adapter.BroadcastOptions{Rooms: []string{"other"}}, false},
		{event(t, "/", "p3", 3), adapter.BroadcastOptions{Except: []string{"r"}}, false},
		{event(t, "/", "p4", 4), adapter.BroadcastOptions{Flags: adapter.Flags{Volatile: true}}, false},
		{event(t, "/", "p5", 5), adapter.BroadcastOptions{Rooms: []string{"s1"}}, true},
		{event(t, "/", "p6", 6), adapter.BroadcastOptions{Except: []string{"s1"}}, false},
		{event(t, "/", "p7", 7), adapter.BroadcastOptions{Rooms: []string{"other", "r"}}, true},
		{event(t, "/", "p8", []byte{8}), adapter.BroadcastOptions{Rooms: []string{"s1"}, Flags: adapter.Flags{Local: true}}, true},
		{event(t, "/", "p9", 9), adapter.BroadcastOptions{Rooms: []string{"r"}, Except: []string{"other"}}, true},
		{event(t, "/", "p10", "x"), adapter.BroadcastOptions{}, true},
	}
	var want []bc
	for _, b := range bcs {
		if err := a.Broadcast(ctx, b.pkt, b.opts); err != nil {
			t.Fatal(err)
		}
		if b.missed {
			want = append(want, b)
		}
	}
	// The observer gets p2, p3, p6, p7 and p10; with p10 in, all are.
	h.waitReceived(t, bcs[9].pkt, true, []*Socket{obs})

	r, err := a.RestoreSession("pid-1", o0)
	if err != nil || r == nil {
		t.Fatalf("RestoreSession = %v, %v; want the session", r, err)
	}
	checkSession(t, r.Session, sess)
	var names []string
	for _, p := range r.MissedPackets {
		n, _ := p.EventName()
		names = append(names, n)
	}
	var wantNames []string
	for _, b := range want {
		n, _ := b.pkt.EventName()
		wantNames = append(wantNames, n)
	}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("missed packets %v, want %v", names, wantNames)
	}
	seen := map[string]bool{o0: true}
	for i, p := range r.MissedPackets {
		off := checkPayload(t, "missed "+wantNames[i], want[i].pkt, *p, true)
		if seen[off] {
			t.Errorf("missed packet %s has offset %q, already used", wantNames[i], off)
		}
		seen[off] = true
		// The observer got some of them: with the same offset.
		if rs := received(obs, wantNames[i]); len(rs) == 1 {
			if o := checkPayload(t, "obs", want[i].pkt, rs[0].Packet, true); o != off {
				t.Errorf("missed packet %s has offset %q, delivered with %q", wantNames[i], off, o)
			}
		}
	}
}

func testRestoreUnknown(t *testing.T, h *harness) {
	nsp := h.cluster(t, 1)[0]
	a := nsp.Adapter()
	s1 := nsp.Connect("s1")
	s2 := nsp.Connect("s2")
	s3 := nsp.Connect("s3")
	o0 := h.offsetOf(t, a, s1, event(t, "/", "p0"), adapter.BroadcastOptions{})
	persist(t, a, s1, "pid-1")
	persist(t, a, s2, "pid-2")
	h.offsetOf(t, a, s3, event(t, "/", "p1"), adapter.BroadcastOptions{})
	for _, c := range []struct{ pid, offset string }{
		{"pid-unknown", o0},
		{"pid-1", o0 + "x"},
		{"pid-2", ""},
	} {
		r, err := a.RestoreSession(c.pid, c.offset)
		if r != nil || err != nil {
			t.Errorf("RestoreSession(%q, %q) = %+v, %v; want nil, nil", c.pid, c.offset, r, err)
		}
	}
}

func testExpiry(t *testing.T, h *harness) {
	const d = 300 * time.Millisecond
	nsp := h.clusterWith(t, ClusterConfig{Nodes: 1, Recovery: d}, "/")["/"][0]
	a := nsp.Adapter()
	s1 := nsp.Connect("s1")
	s2 := nsp.Connect("s2")
	obs := nsp.Connect("obs")
	start := time.Now()
	o0 := h.offsetOf(t, a, s1, event(t, "/", "p0"), adapter.BroadcastOptions{})
	persist(t, a, s1, "pid-1")
	persist(t, a, s2, "pid-2")
	persisted := time.Now()
	r, err := a.RestoreSession("pid-1", o0)
	if time.Since(start) < d && (r == nil || err != nil) {
		t.Errorf("RestoreSession before expiry = %v, %v; want the session", r, err)
	}
	time.Sleep(time.Until(persisted.Add(2 * d)))
	// A fresh offset: only the session has expired.
	o1 := h.offsetOf(t, a, obs, event(t, "/", "p1"), adapter.BroadcastOptions{})
	if r, err := a.RestoreSession("pid-2", o1); r != nil || err != nil {
		t.Errorf("RestoreSession after %v (recovery %v) = %+v, %v; want nil, nil", time.Since(start), d, r, err)
	}
}

// testDeliveryOrder checks that concurrent broadcasts reach a socket in
// the order of their offsets, so that a client that reconnects with its
// last offset misses nothing and gets nothing twice.
func testDeliveryOrder(t *testing.T, h *harness) {
	nsp := h.cluster(t, 1)[0]
	a := nsp.Adapter()
	s := nsp.Connect("s1")
	o0 := h.offsetOf(t, a, s, event(t, "/", "p0"), adapter.BroadcastOptions{})
	const goroutines, rounds = 8, 40
	ctx := h.ctx(t)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range rounds {
				pkt, err := parser.NewEvent("/", "c", g, i)
				if err == nil {
					err = a.Broadcast(ctx, pkt, adapter.BroadcastOptions{})
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	h.waitFor(t, func() bool { return len(received(s, "c")) == goroutines*rounds },
		func() string {
			return fmt.Sprintf("%d of %d broadcasts arrived", len(received(s, "c")), goroutines*rounds)
		})
	var delivered []string
	for _, r := range received(s, "c") {
		args, _ := parser.SplitArray(r.Packet.Data)
		var off string
		json.Unmarshal(args[len(args)-1], &off)
		delivered = append(delivered, off)
	}
	persist(t, a, s, "pid-1")
	r, err := a.RestoreSession("pid-1", o0)
	if err != nil || r == nil {
		t.Fatalf("RestoreSession = %v, %v", r, err)
	}
	var stored []string
	for _, p := range r.MissedPackets {
		args, _ := parser.SplitArray(p.Data)
		var off string
		json.Unmarshal(args[len(args)-1], &off)
		stored = append(stored, off)
	}
	if len(stored) != len(delivered) {
		t.Fatalf("%d missed packets, want %d", len(stored), len(delivered))
	}
	for i := range stored {
		if stored[i] != delivered[i] {
			t.Fatalf("broadcast %d reached the socket with offset %q, but the adapter replays %q in that place: a client that reconnects with its last offset would miss or repeat packets", i, delivered[i], stored[i])
		}
	}
}

// testRecoveryDisabled runs without Options.Recovery: sessions are not
// restored (and, as every case checks, broadcasts get no offset).
func testRecoveryDisabled(t *testing.T, h *harness) {
	nsp := h.cluster(t, 1)[0]
	a := nsp.Adapter()
	s := nsp.Connect("s1", "r")
	pkt := event(t, "/", "p0", 1)
	if err := a.Broadcast(h.ctx(t), pkt, adapter.BroadcastOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitReceived(t, pkt, false, []*Socket{s})
	persist(t, a, s, "pid-1")
	if err := a.Broadcast(h.ctx(t), event(t, "/", "p1"), adapter.BroadcastOptions{Rooms: []string{"r"}}); err != nil {
		t.Fatal(err)
	}
	for _, off := range []string{"", "0", "1-0"} {
		if r, err := a.RestoreSession("pid-1", off); r != nil {
			t.Errorf("RestoreSession(pid-1, %q) without recovery = %+v, %v; want nil", off, r, err)
		}
	}
}
