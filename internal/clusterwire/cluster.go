package clusterwire

import (
	"encoding/json"
	"strconv"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/parser"
)

// MessageType is the type of a ClusterAdapter message (socket.io-adapter's
// MessageType, reference §2), shared by the sharded Redis adapter, the
// Redis streams adapter, and the Postgres, Mongo and cluster adapters. It
// is a different numbering from the classic [RequestType].
type MessageType int

// ClusterAdapter message types.
const (
	MsgInitialHeartbeat       MessageType = 1
	MsgHeartbeat              MessageType = 2
	MsgBroadcast              MessageType = 3
	MsgSocketsJoin            MessageType = 4
	MsgSocketsLeave           MessageType = 5
	MsgDisconnectSockets      MessageType = 6
	MsgFetchSockets           MessageType = 7
	MsgFetchSocketsResponse   MessageType = 8
	MsgServerSideEmit         MessageType = 9
	MsgServerSideEmitResponse MessageType = 10
	MsgBroadcastClientCount   MessageType = 11
	MsgBroadcastAck           MessageType = 12
	MsgAdapterClose           MessageType = 13
)

var messageTypeNames = [...]string{"", "INITIAL_HEARTBEAT", "HEARTBEAT", "BROADCAST", "SOCKETS_JOIN",
	"SOCKETS_LEAVE", "DISCONNECT_SOCKETS", "FETCH_SOCKETS", "FETCH_SOCKETS_RESPONSE", "SERVER_SIDE_EMIT",
	"SERVER_SIDE_EMIT_RESPONSE", "BROADCAST_CLIENT_COUNT", "BROADCAST_ACK", "ADAPTER_CLOSE"}

// String returns the Node.js enum name, such as "FETCH_SOCKETS".
func (t MessageType) String() string {
	if t >= 1 && int(t) < len(messageTypeNames) {
		return messageTypeNames[t]
	}
	return "MessageType(" + strconv.Itoa(int(t)) + ")"
}

// IsResponse reports whether t is one of the response types, which a
// ClusterAdapter sends to the requester's own channel.
func (t MessageType) IsResponse() bool {
	switch t {
	case MsgFetchSocketsResponse, MsgServerSideEmitResponse, MsgBroadcastClientCount, MsgBroadcastAck:
		return true
	}
	return false
}

// mayContainBinary lists the types the sharded adapter msgpack-encodes
// when their data holds binary.
func (t MessageType) mayContainBinary() bool {
	switch t {
	case MsgBroadcast, MsgBroadcastAck, MsgFetchSocketsResponse, MsgServerSideEmit, MsgServerSideEmitResponse:
		return true
	}
	return false
}

// ClusterMessage is a ClusterAdapter message or response, the object
// {type, data, uid, nsp}. The members of data depend on Type, in Node.js's
// order:
//
//	INITIAL_HEARTBEAT, HEARTBEAT, ADAPTER_CLOSE  no data
//	BROADCAST                  {packet:{type, data}, opts:{rooms, except, flags}}
//	                           with ack: {packet, requestId, opts}
//	SOCKETS_JOIN, SOCKETS_LEAVE {opts, rooms}
//	DISCONNECT_SOCKETS         {opts, close}
//	FETCH_SOCKETS              {opts, requestId}
//	FETCH_SOCKETS_RESPONSE     {requestId, sockets}
//	SERVER_SIDE_EMIT           {packet:[event, ...args]}, with ack {requestId, packet}
//	SERVER_SIDE_EMIT_RESPONSE  {requestId, packet}
//	BROADCAST_CLIENT_COUNT     {requestId, clientCount}
//	BROADCAST_ACK              {requestId, packet}
type ClusterMessage struct {
	Type MessageType
	// UID is the sender's uid (also in responses), or [EmitterUID].
	UID string
	// Nsp is the namespace; Node.js receivers drop other namespaces.
	Nsp string
	// RequestID is set on BROADCAST with ack, FETCH_SOCKETS, SERVER_SIDE_EMIT
	// with ack and every response.
	RequestID string
	// Packet is BROADCAST's packet. It is written as {type, data} (no nsp,
	// no id, as socket.io-adapter publishes it); decoding sets its
	// Namespace to the packet's nsp if present, else to Nsp.
	Packet parser.Packet
	// Opts are the targets of BROADCAST, SOCKETS_JOIN, SOCKETS_LEAVE,
	// DISCONNECT_SOCKETS and FETCH_SOCKETS, always written with flags.
	Opts adapter.BroadcastOptions
	// Rooms are the rooms to join or leave.
	Rooms []string
	// Close is DISCONNECT_SOCKETS's close argument.
	Close bool
	// Sockets is FETCH_SOCKETS_RESPONSE's list.
	Sockets []SocketRecord
	// ClientCount is BROADCAST_CLIENT_COUNT's count.
	ClientCount int
	// Data is the "packet" member of SERVER_SIDE_EMIT (the array [event,
	// ...args]) or of SERVER_SIDE_EMIT_RESPONSE and BROADCAST_ACK (the
	// single ack value, see [FirstArg]; empty leaves it out), with binary
	// as placeholders indexing Attachments.
	Data        json.RawMessage
	Attachments [][]byte
}

// DataValue returns the data member of m, undefined for the types that
// have none. The Redis streams adapter writes it on its own, as the data
// field of a stream entry (JSON, or base64 of msgpack when it has binary).
func (m *ClusterMessage) DataValue() (Value, error) {
	d := make(members, 0, 3)
	switch m.Type {
	case MsgInitialHeartbeat, MsgHeartbeat, MsgAdapterClose:
		return Value{}, nil
	case MsgBroadcast:
		pkt, err := packetValue(&m.Packet, false)
		if err != nil {
			return Value{}, err
		}
		d.add("packet", pkt)
		if m.RequestID != "" {
			d.add("requestId", Str(m.RequestID))
		}
		d.add("opts", optsValue(&m.Opts, true, AdapterOrder))
	case MsgSocketsJoin, MsgSocketsLeave:
		d.add("opts", optsValue(&m.Opts, true, AdapterOrder))
		d.add("rooms", stringsValue(m.Rooms))
	case MsgDisconnectSockets:
		d.add("opts", optsValue(&m.Opts, true, AdapterOrder))
		d.add("close", Bool(m.Close))
	case MsgFetchSockets:
		d.add("opts", optsValue(&m.Opts, true, AdapterOrder))
		d.add("requestId", Str(m.RequestID))
	case MsgFetchSocketsResponse:
		d.add("requestId", Str(m.RequestID))
		d.add("sockets", socketsValue(m.Sockets))
	case MsgServerSideEmit, MsgServerSideEmitResponse, MsgBroadcastAck:
		if m.RequestID != "" || m.Type != MsgServerSideEmit {
			d.add("requestId", Str(m.RequestID))
		}
		v, err := DataToValue(m.Data, m.Attachments)
		if err != nil {
			return Value{}, err
		}
		d.add("packet", v)
	case MsgBroadcastClientCount:
		d.add("requestId", Str(m.RequestID))
		d.add("clientCount", Int(int64(m.ClientCount)))
	default:
		// Unknown types travel without data.
		return Value{}, nil
	}
	return d.value(), nil
}

// Value returns m as the object {type, data, uid, nsp} socket.io-adapter
// builds; data is left out for the types without data.
func (m *ClusterMessage) Value() (Value, error) {
	data, err := m.DataValue()
	if err != nil {
		return Value{}, err
	}
	o := make(members, 0, 4)
	o.add("type", Int(int64(m.Type)))
	o.add("data", data)
	o.add("uid", Str(m.UID))
	o.add("nsp", Str(m.Nsp))
	return o.value(), nil
}

// EncodeClusterMessage returns m as the sharded Redis adapter encodes it:
// JSON.stringify, unless the type may carry binary (BROADCAST,
// BROADCAST_ACK, FETCH_SOCKETS_RESPONSE, SERVER_SIDE_EMIT,
// SERVER_SIDE_EMIT_RESPONSE) and its data does hold binary, in which case
// the whole message is notepack msgpack.
func EncodeClusterMessage(m *ClusterMessage) ([]byte, error) {
	return AppendClusterMessage(make([]byte, 0, 160), m, FormatDefault)
}

// AppendClusterMessage appends m to dst in format f; FormatDefault applies
// the JSON-unless-binary rule of [EncodeClusterMessage].
func AppendClusterMessage(dst []byte, m *ClusterMessage, f Format) ([]byte, error) {
	v, err := m.Value()
	if err != nil {
		return dst, err
	}
	if f == FormatDefault {
		f = FormatJSON
		if m.Type.mayContainBinary() && v.Get("data").HasBinary() {
			f = FormatMsgpack
		}
	}
	return encodeValue(dst, v, f), nil
}

// DecodeClusterMessage decodes a ClusterAdapter message or response, JSON
// if it starts with '{' and msgpack otherwise, reading the data members of
// its type (see [ClusterMessage]). A message without data, or of an
// unknown type, is not an error. Binary values become attachments
// (sharing msg's memory) and dates ISO strings.
//
// The caller still applies the receiver's rules: drop its own uid and
// other namespaces.
func DecodeClusterMessage(msg []byte) (*ClusterMessage, error) {
	v, err := decodeAny(msg)
	if err != nil {
		return nil, err
	}
	return ClusterMessageFromValue(v)
}

// ClusterMessageFromValue reads a ClusterAdapter message from its decoded
// object {type, data, uid, nsp}, as [DecodeClusterMessage] does; a stream
// entry's fields can be assembled into such a map.
func ClusterMessageFromValue(v Value) (*ClusterMessage, error) {
	var err error
	if v.kind != KindMap {
		return nil, malformed("cluster message is a %v, not a map", v.kind)
	}
	m := &ClusterMessage{}
	t, ok := v.Get("type").AsInt()
	if !ok || t < 0 || t > 1<<31 {
		return nil, malformed("cluster message type %v", v.Get("type"))
	}
	m.Type = MessageType(t)
	if m.UID, err = optString(v.Get("uid"), "uid"); err != nil {
		return nil, err
	}
	if m.Nsp, err = optString(v.Get("nsp"), "nsp"); err != nil {
		return nil, err
	}
	d := v.Get("data")
	switch {
	case d.kind == KindUndefined || d.kind == KindNil:
		return m, nil
	case m.Type < MsgBroadcast || m.Type > MsgBroadcastAck:
		return m, nil // Node.js does not read the data of other types
	case d.kind != KindMap:
		return nil, malformed("cluster message data is a %v, not a map", d.kind)
	}
	if m.RequestID, err = optString(d.Get("requestId"), "requestId"); err != nil {
		return nil, err
	}
	if o := d.Get("opts"); o.kind != KindUndefined {
		if m.Opts, err = decodeOpts(o); err != nil {
			return nil, err
		}
	}
	if m.Rooms, err = decodeRooms(d.Get("rooms"), "rooms"); err != nil {
		return nil, err
	}
	m.Close = d.Get("close").Truthy()
	if n, ok := d.Get("clientCount").AsFloat(); ok {
		m.ClientCount = clampInt(n)
	}
	if s := d.Get("sockets"); s.kind != KindUndefined {
		if s.kind != KindArray {
			return nil, malformed("sockets is a %v, not an array", s.kind)
		}
		m.Sockets = make([]SocketRecord, len(s.arr))
		for i, e := range s.arr {
			if m.Sockets[i], err = decodeSocketRecord(e); err != nil {
				return nil, err
			}
		}
	}
	p := d.Get("packet")
	if m.Type == MsgBroadcast {
		if m.Packet, err = decodePacket(p, m.Nsp); err != nil {
			return nil, err
		}
	} else {
		if m.Data, m.Attachments, err = packetData(p); err != nil {
			return nil, err
		}
	}
	return m, nil
}
