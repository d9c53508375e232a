package herald

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/engineio"
)

// Config configures a Server. The zero value is valid: Socket.IO on
// /socket.io/ with the Node.js server's defaults and the in-memory adapter.
// A Config must not be modified after it has been passed to NewServer.
type Config struct {
	// Engine configures the Engine.IO layer (transports, heartbeat, CORS,
	// cookie, payload limits, EIO3). If Engine.Path is empty, "/socket.io/"
	// is used.
	Engine engineio.Config

	// ConnectTimeout is how long a new connection may take to join a
	// namespace before it is closed. If zero, 45s is used.
	ConnectTimeout time.Duration

	// Adapter creates each namespace's adapter. If nil, the in-memory
	// adapter is used (with recovery storage when Recovery is enabled).
	Adapter adapter.Factory

	// Recovery enables connection-state recovery when MaxDisconnection is
	// positive.
	Recovery RecoveryConfig

	// Logger receives diagnostics. If nil, nothing is logged.
	Logger *slog.Logger
}

// RecoveryConfig configures connection-state recovery: a client that loses
// its connection and comes back within MaxDisconnection gets its socket id,
// rooms and data back, and the packets it missed.
type RecoveryConfig struct {
	// MaxDisconnection is how long a disconnected socket's state is kept.
	// Zero disables recovery.
	MaxDisconnection time.Duration
	// RunMiddlewares runs namespace middleware for recovered sockets too.
	// By default (false) it is skipped, as in the Node.js server.
	RunMiddlewares bool
}

// Server is a Socket.IO server. It is an http.Handler for the Engine.IO path
// (/socket.io/ by default).
type Server struct {
	cfg            Config
	engine         *engineio.Server
	log            *slog.Logger
	connectTimeout time.Duration
	adapterFactory adapter.Factory

	mu      sync.RWMutex // guards nsps and parents
	nsps    map[string]*Namespace
	parents []*parentNamespace
}

// NewServer returns a Socket.IO server. The main namespace "/" exists from
// the start.
func NewServer(cfg Config) (*Server, error) {
	s := &Server{
		cfg:            cfg,
		log:            cfg.Logger,
		connectTimeout: cfg.ConnectTimeout,
		adapterFactory: cfg.Adapter,
		nsps:           make(map[string]*Namespace),
	}
	if s.log == nil {
		s.log = slog.New(discardHandler{})
	}
	if s.connectTimeout <= 0 {
		s.connectTimeout = 45 * time.Second
	}
	if s.adapterFactory == nil {
		s.adapterFactory = adapter.NewMemory(adapter.MemoryConfig{Recovery: cfg.Recovery.MaxDisconnection})
	}
	ecfg := cfg.Engine
	if ecfg.Path == "" {
		ecfg.Path = "/socket.io/"
	}
	if ecfg.Logger == nil {
		ecfg.Logger = cfg.Logger
	}
	engine, err := engineio.NewServer(ecfg, s.onSession)
	if err != nil {
		return nil, err
	}
	s.engine = engine
	if _, err := s.of("/", nil); err != nil {
		return nil, err
	}
	return s, nil
}

// ServeHTTP serves the Engine.IO endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// Serve accepts connections on ln and answers Socket.IO's requests on them
// directly, without net/http's per-request work; every other request goes
// to opts.HTTP (see engineio.Server.Serve, which this is). It returns when
// opts.HTTP is shut down; call Shutdown first.
func (s *Server) Serve(ln net.Listener, opts engineio.ServeOptions) error {
	return s.engine.Serve(ln, opts)
}

// Engine returns the underlying Engine.IO server.
func (s *Server) Engine() *engineio.Server { return s.engine }

// Of returns the namespace with the given name, creating it if needed.
// Names start with "/"; one without it gets it added.
func (s *Server) Of(name string) *Namespace {
	nsp, err := s.of(normalizeNamespace(name), nil)
	if err != nil {
		// The adapter factory failed; the error is logged and the namespace
		// falls back to a working in-memory adapter so calls are safe.
		s.log.Error("herald: adapter failed, namespace is local only", "nsp", name, "err", err)
	}
	return nsp
}

// OfFunc declares dynamic namespaces: a client connecting to an unknown
// namespace whose name match accepts gets it created on the fly. The
// returned ParentNamespace's middleware and connection handlers apply to
// every such child.
func (s *Server) OfFunc(match func(name string, auth []byte) bool) *ParentNamespace {
	p := &parentNamespace{match: match, server: s}
	s.mu.Lock()
	s.parents = append(s.parents, p)
	s.mu.Unlock()
	return &ParentNamespace{p: p}
}

// OfRegexp declares dynamic namespaces whose names match re.
func (s *Server) OfRegexp(re *regexp.Regexp) *ParentNamespace {
	return s.OfFunc(func(name string, _ []byte) bool { return re.MatchString(name) })
}

func normalizeNamespace(name string) string {
	if !strings.HasPrefix(name, "/") {
		return "/" + name
	}
	return name
}

func (s *Server) of(name string, parent *parentNamespace) (*Namespace, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if nsp, ok := s.nsps[name]; ok {
		return nsp, nil
	}
	nsp := newNamespace(s, name, parent)
	a, err := s.adapterFactory(nsp)
	if err != nil {
		a, _ = adapter.NewMemory(adapter.MemoryConfig{})(nsp)
	}
	nsp.adapter = a
	s.nsps[name] = nsp
	return nsp, err
}

// lookupNamespace finds the namespace a client asks for, creating a dynamic
// one when a parent matches. It returns nil for an unknown namespace.
func (s *Server) lookupNamespace(name string, auth []byte) *Namespace {
	s.mu.RLock()
	nsp := s.nsps[name]
	parents := s.parents
	s.mu.RUnlock()
	if nsp != nil {
		return nsp
	}
	for _, p := range parents {
		if p.match(name, auth) {
			nsp, err := s.of(name, p)
			if err != nil {
				s.log.Error("herald: adapter failed, namespace is local only", "nsp", name, "err", err)
			}
			return nsp
		}
	}
	return nil
}

// Shutdown disconnects every client with reason "server shutting down",
// closes the adapters and waits for the connections to finish, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.engine.Shutdown(ctx)
	s.mu.RLock()
	nsps := make([]*Namespace, 0, len(s.nsps))
	for _, n := range s.nsps {
		nsps = append(nsps, n)
	}
	s.mu.RUnlock()
	for _, n := range nsps {
		n.adapter.Close()
	}
	return err
}

// The main namespace's API, on the server for convenience.

// Use adds middleware to the main namespace.
func (s *Server) Use(m Middleware) { s.Of("/").Use(m) }

// OnConnection sets the connection handler of the main namespace.
func (s *Server) OnConnection(h func(*Socket)) { s.Of("/").OnConnection(h) }

// Emit broadcasts to every client of the main namespace.
func (s *Server) Emit(event string, args ...any) error { return s.Of("/").Emit(event, args...) }

// To selects rooms of the main namespace for a broadcast.
func (s *Server) To(rooms ...string) *BroadcastOperator { return s.Of("/").To(rooms...) }

// In is To.
func (s *Server) In(rooms ...string) *BroadcastOperator { return s.Of("/").To(rooms...) }

// Except excludes rooms of the main namespace from a broadcast.
func (s *Server) Except(rooms ...string) *BroadcastOperator { return s.Of("/").Except(rooms...) }

// Local restricts a broadcast to this node.
func (s *Server) Local() *BroadcastOperator { return s.Of("/").Local() }

// Volatile marks a broadcast as droppable.
func (s *Server) Volatile() *BroadcastOperator { return s.Of("/").Volatile() }

// Timeout sets the deadline of a broadcast with acknowledgements.
func (s *Server) Timeout(d time.Duration) *BroadcastOperator { return s.Of("/").Timeout(d) }

// FetchSockets returns the sockets of the main namespace on every node.
func (s *Server) FetchSockets(ctx context.Context) ([]*RemoteSocket, error) {
	return s.Of("/").FetchSockets(ctx)
}

// ServerSideEmit sends an event to the main namespace of the other nodes.
func (s *Server) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	return s.Of("/").ServerSideEmit(ctx, event, args...)
}

// onSession is called by Engine.IO for every new connection.
func (s *Server) onSession(es *engineio.Session) {
	newClient(s, es)
}

// discardHandler is a slog.Handler that drops everything.
type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }
