// Mixed cluster on the sharded Redis adapter: two Go testservers
// (`--adapter redis-sharded --sharded-mode M`) and one Node.js socket.io
// 4.8.4 node with `createShardedAdapter(pub, sub, {subscriptionMode: M})`
// from @socket.io/redis-adapter 8.3.0, on one redis-server started for this
// file, for M = dynamic, static and dynamic-private (HERALD_SHARDED_MODES=
// dynamic,static to choose). Scenarios: lib/cluster-scenarios.mjs.

import { useRedis } from "../lib/cluster.mjs";
import { defineScenarios } from "../lib/cluster-scenarios.mjs";

const redis = useRedis();
const modes = (process.env.HERALD_SHARDED_MODES ?? "dynamic,static,dynamic-private").split(",").filter(Boolean);
for (const mode of modes) {
  defineScenarios({
    redis,
    adapter: "redis-sharded",
    shardedMode: mode,
    label: `sharded adapter, subscriptionMode ${mode} (G1, G2 Go + N Node)`,
  });
}
