package cluster

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-rt/herald/engineio"
)

// Config configures a Forwarder. Only NodeID and Secret are required.
type Config struct {
	// NodeID is this node's id, as in engineio.Config.NodeID.
	NodeID string
	// Secret is the cluster secret every node shares. Forwarded requests
	// are signed with it (HMAC-SHA256) and verified by the receiver.
	// NewForwarder refuses an empty secret.
	Secret string
	// Peers is a static map from node id to the base URL other nodes reach
	// it on (e.g. "http://10.0.0.5:3000"), for deployments without a
	// registry. It may be combined with Registry; it wins on conflicts.
	Peers map[string]string
	// Registry, if set, is where nodes not in Peers are looked up (by their
	// NodeInfo.URL). Its contents are cached.
	Registry *Registry
	// RefreshInterval is how often the cached registry is reloaded (it is
	// also reloaded when a request names an unknown node). If zero, 2s.
	RefreshInterval time.Duration
	// MaxSkew is how far a forwarded request's timestamp may be from this
	// node's clock. If zero, DefaultMaxSkew (30s).
	MaxSkew time.Duration
	// MaxNonces bounds the nonces remembered against replays. When it is
	// reached, further forwarded requests are refused until old nonces age
	// out. If zero, DefaultMaxNonces.
	MaxNonces int
	// MaxBody is the largest request body forwarded or accepted from
	// another node, in bytes (a larger one gets 413, as the owner would
	// answer); use the Engine.IO MaxPayload, which bounds polling bodies.
	// If zero, DefaultMaxBody (16 MiB).
	MaxBody int64
	// Transport carries forwarded requests. If nil, a pooled transport
	// tuned for many concurrent long polls to few hosts is used.
	Transport http.RoundTripper
	// Logger receives diagnostics. If nil, nothing is logged.
	Logger *slog.Logger
}

// Forwarder passes requests for sessions owned by other nodes to their owner,
// one authenticated hop over pooled connections, and verifies requests other
// nodes forward here (see Handler). It implements engineio.SessionForwarder
// and engineio.HandshakeForwarder.
//
// A nil *Forwarder is valid: it forwards nothing and its Handler refuses
// every request that claims to be forwarded.
type Forwarder struct {
	self      string
	key       []byte
	dir       *directory
	transport http.RoundTripper
	ownTr     *http.Transport // closed by Close when we made it
	direct    *directClient   // plain requests, when no Transport was configured
	maxBody   int64
	verifier  *verifier
	log       *slog.Logger
	errLog    *log.Logger
	next      atomic.Uint64 // round-robin position for forwarded handshakes

	stop context.CancelFunc
	wg   sync.WaitGroup
}

var (
	_ engineio.SessionForwarder   = (*Forwarder)(nil)
	_ engineio.HandshakeForwarder = (*Forwarder)(nil)
)

// NewForwarder returns a forwarder for this node. If cfg.Registry is set it
// starts a goroutine that refreshes the node cache until Close.
func NewForwarder(cfg Config) (*Forwarder, error) {
	if cfg.Secret == "" {
		return nil, errNoSecret
	}
	if err := engineio.ValidateNodeID(cfg.NodeID); err != nil {
		return nil, err
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	dir, err := newDirectory(cfg.NodeID, cfg.Peers, cfg.Registry, lg)
	if err != nil {
		return nil, err
	}
	f := &Forwarder{
		self:    cfg.NodeID,
		key:     []byte(cfg.Secret),
		dir:     dir,
		maxBody: cfg.MaxBody,
		log:     lg,
		errLog:  slog.NewLogLogger(lg.Handler(), slog.LevelDebug),
	}
	if f.maxBody <= 0 {
		f.maxBody = DefaultMaxBody
	}
	f.verifier = newVerifier(f.key, cfg.MaxSkew, cfg.MaxNonces, f.maxBody, lg)
	f.transport = cfg.Transport
	if f.transport == nil {
		f.ownTr = &http.Transport{
			Proxy:               nil, // node to node: never through an HTTP proxy
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true, // pass bodies through untouched
		}
		f.transport = f.ownTr
		f.direct = newDirectClient()
	}
	ctx, stop := context.WithCancel(context.Background())
	f.stop = stop
	if cfg.Registry != nil {
		interval := cfg.RefreshInterval
		if interval <= 0 {
			interval = 2 * time.Second
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.refreshLoop(ctx, interval)
		}()
	}
	return f, nil
}

func newVerifier(key []byte, maxSkew time.Duration, maxNonces int, maxBody int64, lg *slog.Logger) *verifier {
	if maxSkew <= 0 {
		maxSkew = DefaultMaxSkew
	}
	if maxNonces <= 0 {
		maxNonces = DefaultMaxNonces
	}
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &verifier{key: key, maxSkew: maxSkew, maxBody: maxBody, nonces: newNonceCache(2*maxSkew, maxNonces), log: lg, now: time.Now}
}

func (f *Forwarder) refreshLoop(ctx context.Context, interval time.Duration) {
	f.dir.refresh(ctx)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.dir.refresh(ctx)
		}
	}
}

// Close stops the registry refresh and closes idle pooled connections.
func (f *Forwarder) Close() {
	if f == nil {
		return
	}
	f.stop()
	f.wg.Wait()
	if f.ownTr != nil {
		f.ownTr.CloseIdleConnections()
	}
	if f.direct != nil {
		f.direct.close()
	}
}

// Handler returns next behind the verification of forwarded requests:
// a request that carries forwarding headers is refused with 403 unless it is
// signed with the cluster secret, fresh (within MaxSkew) and not replayed.
// A genuine one reaches next with the client's address as RemoteAddr and is
// never forwarded again. Wrap the whole node's handler with it.
func (f *Forwarder) Handler(next http.Handler) http.Handler {
	if f == nil {
		return (&verifier{log: slog.New(slog.DiscardHandler)}).wrap(next)
	}
	return f.verifier.wrap(next)
}

// Handler is the verification middleware of a node that may forward
// nothing itself: with an empty secret every request that claims to be
// forwarded is refused.
func Handler(secret string, next http.Handler) http.Handler {
	var key []byte
	if secret != "" {
		key = []byte(secret)
	}
	v := newVerifier(key, 0, 0, 0, nil)
	return v.wrap(next)
}

// ForwardSession proxies a request for a session this node does not hold to
// the node named in the session id. It declines (so the client gets 400
// "Session ID unknown") when the id names no node, this node, or a node it
// cannot find, and for requests that were themselves forwarded (one hop).
func (f *Forwarder) ForwardSession(w http.ResponseWriter, r *http.Request, sid string) bool {
	if f == nil || f.alreadyForwarded(r) {
		return false
	}
	owner, ok := engineio.SessionNodeID(sid)
	if !ok || owner == f.self {
		return false
	}
	p := f.dir.lookup(r.Context(), owner)
	if p == nil {
		return false
	}
	err := f.proxy(w, r, p, false)
	if err != nil && !errors.Is(err, errWritten) {
		// The owner is unreachable: its sessions are gone with it.
		f.log.Debug("cluster: forwarding failed", "node", owner, "err", err)
		writeSessionUnknown(w)
	}
	return true
}

// ForwardHandshake passes a new session's handshake to another node that is
// not draining (round robin), trying the next one if a node is unreachable
// or answers 503. It declines when there is none, or when the request was
// itself forwarded.
func (f *Forwarder) ForwardHandshake(w http.ResponseWriter, r *http.Request) bool {
	if f == nil || f.alreadyForwarded(r) || (r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0) {
		return false
	}
	peers := f.dir.others()
	if len(peers) == 0 {
		f.dir.refreshOnMiss(r.Context())
		if peers = f.dir.others(); len(peers) == 0 {
			return false
		}
	}
	start := f.next.Add(1)
	for i := range peers {
		p := peers[(start+uint64(i))%uint64(len(peers))]
		err := f.proxy(w, r, p, true)
		if err == nil || errors.Is(err, errWritten) {
			return true
		}
		if r.Context().Err() != nil {
			return true // the client left; nothing to answer
		}
		f.log.Debug("cluster: handshake forwarding failed, trying the next node", "node", p.id, "err", err)
	}
	return false
}

func (f *Forwarder) alreadyForwarded(r *http.Request) bool {
	_, ok := ForwardedBy(r)
	return ok || claimsForwarded(r)
}

var (
	// errWritten: the proxy failed after the response had started.
	errWritten = errors.New("cluster: response already started")
	// errPeerRefused: a node refused a forwarded handshake (503, draining).
	errPeerRefused  = errors.New("cluster: node refused the handshake")
	errBodyTooLarge = errors.New("cluster: request body too large to forward")
)

// proxy forwards r to p. It returns nil once the owner's response has been
// relayed; errWritten if something went wrong after the response started;
// any other error if nothing has been written, so the caller may answer.
func (f *Forwarder) proxy(w http.ResponseWriter, r *http.Request, p *peer, handshake bool) error {
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, f.maxBody+1))
		if err != nil {
			return err
		}
		if int64(len(body)) > f.maxBody {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return errWritten
		}
	}
	sum := sha256.Sum256(body)
	if f.direct != nil && p.url.Scheme == "http" && (p.url.Path == "" || p.url.Path == "/") && r.Header.Get("Upgrade") == "" {
		err := f.forwardDirect(w, r, p, body, sum[:], handshake)
		var before *errBeforeResponse
		if errors.As(err, &before) {
			return before.err // nothing written: the caller may answer
		}
		return err
	}
	var proxyErr error
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(p.url)
			pr.SetXForwarded()
			if body != nil {
				pr.Out.Body = io.NopCloser(bytesReader(body))
				pr.Out.ContentLength = int64(len(body))
				pr.Out.Header.Set("Content-Length", strconv.Itoa(len(body)))
			}
			sign(f.key, pr.Out, r.RemoteAddr, f.self, sum[:], time.Now())
		},
		Transport: f.transport,
		ModifyResponse: func(res *http.Response) error {
			if handshake && res.StatusCode == http.StatusServiceUnavailable {
				return errPeerRefused
			}
			// The owner sets its own CORS and other headers: drop what
			// this node already put on w so none is sent twice.
			for k := range res.Header {
				w.Header().Del(k)
			}
			return nil
		},
		ErrorHandler: func(_ http.ResponseWriter, _ *http.Request, err error) {
			proxyErr = err
		},
		ErrorLog:   f.errLog,
		BufferPool: copyBuffers,
	}
	rp.ServeHTTP(w, r)
	return proxyErr
}

// copyBuffers recycles the buffers the proxy copies response bodies
// through (it would otherwise allocate 32 KiB per request).
var copyBuffers = &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte  { return *p.pool.Get().(*[]byte) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

// writeSessionUnknown answers as engineio does for an unknown session.
func writeSessionUnknown(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	io.WriteString(w, `{"code":1,"message":"Session ID unknown"}`)
}
