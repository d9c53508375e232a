// Package redis provides Socket.IO adapters over Redis pub/sub that are
// byte-compatible with the official Node.js adapters, so Herald nodes,
// Node.js socket.io nodes and emitters in any language can share one Redis:
//
//   - NewAdapter: the classic adapter (PUBLISH/PSUBSCRIBE), compatible with
//     @socket.io/redis-adapter 8.x createAdapter and @socket.io/redis-emitter.
//   - NewShardedAdapter: the sharded adapter (SPUBLISH/SSUBSCRIBE, Redis 7+),
//     compatible with @socket.io/redis-adapter 8.x createShardedAdapter.
//
// Both take two rueidis clients: one for commands (publishing, PUBSUB
// NUMSUB) and one from which the adapters of one factory (one server, all
// its namespaces, dynamic ones included) take one dedicated subscription
// connection per Redis node, so that a burst of incoming messages never
// delays publishing. Messages are handled in the order they arrive, by one
// goroutine per factory, so one sender's messages keep their order,
// whatever namespace, channel or pattern they travel on, as with the
// Node.js adapters' shared subscriber client. Call NewAdapter or
// NewShardedAdapter once per server: two servers sharing one factory would
// be counted as one node by PUBSUB NUMSUB. Dial creates both clients from
// a URL. Each works with a standalone Redis, Sentinel or Cluster (the
// client decides).
//
// Failures: when Redis goes away, broadcasts still reach this node's own
// sockets and Publish errors are returned; subscriptions are re-established
// by themselves when Redis comes back; cluster requests (FetchSockets,
// ServerSideEmit with acks, ...) fail with adapter.ErrTimeout after
// Config.RequestsTimeout. Pub/sub is at-most-once: messages published while
// a node is disconnected are lost to it.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Config configures the Redis adapters. The zero value is valid.
type Config struct {
	// Key is the channel prefix (key in the classic adapter, channelPrefix
	// in the sharded one). If empty, "socket.io" is used.
	Key string
	// RequestsTimeout bounds cluster requests: FetchSockets, ServerSideEmit
	// with acks, and broadcasts with acks without their own timeout. If
	// zero, 5s is used.
	RequestsTimeout time.Duration
	// PublishOnSpecificResponseChannel makes this node answer requests on
	// the requester's own response channel instead of the shared one
	// (classic adapter only; as in the Node.js option).
	PublishOnSpecificResponseChannel bool
	// SubscriptionMode selects the sharded adapter's subscriptions:
	// "dynamic" (default), "static" or "dynamic-private".
	SubscriptionMode string
	// Logger receives diagnostics. If nil, nothing is logged.
	Logger *slog.Logger
}

func (c *Config) key() string {
	if c.Key == "" {
		return "socket.io"
	}
	return c.Key
}

func (c *Config) requestsTimeout() time.Duration {
	if c.RequestsTimeout <= 0 {
		return 5 * time.Second
	}
	return c.RequestsTimeout
}

func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(discardHandler{})
	}
	return c.Logger
}

// Clients are the two connections an adapter uses.
type Clients struct {
	// Pub sends commands: PUBLISH, SPUBLISH, PUBSUB.
	Pub rueidis.Client
	// Sub carries the subscriptions.
	Sub rueidis.Client
}

// Close closes both clients.
func (c *Clients) Close() {
	c.Pub.Close()
	c.Sub.Close()
}

// Idle-connection checks (Dial): how often rueidis PINGs a connection that
// has received nothing, and how long a write or that PING may take.
const (
	keepAlive        = 10 * time.Second
	connWriteTimeout = 10 * time.Second
)

// Dial connects to Redis at url (redis://[user:password@]host:port[/db],
// rediss:// for TLS; a Cluster is detected by itself; Sentinel with
// ?master_set=NAME) and checks that the server takes writes: it fails with
// a clear error against a read-only replica.
func Dial(ctx context.Context, url string) (*Clients, error) {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis: bad URL %q: %w", url, err)
	}
	opt.DisableCache = true
	// One connection per client (auto-pipelined): rueidis would otherwise
	// spread commands over several, and one node's publishes to two
	// channels could then be reordered. Node.js adapters keep this order;
	// so does Herald (subscriptions: see subscribe.go).
	opt.PipelineMultiplex = -1
	// rueidis backs off up to 1s between retries; a short cap gets
	// commands through within tens of milliseconds once Redis answers
	// again (see docs/decisions.md).
	opt.RetryDelay = func(attempts int, _ rueidis.Completed, _ error) time.Duration {
		return min(time.Duration(attempts)*10*time.Millisecond, 50*time.Millisecond)
	}
	// rueidis PINGs each idle connection every Dialer.KeepAlive, 1 s by
	// default: an idle test node made 7 commands a second at rest (one per
	// connection, when each namespace still held its own subscription
	// connection), most of Redis's idle CPU with three nodes (bench S4). A
	// Redis that goes away is still noticed at once, its connections
	// closing; one that goes silent (a network partition) within keepAlive
	// + ConnWriteTimeout.
	if opt.Dialer.KeepAlive == 0 {
		opt.Dialer.KeepAlive = keepAlive
	}
	if opt.ConnWriteTimeout == 0 {
		opt.ConnWriteTimeout = connWriteTimeout
	}
	pub, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("redis: cannot connect to %s: %w", redactURL(url), err)
	}
	sub, err := rueidis.NewClient(opt)
	if err != nil {
		pub.Close()
		return nil, fmt.Errorf("redis: cannot connect to %s: %w", redactURL(url), err)
	}
	c := &Clients{Pub: pub, Sub: sub}
	if err := CheckWritable(ctx, pub); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// ErrReadOnlyReplica is returned (wrapped) when the Redis server is a
// replica: a replica accepts PUBLISH but delivers it only to its own
// subscribers, so nodes split across primary and replicas silently miss
// each other's messages.
var ErrReadOnlyReplica = errors.New("redis: server is a read-only replica")

// ErrClusterDown is returned (wrapped) when a Redis Cluster node reports
// that the cluster is not usable (cluster_state:fail): the node cannot
// reach a majority of the masters, or some hash slots have no master, so
// part of the pub/sub traffic would silently go nowhere.
var ErrClusterDown = errors.New("redis: cluster is down")

// CheckWritable verifies that every node the client talks to is a primary
// and, for a Redis Cluster, that every node sees a working cluster.
func CheckWritable(ctx context.Context, c rueidis.Client) error {
	if c.Mode() == rueidis.ClientModeCluster && len(c.Nodes()) == 0 {
		return fmt.Errorf("%w: no node serves any hash slot (cluster_state:fail); create or fix the cluster first (redis-cli --cluster check HOST:PORT)", ErrClusterDown)
	}
	for addr, node := range c.Nodes() {
		if err := checkClusterState(ctx, addr, node); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		role, err := node.Do(ctx, node.B().Role().Build()).ToArray()
		cancel()
		if err != nil {
			return fmt.Errorf("redis: cannot check the role of %s: %w", addr, err)
		}
		if len(role) == 0 {
			continue
		}
		name, _ := role[0].ToString()
		if name == "slave" || name == "replica" {
			if c.Mode() == rueidis.ClientModeCluster {
				continue // replicas of a cluster are expected; writes go to primaries
			}
			return fmt.Errorf("%w: %s; point --redis at the primary (or use Sentinel with ?master_set=NAME)", ErrReadOnlyReplica, addr)
		}
	}
	return nil
}

// checkClusterState asks a node for CLUSTER INFO; a node without cluster
// support answers with an error, which is fine.
func checkClusterState(ctx context.Context, addr string, node rueidis.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := node.Do(ctx, node.B().ClusterInfo().Build()).ToString()
	if err != nil {
		if _, isReply := rueidis.IsRedisErr(err); isReply {
			return nil // "cluster support disabled": a standalone server
		}
		return fmt.Errorf("redis: cannot check the cluster state of %s: %w", addr, err)
	}
	info = strings.TrimPrefix(info, "txt:") // RESP3 verbatim string
	for line := range strings.Lines(info) {
		if state, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster_state:"); ok && state != "ok" {
			return fmt.Errorf("%w: %s reports cluster_state:%s (it cannot reach a majority of the masters, or some hash slots have no master); fix the cluster first (redis-cli --cluster check %s)", ErrClusterDown, addr, state, addr)
		}
	}
	return nil
}

func redactURL(url string) string {
	if i := strings.Index(url, "@"); i >= 0 {
		if j := strings.Index(url, "://"); j >= 0 && j < i {
			return url[:j+3] + "***" + url[i:]
		}
	}
	return url
}

// discardHandler is a slog.Handler that drops everything.
type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }

// retryOnce runs a publish again once after a connection error (not a
// Redis error reply): after Redis restarts, an idle pooled connection still
// holds the dead socket and fails the first command sent on it. Publishes
// are not retried by the client itself.
func retryOnce(publish func() error) error {
	err := publish()
	if err == nil {
		return nil
	}
	if _, isReply := rueidis.IsRedisErr(err); isReply || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return publish()
}

// subscribers sums, over every node the client knows, the count that a
// PUBSUB NUMSUB or SHARDNUMSUB for one channel returns: one subscriber
// per node of the adapter serving the namespace.
func subscribers(ctx context.Context, c rueidis.Client, timeout time.Duration, numsub func(node rueidis.Client) rueidis.Completed) (int, error) {
	// rueidis retries read-only commands until the context ends: bound
	// the wait so a request fails while Redis is away instead of hanging.
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	total := 0
	for _, node := range c.Nodes() {
		cmd := numsub(node)
		name := cmd.Commands()[1] // read before Do, which recycles cmd
		res, err := node.Do(ctx, cmd).ToArray()
		if err != nil {
			return 0, fmt.Errorf("redis: PUBSUB %s: %w", name, err)
		}
		if len(res) >= 2 {
			n, _ := res[1].AsInt64()
			total += int(n)
		}
	}
	return total, nil
}
