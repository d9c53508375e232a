// HAProxy (deploy/haproxy/haproxy.cfg: cookie io prefix, health checks on
// GET /health) in front of three Herald nodes on one Redis.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startHaproxy, useDeployCluster } from "../lib/deploy.mjs";
import { Workload } from "../lib/deploy-workload.mjs";

const cl = useDeployCluster(["haproxy"]);
const opts = { skip: cl.skip, timeout: 120_000 };

const SETUPS = [
  { name: "polling", transports: ["polling"], transport: "polling" },
  { name: "polling then upgrade", transports: undefined, transport: "websocket" },
];

for (const setup of SETUPS) {
  test(`haproxy cookie io, ${setup.name}: 200 clients, no "Session ID unknown", nothing lost`, opts, async (t) => {
    const lb = await startHaproxy(t, cl.current.nodes);
    const w = await Workload.connect(t, lb.url, { transports: setup.transports });
    const perNode = await w.nodes();
    await w.run(3000);
    const s = w.assertClean({ transport: setup.transport });
    t.diagnostic(`${JSON.stringify({ perNode, rounds: s.strictRounds, transports: s.transports })}`);
    assert.equal(Object.keys(perNode).length, 3, `sessions per node ${JSON.stringify(perNode)}`);
    // The stickiness comes from HAProxy's cookie: each client's cookie
    // names the server of its node.
    assert.match(w.cookie(0, "io") ?? "", /^n[123]~/, "io cookie with HAProxy's server prefix");
  });
}
