// Package parser implements the Socket.IO packet codec: protocol v5
// (socket.io 3.x and 4.x) and the identical framing of protocol v4
// (socket.io 2.x clients, which talk Engine.IO v3). It depends on the
// standard library only and does no I/O.
//
// # Wire grammar
//
// Each packet travels in one Engine.IO message packet (type '4', which is
// not part of what this package reads or writes), followed, for binary
// packets, by one binary Engine.IO message per attachment:
//
//	packet      = type [attachments "-"] [namespace ","] [ack-id] [payload]
//	type        = "0" … "6"   ; CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK
//	attachments = 1*DIGIT     ; only for types 5 and 6
//	namespace   = "/" *(any byte but ",")   ; omitted for "/"
//	ack-id      = 1*DIGIT
//	payload     = JSON text
//
// Examples: 2["foo"] (event on "/"), 2/admin,["bar"], 212["foo"] (event
// with ack id 12), 3/admin,13["bar"] (ack 13), 1/admin, (disconnect),
// 40{"sid":"abc"} (the engine prefix '4' and CONNECT '0'), and the binary
// event 51-["baz",{"_placeholder":true,"num":0}] followed by one binary
// message.
//
// When decoding, the namespace runs to the first ',' or to the end of the
// message, so "40/custom" is a CONNECT to "/custom". When encoding, the
// comma is always written.
//
// # Binary attachments
//
// Binary values are taken out of the JSON and sent as separate messages.
// In their place the payload holds {"_placeholder":true,"num":N}, N being
// the index of the attachment, in depth-first order. [MarshalArgs] and
// [NewEvent] do this for Go values; [Packet.Args] and [UnmarshalArg] undo
// it on the receiving side.
//
// # Decoding
//
// A [Decoder] takes a connection's Engine.IO messages one at a time and
// returns complete packets. Every error it returns wraps [ErrInvalidPacket]
// and means the peer broke the protocol: close the Engine.IO connection.
// The rules are listed at [Decoder.Add]. The payload of a decoded packet is
// kept exactly as it arrived, as a [json.RawMessage], so that it can be
// forwarded or echoed byte for byte; decode it when and how needed.
//
// # Building packets
//
//	p, err := parser.NewEvent("/chat", "message", "hello", 42, []byte{1, 2, 3})
//	text, attachments, err := parser.Encode(p)
//	// text is 51-/chat,["message","hello",42,{"_placeholder":true,"num":0}]
//	// send "4"+text, then each attachment as a binary message
//
// JSON is written as encoding/json does, with HTML escaping off (the
// reference server does not escape <, > and &).
//
// # Echoing received arguments
//
// [Packet.Args] returns each argument as an [Arg]: its raw JSON plus the
// packet's attachments. Passing Args to [MarshalArgs], [NewEvent] or
// [NewAck] embeds their JSON unchanged and re-attaches their buffers,
// renumbering placeholders for the new packet. So a received
// 452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]
// echoed as NewEvent(nsp, "message-back", args...) is sent as
// 452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]
// with the same two buffers.
//
// # Protocol versions
//
// The reference server decodes v4 and v5 clients with the same parser, and
// so does this package; the framing is the same. The differences are in
// what the server sends and how it reads CONNECT:
//
//   - v5 clients must send CONNECT for every namespace, "/" included; its
//     payload (an object, default {}) is the handshake auth. The server
//     answers with a payload from [ConnectPayload].
//   - v4 clients are connected to "/" implicitly: the server sends CONNECT
//     without payload ("40"). For other namespaces the client sends
//     "40/nsp?token=abc," with no payload: auth comes as a query string,
//     see [SplitNamespace].
//   - CONNECT_ERROR carries {"message":...,"data":...} in v5 and the bare
//     data (or message) in v4; see [ConnectErrorPayload]. A Decoder with
//     Version set to [Version4] accepts any JSON there.
//
// # Concurrency
//
// The functions of this package are safe for concurrent use. A [Decoder]
// must be used by one goroutine at a time. A [Packet] may be encoded by
// many goroutines at once as long as none modifies it, so a broadcast can
// encode once and share the bytes.
package parser
