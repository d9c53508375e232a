package adaptertest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/parser"
)

// bus is a toy cluster in one process, so that the suite's cluster cases
// run today: a sequencer that hands each message to the inbox goroutine of
// every adapter of the namespace, asynchronously and in one global order,
// like a pub/sub server; plus a shared log of broadcasts and sessions for
// recovery, like a Redis stream. Its adapters embed the in-memory adapter
// for their local bookkeeping.
type bus struct {
	recovery time.Duration
	bugs     busBugs

	mu       sync.Mutex
	members  []*busAdapter
	log      []logEntry
	seq      int
	sessions map[string]busSession
}

// busBugs break the toy on purpose, to check that the suite notices.
type busBugs struct {
	localLeaks       bool // Local broadcasts reach the other nodes
	remoteNoExcept   bool // other nodes ignore Except
	noRemoteCount    bool // other nodes do not report client counts
	sseToSelf        bool // server-side emits reach the sender too
	fetchLocalOnly   bool // FetchSockets does not ask the other nodes
	joinLocalOnly    bool // AddSockets applies on this node only
	restoreLocalOnly bool // sessions are kept per node
}

type logEntry struct {
	offset string
	at     time.Time
	nsp    string
	opts   adapter.BroadcastOptions
	pkt    *parser.Packet
}

type busSession struct {
	adapter.Session
	at   time.Time
	node int
}

func newBus(nodes int, recovery time.Duration, bugs busBugs) []adapter.Factory {
	b := &bus{recovery: recovery, bugs: bugs, sessions: map[string]busSession{}}
	out := make([]adapter.Factory, nodes)
	for i := range out {
		out[i] = func(nsp adapter.Namespace) (adapter.Adapter, error) {
			mem, err := adapter.NewMemory(adapter.MemoryConfig{})(nsp)
			if err != nil {
				return nil, err
			}
			a := &busAdapter{Memory: mem.(*adapter.Memory), bus: b, node: i, nsp: nsp, pending: map[int]*request{}}
			a.inbox.cond = sync.NewCond(&a.inbox.mu)
			go a.inbox.run()
			b.mu.Lock()
			b.members = append(b.members, a)
			b.mu.Unlock()
			return a, nil
		}
	}
	return out
}

// publishLocked queues f for every member of namespace nsp that match
// accepts, in the bus's one order.
func (b *bus) publishLocked(nsp string, match func(*busAdapter) bool, f func(*busAdapter)) {
	for _, m := range b.members {
		if m.nsp.Name() == nsp && match(m) {
			m.inbox.push(func() { f(m) })
		}
	}
}

func (b *bus) publish(nsp string, match func(*busAdapter) bool, f func(*busAdapter)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.publishLocked(nsp, match, f)
}

func (b *bus) count(nsp string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, m := range b.members {
		if m.nsp.Name() == nsp {
			n++
		}
	}
	return n
}

// inbox runs queued functions one at a time, in order. It never blocks a
// sender.
type inbox struct {
	mu     sync.Mutex
	cond   *sync.Cond
	q      []func()
	closed bool
}

func (i *inbox) push(f func()) {
	i.mu.Lock()
	if !i.closed {
		i.q = append(i.q, f)
		i.cond.Signal()
	}
	i.mu.Unlock()
}

func (i *inbox) run() {
	for {
		i.mu.Lock()
		for len(i.q) == 0 && !i.closed {
			i.cond.Wait()
		}
		if i.closed {
			i.mu.Unlock()
			return
		}
		f := i.q[0]
		i.q = i.q[1:]
		i.mu.Unlock()
		f()
	}
}

func (i *inbox) close() {
	i.mu.Lock()
	i.closed = true
	i.cond.Broadcast()
	i.mu.Unlock()
}

type busAdapter struct {
	*adapter.Memory
	bus   *bus
	node  int
	nsp   adapter.Namespace
	inbox inbox

	mu      sync.Mutex
	nextReq int
	pending map[int]*request
	closed  bool
}

type request struct {
	onCount func(int)
	onAck   func(adapter.Ack)
	onInfos func([]adapter.SocketInfo)
	done    chan struct{} // gets a value per answer for SSE and fetch
}

var _ adapter.Adapter = (*busAdapter)(nil)

func (a *busAdapter) newRequest(r *request) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.nextReq++
	a.pending[a.nextReq] = r
	return a.nextReq
}

func (a *busAdapter) request(id int) *request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pending[id]
}

// answer queues f on the requester's inbox: responses travel like
// messages.
func (a *busAdapter) answer(to *busAdapter, f func(*busAdapter)) {
	a.bus.publish(a.nsp.Name(), func(m *busAdapter) bool { return m == to }, f)
}

func self(a *busAdapter) func(*busAdapter) bool {
	return func(m *busAdapter) bool { return m == a }
}

func others(a *busAdapter) func(*busAdapter) bool {
	return func(m *busAdapter) bool { return m != a }
}

func everyone(*busAdapter) bool { return true }

// wire passes v through JSON, as a real adapter passes it through Redis.
func wire[T any](v T) T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

func (a *busAdapter) Broadcast(_ context.Context, pkt *parser.Packet, opts adapter.BroadcastOptions) error {
	b := a.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	cp := *pkt
	if b.recovery > 0 && pkt.Type.IsEvent() && !pkt.HasID && !opts.Flags.Volatile {
		b.seq++
		off := strconv.Itoa(b.seq)
		cp.Data = adapter.AppendArg(pkt.Data, off)
		b.log = append(b.log, logEntry{offset: off, at: time.Now(), nsp: a.nsp.Name(), opts: wire(opts), pkt: &cp})
	}
	match := everyone
	if opts.Flags.Local && !b.bugs.localLeaks {
		match = self(a)
	}
	sent := wire(opts)
	b.publishLocked(a.nsp.Name(), match, func(m *busAdapter) {
		o := sent
		if m != a && b.bugs.remoteNoExcept {
			o.Except = nil
		}
		m.BroadcastLocal(&cp, o)
	})
	return nil
}

func (a *busAdapter) BroadcastWithAck(_ context.Context, pkt *parser.Packet, opts adapter.BroadcastOptions, onCount func(int), onAck func(adapter.Ack)) error {
	id := a.newRequest(&request{onCount: onCount, onAck: onAck})
	match := everyone
	if opts.Flags.Local {
		match = self(a)
	}
	cp := *pkt
	sent := wire(opts)
	a.bus.publish(a.nsp.Name(), match, func(m *busAdapter) {
		m.Memory.BroadcastWithAck(context.Background(), &cp, sent,
			func(n int) {
				if m != a && a.bus.bugs.noRemoteCount {
					return
				}
				m.answer(a, func(*busAdapter) {
					if r := a.request(id); r != nil && r.onCount != nil {
						r.onCount(n)
					}
				})
			},
			func(ack adapter.Ack) {
				// Only the first argument travels, as in the Node.js adapters.
				var args []json.RawMessage
				json.Unmarshal(ack.Args, &args)
				first := json.RawMessage(`[]`)
				if len(args) > 0 {
					first = json.RawMessage("[" + string(args[0]) + "]")
				}
				m.answer(a, func(*busAdapter) {
					if r := a.request(id); r != nil && r.onAck != nil {
						r.onAck(adapter.Ack{Args: first})
					}
				})
			})
	})
	return nil
}

func (a *busAdapter) ServerCount(context.Context) (int, error) {
	return a.bus.count(a.nsp.Name()), nil
}

// gather sends a request to the other nodes and waits for one answer from
// each, or for ctx.
func (a *busAdapter) gather(ctx context.Context, r *request, ask func(m *busAdapter, id int)) error {
	r.done = make(chan struct{}, 64)
	id := a.newRequest(r)
	b := a.bus
	b.mu.Lock()
	want := 0
	for _, m := range b.members {
		if m.nsp.Name() == a.nsp.Name() && m != a {
			want++
		}
	}
	b.publishLocked(a.nsp.Name(), others(a), func(m *busAdapter) { ask(m, id) })
	b.mu.Unlock()
	for range want {
		select {
		case <-r.done:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", adapter.ErrTimeout, ctx.Err())
		}
	}
	return nil
}

func (a *busAdapter) SocketIDs(ctx context.Context, opts adapter.BroadcastOptions) ([]string, error) {
	infos, err := a.FetchSockets(ctx, opts)
	ids := make([]string, len(infos))
	for i, info := range infos {
		ids[i] = info.ID
	}
	return ids, err
}

func (a *busAdapter) FetchSockets(ctx context.Context, opts adapter.BroadcastOptions) ([]adapter.SocketInfo, error) {
	out, err := a.Memory.FetchSockets(ctx, opts)
	if err != nil || a.bus.bugs.fetchLocalOnly {
		return out, err
	}
	var mu sync.Mutex
	r := &request{onInfos: func(infos []adapter.SocketInfo) {
		mu.Lock()
		out = append(out, infos...)
		mu.Unlock()
	}}
	sent := wire(opts)
	err = a.gather(ctx, r, func(m *busAdapter, id int) {
		infos, _ := m.Memory.FetchSockets(context.Background(), sent)
		infos = wire(infos)
		m.answer(a, func(*busAdapter) {
			if r := a.request(id); r != nil {
				r.onInfos(infos)
				r.done <- struct{}{}
			}
		})
	})
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(out), err
}

func (a *busAdapter) everywhere(opts adapter.BroadcastOptions, local func(m *busAdapter)) {
	a.bus.publish(a.nsp.Name(), others(a), local)
	local(a)
}

func (a *busAdapter) AddSockets(_ context.Context, opts adapter.BroadcastOptions, rooms []string) error {
	sent := wire(opts)
	if a.bus.bugs.joinLocalOnly {
		return a.Memory.AddSockets(context.Background(), sent, rooms)
	}
	a.everywhere(opts, func(m *busAdapter) { m.Memory.AddSockets(context.Background(), sent, rooms) })
	return nil
}

func (a *busAdapter) DelSockets(_ context.Context, opts adapter.BroadcastOptions, rooms []string) error {
	sent := wire(opts)
	a.everywhere(opts, func(m *busAdapter) { m.Memory.DelSockets(context.Background(), sent, rooms) })
	return nil
}

func (a *busAdapter) DisconnectSockets(_ context.Context, opts adapter.BroadcastOptions, close bool) error {
	sent := wire(opts)
	a.everywhere(opts, func(m *busAdapter) { m.Memory.DisconnectSockets(context.Background(), sent, close) })
	return nil
}

func (a *busAdapter) ServerSideEmit(ctx context.Context, data json.RawMessage, atts [][]byte, onAck func(adapter.Ack)) error {
	data = slices.Clone(data)
	if a.bus.bugs.sseToSelf {
		a.inbox.push(func() { a.nsp.HandleServerSideEmit(data, atts, nil) })
	}
	if onAck == nil {
		a.bus.publish(a.nsp.Name(), others(a), func(m *busAdapter) { m.nsp.HandleServerSideEmit(data, atts, nil) })
		return nil
	}
	r := &request{onAck: onAck}
	return a.gather(ctx, r, func(m *busAdapter, id int) {
		var once sync.Once
		m.nsp.HandleServerSideEmit(data, atts, func(ack adapter.Ack) {
			once.Do(func() {
				m.answer(a, func(*busAdapter) {
					if r := a.request(id); r != nil {
						r.onAck(ack)
						r.done <- struct{}{}
					}
				})
			})
		})
	})
}

func (a *busAdapter) PersistSession(s adapter.Session) {
	b := a.bus
	if b.recovery <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sessions[s.PID] = busSession{Session: wire(s), at: time.Now(), node: a.node}
}

func (a *busAdapter) RestoreSession(pid, offset string) (*adapter.RestoredSession, error) {
	b := a.bus
	if b.recovery <= 0 {
		return nil, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.sessions[pid]
	delete(b.sessions, pid)
	if !ok || time.Since(s.at) > b.recovery || b.bugs.restoreLocalOnly && s.node != a.node {
		return nil, nil
	}
	i := slices.IndexFunc(b.log, func(e logEntry) bool { return e.offset == offset && e.nsp == a.nsp.Name() })
	if i < 0 {
		return nil, nil
	}
	out := &adapter.RestoredSession{Session: s.Session}
	for _, e := range b.log[i+1:] {
		if e.nsp == a.nsp.Name() && replay(e.opts, s.Rooms) {
			out.MissedPackets = append(out.MissedPackets, e.pkt)
		}
	}
	return out, nil
}

func replay(opts adapter.BroadcastOptions, rooms []string) bool {
	for _, r := range opts.Except {
		if slices.Contains(rooms, r) {
			return false
		}
	}
	if len(opts.Rooms) == 0 {
		return true
	}
	for _, r := range opts.Rooms {
		if slices.Contains(rooms, r) {
			return true
		}
	}
	return false
}

func (a *busAdapter) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return adapter.ErrClosed
	}
	a.closed = true
	a.mu.Unlock()
	b := a.bus
	b.mu.Lock()
	b.members = slices.DeleteFunc(b.members, func(m *busAdapter) bool { return m == a })
	b.mu.Unlock()
	a.inbox.close()
	return nil
}
