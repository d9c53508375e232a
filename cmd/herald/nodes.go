package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/herald-rt/herald/adapter/redis"
	"github.com/herald-rt/herald/cluster"
)

// nodes is `herald nodes`: the nodes registered in a cluster's Redis.
func nodes(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herald nodes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("redis", os.Getenv("HERALD_REDIS"), "Redis `URL` of the cluster (env HERALD_REDIS)")
	prefix := fs.String("registry-prefix", cluster.DefaultPrefix, "key prefix of the node registry")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: herald nodes --redis URL\n\nLists the Herald nodes registered in the cluster's Redis (nodes started with --redis\nrefresh their entry every few seconds; a node that dies drops out within 6s).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *url == "" {
		fmt.Fprintln(stderr, "herald nodes: --redis URL is required")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	clients, err := redis.Dial(ctx, *url)
	if err != nil {
		fmt.Fprintln(stderr, "herald nodes:", err)
		return 1
	}
	defer clients.Close()
	list, err := cluster.NewRegistry(clients.Pub, *prefix).Nodes(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "herald nodes:", err)
		return 1
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tADDRESS\tCONNECTIONS\tUP\tLAST SEEN")
	total := 0
	for _, n := range list {
		total += n.Sockets
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s ago\n", n.ID, n.Addr, n.Sockets,
			time.Since(n.Started).Truncate(time.Second), time.Since(n.Updated).Truncate(100*time.Millisecond))
	}
	w.Flush()
	fmt.Fprintf(stdout, "%d nodes, %d connections\n", len(list), total)
	return 0
}
