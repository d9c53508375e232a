package emitter_test

import (
	"context"
	"log"
	"time"

	"github.com/redis/rueidis"

	"github.com/herald-rt/herald/emitter"
)

// Emit from a worker to the clients of a cluster whose nodes use the
// classic Redis adapter (Herald's redis.NewAdapter or Node.js's
// createAdapter).
func Example() {
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{"127.0.0.1:6379"}, DisableCache: true})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	e := emitter.New(client, emitter.Config{})
	// Every client of the main namespace.
	if err := e.Emit(ctx, "announcement", map[string]any{"text": "maintenance at 18:00"}); err != nil {
		log.Fatal(err)
	}
	// The clients in room "orders:42" but not in "muted", with binary data.
	if err := e.To("orders:42").Except("muted").Emit(ctx, "invoice", []byte("%PDF-1.7 ...")); err != nil {
		log.Fatal(err)
	}
}

// Reach a cluster whose nodes use the sharded Redis adapter (SPUBLISH),
// which @socket.io/redis-emitter cannot do.
func Example_sharded() {
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{"127.0.0.1:6379"}, DisableCache: true})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()

	e := emitter.New(client, emitter.Config{Sharded: true, SubscriptionMode: "dynamic"})
	if err := e.Of("/chat").To("room1").Emit(ctx, "message", "hello from a worker"); err != nil {
		log.Fatal(err)
	}
}

// Operators return new Emitters: a configured one can be kept and reused.
func ExampleEmitter_To() {
	var client rueidis.Client // connected elsewhere
	ctx := context.Background()

	admins := emitter.New(client, emitter.Config{}).Of("/admin").To("staff")
	admins.Emit(ctx, "alert", "disk almost full")
	admins.Volatile().Emit(ctx, "load", 0.93) // admins itself is unchanged
}

// Move sockets between rooms and disconnect them, on every node.
func ExampleEmitter_SocketsJoin() {
	var client rueidis.Client // connected elsewhere
	ctx := context.Background()
	e := emitter.New(client, emitter.Config{})

	// Every socket of user 7 (in room "user:7") joins "project:3".
	e.In("user:7").SocketsJoin(ctx, "project:3")
	// ... and leaves it again.
	e.In("user:7").SocketsLeave(ctx, "project:3")
	// Log user 7 out everywhere, closing the connections.
	e.In("user:7").DisconnectSockets(ctx, true)
}

// Send an event to the servers themselves: Herald's
// Namespace.OnServerSideEmit handlers and Node.js's io.on(event)
// listeners receive it.
func ExampleEmitter_ServerSideEmit() {
	var client rueidis.Client // connected elsewhere
	ctx := context.Background()

	if err := emitter.New(client, emitter.Config{}).ServerSideEmit(ctx, "config-changed", "rate-limit", 100); err != nil {
		log.Print(err)
	}
}

// Check that nodes are listening before relying on an emit.
func ExampleEmitter_ServerCount() {
	var client rueidis.Client // connected elsewhere
	ctx := context.Background()

	n, err := emitter.New(client, emitter.Config{}).ServerCount(ctx)
	if err == nil && n == 0 {
		log.Print("no node serves namespace /: check Key, Sharded and the namespace")
	}
}
