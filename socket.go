package herald

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/engineio"
	"github.com/herald-rt/herald/parser"
)

// Handshake is what the server knows of a socket's connection request.
type Handshake struct {
	Headers http.Header     // request headers of the Engine.IO handshake; must not be modified
	Query   url.Values      // query parameters of the Engine.IO handshake; must not be modified
	Auth    json.RawMessage // the auth payload of the CONNECT packet ({} if none)
	Address string          // client address (host:port as seen by this server)
	Time    time.Time       // when the connection was opened
	URL     string          // request URI of the handshake
	Secure  bool            // true over TLS
	XDomain bool            // true when the request carried an Origin header
}

// Args are the arguments of an event or an acknowledgement as received: raw
// JSON values with their binary attachments.
type Args []parser.Arg

// Bind decodes the arguments, in order, into the given pointers. Binary
// values decode into []byte. Extra arguments are ignored; missing ones leave
// their pointer untouched.
func (a Args) Bind(ptrs ...any) error {
	for i, p := range ptrs {
		if i >= len(a) {
			return nil
		}
		if p == nil {
			continue
		}
		if err := a[i].Unmarshal(p); err != nil {
			return fmt.Errorf("herald: argument %d: %w", i, err)
		}
	}
	return nil
}

// Values returns the arguments as values that Emit sends again byte for
// byte (binary included): a received event can be echoed with
// Emit(name, args.Values()...).
func (a Args) Values() []any {
	out := make([]any, len(a))
	for i, v := range a {
		out[i] = v
	}
	return out
}

// Event is an event received from a client (or, for server-side emits, from
// another node).
type Event struct {
	Name string
	Args Args

	socket *Socket
	ackFn  func(*parser.Packet) error
	acked  atomic.Bool
	ackID  uint64
}

// Socket returns the socket the event came from (nil for server-side emits).
func (e *Event) Socket() *Socket { return e.socket }

// Bind decodes the event's arguments into the given pointers; see Args.Bind.
func (e *Event) Bind(ptrs ...any) error { return e.Args.Bind(ptrs...) }

// HasAck reports whether the sender expects an acknowledgement.
func (e *Event) HasAck() bool { return e.ackFn != nil }

// Ack answers the event. Only the first call sends anything; Ack on an
// event that expects no acknowledgement does nothing.
func (e *Event) Ack(args ...any) error {
	if e.ackFn == nil || !e.acked.CompareAndSwap(false, true) {
		return nil
	}
	pkt, err := parser.NewAck("", e.ackID, args...)
	if err != nil {
		return err
	}
	return e.ackFn(pkt)
}

// Socket is a client's connection to one namespace.
//
// Handlers (On, OnAny, OnDisconnect, ...) run one at a time on the goroutine
// that reads the client's connection: a handler that blocks delays that
// client's next packets, so hand long work to another goroutine. Every other
// method is safe to call from any goroutine.
type Socket struct {
	id     string
	nsp    *Namespace
	client *client
	conn   *engineio.Session

	mu             sync.Mutex // guards the fields below
	connected      bool
	recovered      bool // set before the socket is shared, then read-only
	sharedHandlers bool // see handlers
	// handlers are the event handlers, sorted by event name: a socket
	// usually has a dozen or so, and a slice costs less than a map (288 B
	// against about 490 B for 12). With sharedHandlers the slice is
	// shared with other sockets (handlers.go) and must not be modified.
	handlers  []handler
	handshake *Handshake   // built on first use
	more      *socketExtra // made on first use
}

// socketExtra holds the socket state that many sockets never use. It is
// kept out of Socket so that an idle socket stays small; it is made on first
// use, under Socket.mu (or before the socket is shared).
type socketExtra struct {
	pid  string          // private id for connection-state recovery
	auth json.RawMessage // CONNECT payload, when not {}
	data any
	acks map[uint64]func(*parser.Packet, error)
	// hooks are the handlers added with Use (func(*Event) error), OnAny
	// (func(*Event)), OnDisconnecting (disconnectingHook) and OnDisconnect
	// (disconnectHook), in the order added: a socket often has one or two,
	// and one slice costs less than a slice of each kind. It is only ever
	// appended to, so a copy of it taken under Socket.mu can be read
	// without the lock.
	hooks []any
}

type (
	disconnectingHook func(DisconnectReason)
	disconnectHook    func(DisconnectReason)
)

// addHook adds one of the handlers kept in socketExtra.hooks.
func (s *Socket) addHook(h any) {
	s.mu.Lock()
	x := s.extraLocked()
	x.hooks = append(x.hooks, h)
	s.mu.Unlock()
}

// hooksLocked returns the socket's hooks (see socketExtra.hooks).
func (s *Socket) hooksLocked() []any {
	if s.more == nil {
		return nil
	}
	return s.more.hooks
}

// extraLocked returns s.more, making it if needed. s.mu is held (or s is
// not shared yet).
func (s *Socket) extraLocked() *socketExtra {
	if s.more == nil {
		s.more = new(socketExtra)
	}
	return s.more
}

var _ adapter.LocalSocket = (*Socket)(nil)

func newSocket(n *Namespace, c *client, auth json.RawMessage, restored *adapter.RestoredSession) *Socket {
	s := &Socket{
		nsp:    n,
		client: c,
		conn:   c.conn,
	}
	// The auth payload is kept for Handshake unless it is {} (also what a
	// CONNECT without payload gets), which Handshake makes again.
	if len(auth) > 0 && string(auth) != "{}" {
		s.extraLocked().auth = auth
	}
	switch {
	case restored != nil:
		s.id, s.recovered = restored.SID, true
		s.extraLocked().pid = restored.PID
		if len(restored.Data) > 0 {
			var v any
			if json.Unmarshal(restored.Data, &v) == nil {
				s.extraLocked().data = v
			}
		}
	case c.version() == parser.Version4:
		// Protocol v4 (socket.io v2 clients) derives ids from the engine id.
		s.id = c.conn.ID()
		if n.name != "/" {
			s.id = n.name + "#" + c.conn.ID()
		}
	default:
		s.id = newID()
		if n.srv.cfg.Recovery.MaxDisconnection > 0 {
			s.extraLocked().pid = newID()
		}
	}
	return s
}

// ID returns the socket id, which is also the name of a room holding only
// this socket.
func (s *Socket) ID() string { return s.id }

// Namespace returns the socket's namespace.
func (s *Socket) Namespace() *Namespace { return s.nsp }

// Auth returns the auth payload of the client's CONNECT packet ({} if it
// sent none): Handshake().Auth, without building the rest of the
// handshake (its header map costs every connection a few hundred bytes).
func (s *Socket) Auth() json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handshake != nil {
		return s.handshake.Auth
	}
	if s.more != nil && s.more.auth != nil {
		return s.more.auth
	}
	return json.RawMessage("{}")
}

// Handshake returns the connection request details.
func (s *Socket) Handshake() *Handshake {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handshake == nil {
		// Built on first use: the Engine.IO session keeps the request's
		// details, and many applications never ask for them.
		hs := s.conn.Handshake()
		auth := json.RawMessage("{}") // a copy of its own, as any other payload
		if s.more != nil && s.more.auth != nil {
			auth = s.more.auth
		}
		s.handshake = &Handshake{
			Headers: hs.Header,
			Query:   hs.Query,
			Auth:    auth,
			Address: hs.RemoteAddr,
			Time:    hs.Time,
			URL:     hs.URL,
			Secure:  hs.Secure,
			XDomain: hs.Header.Get("Origin") != "",
		}
	}
	return s.handshake
}

// pid returns the socket's private id for connection-state recovery ("" if
// recovery is off).
func (s *Socket) pid() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.more == nil {
		return ""
	}
	return s.more.pid
}

// Recovered reports whether the socket was restored by connection-state
// recovery, with its rooms, data and missed packets.
func (s *Socket) Recovered() bool { return s.recovered }

// Transport returns the name of the transport in use: "polling" or
// "websocket".
func (s *Socket) Transport() string { return s.conn.Transport() }

// Connected reports whether the socket is still connected.
func (s *Socket) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected
}

// Data returns the value set with SetData.
func (s *Socket) Data() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.more == nil {
		return nil
	}
	return s.more.data
}

// SetData attaches a value to the socket. It is visible to other nodes
// through FetchSockets (encoded as JSON) and kept by connection-state
// recovery (restored as decoded JSON).
func (s *Socket) SetData(v any) {
	s.mu.Lock()
	if v != nil || s.more != nil {
		s.extraLocked().data = v
	}
	s.mu.Unlock()
}

// Rooms returns the rooms the socket is in, its own id room included.
func (s *Socket) Rooms() []string { return s.nsp.adapter.SocketRooms(s.id) }

// Join adds the socket to rooms.
func (s *Socket) Join(rooms ...string) { s.nsp.adapter.AddAll(s.id, rooms...) }

// Leave removes the socket from a room.
func (s *Socket) Leave(room string) { s.nsp.adapter.Del(s.id, room) }

// On sets the handler of an event. A later call for the same event
// replaces the handler.
//
// Handlers that find their socket with Event.Socket, rather than capturing
// it, can be made once and given to every socket: sockets with the same
// handlers then share one table instead of holding a copy each, which
// matters when many connections sit idle.
func (s *Socket) On(event string, h func(*Event)) {
	s.mu.Lock()
	s.setHandlerLocked(event, h)
	s.mu.Unlock()
}

// OnAny adds a handler called for every event, before the event's own.
func (s *Socket) OnAny(h func(*Event)) { s.addHook(h) }

// Use adds incoming-event middleware: it runs for every event before the
// handlers, and an error stops the event there (it is logged).
func (s *Socket) Use(m func(*Event) error) { s.addHook(m) }

// OnDisconnecting adds a handler called when the socket is about to leave,
// while it is still in its rooms.
func (s *Socket) OnDisconnecting(h func(DisconnectReason)) { s.addHook(disconnectingHook(h)) }

// OnDisconnect adds a handler called once the socket has left.
func (s *Socket) OnDisconnect(h func(DisconnectReason)) { s.addHook(disconnectHook(h)) }

// Emit sends an event to this socket's client. []byte arguments, at any
// depth, travel as binary attachments.
func (s *Socket) Emit(event string, args ...any) error {
	if parser.IsReservedEvent(event) {
		return fmt.Errorf("%w: %q", ErrReservedEvent, event)
	}
	if !s.Connected() {
		return ErrDisconnected
	}
	pkt, err := parser.NewEvent(s.nsp.name, event, args...)
	if err != nil {
		return err
	}
	if s.nsp.srv.cfg.Recovery.MaxDisconnection > 0 {
		// Through the adapter, so the packet gets an offset and is kept for
		// replay, as in the Node.js server.
		return s.nsp.adapter.Broadcast(context.Background(), pkt,
			adapter.BroadcastOptions{Rooms: []string{s.id}, Flags: adapter.Flags{Local: true}})
	}
	return s.client.writePacket(pkt)
}

// EmitWithAck sends an event and waits for the client's acknowledgement, or
// for ctx to end (give it a deadline).
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) (Args, error) {
	if parser.IsReservedEvent(event) {
		return nil, fmt.Errorf("%w: %q", ErrReservedEvent, event)
	}
	pkt, err := parser.NewEvent(s.nsp.name, event, args...)
	if err != nil {
		return nil, err
	}
	pkt.ID, pkt.HasID = s.nsp.ackIDs.Add(1)-1, true
	type result struct {
		pkt *parser.Packet
		err error
	}
	ch := make(chan result, 1)
	if !s.registerAck(pkt.ID, func(p *parser.Packet, err error) { ch <- result{p, err} }) {
		return nil, ErrDisconnected
	}
	if err := s.client.writePacket(pkt); err != nil {
		s.dropAck(pkt.ID)
		return nil, err
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		return r.pkt.Args()
	case <-ctx.Done():
		s.dropAck(pkt.ID)
		return nil, fmt.Errorf("%w: %w", ErrAckTimeout, ctx.Err())
	}
}

// To selects rooms for a broadcast that excludes this socket.
func (s *Socket) To(rooms ...string) *BroadcastOperator {
	return s.Broadcast().To(rooms...)
}

// In is To.
func (s *Socket) In(rooms ...string) *BroadcastOperator { return s.To(rooms...) }

// Except starts a broadcast that excludes this socket and rooms.
func (s *Socket) Except(rooms ...string) *BroadcastOperator {
	return s.Broadcast().Except(rooms...)
}

// Broadcast starts a broadcast to every socket of the namespace but this one.
func (s *Socket) Broadcast() *BroadcastOperator {
	return s.nsp.operator().Except(s.id)
}

// Disconnect makes the socket leave its namespace, sending the client a
// DISCONNECT packet. With close true the whole connection closes, which
// disconnects the client from every namespace.
func (s *Socket) Disconnect(close bool) {
	if close {
		s.client.mu.Lock()
		socks := make([]*Socket, 0, len(s.client.sockets))
		for _, o := range s.client.sockets {
			socks = append(socks, o)
		}
		s.client.mu.Unlock()
		for _, o := range socks {
			o.disconnect()
		}
		s.conn.Close()
		return
	}
	s.disconnect()
}

func (s *Socket) disconnect() {
	if !s.Connected() {
		return
	}
	s.client.writePacket(&parser.Packet{Type: parser.Disconnect, Namespace: s.nsp.name})
	s.onClose(ReasonServerNamespaceDisconnect, false)
}

// Info implements adapter.LocalSocket.
func (s *Socket) Info() adapter.SocketInfo {
	hs := s.Handshake()
	headers := make(map[string]string, len(hs.Headers))
	for k, v := range hs.Headers {
		headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	query := make(map[string]string, len(hs.Query))
	for k, v := range hs.Query {
		query[k] = v[0]
	}
	var data json.RawMessage
	if d := s.Data(); d != nil {
		data, _ = json.Marshal(d)
	}
	if data == nil {
		data = json.RawMessage("null")
	}
	return adapter.SocketInfo{
		ID: s.id,
		Handshake: adapter.Handshake{
			Headers: headers,
			Time:    hs.Time.Format("Mon Jan 02 2006 15:04:05 GMT-0700 (MST)"),
			Address: hs.Address,
			XDomain: hs.XDomain,
			Secure:  hs.Secure,
			Issued:  hs.Time.UnixMilli(),
			URL:     hs.URL,
			Query:   query,
			Auth:    hs.Auth,
		},
		Rooms: s.Rooms(),
		Data:  data,
	}
}

// onConnect completes the connection: own room, CONNECT reply, replay.
func (s *Socket) onConnect(restored *adapter.RestoredSession) {
	s.mu.Lock()
	s.connected = true
	s.mu.Unlock()
	s.nsp.adapter.AddAll(s.id, s.id)
	if restored != nil {
		s.nsp.adapter.AddAll(s.id, restored.Rooms...)
	}
	var payload json.RawMessage
	if s.client.version() == parser.Version5 {
		payload = parser.ConnectPayload(s.id, s.pid())
	}
	// The answer (and the missed packets) leave with what the connection
	// handlers send, in one write: Namespace.add flushes after them.
	s.client.writePacketLater(&parser.Packet{Type: parser.Connect, Namespace: s.nsp.name, Data: payload})
	if restored != nil {
		for _, p := range restored.MissedPackets {
			cp := *p
			cp.Namespace = s.nsp.name
			s.client.writePacketLater(&cp)
		}
	}
}

// onEvent handles an EVENT packet from the client.
func (s *Socket) onEvent(pkt *parser.Packet) {
	name, _ := pkt.EventName()
	args, err := pkt.Args()
	if err != nil {
		s.client.closeWith(ReasonParseError)
		return
	}
	ev := &Event{Name: name, Args: args, socket: s}
	if pkt.HasID {
		ev.ackID = pkt.ID
		ev.ackFn = func(p *parser.Packet) error {
			p.Namespace = s.nsp.name
			return s.client.writePacket(p)
		}
	}
	s.mu.Lock()
	hooks := s.hooksLocked()
	h := s.handlerLocked(name)
	s.mu.Unlock()
	// Every middleware first, then every OnAny handler.
	for _, hook := range hooks {
		m, ok := hook.(func(*Event) error)
		if !ok {
			continue
		}
		var err error
		safeCall(s.nsp.srv, func() { err = m(ev) })
		if err != nil {
			s.nsp.srv.log.Debug("herald: event rejected by middleware", "sid", s.id, "event", name, "err", err)
			return
		}
	}
	for _, hook := range hooks {
		if a, ok := hook.(func(*Event)); ok {
			safeCall(s.nsp.srv, func() { a(ev) })
		}
	}
	if h != nil {
		safeCall(s.nsp.srv, func() { h(ev) })
	}
}

// onAck handles an ACK packet from the client.
func (s *Socket) onAck(pkt *parser.Packet) {
	var f func(*parser.Packet, error)
	s.mu.Lock()
	if x := s.more; x != nil {
		f = x.acks[pkt.ID]
		delete(x.acks, pkt.ID)
	}
	s.mu.Unlock()
	if f != nil {
		f(pkt, nil)
	}
}

func (s *Socket) registerAck(id uint64, f func(*parser.Packet, error)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.connected {
		return false
	}
	x := s.extraLocked()
	if x.acks == nil {
		x.acks = make(map[uint64]func(*parser.Packet, error))
	}
	x.acks[id] = f
	return true
}

func (s *Socket) dropAck(id uint64) {
	s.mu.Lock()
	if s.more != nil {
		delete(s.more.acks, id)
	}
	s.mu.Unlock()
}

// onClose removes the socket from its namespace.
func (s *Socket) onClose(reason DisconnectReason, _ bool) {
	s.mu.Lock()
	if !s.connected {
		s.mu.Unlock()
		return
	}
	s.connected = false
	hooks := s.hooksLocked()
	pid := ""
	if s.more != nil {
		pid = s.more.pid
	}
	s.mu.Unlock()
	for _, hook := range hooks {
		if h, ok := hook.(disconnectingHook); ok {
			safeCall(s.nsp.srv, func() { h(reason) })
		}
	}
	if pid != "" && reason.recoverable() {
		var data json.RawMessage
		if d := s.Data(); d != nil {
			data, _ = json.Marshal(d)
		}
		s.nsp.adapter.PersistSession(adapter.Session{SID: s.id, PID: pid, Rooms: s.Rooms(), Data: data})
	}
	s.nsp.adapter.DelAll(s.id)
	s.nsp.remove(s)
	s.client.removeSocket(s)
	var acks map[uint64]func(*parser.Packet, error)
	s.mu.Lock()
	hooks = s.hooksLocked()
	if s.more != nil {
		acks, s.more.acks = s.more.acks, nil
	}
	s.mu.Unlock()
	for _, f := range acks {
		f(nil, ErrDisconnected)
	}
	for _, hook := range hooks {
		if h, ok := hook.(disconnectHook); ok {
			safeCall(s.nsp.srv, func() { h(reason) })
		}
	}
}

// ackArgs turns an adapter acknowledgement into Args.
func ackArgs(a adapter.Ack) Args {
	p := parser.Packet{Type: parser.Ack, Data: a.Args, Attachments: a.Attachments}
	args, _ := p.Args()
	return args
}
