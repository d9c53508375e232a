package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/internal/clusterwire"
	"github.com/herald-rt/herald/parser"
)

// NewShardedAdapter returns the sharded Redis adapter (SPUBLISH/SSUBSCRIBE,
// Redis 7 or later), wire-compatible with @socket.io/redis-adapter 8.x
// createShardedAdapter. It speaks the ClusterAdapter protocol of
// socket.io-adapter on the channels
//
//	<key>#<nsp>#         requests and broadcasts
//	<key>#<nsp>#<uid>#   this node's responses
//	<key>#<nsp>#<room>#  one room's broadcasts ("dynamic" modes)
//
// Config.SubscriptionMode chooses which room channels a node subscribes to:
// "dynamic" (default; public rooms), "static" (none) or "dynamic-private"
// (every room, socket ids included). Unlike @socket.io/redis-emitter, the
// emitter package can reach clusters that use this adapter.
func NewShardedAdapter(clients *Clients, cfg Config) adapter.Factory {
	hubs := newSubHubs(clients.Sub, cfg.logger().With("adapter", "redis-sharded"))
	return func(nsp adapter.Namespace) (adapter.Adapter, error) {
		mode := clusterwire.Dynamic
		switch cfg.SubscriptionMode {
		case "", "dynamic":
		case "static":
			mode = clusterwire.Static
		case "dynamic-private":
			mode = clusterwire.DynamicPrivate
		default:
			return nil, fmt.Errorf("redis: unknown subscription mode %q", cfg.SubscriptionMode)
		}
		a := &sharded{
			Memory: adapter.NewLocal(nsp, adapter.MemoryConfig{}),
			nsp:    nsp,
			name:   nsp.Name(),
			pub:    clients.Pub,
			cfg:    cfg,
			key:    cfg.key(),
			mode:   mode,
			uid:    clusterwire.NewClusterID(),
			log:    cfg.logger().With("adapter", "redis-sharded", "nsp", nsp.Name()),
			reqs:   newRequests(),
			rooms:  make(map[string]bool),
		}
		a.mainChannel = clusterwire.BroadcastChannel(a.key, a.name)
		a.ownChannel = clusterwire.ShardedResponseChannel(a.key, a.name, a.uid)
		if err := a.start(hubs); err != nil {
			a.Close()
			return nil, err
		}
		return a, nil
	}
}

// sharded is one namespace's sharded Redis adapter.
type sharded struct {
	*adapter.Memory
	nsp  adapter.Namespace
	name string
	pub  rueidis.Client
	cfg  Config
	key  string
	mode clusterwire.SubscriptionMode
	uid  string
	log  *slog.Logger

	mainChannel, ownChannel string

	recv   *receiver
	ctx    context.Context
	cancel context.CancelFunc

	subMu  sync.Mutex // serialises room (un)subscriptions
	reqs   *requests
	mu     sync.Mutex      // guards rooms, closed
	rooms  map[string]bool // subscribed room channels
	closed bool
}

var _ adapter.Adapter = (*sharded)(nil)

func (a *sharded) start(hubs *subHubs) error {
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.recv = newReceiver(hubs, a.onMessage)
	probeBytes, _ := clusterwire.EncodeClusterMessage(a.probe())
	probeRespBytes, _ := clusterwire.EncodeClusterMessage(a.probeResponse())
	a.recv.intercept = func(m rueidis.PubSubMessage) bool {
		switch m.Message {
		case string(probeBytes), string(probeRespBytes):
			a.recv.markReady(m.Channel)
			return true
		}
		return false
	}
	a.recv.expect(a.mainChannel)
	a.recv.expect(a.ownChannel)
	a.recv.start(a.ctx)
	wctx, wcancel := context.WithTimeout(a.ctx, 10*time.Second)
	defer wcancel()
	if live, _ := a.recv.add(wctx, subKey{shardSub, a.mainChannel}, subKey{shardSub, a.ownChannel}); live {
		return nil // Redis answered the SSUBSCRIBEs: they are in place
	}
	// Otherwise confirm both by a round trip before serving.
	for {
		a.spublish(wctx, a.mainChannel, a.probe())
		a.spublish(wctx, a.ownChannel, a.probeResponse())
		rctx, rcancel := context.WithTimeout(wctx, 200*time.Millisecond)
		err := a.recv.waitReady(rctx, a.mainChannel, a.ownChannel)
		rcancel()
		if err == nil {
			return nil
		}
		if wctx.Err() != nil {
			return fmt.Errorf("redis: sharded subscriptions for namespace %s not established: %w", a.name, wctx.Err())
		}
	}
}

// probe is the message that confirms a subscription: a heartbeat, which
// Node.js nodes of this adapter ignore.
func (a *sharded) probe() *clusterwire.ClusterMessage {
	return &clusterwire.ClusterMessage{Type: clusterwire.MsgHeartbeat, UID: a.uid, Nsp: a.name}
}

// probeResponse confirms the subscription to this node's response channel.
func (a *sharded) probeResponse() *clusterwire.ClusterMessage {
	return &clusterwire.ClusterMessage{Type: clusterwire.MsgBroadcastClientCount, UID: a.uid, Nsp: a.name, RequestID: "probe-" + a.uid}
}

func (a *sharded) spublish(ctx context.Context, channel string, m *clusterwire.ClusterMessage) error {
	msg, err := clusterwire.EncodeClusterMessage(m)
	if err != nil {
		return err
	}
	return retryOnce(func() error {
		return a.pub.Do(ctx, a.pub.B().Spublish().Channel(channel).Message(rueidis.BinaryString(msg)).Build()).Error()
	})
}

// publish sends a request or broadcast where the subscription mode says.
func (a *sharded) publish(ctx context.Context, m *clusterwire.ClusterMessage) error {
	return a.spublish(ctx, clusterwire.ShardedChannel(a.key, a.name, a.mode, m), m)
}

func (a *sharded) respond(ctx context.Context, requester string, m *clusterwire.ClusterMessage) {
	m.UID, m.Nsp = a.uid, a.name
	if err := a.spublish(ctx, clusterwire.ShardedResponseChannel(a.key, a.name, requester), m); err != nil {
		a.log.Warn("redis: cannot publish response", "err", err)
	}
}

// AddAll implements adapter.Adapter; in the dynamic modes a room new on
// this node gets its channel subscribed.
func (a *sharded) AddAll(id string, rooms ...string) {
	var fresh []string
	if a.mode != clusterwire.Static {
		for _, r := range rooms {
			if !a.HasRoom(r) {
				fresh = append(fresh, r)
			}
		}
	}
	// The same rule as the publishers' (a 20-character name is a socket
	// id), so that a room's broadcasts go where it is heard.
	subscribed := func(r string) bool {
		return clusterwire.ShardedRoomSubscribed(a.mode, clusterwire.LooksLikeSocketID(r))
	}
	// Subscribe before the room shows: whoever sees the socket in the room
	// (a fetch, a broadcast sent after a join) can count on its channel
	// being heard.
	for _, r := range fresh {
		if subscribed(r) {
			a.subscribeRoomAs(r, true)
		}
	}
	a.Memory.AddAll(id, rooms...)
	for _, r := range fresh {
		// Again, in case a socket leaving the room unsubscribed it in
		// between (then this subscribes anew; otherwise it returns at once).
		if subscribed(r) {
			a.subscribeRoom(r)
		}
	}
}

// Del implements adapter.Adapter.
func (a *sharded) Del(id, room string) {
	a.Memory.Del(id, room)
	if !a.HasRoom(room) {
		a.unsubscribeRoom(room)
	}
}

// DelAll implements adapter.Adapter.
func (a *sharded) DelAll(id string) {
	rooms := a.Memory.SocketRooms(id)
	a.Memory.DelAll(id)
	for _, r := range rooms {
		if !a.HasRoom(r) {
			a.unsubscribeRoom(r)
		}
	}
}

// subscribeRoom subscribes to a room's channel and waits briefly until the
// subscription is live, so a broadcast sent to the room right after a join
// is not missed. Subscribing and unsubscribing are serialised (subMu) and
// re-check the room, so a quick leave-and-join never ends unsubscribed.
func (a *sharded) subscribeRoom(room string) {
	a.subscribeRoomAs(room, false)
}

// subscribeRoomAs is subscribeRoom; with joining, the caller is about
// to add a socket to the room, which need not have a member yet.
func (a *sharded) subscribeRoomAs(room string, joining bool) {
	a.subMu.Lock()
	defer a.subMu.Unlock()
	if !joining && !a.HasRoom(room) {
		return // left meanwhile
	}
	a.mu.Lock()
	if a.closed || a.rooms[room] {
		a.mu.Unlock()
		return
	}
	a.rooms[room] = true
	a.mu.Unlock()
	ch := clusterwire.RoomChannel(a.key, a.name, room)
	a.recv.expect(ch)
	// Bounded: this may run on the handler goroutine, and the reply comes
	// through the connection's reader, which waits for the handler when
	// the inbox is full.
	ctx, cancel := context.WithTimeout(a.ctx, time.Second)
	live, _ := a.recv.add(ctx, subKey{shardSub, ch})
	cancel()
	if !live {
		// Redis did not answer in time: confirm by a round trip. The
		// probe is a heartbeat, which Node.js nodes ignore.
		a.confirm(a.ctx, ch, time.Second)
	}
}

func (a *sharded) unsubscribeRoom(room string) {
	a.subMu.Lock()
	defer a.subMu.Unlock()
	if a.HasRoom(room) {
		return // joined again meanwhile
	}
	a.mu.Lock()
	subscribed := a.rooms[room]
	delete(a.rooms, room)
	a.mu.Unlock()
	if !subscribed {
		return
	}
	ctx, c := context.WithTimeout(a.ctx, 2*time.Second)
	defer c()
	a.recv.remove(ctx, subKey{shardSub, clusterwire.RoomChannel(a.key, a.name, room)})
}

// confirm publishes heartbeat probes on channel until this node hears one
// back, or timeout passes.
func (a *sharded) confirm(ctx context.Context, channel string, timeout time.Duration) bool {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	wait := time.Millisecond
	for {
		a.spublish(wctx, channel, a.probe())
		rctx, rcancel := context.WithTimeout(wctx, wait)
		wait = min(2*wait, 50*time.Millisecond)
		err := a.recv.waitReady(rctx, channel)
		rcancel()
		if err == nil {
			return true
		}
		if wctx.Err() != nil {
			return false
		}
	}
}

// onMessage handles one message from any of the subscribed channels.
func (a *sharded) onMessage(m rueidis.PubSubMessage) {
	msg, err := clusterwire.DecodeClusterMessage([]byte(m.Message))
	if err != nil {
		a.log.Warn("redis: dropping malformed message", "channel", m.Channel, "err", err)
		return
	}
	if msg.UID == a.uid {
		return // our own echo
	}
	if msg.Nsp != a.name && !(msg.Nsp == "" && a.name == "/") {
		return
	}
	if msg.Type.IsResponse() {
		a.onResponse(msg)
		return
	}
	a.onRequest(msg)
}

func (a *sharded) onRequest(msg *clusterwire.ClusterMessage) {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.requestsTimeout())
	defer cancel()
	opts := msg.Opts
	opts.Flags.Local = true
	switch msg.Type {
	case clusterwire.MsgBroadcast:
		if msg.RequestID == "" {
			a.BroadcastLocal(&msg.Packet, opts)
			return
		}
		requester, id := msg.UID, msg.RequestID
		a.Memory.BroadcastWithAck(ctx, &msg.Packet, opts,
			func(n int) {
				a.respond(context.Background(), requester, &clusterwire.ClusterMessage{Type: clusterwire.MsgBroadcastClientCount, RequestID: id, ClientCount: n})
			},
			func(ack adapter.Ack) {
				first, _ := clusterwire.FirstArg(ack.Args)
				a.respond(context.Background(), requester, &clusterwire.ClusterMessage{Type: clusterwire.MsgBroadcastAck, RequestID: id, Data: first, Attachments: ack.Attachments})
			})
	case clusterwire.MsgSocketsJoin:
		// Applied here, in arrival order, so a broadcast published right
		// after the join reaches the new members. Joining may wait for a
		// room subscription's probe, which the receiver's intercept (not
		// this goroutine) confirms.
		a.Memory.AddSockets(ctx, opts, msg.Rooms)
	case clusterwire.MsgSocketsLeave:
		a.Memory.DelSockets(ctx, opts, msg.Rooms)
	case clusterwire.MsgDisconnectSockets:
		a.Memory.DisconnectSockets(ctx, opts, msg.Close)
	case clusterwire.MsgFetchSockets:
		infos, _ := a.Memory.FetchSockets(ctx, opts)
		resp := &clusterwire.ClusterMessage{Type: clusterwire.MsgFetchSocketsResponse, RequestID: msg.RequestID, Sockets: make([]clusterwire.SocketRecord, 0, len(infos))}
		for _, info := range infos {
			rec, err := clusterwire.NewSocketRecord(info)
			if err == nil {
				resp.Sockets = append(resp.Sockets, rec)
			}
		}
		a.respond(ctx, msg.UID, resp)
	case clusterwire.MsgServerSideEmit:
		var reply func(adapter.Ack)
		if msg.RequestID != "" {
			requester, id := msg.UID, msg.RequestID
			var once sync.Once
			reply = func(ack adapter.Ack) {
				once.Do(func() {
					first, _ := clusterwire.FirstArg(ack.Args)
					a.respond(context.Background(), requester, &clusterwire.ClusterMessage{Type: clusterwire.MsgServerSideEmitResponse, RequestID: id, Data: first, Attachments: ack.Attachments})
				})
			}
		}
		a.nsp.HandleServerSideEmit(msg.Data, msg.Attachments, reply)
	}
}

func (a *sharded) onResponse(msg *clusterwire.ClusterMessage) {
	r := reply{
		clientCount: msg.ClientCount,
		ack:         adapter.Ack{Args: clusterwire.ArgsOf(msg.Data), Attachments: msg.Attachments},
		sockets:     msg.Sockets,
	}
	switch msg.Type {
	case clusterwire.MsgBroadcastClientCount:
		r.kind = replyClientCount
	case clusterwire.MsgBroadcastAck, clusterwire.MsgServerSideEmitResponse:
		r.kind = replyAck
	}
	a.reqs.settle(msg.RequestID, r)
}

// request publishes m and waits for expected responses carrying collect.
func (a *sharded) request(ctx context.Context, m *clusterwire.ClusterMessage, collect replyKind, expected int, timeout time.Duration, onAck func(adapter.Ack)) (result, error) {
	return a.reqs.await(ctx, m.RequestID, collect, expected, timeout, onAck, func() error { return a.publish(ctx, m) })
}

func (a *sharded) message(t clusterwire.MessageType) *clusterwire.ClusterMessage {
	return &clusterwire.ClusterMessage{Type: t, UID: a.uid, Nsp: a.name}
}

// Broadcast implements adapter.Adapter: publish, then deliver locally.
func (a *sharded) Broadcast(ctx context.Context, pkt *parser.Packet, opts adapter.BroadcastOptions) error {
	if opts.Flags.Local {
		return a.Memory.Broadcast(ctx, pkt, opts)
	}
	m := a.message(clusterwire.MsgBroadcast)
	m.Packet, m.Opts = *pkt, opts
	err := a.publish(ctx, m)
	local := opts
	local.Flags.Local = true
	a.BroadcastLocal(pkt, local)
	if err != nil {
		return fmt.Errorf("redis: publish broadcast: %w", err)
	}
	return nil
}

// BroadcastWithAck implements adapter.Adapter.
func (a *sharded) BroadcastWithAck(ctx context.Context, pkt *parser.Packet, opts adapter.BroadcastOptions, onClientCount func(int), onAck func(adapter.Ack)) error {
	if opts.Flags.Local {
		return a.Memory.BroadcastWithAck(ctx, pkt, opts, onClientCount, onAck)
	}
	timeout := opts.Flags.Timeout
	if timeout <= 0 {
		timeout = a.cfg.requestsTimeout()
	}
	m := a.message(clusterwire.MsgBroadcast)
	m.Packet, m.Opts, m.RequestID = *pkt, opts, clusterwire.NewClusterID()
	if err := a.reqs.expectAcks(m.RequestID, timeout, onClientCount, onAck); err != nil {
		return err
	}
	err := a.publish(ctx, m)
	local := opts
	local.Flags.Local = true
	a.Memory.BroadcastWithAck(ctx, pkt, local, onClientCount, onAck)
	if err != nil {
		return fmt.Errorf("redis: publish broadcast: %w", err)
	}
	return nil
}

// ServerCount implements adapter.Adapter: the subscribers of the main
// channel (PUBSUB SHARDNUMSUB), summed over every node of a Redis Cluster.
func (a *sharded) ServerCount(ctx context.Context) (int, error) {
	return subscribers(ctx, a.pub, a.cfg.requestsTimeout(), func(node rueidis.Client) rueidis.Completed {
		return node.B().PubsubShardnumsub().Channel(a.mainChannel).Build()
	})
}

// FetchSockets implements adapter.Adapter.
func (a *sharded) FetchSockets(ctx context.Context, opts adapter.BroadcastOptions) ([]adapter.SocketInfo, error) {
	local, _ := a.Memory.FetchSockets(ctx, opts)
	if opts.Flags.Local {
		return local, nil
	}
	n, err := a.ServerCount(ctx)
	if err != nil {
		return local, err
	}
	if n <= 1 {
		return local, nil
	}
	timeout := opts.Flags.Timeout
	if timeout <= 0 {
		timeout = a.cfg.requestsTimeout()
	}
	m := a.message(clusterwire.MsgFetchSockets)
	m.Opts, m.RequestID = opts, clusterwire.NewClusterID()
	res, err := a.request(ctx, m, replySockets, n-1, timeout, nil)
	return append(local, res.sockets...), err
}

// SocketIDs implements adapter.Adapter. The ClusterAdapter protocol has
// no lighter request than FETCH_SOCKETS, so this is FetchSockets' ids.
func (a *sharded) SocketIDs(ctx context.Context, opts adapter.BroadcastOptions) ([]string, error) {
	infos, err := a.FetchSockets(ctx, opts)
	ids := make([]string, len(infos))
	for i, info := range infos {
		ids[i] = info.ID
	}
	return ids, err
}

// AddSockets implements adapter.Adapter: publish and apply locally.
func (a *sharded) AddSockets(ctx context.Context, opts adapter.BroadcastOptions, rooms []string) error {
	a.Memory.AddSockets(ctx, opts, rooms)
	if opts.Flags.Local {
		return nil
	}
	m := a.message(clusterwire.MsgSocketsJoin)
	m.Opts, m.Rooms = opts, rooms
	return a.publish(ctx, m)
}

// DelSockets implements adapter.Adapter: publish and apply locally.
func (a *sharded) DelSockets(ctx context.Context, opts adapter.BroadcastOptions, rooms []string) error {
	a.Memory.DelSockets(ctx, opts, rooms)
	if opts.Flags.Local {
		return nil
	}
	m := a.message(clusterwire.MsgSocketsLeave)
	m.Opts, m.Rooms = opts, rooms
	return a.publish(ctx, m)
}

// DisconnectSockets implements adapter.Adapter: publish and apply locally.
func (a *sharded) DisconnectSockets(ctx context.Context, opts adapter.BroadcastOptions, close bool) error {
	if !opts.Flags.Local {
		m := a.message(clusterwire.MsgDisconnectSockets)
		m.Opts, m.Close = opts, close
		if err := a.publish(ctx, m); err != nil {
			a.Memory.DisconnectSockets(ctx, opts, close)
			return err
		}
	}
	return a.Memory.DisconnectSockets(ctx, opts, close)
}

// ServerSideEmit implements adapter.Adapter.
func (a *sharded) ServerSideEmit(ctx context.Context, data json.RawMessage, atts [][]byte, onAck func(adapter.Ack)) error {
	m := a.message(clusterwire.MsgServerSideEmit)
	m.Data, m.Attachments = data, atts
	if onAck == nil {
		return a.publish(ctx, m)
	}
	n, err := a.ServerCount(ctx)
	if err != nil {
		return err
	}
	if n <= 1 {
		return nil
	}
	m.RequestID = clusterwire.NewClusterID()
	_, err = a.request(ctx, m, replyAck, n-1, a.cfg.requestsTimeout(), onAck)
	return err
}

// Close implements adapter.Adapter.
func (a *sharded) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	clear(a.rooms)
	a.mu.Unlock()
	a.reqs.close()
	if a.recv != nil {
		// Unsubscribes first, so the server count drops at once.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		a.recv.close(ctx)
		cancel()
	}
	if a.cancel != nil {
		a.cancel()
	}
	return nil
}
