// `herald lb` (the stateless sticky balancer, package balancer) in front of
// three Herald nodes on one Redis: sessions routed by the node in their sid,
// and a failover run where one node drains (SIGTERM) and another dies
// (SIGKILL) while 200 clients keep exchanging messages.
import { test } from "node:test";
import assert from "node:assert/strict";
import { httpGet, startDeployCluster, startHeraldLB, until, useDeployCluster } from "../lib/deploy.mjs";
import { Workload } from "../lib/deploy-workload.mjs";

const cl = useDeployCluster();
const opts = { skip: cl.skip, timeout: 150_000 };

const SETUPS = [
  { name: "polling", transports: ["polling"], transport: "polling" },
  { name: "polling then upgrade", transports: undefined, transport: "websocket" },
];

/** The value of a metric line of /lb/metrics, or undefined. */
function metric(text, prefix) {
  const line = text.split("\n").find((l) => l.startsWith(prefix + " "));
  return line === undefined ? undefined : Number(line.slice(prefix.length + 1));
}

for (const setup of SETUPS) {
  test(`herald lb, ${setup.name}: 200 clients, no "Session ID unknown", nothing lost`, opts, async (t) => {
    const lb = await startHeraldLB(t, cl.current.nodes);
    await until(async () => (await httpGet(`${lb.url}/lb/health`)).status === 200, 15_000, "herald lb healthy");
    const w = await Workload.connect(t, lb.url, { transports: setup.transports });
    const perNode = await w.nodes();
    await w.run(3000);
    const s = w.assertClean({ transport: setup.transport });
    t.diagnostic(`${JSON.stringify({ perNode, rounds: s.strictRounds, transports: s.transports })}`);
    // Fewest sessions first: the three nodes share the clients evenly.
    for (const n of cl.current.nodes) {
      assert.ok((perNode[n.nodeId] ?? 0) >= 50, `sessions per node ${JSON.stringify(perNode)}`);
    }
    const { body } = await httpGet(`${lb.url}/lb/metrics`);
    assert.equal(metric(body, "herald_lb_unknown_session_total"), 0, body);
    let newSessions = 0;
    for (const n of cl.current.nodes) {
      newSessions += metric(body, `herald_lb_new_sessions_total{backend="${n.url}",node="${n.nodeId}"}`) ?? NaN;
      assert.equal(metric(body, `herald_lb_backend_state{backend="${n.url}",node="${n.nodeId}",state="healthy"}`), 1, body);
    }
    assert.ok(newSessions >= 200, `herald_lb_new_sessions_total sums to ${newSessions}:\n${body}`);
  });
}

test("herald lb failover: one node drained (SIGTERM), one killed (SIGKILL); clients reconnect to the last node and keep working", opts, async (t) => {
  const fc = await startDeployCluster({ prefix: "f" });
  t.after(() => fc.stop());
  const [drained, killed, survivor] = fc.nodes;
  const lb = await startHeraldLB(t, fc.nodes);
  await until(async () => (await httpGet(`${lb.url}/lb/health`)).status === 200, 15_000, "herald lb healthy");
  const w = await Workload.connect(t, lb.url, { reconnection: true });
  const before = await w.nodes();
  assert.equal(Object.keys(before).length, 3, `sessions per node ${JSON.stringify(before)}`);
  await w.round();

  // Keeps the clients busy (failures not counted) while a node goes.
  const busyWhile = async (promise) => {
    let done = false;
    promise.finally(() => (done = true));
    while (!done) await w.round({ strict: false });
    return promise;
  };

  // 1. Drain: /health says draining, the node tells its clients to
  // reconnect, and herald lb sends them to the other two.
  await busyWhile(drained.stop(20_000));
  assert.equal(drained.child.signalCode ?? drained.child.exitCode, 0, `${drained.name} exit after drain:\n${drained.logs().slice(-2000)}`);
  await w.settled();
  const afterDrain = await w.nodes();
  assert.equal(afterDrain[drained.nodeId], undefined, `clients left on the drained node: ${JSON.stringify(afterDrain)}`);
  await w.round();

  // 2. Kill: the node's clients lose their connection, herald lb marks it
  // down and their reconnections land on the survivor.
  await busyWhile(killed.kill());
  await w.settled();
  const afterKill = await w.nodes();
  assert.deepEqual(afterKill, { [survivor.nodeId]: 200 }, "every client on the last node");

  // 3. Everyone exchanges again, with nothing lost.
  await w.run(2000);
  const s = w.summary();
  t.diagnostic(JSON.stringify({ before, afterDrain, afterKill, ...s }));
  const detail = `${JSON.stringify(s, null, 1)}\n${w.ackFailures.slice(0, 10).join("\n")}\nlost ${JSON.stringify(w.lost.slice(0, 10))}`;
  assert.equal(s.connected, 200, detail);
  assert.equal(s.lost, 0, detail);
  assert.equal(s.duplicates, 0, detail);
  assert.equal(s.ackFailures, 0, detail);
  assert.ok(s.strictRounds >= 4, detail);
  // Every client of the two nodes that left reconnected (at least once).
  const moved = before[drained.nodeId] + before[killed.nodeId];
  const reconnected = w.clients.filter((c) => c.connects > 1).length;
  assert.ok(reconnected >= moved, `${reconnected} clients reconnected; ${moved} were on the nodes that left\n${detail}`);

  const { body } = await httpGet(`${lb.url}/lb/metrics`);
  assert.equal(metric(body, `herald_lb_backend_state{backend="${killed.url}",node="${killed.nodeId}",state="down"}`), 1, body);
  assert.equal(metric(body, `herald_lb_backend_state{backend="${survivor.url}",node="${survivor.nodeId}",state="healthy"}`), 1, body);
});
