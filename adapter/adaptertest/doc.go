// Package adaptertest is the conformance suite that every
// [adapter.Adapter] passes: the in-memory adapter, the Redis pub/sub
// adapters (classic and sharded) and the Redis Streams adapter. It checks
// the socket.io-adapter semantics the server relies on — rooms and their
// bookkeeping, broadcasts with rooms, except, the local and volatile flags,
// broadcasts with acknowledgements, fetch/join/leave/disconnect of sockets,
// server-side emits, the server count, connection-state recovery — first on
// one node, then across the nodes of a cluster.
//
// The suite drives the adapter through a fake server namespace,
// [Namespace], which records what the adapter delivers and hosts fake
// sockets whose rooms live in the adapter, as in the real server. Cluster
// traffic is asynchronous, so the suite polls (up to Options.Timeout)
// rather than sleeping; an absence ("node B never got the local
// broadcast") is checked after a later message on the same path has
// arrived.
//
// # Using the suite
//
// An adapter's tests call [Run] with a function that builds a fresh,
// isolated cluster and returns one [adapter.Factory] per node, and with the
// adapter's capabilities:
//
//	func TestConformance(t *testing.T) {
//		addr := startRedis(t) // a real redis-server on a free port
//		newCluster := func(t *testing.T, cfg adaptertest.ClusterConfig) []adapter.Factory {
//			prefix := fmt.Sprintf("test-%d", nextID()) // nothing shared between clusters
//			var nodes []adapter.Factory
//			for range cfg.Nodes {
//				client := newClient(t, addr) // closed by t.Cleanup
//				nodes = append(nodes, redis.New(client, redis.Config{
//					KeyPrefix: prefix,
//					Recovery:  cfg.Recovery,
//				}))
//			}
//			return nodes
//		}
//		adaptertest.Run(t, newCluster, adaptertest.Options{MaxNodes: 3})
//	}
//
// The in-memory adapter has a single node; it runs the suite with and
// without connection-state recovery:
//
//	func TestMemoryConformance(t *testing.T) {
//		newCluster := func(t *testing.T, cfg adaptertest.ClusterConfig) []adapter.Factory {
//			return []adapter.Factory{adapter.NewMemory(adapter.MemoryConfig{Recovery: cfg.Recovery})}
//		}
//		t.Run("NoRecovery", func(t *testing.T) {
//			adaptertest.Run(t, newCluster, adaptertest.Options{MaxNodes: 1})
//		})
//		t.Run("Recovery", func(t *testing.T) {
//			adaptertest.Run(t, newCluster, adaptertest.Options{MaxNodes: 1, Recovery: true})
//		})
//	}
//
// Cases are subtests named Node/..., Recovery/... and Cluster/..., so one
// can be run alone: go test -run 'TestConformance/Cluster/BroadcastWithAck'.
// With Options.MaxNodes below 2 the Cluster cases are skipped; the Node
// cases always run, on a cluster of one node.
//
// # What the suite assumes
//
//   - Each call of NewCluster returns a cluster that shares nothing with
//     the others, and each Factory is called once per namespace. Factories
//     should return once the adapter can receive cluster traffic; the suite
//     also waits until every adapter's ServerCount is the number of nodes.
//   - Broadcast and the other operations may deliver asynchronously, even
//     on one node; BroadcastWithAck may return at once or once every
//     acknowledgement is in. Namespace.Deliver may call back into the
//     adapter (the real server does when a write disconnects a slow client),
//     so no adapter lock may be held across it.
//   - Messages published by one node are received by each other node in
//     the order they were sent.
//   - Acknowledgements that cross nodes may carry only their first argument,
//     as in the Node.js adapters; the suite checks first arguments.
//   - With Options.Recovery, an event broadcast without an ack id and
//     without the volatile flag reaches sockets with an offset, a JSON
//     string, appended as its last argument; the socket's session, once
//     persisted, can be restored (on any node of the cluster) with the
//     packets after that offset that targeted its rooms, in the order the
//     sockets received them.
package adaptertest
