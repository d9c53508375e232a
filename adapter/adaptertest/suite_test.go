package adaptertest_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/adapter/adaptertest"
	"github.com/herald-rt/herald/parser"
)

func busCluster(bugs busBugs) adaptertest.NewCluster {
	return func(t *testing.T, cfg adaptertest.ClusterConfig) []adapter.Factory {
		return newBus(cfg.Nodes, cfg.Recovery, bugs)
	}
}

// TestBusConformance runs the whole suite, cluster cases included, on the
// toy cluster of bus_test.go.
func TestBusConformance(t *testing.T) {
	t.Run("NoRecovery", func(t *testing.T) {
		adaptertest.Run(t, busCluster(busBugs{}), adaptertest.Options{MaxNodes: 3})
	})
	t.Run("Recovery", func(t *testing.T) {
		adaptertest.Run(t, busCluster(busBugs{}), adaptertest.Options{MaxNodes: 3, Recovery: true})
	})
	t.Run("TwoNodes", func(t *testing.T) {
		adaptertest.Run(t, busCluster(busBugs{}), adaptertest.Options{MaxNodes: 2, Recovery: true})
	})
}

// broken wraps the in-memory adapter and breaks one behaviour.
type broken struct {
	adapter.Adapter
	nsp adapter.Namespace
	bug string
	mu  sync.Mutex
}

func (b *broken) Broadcast(ctx context.Context, pkt *parser.Packet, opts adapter.BroadcastOptions) error {
	switch b.bug {
	case "ignore-except":
		opts.Except = nil
	case "volatile-dropped":
		opts.Flags.Volatile = false
	case "room-by-room":
		if len(opts.Rooms) > 1 {
			for _, r := range opts.Rooms {
				o := opts
				o.Rooms = []string{r}
				if err := b.Adapter.Broadcast(ctx, pkt, o); err != nil {
					return err
				}
			}
			return nil
		}
	case "lock-across-deliver":
		b.mu.Lock()
		defer b.mu.Unlock()
	case "mutates-packet":
		defer func() { pkt.Data = adapter.AppendArg(pkt.Data, "x") }()
	}
	return b.Adapter.Broadcast(ctx, pkt, opts)
}

func (b *broken) BroadcastWithAck(ctx context.Context, pkt *parser.Packet, opts adapter.BroadcastOptions, onCount func(int), onAck func(adapter.Ack)) error {
	if b.bug == "no-client-count" {
		onCount = func(int) {}
	}
	return b.Adapter.BroadcastWithAck(ctx, pkt, opts, onCount, onAck)
}

func (b *broken) FetchSockets(ctx context.Context, opts adapter.BroadcastOptions) ([]adapter.SocketInfo, error) {
	if b.bug == "fetch-ignores-rooms" {
		opts.Rooms = nil
	}
	infos, err := b.Adapter.FetchSockets(ctx, opts)
	if b.bug == "fetch-no-data" {
		for i := range infos {
			infos[i].Data = json.RawMessage(`{}`)
		}
	}
	return infos, err
}

func (b *broken) DisconnectSockets(ctx context.Context, opts adapter.BroadcastOptions, close bool) error {
	if b.bug == "disconnect-no-close" {
		close = false
	}
	return b.Adapter.DisconnectSockets(ctx, opts, close)
}

func (b *broken) DelAll(id string) {
	if b.bug == "delall-keeps-rooms" {
		for _, r := range b.Adapter.SocketRooms(id) {
			if r != id {
				continue
			}
			b.Adapter.Del(id, r)
		}
		return
	}
	b.Adapter.DelAll(id)
}

func (b *broken) RestoreSession(pid, offset string) (*adapter.RestoredSession, error) {
	r, err := b.Adapter.RestoreSession(pid, offset)
	if b.bug == "restore-extra" && r != nil {
		p, _ := parser.NewEvent("/", "extra")
		r.MissedPackets = append(r.MissedPackets, p)
	}
	return r, err
}

func (b *broken) ServerSideEmit(ctx context.Context, data json.RawMessage, atts [][]byte, onAck func(adapter.Ack)) error {
	if b.bug == "sse-echo" {
		b.nsp.HandleServerSideEmit(data, atts, nil)
	}
	return b.Adapter.ServerSideEmit(ctx, data, atts, onAck)
}

func brokenMemory(bug string) adaptertest.NewCluster {
	return func(t *testing.T, cfg adaptertest.ClusterConfig) []adapter.Factory {
		rec := cfg.Recovery
		switch {
		case bug == "no-recovery":
			rec = 0
		case bug == "no-expiry" && rec > 0:
			rec = time.Hour
		}
		mem := adapter.NewMemory(adapter.MemoryConfig{Recovery: rec})
		return []adapter.Factory{func(nsp adapter.Namespace) (adapter.Adapter, error) {
			a, err := mem(nsp)
			return &broken{Adapter: a, nsp: nsp, bug: bug}, err
		}}
	}
}

// mutants are adapters with one bug each, and the cases that must catch
// it.
var mutants = map[string]struct {
	run   func(t *testing.T)
	fails []string
}{}

func init() {
	mem := func(bug string, recovery bool, fails ...string) {
		mutants["memory/"+bug] = struct {
			run   func(t *testing.T)
			fails []string
		}{func(t *testing.T) {
			adaptertest.Run(t, brokenMemory(bug), adaptertest.Options{MaxNodes: 1, Recovery: recovery, Timeout: time.Second})
		}, fails}
	}
	mem("ignore-except", false, "Node/BroadcastExcept", "Node/BroadcastNoTarget")
	mem("volatile-dropped", false, "Node/BroadcastFlags")
	mem("room-by-room", false, "Node/BroadcastRooms")
	mem("lock-across-deliver", false, "Node/ReentrantDeliver")
	mem("mutates-packet", false, "Node/BroadcastKeepsPacket")
	mem("no-client-count", false, "Node/BroadcastWithAck", "Node/BroadcastWithAckNoTarget")
	mem("fetch-ignores-rooms", false, "Node/FetchSockets")
	mem("fetch-no-data", false, "Node/FetchSockets")
	mem("disconnect-no-close", false, "Node/DisconnectSockets")
	mem("delall-keeps-rooms", false, "Node/Rooms", "Node/DisconnectSockets")
	mem("restore-extra", true, "Recovery/Restore")
	mem("no-recovery", true, "Recovery/Offsets", "Recovery/Restore", "Node/BroadcastAll")
	mem("no-expiry", true, "Recovery/Expiry")
	mem("sse-echo", false, "Node/ServerSideEmitNoPeers")
	bus := func(name string, bugs busBugs, fails ...string) {
		mutants["bus/"+name] = struct {
			run   func(t *testing.T)
			fails []string
		}{func(t *testing.T) {
			adaptertest.Run(t, busCluster(bugs), adaptertest.Options{MaxNodes: 3, Recovery: true, Timeout: time.Second})
		}, fails}
	}
	bus("local-leaks", busBugs{localLeaks: true}, "Cluster/BroadcastLocal")
	bus("remote-no-except", busBugs{remoteNoExcept: true}, "Cluster/Broadcast")
	bus("no-remote-count", busBugs{noRemoteCount: true}, "Cluster/BroadcastWithAck")
	bus("sse-to-self", busBugs{sseToSelf: true}, "Cluster/ServerSideEmit", "Cluster/ServerSideEmitWithAck", "Node/ServerSideEmitNoPeers")
	bus("fetch-local-only", busBugs{fetchLocalOnly: true}, "Cluster/FetchSockets", "Cluster/Close")
	bus("join-local-only", busBugs{joinLocalOnly: true}, "Cluster/AddSockets")
	bus("restore-local-only", busBugs{restoreLocalOnly: true}, "Cluster/RestoreOnOtherNode")
}

// TestMutant runs the mutant named by $ADAPTERTEST_MUTANT; TestSuiteCatchesBugs
// runs it in a child process and expects it to fail.
func TestMutant(t *testing.T) {
	name := os.Getenv("ADAPTERTEST_MUTANT")
	if name == "" {
		t.Skip("run by TestSuiteCatchesBugs")
	}
	mutants[name].run(t)
}

// TestSuiteCatchesBugs checks that the suite fails each mutant in the
// cases meant to catch its bug, and that the bug-free adapters pass.
func TestSuiteCatchesBugs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite in child processes")
	}
	failed := regexp.MustCompile(`--- FAIL: TestMutant/(?:\S+?/)??((?:Node|Recovery|Cluster)/\S+)`)
	for name, m := range mutants {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestMutant$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), "ADAPTERTEST_MUTANT="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed an adapter with bug %s", name)
			}
			got := map[string]bool{}
			for _, match := range failed.FindAllStringSubmatch(string(out), -1) {
				got[match[1]] = true
			}
			for _, want := range m.fails {
				if !got[want] {
					t.Errorf("bug %s: case %s did not fail; failed: %v\n%s", name, want, keys(got), tail(out))
				}
			}
		})
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func tail(b []byte) string {
	s := string(b)
	if len(s) > 3000 {
		s = "..." + s[len(s)-3000:]
	}
	return strings.TrimSpace(s)
}
