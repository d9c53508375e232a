// nginx (deploy/nginx/) in front of three Herald nodes on one Redis:
// round-robin WITHOUT stickiness (works because the nodes forward requests
// to the session's owner) and `hash $remote_addr consistent`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startNginx, useDeployCluster } from "../lib/deploy.mjs";
import { Workload } from "../lib/deploy-workload.mjs";

const cl = useDeployCluster(["nginx"]);
const opts = { skip: cl.skip, timeout: 120_000 };

const SETUPS = [
  { name: "polling", transports: ["polling"], transport: "polling" },
  { name: "polling then upgrade", transports: undefined, transport: "websocket" },
];

for (const conf of ["herald-round-robin.conf", "herald-hash.conf"]) {
  for (const setup of SETUPS) {
    test(`nginx ${conf}, ${setup.name}: 200 clients, no "Session ID unknown", nothing lost`, opts, async (t) => {
      const lb = await startNginx(t, conf, cl.current.nodes);
      const w = await Workload.connect(t, lb.url, { transports: setup.transports });
      const perNode = await w.nodes();
      await w.run(3000);
      const s = w.assertClean({ transport: setup.transport });
      t.diagnostic(`${JSON.stringify({ perNode, rounds: s.strictRounds, transports: s.transports })}`);
      if (conf.includes("round-robin")) {
        // Round-robin spreads the sessions: every node owns some.
        assert.equal(Object.keys(perNode).length, 3, `sessions per node ${JSON.stringify(perNode)}`);
      }
    });
  }
}
