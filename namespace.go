package herald

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/parser"
)

// Middleware runs for every socket that connects to a namespace, before it
// is connected. Returning an error rejects the connection: the client gets a
// CONNECT_ERROR with the error's message (and data, for a *ConnectError).
type Middleware func(s *Socket) error

// Namespace is a Socket.IO namespace: a communication channel that groups
// sockets, with its own middleware, handlers, rooms and adapter.
type Namespace struct {
	srv     *Server
	name    string
	parent  *parentNamespace
	adapter adapter.Adapter
	ackIDs  atomic.Uint64

	mu             sync.RWMutex // guards the fields below
	sockets        map[string]*Socket
	middlewares    []Middleware
	onConnection   []func(*Socket)
	serverHandlers map[string]func(*Event)
	serverAny      []func(*Event)

	handlerTables handlerTables // handler slices shared by the sockets
}

var _ adapter.Namespace = (*Namespace)(nil)

func newNamespace(srv *Server, name string, parent *parentNamespace) *Namespace {
	return &Namespace{
		srv:            srv,
		name:           name,
		parent:         parent,
		sockets:        make(map[string]*Socket),
		serverHandlers: make(map[string]func(*Event)),
	}
}

// Name returns the namespace name, e.g. "/" or "/admin".
func (n *Namespace) Name() string { return n.name }

// Adapter returns the namespace's adapter.
func (n *Namespace) Adapter() adapter.Adapter { return n.adapter }

// Use adds middleware, run in the order added for every connecting socket.
func (n *Namespace) Use(m Middleware) {
	n.mu.Lock()
	n.middlewares = append(n.middlewares, m)
	n.mu.Unlock()
}

// OnConnection adds a handler called for every socket that connects. The
// client's CONNECT answer leaves with the first packet the handlers send
// (one write for both), or when they return: a handler that blocks before
// it emits holds the client's connect event back.
func (n *Namespace) OnConnection(h func(*Socket)) {
	n.mu.Lock()
	n.onConnection = append(n.onConnection, h)
	n.mu.Unlock()
}

// OnServerSideEmit sets the handler of a server-side event sent by another
// node with ServerSideEmit. If the sender expects an acknowledgement, the
// handler answers with Event.Ack.
func (n *Namespace) OnServerSideEmit(event string, h func(*Event)) {
	n.mu.Lock()
	n.serverHandlers[event] = h
	n.mu.Unlock()
}

// OnAnyServerSideEmit adds a handler called for every server-side event
// from another node, before the event's own handler.
func (n *Namespace) OnAnyServerSideEmit(h func(*Event)) {
	n.mu.Lock()
	n.serverAny = append(n.serverAny, h)
	n.mu.Unlock()
}

// Sockets returns the sockets connected to this namespace on this node.
func (n *Namespace) Sockets() []*Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make([]*Socket, 0, len(n.sockets))
	for _, s := range n.sockets {
		out = append(out, s)
	}
	return out
}

// Socket returns the local socket with the given id, or nil.
func (n *Namespace) Socket(id string) *Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.sockets[id]
}

// Emit broadcasts an event to every socket of the namespace.
func (n *Namespace) Emit(event string, args ...any) error {
	return n.operator().Emit(event, args...)
}

// To selects the sockets in any of rooms for a broadcast.
func (n *Namespace) To(rooms ...string) *BroadcastOperator { return n.operator().To(rooms...) }

// In is To.
func (n *Namespace) In(rooms ...string) *BroadcastOperator { return n.operator().To(rooms...) }

// Except excludes the sockets in any of rooms from a broadcast.
func (n *Namespace) Except(rooms ...string) *BroadcastOperator {
	return n.operator().Except(rooms...)
}

// Local restricts a broadcast to this node.
func (n *Namespace) Local() *BroadcastOperator { return n.operator().Local() }

// Volatile marks a broadcast as droppable for clients that cannot take it now.
func (n *Namespace) Volatile() *BroadcastOperator { return n.operator().Volatile() }

// Compress sets the compress flag of a broadcast.
func (n *Namespace) Compress(c bool) *BroadcastOperator { return n.operator().Compress(c) }

// Timeout sets the deadline of a broadcast with acknowledgements.
func (n *Namespace) Timeout(d time.Duration) *BroadcastOperator { return n.operator().Timeout(d) }

// FetchSockets returns the sockets of the namespace on every node.
func (n *Namespace) FetchSockets(ctx context.Context) ([]*RemoteSocket, error) {
	return n.operator().FetchSockets(ctx)
}

// IsConnected reports whether the socket with this id is connected to the
// namespace on any node.
func (n *Namespace) IsConnected(ctx context.Context, id string) (bool, error) {
	if n.Socket(id) != nil {
		return true, nil
	}
	ids, err := n.operator().To(id).SocketIDs(ctx)
	return len(ids) > 0, err
}

// SocketsJoin makes every socket of the namespace, on every node, join rooms.
func (n *Namespace) SocketsJoin(ctx context.Context, rooms ...string) error {
	return n.operator().SocketsJoin(ctx, rooms...)
}

// SocketsLeave makes every socket of the namespace, on every node, leave rooms.
func (n *Namespace) SocketsLeave(ctx context.Context, rooms ...string) error {
	return n.operator().SocketsLeave(ctx, rooms...)
}

// DisconnectSockets disconnects every socket of the namespace on every node.
func (n *Namespace) DisconnectSockets(ctx context.Context, close bool) error {
	return n.operator().DisconnectSockets(ctx, close)
}

// ServerSideEmit sends an event to this namespace on the other nodes; their
// OnServerSideEmit handlers receive it.
func (n *Namespace) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	data, atts, err := parser.MarshalEvent(event, args...)
	if err != nil {
		return err
	}
	return n.adapter.ServerSideEmit(ctx, data, atts, nil)
}

// ServerSideEmitWithAck is ServerSideEmit expecting one answer from every
// other node; it waits until all have answered or ctx is done.
func (n *Namespace) ServerSideEmitWithAck(ctx context.Context, event string, args ...any) ([]Args, error) {
	data, atts, err := parser.MarshalEvent(event, args...)
	if err != nil {
		return nil, err
	}
	var (
		mu      sync.Mutex
		replies []Args
	)
	err = n.adapter.ServerSideEmit(ctx, data, atts, func(a adapter.Ack) {
		mu.Lock()
		replies = append(replies, ackArgs(a))
		mu.Unlock()
	})
	mu.Lock()
	defer mu.Unlock()
	return replies, err
}

// ServerCount returns the number of nodes serving this namespace.
func (n *Namespace) ServerCount(ctx context.Context) (int, error) {
	return n.adapter.ServerCount(ctx)
}

func (n *Namespace) operator() *BroadcastOperator {
	return &BroadcastOperator{nsp: n}
}

// Deliver implements adapter.Namespace: it encodes pkt once and writes it
// to each of the local sockets ids.
func (n *Namespace) Deliver(pkt *parser.Packet, ids []string, flags adapter.Flags, onAck func(adapter.Ack)) int {
	if len(ids) == 0 {
		return 0
	}
	p := *pkt
	p.Namespace = n.name
	if onAck != nil {
		p.ID = n.ackIDs.Add(1) - 1
		p.HasID = true
	}
	msgs, err := encodePacket(&p)
	if err != nil {
		n.srv.log.Error("herald: cannot encode broadcast", "nsp", n.name, "err", err)
		return 0
	}
	targets := make([]*Socket, 0, len(ids))
	n.mu.RLock()
	for _, id := range ids {
		if s := n.sockets[id]; s != nil {
			targets = append(targets, s)
		}
	}
	n.mu.RUnlock()
	sent := 0
	for _, s := range targets {
		if onAck != nil {
			s.registerAck(p.ID, func(ack *parser.Packet, err error) {
				if err == nil {
					onAck(adapter.Ack{Args: ack.Data, Attachments: ack.Attachments})
				}
			})
		}
		if flags.Volatile {
			if s.conn.TrySend(msgs...) {
				sent++
			} else if onAck != nil {
				s.dropAck(p.ID)
			}
			continue
		}
		if s.conn.Send(msgs...) == nil {
			sent++
		} else if onAck != nil {
			s.dropAck(p.ID)
		}
	}
	return sent
}

// LocalSocket implements adapter.Namespace.
func (n *Namespace) LocalSocket(id string) adapter.LocalSocket {
	if s := n.Socket(id); s != nil {
		return s
	}
	return nil
}

// HandleServerSideEmit implements adapter.Namespace for events from other nodes.
func (n *Namespace) HandleServerSideEmit(data json.RawMessage, atts [][]byte, reply func(adapter.Ack)) {
	pkt := &parser.Packet{Type: parser.Event, Namespace: n.name, Data: data, Attachments: atts}
	name, ok := pkt.EventName()
	if !ok {
		return
	}
	args, err := pkt.Args()
	if err != nil {
		return
	}
	n.mu.RLock()
	h := n.serverHandlers[name]
	anys := n.serverAny
	n.mu.RUnlock()
	if h == nil && n.parent != nil {
		h = n.parent.serverHandler(name)
	}
	if h == nil && len(anys) == 0 {
		return
	}
	ev := &Event{Name: name, Args: args}
	if reply != nil {
		ev.ackFn = func(p *parser.Packet) error {
			reply(adapter.Ack{Args: p.Data, Attachments: p.Attachments})
			return nil
		}
	}
	for _, a := range anys {
		safeCall(n.srv, func() { a(ev) })
	}
	if h != nil {
		safeCall(n.srv, func() { h(ev) })
	}
}

// add connects a client to the namespace (CONNECT packet).
func (n *Namespace) add(c *client, auth json.RawMessage) {
	if len(auth) == 0 {
		auth = json.RawMessage("{}")
	}
	var restored *adapter.RestoredSession
	if n.srv.cfg.Recovery.MaxDisconnection > 0 && c.version() == parser.Version5 {
		var creds struct {
			PID    *string `json:"pid"`
			Offset *string `json:"offset"`
		}
		if json.Unmarshal(auth, &creds) == nil && creds.PID != nil && creds.Offset != nil {
			r, err := n.adapter.RestoreSession(*creds.PID, *creds.Offset)
			if err != nil {
				n.srv.log.Debug("herald: session restore failed", "err", err)
			}
			restored = r
		}
	}
	s := newSocket(n, c, auth, restored)
	if restored == nil || n.srv.cfg.Recovery.RunMiddlewares {
		if err := n.runMiddlewares(s); err != nil {
			var ce *ConnectError
			if errors.As(err, &ce) {
				c.sendConnectError(n.name, ce.Message, ce.dataJSON())
			} else {
				c.sendConnectError(n.name, err.Error(), nil)
			}
			return
		}
	}
	if !c.addSocket(s) {
		return // the connection closed meanwhile
	}
	n.mu.Lock()
	n.sockets[s.id] = s
	n.mu.Unlock()
	s.onConnect(restored)
	n.mu.RLock()
	handlers := n.onConnection
	n.mu.RUnlock()
	if n.parent != nil {
		handlers = append(n.parent.connectionHandlers(), handlers...)
	}
	for _, h := range handlers {
		if !s.Connected() {
			break
		}
		safeCall(n.srv, func() { h(s) })
	}
	s.shareHandlers()
	c.flush() // the CONNECT answer, if the handlers sent nothing
}

func (n *Namespace) runMiddlewares(s *Socket) (err error) {
	var mws []Middleware
	if n.parent != nil {
		mws = n.parent.middlewareList()
	}
	n.mu.RLock()
	mws = append(mws, n.middlewares...)
	n.mu.RUnlock()
	for _, m := range mws {
		func() {
			defer func() {
				if r := recover(); r != nil {
					n.srv.log.Error("herald: middleware panicked", "nsp", n.name, "panic", r, "stack", string(debug.Stack()))
					err = fmt.Errorf("middleware error")
				}
			}()
			err = m(s)
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

func (n *Namespace) remove(s *Socket) {
	n.mu.Lock()
	if n.sockets[s.id] == s {
		delete(n.sockets, s.id)
	}
	n.mu.Unlock()
}

// safeCall runs a user handler; a panic is logged, not fatal.
func safeCall(srv *Server, f func()) {
	defer func() {
		if r := recover(); r != nil {
			srv.log.Error("herald: handler panicked", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	f()
}

// newID returns a random 20-character URL-safe id (120 bits).
func newID() string {
	var b [15]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ParentNamespace is a group of dynamic namespaces (Server.OfFunc): its
// middleware and connection handlers apply to every child namespace.
type ParentNamespace struct{ p *parentNamespace }

type parentNamespace struct {
	server *Server
	match  func(string, []byte) bool

	mu             sync.RWMutex
	middlewares    []Middleware
	onConnection   []func(*Socket)
	serverHandlers map[string]func(*Event)
}

// Use adds middleware for every child namespace.
func (p *ParentNamespace) Use(m Middleware) {
	p.p.mu.Lock()
	p.p.middlewares = append(p.p.middlewares, m)
	p.p.mu.Unlock()
}

// OnConnection adds a connection handler for every child namespace.
func (p *ParentNamespace) OnConnection(h func(*Socket)) {
	p.p.mu.Lock()
	p.p.onConnection = append(p.p.onConnection, h)
	p.p.mu.Unlock()
}

// OnServerSideEmit sets a server-side event handler for every child.
func (p *ParentNamespace) OnServerSideEmit(event string, h func(*Event)) {
	p.p.mu.Lock()
	if p.p.serverHandlers == nil {
		p.p.serverHandlers = make(map[string]func(*Event))
	}
	p.p.serverHandlers[event] = h
	p.p.mu.Unlock()
}

// Emit broadcasts to every child namespace.
func (p *ParentNamespace) Emit(event string, args ...any) error {
	var errs []error
	for _, n := range p.children() {
		errs = append(errs, n.Emit(event, args...))
	}
	return errors.Join(errs...)
}

func (p *ParentNamespace) children() []*Namespace {
	s := p.p.server
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*Namespace
	for _, n := range s.nsps {
		if n.parent == p.p {
			out = append(out, n)
		}
	}
	return out
}

func (p *parentNamespace) middlewareList() []Middleware {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return slices.Clone(p.middlewares)
}

func (p *parentNamespace) connectionHandlers() []func(*Socket) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return slices.Clone(p.onConnection)
}

func (p *parentNamespace) serverHandler(event string) func(*Event) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.serverHandlers[event]
}
