package engineio

import (
	"context"
	"net/http"
	"time"
)

// HandshakeForwarder is an optional extension of SessionForwarder: while the
// server is draining (see Drain), a new handshake is offered to it so the
// client opens its session on another, healthy node instead of getting 503.
type HandshakeForwarder interface {
	// ForwardHandshake handles the handshake request and returns true, or
	// returns false without writing anything to let the server answer 503.
	ForwardHandshake(w http.ResponseWriter, r *http.Request) bool
}

// Drain stops the server from opening new sessions while the ones it holds
// keep working: a new handshake is passed to Config.Forwarder when it is a
// HandshakeForwarder that accepts it, and otherwise gets 503 with
// Retry-After. Call CloseSessions later to ask the clients to reconnect
// (elsewhere), and Shutdown at the end. Drain cannot be undone.
func (srv *Server) Drain() {
	// Under the lock, as in Shutdown: a handshake either registers its
	// session before this point or sees the flag.
	srv.mu.Lock()
	srv.closing.Store(true)
	srv.mu.Unlock()
}

// Draining reports whether the server takes no new sessions (Drain or
// Shutdown has been called).
func (srv *Server) Draining() bool { return srv.closing.Load() }

// CloseSessions closes every open session with reason ReasonServerShutdown,
// after flushing what is queued: WebSocket clients get a close frame and
// polling clients a close packet on their next poll. Official clients treat
// that as a lost connection and reconnect, which on a draining node lands
// them on another node. It then waits until the server holds no session
// (lingering polling sessions leave once their client has polled the close
// packet) or ctx is done.
func (srv *Server) CloseSessions(ctx context.Context) error {
	srv.mu.RLock()
	all := make([]*Session, 0, len(srv.sessions))
	for _, s := range srv.sessions {
		all = append(all, s)
	}
	srv.mu.RUnlock()
	for _, s := range all {
		s.closeWith(ReasonServerShutdown, true)
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for srv.Count() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// forwardHandshake offers a handshake that a draining server will not take
// to the configured forwarder.
func (srv *Server) forwardHandshake(w http.ResponseWriter, r *http.Request) bool {
	hf, ok := srv.cfg.Forwarder.(HandshakeForwarder)
	return ok && hf.ForwardHandshake(w, r)
}
