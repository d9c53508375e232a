package clusterwire

import (
	"encoding/json"
)

// DataToValue converts Socket.IO packet data, a JSON text with binary
// values replaced by {"_placeholder":true,"num":N} (parser.Packet.Data and
// Attachments), to the Value a Node.js node holds after socket.io-parser
// reconstructed it: each placeholder becomes the binary attachments[N],
// object members keep their order, and numbers follow [DecodeJSON]
// (integral numbers within int64/uint64 stay exact integers).
//
// As in socket.io-parser, placeholders are plain objects when attachments
// is empty; otherwise an object whose _placeholder member is true must
// have a num indexing attachments. Empty data gives the undefined Value.
// Binary values share the attachments' memory.
func DataToValue(data json.RawMessage, attachments [][]byte) (Value, error) {
	if len(data) == 0 {
		return Value{}, nil
	}
	p := jsonParser{b: data, atts: attachments, withAtts: len(attachments) > 0}
	v, err := p.value(0)
	if err != nil {
		return Value{}, err
	}
	p.space()
	if p.off != len(p.b) {
		return Value{}, malformed("json: trailing data at offset %d", p.off)
	}
	return v, nil
}

// ValueToData converts v to Socket.IO packet data: JSON as JSON.stringify
// writes it (see [AppendJSON]), except that every binary value becomes a
// placeholder {"_placeholder":true,"num":N}, N counting from 0 in
// depth-first order, and is returned in attachments (sharing v's memory).
// Dates become ISO strings, NaN and ±Inf become null. The undefined Value
// gives nil data.
//
// As with socket.io-parser, a map of v that looks like a placeholder is
// indistinguishable from one in the result when v also holds binary; the
// message decoders of this package reject such data.
func ValueToData(v Value) (data json.RawMessage, attachments [][]byte) {
	if v.kind == KindUndefined {
		return nil, nil
	}
	data = appendJSON(make([]byte, 0, 64), v, &attachments)
	return data, attachments
}

// packetData is ValueToData for the message decoders: it refuses a value
// that holds binary together with a map that socket.io-parser would take
// for a placeholder ({"_placeholder":true,...}), since the packet built
// from it would not mean what was sent.
func packetData(v Value) (json.RawMessage, [][]byte, error) {
	if v.HasBinary() && hasPlaceholderMap(v) {
		return nil, nil, malformed("data holds binary and an object that reads as a placeholder")
	}
	data, atts := ValueToData(v)
	return data, atts, nil
}

func hasPlaceholderMap(v Value) bool {
	switch v.kind {
	case KindArray:
		for _, e := range v.arr {
			if hasPlaceholderMap(e) {
				return true
			}
		}
	case KindMap:
		if ph := v.Get("_placeholder"); ph.kind == KindBool && ph.bits != 0 {
			return true
		}
		for _, m := range v.obj {
			if hasPlaceholderMap(m.Value) {
				return true
			}
		}
	}
	return false
}

// DataToMsgpack appends to dst the MessagePack encoding (as notepack.io
// writes it) of packet data and its attachments: [DataToValue] then
// [AppendMsgpack]. Placeholders become bin, strings str.
func DataToMsgpack(dst []byte, data json.RawMessage, attachments [][]byte) ([]byte, error) {
	v, err := DataToValue(data, attachments)
	if err != nil {
		return dst, err
	}
	return AppendMsgpack(dst, v), nil
}

// MsgpackToData decodes one MessagePack value into Socket.IO packet data:
// [DecodeMsgpack] then [ValueToData]. Attachments share b's memory.
func MsgpackToData(b []byte) (data json.RawMessage, attachments [][]byte, err error) {
	v, err := DecodeMsgpack(b)
	if err != nil {
		return nil, nil, err
	}
	data, attachments = ValueToData(v)
	return data, attachments, nil
}

// FirstArg returns the first element of a JSON array, such as the
// arguments of an acknowledgement (adapter.Ack.Args): the value a Node.js
// adapter forwards in SERVER_SIDE_EMIT and BROADCAST_ACK responses. ok is
// false when args is not an array or is empty. Placeholders in the result
// keep their numbers, so it is used with the same attachments.
func FirstArg(args json.RawMessage) (first json.RawMessage, ok bool) {
	p := jsonParser{b: args}
	p.space()
	if p.off >= len(p.b) || p.b[p.off] != '[' {
		return nil, false
	}
	p.off++
	p.space()
	start := p.off
	if _, err := p.value(0); err != nil {
		return nil, false
	}
	return args[start:p.off], true
}

// ArgsOf wraps a single value (the first-argument of an acknowledgement as
// Node.js adapters forward it) back into an arguments array: [value], or
// [] when value is empty (undefined).
func ArgsOf(value json.RawMessage) json.RawMessage {
	if len(value) == 0 {
		return json.RawMessage("[]")
	}
	out := make([]byte, 0, len(value)+2)
	out = append(out, '[')
	out = append(out, value...)
	return append(out, ']')
}
