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

// NewAdapter returns the classic Redis adapter, wire-compatible with
// @socket.io/redis-adapter 8.x (createAdapter) and @socket.io/redis-emitter.
// Each namespace subscribes, on clients.Sub, to
//
//	PSUBSCRIBE <key>#<nsp>#*
//	SUBSCRIBE  <key>-request#<nsp>#  <key>-response#<nsp>#  <key>-response#<nsp>#<uid>#
//
// The factory returns once the subscriptions are active.
func NewAdapter(clients *Clients, cfg Config) adapter.Factory {
	hubs := newSubHubs(clients.Sub, cfg.logger().With("adapter", "redis"))
	return func(nsp adapter.Namespace) (adapter.Adapter, error) {
		a := &classic{
			Memory: adapter.NewLocal(nsp, adapter.MemoryConfig{}),
			nsp:    nsp,
			name:   nsp.Name(),
			pub:    clients.Pub,
			cfg:    cfg,
			key:    cfg.key(),
			uid:    clusterwire.NewClassicID(),
			log:    cfg.logger().With("adapter", "redis", "nsp", nsp.Name()),
			reqs:   newRequests(),
		}
		a.requestChannel = clusterwire.RequestChannel(a.key, a.name)
		a.responseChannel = clusterwire.ResponseChannel(a.key, a.name)
		a.specificChannel = clusterwire.SpecificResponseChannel(a.key, a.name, a.uid)
		a.probeRoom = "herald-probe-" + a.uid
		if err := a.start(hubs); err != nil {
			a.Close()
			return nil, err
		}
		return a, nil
	}
}

// classic is one namespace's classic Redis adapter. Local rooms and
// delivery are the embedded in-memory adapter's.
type classic struct {
	*adapter.Memory
	nsp  adapter.Namespace
	name string
	pub  rueidis.Client
	cfg  Config
	key  string
	uid  string
	log  *slog.Logger

	requestChannel, responseChannel, specificChannel string
	probeRoom                                        string

	recv   *receiver
	cancel context.CancelFunc

	reqs *requests

	mu     sync.Mutex // guards closed
	closed bool
}

var _ adapter.Adapter = (*classic)(nil)

func (a *classic) start(hubs *subHubs) error {
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.recv = newReceiver(hubs, a.onMessage)
	probe := clusterwire.RoomChannel(a.key, a.name, a.probeRoom)
	probeResp := []byte(`{"requestId":"` + a.probeRoom + `"}`)
	a.recv.intercept = func(m rueidis.PubSubMessage) bool {
		switch {
		case m.Channel == probe:
			a.recv.markReady("psubscribe")
		case m.Channel == a.specificChannel && m.Message == string(probeResp):
			a.recv.markReady("subscribe")
		default:
			return false
		}
		return true
	}
	a.recv.expect("psubscribe")
	a.recv.expect("subscribe")
	a.recv.start(ctx)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	// All four on one connection, so that one sender's broadcasts and
	// requests are handled in the order it published them.
	live, _ := a.recv.add(wctx,
		subKey{patternSub, clusterwire.BroadcastPattern(a.key, a.name)},
		subKey{channelSub, a.requestChannel},
		subKey{channelSub, a.responseChannel},
		subKey{channelSub, a.specificChannel})
	if live {
		return nil // Redis answered the SUBSCRIBEs: they are in place
	}
	// Otherwise confirm both by a round trip before serving, so that
	// nothing published right after startup is missed.
	for {
		a.publish(wctx, probe, []byte{0xc0})
		a.publish(wctx, a.specificChannel, probeResp)
		rctx, rcancel := context.WithTimeout(wctx, 200*time.Millisecond)
		err := a.recv.waitReady(rctx, "psubscribe", "subscribe")
		rcancel()
		if err == nil {
			return nil
		}
		if wctx.Err() != nil {
			return fmt.Errorf("redis: subscriptions for namespace %s not established: %w", a.name, wctx.Err())
		}
	}
}

func (a *classic) publish(ctx context.Context, channel string, msg []byte) error {
	return retryOnce(func() error {
		c := publishNode(a.pub)
		return c.Do(ctx, c.B().Publish().Channel(channel).Message(rueidis.BinaryString(msg)).Build()).Error()
	})
}

// publishNode returns where PUBLISH goes. In a Redis Cluster the client
// would send each PUBLISH to a random node, and two messages published by
// one node could then reach subscribers in the wrong order; always using
// the same node (the first address, sorted), which is also the one that
// carries the classic subscriptions, keeps them in order.
func publishNode(c rueidis.Client) rueidis.Client {
	if c.Mode() != rueidis.ClientModeCluster {
		return c
	}
	nodes := c.Nodes()
	if n, ok := nodes[firstNode(nodes)]; ok {
		return n
	}
	return c
}

// onMessage handles one pub/sub message, on the receiver goroutine.
func (a *classic) onMessage(m rueidis.PubSubMessage) {
	switch {
	case m.Pattern != "":
		room, ok := clusterwire.ChannelRoom(a.key, a.name, m.Channel)
		if !ok {
			return
		}
		if room == a.probeRoom {
			a.recv.markReady("psubscribe")
			return
		}
		// Cheap filters first: a room with no member here, our own echo.
		if room != "" && !a.HasRoom(room) {
			return
		}
		msg := []byte(m.Message)
		if uid, ok := clusterwire.BroadcastUID(msg); ok && uid == a.uid {
			return
		}
		b, err := clusterwire.DecodeBroadcast(msg)
		if err != nil {
			a.log.Warn("redis: dropping malformed broadcast", "channel", m.Channel, "err", err)
			return
		}
		if ns := b.Packet.Namespace; ns != a.name && !(ns == "" && a.name == "/") {
			return
		}
		b.Opts.Flags.Local = true
		a.BroadcastLocal(&b.Packet, b.Opts)
	case m.Channel == a.requestChannel:
		req, err := clusterwire.DecodeRequest([]byte(m.Message))
		if err != nil {
			a.log.Warn("redis: dropping malformed request", "err", err)
			return
		}
		a.onRequest(req)
	case m.Channel == a.responseChannel || m.Channel == a.specificChannel:
		resp, err := clusterwire.DecodeResponse([]byte(m.Message))
		if err != nil {
			a.log.Warn("redis: dropping malformed response", "err", err)
			return
		}
		if resp.RequestID == a.probeRoom {
			a.recv.markReady("subscribe")
			return
		}
		a.onResponse(resp)
	}
}

func (a *classic) isOwnRequest(id string) bool { return a.reqs.isOwn(id) }

// onRequest answers a request from another node (or applies one of ours
// that came back: join, leave and disconnect only publish, and every node,
// this one included, applies them when they arrive, as in Node.js).
func (a *classic) onRequest(req *clusterwire.Request) {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.requestsTimeout())
	defer cancel()
	switch req.Type {
	case clusterwire.ReqSockets:
		if a.isOwnRequest(req.RequestID) {
			return
		}
		a.respond(ctx, req.UID, &clusterwire.Response{Type: req.Type, RequestID: req.RequestID, SocketIDs: a.Sockets(req.Rooms...)})
	case clusterwire.ReqAllRooms:
		if a.isOwnRequest(req.RequestID) {
			return
		}
		a.respond(ctx, req.UID, &clusterwire.Response{Type: req.Type, RequestID: req.RequestID, Rooms: a.Memory.Rooms()})
	case clusterwire.ReqRemoteJoin, clusterwire.ReqRemoteLeave, clusterwire.ReqRemoteDisconnect:
		if req.Opts == nil {
			a.applyLegacy(ctx, req)
			return
		}
		switch req.Type {
		case clusterwire.ReqRemoteJoin:
			a.Memory.AddSockets(ctx, *req.Opts, req.Rooms)
		case clusterwire.ReqRemoteLeave:
			a.Memory.DelSockets(ctx, *req.Opts, req.Rooms)
		default:
			a.Memory.DisconnectSockets(ctx, *req.Opts, req.Close)
		}
	case clusterwire.ReqRemoteFetch:
		if a.isOwnRequest(req.RequestID) || req.Opts == nil {
			return
		}
		infos, _ := a.Memory.FetchSockets(ctx, *req.Opts)
		resp := &clusterwire.Response{Type: req.Type, RequestID: req.RequestID, Sockets: make([]clusterwire.SocketRecord, 0, len(infos))}
		for _, info := range infos {
			rec, err := clusterwire.NewSocketRecord(info)
			if err != nil {
				a.log.Warn("redis: cannot encode socket for fetch", "id", info.ID, "err", err)
				continue
			}
			resp.Sockets = append(resp.Sockets, rec)
		}
		a.respond(ctx, req.UID, resp)
	case clusterwire.ReqServerSideEmit:
		if req.UID == a.uid {
			return
		}
		var reply func(adapter.Ack)
		if req.RequestID != "" {
			var once sync.Once
			reply = func(ack adapter.Ack) {
				once.Do(func() {
					first, _ := clusterwire.FirstArg(ack.Args)
					resp := &clusterwire.Response{Type: clusterwire.ReqServerSideEmit, RequestID: req.RequestID, Data: first, Attachments: ack.Attachments}
					// Node.js always answers server-side emits on the
					// shared channel.
					a.publishResponse(context.Background(), a.responseChannel, resp)
				})
			}
		}
		a.nsp.HandleServerSideEmit(req.Data, req.Attachments, reply)
	case clusterwire.ReqBroadcast:
		if a.isOwnRequest(req.RequestID) || req.Opts == nil {
			return
		}
		requester, id := req.UID, req.RequestID
		opts := *req.Opts
		opts.Flags.Local = true
		a.Memory.BroadcastWithAck(ctx, &req.Packet, opts,
			func(n int) {
				a.respond(context.Background(), requester, &clusterwire.Response{Type: clusterwire.ReqBroadcastClientCount, RequestID: id, ClientCount: n})
			},
			func(ack adapter.Ack) {
				first, _ := clusterwire.FirstArg(ack.Args)
				a.respond(context.Background(), requester, &clusterwire.Response{Type: clusterwire.ReqBroadcastAck, RequestID: id, Data: first, Attachments: ack.Attachments})
			})
	}
}

// applyLegacy handles the 7.x join/leave/disconnect forms addressed to one
// socket; the node that has it answers.
func (a *classic) applyLegacy(ctx context.Context, req *clusterwire.Request) {
	s := a.nsp.LocalSocket(req.SID)
	if s == nil {
		return
	}
	switch req.Type {
	case clusterwire.ReqRemoteJoin:
		s.Join(req.Room)
	case clusterwire.ReqRemoteLeave:
		s.Leave(req.Room)
	default:
		s.Disconnect(req.Close)
	}
	if req.RequestID != "" {
		a.respond(ctx, req.UID, &clusterwire.Response{Type: req.Type, RequestID: req.RequestID})
	}
}

// respond publishes a response where the configuration says.
func (a *classic) respond(ctx context.Context, requester string, resp *clusterwire.Response) {
	channel := a.responseChannel
	if a.cfg.PublishOnSpecificResponseChannel && requester != "" {
		channel = clusterwire.SpecificResponseChannel(a.key, a.name, requester)
	}
	a.publishResponse(ctx, channel, resp)
}

func (a *classic) publishResponse(ctx context.Context, channel string, resp *clusterwire.Response) {
	msg, err := clusterwire.EncodeResponse(resp, resp.DefaultFormat())
	if err != nil {
		a.log.Warn("redis: cannot encode response", "err", err)
		return
	}
	if err := a.publish(ctx, channel, msg); err != nil {
		a.log.Warn("redis: cannot publish response", "err", err)
	}
}

// onResponse feeds a response to the request waiting for it.
func (a *classic) onResponse(resp *clusterwire.Response) {
	r := reply{
		clientCount: resp.ClientCount,
		ack:         adapter.Ack{Args: clusterwire.ArgsOf(resp.Data), Attachments: resp.Attachments},
		sockets:     resp.Sockets,
		socketIDs:   resp.SocketIDs,
	}
	switch resp.Type {
	case clusterwire.ReqBroadcastClientCount:
		r.kind = replyClientCount
	case clusterwire.ReqBroadcastAck, clusterwire.ReqServerSideEmit:
		r.kind = replyAck
	}
	a.reqs.settle(resp.RequestID, r)
}

// request publishes req and waits for expected responses carrying
// collect.
func (a *classic) request(ctx context.Context, req *clusterwire.Request, collect replyKind, expected int, onAck func(adapter.Ack)) (result, error) {
	msg, err := clusterwire.EncodeRequest(req, requestFormat(req))
	if err != nil {
		return result{}, err
	}
	return a.reqs.await(ctx, req.RequestID, collect, expected, a.cfg.requestsTimeout(), onAck, func() error {
		return a.publish(ctx, a.requestChannel, msg)
	})
}

// requestFormat is the encoding Node.js uses for req, except that a
// server-side emit carrying binary goes as msgpack: JSON would turn its
// buffers into {"type":"Buffer",...} objects, and Node.js decodes requests
// in either encoding.
func requestFormat(req *clusterwire.Request) clusterwire.Format {
	if req.Type == clusterwire.ReqServerSideEmit && len(req.Attachments) > 0 {
		return clusterwire.FormatMsgpack
	}
	return req.DefaultFormat()
}

// Broadcast implements adapter.Adapter: publish, then deliver locally.
func (a *classic) Broadcast(ctx context.Context, pkt *parser.Packet, opts adapter.BroadcastOptions) error {
	if opts.Flags.Local {
		return a.Memory.Broadcast(ctx, pkt, opts)
	}
	p := *pkt
	p.Namespace = a.name
	msg, err := clusterwire.EncodeBroadcast(&clusterwire.Broadcast{UID: a.uid, Packet: p, Opts: opts}, clusterwire.AdapterOrder)
	if err != nil {
		return err
	}
	pubErr := a.publish(ctx, clusterwire.PublishChannel(a.key, a.name, opts.Rooms), msg)
	// Local sockets get the packet even when Redis is away.
	local := opts
	local.Flags.Local = true
	a.BroadcastLocal(pkt, local)
	if pubErr != nil {
		return fmt.Errorf("redis: publish broadcast: %w", pubErr)
	}
	return nil
}

// BroadcastWithAck implements adapter.Adapter.
func (a *classic) BroadcastWithAck(ctx context.Context, pkt *parser.Packet, opts adapter.BroadcastOptions, onClientCount func(int), onAck func(adapter.Ack)) error {
	if opts.Flags.Local {
		return a.Memory.BroadcastWithAck(ctx, pkt, opts, onClientCount, onAck)
	}
	id := clusterwire.NewClassicID()
	timeout := opts.Flags.Timeout
	if timeout <= 0 {
		timeout = a.cfg.requestsTimeout()
	}
	if err := a.reqs.expectAcks(id, timeout, onClientCount, onAck); err != nil {
		return err
	}
	p := *pkt
	p.Namespace = a.name
	msg, err := clusterwire.EncodeRequest(&clusterwire.Request{Type: clusterwire.ReqBroadcast, UID: a.uid, RequestID: id, Packet: p, Opts: &opts}, clusterwire.FormatMsgpack)
	if err == nil {
		err = a.publish(ctx, a.requestChannel, msg)
	}
	local := opts
	local.Flags.Local = true
	a.Memory.BroadcastWithAck(ctx, pkt, local, onClientCount, onAck)
	if err != nil {
		return fmt.Errorf("redis: publish broadcast: %w", err)
	}
	return nil
}

// ServerCount implements adapter.Adapter: the number of subscribers of
// the request channel (one per node serving the namespace), summed over
// every node of a Redis Cluster.
func (a *classic) ServerCount(ctx context.Context) (int, error) {
	return subscribers(ctx, a.pub, a.cfg.requestsTimeout(), func(node rueidis.Client) rueidis.Completed {
		return node.B().PubsubNumsub().Channel(a.requestChannel).Build()
	})
}

// FetchSockets implements adapter.Adapter.
func (a *classic) FetchSockets(ctx context.Context, opts adapter.BroadcastOptions) ([]adapter.SocketInfo, error) {
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
	req := &clusterwire.Request{Type: clusterwire.ReqRemoteFetch, UID: a.uid, RequestID: clusterwire.NewClassicID(), Opts: &adapter.BroadcastOptions{Rooms: opts.Rooms, Except: opts.Except}}
	res, err := a.request(ctx, req, replySockets, n-1, nil)
	return append(local, res.sockets...), err
}

// SocketIDs implements adapter.Adapter with the SOCKETS request (type 0),
// which Node.js nodes answer too. It carries rooms but no except, so a
// query with Except falls back to FetchSockets.
func (a *classic) SocketIDs(ctx context.Context, opts adapter.BroadcastOptions) ([]string, error) {
	if len(opts.Except) > 0 && !opts.Flags.Local {
		infos, err := a.FetchSockets(ctx, opts)
		ids := make([]string, len(infos))
		for i, info := range infos {
			ids[i] = info.ID
		}
		return ids, err
	}
	local := a.Memory.Targets(opts)
	if opts.Flags.Local {
		return local, nil
	}
	n, err := a.ServerCount(ctx)
	if err != nil || n <= 1 {
		return local, err
	}
	req := &clusterwire.Request{Type: clusterwire.ReqSockets, UID: a.uid, RequestID: clusterwire.NewClassicID(), Rooms: opts.Rooms}
	res, err := a.request(ctx, req, replySocketIDs, n-1, nil)
	return append(local, res.socketIDs...), err
}

// publishRequest sends a request that expects no answer.
func (a *classic) publishRequest(ctx context.Context, req *clusterwire.Request) error {
	msg, err := clusterwire.EncodeRequest(req, requestFormat(req))
	if err != nil {
		return err
	}
	return a.publish(ctx, a.requestChannel, msg)
}

// AddSockets implements adapter.Adapter. Like the Node.js adapter it only
// publishes: every node, this one included, applies the request when it
// arrives.
func (a *classic) AddSockets(ctx context.Context, opts adapter.BroadcastOptions, rooms []string) error {
	if opts.Flags.Local {
		return a.Memory.AddSockets(ctx, opts, rooms)
	}
	err := a.publishRequest(ctx, &clusterwire.Request{Type: clusterwire.ReqRemoteJoin, UID: a.uid, Opts: &opts, Rooms: rooms})
	if err != nil {
		a.Memory.AddSockets(ctx, opts, rooms)
		return fmt.Errorf("redis: publish join: %w", err)
	}
	return nil
}

// DelSockets implements adapter.Adapter (see AddSockets).
func (a *classic) DelSockets(ctx context.Context, opts adapter.BroadcastOptions, rooms []string) error {
	if opts.Flags.Local {
		return a.Memory.DelSockets(ctx, opts, rooms)
	}
	err := a.publishRequest(ctx, &clusterwire.Request{Type: clusterwire.ReqRemoteLeave, UID: a.uid, Opts: &opts, Rooms: rooms})
	if err != nil {
		a.Memory.DelSockets(ctx, opts, rooms)
		return fmt.Errorf("redis: publish leave: %w", err)
	}
	return nil
}

// DisconnectSockets implements adapter.Adapter (see AddSockets).
func (a *classic) DisconnectSockets(ctx context.Context, opts adapter.BroadcastOptions, close bool) error {
	if opts.Flags.Local {
		return a.Memory.DisconnectSockets(ctx, opts, close)
	}
	err := a.publishRequest(ctx, &clusterwire.Request{Type: clusterwire.ReqRemoteDisconnect, UID: a.uid, Opts: &opts, Close: close})
	if err != nil {
		a.Memory.DisconnectSockets(ctx, opts, close)
		return fmt.Errorf("redis: publish disconnect: %w", err)
	}
	return nil
}

// ServerSideEmit implements adapter.Adapter.
func (a *classic) ServerSideEmit(ctx context.Context, data json.RawMessage, atts [][]byte, onAck func(adapter.Ack)) error {
	req := &clusterwire.Request{Type: clusterwire.ReqServerSideEmit, UID: a.uid, Data: data, Attachments: atts}
	if onAck == nil {
		return a.publishRequest(ctx, req)
	}
	n, err := a.ServerCount(ctx)
	if err != nil {
		return err
	}
	if n <= 1 {
		return nil
	}
	req.RequestID = clusterwire.NewClassicID()
	_, err = a.request(ctx, req, replyAck, n-1, onAck)
	return err
}

// Close implements adapter.Adapter: it unsubscribes and stops the
// adapter's goroutines.
func (a *classic) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
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
