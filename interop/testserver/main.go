// Command testserver is the server every interop test and benchmark drives.
// It takes the flags of `herald serve` plus --mode:
//
//	--mode eio  a bare Engine.IO server on /engine.io/ that echoes every message
//	--mode sio  the Socket.IO test application on /socket.io/ (see DESIGN.md)
//
// Defaults match the official conformance suites: --addr :3000, ping
// interval 300ms, ping timeout 200ms, max payload 1000000.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/herald-rt/herald/engineio"
	"github.com/herald-rt/herald/internal/cliflags"
)

func main() {
	fs := flag.NewFlagSet("testserver", flag.ExitOnError)
	mode := fs.String("mode", "sio", "eio: Engine.IO echo server on /engine.io/; sio: Socket.IO test app on /socket.io/")
	opts := cliflags.Register(fs, cliflags.Defaults{
		Addr:         ":3000",
		PingInterval: 300 * time.Millisecond,
		PingTimeout:  200 * time.Millisecond,
		MaxPayload:   1_000_000,
	})
	fs.Parse(os.Args[1:])
	if err := opts.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "testserver:", err)
		os.Exit(2)
	}
	if err := run(*mode, opts); err != nil {
		fmt.Fprintln(os.Stderr, "testserver:", err)
		os.Exit(1)
	}
}

func run(mode string, opts *cliflags.Server) error {
	var level slog.Level
	level.UnmarshalText([]byte(opts.LogLevel))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
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

	var (
		handler  http.Handler
		eio      *engineio.Server
		shutdown func(context.Context) error
	)
	switch mode {
	case "eio":
		srv, err := newEchoServer(node)
		if err != nil {
			return err
		}
		handler, eio, shutdown = srv, srv, srv.Shutdown
	case "sio":
		factory, closeAdapter, err := opts.BuildAdapter(ctx, log)
		if err != nil {
			return err
		}
		defer closeAdapter()
		srv, err := newSocketIOServer(opts, node, log, factory)
		if err != nil {
			return err
		}
		handler, eio, shutdown = srv, srv.Engine(), srv.Shutdown
	default:
		return fmt.Errorf("unknown --mode %q: want eio or sio", mode)
	}

	log.Info("testserver listening", "addr", ln.Addr().String(), "mode", mode, "node", eio.NodeID(),
		"advertise", node.AdvertiseURL(), "forwarding", node.Forwarder != nil)
	httpSrv := &http.Server{Handler: node.Handler(eio, handler), IdleTimeout: cliflags.IdleTimeout}
	errc := make(chan error, 1)
	go func() { errc <- node.Serve(eio, ln, httpSrv) }()
	node.Start(eio)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// SIGTERM drains (see cliflags.Node.Drain), then the server stops. The
	// wait for clients to fetch their close packet is short so the whole
	// stop stays within the 5 s the interop harness grants.
	dctx, dcancel := context.WithTimeout(context.Background(), opts.DrainDelay+1500*time.Millisecond)
	node.Drain(dctx)
	dcancel()
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	shutdown(sctx)
	if err := httpSrv.Shutdown(sctx); err != nil {
		httpSrv.Close()
	}
	return nil
}

// newEchoServer is --mode eio: every message goes straight back.
func newEchoServer(node *cliflags.Node) (*engineio.Server, error) {
	return engineio.NewServer(node.EngineConfig("/engine.io/"), func(s *engineio.Session) {
		s.OnMessage(func(data []byte, binary bool) {
			s.Send(engineio.NewMessage(data, binary))
		})
	})
}
