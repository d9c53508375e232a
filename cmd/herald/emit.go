package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/herald-rt/herald/adapter/redis"
	"github.com/herald-rt/herald/emitter"
)

const emitUsage = `Usage:
  herald emit --redis URL [flags] EVENT [ARG...]                 emit EVENT to clients
  herald emit --redis URL [flags] --server-side EVENT [ARG...]   emit EVENT to the servers
  herald emit --redis URL [--to ROOM]... [--except ROOM]... --join ROOM
  herald emit --redis URL [--to ROOM]... [--except ROOM]... --leave ROOM
  herald emit --redis URL [--to ROOM]... [--except ROOM]... --disconnect [--close]

Publishes to a Socket.IO cluster through Redis, from outside the cluster:
Herald nodes and Node.js socket.io nodes whose adapter is the Redis adapter
(--adapter redis, the default; the same bytes as @socket.io/redis-emitter)
or the sharded Redis adapter (--adapter redis-sharded) receive it. It
returns once Redis has taken the message; it does not wait for clients and
cannot receive acknowledgements.

Targets: the sockets in any --to room (every socket of the namespace when
there is no --to), minus those in any --except room. A socket id is a room
too. --join, --leave and --disconnect act on the targets; --server-side
reaches the namespace on every node (Herald: OnServerSideEmit handlers;
Node.js: io.of(nsp).on(EVENT) listeners) and takes no targets.

Arguments: each ARG is parsed as JSON (42, true, null, '"42"', '{"a":1}',
'[1,2]'); an ARG that is not valid JSON is sent as a string, so hello sends
"hello". Flags go before EVENT; put -- before EVENT to send an argument that
looks like a flag.

Examples:
  herald emit --redis redis://127.0.0.1:6379 news '{"title":"release 1.2"}'
  herald emit --redis redis://127.0.0.1:6379 --nsp /chat --to room1 message hello
  herald emit --redis redis://127.0.0.1:6379 --adapter redis-sharded --to user:7 --join vip
  herald emit --redis redis://127.0.0.1:6379 --to user:7 --disconnect --close
  herald emit --redis redis://127.0.0.1:6379 --server-side config-changed '{"limit":100}'

Flags:
`

const emitUsageTail = `
Exit status: 0 when Redis took the message (a warning is printed when no node
serves the namespace), 1 when it could not be sent, 2 for a usage error.
`

// emitRooms is a repeatable string flag.
type emitRooms []string

func (l *emitRooms) String() string { return strings.Join(*l, ",") }

func (l *emitRooms) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// emitOptions are the parsed flags and arguments of herald emit.
type emitOptions struct {
	redis, adapter, shardedMode, key, nsp string
	to, except, join, leave               emitRooms
	volatile, disconnect, close           bool
	serverSide                            bool
	timeout                               time.Duration
	event                                 string
	args                                  []any
}

// parseEmit parses the command line; on error it has written the reason to
// stderr (or the help to stdout) and returns the exit code.
func parseEmit(args []string, stdout, stderr io.Writer) (*emitOptions, int) {
	o := &emitOptions{}
	fs := flag.NewFlagSet("herald emit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.redis, "redis", os.Getenv("HERALD_REDIS"), "Redis `URL`, e.g. redis://127.0.0.1:6379/0 (rediss:// for TLS, ?master_set=NAME for Sentinel) (env HERALD_REDIS)")
	fs.StringVar(&o.adapter, "adapter", emitEnv("HERALD_ADAPTER", "redis"), "the nodes' adapter: redis (classic) or redis-sharded (env HERALD_ADAPTER)")
	fs.StringVar(&o.shardedMode, "sharded-mode", emitEnv("HERALD_SHARDED_MODE", "dynamic"), "the sharded nodes' subscription mode: dynamic, static or dynamic-private; static reaches nodes in any mode (env HERALD_SHARDED_MODE)")
	fs.StringVar(&o.key, "key", "socket.io", "channel prefix of the nodes' adapter (key / channelPrefix in Node.js)")
	fs.StringVar(&o.nsp, "nsp", "/", "`namespace` to publish to, e.g. /chat")
	fs.Var(&o.to, "to", "target the sockets in `ROOM` (repeatable)")
	fs.Var(&o.except, "except", "leave out the sockets in `ROOM` (repeatable)")
	fs.BoolVar(&o.volatile, "volatile", false, "the event may be dropped for clients that cannot take it at once")
	fs.Var(&o.join, "join", "make the target sockets join `ROOM` (repeatable) instead of emitting")
	fs.Var(&o.leave, "leave", "make the target sockets leave `ROOM` (repeatable) instead of emitting")
	fs.BoolVar(&o.disconnect, "disconnect", false, "disconnect the target sockets from the namespace instead of emitting")
	fs.BoolVar(&o.close, "close", false, "with --disconnect: also close the underlying connections")
	fs.BoolVar(&o.serverSide, "server-side", false, "send EVENT to the namespace on every server instead of to clients")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "give up after this long (connecting and publishing)")
	fs.Usage = func() {} // printed below, to stdout for -h
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fmt.Fprint(stdout, emitUsage)
			fs.PrintDefaults()
			fmt.Fprint(stdout, emitUsageTail)
			return nil, 0
		}
		fmt.Fprintln(stderr, `Run "herald emit -h" for help.`)
		return nil, 2
	}
	if err := o.validate(fs, args); err != nil {
		fmt.Fprintf(stderr, "herald emit: %v\nRun \"herald emit -h\" for help.\n", err)
		return nil, 2
	}
	return o, 0
}

func emitEnv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func (o *emitOptions) validate(fs *flag.FlagSet, args []string) error {
	pos := fs.Args()
	// The flag package stops at the first argument: a flag written after
	// EVENT would silently become an event argument.
	dashdash := len(pos) < len(args) && args[len(args)-len(pos)-1] == "--"
	if !dashdash {
		for _, a := range pos {
			if name, ok := emitFlagName(a); ok && fs.Lookup(name) != nil {
				return fmt.Errorf("flag %s after the event name: put flags before EVENT (or -- before EVENT to send %q as an argument)", a, a)
			}
		}
	}
	if o.redis == "" {
		return errors.New("--redis URL is required")
	}
	switch o.adapter {
	case "redis", "redis-sharded":
	default:
		return fmt.Errorf("--adapter %q: want redis or redis-sharded (the adapter of the nodes to reach)", o.adapter)
	}
	switch o.shardedMode {
	case "dynamic", "static", "dynamic-private":
	default:
		return fmt.Errorf("--sharded-mode %q: want dynamic, static or dynamic-private", o.shardedMode)
	}
	modes := 0
	for _, on := range []bool{len(o.join) > 0, len(o.leave) > 0, o.disconnect, o.serverSide} {
		if on {
			modes++
		}
	}
	if modes > 1 {
		return errors.New("use only one of --join, --leave, --disconnect and --server-side")
	}
	if o.close && !o.disconnect {
		return errors.New("--close goes with --disconnect")
	}
	if o.serverSide && (len(o.to) > 0 || len(o.except) > 0 || o.volatile) {
		return errors.New("--server-side reaches every server: --to, --except and --volatile do not apply")
	}
	if modes == 1 && !o.serverSide {
		if o.volatile {
			return errors.New("--volatile applies to events only")
		}
		if len(pos) > 0 {
			return fmt.Errorf("unexpected argument %q: --join, --leave and --disconnect take no EVENT", pos[0])
		}
		return nil
	}
	if len(pos) == 0 {
		return errors.New("missing EVENT")
	}
	if pos[0] == "" {
		return errors.New("empty EVENT name")
	}
	o.event = pos[0]
	for _, a := range pos[1:] {
		o.args = append(o.args, emitArg(a))
	}
	return nil
}

// emitFlagName returns the name of a command-line word that looks like a flag
// ("-name", "--name", "--name=value").
func emitFlagName(a string) (string, bool) {
	if len(a) < 2 || a[0] != '-' || a == "--" {
		return "", false
	}
	name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
	name, _, _ = strings.Cut(name, "=")
	return name, name != ""
}

// emitArg returns a as JSON if it is valid JSON, else as a string.
func emitArg(a string) any {
	if !json.Valid([]byte(a)) {
		return a
	}
	var buf bytes.Buffer
	json.Compact(&buf, []byte(a))
	return json.RawMessage(buf.Bytes())
}

// emit runs `herald emit` and returns the exit code.
func emit(args []string, stdout, stderr io.Writer) int {
	o, code := parseEmit(args, stdout, stderr)
	if o == nil {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	what, err := runEmit(ctx, o, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "herald emit: %s: %v\n", what, err)
		if errors.Is(err, emitter.ErrReservedEvent) || errors.Is(err, emitter.ErrAckNotSupported) {
			return 2
		}
		return 1
	}
	return 0
}

// runEmit connects, publishes and reports. what describes the operation
// for messages.
func runEmit(ctx context.Context, o *emitOptions, stdout, stderr io.Writer) (what string, err error) {
	clients, err := redis.Dial(ctx, o.redis)
	if err != nil {
		return "cannot connect", err
	}
	defer clients.Close()
	e := emitter.New(clients.Pub, emitter.Config{
		Key:              o.key,
		Sharded:          o.adapter == "redis-sharded",
		SubscriptionMode: o.shardedMode,
	}).Of(o.nsp).To(o.to...).Except(o.except...)
	targets := emitTargets(o)
	switch {
	case len(o.join) > 0:
		what = fmt.Sprintf("join %s for %s", strings.Join(o.join, ", "), targets)
		err = e.SocketsJoin(ctx, o.join...)
	case len(o.leave) > 0:
		what = fmt.Sprintf("leave %s for %s", strings.Join(o.leave, ", "), targets)
		err = e.SocketsLeave(ctx, o.leave...)
	case o.disconnect:
		what = "disconnect " + targets
		if o.close {
			what += " (closing connections)"
		}
		err = e.DisconnectSockets(ctx, o.close)
	case o.serverSide:
		what = fmt.Sprintf("server-side event %q", o.event)
		err = e.ServerSideEmit(ctx, o.event, o.args...)
	default:
		what = fmt.Sprintf("event %q to %s", o.event, targets)
		if o.volatile {
			e = e.Volatile()
			what = "volatile " + what
		}
		err = e.Emit(ctx, o.event, o.args...)
	}
	if err != nil {
		return what, err
	}
	n, cerr := e.ServerCount(ctx)
	switch {
	case cerr != nil:
		fmt.Fprintf(stdout, "published %s in namespace %s\n", what, e.Namespace())
	case n == 0:
		fmt.Fprintf(stdout, "published %s in namespace %s\n", what, e.Namespace())
		fmt.Fprintf(stderr, "herald emit: warning: no node serves namespace %s with --adapter %s and --key %s on this Redis, so nothing received it; check --adapter, --key and --nsp (a node subscribes for a namespace once the namespace exists on it)\n",
			e.Namespace(), o.adapter, o.key)
	default:
		fmt.Fprintf(stdout, "published %s in namespace %s (%d %s serving it)\n", what, e.Namespace(), n, emitPlural(n, "node", "nodes"))
	}
	return what, nil
}

func emitTargets(o *emitOptions) string {
	s := "every socket"
	if len(o.to) > 0 {
		s = "the sockets in " + strings.Join(o.to, ", ")
	}
	if len(o.except) > 0 {
		s += " except those in " + strings.Join(o.except, ", ")
	}
	return s
}

func emitPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
