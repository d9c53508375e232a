package emitter

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/redis/rueidis"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/internal/clusterwire"
	"github.com/herald-rt/herald/parser"
)

// Config configures an Emitter. The zero value is valid: the classic
// adapter's protocol with the channel prefix "socket.io".
type Config struct {
	// Key is the channel prefix the nodes use: the key option of the
	// classic adapter, channelPrefix of the sharded one, Config.Key of
	// Herald's adapters. If empty, "socket.io" is used.
	Key string
	// Sharded selects the sharded adapter's protocol (ClusterAdapter
	// messages sent with SPUBLISH, Redis 7 or later) instead of the classic
	// one. It must match the nodes' adapter: classic nodes never see
	// SPUBLISHed messages, and sharded nodes never see PUBLISHed ones.
	Sharded bool
	// SubscriptionMode is the sharded nodes' subscriptionMode, which
	// decides where a broadcast to a single room goes: "dynamic" (the
	// default) and "dynamic-private" use the room's own channel where the
	// nodes subscribe to it; "static" always uses the namespace's main
	// channel. "static" reaches nodes in any mode, at the cost of every
	// node receiving every broadcast. Ignored in classic mode. Any other
	// value makes every operation fail.
	SubscriptionMode string
}

// ErrReservedEvent is returned (wrapped) for an event name that Socket.IO
// reserves: connect, connect_error, disconnect, disconnecting,
// newListener, removeListener; for server-side emits also connection and
// new_namespace, which a Node.js namespace would treat as its own events.
var ErrReservedEvent = errors.New("emitter: reserved event name")

// ErrAckNotSupported is returned (wrapped) when an argument is a function:
// an emitter publishes and returns, it cannot receive acknowledgements.
var ErrAckNotSupported = errors.New("emitter: acknowledgements are not supported")

// Emitter publishes to the nodes serving one namespace, optionally
// restricted to rooms. Its methods that narrow the targets (To, In,
// Except) or set flags (Volatile, Compress) return a new Emitter and leave
// the receiver unchanged, so a configured Emitter can be kept and reused.
// An Emitter is safe for concurrent use.
type Emitter struct {
	c      *core
	nsp    string
	rooms  []string
	except []string
	flags  adapter.Flags
}

// core is what every Emitter derived from one New shares.
type core struct {
	client  rueidis.Client
	key     string
	sharded bool
	mode    clusterwire.SubscriptionMode
	err     error // a configuration error, returned by every operation
	// publish sends msg on channel (PUBLISH, or SPUBLISH when sharded).
	// Tests replace it to capture the bytes.
	publish func(ctx context.Context, channel string, msg []byte) error
}

// New returns an Emitter for the main namespace "/" that publishes with
// client. The client is the caller's: the Emitter never closes it. It can
// be any rueidis client (standalone, Sentinel or Cluster); the emitter
// only sends PUBLISH/SPUBLISH and PUBSUB commands.
func New(client rueidis.Client, cfg Config) *Emitter {
	e := newEmitter(cfg)
	e.c.client = client
	e.c.publish = e.c.redisPublish
	if client == nil && e.c.err == nil {
		e.c.err = errors.New("emitter: nil Redis client")
	}
	return e
}

// newEmitter returns an Emitter without its client and publish function.
func newEmitter(cfg Config) *Emitter {
	c := &core{key: cfg.Key, sharded: cfg.Sharded}
	if c.key == "" {
		c.key = clusterwire.DefaultKey
	}
	switch cfg.SubscriptionMode {
	case "", "dynamic":
		c.mode = clusterwire.Dynamic
	case "static":
		c.mode = clusterwire.Static
	case "dynamic-private":
		c.mode = clusterwire.DynamicPrivate
	default:
		c.err = fmt.Errorf("emitter: unknown subscription mode %q (want dynamic, static or dynamic-private)", cfg.SubscriptionMode)
	}
	return &Emitter{c: c, nsp: "/"}
}

func (c *core) redisPublish(ctx context.Context, channel string, msg []byte) error {
	var cmd rueidis.Completed
	if c.sharded {
		cmd = c.client.B().Spublish().Channel(channel).Message(rueidis.BinaryString(msg)).Build()
	} else {
		cmd = c.client.B().Publish().Channel(channel).Message(rueidis.BinaryString(msg)).Build()
	}
	if err := c.client.Do(ctx, cmd).Error(); err != nil {
		return fmt.Errorf("emitter: publish on %s: %w", channel, err)
	}
	return nil
}

// Of returns an Emitter for namespace nsp ("/" is added in front if
// missing; "" is "/"), with no rooms, exceptions or flags, as
// @socket.io/redis-emitter's of does.
func (e *Emitter) Of(nsp string) *Emitter {
	if !strings.HasPrefix(nsp, "/") {
		nsp = "/" + nsp
	}
	return &Emitter{c: e.c, nsp: nsp}
}

// Namespace returns the namespace the Emitter publishes to.
func (e *Emitter) Namespace() string { return e.nsp }

func (e *Emitter) clone() *Emitter {
	cp := *e
	cp.rooms = slices.Clip(cp.rooms)
	cp.except = slices.Clip(cp.except)
	return &cp
}

// addUnique appends the names not already in list (rooms are a set).
func addUnique(list []string, names []string) []string {
	for _, n := range names {
		if !slices.Contains(list, n) {
			list = append(list, n)
		}
	}
	return list
}

// To returns an Emitter that also targets rooms: the sockets in any of
// the rooms given to To and In, or every socket of the namespace if none
// is. A socket id is a room holding just that socket.
func (e *Emitter) To(rooms ...string) *Emitter {
	cp := e.clone()
	cp.rooms = addUnique(cp.rooms, rooms)
	return cp
}

// In is To; it reads better before SocketsJoin, SocketsLeave and
// DisconnectSockets.
func (e *Emitter) In(rooms ...string) *Emitter { return e.To(rooms...) }

// Except returns an Emitter that leaves out the sockets in any of rooms.
func (e *Emitter) Except(rooms ...string) *Emitter {
	cp := e.clone()
	cp.except = addUnique(cp.except, rooms)
	return cp
}

// Volatile returns an Emitter whose events may be dropped for clients that
// cannot take them at once (not connected, or a transport busy).
func (e *Emitter) Volatile() *Emitter {
	cp := e.clone()
	cp.flags.Volatile = true
	return cp
}

// Compress returns an Emitter whose events ask for (true) or against
// (false) per-message compression on the clients' WebSockets. Without it
// the nodes compress as they are configured to.
func (e *Emitter) Compress(compress bool) *Emitter {
	cp := e.clone()
	cp.flags.Compress = &compress
	return cp
}

// opts returns the target options; flags only for broadcasts.
func (e *Emitter) opts(withFlags bool) adapter.BroadcastOptions {
	o := adapter.BroadcastOptions{Rooms: slices.Clone(e.rooms), Except: slices.Clone(e.except)}
	if withFlags {
		o.Flags = e.flags
		if e.flags.Compress != nil {
			c := *e.flags.Compress
			o.Flags.Compress = &c
		}
	}
	return o
}

// checkArgs refuses acknowledgement callbacks.
func checkArgs(args []any) error {
	for i, a := range args {
		if a != nil && reflect.TypeOf(a).Kind() == reflect.Func {
			return fmt.Errorf("%w: argument %d is a function", ErrAckNotSupported, i+1)
		}
	}
	return nil
}

// Emit sends the event with args to the target sockets on every node. It
// returns once Redis has taken the message; it cannot tell whether any
// client received it (see ServerCount). The event name must not be
// reserved (ErrReservedEvent) and no argument may be a function
// (ErrAckNotSupported); []byte arguments are sent as binary.
func (e *Emitter) Emit(ctx context.Context, event string, args ...any) error {
	if e.c.err != nil {
		return e.c.err
	}
	if parser.IsReservedEvent(event) {
		return fmt.Errorf("%w: %q", ErrReservedEvent, event)
	}
	if err := checkArgs(args); err != nil {
		return err
	}
	pkt, err := parser.NewEvent(e.nsp, event, args...)
	if err != nil {
		return fmt.Errorf("emitter: %w", err)
	}
	opts := e.opts(true)
	if e.c.sharded {
		m := &clusterwire.ClusterMessage{Type: clusterwire.MsgBroadcast, UID: clusterwire.EmitterUID, Nsp: e.nsp, Packet: *pkt, Opts: opts}
		return e.publishCluster(ctx, m)
	}
	msg, err := clusterwire.EncodeBroadcast(&clusterwire.Broadcast{UID: clusterwire.EmitterUID, Packet: *pkt, Opts: opts}, clusterwire.EmitterOrder)
	if err != nil {
		return fmt.Errorf("emitter: %w", err)
	}
	return e.c.publish(ctx, clusterwire.PublishChannel(e.c.key, e.nsp, opts.Rooms), msg)
}

// SocketsJoin makes the target sockets on every node join rooms. With no
// rooms it does nothing.
func (e *Emitter) SocketsJoin(ctx context.Context, rooms ...string) error {
	return e.membership(ctx, clusterwire.ReqRemoteJoin, clusterwire.MsgSocketsJoin, rooms)
}

// SocketsLeave makes the target sockets on every node leave rooms. With
// no rooms it does nothing.
func (e *Emitter) SocketsLeave(ctx context.Context, rooms ...string) error {
	return e.membership(ctx, clusterwire.ReqRemoteLeave, clusterwire.MsgSocketsLeave, rooms)
}

func (e *Emitter) membership(ctx context.Context, classic clusterwire.RequestType, cluster clusterwire.MessageType, rooms []string) error {
	if e.c.err != nil {
		return e.c.err
	}
	if len(rooms) == 0 {
		return nil // nothing to join or leave
	}
	opts := e.opts(false)
	rooms = slices.Clone(rooms)
	if e.c.sharded {
		return e.publishCluster(ctx, &clusterwire.ClusterMessage{Type: cluster, UID: clusterwire.EmitterUID, Nsp: e.nsp, Opts: opts, Rooms: rooms})
	}
	return e.publishRequest(ctx, &clusterwire.Request{Type: classic, Opts: &opts, Rooms: rooms})
}

// DisconnectSockets disconnects the target sockets on every node from the
// namespace; with close true it also closes their underlying connections
// (and so disconnects them from every namespace).
func (e *Emitter) DisconnectSockets(ctx context.Context, close bool) error {
	if e.c.err != nil {
		return e.c.err
	}
	opts := e.opts(false)
	if e.c.sharded {
		return e.publishCluster(ctx, &clusterwire.ClusterMessage{Type: clusterwire.MsgDisconnectSockets, UID: clusterwire.EmitterUID, Nsp: e.nsp, Opts: opts, Close: close})
	}
	return e.publishRequest(ctx, &clusterwire.Request{Type: clusterwire.ReqRemoteDisconnect, Opts: &opts, Close: close})
}

// namespaceReserved are the events a Node.js Namespace emits itself; a
// server-side emit is replayed on the receiving namespace's emitter.
var namespaceReserved = []string{"connect", "connection", "new_namespace"}

// ServerSideEmit sends the event with args to the namespace on every node
// (Herald: Namespace.OnServerSideEmit handlers; Node.js:
// io.of(nsp).on(event) listeners). Rooms, exceptions and flags do not
// apply. Acknowledgements are not supported.
func (e *Emitter) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	if e.c.err != nil {
		return e.c.err
	}
	if parser.IsReservedEvent(event) || slices.Contains(namespaceReserved, event) {
		return fmt.Errorf("%w: %q", ErrReservedEvent, event)
	}
	if err := checkArgs(args); err != nil {
		return err
	}
	data, atts, err := parser.MarshalEvent(event, args...)
	if err != nil {
		return fmt.Errorf("emitter: %w", err)
	}
	if e.c.sharded {
		return e.publishCluster(ctx, &clusterwire.ClusterMessage{Type: clusterwire.MsgServerSideEmit, UID: clusterwire.EmitterUID, Nsp: e.nsp, Data: data, Attachments: atts})
	}
	return e.publishRequest(ctx, &clusterwire.Request{Type: clusterwire.ReqServerSideEmit, UID: clusterwire.EmitterUID, Data: data, Attachments: atts})
}

func (e *Emitter) publishCluster(ctx context.Context, m *clusterwire.ClusterMessage) error {
	msg, err := clusterwire.EncodeClusterMessage(m)
	if err != nil {
		return fmt.Errorf("emitter: %w", err)
	}
	return e.c.publish(ctx, clusterwire.ShardedChannel(e.c.key, e.nsp, e.c.mode, m), msg)
}

func (e *Emitter) publishRequest(ctx context.Context, r *clusterwire.Request) error {
	f := r.DefaultFormat()
	if len(r.Attachments) > 0 {
		// JSON would turn buffers into {"type":"Buffer",...} objects; the
		// nodes decode requests in either format.
		f = clusterwire.FormatMsgpack
	}
	msg, err := clusterwire.EncodeRequest(r, f)
	if err != nil {
		return fmt.Errorf("emitter: %w", err)
	}
	return e.c.publish(ctx, clusterwire.RequestChannel(e.c.key, e.nsp), msg)
}

// ServerCount returns the number of nodes serving the namespace, as the
// adapters count them: the subscribers of the namespace's request channel
// (classic, PUBSUB NUMSUB) or main channel (sharded, PUBSUB SHARDNUMSUB),
// summed over the nodes of a Redis Cluster. Zero means that nothing the
// Emitter publishes for this namespace is heard: check Key, the namespace
// and Sharded. A node creates a namespace's subscriptions only once the
// namespace exists on it.
func (e *Emitter) ServerCount(ctx context.Context) (int, error) {
	if e.c.err != nil {
		return 0, e.c.err
	}
	total := 0
	for addr, node := range e.c.client.Nodes() {
		var cmd rueidis.Completed
		if e.c.sharded {
			cmd = node.B().PubsubShardnumsub().Channel(clusterwire.BroadcastChannel(e.c.key, e.nsp)).Build()
		} else {
			cmd = node.B().PubsubNumsub().Channel(clusterwire.RequestChannel(e.c.key, e.nsp)).Build()
		}
		res, err := node.Do(ctx, cmd).ToArray()
		if err != nil {
			return 0, fmt.Errorf("emitter: count subscribers on %s: %w", addr, err)
		}
		if len(res) >= 2 {
			n, _ := res[1].AsInt64()
			total += int(n)
		}
	}
	return total, nil
}
