package adaptertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/parser"
)

// ClusterConfig is what the suite asks of NewCluster.
type ClusterConfig struct {
	// Nodes is the number of nodes; at most Options.MaxNodes.
	Nodes int
	// Recovery, when positive, asks for connection-state recovery with
	// this maximum disconnection duration. It is zero unless
	// Options.Recovery is set.
	Recovery time.Duration
}

// NewCluster builds a fresh cluster of cfg.Nodes nodes and returns one
// Factory per node. The nodes of one call share their cluster (one Redis
// key prefix, say) and nothing with the nodes of any other call. Each
// Factory is called once per namespace of the case. Resources should be
// released with t.Cleanup; the suite closes every adapter it creates.
type NewCluster func(t *testing.T, cfg ClusterConfig) []adapter.Factory

// Options describe what the adapter under test supports.
type Options struct {
	// MaxNodes is the largest cluster NewCluster can build. With 0 or 1 the
	// cluster cases are skipped; the single-node cases always run.
	MaxNodes int
	// Recovery runs every case with connection-state recovery on (the
	// adapter appends offsets to stored broadcasts, as socket.io's
	// SessionAwareAdapter), plus the recovery cases. Without it the suite
	// checks that broadcasts are not modified and that sessions are not
	// restored.
	Recovery bool
	// Timeout bounds each wait for asynchronous cluster traffic. Zero
	// means 5 seconds.
	Timeout time.Duration
}

// recoveryDuration is the maximum disconnection duration of the cases
// that do not test expiry.
const recoveryDuration = 2 * time.Minute

// Run runs the conformance suite as subtests of t. Cases are grouped as
// Node/... (one node), Recovery/... and Cluster/... (several nodes).
func Run(t *testing.T, newCluster NewCluster, opts Options) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	h := &harness{newCluster: newCluster, opts: opts}
	if opts.Recovery {
		h.recovery = recoveryDuration
	}
	t.Run("Node", func(t *testing.T) {
		for _, c := range nodeCases {
			t.Run(c.name, func(t *testing.T) { c.run(t, h) })
		}
	})
	t.Run("Recovery", func(t *testing.T) {
		if !opts.Recovery {
			t.Run("Disabled", func(t *testing.T) { testRecoveryDisabled(t, h) })
			return
		}
		for _, c := range recoveryCases {
			t.Run(c.name, func(t *testing.T) { c.run(t, h) })
		}
	})
	t.Run("Cluster", func(t *testing.T) {
		if opts.MaxNodes < 2 {
			t.Skipf("the adapter supports %d node(s)", max(opts.MaxNodes, 1))
		}
		for _, c := range clusterCases {
			t.Run(c.name, func(t *testing.T) {
				if c.recovery && !opts.Recovery {
					t.Skip("recovery is not supported")
				}
				c.run(t, h)
			})
		}
	})
}

type testCase struct {
	name     string
	run      func(t *testing.T, h *harness)
	recovery bool // cluster cases that need Options.Recovery
}

type harness struct {
	newCluster NewCluster
	opts       Options
	recovery   time.Duration // of the cluster built by default
}

// nodes returns the size of the clusters of the cluster cases: 3 when the
// adapter allows it (so a node sees more than one peer), else 2.
func (h *harness) nodes() int { return min(h.opts.MaxNodes, 3) }

// cluster builds a cluster of n nodes with h's recovery setting and
// attaches one fake namespace per node, named "/".
func (h *harness) cluster(t *testing.T, n int) []*Namespace {
	t.Helper()
	return h.clusterWith(t, ClusterConfig{Nodes: n, Recovery: h.recovery}, "/")["/"]
}

// clusterWith builds a cluster and attaches namespaces names on every
// node. With several nodes it waits until every adapter counts them all.
func (h *harness) clusterWith(t *testing.T, cfg ClusterConfig, names ...string) map[string][]*Namespace {
	t.Helper()
	factories := h.newCluster(t, cfg)
	if len(factories) != cfg.Nodes {
		t.Fatalf("NewCluster(%+v) returned %d factories, want %d", cfg, len(factories), cfg.Nodes)
	}
	out := make(map[string][]*Namespace, len(names))
	for _, name := range names {
		for i, f := range factories {
			nsp := NewNamespace(name, i)
			a, err := nsp.Attach(f)
			if err != nil {
				t.Fatalf("node %d: factory for %q: %v", i, name, err)
			}
			t.Cleanup(func() { a.Close() })
			out[name] = append(out[name], nsp)
		}
	}
	if cfg.Nodes > 1 {
		for _, name := range names {
			for _, nsp := range out[name] {
				h.waitServerCount(t, nsp, cfg.Nodes)
			}
		}
	}
	return out
}

func (h *harness) waitServerCount(t *testing.T, nsp *Namespace, want int) {
	t.Helper()
	var got int
	var err error
	h.waitFor(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), h.opts.Timeout)
		defer cancel()
		got, err = nsp.Adapter().ServerCount(ctx)
		return err == nil && got == want
	}, func() string {
		return fmt.Sprintf("node %d %q: ServerCount = %d, %v; want %d", nsp.Node(), nsp.Name(), got, err, want)
	})
}

// waitFor polls cond until it holds, failing the test with msg() after
// Options.Timeout.
func (h *harness) waitFor(t *testing.T, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(h.opts.Timeout)
	for wait := time.Millisecond; !cond(); wait = min(2*wait, 20*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %s", h.opts.Timeout, msg())
		}
		time.Sleep(wait)
	}
}

func (h *harness) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// expectOffset reports whether a broadcast of pkt with flags is one that a
// recovering adapter stores and marks with an offset.
func (h *harness) expectOffset(pkt *parser.Packet, flags adapter.Flags, withAck bool) bool {
	return h.recovery > 0 && pkt.Type.IsEvent() && !pkt.HasID && !flags.Volatile && !withAck
}

// event returns an EVENT packet ["name", args...] for namespace nsp.
func event(t *testing.T, nsp, name string, args ...any) *parser.Packet {
	t.Helper()
	p, err := parser.NewEvent(nsp, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// received returns the packets named name that s got.
func received(s *Socket, name string) []Received {
	var out []Received
	for _, r := range s.Received() {
		if n, _ := r.Packet.EventName(); n == name {
			out = append(out, r)
		}
	}
	return out
}

// got reports whether s got exactly one event named name.
func got(s *Socket, name string) bool { return len(received(s, name)) == 1 }

// waitReceived waits until every socket of want has the event name, then
// checks that each of them got it exactly once, with the payload of sent
// (plus an offset when withOffset), and that no socket of others got it.
func (h *harness) waitReceived(t *testing.T, sent *parser.Packet, withOffset bool, want []*Socket, others ...*Socket) []Received {
	t.Helper()
	name, _ := sent.EventName()
	h.waitFor(t, func() bool {
		for _, s := range want {
			if len(received(s, name)) == 0 {
				return false
			}
		}
		return true
	}, func() string {
		var missing []string
		for _, s := range want {
			if len(received(s, name)) == 0 {
				missing = append(missing, s.ID())
			}
		}
		return fmt.Sprintf("event %q never reached %v", name, missing)
	})
	var out []Received
	for _, s := range want {
		rs := received(s, name)
		if len(rs) != 1 {
			t.Errorf("socket %s got event %q %d times, want once", s.ID(), name, len(rs))
		}
		checkPayload(t, s.ID(), sent, rs[0].Packet, withOffset)
		out = append(out, rs[0])
	}
	for _, s := range others {
		if n := len(received(s, name)); n != 0 {
			t.Errorf("socket %s got event %q %d times, want never", s.ID(), name, n)
		}
	}
	return out
}

// checkPayload checks that got carries the arguments of sent and its
// attachments, and with withOffset one more string argument: the offset.
// It returns the offset.
func checkPayload(t *testing.T, who string, sent *parser.Packet, got parser.Packet, withOffset bool) string {
	t.Helper()
	if !got.Type.IsEvent() {
		t.Errorf("%s: packet type %v, want an event", who, got.Type)
	}
	if got.HasID != sent.HasID {
		t.Errorf("%s: packet HasID = %v, want %v", who, got.HasID, sent.HasID)
	}
	want, err := parser.SplitArray(sent.Data)
	if err != nil {
		t.Fatalf("%s: sent data %s: %v", who, sent.Data, err)
	}
	args, err := parser.SplitArray(got.Data)
	if err != nil {
		t.Errorf("%s: delivered data %s is not a JSON array: %v", who, got.Data, err)
		return ""
	}
	offset := ""
	if withOffset {
		if len(args) != len(want)+1 {
			t.Errorf("%s: delivered %s, want %s plus an offset argument", who, got.Data, sent.Data)
			return ""
		}
		if err := json.Unmarshal(args[len(args)-1], &offset); err != nil || offset == "" {
			t.Errorf("%s: delivered %s: the last argument is not a non-empty string offset", who, got.Data)
		}
		args = args[:len(args)-1]
	}
	if len(args) != len(want) {
		t.Errorf("%s: delivered %s, want %s", who, got.Data, sent.Data)
		return offset
	}
	for i := range want {
		if !jsonEqual(args[i], want[i]) {
			t.Errorf("%s: delivered %s, want %s (argument %d differs)", who, got.Data, sent.Data, i)
			break
		}
	}
	if len(got.Attachments) != len(sent.Attachments) {
		t.Errorf("%s: %d attachments, want %d", who, len(got.Attachments), len(sent.Attachments))
	} else {
		for i := range sent.Attachments {
			if !bytes.Equal(got.Attachments[i], sent.Attachments[i]) {
				t.Errorf("%s: attachment %d = %x, want %x", who, i, got.Attachments[i], sent.Attachments[i])
			}
		}
	}
	return offset
}

// jsonEqual reports whether a and b hold the same JSON value.
func jsonEqual(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// firstArg returns the first element of the JSON array args, decoded.
func firstArg(args json.RawMessage) any {
	var v []any
	if json.Unmarshal(args, &v) != nil || len(v) == 0 {
		return nil
	}
	return v[0]
}

// sorted returns a sorted copy of s, with nil for an empty s.
func sorted(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// sameSet reports whether a and b hold the same strings, duplicates
// counted.
func sameSet(a, b []string) bool { return slices.Equal(sorted(a), sorted(b)) }

func ids(socks ...*Socket) []string {
	out := make([]string, len(socks))
	for i, s := range socks {
		out[i] = s.ID()
	}
	return out
}

func infoIDs(infos []adapter.SocketInfo) []string {
	out := make([]string, len(infos))
	for i, s := range infos {
		out[i] = s.ID
	}
	return out
}

// checkInfos checks that infos describe exactly the sockets want (in any
// order), each as its Info method does.
func checkInfos(t *testing.T, infos []adapter.SocketInfo, want ...*Socket) {
	t.Helper()
	if !sameSet(infoIDs(infos), ids(want...)) {
		t.Errorf("FetchSockets returned %v, want %v", sorted(infoIDs(infos)), sorted(ids(want...)))
		return
	}
	for _, s := range want {
		i := slices.IndexFunc(infos, func(in adapter.SocketInfo) bool { return in.ID == s.ID() })
		checkInfo(t, infos[i], s.Info())
	}
}

func checkInfo(t *testing.T, got, want adapter.SocketInfo) {
	t.Helper()
	var diffs []string
	if !sameSet(got.Rooms, want.Rooms) {
		diffs = append(diffs, fmt.Sprintf("rooms %v, want %v", sorted(got.Rooms), sorted(want.Rooms)))
	}
	if !jsonEqual(got.Data, want.Data) {
		diffs = append(diffs, fmt.Sprintf("data %s, want %s", got.Data, want.Data))
	}
	gh, wh := got.Handshake, want.Handshake
	if !jsonEqual(gh.Auth, wh.Auth) {
		diffs = append(diffs, fmt.Sprintf("handshake auth %s, want %s", gh.Auth, wh.Auth))
	}
	gh.Auth, wh.Auth = nil, nil
	if !reflect.DeepEqual(gh, wh) {
		diffs = append(diffs, fmt.Sprintf("handshake %+v, want %+v", gh, wh))
	}
	if len(diffs) > 0 {
		t.Errorf("FetchSockets: socket %s: %s", want.ID, strings.Join(diffs, "; "))
	}
}

func checkRooms(t *testing.T, a adapter.Adapter, id string, want ...string) {
	t.Helper()
	if got := a.SocketRooms(id); !sameSet(got, want) {
		t.Errorf("SocketRooms(%q) = %v, want %v", id, sorted(got), sorted(want))
	}
}
