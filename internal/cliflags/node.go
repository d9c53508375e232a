package cliflags

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/herald-rt/herald/adapter/redis"
	"github.com/herald-rt/herald/cluster"
	"github.com/herald-rt/herald/engineio"
)

// Registry timing: a node refreshes its entry every heartbeatInterval and
// the entry lives 3× that, so a node that dies leaves within 6 s.
const heartbeatInterval = 2 * time.Second

// Node is the cluster side of one server process: forwarding to session
// owners (with --cluster-secret), the node registry (with --redis), the
// health endpoint, and draining on shutdown. Build it with NewNode after
// listening, put EngineConfig into the server, then call Start.
type Node struct {
	opts      *Server
	log       *slog.Logger
	addr      string // listen address
	advertise string // URL other nodes use

	// Forwarder is nil when forwarding is off (no --cluster-secret).
	Forwarder *cluster.Forwarder

	registry    *cluster.Registry // nil without --redis
	closeRedis  func()
	started     time.Time
	eio         *engineio.Server
	stopBeat    context.CancelFunc
	beatDone    chan struct{}
	stopOnce    sync.Once
	drainedFlag bool
}

// NewNode prepares the cluster side of a node listening on ln. It fixes the
// node id (a random one if --node-id is empty) so session ids, the registry
// and forwarding agree.
func (s *Server) NewNode(ctx context.Context, ln net.Addr, log *slog.Logger) (*Node, error) {
	if s.NodeID == "" {
		s.NodeID = engineio.RandomNodeID()
	}
	n := &Node{opts: s, log: log, addr: ln.String(), advertise: s.AdvertiseURL, closeRedis: func() {}, started: time.Now().UTC()}
	if n.advertise == "" {
		n.advertise = DefaultAdvertiseURL(ln)
	}
	if s.Redis != "" {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		clients, err := redis.Dial(dctx, s.Redis)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("node registry: %w", err)
		}
		n.registry = cluster.NewRegistry(clients.Pub, "")
		n.closeRedis = clients.Close
	}
	peers, err := cluster.ParsePeers(s.Peers)
	if err != nil {
		n.closeRedis()
		return nil, err
	}
	switch {
	case s.ClusterSecret == "":
		if len(peers) > 0 || n.registry != nil {
			log.Warn("request forwarding is off: no --cluster-secret; requests for sessions of other nodes get 400 unless the balancer is sticky")
		}
	case len(peers) == 0 && n.registry == nil:
		log.Info("request forwarding is off: no --peers and no --redis to find other nodes")
	default:
		n.Forwarder, err = cluster.NewForwarder(cluster.Config{
			NodeID:   s.NodeID,
			Secret:   s.ClusterSecret,
			Peers:    peers,
			Registry: n.registry,
			MaxBody:  s.MaxPayload,
			Logger:   log,
		})
		if err != nil {
			n.closeRedis()
			return nil, err
		}
	}
	return n, nil
}

// DefaultAdvertiseURL is http://<listen address>, with 127.0.0.1 for an
// unspecified host.
func DefaultAdvertiseURL(ln net.Addr) string {
	host, port, err := net.SplitHostPort(ln.String())
	if err != nil {
		return "http://" + ln.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// AdvertiseURL is how other nodes reach this one.
func (n *Node) AdvertiseURL() string { return n.advertise }

// EngineConfig is Server.EngineConfig with this node's forwarder.
func (n *Node) EngineConfig(path string) engineio.Config {
	cfg := n.opts.EngineConfig(path, n.log)
	if n.Forwarder != nil {
		cfg.Forwarder = n.Forwarder
	}
	return cfg
}

// Handler returns the node's HTTP handler: /health (see
// cluster.HealthHandler) and app for everything else, behind the
// verification of forwarded requests.
func (n *Node) Handler(eio *engineio.Server, app http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/health", cluster.HealthHandler(eio))
	mux.Handle("/", app)
	if n.Forwarder != nil {
		return n.Forwarder.Handler(mux)
	}
	return cluster.Handler("", mux)
}

// Serve serves ln with hs, whose Handler is the node's (Handler): the
// Engine.IO requests of eio directly on their connections
// (engineio.Server.Serve, forwarded requests excepted so the verifier sees
// them), unless --net-http. It returns when hs is shut down.
func (n *Node) Serve(eio *engineio.Server, ln net.Listener, hs *http.Server) error {
	if n.opts.NetHTTP {
		return hs.Serve(ln)
	}
	return eio.Serve(ln, engineio.ServeOptions{
		HTTP:                      hs,
		PassThroughHeaderPrefixes: []string{cluster.ForwardingHeaderPrefix},
	})
}

// Start registers the node in the registry (if any) and keeps its entry
// fresh until Drain or Close.
func (n *Node) Start(eio *engineio.Server) {
	n.eio = eio
	if n.registry == nil {
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	n.stopBeat = stop
	n.beatDone = make(chan struct{})
	go func() {
		defer close(n.beatDone)
		n.registry.Heartbeat(ctx, heartbeatInterval, n.info, n.log)
	}()
	n.log.Info("registered in the node registry", "node", n.opts.NodeID, "url", n.advertise)
}

func (n *Node) info() cluster.NodeInfo {
	return cluster.NodeInfo{
		ID: n.opts.NodeID, Addr: n.addr, URL: n.advertise, Sockets: n.eio.Count(),
		Draining: n.eio.Draining(), Started: n.started,
	}
}

// Drain takes the node out of service gently: it stops taking new sessions
// (new handshakes are forwarded to another node when possible, else 503),
// announces it in the registry and on /health, waits --drain-delay so
// balancers notice, tells every client to reconnect (they land elsewhere),
// waits for them to go (bounded by ctx) and leaves the registry.
func (n *Node) Drain(ctx context.Context) error {
	n.eio.Drain()
	if n.registry != nil {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := n.registry.Register(rctx, n.info(), 3*heartbeatInterval); err != nil {
			n.log.Warn("could not mark the node draining in the registry", "err", err)
		}
		cancel()
	}
	n.log.Info("draining: no new sessions", "delay", n.opts.DrainDelay.String(), "sessions", n.eio.Count())
	select {
	case <-time.After(n.opts.DrainDelay):
	case <-ctx.Done():
	}
	before := n.eio.Count()
	err := n.eio.CloseSessions(ctx)
	n.log.Info("draining: clients told to reconnect", "sessions", before, "left", n.eio.Count())
	n.leave()
	return err
}

// leave stops the heartbeat, which removes the node from the registry.
func (n *Node) leave() {
	n.stopOnce.Do(func() {
		if n.stopBeat != nil {
			n.stopBeat()
			<-n.beatDone
		}
	})
}

// Close leaves the registry and releases connections. Call it after the
// HTTP server has shut down.
func (n *Node) Close() {
	n.leave()
	n.Forwarder.Close()
	n.closeRedis()
}

// String describes the node for logs.
func (n *Node) String() string {
	mode := "off"
	if n.Forwarder != nil {
		mode = "on"
	}
	return "node " + n.opts.NodeID + " forwarding=" + mode + " registry=" + strconv.FormatBool(n.registry != nil)
}
