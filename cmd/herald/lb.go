package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/herald-rt/herald/adapter/redis"
	"github.com/herald-rt/herald/balancer"
	"github.com/herald-rt/herald/cluster"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// lb is `herald lb`: the stateless sticky balancer (package balancer).
func lb(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herald lb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var backends stringList
	listen := fs.String("listen", envOr("HERALD_LB_LISTEN", ":8080"), "`address` to listen on (env HERALD_LB_LISTEN)")
	fs.Var(&backends, "backend", "base `URL` of a Herald node, e.g. http://10.0.0.5:3000 (repeatable, or comma-separated)")
	redisURL := fs.String("redis", os.Getenv("HERALD_REDIS"), "discover the nodes from the node registry in this Redis `URL` (env HERALD_REDIS)")
	prefix := fs.String("registry-prefix", cluster.DefaultPrefix, "key prefix of the node registry")
	healthInterval := fs.Duration("health-interval", 2*time.Second, "how often every node's /health is checked")
	healthTimeout := fs.Duration("health-timeout", 3*time.Second, "how long one health check may take")
	failAfter := fs.Int("fail-after", 2, "failed health checks in a row that remove a node")
	discoveryInterval := fs.Duration("discovery-interval", 5*time.Second, "how often the registry is read (with --redis)")
	shutdownTimeout := fs.Duration("shutdown-timeout", 10*time.Second, "how long to let requests in flight finish on SIGINT/SIGTERM")
	trustForwarded := fs.Bool("trust-forwarded", false, "keep the X-Forwarded-For of incoming requests (only behind a proxy that sets it)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: herald lb --listen ADDR --backend URL [--backend URL ...] [--redis URL]

Runs the sticky load balancer in front of Herald nodes. It keeps no table of
sessions: a request with a sid goes to the node named in the sid, a new session
to the healthy node with the fewest sessions. Every node's GET /health is
checked at --health-interval; a draining node gets no new sessions but keeps
its own. WebSocket connections pass through. The balancer's own endpoints are
/lb/health and /lb/metrics (Prometheus text format). See docs/balancer.md.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "herald lb: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if len(backends) == 0 && *redisURL == "" {
		fmt.Fprintln(stderr, "herald lb: give at least one --backend URL, or --redis URL to discover the nodes")
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintln(stderr, "herald lb: --log-level:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg := balancer.Config{
		Backends:          backends,
		HealthInterval:    *healthInterval,
		HealthTimeout:     *healthTimeout,
		FailAfter:         *failAfter,
		DiscoveryInterval: *discoveryInterval,
		TrustForwarded:    *trustForwarded,
		Logger:            log,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *redisURL != "" {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		clients, err := redis.Dial(dctx, *redisURL)
		cancel()
		if err != nil {
			fmt.Fprintln(stderr, "herald lb: --redis:", err)
			return 1
		}
		defer clients.Close()
		cfg.Discovery = registryDiscovery{reg: cluster.NewRegistry(clients.Pub, *prefix), log: log}
	}
	b, err := balancer.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "herald lb:", err)
		return 2
	}
	if err := runBalancer(ctx, b, *listen, *shutdownTimeout, log); err != nil {
		log.Error("herald lb failed", "err", err)
		return 1
	}
	return 0
}

// runBalancer serves b on addr until ctx ends, then shuts down.
func runBalancer(ctx context.Context, b *balancer.Balancer, addr string, shutdownTimeout time.Duration, log *slog.Logger) error {
	if err := b.Start(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		b.Close(context.Background())
		return err
	}
	httpSrv := &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	log.Info("herald lb listening", "addr", ln.Addr().String(), "backends", len(b.Status()))
	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		log.Info("herald lb shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		// Long-polls end within a ping interval; WebSocket connections are
		// hijacked and end with the process.
		err = httpSrv.Shutdown(sctx)
		if errors.Is(err, context.DeadlineExceeded) {
			err = nil
		}
		<-errc
	}
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(err, b.Close(cctx))
}

// registryDiscovery lists the nodes of the Redis node registry as backends.
type registryDiscovery struct {
	reg *cluster.Registry
	log *slog.Logger
}

func (d registryDiscovery) Backends(ctx context.Context) ([]string, error) {
	nodes, err := d.reg.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	var urls []string
	for _, n := range nodes {
		addr := n.URL // --advertise-url, or derived from the listen address
		if addr == "" {
			addr = n.Addr
		}
		u, ok := nodeURL(addr)
		if !ok {
			d.log.Warn("herald lb: registry entry has no reachable address; start the node with --advertise-url", "node", n.ID, "addr", addr)
			continue
		}
		urls = append(urls, u)
	}
	return urls, nil
}

// nodeURL turns a registry address ("10.0.0.5:3000", or a URL) into a base
// URL. A wildcard listen address (":3000", "[::]:3000") names no host the
// balancer could reach.
func nodeURL(addr string) (string, bool) {
	if strings.Contains(addr, "://") {
		return strings.TrimSuffix(addr, "/"), true
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return "", false
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		return "", false
	}
	return "http://" + net.JoinHostPort(host, port), true
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
