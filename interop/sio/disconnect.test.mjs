// socket.io-client 4.8.4 against `testserver --mode sio`: disconnect reasons
// as the client reports them, and what the server does about them.
//
// - client socket.disconnect()              → "io client disconnect"
// - server disconnect-sockets               → "io server disconnect" (no reconnection)
// - server process stopped (SIGTERM)        → "transport close" (then reconnects after a restart)
// - server stops hearing the client (pings) → "ping timeout" on the client, and the
//   server drops the socket
//
// Each scenario runs over WebSocket only, polling only, and the default
// (polling, then upgrade).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { acquire } from "../lib/lock.mjs";
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

// A short heartbeat for the heartbeat tests, with room for a loaded 2-core
// machine (300 ms / 300 ms made healthy clients time out under load).
const HEARTBEAT = ["--ping-interval", "500ms", "--ping-timeout", "1000ms"];

/**
 * Makes a v4 client deaf: nothing the server sends reaches the Engine.IO
 * socket any more (so it answers no ping and sees no close), while the
 * connection itself stays up. WebSocket: the TCP socket stops being read.
 * Polling: received payloads are dropped and no new GET is issued.
 */
function deafen(t, socket) {
  const tr = socket.io.engine.transport;
  if (tr.name === "websocket") {
    const raw = tr.ws._socket;
    raw.pause();
    t.after(() => raw.destroy()); // the client's close handshake would wait 30 s
  } else {
    tr.onData = () => {};
  }
}

/** Records when a v4 client gets pings and how its connection closes, for failure messages. */
function timeline(socket) {
  const t0 = Date.now();
  const events = [];
  const at = (what) => events.push(`${Date.now() - t0}ms ${what}`);
  socket.io.on("ping", () => at("ping"));
  socket.io.engine.on("close", (reason, desc) =>
    at(`engine close: ${reason} ${desc?.message ?? desc?.description?.message ?? desc?.description ?? ""}`),
  );
  socket.io.engine.on("upgrade", (tr) => at(`upgrade to ${tr.name}`));
  return {
    pings: () => events.filter((e) => e.endsWith(" ping")).length,
    text: () => `timeline: ${events.join(", ")}`,
  };
}

for (const name of SETUP_NAMES) {
  const setup = SETUPS[name];

  describe(`disconnect reasons (${name})`, { timeout: 60_000 }, () => {
    test('client socket.disconnect() → "io client disconnect"; the server forgets the socket', async (t) => {
      const srv = await useSioServer(t);
      const a = await connect(t, srv.url, setup, { reconnection: true, reconnectionDelay: 100 });
      const b = await connect(t, srv.url, SETUPS.websocket);
      await settleTransport(a.socket, name);
      const id = a.socket.id;
      assert.deepEqual(await fetchIds(b.socket), [id, b.socket.id].sort());
      a.socket.disconnect();
      assert.equal(await a.rec.nextDisconnect(), "io client disconnect");
      await until(async () => (await fetchIds(b.socket)).length === 1, { what: "socket gone on the server" });
      assert.deepEqual(await fetchIds(b.socket), [b.socket.id]);
      await sleep(300);
      assert.equal(a.socket.connected, false);
      assert.equal(a.socket.active, false);
      assert.deepEqual(a.rec.disconnects, ["io client disconnect"]);
      // and it can come back, with a new id
      a.socket.connect();
      await nextEvent(a.socket, "connect", { failOn: ["connect_error"] });
      assert.notEqual(a.socket.id, id);
      assert.deepEqual(await fetchIds(b.socket), [a.socket.id, b.socket.id].sort());
    });

    test('server disconnect-sockets → "io server disconnect", no reconnection', async (t) => {
      const srv = await useSioServer(t);
      const a = await connect(t, srv.url, setup, { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 100 });
      const b = await connect(t, srv.url, SETUPS.websocket);
      await settleTransport(a.socket, name);
      let reconnects = 0;
      a.socket.io.on("reconnect_attempt", () => reconnects++);
      assert.deepEqual(await call(b.socket, "disconnect-sockets", { in: a.socket.id, close: false }), [true]);
      assert.equal(await a.rec.nextDisconnect(), "io server disconnect");
      await sleep(500);
      assert.equal(reconnects, 0);
      assert.equal(a.socket.connected, false);
      assert.equal(a.socket.active, false);
      assert.deepEqual(a.rec.disconnects, ["io server disconnect"]);
      assert.deepEqual(await fetchIds(b.socket), [b.socket.id]);
    });

    test('server stopped with SIGTERM → "transport close"; reconnects after a restart', async (t) => {
      const srv = await useSioServer(t);
      const a = await connect(t, srv.url, setup, {
        auth: { token: "abc" },
        reconnection: true,
        reconnectionDelay: 200,
        reconnectionDelayMax: 200,
        randomizationFactor: 0,
      });
      const plain = await connect(t, srv.url, setup); // no reconnection
      await settleTransport(a.socket, name);
      await settleTransport(plain.socket, name);
      const id = a.socket.id;
      // let the polling clients settle into a pending GET: a poll sent while the
      // server shuts down fails with "transport error" (Node.js server too)
      await sleep(300);
      const res = await srv.stop();
      assert.deepEqual(res, { code: 0, signal: null, killed: false }, "clean exit within 5 s");
      assert.equal(await a.rec.nextDisconnect(), "transport close");
      assert.equal(await plain.rec.nextDisconnect(), "transport close");
      await sleep(100);
      assert.deepEqual(plain.rec.disconnects, ["transport close"], "exactly one disconnect");
      assert.equal(a.socket.active, true, "a transport close is followed by reconnection");
      await srv.restart();
      await nextEvent(a.socket, "connect", { timeout: 10_000 });
      assert.notEqual(a.socket.id, id);
      assert.ok(!a.socket.recovered);
      assert.deepEqual(await a.rec.waitFor("auth", 2), [[{ token: "abc" }], [{ token: "abc" }]]);
      assert.deepEqual(await call(a.socket, "message-with-ack", "back"), ["back"]);
      assert.equal(plain.socket.connected, false);
    });

    test("heartbeat: a client that stops answering pings is dropped by the server", async (t) => {
      const release = await acquire("timing");
      t.after(release);
      const srv = await useSioServer(t, { args: HEARTBEAT });
      const watcher = await connect(t, srv.url, SETUPS.websocket);
      const a = await connect(t, srv.url, setup);
      await settleTransport(a.socket, name);
      const log = timeline(a.socket);
      // healthy first: stays connected over several heartbeats
      await sleep(2000);
      assert.deepEqual(a.rec.disconnects, [], log.text());
      assert.ok(log.pings() >= 3, `${log.pings()} pings in 2 s with a 500 ms interval: ${log.text()}`);
      assert.deepEqual(await call(a.socket, "message-with-ack", "alive"), ["alive"]);

      // deaf, and without its own ping timer (so it never closes the connection
      // itself): only the server's heartbeat can notice
      const engine = a.socket.io.engine;
      engine._resetPingTimeout = () => {};
      engine.clearTimeoutFn(engine._pingTimeoutTimer);
      const id = a.socket.id;
      deafen(t, a.socket);
      const deafAt = Date.now();
      await until(async () => !(await fetchIds(watcher.socket)).includes(id), { timeout: 5000, what: "server drops the deaf socket" }).catch(
        (err) => assert.fail(`${err.message} (watcher disconnects: ${JSON.stringify(watcher.rec.disconnects)})`),
      );
      const took = Date.now() - deafAt;
      assert.ok(took >= 900, `dropped after ${took} ms, before a ping could go unanswered`);
      assert.deepEqual(await fetchIds(watcher.socket), [watcher.socket.id]);
      assert.deepEqual(watcher.rec.disconnects, []);
      assert.deepEqual(a.rec.disconnects, [], "the deaf client heard nothing");
    });

    test('ping timeout: a client that hears nothing reports "ping timeout"', async (t) => {
      const release = await acquire("timing");
      t.after(release);
      const srv = await useSioServer(t, { args: HEARTBEAT });
      const a = await connect(t, srv.url, setup, { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 100 });
      await settleTransport(a.socket, name);
      await sleep(1000); // at least one heartbeat
      assert.deepEqual(a.rec.disconnects, []);
      const id = a.socket.id;
      deafen(t, a.socket);
      const deafAt = Date.now();
      assert.equal(await a.rec.nextDisconnect({ timeout: 5000 }), "ping timeout");
      const took = Date.now() - deafAt;
      assert.ok(took >= 900 && took < 4000, `ping timeout after ${took} ms (interval + timeout = 1.5 s)`);
      // a ping timeout is followed by reconnection, as a new socket
      await nextEvent(a.socket, "connect", { timeout: 5000 });
      assert.notEqual(a.socket.id, id);
      assert.deepEqual(await call(a.socket, "message-with-ack", "again"), ["again"]);
    });
  });
}
