// Package emitter sends events and cluster commands to a Socket.IO cluster
// through Redis, from a process that runs no Socket.IO server: a worker, a
// cron job, an HTTP handler of another service. The nodes may be Herald
// nodes with the adapters of package adapter/redis, Node.js socket.io
// nodes with @socket.io/redis-adapter, or a mix of both.
//
// An Emitter publishes and returns; it never subscribes, so it is not
// counted as a node, and it cannot wait for acknowledgements, fetch
// sockets or list rooms.
//
//	client, _ := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{"127.0.0.1:6379"}, DisableCache: true})
//	e := emitter.New(client, emitter.Config{})
//	e.To("room1").Emit(ctx, "news", map[string]any{"title": "hello"})
//	e.Of("/admin").In("room2").SocketsJoin(ctx, "room3")
//
// # Classic adapter (default)
//
// With Config.Sharded false the emitter speaks the protocol of the classic
// Redis adapter (createAdapter in Node.js, redis.NewAdapter in Herald) and
// writes byte for byte what @socket.io/redis-emitter 5.1.0 writes:
//
//   - Emit: PUBLISH of the MessagePack array ["emitter", {type:2, data, nsp},
//     {rooms, flags, except}] on "<key>#<nsp>#", or on "<key>#<nsp>#<room>#"
//     when exactly one room is targeted;
//   - SocketsJoin, SocketsLeave, DisconnectSockets: PUBLISH of the JSON
//     requests {type:2|3, opts:{rooms, except}, rooms} and {type:4, opts,
//     close} (without uid) on "<key>-request#<nsp>#";
//   - ServerSideEmit: PUBLISH of {uid:"emitter", type:6, data:[event,
//     ...args]} on the same request channel (MessagePack instead of JSON
//     when the arguments hold binary, so buffers stay buffers; Node.js
//     accepts both).
//
// # Sharded adapter
//
// With Config.Sharded true it speaks the ClusterAdapter protocol of the
// sharded Redis adapter (createShardedAdapter in Node.js,
// redis.NewShardedAdapter in Herald), which @socket.io/redis-emitter
// cannot reach: it SPUBLISHes the messages BROADCAST, SOCKETS_JOIN,
// SOCKETS_LEAVE, DISCONNECT_SOCKETS and SERVER_SIDE_EMIT with uid
// "emitter", JSON unless the arguments hold binary, on "<key>#<nsp>#". A
// broadcast to exactly one room goes to that room's channel
// "<key>#<nsp>#<room>#" when Config.SubscriptionMode says the nodes
// subscribe to it, as the nodes themselves publish.
//
// # Arguments
//
// Event arguments are encoded as by parser.MarshalArgs: values as
// encoding/json encodes them, json.RawMessage byte for byte, and every
// []byte, at any depth, as binary (MessagePack bin), which clients receive
// as an ArrayBuffer or Buffer. Functions (acknowledgement callbacks) are
// refused: an emitter cannot receive acknowledgements.
package emitter
