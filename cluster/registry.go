// Package cluster holds what Herald nodes know about each other: node
// identity, the node registry, the forwarding of a request to the node that
// owns its session (authenticated with the cluster secret), and the health
// endpoint balancers poll. See docs/clustering.md.
package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// NodeInfo is what a node publishes about itself in the registry.
type NodeInfo struct {
	ID   string `json:"id"`
	Addr string `json:"addr"` // where the node listens
	// URL is how other nodes reach this one (--advertise-url), e.g.
	// http://10.0.0.5:3000; forwarded requests go there.
	URL string `json:"url,omitempty"`
	// Draining is set once the node has stopped taking new sessions.
	Draining bool      `json:"draining,omitempty"`
	Sockets  int       `json:"sockets"` // open Engine.IO sessions
	Started  time.Time `json:"started"`
	Updated  time.Time `json:"updated"`
	Version  string    `json:"version,omitempty"`
}

// Registry is the node registry in Redis: one key per node,
// "<prefix>:node:<id>", holding its NodeInfo as JSON and expiring unless the
// node refreshes it. A node that dies drops out within one TTL.
type Registry struct {
	client rueidis.Client
	prefix string
}

// DefaultPrefix is the registry's key prefix unless configured otherwise.
const DefaultPrefix = "herald"

// NewRegistry returns the registry kept in the Redis that client reaches.
// An empty prefix means DefaultPrefix.
func NewRegistry(client rueidis.Client, prefix string) *Registry {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Registry{client: client, prefix: prefix}
}

func (r *Registry) key(id string) string { return r.prefix + ":node:" + id }

// Register writes info with the given time to live.
func (r *Registry) Register(ctx context.Context, info NodeInfo, ttl time.Duration) error {
	info.Updated = time.Now().UTC()
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	return r.client.Do(ctx, r.client.B().Set().Key(r.key(info.ID)).Value(string(b)).Px(ttl).Build()).Error()
}

// Deregister removes a node at once (on a clean shutdown).
func (r *Registry) Deregister(ctx context.Context, id string) error {
	return r.client.Do(ctx, r.client.B().Del().Key(r.key(id)).Build()).Error()
}

// Nodes lists the registered nodes, sorted by id. In a Redis Cluster every
// primary is scanned.
func (r *Registry) Nodes(ctx context.Context) ([]NodeInfo, error) {
	var out []NodeInfo
	seen := map[string]bool{}
	for _, node := range r.client.Nodes() {
		cursor := uint64(0)
		for {
			entry, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(r.prefix+":node:*").Count(1000).Build()).AsScanEntry()
			if err != nil {
				if strings.Contains(err.Error(), "READONLY") || strings.Contains(err.Error(), "MOVED") {
					break
				}
				return nil, fmt.Errorf("cluster: scanning the registry: %w", err)
			}
			for _, k := range entry.Elements {
				if seen[k] {
					continue
				}
				seen[k] = true
				v, err := r.client.Do(ctx, r.client.B().Get().Key(k).Build()).ToString()
				if rueidis.IsRedisNil(err) {
					continue // expired meanwhile
				}
				if err != nil {
					return nil, err
				}
				var info NodeInfo
				if json.Unmarshal([]byte(v), &info) == nil {
					out = append(out, info)
				}
			}
			cursor = entry.Cursor
			if cursor == 0 {
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b NodeInfo) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Heartbeat registers the node every interval (with a TTL of three
// intervals) until ctx ends, then deregisters it. info is called for each
// refresh. Failures are logged and retried at the next beat.
func (r *Registry) Heartbeat(ctx context.Context, interval time.Duration, info func() NodeInfo, log *slog.Logger) {
	ttl := 3 * interval
	beat := func() {
		bctx, cancel := context.WithTimeout(ctx, interval)
		defer cancel()
		if err := r.Register(bctx, info(), ttl); err != nil && log != nil {
			log.Warn("cluster: registry heartbeat failed", "err", err)
		}
	}
	beat()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			beat()
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			r.Deregister(dctx, info().ID)
			cancel()
			return
		}
	}
}
