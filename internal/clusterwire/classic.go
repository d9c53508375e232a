package clusterwire

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/parser"
)

// Broadcast is the classic adapter's broadcast message (reference §1.3),
// published on [PublishChannel] as the msgpack array
// [uid, {type, data, nsp}, {rooms, except, flags}].
type Broadcast struct {
	// UID is the sender adapter's uid, or [EmitterUID].
	UID string
	// Packet is the event. Its Namespace ("" meaning "/") is written as
	// the packet's nsp; BINARY_EVENT is written as EVENT (binary travels
	// as msgpack bin); ID only if HasID (Node.js never sends one).
	Packet parser.Packet
	// Opts are the targets and flags. Flags.Local is never written.
	Opts adapter.BroadcastOptions
}

// Value returns the broadcast as the Value notepack.io encodes, with the
// options members in the given order.
func (b *Broadcast) Value(order KeyOrder) (Value, error) {
	pkt, err := packetValue(&b.Packet, true)
	if err != nil {
		return Value{}, err
	}
	return Array(Str(b.UID), pkt, optsValue(&b.Opts, true, order)), nil
}

// EncodeBroadcast returns the msgpack bytes of b. The adapter writes
// AdapterOrder, @socket.io/redis-emitter EmitterOrder.
func EncodeBroadcast(b *Broadcast, order KeyOrder) ([]byte, error) {
	v, err := b.Value(order)
	if err != nil {
		return nil, err
	}
	return AppendMsgpack(make([]byte, 0, 128), v), nil
}

// DecodeBroadcast decodes a message received on a classic broadcast
// channel (always msgpack). It accepts what Node.js accepts: any integer
// width or float 32, a packet without nsp (which becomes "/") or with
// type 5, options without except or flags (the legacy emitter), numeric
// rooms. Binary values become the packet's Attachments (sharing msg's
// memory) and dates ISO strings.
//
// The caller still applies the receiver's rules: drop its own uid, drop a
// namespace other than its own.
func DecodeBroadcast(msg []byte) (*Broadcast, error) {
	v, err := DecodeMsgpack(msg)
	if err != nil {
		return nil, err
	}
	if v.kind != KindArray || len(v.arr) < 3 {
		return nil, malformed("broadcast is not an array of 3 elements: %v", v.kind)
	}
	uid, ok := roomName(v.arr[0])
	if !ok {
		return nil, malformed("broadcast uid is a %v", v.arr[0].kind)
	}
	b := &Broadcast{UID: uid}
	if b.Packet, err = decodePacket(v.arr[1], "/"); err != nil {
		return nil, err
	}
	if b.Opts, err = decodeOpts(v.arr[2]); err != nil {
		return nil, err
	}
	return b, nil
}

// BroadcastUID returns the uid of a classic broadcast message without
// decoding the rest, so that a node can drop its own echo cheaply (every
// broadcast a node publishes comes back to it through its pattern
// subscription). ok is false if msg does not start like a broadcast; the
// message may still be malformed further on.
func BroadcastUID(msg []byte) (uid string, ok bool) {
	d := msgpackDecoder{b: msg}
	if len(msg) == 0 {
		return "", false
	}
	switch c := msg[0]; { // an array of at least 3 elements
	case c >= 0x93 && c <= 0x9f:
		d.off = 1
	case c == 0xdc:
		d.off = 3
	case c == 0xdd:
		d.off = 5
	default:
		return "", false
	}
	v, err := d.value(1)
	if err != nil {
		return "", false
	}
	return roomName(v)
}

// RequestType is the type of a classic adapter request or response
// (reference §1.4). It is a different numbering from [MessageType].
type RequestType int

// Classic adapter request types.
const (
	ReqSockets              RequestType = 0 // 7.x sockets(); still answered
	ReqAllRooms             RequestType = 1
	ReqRemoteJoin           RequestType = 2
	ReqRemoteLeave          RequestType = 3
	ReqRemoteDisconnect     RequestType = 4
	ReqRemoteFetch          RequestType = 5
	ReqServerSideEmit       RequestType = 6
	ReqBroadcast            RequestType = 7 // broadcast with acknowledgements
	ReqBroadcastClientCount RequestType = 8 // response only
	ReqBroadcastAck         RequestType = 9 // response only
)

var requestTypeNames = [...]string{"SOCKETS", "ALL_ROOMS", "REMOTE_JOIN", "REMOTE_LEAVE", "REMOTE_DISCONNECT",
	"REMOTE_FETCH", "SERVER_SIDE_EMIT", "BROADCAST", "BROADCAST_CLIENT_COUNT", "BROADCAST_ACK"}

// String returns the Node.js enum name, such as "REMOTE_FETCH".
func (t RequestType) String() string {
	if t >= 0 && int(t) < len(requestTypeNames) {
		return requestTypeNames[t]
	}
	return "RequestType(" + strconv.Itoa(int(t)) + ")"
}

// Request is a message on the classic request channel (§1.4). Which fields
// are written depends on Type:
//
//	SOCKETS (0)            {uid, requestId, type, rooms}
//	ALL_ROOMS (1)          {uid, requestId, type}
//	REMOTE_JOIN/LEAVE      {uid, type, opts:{rooms, except}, rooms}
//	                       legacy (Opts nil): {uid, requestId, type, sid, room}
//	REMOTE_DISCONNECT (4)  {uid, type, opts:{rooms, except}, close}
//	                       legacy (Opts nil): {uid, requestId, type, sid, close}
//	REMOTE_FETCH (5)       {uid, requestId, type, opts:{rooms, except}}
//	SERVER_SIDE_EMIT (6)   {uid, [requestId,] type, data}
//	BROADCAST (7)          {uid, requestId, type, packet:{type, data, nsp}, opts:{rooms, except, flags}}
//
// uid and requestId are left out when empty (the emitter's join, leave and
// disconnect requests have no uid).
type Request struct {
	Type      RequestType
	UID       string
	RequestID string
	// Opts selects the target sockets of REMOTE_JOIN, REMOTE_LEAVE,
	// REMOTE_DISCONNECT, REMOTE_FETCH and BROADCAST (flags only for
	// BROADCAST). For types 2–4, nil means the legacy 7.x form addressing
	// one socket by SID.
	Opts *adapter.BroadcastOptions
	// Rooms are the rooms to list (SOCKETS) or to join or leave.
	Rooms []string
	// SID and Room are the legacy form's socket and room.
	SID, Room string
	// Close is REMOTE_DISCONNECT's close argument.
	Close bool
	// Data is SERVER_SIDE_EMIT's [event, ...args], with binary as
	// placeholders indexing Attachments.
	Data        json.RawMessage
	Attachments [][]byte
	// Packet is BROADCAST's packet (written with its nsp).
	Packet parser.Packet
}

// DefaultFormat returns the format Node.js uses for r: msgpack for
// BROADCAST, JSON for every other request.
func (r *Request) DefaultFormat() Format {
	if r.Type == ReqBroadcast {
		return FormatMsgpack
	}
	return FormatJSON
}

// Value returns r as the object Node.js builds for it.
func (r *Request) Value() (Value, error) {
	m := make(members, 0, 5)
	if r.UID != "" {
		m.add("uid", Str(r.UID))
	}
	if r.RequestID != "" {
		m.add("requestId", Str(r.RequestID))
	}
	m.add("type", Int(int64(r.Type)))
	noOpts := adapter.BroadcastOptions{}
	switch r.Type {
	case ReqSockets:
		m.add("rooms", stringsValue(r.Rooms))
	case ReqAllRooms:
	case ReqRemoteJoin, ReqRemoteLeave:
		if r.Opts == nil {
			m.add("sid", Str(r.SID))
			m.add("room", Str(r.Room))
			break
		}
		m.add("opts", optsValue(r.Opts, false, AdapterOrder))
		m.add("rooms", stringsValue(r.Rooms))
	case ReqRemoteDisconnect:
		if r.Opts == nil {
			m.add("sid", Str(r.SID))
		} else {
			m.add("opts", optsValue(r.Opts, false, AdapterOrder))
		}
		m.add("close", Bool(r.Close))
	case ReqRemoteFetch:
		o := r.Opts
		if o == nil {
			o = &noOpts
		}
		m.add("opts", optsValue(o, false, AdapterOrder))
	case ReqServerSideEmit:
		data, err := DataToValue(r.Data, r.Attachments)
		if err != nil {
			return Value{}, err
		}
		m.add("data", data)
	case ReqBroadcast:
		pkt, err := packetValue(&r.Packet, true)
		if err != nil {
			return Value{}, err
		}
		m.add("packet", pkt)
		o := r.Opts
		if o == nil {
			o = &noOpts
		}
		m.add("opts", optsValue(o, true, AdapterOrder))
	default:
		return Value{}, fmt.Errorf("clusterwire: %v is not a request type", r.Type)
	}
	return m.value(), nil
}

// EncodeRequest returns the bytes of r in format f ([FormatDefault]: the
// format Node.js uses, see [Request.DefaultFormat]). Node.js receivers
// accept either format. In JSON, binary values are written as
// JSON.stringify writes Buffers, {"type":"Buffer","data":[...]}, which is
// what a Node.js sender would publish; use msgpack to keep them binary.
func EncodeRequest(r *Request, f Format) ([]byte, error) {
	v, err := r.Value()
	if err != nil {
		return nil, err
	}
	if f == FormatDefault {
		f = r.DefaultFormat()
	}
	return encodeValue(make([]byte, 0, 128), v, f), nil
}

// DecodeRequest decodes a message received on the request channel, JSON
// if it starts with '{' and msgpack otherwise. It reads every field the
// message has, whatever its type; an unknown type is not an error (Node.js
// ignores it). Binary values in data or packet become attachments.
func DecodeRequest(msg []byte) (*Request, error) {
	v, err := decodeAny(msg)
	if err != nil {
		return nil, err
	}
	if v.kind != KindMap {
		return nil, malformed("request is a %v, not a map", v.kind)
	}
	r := &Request{}
	t, ok := v.Get("type").AsInt()
	if !ok || t < 0 || t > 1<<31 {
		return nil, malformed("request type %v", v.Get("type"))
	}
	r.Type = RequestType(t)
	if r.UID, err = optString(v.Get("uid"), "uid"); err != nil {
		return nil, err
	}
	if r.RequestID, err = optString(v.Get("requestId"), "requestId"); err != nil {
		return nil, err
	}
	if o := v.Get("opts"); o.kind != KindUndefined && o.kind != KindNil {
		opts, err := decodeOpts(o)
		if err != nil {
			return nil, err
		}
		r.Opts = &opts
	}
	if r.Rooms, err = decodeRooms(v.Get("rooms"), "rooms"); err != nil {
		return nil, err
	}
	if r.SID, err = optString(v.Get("sid"), "sid"); err != nil {
		return nil, err
	}
	if r.Room, err = optString(v.Get("room"), "room"); err != nil {
		return nil, err
	}
	r.Close = v.Get("close").Truthy()
	if r.Data, r.Attachments, err = packetData(v.Get("data")); err != nil {
		return nil, err
	}
	if p := v.Get("packet"); p.kind != KindUndefined {
		if r.Packet, err = decodePacket(p, "/"); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Response is a message on a classic response channel (§1.4). Which fields
// are written depends on Type, the type of the request it answers:
//
//	SOCKETS (0)                 {requestId, sockets:[sid...]}
//	ALL_ROOMS (1)               {requestId, rooms}
//	REMOTE_JOIN/LEAVE/DISCONNECT (legacy) {requestId}
//	REMOTE_FETCH (5)            {requestId, sockets:[{id, handshake, rooms, data}]}
//	SERVER_SIDE_EMIT (6)        {type, requestId, data}
//	BROADCAST_CLIENT_COUNT (8)  {type, requestId, clientCount}
//	BROADCAST_ACK (9)           {type, requestId, packet}
type Response struct {
	Type      RequestType
	RequestID string
	// SocketIDs answers SOCKETS.
	SocketIDs []string
	// Rooms answers ALL_ROOMS.
	Rooms []string
	// Sockets answers REMOTE_FETCH.
	Sockets []SocketRecord
	// ClientCount is BROADCAST_CLIENT_COUNT's count.
	ClientCount int
	// Data is the single value of a SERVER_SIDE_EMIT ack ("data") or of a
	// BROADCAST_ACK ("packet"): the first argument of the acknowledgement
	// (see [FirstArg]), with binary as placeholders indexing Attachments.
	// Empty means undefined: the member is left out.
	Data        json.RawMessage
	Attachments [][]byte
}

// DefaultFormat returns the format Node.js uses for r: msgpack for
// BROADCAST_ACK, JSON for every other response.
func (r *Response) DefaultFormat() Format {
	if r.Type == ReqBroadcastAck {
		return FormatMsgpack
	}
	return FormatJSON
}

// Value returns r as the object Node.js builds for it.
func (r *Response) Value() (Value, error) {
	m := make(members, 0, 5)
	typed := r.Type == ReqServerSideEmit || r.Type == ReqBroadcastClientCount || r.Type == ReqBroadcastAck
	if typed {
		m.add("type", Int(int64(r.Type)))
	}
	if r.RequestID != "" {
		m.add("requestId", Str(r.RequestID))
	}
	switch r.Type {
	case ReqSockets:
		m.add("sockets", stringsValue(r.SocketIDs))
	case ReqAllRooms:
		m.add("rooms", stringsValue(r.Rooms))
	case ReqRemoteJoin, ReqRemoteLeave, ReqRemoteDisconnect:
	case ReqRemoteFetch:
		m.add("sockets", socketsValue(r.Sockets))
	case ReqServerSideEmit, ReqBroadcastAck:
		data, err := DataToValue(r.Data, r.Attachments)
		if err != nil {
			return Value{}, err
		}
		key := "data"
		if r.Type == ReqBroadcastAck {
			key = "packet"
		}
		m.add(key, data)
	case ReqBroadcastClientCount:
		m.add("clientCount", Int(int64(r.ClientCount)))
	default:
		return Value{}, fmt.Errorf("clusterwire: %v is not a response type", r.Type)
	}
	return m.value(), nil
}

// EncodeResponse returns the bytes of r in format f ([FormatDefault]: the
// format Node.js uses, see [Response.DefaultFormat]).
func EncodeResponse(r *Response, f Format) ([]byte, error) {
	v, err := r.Value()
	if err != nil {
		return nil, err
	}
	if f == FormatDefault {
		f = r.DefaultFormat()
	}
	return encodeValue(make([]byte, 0, 128), v, f), nil
}

// DecodeResponse decodes a message received on a response channel (JSON if
// it starts with '{', msgpack otherwise).
//
// Only SERVER_SIDE_EMIT acks, client counts and broadcast acks carry a
// type; for the others Type is inferred from the members (rooms: ALL_ROOMS;
// sockets of objects, or empty: REMOTE_FETCH; sockets of strings: SOCKETS;
// nothing but requestId: REMOTE_JOIN). A requester should rely on the type
// of the request it sent, as Node.js does: SocketIDs and Sockets are both
// filled from "sockets" where its elements allow.
func DecodeResponse(msg []byte) (*Response, error) {
	v, err := decodeAny(msg)
	if err != nil {
		return nil, err
	}
	if v.kind != KindMap {
		return nil, malformed("response is a %v, not a map", v.kind)
	}
	r := &Response{}
	if r.RequestID, err = optString(v.Get("requestId"), "requestId"); err != nil {
		return nil, err
	}
	if r.Rooms, err = decodeRooms(v.Get("rooms"), "rooms"); err != nil {
		return nil, err
	}
	sockets := v.Get("sockets")
	if sockets.kind == KindArray {
		for _, e := range sockets.arr {
			if s, ok := roomName(e); ok {
				r.SocketIDs = append(r.SocketIDs, s)
				continue
			}
			rec, err := decodeSocketRecord(e)
			if err != nil {
				return nil, err
			}
			r.Sockets = append(r.Sockets, rec)
		}
	}
	if n, ok := v.Get("clientCount").AsFloat(); ok {
		r.ClientCount = clampInt(n)
	}
	tv := v.Get("type")
	switch {
	case tv.kind != KindUndefined:
		t, ok := tv.AsInt()
		if !ok || t < 0 || t > 1<<31 {
			return nil, malformed("response type %v", tv)
		}
		r.Type = RequestType(t)
	case v.Get("rooms").kind != KindUndefined:
		r.Type = ReqAllRooms
	case sockets.kind != KindUndefined:
		r.Type = ReqRemoteFetch
		if len(r.SocketIDs) > 0 && len(r.Sockets) == 0 {
			r.Type = ReqSockets
		}
	default:
		r.Type = ReqRemoteJoin
	}
	key := "data"
	if r.Type == ReqBroadcastAck {
		key = "packet"
	}
	if r.Data, r.Attachments, err = packetData(v.Get(key)); err != nil {
		return nil, err
	}
	return r, nil
}

// clampInt converts a JavaScript number to an int, saturating.
func clampInt(f float64) int {
	switch {
	case f != f:
		return 0
	case f >= float64(maxInt):
		return maxInt
	case f <= float64(minInt):
		return minInt
	}
	return int(f)
}

const (
	maxInt = int(^uint(0) >> 1)
	minInt = -maxInt - 1
)
