// socket.io-client 4.8.4 against `testserver --mode sio`: events both ways,
// acknowledgements both ways (including timeouts and broadcast acks with
// partial answers), binary attachments in nested arguments, volatile emits.
// Each scenario runs over WebSocket only, polling only, and the default
// (polling, then upgrade).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  SETUPS,
  SETUP_NAMES,
  call,
  connect,
  settleTransport,
  sleep,
  until,
  useSioServer,
  withTimeout,
} from "../lib/sio.mjs";

/** Argument lists sent with "message"; each must come back unchanged as "message-back". */
const ARG_SETS = [
  ["hello"],
  [""],
  [],
  [0, 1, -1, 3.5, -2.25e-7, 1e21, 2 ** 53 - 1, -(2 ** 53 - 1), 0.1],
  [true, false, null],
  [{ nested: { a: [1, { b: "c" }], e: {}, n: null }, arr: [], deep: [[[[["x"]]]]] }],
  [[1, "two", [3, [4]], { five: 5 }]],
  ["é", "日本語", "😀👍🏽", "\u2028\u2029", "\u0000\u001f", 'quote " back \\ slash', "\n\t\r", "</script>"],
  ["b64", "4", "2probe", "3", "451-[]"], // strings that look like packets
  [1, "2", { three: 3 }, [4], null, true, 7.5, "eight", { nine: [9] }, "ten"], // 10 arguments
  ["x".repeat(100_000)],
];

for (const name of SETUP_NAMES) {
  const setup = SETUPS[name];

  describe(`events and acks (${name})`, { timeout: 60_000 }, () => {
    test("message → message-back with the same arguments, in order", async (t) => {
      const srv = await useSioServer(t);
      const c = await connect(t, srv.url, setup);
      for (const args of ARG_SETS) c.socket.emit("message", ...args);
      for (let i = 0; i < ARG_SETS.length; i++) {
        assert.deepEqual(await c.next("message-back"), ARG_SETS[i], `argument set ${i}`);
      }
      await settleTransport(c.socket, name);
      // once more on the final transport
      for (const args of ARG_SETS) c.socket.emit("message", ...args);
      for (let i = 0; i < ARG_SETS.length; i++) {
        assert.deepEqual(await c.next("message-back"), ARG_SETS[i], `argument set ${i} after settling`);
      }
      await sleep(100);
      assert.equal(c.rec.of("message-back").length, 2 * ARG_SETS.length, "nothing extra");
    });

    test("a lone UTF-16 surrogate in a string comes back unchanged", async (t) => {
      // JSON.stringify writes "\ud800" as an escape; the Node.js server echoes it as is.
      const srv = await useSioServer(t);
      const c = await connect(t, srv.url, setup);
      c.socket.emit("message", "\ud800", "a\udfffb");
      assert.deepEqual(await c.next("message-back"), ["\ud800", "a\udfffb"]);
    });

    test("message-with-ack acks with the same arguments; emitWithAck", async (t) => {
      const srv = await useSioServer(t);
      const c = await connect(t, srv.url, setup);
      for (let i = 0; i < ARG_SETS.length; i++) {
        assert.deepEqual(await call(c.socket, "message-with-ack", ...ARG_SETS[i]), ARG_SETS[i], `argument set ${i}`);
      }
      // many acks in flight at once, answered to the right callbacks
      const many = await Promise.all(Array.from({ length: 50 }, (_, i) => call(c.socket, "message-with-ack", i, `n${i}`)));
      assert.deepEqual(many, Array.from({ length: 50 }, (_, i) => [i, `n${i}`]));
      assert.equal(await withTimeout(c.socket.emitWithAck("message-with-ack", "one"), 5000, "emitWithAck"), "one");
      assert.deepEqual(
        await withTimeout(c.socket.timeout(5000).emitWithAck("message-with-ack", { a: [1, null] }, 2), 5000, "emitWithAck"),
        { a: [1, null] },
      );
      await settleTransport(c.socket, name);
      assert.deepEqual(await call(c.socket, "message-with-ack", "after", 1), ["after", 1]);
    });

    test("client → server ack timeout: an event nobody acks rejects, the socket stays usable", async (t) => {
      const srv = await useSioServer(t);
      const c = await connect(t, srv.url, setup);
      const started = Date.now();
      await assert.rejects(
        withTimeout(c.socket.timeout(100).emitWithAck("nope", 1), 5000, "ack timeout"),
        (err) => err instanceof Error && err.message === "operation has timed out",
      );
      assert.ok(Date.now() - started >= 90, "rejected before the timeout");
      // a server ack arriving late must not be routed to another callback
      assert.deepEqual(await call(c.socket, "message-with-ack", "next"), ["next"]);
      assert.equal(c.socket.connected, true);
    });

    test("server → client acks via broadcast: all answer → {err: null, responses}", async (t) => {
      const srv = await useSioServer(t);
      const a = await connect(t, srv.url, setup);
      const b = await connect(t, srv.url, setup);
      for (const [c, tag] of [[a, "A"], [b, "B"]]) {
        c.socket.on("ask", (x, y, cb) => cb({ from: tag, got: [x, y] }));
      }
      await settleTransport(a.socket, name);
      await settleTransport(b.socket, name);
      const [res] = await call(a.socket, "broadcast", { event: "ask", args: [1, { two: 2 }], ackTimeoutMs: 4000 });
      assert.equal(res.err, null);
      const sorted = [...res.responses].sort((x, y) => x.from.localeCompare(y.from));
      assert.deepEqual(sorted, [
        { from: "A", got: [1, { two: 2 }] },
        { from: "B", got: [1, { two: 2 }] },
      ]);
      // only to a room
      await call(b.socket, "join", "acks");
      const [res2] = await call(a.socket, "broadcast", { to: "acks", event: "ask", args: ["r", 0], ackTimeoutMs: 4000 });
      assert.deepEqual(res2, { err: null, responses: [{ from: "B", got: ["r", 0] }] });
      // nobody in the room: no responses, no error
      const [res3] = await call(a.socket, "broadcast", { to: "empty", event: "ask", args: [], ackTimeoutMs: 4000 });
      assert.deepEqual(res3, { err: null, responses: [] });
    });

    test("server → client acks via broadcast: a client that does not answer → err and partial responses", async (t) => {
      const srv = await useSioServer(t);
      const a = await connect(t, srv.url, setup);
      const b = await connect(t, srv.url, setup);
      const silent = await connect(t, srv.url, setup);
      a.socket.on("ask", (x, cb) => cb(`A:${x}`));
      b.socket.on("ask", (x, cb) => cb(`B:${x}`));
      silent.socket.on("ask", () => {}); // never acks
      const started = Date.now();
      const [res] = await call(a.socket, "broadcast", { event: "ask", args: [7], ackTimeoutMs: 400 });
      const took = Date.now() - started;
      assert.equal(typeof res.err, "string", `err is ${JSON.stringify(res.err)}`);
      assert.ok(res.err.length > 0);
      assert.deepEqual([...res.responses].sort(), ["A:7", "B:7"]);
      assert.ok(took >= 350, `broadcast answered after ${took} ms, before its 400 ms timeout`);
      assert.deepEqual(silent.rec.of("ask"), [[7]]);
      // everyone still connected and usable
      for (const c of [a, b, silent]) assert.deepEqual(await call(c.socket, "message-with-ack", "ok"), ["ok"]);
    });

    test("binary in nested arguments comes back equal (Buffers)", async (t) => {
      const srv = await useSioServer(t);
      const c = await connect(t, srv.url, setup);
      const payload = { a: [Buffer.from([1, 2, 3]), { b: new Uint8Array([4]) }] };
      const expected = { a: [Buffer.from([1, 2, 3]), { b: Buffer.from([4]) }] };
      const big = Buffer.alloc(70_000, 7);
      const send = () => {
        c.socket.emit("message", payload);
        c.socket.emit("message", "text", Buffer.from([]), [new ArrayBuffer(3), { deep: { er: [Buffer.from("hi")] } }], 5);
        c.socket.emit("message", big, big);
      };
      const check = async (when) => {
        const [got] = await c.next("message-back");
        assert.deepEqual(got, expected, when);
        assert.ok(Buffer.isBuffer(got.a[0]) && Buffer.isBuffer(got.a[1].b), `Buffers ${when}`);
        assert.deepEqual(
          await c.next("message-back"),
          ["text", Buffer.alloc(0), [Buffer.alloc(3), { deep: { er: [Buffer.from("hi")] } }], 5],
          when,
        );
        const [x, y] = await c.next("message-back");
        assert.ok(x.equals(big) && y.equals(big), `70 kB attachments ${when}`);
      };
      send();
      await check("first");
      await settleTransport(c.socket, name);
      send();
      await check("after settling");
      // binary in acks, both directions of the ack
      assert.deepEqual(await call(c.socket, "message-with-ack", payload, 1), [expected, 1]);
    });

    test("volatile: client volatile emits and volatile/local broadcasts do not break anything", async (t) => {
      const srv = await useSioServer(t);
      const a = await connect(t, srv.url, setup);
      const b = await connect(t, srv.url, setup);
      await settleTransport(a.socket, name);
      // client-side volatile: sent when the transport is writable
      await until(() => a.socket.io.engine.transport.writable, { what: "writable transport" });
      a.socket.volatile.emit("message", "volatile", 1);
      assert.deepEqual(await a.next("message-back"), ["volatile", 1]);
      // server-side volatile and local broadcasts (additions to the contract):
      // volatile may be dropped, never duplicated; the fence after it must arrive
      for (let i = 0; i < 5; i++) {
        assert.deepEqual(await call(a.socket, "broadcast", { event: "v", args: [i], volatile: true }), [true]);
      }
      assert.deepEqual(await call(a.socket, "broadcast", { event: "l", args: ["local"], local: true }), [true]);
      assert.deepEqual(await call(a.socket, "broadcast", { event: "fence", args: [] }), [true]);
      for (const c of [a, b]) {
        await c.next("fence");
        const vs = c.rec.of("v").map((args) => args[0]);
        assert.deepEqual(vs, [...new Set(vs)].sort(), `volatile events unique and in order: ${vs}`);
        assert.ok(vs.every((v) => v >= 0 && v < 5));
        assert.deepEqual(c.rec.of("l"), [["local"]]);
        assert.deepEqual(await call(c.socket, "message-with-ack", "alive"), ["alive"]);
      }
      // volatile emits while disconnected are dropped, normal ones are buffered
      a.socket.disconnect();
      a.socket.volatile.emit("message", "dropped");
      a.socket.emit("message", "buffered");
      a.socket.connect();
      assert.deepEqual(await a.next("message-back"), ["buffered"]);
      assert.deepEqual(await call(a.socket, "message-with-ack", "fence"), ["fence"]);
      assert.deepEqual(
        a.rec.of("message-back").map((x) => x[0]),
        ["volatile", "buffered"],
      );
    });
  });
}
