package engineio

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server is an Engine.IO server. It is an http.Handler: mount it on its path
// (Config.Path, "/engine.io/" by default) in any router.
type Server struct {
	cfg       Config
	nodeID    string
	onSession func(*Session)
	log       *slog.Logger

	// Resolved configuration, read on hot paths.
	pingInterval   time.Duration
	pingTimeout    time.Duration
	upgradeTimeout time.Duration
	writeTimeout   time.Duration
	maxPayload     int64
	maxBuffered    int64
	path           string

	mu       sync.RWMutex // guards sessions
	sessions map[string]*Session

	flusher *flusher       // writes WebSocket queues (flush.go)
	closing atomic.Bool    // Shutdown has begun: no new sessions
	wg      sync.WaitGroup // every goroutine the server starts
}

// NewServer returns a server that calls onSession for every new session,
// before the client hears of it. onSession must set the session's handlers
// (Session.OnMessage, Session.OnClose) and return promptly.
func NewServer(cfg Config, onSession func(*Session)) (*Server, error) {
	nodeID := cfg.NodeID
	if nodeID == "" {
		nodeID = RandomNodeID()
	} else if err := ValidateNodeID(nodeID); err != nil {
		return nil, err
	}
	for _, t := range cfg.Transports {
		if t != TransportPolling && t != TransportWebSocket {
			return nil, errors.New("engineio: unknown transport " + strconv.Quote(t))
		}
	}
	if onSession == nil {
		onSession = func(*Session) {}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(discardHandler{})
	}
	s := &Server{
		cfg:            cfg,
		nodeID:         nodeID,
		onSession:      onSession,
		log:            log,
		pingInterval:   cfg.pingInterval(),
		pingTimeout:    cfg.pingTimeout(),
		upgradeTimeout: cfg.upgradeTimeout(),
		writeTimeout:   cfg.writeTimeout(),
		maxPayload:     cfg.maxPayload(),
		maxBuffered:    cfg.maxBufferedBytes(),
		path:           cfg.path(),
		sessions:       make(map[string]*Session),
	}
	s.flusher = newFlusher(s)
	return s, nil
}

// NodeID returns the node id this server writes into session ids.
func (srv *Server) NodeID() string { return srv.nodeID }

// Session returns the open session with the given id, or nil.
func (srv *Server) Session(id string) *Session {
	srv.mu.RLock()
	defer srv.mu.RUnlock()
	return srv.sessions[id]
}

// Count returns the number of sessions this server holds.
func (srv *Server) Count() int {
	srv.mu.RLock()
	defer srv.mu.RUnlock()
	return len(srv.sessions)
}

func (srv *Server) remove(s *Session) {
	srv.mu.Lock()
	if srv.sessions[s.id] == s {
		delete(srv.sessions, s.id)
	}
	srv.mu.Unlock()
}

// lingerTimeout is how long a gracefully closed polling session waits for
// the poll that carries its close packet.
func (srv *Server) lingerTimeout() time.Duration {
	return srv.pingInterval + srv.pingTimeout
}

// goTracked runs f on a goroutine that Shutdown waits for.
func (srv *Server) goTracked(f func()) {
	srv.wg.Add(1)
	go func() {
		defer srv.wg.Done()
		f()
	}()
}

// Shutdown stops accepting sessions, closes every session with reason
// ReasonServerShutdown after flushing what is queued, and waits until every
// goroutine of the server has ended or ctx is done.
func (srv *Server) Shutdown(ctx context.Context) error {
	// Set under the lock so a handshake either registers its session
	// before this snapshot or sees closing and gives up.
	srv.mu.Lock()
	srv.closing.Store(true)
	all := make([]*Session, 0, len(srv.sessions))
	for _, s := range srv.sessions {
		all = append(all, s)
	}
	srv.mu.Unlock()
	for _, s := range all {
		s.closeWith(ReasonServerShutdown, true)
	}
	// Sessions lingering for a last poll are dropped now.
	srv.mu.Lock()
	for id, s := range srv.sessions {
		s.mu.Lock()
		if s.lingering != nil {
			s.lingering.Stop()
		}
		s.state = stateClosed
		s.mu.Unlock()
		delete(srv.sessions, id)
	}
	srv.mu.Unlock()
	done := make(chan struct{})
	go func() { srv.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ServeHTTP handles every Engine.IO request: handshakes, polls, posts and
// WebSocket upgrades.
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	srv.serveHTTP(w, r, nil, nil)
}

// serveHTTP is ServeHTTP for a request whose session and query the caller
// may have found already (Serve does, to decide whether to answer it
// directly): known and q, or nil.
func (srv *Server) serveHTTP(w http.ResponseWriter, r *http.Request, known *Session, q *engineQuery) {
	if !strings.HasPrefix(r.URL.Path, srv.path) {
		http.NotFound(w, r)
		return
	}
	if srv.applyCORS(w, r) {
		return // preflight answered
	}
	var parsed engineQuery
	if q == nil {
		parsed = parseEngineQuery(r.URL.RawQuery)
		q = &parsed
	}
	protocol := 4
	if eio := q.eio; eio != "4" {
		if !srv.cfg.AllowEIO3 || (eio != "3" && eio != "") {
			writeRequestError(w, ErrUnsupportedProtocol, "")
			return
		}
		protocol = 3
	}
	transport := q.transport
	if !srv.cfg.allows(transport) {
		writeRequestError(w, ErrTransportUnknown, "")
		return
	}
	isUpgrade := isWebSocketUpgrade(r)
	if transport == TransportWebSocket && !isUpgrade {
		writeRequestError(w, ErrBadRequest, "")
		return
	}
	sid := q.sid
	if sid == "" {
		if r.Method != http.MethodGet {
			writeRequestError(w, ErrBadHandshakeMethod, "")
			return
		}
		if srv.closing.Load() && srv.forwardHandshake(w, r) {
			return // draining: the session opens on another node
		}
		srv.handshake(w, r, transport, protocol, q.b64)
		return
	}
	s := known
	if s == nil {
		s = srv.Session(sid)
	}
	if s != nil && s.expired() {
		s = nil
	}
	if s == nil {
		if dr, ok := w.(*directResponse); ok {
			dr.d.fillHeader() // the request may travel on, headers and all
		}
		if f := srv.cfg.Forwarder; f != nil && f.ForwardSession(w, r, sid) {
			return
		}
		writeRequestError(w, ErrSessionIDUnknown, "")
		return
	}
	if transport == TransportWebSocket {
		srv.upgrade(w, r, s)
		return
	}
	switch r.Method {
	case http.MethodGet:
		s.handlePollGet(w, r)
	case http.MethodPost:
		s.handlePollPost(w, r)
	default:
		writeRequestError(w, ErrBadRequest, "")
	}
}

func isWebSocketUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		headerContainsToken(r.Header, "Connection", "upgrade")
}

// handshake opens a new session on the requested transport.
func (srv *Server) handshake(w http.ResponseWriter, r *http.Request, transport string, protocol int, b64 bool) {
	if srv.closing.Load() {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	if allow := srv.cfg.AllowRequest; allow != nil {
		if err := allow(r); err != nil {
			writeRequestError(w, ErrForbidden, err.Error())
			return
		}
	}
	s := &Session{
		srv:       srv,
		id:        newSessionID(srv.nodeID),
		protocol:  protocol,
		transport: transport,
		b64:       b64,
		// Kept for the session's life: stored compactly (handshake_compact.go).
		header: packHeader(r.Header),
		handshake: Handshake{
			Query:      internQuery(r.URL.RawQuery),
			RemoteAddr: r.RemoteAddr,
			URL:        r.URL.RequestURI(),
			Secure:     r.TLS != nil,
			Time:       time.Now(),
		},
	}
	open := srv.openPacket(s.id, transport)
	var c *wsConn
	var hello []byte
	if transport == TransportWebSocket {
		var err error
		if c, hello, err = acceptWebSocket(w, r); err != nil {
			srv.log.Debug("engineio: websocket handshake failed", "err", err, "remote", r.RemoteAddr)
			return
		}
		// Hold the writer until the application handler has run and the
		// open packet is out: what the handler sends must come after it.
		s.ws = c
		c.writing = true
	}
	srv.mu.Lock()
	if srv.closing.Load() {
		srv.mu.Unlock()
		if c != nil {
			c.writeHello(hello, closeFrame(1001, "server shutting down"), srv.writeTimeout)
			c.conn.Close()
			return
		}
		w.Header().Set("Retry-After", "1")
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	srv.sessions[s.id] = s
	if c != nil {
		// This goroutine becomes the reader (below). Added under srv.mu,
		// where Shutdown sees either the session or nothing.
		srv.wg.Add(1)
		defer srv.wg.Done()
	}
	srv.mu.Unlock()

	srv.onSession(s)
	if c != nil {
		// The 101 response and the open packet leave in one write, before
		// anything the handler queued (the writer is held until now).
		// A failure shows in the reader.
		c.writeHello(hello, open.webSocketFrame(protocol), srv.writeTimeout)
	}

	s.mu.Lock()
	if s.state == stateOpen {
		s.startHeartbeatLocked()
	}
	if c != nil {
		c.writing = false
		if len(s.queue) > 0 || c.closing {
			c.startWriterLocked(s)
		}
	}
	s.mu.Unlock()

	if c != nil {
		// Read on this goroutine, whose stack has already grown through
		// net/http and the application's handler: starting another would
		// cost a goroutine and its stack growth per connection. The reader
		// returns when the connection parks idle (netpoll_linux.go).
		c.readLoop(s, false)
		return
	}
	if srv.cfg.Cookie != nil {
		http.SetCookie(w, srv.cookie(s.id))
	}
	s.writePoll(w, []*Message{open})
}

// upgrade handles a WebSocket request for an existing session: an upgrade
// probe, unless the session cannot upgrade, in which case the connection is
// accepted and closed at once as in the reference server.
func (srv *Server) upgrade(w http.ResponseWriter, r *http.Request, s *Session) {
	c, hello, err := acceptWebSocket(w, r)
	if err != nil {
		return
	}
	if err := c.writeHello(hello, nil, srv.writeTimeout); err != nil {
		c.conn.Close()
		return
	}
	s.mu.Lock()
	ok := s.state == stateOpen && s.transport == TransportPolling && s.probe == nil &&
		!srv.cfg.DisableUpgrades
	if ok {
		s.probe = c
	}
	s.mu.Unlock()
	if !ok {
		c.writeDirect(closeFrame(1000, ""), srv.writeTimeout)
		c.conn.Close()
		return
	}
	srv.goTracked(func() { c.readLoop(s, true) })
}

// openPacket builds the handshake packet: 0{"sid":..,"upgrades":..,...}.
func (srv *Server) openPacket(sid, transport string) *Message {
	// Built by hand: it is on every handshake, and json.Marshal of a struct
	// cost more than the rest of the packet's work. A session id is
	// URL-safe (sid.go): it needs no escaping.
	data := make([]byte, 0, 128)
	data = append(data, `{"sid":"`...)
	data = append(data, sid...)
	data = append(data, `","upgrades":[`...)
	if transport == TransportPolling && !srv.cfg.DisableUpgrades && srv.cfg.allows(TransportWebSocket) {
		data = append(data, `"websocket"`...)
	}
	data = append(data, `],"pingInterval":`...)
	data = strconv.AppendInt(data, srv.pingInterval.Milliseconds(), 10)
	data = append(data, `,"pingTimeout":`...)
	data = strconv.AppendInt(data, srv.pingTimeout.Milliseconds(), 10)
	data = append(data, `,"maxPayload":`...)
	data = strconv.AppendInt(data, srv.maxPayload, 10)
	data = append(data, '}')
	return controlMessage(packetOpen, data)
}

func (srv *Server) cookie(sid string) *http.Cookie {
	c := srv.cfg.Cookie
	ck := &http.Cookie{
		Name:     c.Name,
		Value:    sid,
		Path:     c.Path,
		Domain:   c.Domain,
		Secure:   c.Secure,
		HttpOnly: !c.AllowScripts,
		SameSite: c.SameSite,
		MaxAge:   c.MaxAge,
	}
	if ck.Name == "" {
		ck.Name = "io"
	}
	if ck.Path == "" {
		ck.Path = "/"
	}
	if ck.SameSite == 0 {
		ck.SameSite = http.SameSiteLaxMode
	}
	return ck
}

// applyCORS sets the cross-origin headers and answers preflights. It
// returns true when the request has been answered.
func (srv *Server) applyCORS(w http.ResponseWriter, r *http.Request) bool {
	cors := &srv.cfg.CORS
	if len(cors.AllowedOrigins) == 0 {
		return false
	}
	origin := r.Header.Get("Origin")
	h := w.Header()
	allowed := ""
	for _, o := range cors.AllowedOrigins {
		switch {
		case o == "*" && !cors.AllowCredentials:
			allowed = "*"
		case o == "*" && origin != "":
			allowed = origin
		case o == origin && origin != "":
			allowed = origin
		}
		if allowed != "" {
			break
		}
	}
	if allowed != "" {
		h.Set("Access-Control-Allow-Origin", allowed)
		if allowed != "*" {
			h.Add("Vary", "Origin")
		}
		if cors.AllowCredentials {
			h.Set("Access-Control-Allow-Credentials", "true")
		}
	}
	if r.Method != http.MethodOptions {
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET,HEAD,PUT,PATCH,POST,DELETE")
	if len(cors.AllowedHeaders) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(cors.AllowedHeaders, ","))
	} else if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
		h.Add("Vary", "Access-Control-Request-Headers")
	}
	if cors.MaxAge > 0 {
		h.Set("Access-Control-Max-Age", strconv.Itoa(int(cors.MaxAge.Seconds())))
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return true
}

// discardHandler is a slog.Handler that drops everything (nil Logger).
type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }
