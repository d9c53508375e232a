package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/herald-rt/herald"
	"github.com/herald-rt/herald/engineio"
	"github.com/herald-rt/herald/internal/cliflags"
)

//go:embed demo.html
var demoPage []byte

//go:embed herald-client.js
var staticFiles embed.FS

func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herald serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts := cliflags.Register(fs, cliflags.Defaults{
		Addr:         ":3000",
		PingInterval: 25 * time.Second,
		PingTimeout:  20 * time.Second,
		MaxPayload:   1_000_000,
		DrainDelay:   2 * time.Second,
	})
	shutdownTimeout := fs.Duration("shutdown-timeout", 10*time.Second, "how long to wait for clients to be told and connections to drain on SIGINT/SIGTERM")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: herald serve [flags]\n\nRuns a Herald node: Socket.IO on /socket.io/, a demo chat on /, health on /health.\nOn SIGTERM it drains: no new sessions, /health says draining, then clients are told to reconnect elsewhere.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := opts.Validate(); err != nil {
		fmt.Fprintln(stderr, "herald serve:", err)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(opts.LogLevel)); err != nil {
		fmt.Fprintln(stderr, "herald serve: --log-level:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runServer(ctx, opts, *shutdownTimeout, log); err != nil {
		log.Error("herald serve failed", "err", err)
		return 1
	}
	return 0
}

// runServer serves until ctx is cancelled, then drains and shuts down.
func runServer(ctx context.Context, opts *cliflags.Server, shutdownTimeout time.Duration, log *slog.Logger) error {
	ln, err := engineio.Listen(ctx, "tcp", opts.Addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	node, err := opts.NewNode(ctx, ln.Addr(), log)
	if err != nil {
		return err
	}
	defer node.Close()
	factory, closeAdapter, err := opts.BuildAdapter(ctx, log)
	if err != nil {
		return err
	}
	defer closeAdapter()
	srv, err := herald.NewServer(herald.Config{
		Engine:   node.EngineConfig(""),
		Adapter:  factory,
		Recovery: herald.RecoveryConfig{MaxDisconnection: opts.Recovery},
		Logger:   log,
	})
	if err != nil {
		return err
	}
	setupChat(srv)
	eio := srv.Engine()

	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	mux.Handle("/herald-client.js", http.FileServerFS(staticFiles))
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(demoPage)
	})

	httpSrv := &http.Server{Handler: node.Handler(eio, mux), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: cliflags.IdleTimeout}
	log.Info("herald listening", "addr", ln.Addr().String(), "node", eio.NodeID(),
		"advertise", node.AdvertiseURL(), "forwarding", node.Forwarder != nil,
		"demo", "http://"+displayAddr(ln.Addr())+"/")
	errc := make(chan error, 1)
	go func() { errc <- node.Serve(eio, ln, httpSrv) }()
	node.Start(eio)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("herald draining")
	sctx, cancel := context.WithTimeout(context.Background(), opts.DrainDelay+shutdownTimeout)
	defer cancel()
	drainErr := node.Drain(sctx)
	eioErr := srv.Shutdown(sctx)
	httpErr := httpSrv.Shutdown(sctx)
	if httpErr != nil {
		httpSrv.Close() // cut what is still open (forwarded long polls)
	}
	log.Info("herald stopped")
	return errors.Join(drainErr, eioErr, httpErr)
}

func displayAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		if ok {
			return fmt.Sprintf("localhost:%d", tcp.Port)
		}
	}
	return a.String()
}
