package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
// goroutine, which loses that order between subscriptions. So an adapter
// keeps all its subscriptions on its own dedicated connection per Redis
// node, whose pub/sub hook rueidis calls on the connection's reading
// goroutine in arrival order, and re-establishes them itself when the
// connection fails.

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

// receiver holds an adapter's subscriptions: one dedicated connection per
// Redis node (one in all for a standalone Redis or Sentinel; in a Redis
// Cluster, the node that owns a shard channel's slot, and one fixed node
// for classic subscriptions, which are cluster-wide), and one handler
// goroutine that gets every message of every connection through one FIFO.
// A connection's messages thus reach the handler in the order Redis sent
// them.
type receiver struct {
	client rueidis.Client
	log    *slog.Logger
	handle func(rueidis.PubSubMessage)
	// intercept, if set, sees each message on the connection's goroutine
	// first and may consume it (subscription probes): confirming a
	// subscription must not wait behind the handler, which may itself be
	// the one waiting for the confirmation.
	intercept func(rueidis.PubSubMessage) bool

	ctx    context.Context
	cancel context.CancelFunc
	inbox  chan rueidis.PubSubMessage
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	ready   map[string]chan struct{} // probe name → closed once confirmed
	readyOK map[string]bool
	wanted  map[subKey]string    // subscription → address of the node carrying it
	conns   map[string]*nodeConn // node address → its connection
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

func newReceiver(client rueidis.Client, log *slog.Logger, handle func(rueidis.PubSubMessage)) *receiver {
	return &receiver{
		client:  client,
		log:     log,
		handle:  handle,
		inbox:   make(chan rueidis.PubSubMessage, 4096),
		ready:   make(map[string]chan struct{}),
		readyOK: make(map[string]bool),
		wanted:  make(map[subKey]string),
		conns:   make(map[string]*nodeConn),
	}
}

// start runs the handler goroutine until ctx ends or close.
func (r *receiver) start(ctx context.Context) {
	r.ctx, r.cancel = context.WithCancel(ctx)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			select {
			case m := <-r.inbox:
				r.handle(m)
			case <-r.ctx.Done():
				return
			}
		}
	}()
}

// deliver is the connections' pub/sub hook, called in arrival order on a
// connection's reading goroutine.
func (r *receiver) deliver(m rueidis.PubSubMessage) {
	if r.intercept != nil && r.intercept(m) {
		return
	}
	select {
	case r.inbox <- m:
	case <-r.ctx.Done():
	}
}

// cluster reports whether the client talks to a Redis Cluster.
func (r *receiver) cluster() bool { return r.client.Mode() == rueidis.ClientModeCluster }

// defaultNode is where a new subscription goes first: outside a Cluster
// the only node; in a Cluster the same fixed node as classic publishes
// (publishNode), and a shard channel then follows MOVED to its owner.
func (r *receiver) defaultNode() string {
	if !r.cluster() {
		return ""
	}
	return firstNode(r.client.Nodes())
}

// nodeClient returns the client of one node, or nil if the Cluster no
// longer lists it.
func (r *receiver) nodeClient(addr string) rueidis.Client {
	if !r.cluster() {
		return r.client
	}
	return r.client.Nodes()[addr]
}

// add subscribes (idempotently) and reports whether the subscriptions are
// live on return. If their connection is (re)connecting, add waits for it
// until ctx ends; the connection's loop subscribes them anyway once
// connected. An error is also a "not yet".
func (r *receiver) add(ctx context.Context, keys ...subKey) (live bool, err error) {
	live = true
	for _, k := range keys {
		l, e := r.place(ctx, k, "")
		live = live && l
		err = errors.Join(err, e)
	}
	return live, err
}

// place records that k is carried by the connection to addr ("" = where
// it is now, or the default node) and subscribes it there, following
// MOVED replies to the owner of a shard channel's slot.
func (r *receiver) place(ctx context.Context, k subKey, addr string) (bool, error) {
	for range 5 { // a redirection or two at most; more means a topology in flux
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return false, errClosed
		}
		if addr == "" {
			if cur, ok := r.wanted[k]; ok {
				addr = cur
			} else {
				addr = r.defaultNode()
			}
		}
		r.wanted[k] = addr
		nc := r.connLocked(addr)
		r.mu.Unlock()

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
// r.mu is held.
func (r *receiver) connLocked(addr string) *nodeConn {
	nc := r.conns[addr]
	if nc == nil {
		nc = &nodeConn{addr: addr, up: make(chan struct{})}
		r.conns[addr] = nc
		r.wg.Add(1)
		go r.run(nc)
	}
	return nc
}

// remove unsubscribes; a subscription not live is just forgotten.
func (r *receiver) remove(ctx context.Context, keys ...subKey) {
	for _, k := range keys {
		r.mu.Lock()
		addr, ok := r.wanted[k]
		delete(r.wanted, k)
		nc := r.conns[addr]
		r.mu.Unlock()
		if !ok || nc == nil {
			continue
		}
		nc.mu.Lock()
		if nc.dc != nil {
			nc.dc.Do(ctx, k.unsubscribe(nc.dc.B()))
		}
		nc.mu.Unlock()
	}
}

// run keeps one node's connection up until close: connect, resubscribe
// everything it carries, wait until it fails, again after a short backoff.
func (r *receiver) run(nc *nodeConn) {
	defer r.wg.Done()
	backoff := resubscribeMin
	missing := 0
	for r.ctx.Err() == nil {
		client := r.nodeClient(nc.addr)
		if client == nil {
			// The Cluster no longer lists this node: after a few looks,
			// hand its subscriptions to the nodes that own them now.
			if missing++; missing >= nodeGoneChecks {
				r.abandon(nc)
				return
			}
			r.sleep(topologyCheck)
			continue
		}
		missing = 0
		started := time.Now()
		dc, release := client.Dedicate()
		errs := dc.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: r.deliver})
		moved, err := r.resubscribe(nc, dc)
		for k, addr := range moved {
			r.wg.Add(1)
			go r.replace(k, addr)
		}
		if err == nil {
			err = r.watch(nc, errs)
		}
		nc.mu.Lock()
		if nc.dc != nil {
			nc.dc = nil
			nc.up = make(chan struct{})
		}
		nc.mu.Unlock()
		dc.Close()
		release()
		if r.ctx.Err() != nil {
			return
		}
		if time.Since(started) > 5*time.Second {
			backoff = resubscribeMin
		}
		r.log.Warn("redis: subscription connection lost, resubscribing", "node", nc.addr, "err", err, "retry_in", backoff)
		r.sleep(backoff)
		backoff = min(backoff*2, resubscribeMax)
	}
}

// replace moves a subscription that got MOVED during a resubscription.
// The caller has added it to r.wg.
func (r *receiver) replace(k subKey, addr string) {
	defer r.wg.Done()
	r.mu.Lock()
	_, still := r.wanted[k]
	r.mu.Unlock()
	if !still {
		return
	}
	if _, err := r.place(r.ctx, k, addr); err != nil && r.ctx.Err() == nil {
		r.log.Warn("redis: cannot move a subscription", "subscription", k.name, "to", addr, "err", err)
	}
}

// resubscribe subscribes everything nc carries on a fresh connection and
// makes it nc's. Shard channels whose slot moved are returned with their
// new owner.
func (r *receiver) resubscribe(nc *nodeConn, dc rueidis.DedicatedClient) (map[subKey]string, error) {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	r.mu.Lock()
	var keys []subKey
	for k, addr := range r.wanted {
		if addr == nc.addr {
			keys = append(keys, k)
		}
	}
	r.mu.Unlock()
	var moved map[subKey]string
	if len(keys) > 0 {
		cmds := make(rueidis.Commands, len(keys))
		for i, k := range keys {
			cmds[i] = k.subscribe(dc.B())
		}
		for i, res := range dc.DoMulti(r.ctx, cmds...) {
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

// watch waits until the connection fails, close, or the node stops being
// the one to use (a Sentinel promoted another; a Cluster dropped it).
func (r *receiver) watch(nc *nodeConn, errs <-chan error) error {
	node := firstNode(r.client.Nodes())
	tick := time.NewTicker(topologyCheck)
	defer tick.Stop()
	for {
		select {
		case err, ok := <-errs:
			if !ok || err == nil {
				err = errors.New("connection closed")
			}
			return err
		case <-r.ctx.Done():
			return r.ctx.Err()
		case <-tick.C:
			nodes := r.client.Nodes()
			if r.cluster() {
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
// anew (r.wg accounts for the caller, the node's loop).
func (r *receiver) abandon(nc *nodeConn) {
	r.mu.Lock()
	var keys []subKey
	for k, addr := range r.wanted {
		if addr == nc.addr {
			keys = append(keys, k)
			delete(r.wanted, k)
		}
	}
	if r.conns[nc.addr] == nc {
		delete(r.conns, nc.addr)
	}
	r.mu.Unlock()
	for _, k := range keys {
		if _, err := r.place(r.ctx, k, ""); err != nil && r.ctx.Err() == nil {
			r.log.Warn("redis: cannot move a subscription", "subscription", k.name, "err", err)
		}
	}
}

func (r *receiver) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.ctx.Done():
	}
}

// close unsubscribes everything (so server counts drop at once), closes
// the connections and waits for every goroutine.
func (r *receiver) close(ctx context.Context) {
	r.mu.Lock()
	if r.closed || r.cancel == nil {
		r.closed = true
		r.mu.Unlock()
		return
	}
	r.closed = true
	byConn := make(map[*nodeConn][]subKey)
	for k, addr := range r.wanted {
		if nc := r.conns[addr]; nc != nil {
			byConn[nc] = append(byConn[nc], k)
		}
	}
	r.mu.Unlock()
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
	r.cancel()
	r.wg.Wait()
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
