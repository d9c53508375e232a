// Package adapter defines how a Socket.IO namespace shares rooms and
// broadcasts with the other nodes of a cluster, and provides the in-memory
// adapter used by a single node.
//
// The semantics mirror socket.io-adapter (rooms, except, the local and
// volatile flags, broadcasts with acknowledgements, fetch/join/leave/
// disconnect of sockets across nodes, server-side emits), so that the wire
// formats of the Node.js adapters map one to one. Every adapter passes the
// conformance suite in package adaptertest.
//
// An adapter never imports the server: the server hands it a Namespace, a
// narrow interface through which the adapter reaches local sockets.
package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/herald-rt/herald/parser"
)

// Flags modify a broadcast, as the BroadcastOperator flags of socket.io.
type Flags struct {
	// Volatile packets may be dropped for clients that cannot take them now.
	Volatile bool `json:"volatile,omitempty"`
	// Local broadcasts reach this node's sockets only.
	Local bool `json:"local,omitempty"`
	// Compress, when non-nil, asks for (or against) per-message compression.
	Compress *bool `json:"compress,omitempty"`
	// Timeout bounds the wait for acknowledgements.
	Timeout time.Duration `json:"-"`
	// ExpectSingleResponse is set when a RemoteSocket emits with an ack.
	ExpectSingleResponse bool `json:"expectSingleResponse,omitempty"`
}

// BroadcastOptions select the target sockets of an operation: the members of
// any of Rooms (every socket if Rooms is empty) that are in none of Except.
// A socket id is also a room holding just that socket.
type BroadcastOptions struct {
	Rooms  []string
	Except []string
	Flags  Flags
}

// Handshake is the handshake data of a socket as shared across nodes (the
// `handshake` object of socket.io, without the session store).
type Handshake struct {
	Headers map[string]string `json:"headers"`
	Time    string            `json:"time"`
	Address string            `json:"address"`
	XDomain bool              `json:"xdomain"`
	Secure  bool              `json:"secure"`
	Issued  int64             `json:"issued"`
	URL     string            `json:"url"`
	Query   map[string]string `json:"query"`
	Auth    json.RawMessage   `json:"auth"`
}

// SocketInfo describes a socket on any node: what FetchSockets returns.
type SocketInfo struct {
	ID        string          `json:"id"`
	Handshake Handshake       `json:"handshake"`
	Rooms     []string        `json:"rooms"`
	Data      json.RawMessage `json:"data"`
}

// Ack is one acknowledgement: the arguments a client (or a server, for
// server-side emits) answered with, as a JSON array plus binary attachments.
type Ack struct {
	Args        json.RawMessage
	Attachments [][]byte
}

// Session is the state of a disconnected socket kept for connection-state
// recovery.
type Session struct {
	SID   string
	PID   string
	Rooms []string
	Data  json.RawMessage
}

// RestoredSession is a Session found again, with the packets the socket
// missed while it was away.
type RestoredSession struct {
	Session
	MissedPackets []*parser.Packet
}

// Namespace is the side of a server namespace an adapter works with.
// herald.Namespace implements it.
type Namespace interface {
	// Name returns the namespace name, e.g. "/" or "/admin".
	Name() string
	// Deliver writes pkt to the given local sockets, encoding it once. If
	// onAck is non-nil the packet expects an acknowledgement: the namespace
	// gives it an ack id and calls onAck once per socket that answers.
	// Sockets that have gone are skipped. It returns how many sockets the
	// packet was written to.
	Deliver(pkt *parser.Packet, ids []string, flags Flags, onAck func(Ack)) int
	// LocalSocket returns the local socket with the given id, or nil.
	LocalSocket(id string) LocalSocket
	// HandleServerSideEmit is called for a server-side emit from another node.
	// data is the JSON array [event, ...args]. If reply is non-nil, the
	// emitter expects an acknowledgement.
	HandleServerSideEmit(data json.RawMessage, attachments [][]byte, reply func(Ack))
}

// LocalSocket is a socket of this node, as an adapter sees it.
type LocalSocket interface {
	ID() string
	Join(rooms ...string)
	Leave(room string)
	// Disconnect disconnects the socket from its namespace; with close
	// true it also closes the underlying connection.
	Disconnect(close bool)
	Info() SocketInfo
}

// Adapter is one namespace's view of the cluster. Implementations must be
// safe for concurrent use.
type Adapter interface {
	// AddAll adds a local socket to rooms (and registers it).
	AddAll(id string, rooms ...string)
	// Del removes a local socket from a room.
	Del(id, room string)
	// DelAll removes a local socket from every room (it has left).
	DelAll(id string)
	// SocketRooms returns the rooms of a local socket, or nil if unknown.
	SocketRooms(id string) []string
	// Sockets returns the ids of the local sockets in any of rooms, or of
	// every local socket if rooms is empty.
	Sockets(rooms ...string) []string
	// Rooms returns every room with a local member, socket-id rooms included.
	Rooms() []string

	// Broadcast sends pkt to the target sockets on every node (this node
	// only with Flags.Local).
	Broadcast(ctx context.Context, pkt *parser.Packet, opts BroadcastOptions) error
	// BroadcastWithAck is Broadcast expecting an acknowledgement from each
	// recipient: onClientCount is called once per node with the number of
	// recipients there, and onAck once per acknowledgement.
	BroadcastWithAck(ctx context.Context, pkt *parser.Packet, opts BroadcastOptions, onClientCount func(int), onAck func(Ack)) error

	// ServerCount returns the number of nodes serving this namespace.
	ServerCount(ctx context.Context) (int, error)
	// FetchSockets returns the target sockets from every node.
	FetchSockets(ctx context.Context, opts BroadcastOptions) ([]SocketInfo, error)
	// SocketIDs returns the ids of the target sockets on every node: a
	// presence query much cheaper than FetchSockets (no handshakes, rooms
	// or data travel).
	SocketIDs(ctx context.Context, opts BroadcastOptions) ([]string, error)
	// AddSockets makes the target sockets on every node join rooms.
	AddSockets(ctx context.Context, opts BroadcastOptions, rooms []string) error
	// DelSockets makes the target sockets on every node leave rooms.
	DelSockets(ctx context.Context, opts BroadcastOptions, rooms []string) error
	// DisconnectSockets disconnects the target sockets on every node.
	DisconnectSockets(ctx context.Context, opts BroadcastOptions, close bool) error
	// ServerSideEmit sends [event, ...args] to the other nodes' namespaces.
	// With onAck non-nil it waits (up to ctx) for one answer per other
	// node; onAck is called for each.
	ServerSideEmit(ctx context.Context, data json.RawMessage, attachments [][]byte, onAck func(Ack)) error

	// PersistSession keeps a disconnected socket's state for recovery.
	PersistSession(s Session)
	// RestoreSession finds a persisted session and the packets missed since
	// offset. It returns nil if the session cannot be recovered.
	RestoreSession(pid, offset string) (*RestoredSession, error)

	// Close releases the adapter's resources.
	Close() error
}

// Factory creates the adapter of a namespace. The server calls it once per
// namespace.
type Factory func(nsp Namespace) (Adapter, error)

// ErrTimeout is returned (wrapped) when a cluster request times out.
var ErrTimeout = errors.New("adapter: timeout reached while waiting for responses")

// ErrClosed is returned by an adapter that has been closed.
var ErrClosed = errors.New("adapter: closed")
