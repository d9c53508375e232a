package adapter_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/adapter/adaptertest"
	"github.com/herald-rt/herald/parser"
)

func newMemoryCluster(t *testing.T, cfg adaptertest.ClusterConfig) []adapter.Factory {
	if cfg.Nodes != 1 {
		t.Fatalf("the in-memory adapter has one node, asked for %d", cfg.Nodes)
	}
	return []adapter.Factory{adapter.NewMemory(adapter.MemoryConfig{Recovery: cfg.Recovery})}
}

func TestMemoryConformance(t *testing.T) {
	t.Run("NoRecovery", func(t *testing.T) {
		adaptertest.Run(t, newMemoryCluster, adaptertest.Options{MaxNodes: 1})
	})
	t.Run("Recovery", func(t *testing.T) {
		adaptertest.Run(t, newMemoryCluster, adaptertest.Options{MaxNodes: 1, Recovery: true})
	})
}

func TestAppendArg(t *testing.T) {
	for _, c := range []struct {
		in, s, want string
	}{
		{`[]`, "o", `["o"]`},
		{`[1]`, "o", `[1,"o"]`},
		{`["ev"]`, "o", `["ev","o"]`},
		{`[ 1 , 2 ]`, "o", `[ 1 , 2 ,"o"]`},
		{`[ ]`, "o", `[ "o"]`},
		{"[\n]", "o", "[\n\"o\"]"},
		{"[1,\t2\n]", "o", "[1,\t2\n,\"o\"]"},
		{`[1]` + "\n", "o", `[1,"o"]`},
		{`[[1,[2]],[]]`, "o", `[[1,[2]],[],"o"]`},
		{`[[]]`, "o", `[[],"o"]`},
		{`["a]b","]"]`, "o", `["a]b","]","o"]`},
		{`["ev",{"k":"]"}]`, "o", `["ev",{"k":"]"},"o"]`},
		{`["x"]`, `q"]\`, `["x","q\"]\\"]`},
		{`["x"]`, "", `["x",""]`},
		{`["x"]`, "lh2j3k.0", `["x","lh2j3k.0"]`},
	} {
		in := json.RawMessage(c.in)
		orig := slices.Clone(in)
		got := adapter.AppendArg(in, c.s)
		if string(got) != c.want {
			t.Errorf("AppendArg(%#q, %q) = %#q, want %#q", c.in, c.s, got, c.want)
		}
		if !slices.Equal(in, orig) {
			t.Errorf("AppendArg(%#q) modified its input", c.in)
		}
		var before, after []any
		if err := json.Unmarshal(got, &after); err != nil {
			t.Errorf("AppendArg(%#q, %q) = %#q: not JSON: %v", c.in, c.s, got, err)
			continue
		}
		json.Unmarshal(in, &before)
		if want := append(before, c.s); !reflect.DeepEqual(after, want) {
			t.Errorf("AppendArg(%#q, %q) decodes to %v, want %v", c.in, c.s, after, want)
		}
	}
}

// TestAppendArgNoAlias checks that the result never shares memory with the
// input, even when the input has spare capacity.
func TestAppendArgNoAlias(t *testing.T) {
	buf := make([]byte, 0, 64)
	buf = append(buf, `[1]`...)
	a := adapter.AppendArg(buf, "a")
	b := adapter.AppendArg(buf, "b")
	if string(a) != `[1,"a"]` || string(b) != `[1,"b"]` || string(buf) != `[1]` {
		t.Errorf("got %s, %s, input %s", a, b, buf)
	}
}

// fakeNsp is the least Namespace the in-memory adapter needs for offset
// tests: it keeps the data of every delivered packet.
type fakeNsp struct {
	adapter.Namespace
	data []json.RawMessage
}

func (f *fakeNsp) Name() string { return "/" }

func (f *fakeNsp) Deliver(pkt *parser.Packet, ids []string, _ adapter.Flags, _ func(adapter.Ack)) int {
	f.data = append(f.data, pkt.Data)
	return len(ids)
}

func lastArg(t *testing.T, data json.RawMessage) string {
	t.Helper()
	args, err := parser.SplitArray(data)
	if err != nil || len(args) == 0 {
		t.Fatalf("bad data %s", data)
	}
	var s string
	if err := json.Unmarshal(args[len(args)-1], &s); err != nil {
		t.Fatalf("last argument of %s is not a string", data)
	}
	return s
}

// TestMemoryOffsetOrder broadcasts many packets within a few milliseconds
// (so that offsets share their time part) and checks that offsets are
// unique and that restoring from each one returns exactly the packets
// after it, in order.
func TestMemoryOffsetOrder(t *testing.T) {
	nsp := &fakeNsp{}
	a, err := adapter.NewMemory(adapter.MemoryConfig{Recovery: 60e9})(nsp)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := range n {
		pkt, err := parser.NewEvent("/", "e", i)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Broadcast(t.Context(), pkt, adapter.BroadcastOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if len(nsp.data) != n {
		t.Fatalf("%d deliveries, want %d", len(nsp.data), n)
	}
	offsets := make([]string, n)
	seen := map[string]int{}
	for i, d := range nsp.data {
		offsets[i] = lastArg(t, d)
		if j, dup := seen[offsets[i]]; dup {
			t.Fatalf("packets %d and %d have the same offset %q", j, i, offsets[i])
		}
		seen[offsets[i]] = i
	}
	for _, from := range []int{0, 1, 9, 10, 11, 99, 100, n / 2, n - 2, n - 1} {
		pid := fmt.Sprint("pid-", from)
		a.PersistSession(adapter.Session{SID: "s", PID: pid})
		r, err := a.RestoreSession(pid, offsets[from])
		if err != nil || r == nil {
			t.Fatalf("RestoreSession from %d: %v, %v", from, r, err)
		}
		if len(r.MissedPackets) != n-1-from {
			t.Fatalf("from %d: %d missed packets, want %d", from, len(r.MissedPackets), n-1-from)
		}
		for k, p := range r.MissedPackets {
			i := from + 1 + k
			if got := lastArg(t, p.Data); got != offsets[i] {
				t.Fatalf("from %d: missed packet %d has offset %q, want %q", from, k, got, offsets[i])
			}
			var args []any
			json.Unmarshal(p.Data, &args)
			if len(args) != 3 || args[1] != float64(i) {
				t.Fatalf("from %d: missed packet %d is %s, want packet %d", from, k, p.Data, i)
			}
		}
	}
}

// panicky is a Namespace whose Deliver panics for the event "boom".
type panicky struct{ fakeNsp }

func (p *panicky) Deliver(pkt *parser.Packet, ids []string, f adapter.Flags, onAck func(adapter.Ack)) int {
	if name, _ := pkt.EventName(); name == "boom" {
		panic("boom")
	}
	return p.fakeNsp.Deliver(pkt, ids, f, onAck)
}

// TestMemoryDeliverPanic checks that a panic in Deliver does not leave the
// recovering adapter unable to deliver.
func TestMemoryDeliverPanic(t *testing.T) {
	nsp := &panicky{}
	a, _ := adapter.NewMemory(adapter.MemoryConfig{Recovery: 60e9})(nsp)
	boom, _ := parser.NewEvent("/", "boom")
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic in Deliver did not reach the caller")
			}
		}()
		a.Broadcast(t.Context(), boom, adapter.BroadcastOptions{})
	}()
	ok, _ := parser.NewEvent("/", "ok")
	a.Broadcast(t.Context(), ok, adapter.BroadcastOptions{})
	if len(nsp.data) != 1 {
		t.Fatalf("%d deliveries after a panic, want 1", len(nsp.data))
	}
}

// TestMemoryOwnRoom checks the room named by a socket's id, whose
// membership of that socket the in-memory adapter records apart from the
// other rooms: alone, shared with sockets that join it, left, and removed.
func TestMemoryOwnRoom(t *testing.T) {
	a := adapter.NewLocal(&fakeNsp{}, adapter.MemoryConfig{})
	ctx := t.Context()
	ids := func(opts adapter.BroadcastOptions) []string {
		t.Helper()
		got, err := a.SocketIDs(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		return got
	}
	check := func(what string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s = %q, want %q", what, got, want)
		}
	}
	a.AddAll("a", "a")
	a.AddAll("b", "b", "r")
	check("Rooms", a.Rooms(), []string{"a", "b", "r"})
	check("to a", ids(adapter.BroadcastOptions{Rooms: []string{"a"}}), []string{"a"})
	check("except a", ids(adapter.BroadcastOptions{Except: []string{"a"}}), []string{"b"})
	check("to a, b", ids(adapter.BroadcastOptions{Rooms: []string{"a", "b"}}), []string{"a", "b"})
	check("to a, b except b", ids(adapter.BroadcastOptions{Rooms: []string{"a", "b"}, Except: []string{"b"}}), []string{"a"})

	// b joins the room named a: both are in it.
	a.AddAll("b", "a")
	check("to a after b joined it", ids(adapter.BroadcastOptions{Rooms: []string{"a"}}), []string{"a", "b"})
	check("except a after b joined it", ids(adapter.BroadcastOptions{Except: []string{"a"}}), nil)
	check("Rooms", a.Rooms(), []string{"a", "b", "r"})
	check("b's rooms", a.SocketRooms("b"), []string{"a", "b", "r"})

	// a leaves its own room: b stays in it.
	a.Del("a", "a")
	check("to a after a left it", ids(adapter.BroadcastOptions{Rooms: []string{"a"}}), []string{"b"})
	check("a's rooms", a.SocketRooms("a"), []string{})
	if !a.HasRoom("a") {
		t.Error("HasRoom(a) = false with b in it")
	}
	a.Del("b", "a")
	if a.HasRoom("a") {
		t.Error("HasRoom(a) = true with nobody in it")
	}
	check("Rooms", a.Rooms(), []string{"b", "r"})
	check("every socket", ids(adapter.BroadcastOptions{}), []string{"a", "b"})

	// Back in its own room, then gone.
	a.AddAll("a", "a")
	check("to a after a joined again", ids(adapter.BroadcastOptions{Rooms: []string{"a"}}), []string{"a"})
	a.DelAll("a")
	a.DelAll("b")
	check("Rooms after DelAll", a.Rooms(), []string{})
	if a.HasRoom("a") || a.HasRoom("b") || a.HasRoom("r") {
		t.Error("a room is left after DelAll")
	}
}

// TestMemorySocketRooms joins and leaves rooms for sockets that start alike
// (the adapter shares the record of a socket in its own room only, or in
// none): a change to one socket must not show on another.
func TestMemorySocketRooms(t *testing.T) {
	a := adapter.NewLocal(&fakeNsp{}, adapter.MemoryConfig{})
	check := func(id string, want ...string) {
		t.Helper()
		if got := a.SocketRooms(id); !slices.Equal(got, want) {
			t.Errorf("SocketRooms(%s) = %q, want %q", id, got, want)
		}
	}
	for _, id := range []string{"a", "b", "c", "d"} {
		a.AddAll(id, id)
	}
	a.AddAll("e") // registered, in no room
	a.AddAll("f")
	a.AddAll("a", "r", "s", "a", "r")
	a.AddAll("e", "r")
	check("a", "a", "r", "s")
	check("b", "b")
	check("e", "r")
	check("f")
	a.Del("a", "s")
	a.Del("b", "b")
	a.Del("e", "r")
	a.Del("c", "nope")
	check("a", "a", "r")
	check("b")
	check("c", "c")
	check("d", "d")
	check("e")
	check("f")
	if got := a.SocketRooms("unknown"); got != nil {
		t.Errorf("SocketRooms(unknown) = %q, want nil", got)
	}
	ids, _ := a.SocketIDs(t.Context(), adapter.BroadcastOptions{Rooms: []string{"r"}})
	if !slices.Equal(ids, []string{"a"}) {
		t.Errorf("members of r = %q, want [a]", ids)
	}
	all, _ := a.SocketIDs(t.Context(), adapter.BroadcastOptions{})
	if slices.Sort(all); !slices.Equal(all, []string{"a", "b", "c", "d", "e", "f"}) {
		t.Errorf("every socket = %q", all)
	}
}
