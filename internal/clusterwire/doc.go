// Package clusterwire holds the byte-exact encodings Herald shares with the
// Node.js Socket.IO cluster adapters on Redis: @socket.io/redis-adapter 8.3
// (classic and sharded), @socket.io/redis-emitter 5.1, and the
// ClusterAdapter message format of socket.io-adapter 2.5. It does no I/O;
// the Redis adapters and the emitter build on it. Section numbers below
// refer to the team's reference notes, "Socket.IO v4 cluster adapters:
// wire protocols", whose captured vectors (Appendices A–F) are the golden
// tests of this package.
//
// # MessagePack (§8)
//
// [Value] is a small model of what notepack.io 3.0.1 (the adapters' default
// parser) and JSON.parse produce: undefined, null, booleans, integers,
// floats, strings, binary, arrays, maps with ordered string keys, and
// dates. [EncodeMsgpack] writes exactly what notepack.io writes (smallest
// integer encodings, float 64 for non-integers, str for strings, bin for
// binary, the timestamp extension −1 for dates); [DecodeMsgpack] accepts
// what it accepts (any integer width, float 32, the timestamp 32/64/96
// forms and notepack's legacy extension-0 forms) with bounded allocation.
// [DecodeJSON] and [EncodeJSON] are the JSON.parse / JSON.stringify
// counterparts used for the JSON messages.
//
// # Socket.IO data
//
// Herald carries event arguments as parser.Packet does: a JSON array whose
// binary values are placeholders {"_placeholder":true,"num":N}, plus the
// attachments. [DataToValue] and [DataToMsgpack] turn that into the msgpack
// a Node.js node publishes (placeholders become bin); [ValueToData] and
// [MsgpackToData] turn a received value back (bin becomes a placeholder in
// depth-first order, dates ISO strings as toISOString() writes them, NaN
// and ±Inf null as JSON.stringify writes them).
//
// # Classic adapter (§1.2–§1.4, §5.1)
//
// A broadcast ([Broadcast]) is the msgpack array
// [uid, {type:2, data, nsp}, {rooms, except, flags}] published on
// "<key>#<nsp>#", or on "<key>#<nsp>#<room>#" for exactly one room
// ([PublishChannel]); the emitter writes the same with uid "emitter" and
// the options in the order rooms, flags, except ([EmitterOrder]).
// Requests ([Request], types 0–7 of [RequestType]) go to
// "<key>-request#<nsp>#" and responses ([Response]) to
// "<key>-response#<nsp>#" or "<key>-response#<nsp>#<uid>#"; both are JSON
// except BROADCAST requests and BROADCAST_ACK responses (msgpack), and a
// receiver sniffs the first byte ([Sniff]): '{' is JSON.
//
// # ClusterAdapter (§2, §3)
//
// The sharded adapter (and the other ClusterAdapter-based adapters) send
// [ClusterMessage] objects {type, data, uid, nsp} with [MessageType] 1–13
// on "<prefix>#<nsp>#" (or a room channel, [ShardedChannel]) and responses
// on the requester's "<prefix>#<nsp>#<uid>#". [EncodeClusterMessage] writes
// JSON unless the message may carry binary and does; receivers sniff.
//
// # Known differences from Node.js
//
// Integers keep full 64-bit precision (Node.js rounds above 2^53); integral
// numbers outside the int64/uint64 range are written as float 64 where
// notepack.io writes garbled integers; strings are UTF-8, so a lone UTF-16
// surrogate from JSON becomes U+FFFD; map members keep wire order, where a
// JavaScript object would move integer-like keys first.
package clusterwire
