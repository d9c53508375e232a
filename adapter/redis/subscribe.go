package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/herald-rt/herald/adapter"
)

// Why one reader per connection: Redis delivers one publisher's messages
// to a subscriber connection in the order it processed them, whatever
// channel or pattern each matched, and the Node.js adapters rely on it.
// rueidis' Receive gives every subscription its own Go channel and
// goroutine, which loses that order between subscriptions. So Herald
// keeps all subscriptions on one dedicated connection per Redis
// node, whose pub/sub hook rueidis calls on the connection's reading
// goroutine in arrival order, and re-establishes them itself when the
// connection fails. That connection is shared by all the adapters of one
// Sub client (subHub), and each message is routed to the adapters that
// subscribed to its channel or pattern.

// subKind is the command family of a subscription.
type subKind uint8

const (
	channelSub subKind = iota // SUBSCRIBE
	patternSub                // PSUBSCRIBE
	shardSub                  // SSUBSCRIBE
)

// subKey names one subscription: a channel, a pattern or a shard channel.
type subKey struct {
	kind subKind
	name string
}

func (k subKey) subscribe(b rueidis.Builder) rueidis.Completed {
	switch k.kind {
	case patternSub:
		return b.Psubscribe().Pattern(k.name).Build()
	case shardSub:
		return b.Ssubscribe().Channel(k.name).Build()
	default:
		return b.Subscribe().Channel(k.name).Build()
	}
}

func (k subKey) unsubscribe(b rueidis.Builder) rueidis.Completed {
	switch k.kind {
	case patternSub:
		return b.Punsubscribe().Pattern(k.name).Build()
	case shardSub:
		return b.Sunsubscribe().Channel(k.name).Build()
	default:
		return b.Unsubscribe().Channel(k.name).Build()
	}
}

// Reconnection backoff of a subscription connection: short, so that
// subscriptions are back within tens of milliseconds of Redis answering
// again (see restart_test.go).
const (
	resubscribeMin = 10 * time.Millisecond
	resubscribeMax = 50 * time.Millisecond
	// nodeGoneChecks is how many consecutive looks at a Redis Cluster's
	// topology must miss a node before its subscriptions move elsewhere.
	nodeGoneChecks = 3
	// topologyCheck is how often a connection checks that its node is
	// still the one to talk to (a Sentinel failover, a Cluster change).
	topologyCheck = time.Second
)

// errClosed is returned by receiver methods after close.
var errClosed = fmt.Errorf("redis: subscriptions closed: %w", adapter.ErrClosed)

// receiver holds one adapter's (one namespace's) subscriptions and its
// message handler. The connections and the goroutine that calls the
// handlers are the subHub's, shared by the adapters of one factory.
type receiver struct {
	hubs   *subHubs
	handle func(rueidis.PubSubMessage)
	// intercept, if set, sees each message on the connection's goroutine
	// first and may consume it (subscription probes): confirming a
	// subscription must not wait behind the handler, which may itself be
	// the one waiting for the confirmation.
	intercept func(rueidis.PubSubMessage) bool

	hub    *subHub // set by start
	ctx    context.Context
	cancel context.CancelFunc

	// handling is held while handle runs (on the hub's goroutine), so
	// that close can wait for a call in progress; later ones see ctx done.
	handling sync.Mutex

	mu      sync.Mutex
	closed  bool
	ready   map[string]chan struct{} // probe name → closed once confirmed
	readyOK map[string]bool
}

func newReceiver(hubs *subHubs, handle func(rueidis.PubSubMessage)) *receiver {
	return &receiver{
		hubs:    hubs,
		handle:  handle,
		ready:   make(map[string]chan struct{}),
		readyOK: make(map[string]bool),
	}
}

// start joins the factory's hub; r's subscriptions are handled until ctx
// ends or close.
func (r *receiver) start(ctx context.Context) {
	r.ctx, r.cancel = context.WithCancel(ctx)
	r.hub = r.hubs.acquire()
}

// deliver is called by the hub in arrival order on a connection's reading
// goroutine. A full hub queue holds that connection back, as a busy event
// loop holds back a Node.js adapter's subscriber connection.
func (r *receiver) deliver(m rueidis.PubSubMessage) {
	if r.intercept != nil && r.intercept(m) {
		return
	}
	select {
	case r.hub.queue <- hubMessage{r, m}:
	case <-r.ctx.Done():
	}
}

// handleOne runs the handler on the hub's goroutine, unless r is closed.
func (r *receiver) handleOne(m rueidis.PubSubMessage) {
	r.handling.Lock()
	defer r.handling.Unlock()
	if r.ctx.Err() == nil {
		r.handle(m)
	}
}

// add subscribes (idempotently) and reports whether the subscriptions are
// live on return. If their connection is (re)connecting, add waits for it
// until ctx ends; the connection's loop subscribes them anyway once
// connected. An error is also a "not yet".
func (r *receiver) add(ctx context.Context, keys ...subKey) (live bool, err error) {
	r.mu.Lock()
	closed := r.closed || r.hub == nil
	r.mu.Unlock()
	if closed {
		return false, errClosed
	}
	return r.hub.add(ctx, r, keys...)
}

// remove unsubscribes; a subscription not live is just forgotten.
func (r *receiver) remove(ctx context.Context, keys ...subKey) {
	if r.hub != nil {
		r.hub.remove(ctx, r, keys...)
	}
}

// close drops every subscription of r (unsubscribing those no other
// adapter wants, so server counts drop at once), waits for a handler call
// in progress and leaves the hub. It must not be called from a handler.
func (r *receiver) close(ctx context.Context) {
	r.mu.Lock()
	if r.closed || r.cancel == nil {
		r.closed = true
		r.mu.Unlock()
		return
	}
	r.closed = true
	r.mu.Unlock()
	r.hub.removeOwner(ctx, r)
	r.cancel()
	r.handling.Lock() // a handler call in progress ends; none starts after cancel
	r.handling.Unlock()
	r.hubs.release(r.hub)
}

// expect (re)arms the probe name: waitReady(name) then waits for a new
// markReady(name).
func (r *receiver) expect(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ready[name] = make(chan struct{})
	r.readyOK[name] = false
}

// markReady records that a subscription delivered its probe message.
func (r *receiver) markReady(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ch, ok := r.ready[name]; ok && !r.readyOK[name] {
		r.readyOK[name] = true
		close(ch)
	}
}

// waitReady waits until every named probe has been confirmed, or ctx
// ends.
func (r *receiver) waitReady(ctx context.Context, names ...string) error {
	for _, n := range names {
		r.mu.Lock()
		ch := r.ready[n]
		r.mu.Unlock()
		if ch == nil {
			return fmt.Errorf("redis: no probe %q expected", n)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// subHub holds the subscription connections of one adapter factory (one
// server), shared by all its adapters (namespaces): one dedicated connection per
// Redis node (one in all for a standalone Redis or Sentinel; in a Redis
// Cluster, the node that owns a shard channel's slot, and one fixed node
// for classic subscriptions, which are cluster-wide). A process with many
// namespaces, dynamic ones included, thus holds a few Redis connections,
// not one per namespace, as with the Node.js adapters' shared subscriber
// client. Each message goes to the receivers that subscribed to its
// channel or pattern, through one queue and one goroutine: one sender's
// messages are handled in the order Redis sent them even across
// namespaces, as on Node.js's event loop.
type subHub struct {
	client rueidis.Client
	log    *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	queue  chan hubMessage

	// mu guards the maps. deliver only reads them (RLock), and never holds
	// it while handing a message to a receiver.
	mu     sync.RWMutex
	wanted map[subKey]*subState   // subscription → where, and who wants it
	byName map[string][]*receiver // channel or pattern → receivers (all kinds)
	conns  map[string]*nodeConn   // node address → its connection
}

// hubMessage is a message for one receiver.
type hubMessage struct {
	r *receiver
	m rueidis.PubSubMessage
}

// handleLoop calls the receivers' handlers in arrival order until the hub
// closes.
func (h *subHub) handleLoop() {
	defer h.wg.Done()
	for {
		select {
		case x := <-h.queue:
			x.r.handleOne(x.m)
		case <-h.ctx.Done():
			return
		}
	}
}

// subState is one subscription of a hub.
type subState struct {
	addr   string // node carrying it
	owners []*receiver
}

// nodeConn is the dedicated subscription connection to one Redis node.
type nodeConn struct {
	addr string // "" outside a Redis Cluster: the client's only node
	// mu is held while commands go out on dc, so that a reconnection's
	// resubscriptions and a new subscription never miss each other.
	mu sync.Mutex
	dc rueidis.DedicatedClient // nil while (re)connecting
	up chan struct{}           // closed once dc is set; replaced when it is lost
}

// subHubs hands out the subHub of one adapter factory (one server): the
// first adapter to start opens it, the last to close closes it. A hub per
// factory, not per Sub client, keeps two servers that share Clients
// (tests, several apps in a process) counted as two nodes by PUBSUB
// NUMSUB, which cluster requests rely on.
type subHubs struct {
	client rueidis.Client
	log    *slog.Logger

	mu   sync.Mutex
	hub  *subHub
	refs int
}

func newSubHubs(client rueidis.Client, log *slog.Logger) *subHubs {
	return &subHubs{client: client, log: log}
}

func (s *subHubs) acquire() *subHub {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hub == nil {
		h := &subHub{
			client: s.client,
			log:    s.log,
			wanted: make(map[subKey]*subState),
			byName: make(map[string][]*receiver),
			conns:  make(map[string]*nodeConn),
			queue:  make(chan hubMessage, 4096),
		}
		h.ctx, h.cancel = context.WithCancel(context.Background())
		h.wg.Add(1)
		go h.handleLoop()
		s.hub = h
	}
	s.refs++
	return s.hub
}

// release undoes an acquire; the last one closes the hub's connections
// and waits for its goroutines.
func (s *subHubs) release(h *subHub) {
	s.mu.Lock()
	s.refs--
	last := s.refs == 0
	if last {
		s.hub = nil
	}
	s.mu.Unlock()
	if last {
		h.cancel()
		h.wg.Wait()
	}
}

// deliver is the connections' pub/sub hook, called in arrival order on a
// connection's reading goroutine.
func (h *subHub) deliver(m rueidis.PubSubMessage) {
	name := m.Channel
	if m.Pattern != "" {
		name = m.Pattern
	}
	var buf [4]*receiver
	h.mu.RLock()
	to := append(buf[:0], h.byName[name]...)
	h.mu.RUnlock()
	for _, r := range to {
		r.deliver(m)
	}
}

// cluster reports whether the client talks to a Redis Cluster.
func (h *subHub) cluster() bool { return h.client.Mode() == rueidis.ClientModeCluster }

// defaultNode is where a new subscription goes first: outside a Cluster
// the only node; in a Cluster the same fixed node as classic publishes
// (publishNode), and a shard channel then follows MOVED to its owner.
func (h *subHub) defaultNode() string {
	if !h.cluster() {
		return ""
	}
	return firstNode(h.client.Nodes())
}

// nodeClient returns the client of one node, or nil if the Cluster no
// longer lists it.
func (h *subHub) nodeClient(addr string) rueidis.Client {
	if !h.cluster() {
		return h.client
	}
	return h.client.Nodes()[addr]
}

// add records r as an owner of keys and subscribes them; see receiver.add.
func (h *subHub) add(ctx context.Context, r *receiver, keys ...subKey) (live bool, err error) {
	live = true
	for _, k := range keys {
		h.mu.Lock()
		st := h.wanted[k]
		if st == nil {
			st = &subState{addr: h.defaultNode()}
			h.wanted[k] = st
		}
		if !slices.Contains(st.owners, r) {
			st.owners = append(st.owners, r)
			h.byName[k.name] = append(h.byName[k.name], r)
		}
		h.mu.Unlock()
		l, e := h.place(ctx, k, "")
		live = live && l
		err = errors.Join(err, e)
	}
	return live, err
}

// place subscribes k on the connection to addr ("" = where it is now) and
// records it there, following MOVED replies to the owner of a shard
// channel's slot. A k no longer wanted is left alone.
func (h *subHub) place(ctx context.Context, k subKey, addr string) (bool, error) {
	for range 5 { // a redirection or two at most; more means a topology in flux
		h.mu.Lock()
		st := h.wanted[k]
		if st == nil || h.ctx.Err() != nil {
			h.mu.Unlock()
			return false, errClosed
		}
		if addr == "" {
			addr = st.addr
		}
		st.addr = addr
		nc := h.connLocked(addr)
		h.mu.Unlock()

		nc.mu.Lock()
		dc, up := nc.dc, nc.up
		var err error
		if dc != nil {
			err = dc.Do(ctx, k.subscribe(dc.B())).Error()
		}
		nc.mu.Unlock()
		if dc == nil {
			select {
			case <-up:
				continue // connected: subscribe (again: harmless) to be sure
			case <-ctx.Done():
				return false, nil
			}
		}
		if err == nil {
			return true, nil
		}
		moved, ok := movedTo(err)
		if !ok {
			return false, err
		}
		addr = moved
	}
	return false, fmt.Errorf("redis: subscription %q keeps being redirected", k.name)
}

// connLocked returns the connection to addr, starting it if needed.
// h.mu is held.
func (h *subHub) connLocked(addr string) *nodeConn {
	nc := h.conns[addr]
	if nc == nil {
		nc = &nodeConn{addr: addr, up: make(chan struct{})}
		h.conns[addr] = nc
		h.wg.Add(1)
		go h.run(nc)
	}
	return nc
}

// dropOwnerLocked removes r from k's owners and reports whether k is now
// wanted by nobody (and forgotten). h.mu is held.
func (h *subHub) dropOwnerLocked(k subKey, r *receiver) (st *subState, unused bool) {
	st = h.wanted[k]
	if st == nil {
		return nil, false
	}
	if i := slices.Index(st.owners, r); i >= 0 {
		st.owners = slices.Delete(st.owners, i, i+1)
		names := h.byName[k.name]
		if j := slices.Index(names, r); j >= 0 {
			names = slices.Delete(names, j, j+1)
		}
		if len(names) == 0 {
			delete(h.byName, k.name)
		} else {
			h.byName[k.name] = names
		}
	}
	if len(st.owners) > 0 {
		return st, false
	}
	delete(h.wanted, k)
	return st, true
}

// remove drops r from keys' owners and unsubscribes those nobody wants.
func (h *subHub) remove(ctx context.Context, r *receiver, keys ...subKey) {
	for _, k := range keys {
		h.mu.Lock()
		st, unused := h.dropOwnerLocked(k, r)
		var nc *nodeConn
		if unused {
			nc = h.conns[st.addr]
		}
		h.mu.Unlock()
		if nc == nil {
			continue
		}
		nc.mu.Lock()
		if nc.dc != nil {
			nc.dc.Do(ctx, k.unsubscribe(nc.dc.B()))
		}
		nc.mu.Unlock()
	}
}

// removeOwner drops every subscription of r, unsubscribing in one round
// trip per connection those nobody else wants.
func (h *subHub) removeOwner(ctx context.Context, r *receiver) {
	h.mu.Lock()
	byConn := make(map[*nodeConn][]subKey)
	for k, st := range h.wanted {
		if !slices.Contains(st.owners, r) {
			continue
		}
		if _, unused := h.dropOwnerLocked(k, r); unused {
			if nc := h.conns[st.addr]; nc != nil {
				byConn[nc] = append(byConn[nc], k)
			}
		}
	}
	h.mu.Unlock()
	for nc, keys := range byConn {
		nc.mu.Lock()
		if nc.dc != nil {
			cmds := make(rueidis.Commands, len(keys))
			for i, k := range keys {
				cmds[i] = k.unsubscribe(nc.dc.B())
			}
			nc.dc.DoMulti(ctx, cmds...)
		}
		nc.mu.Unlock()
	}
}

// run keeps one node's connection up until the hub closes: connect,
// resubscribe everything it carries, wait until it fails, again after a
// short backoff.
func (h *subHub) run(nc *nodeConn) {
	defer h.wg.Done()
	backoff := resubscribeMin
	missing := 0
	for h.ctx.Err() == nil {
		client := h.nodeClient(nc.addr)
		if client == nil {
			// The Cluster no longer lists this node: after a few looks,
			// hand its subscriptions to the nodes that own them now.
			if missing++; missing >= nodeGoneChecks {
				h.abandon(nc)
				return
			}
			h.sleep(topologyCheck)
			continue
		}
		missing = 0
		started := time.Now()
		dc, release := client.Dedicate()
		errs := dc.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: h.deliver})
		moved, err := h.resubscribe(nc, dc)
		for k, addr := range moved {
			h.wg.Add(1)
			go h.replace(k, addr)
		}
		if err == nil {
			err = h.watch(nc, errs)
		}
		nc.mu.Lock()
		if nc.dc != nil {
			nc.dc = nil
			nc.up = make(chan struct{})
		}
		nc.mu.Unlock()
		dc.Close()
		release()
		if h.ctx.Err() != nil {
			return
		}
		if time.Since(started) > 5*time.Second {
			backoff = resubscribeMin
		}
		h.log.Warn("redis: subscription connection lost, resubscribing", "node", nc.addr, "err", err, "retry_in", backoff)
		h.sleep(backoff)
		backoff = min(backoff*2, resubscribeMax)
	}
}

// replace moves a subscription that got MOVED during a resubscription.
// The caller has added it to h.wg.
func (h *subHub) replace(k subKey, addr string) {
	defer h.wg.Done()
	if _, err := h.place(h.ctx, k, addr); err != nil && err != errClosed && h.ctx.Err() == nil {
		h.log.Warn("redis: cannot move a subscription", "subscription", k.name, "to", addr, "err", err)
	}
}

// resubscribe subscribes everything nc carries on a fresh connection and
// makes it nc's. Shard channels whose slot moved are returned with their
// new owner.
func (h *subHub) resubscribe(nc *nodeConn, dc rueidis.DedicatedClient) (map[subKey]string, error) {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	h.mu.RLock()
	var keys []subKey
	for k, st := range h.wanted {
		if st.addr == nc.addr {
			keys = append(keys, k)
		}
	}
	h.mu.RUnlock()
	var moved map[subKey]string
	if len(keys) > 0 {
		cmds := make(rueidis.Commands, len(keys))
		for i, k := range keys {
			cmds[i] = k.subscribe(dc.B())
		}
		for i, res := range dc.DoMulti(h.ctx, cmds...) {
			err := res.Error()
			if err == nil {
				continue
			}
			addr, ok := movedTo(err)
			if !ok {
				return moved, err
			}
			if moved == nil {
				moved = make(map[subKey]string)
			}
			moved[keys[i]] = addr
		}
	}
	nc.dc = dc
	close(nc.up)
	return moved, nil
}

// watch waits until the connection fails, the hub closes, or the node
// stops being the one to use (a Sentinel promoted another; a Cluster
// dropped it).
func (h *subHub) watch(nc *nodeConn, errs <-chan error) error {
	node := firstNode(h.client.Nodes())
	tick := time.NewTicker(topologyCheck)
	defer tick.Stop()
	for {
		select {
		case err, ok := <-errs:
			if !ok || err == nil {
				err = errors.New("connection closed")
			}
			return err
		case <-h.ctx.Done():
			return h.ctx.Err()
		case <-tick.C:
			nodes := h.client.Nodes()
			if h.cluster() {
				if _, ok := nodes[nc.addr]; !ok {
					return fmt.Errorf("node %s left the cluster", nc.addr)
				}
			} else if now := firstNode(nodes); now != node {
				return fmt.Errorf("primary moved from %s to %s", node, now)
			}
		}
	}
}

// abandon forgets a node the Cluster dropped and places its subscriptions
// anew (h.wg accounts for the caller, the node's loop).
func (h *subHub) abandon(nc *nodeConn) {
	h.mu.Lock()
	var keys []subKey
	node := h.defaultNode()
	for k, st := range h.wanted {
		if st.addr == nc.addr {
			keys = append(keys, k)
			st.addr = node
		}
	}
	if h.conns[nc.addr] == nc {
		delete(h.conns, nc.addr)
	}
	h.mu.Unlock()
	for _, k := range keys {
		if _, err := h.place(h.ctx, k, ""); err != nil && err != errClosed && h.ctx.Err() == nil {
			h.log.Warn("redis: cannot move a subscription", "subscription", k.name, "err", err)
		}
	}
}

func (h *subHub) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-h.ctx.Done():
	}
}

// movedTo returns the node a MOVED reply points to.
func movedTo(err error) (string, bool) {
	if re, ok := rueidis.IsRedisErr(err); ok {
		return re.IsMoved()
	}
	return "", false
}

// firstNode is the first address in sorted order: a choice every client of
// the same deployment makes alike.
func firstNode(nodes map[string]rueidis.Client) string {
	addrs := make([]string, 0, len(nodes))
	for a := range nodes {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	if len(addrs) == 0 {
		return ""
	}
	return addrs[0]
}
