package engineio

import (
	"log/slog"
	"net/http"
	"time"
)

// Transport names as they appear in the `transport` query parameter.
const (
	TransportPolling   = "polling"
	TransportWebSocket = "websocket"
)

// Config configures a Server. The zero value is valid: it serves Engine.IO v4
// on /engine.io/ with the reference server's defaults. A Config must not be
// modified after it has been passed to NewServer.
type Config struct {
	// Path is the URL path prefix the server answers on, with a trailing
	// slash. If empty, "/engine.io/" is used.
	Path string `json:"path,omitempty"`

	// PingInterval is how often the server pings a v4 client. If zero,
	// 25s is used.
	PingInterval time.Duration `json:"pingInterval,omitempty"`
	// PingTimeout is how long a v4 client has to answer a ping before the
	// session closes with reason "ping timeout". If zero, 20s is used.
	PingTimeout time.Duration `json:"pingTimeout,omitempty"`
	// UpgradeTimeout bounds a polling→WebSocket upgrade: a probe that has
	// not completed in time is closed and the session stays on polling.
	// If zero, 10s is used.
	UpgradeTimeout time.Duration `json:"upgradeTimeout,omitempty"`
	// WriteTimeout bounds one write to a client connection. A client that
	// cannot take a write in time is disconnected. If zero, 10s is used.
	WriteTimeout time.Duration `json:"writeTimeout,omitempty"`

	// MaxPayload is the largest message or polling request body, in bytes,
	// the server accepts (maxHttpBufferSize in the reference server). It is
	// advertised to clients as maxPayload. A larger polling POST gets HTTP
	// 413; a larger WebSocket message closes the connection with 1009.
	// If zero, 1,000,000 is used.
	MaxPayload int64 `json:"maxPayload,omitempty"`

	// MaxBufferedBytes bounds the bytes queued for one session and not yet
	// written. A client that falls further behind is disconnected with
	// reason ReasonSlowClient rather than allowed to grow memory. If zero,
	// 8 MiB is used; if negative, the queue is unbounded.
	MaxBufferedBytes int64 `json:"maxBufferedBytes,omitempty"`

	// Transports lists the transports clients may use: TransportPolling
	// and/or TransportWebSocket. If empty, both are allowed.
	Transports []string `json:"transports,omitempty"`
	// DisableUpgrades stops polling sessions from upgrading to WebSocket
	// (allowUpgrades:false in the reference server).
	DisableUpgrades bool `json:"disableUpgrades,omitempty"`

	// AllowEIO3 accepts Engine.IO protocol v3 clients (socket.io-client 2.x).
	AllowEIO3 bool `json:"allowEIO3,omitempty"`

	// CORS sets the cross-origin headers. The zero value sends none, as
	// the reference server does by default.
	CORS CORSConfig `json:"cors,omitempty"`

	// Cookie, when non-nil, makes the polling handshake set a cookie whose
	// value is the session id, for cookie-based sticky load balancing.
	Cookie *CookieConfig `json:"cookie,omitempty"`

	// NodeID names this server in session ids (see SessionNodeID) so any node
	// or balancer can tell which node owns a session. It must be 1 to 32
	// characters of [A-Za-z0-9]. If empty, a random 8-character id is used.
	NodeID string `json:"nodeID,omitempty"`

	// AllowRequest, if set, is called for every handshake. A non-nil error
	// rejects it with HTTP 403 and code 4 (Forbidden); the error text
	// becomes the message.
	AllowRequest func(r *http.Request) error `json:"-"`

	// Forwarder, if set, is asked to handle requests naming a session this
	// server does not hold (see SessionForwarder). If nil, or if it declines,
	// such requests get HTTP 400 "Session ID unknown". If it also
	// implements HandshakeForwarder, a draining server (see Server.Drain)
	// passes new handshakes to it instead of answering 503.
	Forwarder SessionForwarder `json:"-"`

	// Logger receives diagnostics. If nil, nothing is logged.
	Logger *slog.Logger `json:"-"`
}

// CORSConfig sets the cross-origin resource sharing headers.
type CORSConfig struct {
	// AllowedOrigins lists the origins that may call the server. "*"
	// allows any origin. If empty, no CORS headers are sent.
	AllowedOrigins []string `json:"allowedOrigins,omitempty"`
	// AllowCredentials sends Access-Control-Allow-Credentials: true, which
	// browsers need for cookies (withCredentials). With "*" the request's
	// origin is echoed, since browsers refuse "*" with credentials.
	AllowCredentials bool `json:"allowCredentials,omitempty"`
	// AllowedHeaders lists the request headers allowed in preflights. If
	// empty, the headers the preflight asks for are allowed.
	AllowedHeaders []string `json:"allowedHeaders,omitempty"`
	// MaxAge is how long browsers may cache a preflight answer. If zero,
	// no Access-Control-Max-Age header is sent.
	MaxAge time.Duration `json:"maxAge,omitempty"`
}

// CookieConfig describes the session cookie set on polling handshakes.
type CookieConfig struct {
	// Name is the cookie name. If empty, "io" is used.
	Name string `json:"name,omitempty"`
	// Path is the cookie path. If empty, "/" is used.
	Path string `json:"path,omitempty"`
	// Domain is the cookie domain. If empty, none is set.
	Domain string `json:"domain,omitempty"`
	// Secure marks the cookie Secure.
	Secure bool `json:"secure,omitempty"`
	// AllowScripts drops the HttpOnly attribute, which is set by default.
	AllowScripts bool `json:"allowScripts,omitempty"`
	// SameSite is the SameSite attribute. If zero, Lax is used.
	SameSite http.SameSite `json:"sameSite,omitempty"`
	// MaxAge in seconds; zero sets none (a session cookie).
	MaxAge int `json:"maxAge,omitempty"`
}

func (c *Config) path() string {
	if c.Path == "" {
		return "/engine.io/"
	}
	return c.Path
}

func (c *Config) pingInterval() time.Duration {
	return durationDefault(c.PingInterval, 25*time.Second)
}

func (c *Config) pingTimeout() time.Duration {
	return durationDefault(c.PingTimeout, 20*time.Second)
}

func (c *Config) upgradeTimeout() time.Duration {
	return durationDefault(c.UpgradeTimeout, 10*time.Second)
}

func (c *Config) writeTimeout() time.Duration {
	return durationDefault(c.WriteTimeout, 10*time.Second)
}

func (c *Config) maxPayload() int64 {
	if c.MaxPayload <= 0 {
		return 1_000_000
	}
	return c.MaxPayload
}

func (c *Config) maxBufferedBytes() int64 {
	switch {
	case c.MaxBufferedBytes == 0:
		return 8 << 20
	case c.MaxBufferedBytes < 0:
		return -1
	}
	return c.MaxBufferedBytes
}

func (c *Config) allows(transport string) bool {
	if len(c.Transports) == 0 {
		return transport == TransportPolling || transport == TransportWebSocket
	}
	for _, t := range c.Transports {
		if t == transport {
			return true
		}
	}
	return false
}

func durationDefault(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}
