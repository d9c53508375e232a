// Package balancer is the sticky reverse proxy behind `herald lb`.
//
// It keeps no per-session state. Herald session ids name the node that owns
// them ("<node id>-<random>"), and every node says its id on GET /health, so
// a request that carries a sid goes to the backend whose /health named that
// node, and a request without one (a new session) goes to the healthy,
// non-draining backend with the fewest sessions. Restarting the balancer, or
// running several side by side, loses nothing.
//
// Health: every backend's GET /health is polled at Config.HealthInterval.
// "200 ok node=<id> sessions=<n>" is healthy; "503 draining node=<id> ..."
// is draining (no new sessions, its sids still routed to it); anything else,
// Config.FailAfter times in a row, removes the backend until it answers
// again. A request whose owner is gone gets the answer an Engine.IO server
// gives for an unknown session (400 {"code":1,"message":"Session ID
// unknown"}), so the client reconnects to a live node.
package balancer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Balancer. The zero value is valid but has no backends:
// set Backends, Discovery or both.
type Config struct {
	// Backends are the base URLs of the Herald nodes ("http://10.0.0.5:3000").
	// A path in the URL is prefixed to every proxied path.
	Backends []string

	// Discovery, if set, is asked for more backend URLs every
	// DiscoveryInterval (for example the nodes of the Redis node registry).
	// Backends it stops listing are dropped; Backends above are always kept.
	Discovery Discovery

	// HealthInterval is how often every backend's /health is checked.
	// Zero means 2s.
	HealthInterval time.Duration

	// HealthTimeout bounds one health check. Zero means 3s.
	HealthTimeout time.Duration

	// FailAfter is how many failed health checks in a row remove a backend.
	// Zero means 2: one slow answer on a busy machine does not end every
	// session of a node. A refused connection while proxying removes the
	// backend at once.
	FailAfter int

	// DiscoveryInterval is how often Discovery is asked. Zero means 5s.
	DiscoveryInterval time.Duration

	// TrustForwarded keeps the X-Forwarded-For of incoming requests and
	// appends the client address to it. Set it only when the balancer sits
	// behind another proxy that sets the header; otherwise clients could
	// claim any address. False replaces the header with the client address.
	TrustForwarded bool

	// Transport carries proxied requests and health checks. Nil means a
	// transport tuned for many concurrent long-polls per backend.
	Transport http.RoundTripper

	// Logger receives backend state changes and proxy errors. Nil is silent.
	Logger *slog.Logger
}

// Discovery lists backend base URLs, for example from the node registry.
type Discovery interface {
	Backends(ctx context.Context) ([]string, error)
}

// ConfigError reports an unusable configuration value.
type ConfigError struct {
	Field string // "Backends"
	Value string
	Err   error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("balancer: %s %q: %v", e.Field, e.Value, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// ErrClosed is returned by Start after Close.
var ErrClosed = errors.New("balancer: closed")

// State is a backend's health as the balancer last saw it.
type State int

const (
	// Unknown: not checked yet; gets no traffic.
	Unknown State = iota
	// Healthy: gets new sessions and the requests of its sessions.
	Healthy
	// Draining: answered 503 "draining"; gets the requests of its sessions only.
	Draining
	// Down: failed FailAfter checks in a row (or refused a connection); gets nothing.
	Down
)

func (s State) String() string {
	switch s {
	case Healthy:
		return "healthy"
	case Draining:
		return "draining"
	case Down:
		return "down"
	}
	return "unknown"
}

// BackendStatus is a snapshot of one backend.
type BackendStatus struct {
	URL         string
	NodeID      string // from /health; empty until the first answer
	State       State
	Sessions    int // as of the last health check
	Assigned    int // new sessions sent since the last health check
	Requests    uint64
	NewSessions uint64
	Errors      uint64 // proxy errors
}

// backend is one upstream node. Its mutable fields are guarded by
// Balancer.mu; the counters are atomic.
type backend struct {
	url   *url.URL
	raw   string
	proxy *httputil.ReverseProxy

	static   bool // from Config.Backends (never dropped by discovery)
	nodeID   string
	state    State
	fails    int
	sessions int
	assigned int

	requests    atomic.Uint64
	newSessions atomic.Uint64
	errors      atomic.Uint64
}

// Balancer is an http.Handler that proxies to Herald nodes. Create it with
// New, call Start, serve it, and Close it.
type Balancer struct {
	cfg       Config
	log       *slog.Logger
	transport http.RoundTripper
	client    *http.Client

	mu       sync.Mutex
	backends []*backend // sorted by URL

	unknownSessions atomic.Uint64 // 400s for sids whose owner is gone
	noBackend       atomic.Uint64 // 503s for new sessions with no healthy backend

	kick      chan struct{} // asks the loop for an immediate health check
	startOnce sync.Once
	closeOnce sync.Once
	stop      context.CancelFunc
	done      chan struct{}
	closed    atomic.Bool
}

// New checks cfg and returns a Balancer that routes nothing until Start has
// checked the backends.
func New(cfg Config) (*Balancer, error) {
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = 2 * time.Second
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = 3 * time.Second
	}
	if cfg.FailAfter <= 0 {
		cfg.FailAfter = 2
	}
	if cfg.DiscoveryInterval <= 0 {
		cfg.DiscoveryInterval = 5 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := cfg.Transport
	if tr == nil {
		tr = &http.Transport{
			Proxy:                 nil, // never send node traffic through an environment proxy
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          0,    // no global cap
			MaxIdleConnsPerHost:   1024, // every open long-poll holds a connection
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 0, // long-polls wait for a ping interval
		}
	}
	b := &Balancer{
		cfg:       cfg,
		log:       log,
		transport: tr,
		client:    &http.Client{Transport: tr, Timeout: cfg.HealthTimeout},
		kick:      make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	for _, raw := range cfg.Backends {
		be, err := b.newBackend(raw)
		if err != nil {
			return nil, err
		}
		be.static = true
		b.backends = append(b.backends, be)
	}
	b.sortBackends()
	return b, nil
}

func (b *Balancer) newBackend(raw string) (*backend, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err == nil && (u.Scheme != "http" && u.Scheme != "https" || u.Host == "") {
		err = errors.New("want http://host:port or https://host:port")
	}
	if err != nil {
		return nil, &ConfigError{Field: "Backends", Value: raw, Err: err}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	be := &backend{url: u, raw: u.String()}
	be.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host // the node sees the host the client asked for
			if b.cfg.TrustForwarded {
				pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
			}
			pr.SetXForwarded()
		},
		Transport:     b.transport,
		FlushInterval: -1, // polling responses and upgrades are never held back
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// Report to ServeHTTP, which decides between retrying and answering.
			if at, ok := r.Context().Value(attemptKey{}).(*attempt); ok {
				at.err = err
			}
		},
		ErrorLog: slog.NewLogLogger(b.log.Handler(), slog.LevelDebug),
	}
	return be, nil
}

func (b *Balancer) sortBackends() {
	slices.SortFunc(b.backends, func(x, y *backend) int { return strings.Compare(x.raw, y.raw) })
}

// Start checks every backend once (so routing works as soon as it returns)
// and then keeps checking them in the background until Close.
func (b *Balancer) Start(ctx context.Context) error {
	if b.closed.Load() {
		return ErrClosed
	}
	started := false
	b.startOnce.Do(func() {
		started = true
		b.discover(ctx)
		b.checkAll(ctx)
		loopCtx, cancel := context.WithCancel(context.Background())
		b.stop = cancel
		go b.loop(loopCtx)
	})
	if !started {
		return errors.New("balancer: already started")
	}
	return ctx.Err()
}

// Close stops the health checks, waits for them (bounded by ctx) and closes
// idle connections to the backends. Proxied requests in flight, and
// WebSocket connections, are the HTTP server's to end.
func (b *Balancer) Close(ctx context.Context) error {
	b.closed.Store(true)
	var err error
	b.closeOnce.Do(func() {
		started := false
		b.startOnce.Do(func() {}) // a later Start does nothing
		if b.stop != nil {
			started = true
			b.stop()
		}
		if started {
			select {
			case <-b.done:
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		if t, ok := b.transport.(interface{ CloseIdleConnections() }); ok {
			t.CloseIdleConnections()
		}
	})
	return err
}

func (b *Balancer) loop(ctx context.Context) {
	defer close(b.done)
	health := time.NewTicker(b.cfg.HealthInterval)
	defer health.Stop()
	var disc <-chan time.Time
	if b.cfg.Discovery != nil {
		t := time.NewTicker(b.cfg.DiscoveryInterval)
		defer t.Stop()
		disc = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-health.C:
			b.checkAll(ctx)
		case <-b.kick:
			b.checkAll(ctx)
		case <-disc:
			b.discover(ctx)
			b.checkAll(ctx)
		}
	}
}

// discover merges Discovery's list into the backends.
func (b *Balancer) discover(ctx context.Context) {
	if b.cfg.Discovery == nil {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, b.cfg.HealthTimeout)
	defer cancel()
	urls, err := b.cfg.Discovery.Backends(dctx)
	if err != nil {
		b.log.Warn("balancer: discovery failed; keeping the current backends", "err", err)
		return
	}
	want := map[string]bool{}
	var fresh []*backend
	for _, raw := range urls {
		be, err := b.newBackend(raw)
		if err != nil {
			b.log.Warn("balancer: discovery returned an unusable backend", "err", err)
			continue
		}
		want[be.raw] = true
		fresh = append(fresh, be)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	kept := b.backends[:0:0]
	have := map[string]bool{}
	for _, be := range b.backends {
		if be.static || want[be.raw] {
			kept = append(kept, be)
			have[be.raw] = true
		} else {
			b.log.Info("balancer: backend left the registry", "backend", be.raw, "node", be.nodeID)
		}
	}
	for _, be := range fresh {
		if !have[be.raw] {
			have[be.raw] = true
			kept = append(kept, be)
			b.log.Info("balancer: backend discovered", "backend", be.raw)
		}
	}
	b.backends = kept
	b.sortBackends()
}

// checkAll checks every backend concurrently and waits for all of them.
func (b *Balancer) checkAll(ctx context.Context) {
	b.mu.Lock()
	list := slices.Clone(b.backends)
	b.mu.Unlock()
	var wg sync.WaitGroup
	for _, be := range list {
		wg.Go(func() { b.check(ctx, be) })
	}
	wg.Wait()
}

// healthReport is what one GET /health said.
type healthReport struct {
	state    State
	nodeID   string
	sessions int
}

func (b *Balancer) check(ctx context.Context, be *backend) {
	rep, err := b.probe(ctx, be)
	b.mu.Lock()
	defer b.mu.Unlock()
	old, oldNode := be.state, be.nodeID
	if err != nil {
		be.fails++
		if be.state != Down && (be.fails >= b.cfg.FailAfter || be.state == Unknown) {
			be.state = Down
		}
	} else {
		be.fails = 0
		be.state = rep.state
		be.nodeID = rep.nodeID
		be.sessions = rep.sessions
		be.assigned = 0
	}
	if be.state != old || be.nodeID != oldNode {
		b.log.Info("balancer: backend state", "backend", be.raw, "node", be.nodeID, "state", be.state.String(), "was", old.String(), "err", err)
	}
}

// probe asks a backend's GET /health (the body names the node, which HEAD
// would not).
func (b *Balancer) probe(ctx context.Context, be *backend) (healthReport, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.HealthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, be.raw+"/health", nil)
	if err != nil {
		return healthReport{}, err
	}
	res, err := b.client.Do(req)
	if err != nil {
		return healthReport{}, err
	}
	defer res.Body.Close()
	line, _ := bufio.NewReader(io.LimitReader(res.Body, 512)).ReadString('\n')
	rep, err := parseHealth(line)
	if err != nil {
		return healthReport{}, fmt.Errorf("GET /health: %d: %w", res.StatusCode, err)
	}
	switch {
	case res.StatusCode == http.StatusOK && rep.state == Healthy:
	case res.StatusCode == http.StatusServiceUnavailable && rep.state == Draining:
	default:
		return healthReport{}, fmt.Errorf("GET /health: status %d with %q", res.StatusCode, strings.TrimSpace(line))
	}
	return rep, nil
}

// parseHealth reads "ok node=<id> sessions=<n>" or "draining node=<id> sessions=<n>".
func parseHealth(line string) (healthReport, error) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return healthReport{}, errors.New("empty health answer")
	}
	var rep healthReport
	switch fields[0] {
	case "ok":
		rep.state = Healthy
	case "draining":
		rep.state = Draining
	default:
		return healthReport{}, fmt.Errorf("health answer %q: want ok or draining", fields[0])
	}
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "node":
			rep.nodeID = v
		case "sessions":
			n, err := strconv.Atoi(v)
			if err != nil {
				return healthReport{}, fmt.Errorf("health answer sessions=%q: %w", v, err)
			}
			rep.sessions = n
		}
	}
	if !validNodeID(rep.nodeID) {
		return healthReport{}, fmt.Errorf("health answer names no valid node (%q)", strings.TrimSpace(line))
	}
	return rep, nil
}

// SessionNodeID returns the node id a Herald session id carries: what
// precedes its first '-' (node ids are letters and digits; the random part
// may contain '-'). It mirrors engineio.SessionNodeID without importing the
// server.
func SessionNodeID(sid string) (string, bool) {
	i := strings.IndexByte(sid, '-')
	if i <= 0 || !validNodeID(sid[:i]) || len(sid) == i+1 {
		return "", false
	}
	return sid[:i], true
}

func validNodeID(id string) bool {
	if len(id) == 0 || len(id) > 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// Status returns a snapshot of every backend, sorted by URL.
func (b *Balancer) Status() []BackendStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]BackendStatus, 0, len(b.backends))
	for _, be := range b.backends {
		out = append(out, BackendStatus{
			URL: be.raw, NodeID: be.nodeID, State: be.state,
			Sessions: be.sessions, Assigned: be.assigned,
			Requests: be.requests.Load(), NewSessions: be.newSessions.Load(), Errors: be.errors.Load(),
		})
	}
	return out
}

// ownerOf returns the live backend of node id, or nil.
func (b *Balancer) ownerOf(node string) *backend {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, be := range b.backends {
		if be.nodeID == node && (be.state == Healthy || be.state == Draining) {
			return be
		}
	}
	return nil
}

// pickNew returns the healthy backend with the fewest sessions, not in
// skip, and counts the new session when countSession is set.
func (b *Balancer) pickNew(skip []*backend, countSession bool) *backend {
	b.mu.Lock()
	defer b.mu.Unlock()
	var best *backend
	for _, be := range b.backends {
		if be.state != Healthy || slices.Contains(skip, be) {
			continue
		}
		if best == nil || be.sessions+be.assigned < best.sessions+best.assigned {
			best = be
		}
	}
	if best != nil && countSession {
		best.assigned++
	}
	return best
}

// markDown removes a backend that refused a connection until its next good
// health check, and asks for that check now.
func (b *Balancer) markDown(be *backend, err error) {
	b.mu.Lock()
	changed := be.state != Down
	be.state = Down
	b.mu.Unlock()
	if changed {
		b.log.Warn("balancer: backend unreachable", "backend", be.raw, "node", be.nodeID, "err", err)
	}
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

type attemptKey struct{}

// attempt carries the proxy error of one try back to ServeHTTP.
type attempt struct{ err error }

// maxTries bounds the backends tried for one new session.
const maxTries = 3

// ServeHTTP routes a request: /lb/metrics and /lb/health are the
// balancer's own; a request with a sid goes to its owner; any other goes to
// the backend with the fewest sessions.
func (b *Balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/lb/metrics":
		b.serveMetrics(w, r)
		return
	case "/lb/health":
		b.serveHealth(w, r)
		return
	}
	q := r.URL.Query()
	if sid := q.Get("sid"); sid != "" {
		b.serveSession(w, r, sid)
		return
	}
	// A request with "transport" and no sid is an Engine.IO handshake.
	handshake := q.Get("transport") != ""
	// Without a body the request can be replayed on another backend when
	// the first one cannot be reached.
	replayable := r.ContentLength == 0 && (r.Method == http.MethodGet || r.Method == http.MethodHead)
	var tried []*backend
	for len(tried) < maxTries {
		be := b.pickNew(tried, handshake)
		if be == nil {
			break
		}
		tried = append(tried, be)
		be.requests.Add(1)
		if handshake {
			be.newSessions.Add(1)
		}
		err := b.proxy(w, r, be)
		if err == nil {
			return
		}
		if !replayable || !isDialError(err) {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
	}
	if len(tried) > 0 {
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	b.noBackend.Add(1)
	http.Error(w, "no healthy backend", http.StatusServiceUnavailable)
}

// serveSession sends a request to the owner of sid, or answers "Session ID
// unknown" when the owner is gone, as the owner itself would for a session
// it does not hold.
func (b *Balancer) serveSession(w http.ResponseWriter, r *http.Request, sid string) {
	node, ok := SessionNodeID(sid)
	var be *backend
	if ok {
		be = b.ownerOf(node)
	}
	if be == nil {
		b.unknownSession(w)
		return
	}
	be.requests.Add(1)
	if err := b.proxy(w, r, be); err != nil {
		// The owner cannot be reached: its sessions are gone with it.
		b.unknownSession(w)
	}
}

func (b *Balancer) unknownSession(w http.ResponseWriter) {
	b.unknownSessions.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	io.WriteString(w, `{"code":1,"message":"Session ID unknown"}`)
}

// proxy forwards r to be and returns the error of a request that never got
// an answer (nothing has been written to w then).
func (b *Balancer) proxy(w http.ResponseWriter, r *http.Request, be *backend) error {
	at := &attempt{}
	be.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), attemptKey{}, at)))
	if at.err == nil {
		return nil
	}
	if r.Context().Err() != nil {
		return at.err // the client left; not the backend's fault
	}
	be.errors.Add(1)
	if isDialError(at.err) {
		b.markDown(be, at.err)
	} else {
		b.log.Debug("balancer: proxy error", "backend", be.raw, "path", r.URL.Path, "err", at.err)
	}
	return at.err
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// serveHealth answers 200 while at least one backend takes new sessions.
func (b *Balancer) serveHealth(w http.ResponseWriter, r *http.Request) {
	healthy, total := 0, 0
	for _, s := range b.Status() {
		total++
		if s.State == Healthy {
			healthy++
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	status, word := http.StatusOK, "ok"
	if healthy == 0 {
		status, word = http.StatusServiceUnavailable, "unavailable"
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		fmt.Fprintf(w, "%s backends=%d healthy=%d\n", word, total, healthy)
	}
}
