// Mixed cluster on the classic Redis adapter: two Go testservers
// (`--adapter redis`) and one Node.js socket.io 4.8.4 node with
// `createAdapter(pub, sub)` from @socket.io/redis-adapter 8.3.0, on one
// redis-server started for this file. Scenarios: lib/cluster-scenarios.mjs.

import { useRedis } from "../lib/cluster.mjs";
import { defineScenarios } from "../lib/cluster-scenarios.mjs";

const redis = useRedis();
defineScenarios({ redis, adapter: "redis", label: "classic adapter (G1, G2 Go + N Node)" });
