// @socket.io/redis-emitter 5.1.0 (Node) driving a mixed classic-adapter
// cluster: two Go testservers (`--adapter redis`) and one Node.js socket.io
// 4.8.4 node (createAdapter), on one redis-server started for this file.
// Clients on the Herald nodes and on the Node node receive what the emitter
// sends: to all, to rooms with except, to socket ids, binary, serverSideEmit,
// socketsJoin/socketsLeave, disconnectSockets, another namespace.
// (The emitter cannot drive the sharded adapter upstream: it PUBLISHes, the
// sharded adapter SSUBSCRIBEs; see reference/cluster-wire-protocols.md §2.)
//
// Absence is checked with a fence the emitter sends after the event under
// test (one publisher, one channel pattern: every node sees them in order).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Emitter } from "@socket.io/redis-emitter";
import { useRedis, useCluster, fetchAll } from "../lib/cluster.mjs";
import { layout, assertDelivery, namesWhere, waitAll, normFetch, expectFetch } from "../lib/cluster-scenarios.mjs";
import { call, connectManager, until } from "../lib/sio.mjs";

const redis = useRedis();

async function setup(t) {
  const cl = await useCluster(t, redis, { adapter: "redis" });
  const client = await cl.redis.newClient();
  t.after(() => client.quit().catch(() => {}));
  const emitter = new Emitter(client);
  const { all, by } = await layout(t, cl);
  let n = 0;
  /** emitter.emit("fence", id) (or via `em`), then waits until `clients` got it. */
  const fence = async (clients = all, em = emitter) => {
    const id = `efence-${++n}`;
    em.emit("fence", id);
    await waitAll(clients, "fence", id);
  };
  return { cl, emitter, all, by, fence, ignore: new Set(cl.probeIds) };
}

const ARGS = [{ a: 1 }, "héllo✓", 1.5, -3, 300, null, [true, { k: [null] }], "", 2 ** 40];

describe("@socket.io/redis-emitter → classic cluster (G1, G2 Go + N Node)", { timeout: 90_000, skip: redis.skip || undefined }, () => {
  test("emit to all reaches every client on all 3 nodes exactly once", async (t) => {
    const { emitter, all, fence } = await setup(t);
    emitter.emit("from-emitter", ...ARGS);
    emitter.volatile.emit("em-volatile", 1);
    emitter.compress(false).emit("em-nocompress", 2);
    await fence();
    await assertDelivery(all, "from-emitter", ARGS, all.map((c) => c.name));
    await assertDelivery(all, "em-nocompress", [2], all.map((c) => c.name));
    for (const c of all) {
      // volatile: dropped when the transport is busy (Node drops it too), so at most once
      const events = c.rec.all.map((e) => e.event).filter((e) => e !== "em-volatile");
      assert.deepEqual(events, ["auth", "from-emitter", "em-nocompress", "fence"], `${c.name}: in order`);
      assert.ok(c.rec.of("em-volatile").length <= 1, `${c.name}: volatile at most once`);
      for (const args of c.rec.of("em-volatile")) assert.deepEqual(args, [1]);
    }
  });

  test("to a room, several rooms, except, socket ids", async (t) => {
    const { emitter, all, by, fence } = await setup(t);
    emitter.to("r1").emit("em-room", "y");
    emitter.to("r1").to("r2").emit("em-multi", 2);
    emitter.to(["r1", "r2"]).except("r3").emit("em-multi2", 3);
    emitter.to("r1").except("r2").emit("em-ex", 4);
    emitter.except("r1").emit("em-not-r1", 5);
    emitter.to("r2").except([by.G1c.id, by.Nb.id]).emit("em-ex-ids", 6);
    for (const c of [by.G1b, by.G2c, by.Na]) emitter.to(c.id).emit("em-direct", c.name);
    emitter.to([by.G2a.id, by.Nd.id, by.G1d.id]).except(by.G1d.id).emit("em-ids", 7);
    await fence();
    await assertDelivery(all, "em-room", ["y"], namesWhere(all, (r) => r.has("r1")));
    await assertDelivery(all, "em-multi", [2], namesWhere(all, (r) => r.has("r1") || r.has("r2")));
    await assertDelivery(all, "em-multi2", [3], namesWhere(all, (r) => r.has("r1") || r.has("r2")));
    await assertDelivery(all, "em-ex", [4], namesWhere(all, (r) => r.has("r1") && !r.has("r2")));
    await assertDelivery(all, "em-not-r1", [5], namesWhere(all, (r) => !r.has("r1")));
    await assertDelivery(all, "em-ex-ids", [6], all.filter((c) => c.rooms.includes("r2") && c !== by.G1c && c !== by.Nb).map((c) => c.name));
    for (const c of all) {
      assert.deepEqual(c.rec.of("em-direct"), ["G1b", "G2c", "Na"].includes(c.name) ? [[c.name]] : [], `${c.name}: em-direct`);
    }
    await assertDelivery(all, "em-ids", [7], ["G2a", "Nd"]);
  });

  test("binary arguments (Buffers) reach every node intact", async (t) => {
    const { emitter, all, by, fence } = await setup(t);
    const big = Buffer.alloc(70_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 13) & 0xff;
    const args = [Buffer.from([1, 2, 3]), { d: Buffer.from("héllo"), list: [Buffer.alloc(0), 5] }, big];
    emitter.emit("em-bin", ...args);
    emitter.to(by.G2b.id).emit("em-bin1", Buffer.from([0xff, 0, 0x80]));
    await fence();
    for (const c of all) {
      const got = c.rec.of("em-bin");
      assert.equal(got.length, 1, `${c.name}: one em-bin`);
      assert.ok(Buffer.isBuffer(got[0][0]) && Buffer.isBuffer(got[0][1].d) && Buffer.isBuffer(got[0][2]), `${c.name}: Buffers`);
      assert.deepEqual(got[0], args, `${c.name}: exact payload`);
    }
    await assertDelivery(all, "em-bin1", [Buffer.from([0xff, 0, 0x80])], ["G2b"]);
  });

  test("serverSideEmit reaches every node (server-side to all their clients)", async (t) => {
    const { emitter, all } = await setup(t);
    emitter.serverSideEmit("em-sse", 1, "two", { three: [3] });
    emitter.serverSideEmit("em-mark");
    await waitAll(all, "server-side", "em-mark");
    for (const c of all) {
      assert.deepEqual(
        c.rec.of("server-side"),
        [["em-sse", 1, "two", { three: [3] }], ["em-mark"]],
        `${c.name}: server-side events, once each, in order`,
      );
    }
  });

  test("socketsJoin / socketsLeave on every node, then broadcast to the room", async (t) => {
    const { cl, emitter, all, by, fence, ignore } = await setup(t);
    const ids = (cs) => cs.map((c) => c.id).sort();
    const idsVia = async (c, rooms) => normFetch(await fetchAll(c, rooms), ignore).map((s) => s.id);
    const r1 = all.filter((c) => c.rooms.includes("r1"));
    const r2 = all.filter((c) => c.rooms.includes("r2"));
    emitter.in("r1").socketsJoin("r3");
    emitter.in("r2").except("r1").socketsJoin(["x1", "x2"]);
    for (const via of [by.G1d, by.G2d, by.Nd]) {
      await until(async () => JSON.stringify(await idsVia(via, ["r3"])) === JSON.stringify(ids(r1)), {
        what: `r3 = r1 via ${via.name}`,
      });
    }
    const x = r2.filter((c) => !c.rooms.includes("r1"));
    await until(async () => JSON.stringify(await idsVia(by.G2d, ["x2"])) === JSON.stringify(ids(x)), { what: "x2" });
    assert.deepEqual(await idsVia(by.Nd, ["x1"]), ids(x));
    for (const c of r1) c.rooms.push("r3");
    for (const c of x) c.rooms.push("x1", "x2");
    await cl.settleRooms(all);
    emitter.to("r3").emit("em-r3", 1);
    emitter.to("x1").emit("em-x1", 2);
    await fence();
    await assertDelivery(all, "em-r3", [1], ids(r1).map((id) => all.find((c) => c.id === id).name));
    await assertDelivery(all, "em-x1", [2], x.map((c) => c.name));
    const [who] = await call(by.G2c.socket, "whoami");
    assert.deepEqual([...who.rooms].sort(), [by.G2c.id, "r1", "r2", "r3"].sort());

    emitter.in("r3").socketsLeave("r3");
    for (const via of [by.G1d, by.G2d, by.Nd]) {
      await until(async () => (await idsVia(via, ["r3"])).length === 0, { what: `r3 empty via ${via.name}` });
    }
    emitter.to("r3").emit("em-r3-after", 3);
    await fence();
    await assertDelivery(all, "em-r3-after", [3], []);
    // the other rooms are untouched
    assert.deepEqual(normFetch(await fetchAll(by.G1d, ["r1"]), ignore), expectFetch(r1.map((c) => ({ ...c, rooms: c.rooms.filter((r) => r !== "r3") }))));
  });

  test("disconnectSockets (close false, then true) on every node", async (t) => {
    const { cl, emitter, all, fence, ignore, by } = await setup(t);
    // a connection with "/" and "/custom" on each Go node: M1 on G1 ("/" in
    // r2), M2 on G2 ("/" in r1)
    const manager = async (node, room) => {
      const m = await connectManager(t, cl.nodes[node].url, { transports: ["websocket"] }, ["/", "/custom"]);
      assert.deepEqual(await call(m.sockets["/"].socket, "join", room), [true]);
      return { m, root: m.sockets["/"], custom: m.sockets["/custom"] };
    };
    const M1 = await manager("G1", "r2");
    const M2 = await manager("G2", "r1");
    const inR2 = all.filter((c) => c.rooms.includes("r2"));
    const rest = all.filter((c) => !c.rooms.includes("r2"));
    emitter.in("r2").disconnectSockets();
    for (const c of [...inR2, { name: "M1 /", rec: M1.root.rec }]) {
      assert.equal(await c.rec.nextDisconnect(), "io server disconnect", `${c.name}: reason`);
    }
    await fence(rest);
    for (const c of rest) assert.deepEqual(c.rec.disconnects, [], `${c.name} stays connected`);
    assert.equal(M1.m.manager.engine.readyState, "open", "close: false keeps M1's connection");
    assert.deepEqual(await call(M1.custom.socket, "message-with-ack", 1), [1]);
    const root = (m) => ({ id: m.root.socket.id, rooms: [m.root.socket.id, "r1"], data: null });
    await until(async () => JSON.stringify(normFetch(await fetchAll(by.Nd), ignore)) === JSON.stringify(expectFetch([...rest, root(M2)])), {
      what: "fetch: a, d and M2 left",
    });

    const inR1 = rest.filter((c) => c.rooms.includes("r1"));
    const left = rest.filter((c) => !c.rooms.includes("r1"));
    emitter.in("r1").disconnectSockets(true);
    for (const c of [...inR1, { name: "M2 /", rec: M2.root.rec }, { name: "M2 /custom", rec: M2.custom.rec }]) {
      assert.equal(await c.rec.nextDisconnect(), "io server disconnect", `${c.name}: reason`);
    }
    await until(() => M2.m.manager.engine.readyState === "closed", { what: "M2 connection closed" });
    await fence(left);
    for (const c of left) assert.deepEqual(c.rec.disconnects, [], `${c.name} stays connected`);
    assert.deepEqual(M1.custom.rec.disconnects, []);
    await until(async () => JSON.stringify(normFetch(await fetchAll(by.G2d), ignore)) === JSON.stringify(expectFetch(left)), {
      what: "fetch: only d left",
    });
  });

  test("of('/custom'): only that namespace's clients, on every node", async (t) => {
    const { cl, emitter, all, fence } = await setup(t);
    const custom = await layout(t, cl, { nsp: "/custom" });
    const cem = emitter.of("/custom");
    cem.to("r1").emit("em-custom", "c");
    cem.serverSideEmit("em-custom-sse", 1);
    await fence(custom.all, cem);
    await fence(all);
    await assertDelivery(custom.all, "em-custom", ["c"], namesWhere(custom.all, (r) => r.has("r1")), "/custom");
    await assertDelivery(all, "em-custom", ["c"], [], "/");
    for (const c of custom.all) assert.deepEqual(c.rec.of("server-side"), [["em-custom-sse", 1]], `${c.name} /custom server-side`);
    for (const c of all) assert.deepEqual(c.rec.of("server-side"), [], `${c.name} / server-side`);
  });
});
