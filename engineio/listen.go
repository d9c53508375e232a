package engineio

import (
	"context"
	"net"
)

// Listen announces on a local TCP address the way Serve works best, and is
// what the herald command uses:
//
//   - No TCP keep-alive probes. Engine.IO's heartbeat already finds dead
//     clients of a session, while net.Listen's default costs four
//     setsockopt calls per accepted connection: ≈ 3% of the CPU of a
//     connect-and-close loop. Set http.Server.IdleTimeout (or ReadTimeout),
//     which Serve applies as net/http does: without probes, it is what
//     closes a kept-alive HTTP connection whose client vanished while it
//     was idle.
//   - On Linux, TCP_DEFER_ACCEPT: a connection is accepted once its first
//     bytes (the request) have arrived, so Serve's first read finds them
//     instead of failing and waiting. Clients speak first in HTTP, and a
//     client that connects and sends nothing is still accepted, a few
//     seconds later.
//
// network is "tcp", "tcp4" or "tcp6"; ctx bounds the setup only.
func Listen(ctx context.Context, network, address string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1, Control: controlListener}
	return lc.Listen(ctx, network, address)
}

// deferAcceptSeconds is how long the kernel keeps a connection that has
// sent nothing before accepting it anyway (TCP_DEFER_ACCEPT rounds it to
// SYN-ACK retransmissions).
const deferAcceptSeconds = 3
