// Package cliflags declares the server flags shared by `herald serve` and
// interop/testserver, with HERALD_* environment variables as defaults. Only
// main packages may import it: libraries never read flags (see deps_test.go).
package cliflags

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/herald-rt/herald/cluster"
	"github.com/herald-rt/herald/engineio"
)

// IdleTimeout is the http.Server IdleTimeout of the servers: how long a
// kept-alive HTTP connection may wait for its next request (Serve applies
// it too). It is what closes the idle connections of clients that vanished
// without a word, since engineio.Listen turns TCP keep-alive probes off. A
// polling client sends its pong every ping interval (25 s by default), so
// its connections stay open; nginx's default is the same 75 s.
const IdleTimeout = 75 * time.Second

// Server holds the parsed server flags.
type Server struct {
	Addr          string
	Redis         string
	Adapter       string
	NodeID        string
	ClusterSecret string
	PingInterval  time.Duration
	PingTimeout   time.Duration
	MaxPayload    int64
	CORSOrigin    string
	Cookie        bool
	EIO3          bool
	Recovery      time.Duration
	LogLevel      string
	ShardedMode   string
	Peers         string        // static peer list, id=URL,...
	AdvertiseURL  string        // how other nodes reach this one
	DrainDelay    time.Duration // between "draining" and closing sessions
	NetHTTP       bool          // serve every request through net/http (no direct path)
}

// Defaults are the values a flag takes when neither it nor its environment
// variable is set.
type Defaults struct {
	Addr         string
	PingInterval time.Duration
	PingTimeout  time.Duration
	MaxPayload   int64
	// DrainDelay is how long a node reports draining before it closes its
	// sessions on SIGTERM. herald serve uses 2s so balancers notice; the
	// testserver 0 so tests that stop it are not slowed down.
	DrainDelay time.Duration
}

// Register declares the server flags on fs. Each flag's default comes from
// the environment variable HERALD_<NAME> (dashes become underscores) when it
// is set, else from def.
func Register(fs *flag.FlagSet, def Defaults) *Server {
	s := &Server{}
	fs.StringVar(&s.Addr, "addr", env("addr", def.Addr), "`address` to listen on, host:port (env HERALD_ADDR)")
	fs.StringVar(&s.Redis, "redis", env("redis", ""), "Redis `URL` for the cluster adapter, e.g. redis://127.0.0.1:6379/0 (env HERALD_REDIS)")
	fs.StringVar(&s.Adapter, "adapter", env("adapter", "memory"), "cluster adapter: memory, redis or redis-sharded (env HERALD_ADAPTER)")
	fs.StringVar(&s.NodeID, "node-id", env("node-id", ""), "this node's `id` (letters and digits, written into session ids); random if empty (env HERALD_NODE_ID)")
	fs.StringVar(&s.ClusterSecret, "cluster-secret", env("cluster-secret", ""), "shared `secret` that authenticates requests forwarded between nodes (env HERALD_CLUSTER_SECRET)")
	fs.DurationVar(&s.PingInterval, "ping-interval", envDuration("ping-interval", def.PingInterval), "how often the server pings each client (env HERALD_PING_INTERVAL)")
	fs.DurationVar(&s.PingTimeout, "ping-timeout", envDuration("ping-timeout", def.PingTimeout), "how long a client has to answer a ping (env HERALD_PING_TIMEOUT)")
	fs.Int64Var(&s.MaxPayload, "max-payload", envInt("max-payload", def.MaxPayload), "largest message or polling request body a client may send, in `bytes` (env HERALD_MAX_PAYLOAD)")
	fs.StringVar(&s.CORSOrigin, "cors-origin", env("cors-origin", ""), "allowed cross-origin `origins`, comma separated, or * (env HERALD_CORS_ORIGIN)")
	fs.BoolVar(&s.Cookie, "cookie", envBool("cookie", false), "set the io cookie on polling handshakes, for cookie-based sticky balancers (env HERALD_COOKIE)")
	fs.BoolVar(&s.EIO3, "eio3", envBool("eio3", false), "also accept Engine.IO v3 clients (socket.io-client 2.x) (env HERALD_EIO3)")
	fs.DurationVar(&s.Recovery, "recovery", envDuration("recovery", 0), "enable connection-state recovery for disconnections up to this `duration`, e.g. 2m; 0 disables (env HERALD_RECOVERY)")
	fs.StringVar(&s.ShardedMode, "sharded-mode", env("sharded-mode", "dynamic"), "subscriptions of --adapter redis-sharded: dynamic, static or dynamic-private (env HERALD_SHARDED_MODE)")
	fs.StringVar(&s.Peers, "peers", env("peers", ""), "static list of the other nodes for forwarding without Redis, `id=http://host:port,...` (env HERALD_PEERS)")
	fs.StringVar(&s.AdvertiseURL, "advertise-url", env("advertise-url", ""), "`URL` other nodes reach this one on; default http://<listen address>, 127.0.0.1 for an unspecified host (env HERALD_ADVERTISE_URL)")
	fs.DurationVar(&s.DrainDelay, "drain-delay", envDuration("drain-delay", def.DrainDelay), "on SIGTERM, how long /health reports draining before clients are told to reconnect elsewhere (env HERALD_DRAIN_DELAY)")
	fs.BoolVar(&s.NetHTTP, "net-http", envBool("net-http", false), "serve every request through net/http, including Engine.IO's own, which are otherwise answered directly on the connection (engineio.Server.Serve) (env HERALD_NET_HTTP)")
	fs.StringVar(&s.LogLevel, "log-level", env("log-level", "info"), "log level: debug, info, warn, error (env HERALD_LOG_LEVEL)")
	return s
}

// CORSOrigins splits the --cors-origin value.
func (s *Server) CORSOrigins() []string {
	var out []string
	for _, o := range strings.Split(s.CORSOrigin, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// Validate checks values that flag parsing cannot.
func (s *Server) Validate() error {
	switch s.Adapter {
	case "memory", "redis", "redis-sharded":
	default:
		return fmt.Errorf("--adapter %q: want memory, redis or redis-sharded", s.Adapter)
	}
	if s.Adapter != "memory" && s.Redis == "" {
		return fmt.Errorf("--adapter %s needs --redis URL", s.Adapter)
	}
	switch s.ShardedMode {
	case "dynamic", "static", "dynamic-private":
	default:
		return fmt.Errorf("--sharded-mode %q: want dynamic, static or dynamic-private", s.ShardedMode)
	}
	if s.PingInterval <= 0 || s.PingTimeout <= 0 {
		return fmt.Errorf("--ping-interval and --ping-timeout must be positive")
	}
	if s.MaxPayload <= 0 {
		return fmt.Errorf("--max-payload must be positive")
	}
	if s.NodeID != "" {
		if err := engineio.ValidateNodeID(s.NodeID); err != nil {
			return fmt.Errorf("--node-id: %w", err)
		}
	}
	if _, err := cluster.ParsePeers(s.Peers); err != nil {
		return fmt.Errorf("--peers: %w", err)
	}
	if s.DrainDelay < 0 {
		return fmt.Errorf("--drain-delay must not be negative")
	}
	return nil
}

func envName(flagName string) string {
	return "HERALD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(envName(name)); ok {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, ok := os.LookupEnv(envName(name)); ok {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
		fmt.Fprintf(os.Stderr, "ignoring %s=%q: not a duration\n", envName(name), v)
	}
	return def
}

func envInt(name string, def int64) int64 {
	if v, ok := os.LookupEnv(envName(name)); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
		fmt.Fprintf(os.Stderr, "ignoring %s=%q: not an integer\n", envName(name), v)
	}
	return def
}

func envBool(name string, def bool) bool {
	if v, ok := os.LookupEnv(envName(name)); ok {
		if b, err := strconv.ParseBool(v); err == nil {
			return b
		}
		fmt.Fprintf(os.Stderr, "ignoring %s=%q: not a boolean\n", envName(name), v)
	}
	return def
}
