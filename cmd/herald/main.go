// Command herald runs a Herald Socket.IO node and its tools.
//
//	herald [serve] [flags]   run a server (the default)
//	herald lb ...            run the sticky balancer
//	herald emit ...          emit to a cluster through Redis
//	herald nodes ...         list the nodes of a cluster
//
// Run `herald help` or `herald <command> -h` for details.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
