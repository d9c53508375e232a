package adaptertest

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/parser"
)

// Namespace is a fake server namespace: an [adapter.Namespace] that records
// what the adapter asks of it. It hosts fake [Socket]s whose rooms live in
// the adapter, as in the real server, records every Deliver call and every
// server-side emit, and answers server-side emits that expect an
// acknowledgement. It is safe for concurrent use.
//
// The suite uses it for every case; adapter authors can use it for tests of
// their own.
type Namespace struct {
	name string
	node int

	mu         sync.Mutex
	adapter    adapter.Adapter
	sockets    map[string]*Socket
	deliveries []Delivery
	emits      []ServerSideEmit
	ackIDs     uint64
	reply      func(data json.RawMessage) json.RawMessage
	onDeliver  func(Delivery)
}

var _ adapter.Namespace = (*Namespace)(nil)

// Delivery is one call of Namespace.Deliver.
type Delivery struct {
	// Packet is a copy of the packet the adapter delivered.
	Packet parser.Packet
	// IDs are the socket ids the adapter asked for, in its order.
	IDs []string
	// Recipients are the ids of the sockets the packet was written to: the
	// connected sockets among IDs.
	Recipients []string
	Flags      adapter.Flags
	// WithAck is set when the adapter passed an onAck callback.
	WithAck bool
}

// ServerSideEmit is one call of Namespace.HandleServerSideEmit.
type ServerSideEmit struct {
	Data        json.RawMessage
	Attachments [][]byte
	// WithReply is set when the sender expects an acknowledgement.
	WithReply bool
}

// NewNamespace returns an empty fake namespace. node is a number that tells
// the nodes of a simulated cluster apart; the default server-side reply
// carries it.
func NewNamespace(name string, node int) *Namespace {
	return &Namespace{name: name, node: node, sockets: make(map[string]*Socket)}
}

// Attach creates the namespace's adapter with f and keeps it.
func (n *Namespace) Attach(f adapter.Factory) (adapter.Adapter, error) {
	a, err := f(n)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, fmt.Errorf("adaptertest: the factory returned a nil adapter")
	}
	n.mu.Lock()
	n.adapter = a
	n.mu.Unlock()
	return a, nil
}

// Adapter returns the adapter given by Attach.
func (n *Namespace) Adapter() adapter.Adapter {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.adapter
}

// Node returns the node number given to NewNamespace.
func (n *Namespace) Node() int { return n.node }

// Name implements adapter.Namespace.
func (n *Namespace) Name() string { return n.name }

// Connect adds a connected socket, as the server does: it registers the
// socket, then makes it join the room named after its id and rooms.
func (n *Namespace) Connect(id string, rooms ...string) *Socket {
	s := &Socket{nsp: n, id: id, acks: make(map[uint64]func(adapter.Ack))}
	s.data = json.RawMessage(fmt.Sprintf(`{"node":%d,"id":%q}`, n.node, id))
	s.handshake = adapter.Handshake{
		Headers: map[string]string{"host": "localhost:3000", "user-agent": "adaptertest"},
		Time:    "Thu Jan 01 2026 00:00:00 GMT+0000 (Coordinated Universal Time)",
		Address: fmt.Sprintf("127.0.0.%d", n.node+1),
		XDomain: n.node%2 == 1,
		Secure:  true,
		Issued:  1767225600000 + int64(n.node),
		URL:     "/socket.io/?EIO=4&transport=websocket",
		Query:   map[string]string{"EIO": "4", "transport": "websocket"},
		Auth:    json.RawMessage(fmt.Sprintf(`{"token":%q}`, "t-"+id)),
	}
	n.mu.Lock()
	n.sockets[id] = s
	a := n.adapter
	n.mu.Unlock()
	a.AddAll(id, append([]string{id}, rooms...)...)
	return s
}

// Socket returns the connected socket with the given id, or nil.
func (n *Namespace) Socket(id string) *Socket {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sockets[id]
}

// LocalSocket implements adapter.Namespace.
func (n *Namespace) LocalSocket(id string) adapter.LocalSocket {
	if s := n.Socket(id); s != nil {
		return s
	}
	return nil
}

// Deliver implements adapter.Namespace: it records the call, and for each
// connected socket among ids records the packet and, with onAck, a pending
// acknowledgement that Socket.Ack answers.
func (n *Namespace) Deliver(pkt *parser.Packet, ids []string, flags adapter.Flags, onAck func(adapter.Ack)) int {
	cp := copyPacket(pkt)
	d := Delivery{Packet: cp, IDs: slices.Clone(ids), Flags: flags, WithAck: onAck != nil}
	if flags.Compress != nil {
		c := *flags.Compress
		d.Flags.Compress = &c
	}
	n.mu.Lock()
	var ackID uint64
	if onAck != nil {
		ackID = n.ackIDs
		n.ackIDs++
	}
	var targets []*Socket
	for _, id := range ids {
		if s := n.sockets[id]; s != nil {
			targets = append(targets, s)
			d.Recipients = append(d.Recipients, id)
		}
	}
	n.deliveries = append(n.deliveries, d)
	hook := n.onDeliver
	n.mu.Unlock()
	for _, s := range targets {
		s.receive(Received{Packet: cp, Flags: d.Flags, WithAck: onAck != nil}, ackID, onAck)
	}
	if hook != nil {
		hook(d)
	}
	return len(targets)
}

// OnDeliver sets a function that Deliver calls, after writing the packet,
// before it returns. The real server can call back into the adapter from
// inside Deliver: a client too slow for its queue is disconnected there,
// and its disconnect handlers may emit.
func (n *Namespace) OnDeliver(f func(Delivery)) {
	n.mu.Lock()
	n.onDeliver = f
	n.mu.Unlock()
}

// HandleServerSideEmit implements adapter.Namespace: it records the emit
// and, if the sender expects an acknowledgement, answers at once with the
// reply set by SetServerSideReply (by default ["node-N"], N being the node
// number).
func (n *Namespace) HandleServerSideEmit(data json.RawMessage, attachments [][]byte, reply func(adapter.Ack)) {
	e := ServerSideEmit{Data: slices.Clone(data), WithReply: reply != nil}
	for _, a := range attachments {
		e.Attachments = append(e.Attachments, slices.Clone(a))
	}
	n.mu.Lock()
	n.emits = append(n.emits, e)
	answer := n.reply
	n.mu.Unlock()
	if reply == nil {
		return
	}
	args := json.RawMessage(fmt.Sprintf(`["node-%d"]`, n.node))
	if answer != nil {
		args = answer(data)
	}
	reply(adapter.Ack{Args: args})
}

// SetServerSideReply sets the answer (a JSON array of arguments) to
// server-side emits that expect an acknowledgement.
func (n *Namespace) SetServerSideReply(f func(data json.RawMessage) json.RawMessage) {
	n.mu.Lock()
	n.reply = f
	n.mu.Unlock()
}

// Deliveries returns the Deliver calls so far.
func (n *Namespace) Deliveries() []Delivery {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.deliveries)
}

// ServerSideEmits returns the server-side emits received so far.
func (n *Namespace) ServerSideEmits() []ServerSideEmit {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.emits)
}

// Socket is a fake connected socket of a Namespace. Join, Leave and
// Disconnect go through the adapter, as in the real server.
type Socket struct {
	nsp       *Namespace
	id        string
	data      json.RawMessage
	handshake adapter.Handshake

	mu           sync.Mutex
	received     []Received
	acks         map[uint64]func(adapter.Ack)
	disconnected bool
	closed       bool
}

var _ adapter.LocalSocket = (*Socket)(nil)

// Received is a packet written to a Socket.
type Received struct {
	Packet  parser.Packet
	Flags   adapter.Flags
	WithAck bool
}

// ID implements adapter.LocalSocket.
func (s *Socket) ID() string { return s.id }

// Join implements adapter.LocalSocket.
func (s *Socket) Join(rooms ...string) { s.nsp.Adapter().AddAll(s.id, rooms...) }

// Leave implements adapter.LocalSocket.
func (s *Socket) Leave(room string) { s.nsp.Adapter().Del(s.id, room) }

// Disconnect implements adapter.LocalSocket: the socket leaves every room
// and its namespace, and drops its pending acknowledgements.
func (s *Socket) Disconnect(close bool) {
	s.mu.Lock()
	if s.disconnected {
		s.mu.Unlock()
		return
	}
	s.disconnected, s.closed = true, close
	s.acks = nil
	s.mu.Unlock()
	n := s.nsp
	n.mu.Lock()
	if n.sockets[s.id] == s {
		delete(n.sockets, s.id)
	}
	n.mu.Unlock()
	n.Adapter().DelAll(s.id)
}

// Info implements adapter.LocalSocket. Data is {"node":N,"id":ID}.
func (s *Socket) Info() adapter.SocketInfo {
	hs := s.handshake
	hs.Headers = cloneMap(hs.Headers)
	hs.Query = cloneMap(hs.Query)
	hs.Auth = slices.Clone(hs.Auth)
	return adapter.SocketInfo{
		ID:        s.id,
		Handshake: hs,
		Rooms:     s.nsp.Adapter().SocketRooms(s.id),
		Data:      slices.Clone(s.data),
	}
}

// Disconnected reports whether the socket was disconnected, and whether
// with close true.
func (s *Socket) Disconnected() (disconnected, closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.disconnected, s.closed
}

// Received returns the packets written to the socket so far.
func (s *Socket) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.received)
}

// Events returns the names of the events written to the socket so far.
func (s *Socket) Events() []string {
	var out []string
	for _, r := range s.Received() {
		name, _ := r.Packet.EventName()
		out = append(out, name)
	}
	return out
}

// Ack answers every pending acknowledgement with args (a JSON array) and
// returns how many it answered.
func (s *Socket) Ack(args json.RawMessage) int {
	s.mu.Lock()
	pending := make([]func(adapter.Ack), 0, len(s.acks))
	ids := make([]uint64, 0, len(s.acks))
	for id := range s.acks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		pending = append(pending, s.acks[id])
		delete(s.acks, id)
	}
	s.mu.Unlock()
	for _, f := range pending {
		f(adapter.Ack{Args: slices.Clone(args)})
	}
	return len(pending)
}

// PendingAcks returns how many acknowledgements the socket owes.
func (s *Socket) PendingAcks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acks)
}

func (s *Socket) receive(r Received, ackID uint64, onAck func(adapter.Ack)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.disconnected {
		return
	}
	s.received = append(s.received, r)
	if onAck != nil {
		s.acks[ackID] = onAck
	}
}

func copyPacket(p *parser.Packet) parser.Packet {
	cp := *p
	cp.Data = slices.Clone(p.Data)
	cp.Attachments = nil
	for _, a := range p.Attachments {
		cp.Attachments = append(cp.Attachments, slices.Clone(a))
	}
	return cp
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
