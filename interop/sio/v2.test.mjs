// socket.io-client 2.5.0 (npm alias "socket.io-client-v2": Socket.IO v4
// protocol over Engine.IO v3) against `testserver --mode sio --eio3`:
// connecting over polling, WebSocket and polling-then-upgrade, events, acks
// both ways, binary attachments, the /custom namespace, an unknown namespace,
// rooms, and a 2.x and a 4.x client in the same room.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  RELAXED,
  SETUPS,
  SETUP_NAMES,
  call,
  callV2,
  connect,
  createClientV2,
  nextEvent,
  sleep,
  until,
  useSioServer,
} from "../lib/sio.mjs";

const EIO3 = ["--eio3", ...RELAXED];

/** Waits until a 2.x socket has upgraded (upgrade setup) or checks its transport did not change. */
async function settleV2(socket, setupName) {
  const engine = socket.io.engine;
  if (setupName === "upgrade") {
    if (engine.transport.name !== "websocket") {
      await nextEvent(engine, "upgrade", { timeout: 5000, failOn: ["close", "upgradeError"] });
    }
    assert.equal(engine.transport.name, "websocket", "upgraded");
  } else {
    assert.equal(engine.transport.name, SETUPS[setupName].transports[0]);
  }
}

const EVENTS = ["auth", "message-back", "hi", "fence", "ask"];

const ARG_SETS = [
  ["hello"],
  [],
  [0, -1, 3.5, 1e21, 2 ** 53 - 1, true, false, null],
  [{ nested: { a: [1, { b: "c" }], e: {} }, arr: [] }],
  ["é", "日本語", "😀👍🏽", "\u2028", 'q"b\\s', "\n"],
  [1, "2", { three: 3 }, [4], null, true, 7.5, "eight", { nine: [9] }, "ten"],
];

for (const name of SETUP_NAMES) {
  const setup = SETUPS[name];
  const v2 = async (t, url, opts) => {
    const c = createClientV2(t, url, setup, opts);
    c.rec.record(...EVENTS); // before "connect": "auth" can arrive in the same payload
    await c.connected;
    return c;
  };

  describe(`socket.io-client 2.x, --eio3 (${name})`, { timeout: 60_000 }, () => {
    test("connect: id, auth {}, whoami; message → message-back; acks", async (t) => {
      const srv = await useSioServer(t, { args: EIO3 });
      const c = createClientV2(t, srv.url, setup);
      c.rec.record(...EVENTS);
      await c.connected;
      const id = c.socket.id;
      assert.equal(typeof id, "string");
      assert.ok(id.length >= 8);
      assert.deepEqual(await c.next("auth"), [{}]);
      const [who] = await callV2(c.socket, "whoami");
      assert.equal(who.id, id);
      assert.deepEqual(who.rooms, [id]);

      for (const args of ARG_SETS) c.socket.emit("message", ...args);
      for (let i = 0; i < ARG_SETS.length; i++) {
        assert.deepEqual(await c.next("message-back"), ARG_SETS[i], `argument set ${i}`);
      }
      for (let i = 0; i < ARG_SETS.length; i++) {
        assert.deepEqual(await callV2(c.socket, "message-with-ack", ...ARG_SETS[i]), ARG_SETS[i], `ack ${i}`);
      }
      const many = await Promise.all(Array.from({ length: 30 }, (_, i) => callV2(c.socket, "message-with-ack", i)));
      assert.deepEqual(many, Array.from({ length: 30 }, (_, i) => [i]));

      await settleV2(c.socket, name);
      c.socket.emit("message", "after", 1);
      assert.deepEqual(await c.next("message-back"), ["after", 1]);
      assert.deepEqual(await callV2(c.socket, "message-with-ack", "after"), ["after"]);
      assert.equal(c.socket.id, id);
      assert.equal(c.rec.of("message-back").length, ARG_SETS.length + 1);
    });

    test("binary in nested arguments, events and acks", async (t) => {
      const srv = await useSioServer(t, { args: EIO3 });
      const c = await v2(t, srv.url);
      const payload = { a: [Buffer.from([1, 2, 3]), { b: new Uint8Array([4]) }] };
      const expected = { a: [Buffer.from([1, 2, 3]), { b: Buffer.from([4]) }] };
      const big = Buffer.alloc(50_000, 9);
      const check = async (when) => {
        c.socket.emit("message", payload, "text", Buffer.alloc(0));
        const [got, text, empty] = await c.next("message-back");
        assert.deepEqual(got, expected, when);
        assert.ok(Buffer.isBuffer(got.a[0]) && Buffer.isBuffer(got.a[1].b), `Buffers ${when}`);
        assert.equal(text, "text");
        assert.ok(Buffer.isBuffer(empty) && empty.length === 0, `empty Buffer ${when}`);
        c.socket.emit("message", big);
        const [x] = await c.next("message-back");
        assert.ok(Buffer.isBuffer(x) && x.equals(big), `50 kB attachment ${when}`);
        assert.deepEqual(await callV2(c.socket, "message-with-ack", payload, 2), [expected, 2], when);
      };
      await check("first");
      await settleV2(c.socket, name);
      await check("after settling");
    });

    test("server → client acks via broadcast", async (t) => {
      const srv = await useSioServer(t, { args: EIO3 });
      const a = await v2(t, srv.url);
      const b = await v2(t, srv.url);
      a.socket.on("ask", (x, cb) => cb({ from: "A", x }));
      b.socket.on("ask", (x, cb) => cb({ from: "B", x }));
      await settleV2(a.socket, name);
      const [res] = await callV2(a.socket, "broadcast", { event: "ask", args: [5], ackTimeoutMs: 4000 });
      assert.equal(res.err, null);
      assert.deepEqual(
        [...res.responses].sort((p, q) => p.from.localeCompare(q.from)),
        [{ from: "A", x: 5 }, { from: "B", x: 5 }],
      );
    });

    test("/custom namespace: auth {}, id, events, acks", async (t) => {
      const srv = await useSioServer(t, { args: EIO3 });
      const c = await v2(t, `${srv.url}/custom`);
      assert.deepEqual(await c.next("auth"), [{}]);
      assert.match(c.socket.id, /^\/custom#./, "2.x socket ids carry the namespace");
      const [who] = await callV2(c.socket, "whoami");
      assert.equal(who.id, c.socket.id);
      c.socket.emit("message", "custom", { n: [1] });
      assert.deepEqual(await c.next("message-back"), ["custom", { n: [1] }]);
      assert.deepEqual(await callV2(c.socket, "message-with-ack", "c"), ["c"]);
      const [list] = await callV2(c.socket, "fetch", {});
      assert.deepEqual(list.map((s) => s.id), [c.socket.id]);
      await settleV2(c.socket, name);
      assert.deepEqual(await callV2(c.socket, "message-with-ack", "c2"), ["c2"]);
    });

    test('an unknown namespace gives an "error" event "Invalid namespace"', async (t) => {
      const srv = await useSioServer(t, { args: EIO3 });
      const c = createClientV2(t, `${srv.url}/nope`, setup);
      const [err] = await nextEvent(c.socket, "error", { timeout: 5000, failOn: ["connect"] });
      // socket.io 2.x servers send the string, the socket.io 4 server (allowEIO3) the object
      assert.ok(
        err === "Invalid namespace" || (typeof err === "object" && err?.message === "Invalid namespace" && Object.keys(err).length === 1),
        `error event: ${JSON.stringify(err)}`,
      );
      assert.equal(c.socket.connected, false);
      const ok = await v2(t, srv.url);
      assert.deepEqual(await callV2(ok.socket, "message-with-ack", 1), [1]);
    });

    test("rooms: a 2.x and a 4.x client in the same room", async (t) => {
      const srv = await useSioServer(t, { args: EIO3 });
      const old = await v2(t, srv.url);
      const cur = await connect(t, srv.url, setup);
      const other = await v2(t, srv.url);
      assert.deepEqual(await callV2(old.socket, "join", "mixed"), [true]);
      assert.deepEqual(await call(cur.socket, "join", "mixed"), [true]);
      assert.deepEqual(await call(cur.socket, "broadcast", { to: "mixed", event: "hi", args: [1, { two: [2] }] }), [true]);
      assert.deepEqual(await callV2(other.socket, "broadcast", { event: "fence", args: [] }), [true]);
      assert.deepEqual(await old.next("hi"), [1, { two: [2] }]);
      assert.deepEqual(await cur.next("hi"), [1, { two: [2] }]);
      await other.next("fence");
      await old.next("fence");
      await cur.next("fence");
      assert.deepEqual(other.rec.of("hi"), []);
      assert.deepEqual(old.rec.of("hi"), [[1, { two: [2] }]]);
      assert.deepEqual(cur.rec.of("hi"), [[1, { two: [2] }]]);
      const [list] = await call(cur.socket, "fetch", { rooms: "mixed" });
      assert.deepEqual(list.map((s) => s.id).sort(), [old.socket.id, cur.socket.id].sort());
      // leave
      await callV2(old.socket, "leave", "mixed");
      await callV2(other.socket, "broadcast", { to: "mixed", event: "hi", args: [3] });
      await until(() => cur.rec.of("hi").length === 2, { what: "second hi" });
      await callV2(other.socket, "broadcast", { event: "fence", args: [] });
      await old.rec.waitFor("fence", 2);
      assert.deepEqual(old.rec.of("hi"), [[1, { two: [2] }]]);
    });

    test('client close → server forgets it; server disconnect → "io server disconnect"', async (t) => {
      const srv = await useSioServer(t, { args: EIO3 });
      const a = await v2(t, srv.url);
      const b = await v2(t, srv.url);
      const watcher = await connect(t, srv.url, SETUPS.websocket);
      await settleV2(a.socket, name);
      const aId = a.socket.id;
      a.socket.close();
      await until(async () => !(await call(watcher.socket, "fetch", {}))[0].some((s) => s.id === aId), { what: "a gone" });
      const disc = nextEvent(b.socket, "disconnect", { timeout: 5000 });
      assert.deepEqual(await call(watcher.socket, "disconnect-sockets", { in: b.socket.id, close: false }), [true]);
      assert.deepEqual(await disc, ["io server disconnect"]);
      await sleep(100);
      const [list] = await call(watcher.socket, "fetch", {});
      assert.deepEqual(list.map((s) => s.id), [watcher.socket.id]);
    });
  });
}
