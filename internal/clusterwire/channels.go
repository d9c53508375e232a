package clusterwire

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"unicode/utf16"
)

// DefaultKey is the default channel prefix of every Node.js Redis adapter
// and emitter (the key option of createAdapter, channelPrefix of
// createShardedAdapter).
const DefaultKey = "socket.io"

// EmitterUID is the uid the emitters put in their messages.
const EmitterUID = "emitter"

// BroadcastChannel returns the classic adapter's broadcast channel of a
// namespace, "<key>#<nsp>#" (e.g. socket.io#/#). It is also the sharded
// adapter's main channel.
func BroadcastChannel(key, nsp string) string { return key + "#" + nsp + "#" }

// RoomChannel returns the broadcast channel of one room,
// "<key>#<nsp>#<room>#". It is also the sharded adapter's dynamic room
// channel and, with a node uid as room, its response channel.
func RoomChannel(key, nsp, room string) string { return key + "#" + nsp + "#" + room + "#" }

// BroadcastPattern returns the pattern a classic adapter PSUBSCRIBEs to,
// "<key>#<nsp>#*". It matches the broadcast channel and every room
// channel. Like Node.js, it does not escape glob characters in key or nsp.
func BroadcastPattern(key, nsp string) string { return key + "#" + nsp + "#*" }

// PublishChannel returns where a classic adapter or emitter publishes a
// broadcast to rooms: the room channel when exactly one distinct room is
// targeted (whatever except holds), the broadcast channel otherwise.
func PublishChannel(key, nsp string, rooms []string) string {
	if len(rooms) == 0 {
		return BroadcastChannel(key, nsp)
	}
	for _, r := range rooms[1:] {
		if r != rooms[0] {
			return BroadcastChannel(key, nsp)
		}
	}
	return RoomChannel(key, nsp, rooms[0])
}

// ChannelRoom parses a channel received through [BroadcastPattern]: ok is
// false if it does not start with "<key>#<nsp>#", and room is the part
// between that prefix and the final character ("" for the broadcast
// channel itself), as the classic adapter computes it before its cheap
// "do I have this room" filter.
func ChannelRoom(key, nsp, channel string) (room string, ok bool) {
	prefix := BroadcastChannel(key, nsp)
	if !strings.HasPrefix(channel, prefix) {
		return "", false
	}
	rest := channel[len(prefix):]
	if rest == "" {
		return "", true
	}
	return rest[:len(rest)-1], true
}

// RequestChannel returns the classic adapter's request channel,
// "<key>-request#<nsp>#".
func RequestChannel(key, nsp string) string { return key + "-request#" + nsp + "#" }

// ResponseChannel returns the classic adapter's shared response channel,
// "<key>-response#<nsp>#".
func ResponseChannel(key, nsp string) string { return key + "-response#" + nsp + "#" }

// SpecificResponseChannel returns the response channel of one requester,
// "<key>-response#<nsp>#<uid>#", where a node with
// publishOnSpecificResponseChannel answers (except server-side emit acks).
func SpecificResponseChannel(key, nsp, uid string) string {
	return key + "-response#" + nsp + "#" + uid + "#"
}

// ShardedResponseChannel returns a sharded adapter node's response
// channel, "<prefix>#<nsp>#<uid>#".
func ShardedResponseChannel(prefix, nsp, uid string) string { return RoomChannel(prefix, nsp, uid) }

// SubscriptionMode is the sharded adapter's subscriptionMode option.
type SubscriptionMode uint8

// Subscription modes of createShardedAdapter.
const (
	// Dynamic (the default) gives each public room its own channel.
	Dynamic SubscriptionMode = iota
	// Static uses the main channel for every broadcast.
	Static
	// DynamicPrivate gives private (socket id) rooms a channel too.
	DynamicPrivate
)

// String returns the option value: "dynamic", "static" or
// "dynamic-private".
func (m SubscriptionMode) String() string {
	switch m {
	case Static:
		return "static"
	case DynamicPrivate:
		return "dynamic-private"
	}
	return "dynamic"
}

// LooksLikeSocketID is the sharded adapter's test for a private room: a
// string of 20 UTF-16 code units (the length of a Socket.IO socket id).
func LooksLikeSocketID(room string) bool {
	n := 0
	for _, r := range room {
		n += utf16.RuneLen(r)
		if n > 20 {
			return false
		}
	}
	return n == 20
}

// ShardedChannel returns where a sharded adapter publishes m: the room
// channel for a BROADCAST without ack to exactly one room when the mode is
// DynamicPrivate, or Dynamic and the room does not look like a socket id;
// the main channel "<prefix>#<nsp>#" otherwise. Responses go to
// [ShardedResponseChannel] of the requester instead.
func ShardedChannel(prefix, nsp string, mode SubscriptionMode, m *ClusterMessage) string {
	if m.Type == MsgBroadcast && m.RequestID == "" && len(m.Opts.Rooms) == 1 {
		room := m.Opts.Rooms[0]
		if mode == DynamicPrivate || mode == Dynamic && !LooksLikeSocketID(room) {
			return RoomChannel(prefix, nsp, room)
		}
	}
	return BroadcastChannel(prefix, nsp)
}

// ShardedRoomSubscribed reports whether a sharded adapter node in the given
// mode subscribes to a room's channel when the room is created locally:
// public rooms in Dynamic mode, every room in DynamicPrivate mode. private
// tells whether the room is a local socket id.
func ShardedRoomSubscribed(mode SubscriptionMode, private bool) bool {
	return mode == DynamicPrivate || mode == Dynamic && !private
}

const uidChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// NewClassicID returns a random id as the classic adapter makes its uid and
// request ids (uid2(6)): 6 characters of [A-Za-z0-9_-].
func NewClassicID() string {
	var b [6]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = uidChars[b[i]%64]
	}
	return string(b[:])
}

// NewClusterID returns a random id as the ClusterAdapter makes its uid and
// request ids (randomBytes(8).toString("hex")): 16 hexadecimal digits.
func NewClusterID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
