// Command profserver is the Socket.IO server of the benchmarks with a CPU
// profiler attached: the events the load generator uses (message,
// message-with-ack, join, broadcast) behave as in interop/testserver --mode
// sio, and signals start and stop a CPU profile, so `bench/suite -profile DIR`
// can profile Herald during exactly one measurement window.
//
//	profserver --addr 127.0.0.1:3000 --ping-interval 25s --ping-timeout 20s \
//	    -profile-dir /tmp/prof
//
// SIGUSR1 starts a CPU profile into <profile-dir>/cpu-<pid>-<n>.pprof (n
// counts from 1), SIGUSR2 stops it. It takes the flags of `herald serve`
// (internal/cliflags), so --adapter/--redis work as in the testserver.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/herald-rt/herald"
	"github.com/herald-rt/herald/engineio"
	"github.com/herald-rt/herald/internal/cliflags"
	"github.com/herald-rt/herald/parser"
)

func main() {
	fs := flag.NewFlagSet("profserver", flag.ExitOnError)
	profileDir := fs.String("profile-dir", os.TempDir(), "directory for the CPU profiles (SIGUSR1 starts one, SIGUSR2 stops it)")
	opts := cliflags.Register(fs, cliflags.Defaults{
		Addr:         "127.0.0.1:3000",
		PingInterval: 25 * time.Second,
		PingTimeout:  20 * time.Second,
		MaxPayload:   1_000_000,
	})
	fs.Parse(os.Args[1:])
	if err := opts.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "profserver:", err)
		os.Exit(2)
	}
	if err := run(opts, *profileDir); err != nil {
		fmt.Fprintln(os.Stderr, "profserver:", err)
		os.Exit(1)
	}
}

func run(opts *cliflags.Server, profileDir string) error {
	var level slog.Level
	level.UnmarshalText([]byte(opts.LogLevel))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	factory, closeAdapter, err := opts.BuildAdapter(context.Background(), log)
	if err != nil {
		return err
	}
	defer closeAdapter()
	srv, err := herald.NewServer(herald.Config{Engine: opts.EngineConfig("/socket.io/", log), Adapter: factory, Logger: log})
	if err != nil {
		return err
	}
	setupNamespace(srv.Of("/"))

	ln, err := engineio.Listen(context.Background(), "tcp", opts.Addr)
	if err != nil {
		return err
	}
	httpSrv := &http.Server{Handler: srv, IdleTimeout: cliflags.IdleTimeout}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	profDone := make(chan struct{})
	go func() {
		defer close(profDone)
		profileOnSignals(ctx, profileDir, log)
	}()
	errc := make(chan error, 1)
	go func() {
		if opts.NetHTTP {
			errc <- httpSrv.Serve(ln)
			return
		}
		errc <- srv.Serve(ln, engineio.ServeOptions{HTTP: httpSrv})
	}()
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	stop()
	<-profDone
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	if herr := httpSrv.Shutdown(sctx); err == nil || errors.Is(err, http.ErrServerClosed) {
		err = herr
	}
	return err
}

// profileOnSignals runs CPU profiles between SIGUSR1 and SIGUSR2 until ctx
// ends. A profile is written under a ".part" name and renamed when complete,
// so the harness can wait for the final name.
func profileOnSignals(ctx context.Context, dir string, log *slog.Logger) {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sig)
	var (
		f    *os.File
		name string
		n    int
	)
	stopProfile := func() {
		if f == nil {
			return
		}
		pprof.StopCPUProfile()
		f.Close()
		os.Rename(name+".part", name)
		f = nil
	}
	defer stopProfile()
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-sig:
			stopProfile()
			if s == syscall.SIGUSR2 {
				continue
			}
			n++
			name = filepath.Join(dir, fmt.Sprintf("cpu-%d-%d.pprof", os.Getpid(), n))
			part, err := os.Create(name + ".part")
			if err != nil {
				log.Error("profile", "err", err)
				continue
			}
			if err := pprof.StartCPUProfile(part); err != nil {
				log.Error("profile", "err", err)
				part.Close()
				continue
			}
			f = part
		}
	}
}

// rooms accepts a room name or a list of names.
type rooms []string

func (r *rooms) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*r = rooms{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*r = many
	return nil
}

// setupNamespace registers the testserver's handlers that the load generator uses.
func setupNamespace(nsp *herald.Namespace) {
	nsp.OnConnection(func(s *herald.Socket) {
		s.On("message", func(e *herald.Event) {
			s.Emit("message-back", e.Args.Values()...)
		})
		s.On("message-with-ack", func(e *herald.Event) {
			e.Ack(e.Args.Values()...)
		})
		s.On("join", func(e *herald.Event) {
			var room string
			e.Bind(&room)
			s.Join(room)
			e.Ack(true)
		})
		s.On("broadcast", func(e *herald.Event) {
			var req struct {
				To     rooms             `json:"to"`
				Except rooms             `json:"except"`
				Event  string            `json:"event"`
				Args   []json.RawMessage `json:"args"`
			}
			if err := e.Bind(&req); err != nil {
				e.Ack(map[string]any{"err": err.Error()})
				return
			}
			args := make([]any, len(req.Args))
			for i, a := range req.Args {
				args[i] = parser.Arg{JSON: a}
			}
			nsp.To(req.To...).Except(req.Except...).Emit(req.Event, args...)
			e.Ack(true)
		})
	})
}
