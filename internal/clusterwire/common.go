package clusterwire

import (
	"math"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/parser"
)

// Format is the encoding of a message: JSON or MessagePack.
type Format uint8

// Formats. FormatDefault asks for the format Node.js uses for that kind
// of message.
const (
	FormatDefault Format = iota
	FormatJSON
	FormatMsgpack
)

// String returns "json", "msgpack" or "default".
func (f Format) String() string {
	switch f {
	case FormatJSON:
		return "json"
	case FormatMsgpack:
		return "msgpack"
	}
	return "default"
}

// Sniff returns the format of a message received on a request, response or
// ClusterAdapter channel, by Node.js's rule: JSON when the first byte is
// '{', MessagePack otherwise.
func Sniff(msg []byte) Format {
	if len(msg) > 0 && msg[0] == '{' {
		return FormatJSON
	}
	return FormatMsgpack
}

// decodeAny decodes msg in its sniffed format.
func decodeAny(msg []byte) (Value, error) {
	if Sniff(msg) == FormatJSON {
		return DecodeJSON(msg)
	}
	return DecodeMsgpack(msg)
}

// encodeValue encodes v in format f (JSON when f is FormatJSON).
func encodeValue(dst []byte, v Value, f Format) []byte {
	if f == FormatJSON {
		return AppendJSON(dst, v)
	}
	return AppendMsgpack(dst, v)
}

// KeyOrder is the member order of a broadcast's options map.
type KeyOrder uint8

// Key orders of the options map {rooms, except, flags}. The order carries
// no meaning; they exist to reproduce Node.js's bytes exactly.
const (
	// AdapterOrder is rooms, except, flags: what the adapters write.
	AdapterOrder KeyOrder = iota
	// EmitterOrder is rooms, flags, except: what @socket.io/redis-emitter
	// writes.
	EmitterOrder
)

// members is a small builder of ordered maps.
type members []Member

func (m *members) add(key string, v Value) { *m = append(*m, Member{Key: key, Value: v}) }

func (m members) value() Value { return Map(m...) }

// strings returns an array Value of strings (empty, never undefined).
func stringsValue(ss []string) Value {
	elems := make([]Value, len(ss))
	for i, s := range ss {
		elems[i] = Str(s)
	}
	return Array(elems...)
}

// flagsValue returns the flags map as socket.io's BroadcastOperator builds
// it: volatile, compress, expectSingleResponse, timeout (milliseconds),
// each only when set. Local is never published.
func flagsValue(f adapter.Flags) Value {
	m := make(members, 0, 5)
	if f.Volatile {
		m.add("volatile", Bool(true))
	}
	if f.Compress != nil {
		m.add("compress", Bool(*f.Compress))
	}
	if f.ExpectSingleResponse {
		m.add("expectSingleResponse", Bool(true))
	}
	if f.Timeout != 0 {
		if f.Timeout%time.Millisecond == 0 {
			m.add("timeout", Int(f.Timeout.Milliseconds()))
		} else {
			m.add("timeout", Float(float64(f.Timeout)/float64(time.Millisecond)))
		}
	}
	return m.value()
}

// optsValue returns {rooms, except[, flags]} in the given order.
func optsValue(o *adapter.BroadcastOptions, withFlags bool, order KeyOrder) Value {
	m := make(members, 0, 5)
	m.add("rooms", stringsValue(o.Rooms))
	if withFlags && order == EmitterOrder {
		m.add("flags", flagsValue(o.Flags))
		m.add("except", stringsValue(o.Except))
		return m.value()
	}
	m.add("except", stringsValue(o.Except))
	if withFlags {
		m.add("flags", flagsValue(o.Flags))
	}
	return m.value()
}

// decodeOpts reads {rooms, except, flags}. Missing members are empty, as
// new Set(undefined) is; unknown flags are ignored, and so is local (a
// received broadcast is delivered whatever the sender's local flag).
func decodeOpts(v Value) (adapter.BroadcastOptions, error) {
	var o adapter.BroadcastOptions
	if v.kind != KindMap {
		return o, malformed("opts is a %v, not a map", v.kind)
	}
	var err error
	if o.Rooms, err = decodeRooms(v.Get("rooms"), "opts.rooms"); err != nil {
		return o, err
	}
	if o.Except, err = decodeRooms(v.Get("except"), "opts.except"); err != nil {
		return o, err
	}
	o.Flags, err = decodeFlags(v.Get("flags"))
	return o, err
}

func decodeFlags(v Value) (adapter.Flags, error) {
	var f adapter.Flags
	switch v.kind {
	case KindUndefined, KindNil:
		return f, nil
	case KindMap:
	default:
		return f, malformed("opts.flags is a %v, not a map", v.kind)
	}
	f.Volatile = v.Get("volatile").Truthy()
	if c := v.Get("compress"); c.kind != KindUndefined {
		// engine.io only disables compression for an explicit false.
		b := !(c.kind == KindBool && c.bits == 0)
		f.Compress = &b
	}
	f.ExpectSingleResponse = v.Get("expectSingleResponse").Truthy()
	if ms, ok := v.Get("timeout").AsFloat(); ok && ms > 0 && !math.IsInf(ms, 0) {
		if ms >= float64(math.MaxInt64/int64(time.Millisecond)) {
			f.Timeout = math.MaxInt64
		} else {
			f.Timeout = time.Duration(ms * float64(time.Millisecond))
		}
	}
	return f, nil
}

// decodeRooms reads an array of room names. Numbers are accepted and
// converted as JavaScript does (rooms may be numbers in Node.js). Missing
// or null gives nil.
func decodeRooms(v Value, what string) ([]string, error) {
	switch v.kind {
	case KindUndefined, KindNil:
		return nil, nil
	case KindArray:
	default:
		return nil, malformed("%s is a %v, not an array", what, v.kind)
	}
	if len(v.arr) == 0 {
		return nil, nil
	}
	out := make([]string, len(v.arr))
	for i, e := range v.arr {
		s, ok := roomName(e)
		if !ok {
			return nil, malformed("%s[%d] is a %v", what, i, e.kind)
		}
		out[i] = s
	}
	return out, nil
}

// roomName converts a room (or socket id) value to its string form.
func roomName(v Value) (string, bool) {
	switch v.kind {
	case KindString:
		return v.str, true
	case KindInt, KindUint, KindFloat:
		return jsScalarString(v), true
	}
	return "", false
}

// optString reads an optional string member; numbers are converted.
func optString(v Value, what string) (string, error) {
	switch v.kind {
	case KindUndefined, KindNil:
		return "", nil
	}
	if s, ok := roomName(v); ok {
		return s, nil
	}
	return "", malformed("%s is a %v, not a string", what, v.kind)
}

// wirePacketType returns the type Node.js publishes: always the plain
// EVENT/ACK type, binary being carried as msgpack bin.
func wirePacketType(t parser.Type) parser.Type {
	switch t {
	case parser.BinaryEvent:
		return parser.Event
	case parser.BinaryAck:
		return parser.Ack
	}
	return t
}

// packetValue returns the socket.io-parser packet object {type, data[,
// nsp][, id]}: BINARY_EVENT/BINARY_ACK are written as EVENT/ACK, the data
// converted with [DataToValue], nsp ("/" for "") only with withNsp, id
// only when set.
func packetValue(p *parser.Packet, withNsp bool) (Value, error) {
	m := make(members, 0, 5)
	m.add("type", Int(int64(wirePacketType(p.Type))))
	data, err := DataToValue(p.Data, p.Attachments)
	if err != nil {
		return Value{}, err
	}
	m.add("data", data) // skipped by the encoders when undefined
	if withNsp {
		nsp := p.Namespace
		if nsp == "" {
			nsp = "/"
		}
		m.add("nsp", Str(nsp))
	}
	if p.HasID {
		m.add("id", Uint(p.ID))
	}
	return m.value(), nil
}

// decodePacket reads a packet object. A missing nsp gives defaultNsp.
func decodePacket(v Value, defaultNsp string) (parser.Packet, error) {
	var p parser.Packet
	if v.kind != KindMap {
		return p, malformed("packet is a %v, not a map", v.kind)
	}
	t, ok := v.Get("type").AsInt()
	if !ok || t < 0 || t > 0xff || !parser.Type(t).Valid() {
		return p, malformed("packet type %v", v.Get("type"))
	}
	p.Type = parser.Type(t)
	var err error
	if p.Data, p.Attachments, err = packetData(v.Get("data")); err != nil {
		return p, err
	}
	switch nsp := v.Get("nsp"); nsp.kind {
	case KindUndefined:
		p.Namespace = defaultNsp
	case KindString:
		p.Namespace = nsp.str
	default:
		return p, malformed("packet nsp is a %v", nsp.kind)
	}
	if id := v.Get("id"); id.kind != KindUndefined && id.kind != KindNil {
		n, ok := id.AsInt()
		if !ok || n < 0 {
			if id.kind != KindUint {
				return p, malformed("packet id %v", id)
			}
			p.ID, p.HasID = id.bits, true
		} else {
			p.ID, p.HasID = uint64(n), true
		}
	}
	return p, nil
}
