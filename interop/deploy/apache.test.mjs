// Apache httpd (deploy/apache/herald.conf: mod_proxy_balancer with a
// stickysession route cookie, WebSocket through upgrade=websocket) in front
// of three Herald nodes on one Redis.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startApache, useDeployCluster } from "../lib/deploy.mjs";
import { Workload } from "../lib/deploy-workload.mjs";

const cl = useDeployCluster(["apache2"]);
const opts = { skip: cl.skip, timeout: 120_000 };

const SETUPS = [
  { name: "polling", transports: ["polling"], transport: "polling" },
  { name: "polling then upgrade", transports: undefined, transport: "websocket" },
];

for (const setup of SETUPS) {
  test(`apache stickysession, ${setup.name}: 200 clients, no "Session ID unknown", nothing lost`, opts, async (t) => {
    const lb = await startApache(t, cl.current.nodes);
    const w = await Workload.connect(t, lb.url, { transports: setup.transports });
    const perNode = await w.nodes();
    await w.run(3000);
    const s = w.assertClean({ transport: setup.transport });
    t.diagnostic(`${JSON.stringify({ perNode, rounds: s.strictRounds, transports: s.transports })}`);
    assert.equal(Object.keys(perNode).length, 3, `sessions per node ${JSON.stringify(perNode)}`);
    const route = w.cookie(0, "HERALD_ROUTE");
    assert.match(route ?? "", /^\.n[123]$/, "Apache's route cookie");
  });
}
