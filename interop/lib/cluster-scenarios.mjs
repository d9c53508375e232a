// The cluster scenarios (reference/cluster-wire-protocols.md, Appendix A),
// driven through the DESIGN.md contract events on a mixed cluster: two Go
// testservers (G1, G2) and one Node.js socket.io node (N) on one Redis.
// cluster/classic.test.mjs and cluster/sharded.test.mjs register them for
// their adapter with defineScenarios().
//
// Layout of every test: on each node X, four clients over WebSocket:
//   Xa in r1, Xb in r2, Xc in r1 and r2, Xd in no room (Xd sends the requests).
// A scenario "from X" is triggered by Xd; from G1 it covers Go→Go and
// Go→Node, from N it covers Node→Go (and each node's local delivery).
//
// Absence ("X does not get E") is checked with a marker sent after E over the
// same path (a fence broadcast from the same sender: a node delivers one
// sender's broadcasts in order), never with a sleep.

import { describe, test } from "node:test";
import { createHash } from "node:crypto";
import assert from "node:assert/strict";
import { useCluster, startNode, fetchAll, callT, PROBE_ACK } from "./cluster.mjs";
import { connectManager } from "./sio.mjs";
import { call, until } from "./sio.mjs";

/** The clients of the standard layout, in node order: [{name: "G1a", ...}, ...]. */
export async function layout(t, cl, { nsp = "/" } = {}) {
  const roomsOf = { a: ["r1"], b: ["r2"], c: ["r1", "r2"], d: [] };
  const jobs = [];
  for (const node of cl.names) {
    for (const [suffix, rooms] of Object.entries(roomsOf)) {
      jobs.push(cl.client(t, node, { rooms, name: `${node}${suffix}`, nsp }));
    }
  }
  const clients = await Promise.all(jobs);
  await cl.settleRooms(clients, { nsp });
  const by = Object.fromEntries(clients.map((c) => [c.name, c]));
  return { all: clients, by };
}

let fences = 0;

/** Broadcasts a fence from `sender` to everyone and waits until every client in `clients` has it. */
export async function fence(sender, clients, { timeout = 5000 } = {}) {
  const id = `fence-${++fences}`;
  assert.deepEqual(await call(sender.socket, "broadcast", { event: "fence", args: [id] }), [true]);
  await waitAll(clients, "fence", id, timeout);
}

/** Waits until every client in `clients` got `event` whose first argument is `id`. */
export async function waitAll(clients, event, id, timeout = 5000) {
  const missing = () => clients.filter((c) => !c.rec.of(event).some((a) => a[0] === id)).map((c) => c.name);
  try {
    await until(() => missing().length === 0, { timeout, what: `${event} ${id}` });
  } catch (err) {
    throw new Error(`${err.message}: missing on ${missing().join(", ")}`);
  }
}

/**
 * Asserts that exactly the clients named in `recipients` got `event`, each
 * exactly once with `args`, and every other client in `clients` got none.
 * Call it after a fence: absence is settled by the fence; presence is waited
 * for (bounded) first, so a node that reorders one sender's messages across
 * Redis channels (see the "order" test) fails only the test about order.
 */
export async function assertDelivery(clients, event, args, recipients, msg = "", { timeout = 5000 } = {}) {
  const want = new Set(recipients);
  try {
    await until(() => clients.every((c) => !want.has(c.name) || c.rec.of(event).length >= 1), { timeout, what: event });
  } catch {}
  const got = {};
  const expected = {};
  for (const c of clients) {
    got[c.name] = c.rec.of(event);
    expected[c.name] = want.has(c.name) ? [args] : [];
  }
  assert.deepEqual(got, expected, `${msg} "${event}" deliveries`);
}

/** Waits (bounded, never fails) until each client has at least `n(c)` `event`s. */
export async function waitCounts(clients, event, n, timeout = 5000) {
  try {
    await until(() => clients.every((c) => c.rec.of(event).length >= n(c)), { timeout, what: event });
  } catch {}
}

/** Names of `clients` whose rooms satisfy `pred(rooms)`. */
export const namesWhere = (clients, pred) => clients.filter((c) => pred(new Set(c.rooms))).map((c) => c.name);

/** Normalised fetch result: sorted by id, rooms sorted, data {} → null (Node's default). */
export function normFetch(list, ignore = new Set()) {
  return list
    .filter((s) => !ignore.has(s.id))
    .map((s) => ({
      id: s.id,
      rooms: [...s.rooms].sort(),
      data: s.data && typeof s.data === "object" && Object.keys(s.data).length === 0 ? null : s.data ?? null,
    }))
    .sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
}

/** Expected normalised fetch entries of `clients`. */
export const expectFetch = (clients) =>
  normFetch(clients.map((c) => ({ id: c.id, rooms: c.rooms, data: null })));

/** JSON-ish view of a value with every Buffer shown as <bytes:length:sha1 prefix>. */
export function showBinary(v) {
  return JSON.stringify(v, function (k, x) {
    const raw = this[k];
    if (Buffer.isBuffer(raw)) return `<bytes:${raw.length}:${createHash("sha1").update(raw).digest("hex").slice(0, 8)}>`;
    return x;
  });
}

const dir = (from) => (from === "N" ? "Node→Go" : "Go→Go, Go→Node");

const ARGS_TEXT = [1, "héllo✓", { nested: [1, { k: null }] }, 1.5, -3, 300, null, [true, false], "", 2 ** 40];

/**
 * Registers every scenario for one adapter configuration.
 * @param {object} o
 * @param {{current: object, skip: string|false}} o.redis holder from useRedis()
 * @param {"redis"|"redis-sharded"} o.adapter
 * @param {string} [o.shardedMode]
 * @param {string} o.label
 * @param {string[]} [o.senders] nodes the directional scenarios start from
 */
export function defineScenarios({ redis, adapter, shardedMode, label, senders = ["G1", "N"] }) {
  // The whole suite: 33 tests of about 3 s each (three node processes
  // start per test), which a loaded 2-core machine stretches past 90 s.
  const opts = { timeout: 240_000, skip: redis.skip || undefined };
  const start = (t) => useCluster(t, redis, { adapter, shardedMode });

  describe(label, opts, () => {
    for (const from of senders) {
      test(`broadcast to all reaches every client on all 3 nodes exactly once, from ${from} (${dir(from)})`, async (t) => {
        const cl = await start(t);
        const { all, by } = await layout(t, cl);
        const S = by[`${from}d`];
        assert.deepEqual(await call(S.socket, "broadcast", { event: "hi", args: ARGS_TEXT }), [true]);
        await fence(S, all);
        await assertDelivery(all, "hi", ARGS_TEXT, all.map((c) => c.name));
        // twice in a row, nothing else in between
        assert.deepEqual(await call(S.socket, "broadcast", { event: "hi2", args: [] }), [true]);
        await fence(S, all);
        await assertDelivery(all, "hi2", [], all.map((c) => c.name));
        for (const c of all) {
          assert.deepEqual(
            c.rec.all.map((e) => e.event),
            ["auth", "hi", "fence", "hi2", "fence"],
            `${c.name}: events in order, nothing extra`,
          );
        }
      });

      test(`to a room with except, several rooms without duplicates, from ${from} (${dir(from)})`, async (t) => {
        const cl = await start(t);
        const { all, by } = await layout(t, cl);
        const S = by[`${from}d`];
        // to r1 except r2: the a clients
        await call(S.socket, "broadcast", { to: "r1", except: "r2", event: "room-msg", args: ["x"] });
        // to r1 and r2: a, b and c, once each
        await call(S.socket, "broadcast", { to: ["r1", "r2"], event: "multi", args: [true] });
        // to r2 except one socket id on a remote node and one on N
        const other = from === "N" ? "G2" : "N";
        const ex = [by[`${other}c`].id, by.G1b.id];
        await call(S.socket, "broadcast", { to: "r2", except: ex, event: "te", args: [3] });
        // to one room only (single-room channel), no except
        await call(S.socket, "broadcast", { to: "r2", event: "r2only", args: [{ r: 2 }] });
        // except without to: everyone but r1
        await call(S.socket, "broadcast", { except: "r1", event: "not-r1", args: ["n"] });
        await fence(S, all);
        await assertDelivery(all, "room-msg", ["x"], namesWhere(all, (r) => r.has("r1") && !r.has("r2")));
        await assertDelivery(all, "multi", [true], namesWhere(all, (r) => r.has("r1") || r.has("r2")));
        await assertDelivery(
          all,
          "te",
          [3],
          all.filter((c) => c.rooms.includes("r2") && !ex.includes(c.id)).map((c) => c.name),
        );
        await assertDelivery(all, "r2only", [{ r: 2 }], namesWhere(all, (r) => r.has("r2")));
        await assertDelivery(all, "not-r1", ["n"], namesWhere(all, (r) => !r.has("r1")));
      });

      test(`binary arguments (Buffers) cross nodes intact, from ${from} (${dir(from)})`, async (t) => {
        const cl = await start(t);
        const { all, by } = await layout(t, cl);
        const S = by[`${from}d`];
        const big = Buffer.alloc(70_000);
        for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
        const args = [Buffer.from([1, 2, 3]), { d: Buffer.from("héllo"), list: [Buffer.alloc(0), 5, "s"] }, big];
        assert.deepEqual(await call(S.socket, "broadcast", { event: "bin", args }), [true]);
        await fence(S, all);
        // one line per client: Buffers as <bytes:length:sha1>, so a failure
        // shows at a glance which nodes lost the attachments
        const got = {};
        const want = {};
        for (const c of all) {
          got[c.name] = c.rec.of("bin").map(showBinary);
          want[c.name] = [showBinary(args)];
        }
        assert.deepEqual(got, want, "binary payload per client (exactly once, Buffers intact)");
        for (const c of all) assert.deepEqual(c.rec.of("bin"), [args], `${c.name}: exact payload`);
        // binary to a room on another node
        const to = from === "N" ? "G1" : "N";
        const one = [Buffer.from([0xff, 0x00, 0x80])];
        await call(S.socket, "broadcast", { to: by[`${to}a`].id, event: "bin1", args: one });
        await fence(S, all);
        await assertDelivery(all, "bin1", one, [`${to}a`]);
      });

      test(`broadcast with acks collects one response per client on every node, from ${from} (${dir(from)})`, async (t) => {
        const cl = await start(t);
        const { all, by } = await layout(t, cl);
        const S = by[`${from}d`];
        for (const c of all) {
          c.socket.on("ask", (...args) => {
            const cb = args.pop();
            cb({ from: c.name, got: args });
          });
        }
        // the 3 readiness probes answer PROBE_ACK to broadcasts that reach them
        const probeAcks = (rs) => rs.filter((r) => r === PROBE_ACK).length;
        const byFrom = (rs) =>
          rs.filter((r) => r !== PROBE_ACK).sort((x, y) => (x.from < y.from ? -1 : x.from > y.from ? 1 : 0));
        const timeoutMs = 8000;
        let started = Date.now();
        const [res] = await callT(S.socket, 15_000, "broadcast", { event: "ask", args: [1, { two: 2 }], ackTimeoutMs: timeoutMs });
        const took = Date.now() - started;
        assert.equal(res.err, null, `err: ${JSON.stringify(res)}`);
        assert.deepEqual(
          byFrom(res.responses),
          byFrom(all.map((c) => ({ from: c.name, got: [1, { two: 2 }] }))),
          "one response per client, all nodes",
        );
        assert.equal(probeAcks(res.responses), 3, "one response per probe");
        assert.ok(took < timeoutMs - 1500, `answered after ${took} ms: it waited for the ${timeoutMs} ms timeout`);
        for (const c of all) assert.deepEqual(c.rec.of("ask"), [[1, { two: 2 }]], `${c.name} asked once`);

        // to a room: a and c of every node
        const [res2] = await callT(S.socket, 15_000, "broadcast", { to: "r1", event: "ask", args: ["r"], ackTimeoutMs: timeoutMs });
        assert.equal(res2.err, null, JSON.stringify(res2));
        assert.deepEqual(
          byFrom(res2.responses),
          byFrom(namesWhere(all, (r) => r.has("r1")).map((n) => ({ from: n, got: ["r"] }))),
        );
        // nobody in the room: no responses, no error, no waiting
        started = Date.now();
        const [res3] = await callT(S.socket, 15_000, "broadcast", { to: "nobody", event: "ask", args: [], ackTimeoutMs: timeoutMs });
        assert.deepEqual(res3, { err: null, responses: [] });
        assert.ok(Date.now() - started < timeoutMs - 1500, "an empty room waited for the timeout");

        // a client on another node that never answers: err and the other responses
        const to = from === "N" ? "G2" : "N";
        const silent = await cl.client(t, to, { rooms: ["r1"], name: `${to}-silent` });
        await cl.settleRooms([...all, silent]);
        silent.socket.on("ask", () => {});
        started = Date.now();
        const [res4] = await callT(S.socket, 15_000, "broadcast", { to: "r1", event: "ask", args: ["q"], ackTimeoutMs: 1500 });
        const took4 = Date.now() - started;
        assert.equal(typeof res4.err, "string", `err is ${JSON.stringify(res4.err)}`);
        assert.ok(res4.err.length > 0);
        assert.deepEqual(
          byFrom(res4.responses),
          byFrom(namesWhere(all, (r) => r.has("r1")).map((n) => ({ from: n, got: ["q"] }))),
          "partial responses",
        );
        assert.ok(took4 >= 1400, `answered after ${took4} ms, before the 1500 ms timeout`);
        assert.deepEqual(silent.rec.of("ask"), [["q"]]);
      });

      test(`server-side-emit reaches the other nodes (server-side), not the sender's, from ${from} (${dir(from)})`, async (t) => {
        const cl = await start(t);
        const { all, by } = await layout(t, cl);
        const S = by[`${from}d`];
        const others = cl.names.filter((n) => n !== from);
        const onNode = (n) => all.filter((c) => c.node === n);
        const remote = all.filter((c) => c.node !== from);
        S.socket.emit("server-side-emit", "sse", { a: 1 }, "two", 3);
        try {
          await until(() => remote.every((c) => c.rec.of("server-side").length >= 1), { timeout: 5000, what: "server-side" });
        } catch (err) {
          const missing = remote.filter((c) => c.rec.of("server-side").length === 0).map((c) => c.name);
          throw new Error(`${err.message}: missing on ${missing.join(", ")}`);
        }
        // markers: each other node emits one; every node hears at least one
        // marker from Redis after the sender's event
        for (const n of others) by[`${n}d`].socket.emit("server-side-emit", "marker", n);
        for (const n of cl.names) {
          for (const m of others.filter((o) => o !== n)) {
            await until(() => onNode(n).every((c) => c.rec.of("server-side").some((a) => a[0] === "marker" && a[1] === m)), {
              what: `marker from ${m} on ${n}`,
            });
          }
        }
        for (const c of all) {
          const sse = c.rec.of("server-side").filter((a) => a[0] === "sse");
          assert.deepEqual(sse, c.node === from ? [] : [["sse", { a: 1 }, "two", 3]], `${c.name}: server-side "sse"`);
          const markers = c.rec.of("server-side").filter((a) => a[0] === "marker").map((a) => a[1]).sort();
          assert.deepEqual(markers, others.filter((o) => o !== c.node).sort(), `${c.name}: markers`);
        }
      });

      test(`sockets-join / sockets-leave then broadcast to the room, from ${from} (${dir(from)})`, async (t) => {
        const cl = await start(t);
        const { all, by } = await layout(t, cl);
        const S = by[`${from}d`];
        const ignore = new Set(cl.probeIds);
        const r1 = all.filter((c) => c.rooms.includes("r1"));
        const ids = (cs) => cs.map((c) => c.id).sort();
        const fetchIdsVia = async (c, rooms) => normFetch(await fetchAll(c, rooms), ignore).map((s) => s.id);

        assert.deepEqual(await call(S.socket, "sockets-join", { in: "r1", room: "j" }), [true]);
        for (const via of [S, by.G2d, by.Nd]) {
          await until(async () => JSON.stringify(await fetchIdsVia(via, ["j"])) === JSON.stringify(ids(r1)), {
            timeout: 5000,
            what: `fetch via ${via.name} lists the r1 sockets in j`,
          });
        }
        for (const c of r1) c.rooms.push("j");
        await cl.settleRooms(all);
        const [who] = await call(by.Nc.socket, "whoami");
        assert.deepEqual([...who.rooms].sort(), [...by.Nc.rooms].sort(), "Nc's rooms after sockets-join");
        const [who2] = await call(by.G2a.socket, "whoami");
        assert.deepEqual([...who2.rooms].sort(), [...by.G2a.rooms].sort(), "G2a's rooms after sockets-join");

        for (const sender of [S, by.G2d, by.Nd]) {
          await call(sender.socket, "broadcast", { to: "j", event: "to-j", args: [sender.name] });
        }
        for (const sender of [S, by.G2d, by.Nd]) await fence(sender, all);
        await waitCounts(all, "to-j", (c) => (c.rooms.includes("j") ? 3 : 0));
        for (const c of all) {
          assert.deepEqual(
            c.rec.of("to-j").map((a) => a[0]).sort(),
            c.rooms.includes("j") ? [S.name, "G2d", "Nd"].sort() : [],
            `${c.name}: "to-j"`,
          );
        }

        // sockets-join of everyone (no "in")
        assert.deepEqual(await call(S.socket, "sockets-join", { room: "everyone" }), [true]);
        await until(async () => JSON.stringify(await fetchIdsVia(S, ["everyone"])) === JSON.stringify(ids(all)), {
          what: "everyone joined",
        });

        assert.deepEqual(await call(S.socket, "sockets-leave", { in: "j", room: "j" }), [true]);
        for (const via of [S, by.G1d, by.Nd]) {
          await until(async () => (await fetchIdsVia(via, ["j"])).length === 0, {
            what: `fetch via ${via.name}: j empty`,
          });
        }
        for (const c of r1) c.rooms.splice(c.rooms.indexOf("j"), 1);
        await call(S.socket, "broadcast", { to: "j", event: "after-leave", args: [] });
        await fence(S, all);
        await assertDelivery(all, "after-leave", [], []);
        const [who3] = await call(by.Nc.socket, "whoami");
        assert.deepEqual([...who3.rooms].sort(), [by.Nc.id, "everyone", "r1", "r2"].sort(), "Nc's rooms after sockets-leave");
      });

      test(`disconnect-sockets across nodes (close false, then true), from ${from} (${dir(from)})`, async (t) => {
        const cl = await start(t);
        const { all, by } = await layout(t, cl);
        const S = by[`${from}d`];
        // Two extra connections on the two other nodes, each with a socket on
        // "/" and one on "/custom": M1 ("/" in r2) on the first, M2 ("/" in
        // r1) on the second. close: false must leave M1's /custom socket
        // alone; close: true must close M2's whole connection.
        const [n1, n2] = cl.names.filter((n) => n !== from);
        const manager = async (node, room) => {
          const m = await connectManager(t, cl.nodes[node].url, { transports: ["websocket"] }, ["/", "/custom"]);
          const root = m.sockets["/"];
          assert.deepEqual(await call(root.socket, "join", room), [true]);
          const custom = m.sockets["/custom"];
          return {
            m,
            root,
            custom,
            clients: [
              { node, id: root.socket.id, rooms: [root.socket.id, room], nsp: "/" },
              { node, id: custom.socket.id, rooms: [custom.socket.id], nsp: "/custom" },
            ],
          };
        };
        const M1 = await manager(n1, "r2");
        const M2 = await manager(n2, "r1");
        await cl.settleRooms([...all, M1.clients[0], M2.clients[0]]);
        await cl.settleRooms([M1.clients[1], M2.clients[1]], { nsp: "/custom" });

        const inR2 = all.filter((c) => c.rooms.includes("r2")); // b, c
        const rest = all.filter((c) => !c.rooms.includes("r2")); // a, d
        assert.deepEqual(await call(S.socket, "disconnect-sockets", { in: "r2", close: false }), [true]);
        for (const c of [...inR2, { name: `M1 / on ${n1}`, rec: M1.root.rec }]) {
          assert.equal(await c.rec.nextDisconnect({ timeout: 5000 }), "io server disconnect", `${c.name} disconnect reason`);
        }
        await fence(S, rest);
        for (const c of rest) {
          assert.deepEqual(c.rec.disconnects, [], `${c.name} stays connected`);
          assert.ok(c.socket.connected);
        }
        // close: false keeps M1's connection and its /custom socket
        assert.equal(M1.m.manager.engine.readyState, "open", "M1: connection kept (close: false)");
        assert.deepEqual(await call(M1.custom.socket, "message-with-ack", "still"), ["still"], "M1 /custom still works");
        assert.deepEqual(M1.custom.rec.disconnects, []);
        const ignore = new Set(cl.probeIds);
        await until(
          async () => JSON.stringify(normFetch(await fetchAll(S), ignore)) === JSON.stringify(expectFetch([...rest, M2.clients[0]])),
          { what: "fetch lists only the a and d clients and M2" },
        );

        // close: true on r1 (the a clients and M2): their whole connection closes
        const inR1 = rest.filter((c) => c.rooms.includes("r1"));
        const left = rest.filter((c) => !c.rooms.includes("r1"));
        assert.deepEqual(await call(S.socket, "disconnect-sockets", { in: ["r1"], close: true }), [true]);
        for (const c of [...inR1, { name: `M2 / on ${n2}`, rec: M2.root.rec }, { name: `M2 /custom on ${n2}`, rec: M2.custom.rec }]) {
          assert.equal(await c.rec.nextDisconnect({ timeout: 5000 }), "io server disconnect", `${c.name} disconnect reason`);
        }
        await until(() => M2.m.manager.engine.readyState === "closed", { what: "M2: connection closed" });
        await fence(S, left);
        for (const c of left) assert.deepEqual(c.rec.disconnects, [], `${c.name} stays connected`);
        assert.deepEqual(M1.custom.rec.disconnects, [], "M1 /custom untouched by close: true on r1");
        await until(
          async () => JSON.stringify(normFetch(await fetchAll(S), ignore)) === JSON.stringify(expectFetch(left)),
          { what: "fetch lists only the d clients" },
        );
      });

      test(`broadcast to a socket id on another node, from ${from} (${dir(from)})`, async (t) => {
        const cl = await start(t);
        const { all, by } = await layout(t, cl);
        const S = by[`${from}d`];
        for (const n of cl.names) {
          const target = by[`${n}b`];
          await call(S.socket, "broadcast", { to: target.id, event: "direct", args: [target.name] });
        }
        // several ids on several nodes, one excluded by id, others by room
        const to = [by.G1a.id, by.G2a.id, by.Na.id, by.Nc.id, by.G2c.id, by.G1d.id];
        await call(S.socket, "broadcast", { to, except: [by.Na.id, "r2"], event: "ids", args: [7] });
        await fence(S, all);
        await waitCounts(all, "direct", (c) => (c.name.endsWith("b") ? 1 : 0));
        for (const c of all) {
          assert.deepEqual(c.rec.of("direct"), c.name.endsWith("b") ? [[c.name]] : [], `${c.name}: "direct"`);
        }
        await assertDelivery(all, "ids", [7], ["G1a", "G2a", "G1d"]);
      });

      test(`order: one sender's broadcasts to different rooms arrive in send order, from ${from} (${dir(from)})`, async (t) => {
        const cl = await start(t);
        const { all, by } = await layout(t, cl);
        const S = by[`${from}d`];
        const targets = [{ to: "r1" }, { to: "r2" }, {}, { to: ["r1", "r2"] }, { to: "r1", except: "r2" }];
        const N = 60;
        const plan = [];
        for (let i = 0; i < N; i++) {
          const target = targets[i % targets.length];
          plan.push({ i, ...target });
          S.socket.emit("broadcast", { ...target, event: "seq", args: [i] });
        }
        await fence(S, all);
        const reaches = (c, p) => {
          const to = p.to === undefined ? [] : [].concat(p.to);
          const except = p.except === undefined ? [] : [].concat(p.except);
          return (to.length === 0 || to.some((r) => c.rooms.includes(r))) && !except.some((r) => c.rooms.includes(r));
        };
        const expected = {};
        for (const c of all) expected[c.name] = plan.filter((p) => reaches(c, p)).map((p) => p.i);
        await waitCounts(all, "seq", (c) => expected[c.name].length);
        const got = {};
        for (const c of all) got[c.name] = c.rec.of("seq").map((a) => a[0]);
        // first: every message arrived exactly once (order aside)
        const sorted = Object.fromEntries(Object.entries(got).map(([k, v]) => [k, [...v].sort((x, y) => x - y)]));
        assert.deepEqual(sorted, expected, "every numbered broadcast exactly once");
        // then: in the order the sender emitted them (as a single Node.js
        // server, and an all-Node cluster, deliver them)
        const outOfOrder = Object.keys(got).filter((k) => JSON.stringify(got[k]) !== JSON.stringify(expected[k]));
        assert.deepEqual(
          outOfOrder.map((k) => `${k}: ${got[k].join(",")}`),
          [],
          "clients that got one sender's broadcasts out of order",
        );
      });

      test(`order: a broadcast then disconnect-sockets: the clients get the broadcast before the disconnect, from ${from} (${dir(from)})`, async (t) => {
        const cl = await start(t);
        const { all, by } = await layout(t, cl);
        const S = by[`${from}d`];
        const inR2 = all.filter((c) => c.rooms.includes("r2"));
        const seen = new Map(); // name → events before the disconnect
        for (const c of inR2) c.socket.on("disconnect", () => seen.set(c.name, c.rec.of("bye").length));
        // back to back, no waiting in between: one sender, in this order
        S.socket.emit("broadcast", { event: "bye", args: ["see you"] });
        S.socket.emit("disconnect-sockets", { in: "r2", close: false });
        for (const c of inR2) assert.equal(await c.rec.nextDisconnect(), "io server disconnect", `${c.name}: reason`);
        const before = Object.fromEntries(inR2.map((c) => [c.name, seen.get(c.name)]));
        assert.deepEqual(before, Object.fromEntries(inR2.map((c) => [c.name, 1])), '"bye" received before the disconnect, per client');
      });

      test(`order: sockets-join then at once a broadcast to the room reaches the new members, from ${from} (${dir(from)})`, async (t) => {
        // Only where the reference (all-Node cluster) guarantees it: classic
        // (REMOTE_JOIN and the broadcast reach each other node over one
        // subscriber connection, in order) and sharded "static" (both on the
        // main channel). In the dynamic modes a node subscribes to a room's
        // channel only after the join, so Node.js misses it too. The sender's
        // own members are left out with the classic adapter: a Node.js sender
        // applies the join when its own request comes back from Redis, after
        // its local delivery of the broadcast.
        if (adapter === "redis-sharded" && shardedMode !== "static") {
          t.skip("no ordering guarantee in the dynamic modes (Node.js misses it too)");
          return;
        }
        const cl = await start(t);
        const { all, by } = await layout(t, cl);
        const S = by[`${from}d`];
        // The ack says the request is published (the Go testserver runs
        // SocketsJoin on a goroutine); the broadcast follows at once, without
        // waiting for the join to take effect anywhere.
        assert.deepEqual(await call(S.socket, "sockets-join", { in: "r1", room: "fresh" }), [true]);
        S.socket.emit("broadcast", { to: "fresh", event: "welcome", args: [1] });
        await fence(S, all);
        const judged = all.filter((c) => adapter === "redis-sharded" || c.node !== from);
        await assertDelivery(judged, "welcome", [1], namesWhere(judged, (r) => r.has("r1")));
      });

      test(`room names: numeric, unicode, '#', '*', spaces, from ${from} (${dir(from)})`, async (t) => {
        const cl = await start(t);
        const { all, by } = await layout(t, cl);
        const S = by[`${from}d`];
        const rooms = ["42", "комната✓", "a#b", "r*", "with space", "🎉"];
        // each room gets one member on every node: a clients join rooms[0..2], b clients rooms[3..5]
        for (const c of all) {
          const mine = c.name.endsWith("a") ? rooms.slice(0, 3) : c.name.endsWith("b") ? rooms.slice(3) : [];
          for (const r of mine) {
            assert.deepEqual(await call(c.socket, "join", r), [true]);
            c.rooms.push(r);
          }
        }
        await cl.settleRooms(all);
        for (const r of rooms) await call(S.socket, "broadcast", { to: r, event: "odd-room", args: [r] });
        await call(S.socket, "broadcast", { to: ["r*", "42"], except: "a#b", event: "odd-multi", args: [] });
        await fence(S, all);
        // (order across rooms is the "order" test's business: sorted here)
        await waitCounts(all, "odd-room", (c) => rooms.filter((r) => c.rooms.includes(r)).length);
        for (const c of all) {
          assert.deepEqual(
            c.rec.of("odd-room").map((a) => a[0]).sort(),
            rooms.filter((r) => c.rooms.includes(r)).sort(),
            `${c.name}: rooms with odd names`,
          );
        }
        await assertDelivery(all, "odd-multi", [], namesWhere(all, (r) => r.has("r*")));
        const ignore = new Set(cl.probeIds);
        assert.deepEqual(
          normFetch(await fetchAll(S, ["комната✓"]), ignore),
          expectFetch(all.filter((c) => c.rooms.includes("комната✓"))),
          "fetch of a unicode room",
        );
      });

      test(`ack responses: binary, only the first argument, no argument, from ${from} (${dir(from)})`, async (t) => {
        const cl = await start(t);
        const { all, by } = await layout(t, cl);
        const S = by[`${from}d`];
        for (const c of all) {
          c.socket.on("ask-bin", (cb) => cb({ from: c.name, bin: Buffer.from(c.name) }));
          c.socket.on("ask-two", (cb) => cb(c.name, "second"));
          c.socket.on("ask-none", (cb) => cb());
        }
        const r1 = all.filter((c) => c.rooms.includes("r1"));
        const [res] = await callT(S.socket, 15_000, "broadcast", { to: "r1", event: "ask-bin", args: [], ackTimeoutMs: 5000 });
        assert.equal(res.err, null, JSON.stringify(res));
        const got = [...res.responses].sort((x, y) => (x.from < y.from ? -1 : 1));
        for (const r of got) assert.ok(Buffer.isBuffer(r.bin), `binary in the response of ${r.from}: ${JSON.stringify(r)}`);
        assert.deepEqual(got, r1.map((c) => ({ from: c.name, bin: Buffer.from(c.name) })).sort((x, y) => (x.from < y.from ? -1 : 1)));

        const [res2] = await callT(S.socket, 15_000, "broadcast", { to: "r1", event: "ask-two", args: [], ackTimeoutMs: 5000 });
        assert.deepEqual({ ...res2, responses: [...res2.responses].sort() }, { err: null, responses: r1.map((c) => c.name).sort() });

        const [res3] = await callT(S.socket, 15_000, "broadcast", { to: "r2", event: "ask-none", args: [], ackTimeoutMs: 5000 });
        assert.deepEqual(res3, { err: null, responses: all.filter((c) => c.rooms.includes("r2")).map(() => null) });
      });

      test(`concurrent broadcasts with acks from every node get their own responses, from ${from} and the others`, async (t) => {
        const cl = await start(t);
        const { all, by } = await layout(t, cl);
        for (const c of all) c.socket.on("ask", (tag, cb) => cb(`${c.name}:${tag}`));
        const jobs = [];
        for (const n of [from, ...cl.names.filter((x) => x !== from)]) {
          for (let k = 0; k < 3; k++) {
            const tag = `${n}-${k}`;
            const room = ["r1", "r2", undefined][k];
            jobs.push(
              callT(by[`${n}d`].socket, 15_000, "broadcast", { to: room, event: "ask", args: [tag], ackTimeoutMs: 6000 }).then(([res]) => ({ tag, room, res })),
            );
          }
        }
        for (const { tag, room, res } of await Promise.all(jobs)) {
          assert.equal(res.err, null, `${tag}: ${JSON.stringify(res)}`);
          const want = all.filter((c) => room === undefined || c.rooms.includes(room)).map((c) => `${c.name}:${tag}`);
          const responses = res.responses.filter((r) => r !== PROBE_ACK);
          assert.deepEqual([...responses].sort(), want.sort(), `${tag}: its own responses only`);
        }
      });

      test(`server-side-emit with binary and unicode arguments, from ${from} (${dir(from)})`, async (t) => {
        const cl = await start(t);
        const { all, by } = await layout(t, cl);
        const S = by[`${from}d`];
        const remote = all.filter((c) => c.node !== from);
        S.socket.emit("server-side-emit", "sse-✓", "héllo✓", { n: [1.5, -3, 2 ** 40, null] }, Buffer.from([1, 2, 3]));
        await waitAll(remote, "server-side", "sse-✓");
        const show = (v) => (Buffer.isBuffer(v) ? `Buffer<${v.toString("hex")}>` : JSON.stringify(v));
        // The classic adapter carries server-side events as JSON: a Node.js
        // sender turns a Buffer into {type: "Buffer", data: [...]} (reference
        // behaviour of an all-Node cluster). Herald sends a server-side event
        // that carries binary as msgpack instead (adapter/redis/classic.go
        // requestFormat, on purpose; Node.js decodes requests in either
        // encoding), so the bytes arrive as bytes. The sharded adapter
        // switches to msgpack for binary on both implementations.
        const jsonForm = adapter === "redis" && cl.nodes[from].kind === "node";
        const wantBin = jsonForm ? { type: "Buffer", data: [1, 2, 3] } : Buffer.from([1, 2, 3]);
        const got = {};
        const want = {};
        for (const c of remote) {
          const evs = c.rec.of("server-side");
          assert.equal(evs.length, 1, `${c.name}: one server-side event`);
          const [ev] = evs;
          assert.deepEqual(ev.slice(0, 3), ["sse-✓", "héllo✓", { n: [1.5, -3, 2 ** 40, null] }], `${c.name}: text arguments`);
          got[c.name] = show(ev[3]);
          want[c.name] = show(wantBin);
        }
        assert.deepEqual(got, want, "binary argument of a server-side event, per client");
      });
    }

    test("fetch from every node returns the sockets of all nodes (ids, rooms, data)", async (t) => {
      const cl = await start(t);
      const { all, by } = await layout(t, cl);
      const ignore = new Set(cl.probeIds);
      for (const n of cl.names) {
        const via = by[`${n}d`];
        assert.deepEqual(normFetch(await fetchAll(via), ignore), expectFetch(all), `fetch {} via ${n}`);
        assert.deepEqual(
          normFetch(await fetchAll(via, ["r1"]), ignore),
          expectFetch(all.filter((c) => c.rooms.includes("r1"))),
          `fetch r1 via ${n}`,
        );
        assert.deepEqual(
          normFetch(await fetchAll(via, ["r1", "r2"]), ignore),
          expectFetch(all.filter((c) => c.rooms.includes("r1") || c.rooms.includes("r2"))),
          `fetch r1+r2 (no duplicates) via ${n}`,
        );
        assert.deepEqual(
          normFetch(await fetchAll(via, [by.G2b.id, by.Nc.id]), ignore),
          expectFetch([by.G2b, by.Nc]),
          `fetch by socket ids via ${n}`,
        );
        assert.deepEqual(await fetchAll(via, ["nobody"]), [], `fetch of an empty room via ${n}`);
        // raw shape: exactly {id, rooms, data}, no duplicates
        const raw = (await fetchAll(via)).filter((s) => !ignore.has(s.id));
        for (const s of raw) assert.deepEqual(Object.keys(s).sort(), ["data", "id", "rooms"], `entry keys via ${n}`);
        assert.equal(new Set(raw.map((s) => s.id)).size, raw.length, `no duplicate sockets via ${n}`);
      }
    });

    test("server-count is 3 on every node; whoami names the node", async (t) => {
      const cl = await start(t);
      const { by } = await layout(t, cl);
      for (const n of cl.names) {
        assert.deepEqual(await call(by[`${n}a`].socket, "server-count"), [3], `server-count via ${n}`);
        const [who] = await call(by[`${n}c`].socket, "whoami");
        assert.equal(who.id, by[`${n}c`].id);
        assert.equal(who.node, cl.nodes[n].nodeId);
        assert.deepEqual([...who.rooms].sort(), [by[`${n}c`].id, "r1", "r2"].sort());
      }
      // a fourth node (Go) joins: 4 everywhere; it leaves: 3 again
      const g3 = await startNode({ name: "G3", kind: "go", redisUrl: cl.redis.url, adapter, shardedMode, nodeId: "g3x" });
      t.after(() => g3.stop());
      for (const n of cl.names) {
        await until(async () => (await call(by[`${n}a`].socket, "server-count"))[0] === 4, { what: `server-count 4 via ${n}` });
      }
      await g3.stop();
      for (const n of cl.names) {
        await until(async () => (await call(by[`${n}a`].socket, "server-count"))[0] === 3, { what: `server-count 3 again via ${n}` });
      }
    });

    test("namespaces stay apart across nodes (/ and /custom)", async (t) => {
      const cl = await start(t);
      const root = await layout(t, cl);
      const custom = await layout(t, cl, { nsp: "/custom" });
      const everyone = [...root.all, ...custom.all];
      for (const from of ["G1", "N"]) {
        const S = custom.by[`${from}d`];
        await call(S.socket, "broadcast", { to: "r1", event: `c-${from}`, args: [from] });
        await fence(S, custom.all);
        await fence(root.by[`${from}d`], root.all);
        await assertDelivery(custom.all, `c-${from}`, [from], namesWhere(custom.all, (r) => r.has("r1")), "/custom");
        await assertDelivery(root.all, `c-${from}`, [from], [], "/ must not get /custom broadcasts");
      }
      const ignore = new Set(cl.probeIds);
      assert.deepEqual(normFetch(await fetchAll(custom.by.G2d), ignore), expectFetch(custom.all), "fetch in /custom");
      custom.by.Nd.socket.emit("server-side-emit", "csse", 1);
      await waitAll(custom.all.filter((c) => c.node !== "N"), "server-side", "csse");
      custom.by.G1d.socket.emit("server-side-emit", "cmark", 2);
      await waitAll(custom.all.filter((c) => c.node !== "G1"), "server-side", "cmark");
      for (const c of everyone) {
        const want = custom.all.includes(c) && c.node !== "N" ? [["csse", 1]] : [];
        assert.deepEqual(c.rec.of("server-side").filter((a) => a[0] === "csse"), want, `${c.name} ${custom.all.includes(c) ? "/custom" : "/"}`);
      }
    });
  });
}
