package main

import (
	"fmt"
	"io"
	"strings"
)

const usage = `Herald is a Socket.IO server built to run on many nodes.

Usage:
  herald [serve] [flags]   run a server on :3000 (the default command)
  herald lb [flags]        run the sticky load balancer in front of the nodes
  herald emit [flags]      emit an event to a cluster via Redis
  herald nodes [flags]     list the nodes of a cluster and their connection counts
  herald help              show this help

Every flag can also be set with an environment variable: --ping-interval is
HERALD_PING_INTERVAL, --addr is HERALD_ADDR, and so on. Flags win.

Start with:
  herald serve --addr :3000
then open http://localhost:3000/ in a browser.

Run "herald serve -h" for the server flags, "herald lb -h" for the balancer's.
`

// run dispatches to a subcommand and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "nodes":
		return nodes(args, stdout, stderr)
	case "emit":
		return emit(args, stdout, stderr)
	case "lb":
		return lb(args, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "herald: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}
