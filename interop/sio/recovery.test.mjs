// socket.io-client 4.8.4 against `testserver --mode sio --recovery 2m`:
// connection-state recovery after a forced transport close. While the client
// is away another client broadcasts to its room; on reconnection the socket
// is recovered (same id, rooms kept) and gets the missed event exactly once.
// Each scenario runs over WebSocket only, polling only, and the default
// (polling, then upgrade).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  SETUPS,
  SETUP_NAMES,
  call,
  connect,
  fetchIds,
  nextEvent,
  settleTransport,
  sleep,
  until,
  useSioServer,
} from "../lib/sio.mjs";

/**
 * With recovery on, the server appends the packet's offset (a string) to every
 * broadcast event's arguments, and socket.io-client passes it on to listeners.
 * Returns the argument lists of `event` without their offsets, checking that
 * each has one and that they are all different.
 */
function withoutOffsets(c, event) {
  const lists = c.rec.of(event);
  const offsets = lists.map((args) => args.at(-1));
  for (const o of offsets) assert.equal(typeof o, "string", `offset of a "${event}" event: ${JSON.stringify(o)}`);
  assert.equal(new Set(offsets).size, offsets.length, `offsets are unique: ${JSON.stringify(offsets)}`);
  return lists.map((args) => args.slice(0, -1));
}

/**
 * Closes the client's Engine.IO connection under the Socket.IO socket (as a
 * network failure would) with automatic reconnection off, so the test decides
 * when the client comes back. Resolves with the disconnect reason.
 */
async function dropTransport(c) {
  c.socket.io.reconnection(false);
  const reason = c.rec.nextDisconnect();
  c.socket.io.engine.close();
  return reason;
}

/** Reconnects a client dropped by dropTransport; resolves once connected. */
async function comeBack(c) {
  c.socket.io.reconnection(true);
  const connected = nextEvent(c.socket, "connect", { timeout: 5000, failOn: ["connect_error"] });
  c.socket.connect();
  await connected;
}

for (const name of SETUP_NAMES) {
  const setup = SETUPS[name];

  describe(`connection-state recovery (${name})`, { timeout: 60_000 }, () => {
    test("after a forced transport close: recovered, same id, rooms kept, missed events once", async (t) => {
      const srv = await useSioServer(t, { args: ["--ping-interval", "1s", "--ping-timeout", "2s", "--recovery", "2m"] });
      const a = await connect(t, srv.url, setup, { auth: { token: "abc" } });
      const b = await connect(t, srv.url, SETUPS.websocket);
      await settleTransport(a.socket, name);
      assert.ok(!a.socket.recovered, "a first connection is not a recovery");
      const id = a.socket.id;
      await call(a.socket, "join", "r");

      // the client must have received a broadcast (its offset) before it can recover
      await call(b.socket, "broadcast", { to: "r", event: "ev", args: ["first", { n: 1 }] });
      const firstEv = await a.next("ev");
      assert.deepEqual(firstEv.slice(0, -1), ["first", { n: 1 }]);
      assert.equal(typeof firstEv.at(-1), "string", "the server appends the offset");

      const reason = await dropTransport(a);
      assert.equal(reason, "forced close");
      // the server has noticed: the socket has left the room
      await until(async () => (await fetchIds(b.socket, "r")).length === 0, { what: "socket gone from r" });

      // while a is away
      await call(b.socket, "broadcast", { to: "r", event: "ev", args: ["missed", 1] });
      await call(b.socket, "broadcast", { to: "r", event: "ev", args: ["missed", 2, { bin: false }] });
      await call(b.socket, "broadcast", { event: "everyone", args: ["missed too"] });
      await call(b.socket, "broadcast", { to: "other", event: "ev", args: ["not for a"] });

      await comeBack(a);
      assert.equal(a.socket.recovered, true, "socket.recovered");
      assert.equal(a.socket.id, id, "same socket.id");
      const [who] = await call(a.socket, "whoami");
      assert.equal(who.id, id);
      assert.deepEqual([...who.rooms].sort(), [id, "r"].sort(), "rooms restored");
      assert.deepEqual(await fetchIds(b.socket, "r"), [id]);

      // after the reconnection, the room still works, and a fence shows nothing arrives twice
      await call(b.socket, "broadcast", { to: "r", event: "ev", args: ["after"] });
      await a.rec.waitFor("ev", 4);
      await call(b.socket, "broadcast", { to: "r", event: "fence", args: [] });
      await a.next("fence");
      await sleep(200);
      assert.deepEqual(withoutOffsets(a, "ev"), [
        ["first", { n: 1 }],
        ["missed", 1],
        ["missed", 2, { bin: false }],
        ["after"],
      ]);
      assert.deepEqual(withoutOffsets(a, "everyone"), [["missed too"]]);
      assert.deepEqual(a.rec.disconnects, ["forced close"]);
      assert.deepEqual(await call(a.socket, "message-with-ack", "ok"), ["ok"]);
    });

    test("a second drop and recovery in a row", async (t) => {
      const srv = await useSioServer(t, { args: ["--ping-interval", "1s", "--ping-timeout", "2s", "--recovery", "2m"] });
      const a = await connect(t, srv.url, setup);
      const b = await connect(t, srv.url, SETUPS.websocket);
      await settleTransport(a.socket, name);
      const id = a.socket.id;
      await call(a.socket, "join", "r");
      for (let round = 1; round <= 2; round++) {
        await call(b.socket, "broadcast", { to: "r", event: "ev", args: [`seen ${round}`] });
        await a.rec.waitFor("ev", 2 * round - 1);
        await dropTransport(a);
        await until(async () => (await fetchIds(b.socket, "r")).length === 0, { what: "socket gone from r" });
        await call(b.socket, "broadcast", { to: "r", event: "ev", args: [`missed ${round}`] });
        await comeBack(a);
        assert.equal(a.socket.recovered, true, `round ${round}`);
        assert.equal(a.socket.id, id, `round ${round}`);
        await a.rec.waitFor("ev", 2 * round);
      }
      await call(b.socket, "broadcast", { to: "r", event: "fence", args: [] });
      await a.next("fence");
      assert.deepEqual(
        a.rec.of("ev").map((x) => x[0]),
        ["seen 1", "missed 1", "seen 2", "missed 2"],
      );
    });

    test("without --recovery: a new socket, not recovered, missed events lost", async (t) => {
      const srv = await useSioServer(t);
      const a = await connect(t, srv.url, setup);
      const b = await connect(t, srv.url, SETUPS.websocket);
      await settleTransport(a.socket, name);
      const id = a.socket.id;
      await call(a.socket, "join", "r");
      await call(b.socket, "broadcast", { to: "r", event: "ev", args: ["first"] });
      await a.next("ev");
      await dropTransport(a);
      await until(async () => (await fetchIds(b.socket, "r")).length === 0, { what: "socket gone from r" });
      await call(b.socket, "broadcast", { to: "r", event: "ev", args: ["missed"] });
      await comeBack(a);
      assert.ok(!a.socket.recovered);
      assert.notEqual(a.socket.id, id);
      const [who] = await call(a.socket, "whoami");
      assert.deepEqual(who.rooms, [a.socket.id], "rooms are not restored");
      await call(b.socket, "broadcast", { event: "fence", args: [] });
      await a.next("fence");
      assert.deepEqual(a.rec.of("ev"), [["first"]]);
    });

    test("a client disconnect is not recoverable", async (t) => {
      const srv = await useSioServer(t, { args: ["--ping-interval", "1s", "--ping-timeout", "2s", "--recovery", "2m"] });
      const a = await connect(t, srv.url, setup);
      const b = await connect(t, srv.url, SETUPS.websocket);
      await settleTransport(a.socket, name);
      const id = a.socket.id;
      await call(a.socket, "join", "r");
      await call(b.socket, "broadcast", { to: "r", event: "ev", args: ["first"] });
      await a.next("ev");
      a.socket.disconnect();
      assert.equal(await a.rec.nextDisconnect(), "io client disconnect");
      await until(async () => (await fetchIds(b.socket, "r")).length === 0, { what: "socket gone from r" });
      await call(b.socket, "broadcast", { to: "r", event: "ev", args: ["missed"] });
      a.socket.connect();
      await nextEvent(a.socket, "connect", { timeout: 5000, failOn: ["connect_error"] });
      assert.ok(!a.socket.recovered);
      assert.notEqual(a.socket.id, id);
      await call(b.socket, "broadcast", { event: "fence", args: [] });
      await a.next("fence");
      assert.deepEqual(withoutOffsets(a, "ev"), [["first"]]);
    });
  });
}
