// socket.io-client 4.8.4 against `testserver --mode sio`: rooms and except,
// fetch, whoami, server-count, sockets-join / sockets-leave and
// disconnect-sockets (close false and true). Each scenario runs over
// WebSocket only, polling only, and the default (polling, then upgrade).
//
// "X does not receive E" is checked with a fence: after E, the same sender
// broadcasts a "fence" event to everyone; a client's events arrive in the
// order the server emitted them, so once a client has the fence, E would have
// arrived before it.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  SETUPS,
  SETUP_NAMES,
  call,
  connect,
  connectManager,
  fetchIds,
  settleTransport,
  sleep,
  until,
  useSioServer,
} from "../lib/sio.mjs";

let fences = 0;
/** Broadcasts a fence from `sender` and waits until every client in `clients` has it. */
async function fence(sender, clients) {
  const id = ++fences;
  assert.deepEqual(await call(sender.socket, "broadcast", { event: "fence", args: [id] }), [true]);
  for (const c of clients) {
    await until(() => c.rec.of("fence").some((a) => a[0] === id), { what: `fence ${id}` });
  }
}

/** Values (first argument) of every `event` a client got. */
const got = (c, event) => c.rec.of(event).map((a) => a[0]);

async function three(t, url, name) {
  const setup = SETUPS[name];
  const cs = await Promise.all([connect(t, url, setup), connect(t, url, setup), connect(t, url, setup)]);
  for (const c of cs) await settleTransport(c.socket, name);
  return cs;
}

for (const name of SETUP_NAMES) {
  const setup = SETUPS[name];

  describe(`rooms and server queries (${name})`, { timeout: 60_000 }, () => {
    test("to, except, several rooms without duplicates, leave", async (t) => {
      const srv = await useSioServer(t);
      const [A, B, C] = await three(t, srv.url, name);
      const all = [A, B, C];
      assert.deepEqual(await call(A.socket, "join", "r1"), [true]);
      assert.deepEqual(await call(B.socket, "join", "r1"), [true]);

      await call(C.socket, "broadcast", { to: "r1", event: "hi", args: [1] });
      await fence(C, all);
      assert.deepEqual([got(A, "hi"), got(B, "hi"), got(C, "hi")], [[1], [1], []]);
      assert.deepEqual(A.rec.of("hi"), [[1]], "exact arguments");

      // except r1: only C (the sender is not excluded from a namespace broadcast)
      await call(A.socket, "broadcast", { except: "r1", event: "ex", args: ["only C"] });
      await fence(A, all);
      assert.deepEqual([got(A, "ex"), got(B, "ex"), got(C, "ex")], [[], [], ["only C"]]);

      // several rooms: once per socket
      await call(A.socket, "join", "r2");
      await call(C.socket, "join", "r2");
      await call(B.socket, "broadcast", { to: ["r1", "r2"], event: "multi", args: [2] });
      await fence(B, all);
      assert.deepEqual([got(A, "multi"), got(B, "multi"), got(C, "multi")], [[2], [2], [2]]);

      // to r2 except r1: C only; to r1 except a socket id room
      await call(B.socket, "broadcast", { to: "r2", except: "r1", event: "te", args: [3] });
      await call(B.socket, "broadcast", { to: "r1", except: A.socket.id, event: "te", args: [4] });
      await fence(B, all);
      assert.deepEqual([got(A, "te"), got(B, "te"), got(C, "te")], [[], [4], [3]]);

      // a socket id is a room
      await call(A.socket, "broadcast", { to: C.socket.id, event: "direct", args: ["to C"] });
      await fence(A, all);
      assert.deepEqual([got(A, "direct"), got(B, "direct"), got(C, "direct")], [[], [], ["to C"]]);

      // leave
      assert.deepEqual(await call(A.socket, "leave", "r1"), [true]);
      await call(C.socket, "broadcast", { to: "r1", event: "after-leave", args: [5] });
      await fence(C, all);
      assert.deepEqual([got(A, "after-leave"), got(B, "after-leave"), got(C, "after-leave")], [[], [5], []]);
      // leaving a room one is not in is harmless
      assert.deepEqual(await call(C.socket, "leave", "never-joined"), [true]);

      // everyone, no room: each exactly once
      await call(C.socket, "broadcast", { event: "all", args: [{ x: [1] }, "two"] });
      await fence(C, all);
      for (const c of all) assert.deepEqual(c.rec.of("all"), [[{ x: [1] }, "two"]]);
      // nothing unexpected arrived, nothing twice
      assert.deepEqual(A.rec.all.map((e) => e.event).filter((e) => e !== "fence"), ["auth", "hi", "multi", "all"]);
      assert.deepEqual(B.rec.all.map((e) => e.event).filter((e) => e !== "fence"), ["auth", "hi", "multi", "te", "after-leave", "all"]);
      assert.deepEqual(C.rec.all.map((e) => e.event).filter((e) => e !== "fence"), ["auth", "ex", "multi", "te", "direct", "all"]);
    });

    test("fetch, whoami, server-count", async (t) => {
      const srv = await useSioServer(t);
      const [A, B, C] = await three(t, srv.url, name);
      await call(A.socket, "join", "r1");
      await call(A.socket, "join", "r2");
      await call(B.socket, "join", "r2");

      const [whoA] = await call(A.socket, "whoami");
      assert.equal(whoA.id, A.socket.id);
      assert.deepEqual([...whoA.rooms].sort(), [A.socket.id, "r1", "r2"].sort());
      assert.equal(typeof whoA.node, "string");
      assert.ok(whoA.node.length > 0);
      const [whoC] = await call(C.socket, "whoami");
      assert.deepEqual(whoC, { id: C.socket.id, node: whoA.node, rooms: [C.socket.id] });

      assert.deepEqual(await call(A.socket, "server-count"), [1]);

      const [list] = await call(C.socket, "fetch", {});
      const byId = Object.fromEntries(list.map((s) => [s.id, s]));
      assert.equal(list.length, 3);
      assert.deepEqual(Object.keys(byId).sort(), [A.socket.id, B.socket.id, C.socket.id].sort());
      assert.deepEqual([...byId[A.socket.id].rooms].sort(), [A.socket.id, "r1", "r2"].sort());
      assert.deepEqual([...byId[B.socket.id].rooms].sort(), [B.socket.id, "r2"].sort());
      assert.deepEqual(byId[C.socket.id].rooms, [C.socket.id]);
      for (const s of list) assert.equal(s.data, null, "the testserver sets no socket data");

      assert.deepEqual(await fetchIds(C.socket, "r1"), [A.socket.id]);
      assert.deepEqual(await fetchIds(C.socket, "r2"), [A.socket.id, B.socket.id].sort());
      assert.deepEqual(await fetchIds(C.socket, ["r1", "r2"]), [A.socket.id, B.socket.id].sort());
      assert.deepEqual(await fetchIds(C.socket, "nobody"), []);
      assert.deepEqual(await fetchIds(A.socket, C.socket.id), [C.socket.id]);

      // a socket that leaves disappears from fetch
      B.socket.disconnect();
      await until(async () => (await fetchIds(C.socket)).length === 2, { what: "B gone from fetch" });
      assert.deepEqual(await fetchIds(C.socket), [A.socket.id, C.socket.id].sort());
      assert.deepEqual(await fetchIds(C.socket, "r2"), [A.socket.id]);
    });

    test("sockets-join / sockets-leave, then broadcast to the room", async (t) => {
      const srv = await useSioServer(t);
      const [A, B, C] = await three(t, srv.url, name);
      const all = [A, B, C];
      await call(A.socket, "join", "src");
      await call(B.socket, "join", "src");

      // everyone joins "everyone"
      assert.deepEqual(await call(C.socket, "sockets-join", { room: "everyone" }), [true]);
      assert.deepEqual(await fetchIds(C.socket, "everyone"), [A.socket.id, B.socket.id, C.socket.id].sort());
      // the sockets in "src" join "dst"
      assert.deepEqual(await call(C.socket, "sockets-join", { in: "src", room: "dst" }), [true]);
      assert.deepEqual(await fetchIds(C.socket, "dst"), [A.socket.id, B.socket.id].sort());
      const [whoA] = await call(A.socket, "whoami");
      assert.deepEqual([...whoA.rooms].sort(), [A.socket.id, "dst", "everyone", "src"].sort());

      await call(C.socket, "broadcast", { to: "dst", event: "d", args: [1] });
      await fence(C, all);
      assert.deepEqual([got(A, "d"), got(B, "d"), got(C, "d")], [[1], [1], []]);

      // B (by its id room) leaves "dst"
      assert.deepEqual(await call(C.socket, "sockets-leave", { in: B.socket.id, room: "dst" }), [true]);
      assert.deepEqual(await fetchIds(C.socket, "dst"), [A.socket.id]);
      await call(C.socket, "broadcast", { to: "dst", event: "d", args: [2] });
      await fence(C, all);
      assert.deepEqual([got(A, "d"), got(B, "d"), got(C, "d")], [[1, 2], [1], []]);

      // everyone leaves "everyone"
      assert.deepEqual(await call(A.socket, "sockets-leave", { room: "everyone" }), [true]);
      assert.deepEqual(await fetchIds(C.socket, "everyone"), []);
      await call(C.socket, "broadcast", { to: "everyone", event: "e", args: [3] });
      await fence(C, all);
      for (const c of all) assert.deepEqual(got(c, "e"), []);
    });

    test("disconnect-sockets with close false: that namespace only, reason \"io server disconnect\"", async (t) => {
      const srv = await useSioServer(t);
      const a = await connectManager(t, srv.url, setup, ["/", "/custom"]);
      const b = await connect(t, srv.url, setup);
      const aMain = a.sockets["/"];
      const aCustom = a.sockets["/custom"];
      await settleTransport(aMain.socket, name);
      const aId = aMain.socket.id;

      assert.deepEqual(await call(b.socket, "disconnect-sockets", { in: aId, close: false }), [true]);
      assert.equal(await aMain.rec.nextDisconnect(), "io server disconnect");
      assert.equal(aMain.socket.connected, false);
      assert.equal(aMain.socket.active, false, "no reconnection after a server disconnect");
      // /custom on the same connection is untouched
      assert.deepEqual(await call(aCustom.socket, "message-with-ack", "still"), ["still"]);
      assert.equal(aCustom.rec.disconnects.length, 0);
      assert.equal(a.manager.engine.readyState, "open");
      // the server forgot the socket; b is unaffected
      assert.deepEqual(await fetchIds(b.socket), [b.socket.id]);
      assert.equal(b.rec.disconnects.length, 0);
      // a disconnect-sockets for a room nobody is in does nothing
      assert.deepEqual(await call(b.socket, "disconnect-sockets", { in: "nobody", close: false }), [true]);
      assert.deepEqual(await call(b.socket, "message-with-ack", "b ok"), ["b ok"]);
      assert.equal(b.rec.disconnects.length, 0);
    });

    test("disconnect-sockets with close true: the whole connection closes", async (t) => {
      const srv = await useSioServer(t);
      const a = await connectManager(t, srv.url, setup, ["/", "/custom"]);
      const b = await connect(t, srv.url, setup);
      const bCustom = await connect(t, `${srv.url}/custom`, setup);
      const aMain = a.sockets["/"];
      const aCustom = a.sockets["/custom"];
      await settleTransport(aMain.socket, name);
      const aCustomId = aCustom.socket.id;
      const closed = new Promise((resolve) => a.manager.once("close", resolve));

      assert.deepEqual(await call(b.socket, "disconnect-sockets", { in: aMain.socket.id, close: true }), [true]);
      assert.equal(await aMain.rec.nextDisconnect(), "io server disconnect");
      assert.equal(await aCustom.rec.nextDisconnect(), "io server disconnect");
      await Promise.race([closed, sleep(5000).then(() => assert.fail("connection not closed"))]);
      await sleep(200);
      // one disconnect each (the official client reports "transport close" first, then
      // "io server disconnect", if the Engine.IO close packet arrives in the same polling
      // payload as the DISCONNECT packets: the Node.js server sends it only after they drain)
      assert.deepEqual(aMain.rec.disconnects, ["io server disconnect"]);
      assert.deepEqual(aCustom.rec.disconnects, ["io server disconnect"]);
      assert.equal(aMain.socket.active, false);
      assert.equal(aCustom.socket.active, false);
      // both namespaces' sockets are gone on the server; b's are untouched
      assert.deepEqual(await fetchIds(b.socket), [b.socket.id]);
      await until(async () => !(await fetchIds(bCustom.socket)).includes(aCustomId), { what: "/custom socket gone" });
      assert.deepEqual(await fetchIds(bCustom.socket), [bCustom.socket.id]);
      assert.deepEqual(await call(b.socket, "message-with-ack", "b ok"), ["b ok"]);
      assert.equal(b.rec.disconnects.length + bCustom.rec.disconnects.length, 0);
    });

    test("disconnect-sockets for everyone, the sender included", async (t) => {
      const srv = await useSioServer(t);
      const [A, B, C] = await three(t, srv.url, name);
      assert.deepEqual(await call(A.socket, "disconnect-sockets", { close: false }), [true]);
      for (const c of [A, B, C]) assert.equal(await c.rec.nextDisconnect(), "io server disconnect");
      const d = await connect(t, srv.url, setup);
      assert.deepEqual(await fetchIds(d.socket), [d.socket.id]);
    });
  });
}
