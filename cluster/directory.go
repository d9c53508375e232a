package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/herald-rt/herald/engineio"
)

// ParsePeers parses a static peer list, "id=http://host:port,id2=...", into
// a map from node id to base URL.
func ParsePeers(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		id, raw, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("cluster: peer %q: want id=URL", item)
		}
		if err := engineio.ValidateNodeID(id); err != nil {
			return nil, fmt.Errorf("cluster: peer %q: %w", item, err)
		}
		if _, err := parseNodeURL(raw); err != nil {
			return nil, fmt.Errorf("cluster: peer %q: %w", item, err)
		}
		out[id] = raw
	}
	return out, nil
}

func parseNodeURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("node URL %q: want http://host:port or https://host:port", raw)
	}
	return u, nil
}

// peer is one node other nodes can forward to.
type peer struct {
	id       string
	url      *url.URL
	draining bool
}

// directory maps node ids to URLs: the static list first, then the
// registry, whose contents are cached and refreshed periodically and on a
// miss (at most once per minMissInterval, so requests naming made-up nodes
// cannot hammer Redis).
type directory struct {
	self   string
	static map[string]*peer
	reg    *Registry
	log    *slog.Logger

	refreshTimeout  time.Duration
	minMissInterval time.Duration

	mu            sync.RWMutex
	fromReg       map[string]*peer
	lastStart     time.Time     // when the last finished load started
	inflight      chan struct{} // closed when the running load ends
	inflightStart time.Time
}

func newDirectory(self string, static map[string]string, reg *Registry, log *slog.Logger) (*directory, error) {
	d := &directory{
		self: self, static: map[string]*peer{}, reg: reg, log: log,
		refreshTimeout: 2 * time.Second, minMissInterval: 250 * time.Millisecond,
		fromReg: map[string]*peer{},
	}
	for id, raw := range static {
		u, err := parseNodeURL(raw)
		if err != nil {
			return nil, fmt.Errorf("cluster: peer %s: %w", id, err)
		}
		d.static[id] = &peer{id: id, url: u}
	}
	return d, nil
}

// lookup returns the peer with the given id, reloading the registry once if
// it is unknown.
func (d *directory) lookup(ctx context.Context, id string) *peer {
	if p := d.static[id]; p != nil {
		return p
	}
	if d.reg == nil {
		return nil
	}
	d.mu.RLock()
	p := d.fromReg[id]
	d.mu.RUnlock()
	if p != nil {
		return p
	}
	d.refreshOnMiss(ctx)
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.fromReg[id]
}

// refreshOnMiss reloads the registry after a lookup missed: it returns once
// a load that started after the miss has finished (a node that registered
// just before the miss is then known). Loads for misses start at most once
// per minMissInterval, and concurrent callers share them, so requests naming
// made-up nodes cannot hammer Redis.
func (d *directory) refreshOnMiss(ctx context.Context) {
	if d.reg != nil {
		d.loadSince(ctx, time.Now(), d.minMissInterval)
	}
}

// refresh is the periodic reload.
func (d *directory) refresh(ctx context.Context) { d.loadSince(ctx, time.Now(), 0) }

// loadSince returns once a registry load that started at or after t has
// finished, starting one if needed, but not sooner than minGap after the
// previous one started. It gives up when ctx ends.
func (d *directory) loadSince(ctx context.Context, t time.Time, minGap time.Duration) {
	for {
		d.mu.Lock()
		if d.inflight == nil && !d.lastStart.Before(t) {
			d.mu.Unlock()
			return
		}
		if ch := d.inflight; ch != nil {
			started := d.inflightStart
			d.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
			if !started.Before(t) {
				return
			}
			continue
		}
		if wait := minGap - time.Since(d.lastStart); wait > 0 {
			d.mu.Unlock()
			timer := time.NewTimer(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				return
			}
			continue
		}
		ch := make(chan struct{})
		d.inflight, d.inflightStart = ch, time.Now()
		d.mu.Unlock()
		d.load()
		close(ch)
		return
	}
}

// load reads the registry into the cache; callers serialise it through
// loadSince.
func (d *directory) load() {
	// Detached from any caller: the shared load serves every waiter.
	rctx, cancel := context.WithTimeout(context.Background(), d.refreshTimeout)
	nodes, err := d.reg.Nodes(rctx)
	cancel()

	d.mu.Lock()
	defer d.mu.Unlock()
	d.lastStart, d.inflight = d.inflightStart, nil
	if err != nil {
		d.log.Warn("cluster: reading the node registry failed", "err", err)
		return
	}
	m := make(map[string]*peer, len(nodes))
	for _, n := range nodes {
		if n.URL == "" {
			continue // a node without an advertised URL cannot be forwarded to
		}
		u, err := parseNodeURL(n.URL)
		if err != nil {
			d.log.Warn("cluster: ignoring a registry entry", "node", n.ID, "err", err)
			continue
		}
		m[n.ID] = &peer{id: n.ID, url: u, draining: n.Draining}
	}
	d.fromReg = m
}

// others returns the nodes other than this one that are not known to be
// draining, sorted by id.
func (d *directory) others() []*peer {
	seen := map[string]bool{d.self: true}
	var out []*peer
	for id, p := range d.static {
		if !seen[id] {
			seen[id] = true
			out = append(out, p)
		}
	}
	d.mu.RLock()
	for id, p := range d.fromReg {
		if !seen[id] && !p.draining {
			seen[id] = true
			out = append(out, p)
		}
	}
	d.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}
