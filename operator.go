package herald

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/parser"
)

// BroadcastOperator targets a set of sockets across the cluster. Each
// method returns a new operator; an operator can be kept and reused.
type BroadcastOperator struct {
	nsp    *Namespace
	rooms  []string
	except []string
	flags  adapter.Flags
}

func (b *BroadcastOperator) clone() *BroadcastOperator {
	c := *b
	c.rooms = slices.Clone(b.rooms)
	c.except = slices.Clone(b.except)
	return &c
}

// To adds rooms: the broadcast reaches sockets in any of them.
func (b *BroadcastOperator) To(rooms ...string) *BroadcastOperator {
	c := b.clone()
	for _, r := range rooms {
		if !slices.Contains(c.rooms, r) {
			c.rooms = append(c.rooms, r)
		}
	}
	return c
}

// In is To.
func (b *BroadcastOperator) In(rooms ...string) *BroadcastOperator { return b.To(rooms...) }

// Except excludes sockets in any of rooms.
func (b *BroadcastOperator) Except(rooms ...string) *BroadcastOperator {
	c := b.clone()
	for _, r := range rooms {
		if !slices.Contains(c.except, r) {
			c.except = append(c.except, r)
		}
	}
	return c
}

// Volatile lets the packet be dropped for clients that cannot take it now.
func (b *BroadcastOperator) Volatile() *BroadcastOperator {
	c := b.clone()
	c.flags.Volatile = true
	return c
}

// Local restricts the broadcast to this node.
func (b *BroadcastOperator) Local() *BroadcastOperator {
	c := b.clone()
	c.flags.Local = true
	return c
}

// Compress sets the compress flag (passed on to other nodes; Herald does
// not compress WebSocket messages itself).
func (b *BroadcastOperator) Compress(compress bool) *BroadcastOperator {
	c := b.clone()
	c.flags.Compress = &compress
	return c
}

// Timeout sets how long EmitWithAck waits for acknowledgements.
func (b *BroadcastOperator) Timeout(d time.Duration) *BroadcastOperator {
	c := b.clone()
	c.flags.Timeout = d
	return c
}

func (b *BroadcastOperator) options() adapter.BroadcastOptions {
	return adapter.BroadcastOptions{Rooms: b.rooms, Except: b.except, Flags: b.flags}
}

// Emit sends an event to every target socket. The packet is encoded once.
func (b *BroadcastOperator) Emit(event string, args ...any) error {
	pkt, err := parser.NewEvent(b.nsp.name, event, args...)
	if err != nil {
		if errors.Is(err, parser.ErrReservedEvent) {
			return fmt.Errorf("%w: %q", ErrReservedEvent, event)
		}
		return err
	}
	return b.nsp.adapter.Broadcast(context.Background(), pkt, b.options())
}

// EmitWithAck sends an event to every target socket and waits for every
// acknowledgement, until the Timeout (if set) or ctx ends. It returns the
// acknowledgements received; when some are missing, the error wraps
// ErrAckTimeout. Acknowledgements from other nodes carry only their first
// argument, as with the Node.js adapters.
func (b *BroadcastOperator) EmitWithAck(ctx context.Context, event string, args ...any) ([]Args, error) {
	pkt, err := parser.NewEvent(b.nsp.name, event, args...)
	if err != nil {
		return nil, err
	}
	if b.flags.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.flags.Timeout)
		defer cancel()
	}
	var (
		mu       sync.Mutex
		replies  []Args
		expected int
		servers  int
		done     = make(chan struct{})
		closed   bool
	)
	serverCount, err := b.nsp.adapter.ServerCount(ctx)
	if err != nil {
		return nil, err
	}
	if b.flags.Local {
		serverCount = 1
	}
	check := func() {
		if !closed && servers >= serverCount && len(replies) >= expected {
			closed = true
			close(done)
		}
	}
	err = b.nsp.adapter.BroadcastWithAck(ctx, pkt, b.options(),
		func(n int) {
			mu.Lock()
			servers++
			expected += n
			check()
			mu.Unlock()
		},
		func(a adapter.Ack) {
			mu.Lock()
			replies = append(replies, ackArgs(a))
			check()
			mu.Unlock()
		})
	if err != nil {
		return nil, err
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	out := slices.Clone(replies)
	if !closed {
		closed = true
		return out, fmt.Errorf("%w: %d of %d acknowledgements", ErrAckTimeout, len(out), expected)
	}
	return out, nil
}

// FetchSockets returns the target sockets from every node.
func (b *BroadcastOperator) FetchSockets(ctx context.Context) ([]*RemoteSocket, error) {
	infos, err := b.nsp.adapter.FetchSockets(ctx, b.options())
	if err != nil {
		return nil, err
	}
	out := make([]*RemoteSocket, len(infos))
	for i, info := range infos {
		out[i] = &RemoteSocket{nsp: b.nsp, info: info}
	}
	return out, nil
}

// SocketIDs returns the ids of the target sockets on every node. It is
// the cheap presence query: no handshakes, rooms or data are fetched.
func (b *BroadcastOperator) SocketIDs(ctx context.Context) ([]string, error) {
	return b.nsp.adapter.SocketIDs(ctx, b.options())
}

// CountSockets returns how many target sockets are connected across the
// cluster (for example in a room: srv.In("room").CountSockets(ctx)).
func (b *BroadcastOperator) CountSockets(ctx context.Context) (int, error) {
	ids, err := b.SocketIDs(ctx)
	return len(ids), err
}

// SocketsJoin makes the target sockets, on every node, join rooms.
func (b *BroadcastOperator) SocketsJoin(ctx context.Context, rooms ...string) error {
	return b.nsp.adapter.AddSockets(ctx, b.options(), rooms)
}

// SocketsLeave makes the target sockets, on every node, leave rooms.
func (b *BroadcastOperator) SocketsLeave(ctx context.Context, rooms ...string) error {
	return b.nsp.adapter.DelSockets(ctx, b.options(), rooms)
}

// DisconnectSockets disconnects the target sockets on every node.
func (b *BroadcastOperator) DisconnectSockets(ctx context.Context, close bool) error {
	return b.nsp.adapter.DisconnectSockets(ctx, b.options(), close)
}

// RemoteSocket is a socket on any node, as returned by FetchSockets.
type RemoteSocket struct {
	nsp  *Namespace
	info adapter.SocketInfo
}

// ID returns the socket id.
func (r *RemoteSocket) ID() string { return r.info.ID }

// Rooms returns the socket's rooms when it was fetched.
func (r *RemoteSocket) Rooms() []string { return r.info.Rooms }

// Data returns the socket's data, as JSON.
func (r *RemoteSocket) Data() []byte { return r.info.Data }

// Info returns everything fetched about the socket.
func (r *RemoteSocket) Info() adapter.SocketInfo { return r.info }

// Emit sends an event to the socket, wherever it is.
func (r *RemoteSocket) Emit(event string, args ...any) error {
	return r.nsp.To(r.info.ID).Emit(event, args...)
}

// Join makes the socket join rooms, wherever it is.
func (r *RemoteSocket) Join(ctx context.Context, rooms ...string) error {
	return r.nsp.In(r.info.ID).SocketsJoin(ctx, rooms...)
}

// Leave makes the socket leave rooms, wherever it is.
func (r *RemoteSocket) Leave(ctx context.Context, rooms ...string) error {
	return r.nsp.In(r.info.ID).SocketsLeave(ctx, rooms...)
}

// Disconnect disconnects the socket, wherever it is.
func (r *RemoteSocket) Disconnect(ctx context.Context, close bool) error {
	return r.nsp.In(r.info.ID).DisconnectSockets(ctx, close)
}
