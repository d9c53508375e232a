// Engine.IO v4 interop: payload limits and server restarts, official engine.io-client
// against `testserver --mode eio`.

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { useServer } from "../lib/server.mjs";
import { TRANSPORTS, bytes, nextEvent, openSocket, withTimeout } from "../lib/eio.mjs";

/** The server still accepts and echoes for a fresh client on every transport. */
async function assertServes(t, url, label) {
  for (const [name, opts] of Object.entries(TRANSPORTS)) {
    const { socket, inbox } = await openSocket(t, url, opts);
    socket.send(`${label} ${name}`);
    socket.send(bytes(16, 5));
    const got = await inbox.waitFor(2);
    assert.deepEqual(got, [`${label} ${name}`, bytes(16, 5)], `${label}: echo over ${name}`);
    const closed = nextEvent(socket, "close");
    socket.close();
    await closed;
  }
}

/** Random (incompressible) bytes, so permessage-deflate cannot shrink them under the limit. */
function randomBytes(n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(Math.random() * 256);
  return b;
}

describe("payload limit (--max-payload 1000)", () => {
  const args = ["--max-payload", "1000"];

  test("handshake advertises maxPayload 1000", async (t) => {
    const srv = await useServer(t, { args });
    const { handshake } = await openSocket(t, srv.url, TRANSPORTS.polling);
    assert.equal(handshake.maxPayload, 1000);
  });

  for (const [label, big] of [
    ["binary", () => randomBytes(2000)],
    ["text", () => "x".repeat(2000)], // compressible: the limit applies to the inflated message
  ]) {
    test(`websocket: a 2000-byte ${label} message closes the connection with 1009`, async (t) => {
      const srv = await useServer(t, { args });
      const { socket, inbox } = await openSocket(t, srv.url, TRANSPORTS.websocket);
      const small = label === "text" ? "y".repeat(900) : randomBytes(900);
      socket.send(small);
      assert.deepEqual(await inbox.take(), small, "a 900-byte message is under the limit");

      const closed = nextEvent(socket, "close", { timeout: 5000 });
      socket.send(big());
      // Keep streaming, as a real client would: nothing after the oversized message may be
      // echoed, and the server must still deliver its 1009 close frame although it has
      // unread data from the client.
      for (let i = 0; i < 20; i++) socket.send(`after-big ${i}`);
      const [reason, desc] = await closed;
      assert.equal(reason, "transport close");
      assert.equal(desc?.context?.code, 1009, `WebSocket close code (want 1009 "message too big")`);
      assert.equal(inbox.messages.length, 1, "nothing after the oversized message may be echoed");
      await assertServes(t, srv.url, "after oversized ws message");
    });
  }

  test("polling: a 2000-byte message fails the POST with 413 and closes the client", async (t) => {
    const srv = await useServer(t, { args });
    const { socket, inbox, errors } = await openSocket(t, srv.url, TRANSPORTS.polling);
    socket.send("z".repeat(900));
    assert.equal(await inbox.take(), "z".repeat(900));

    const closed = nextEvent(socket, "close", { timeout: 5000 });
    socket.send(randomBytes(2000)); // base64: ~2.7 kB of body
    const [reason, desc] = await closed;
    assert.equal(reason, "transport error");
    assert.equal(desc?.message, "xhr post error");
    assert.equal(desc?.description, 413, "HTTP status of the oversized POST");
    assert.equal(errors.length, 1);
    assert.equal(inbox.messages.length, 1, "the oversized message must not be echoed");
    await assertServes(t, srv.url, "after oversized POST");
  });

  test("polling: many small messages adding up to more than 1000 bytes are all delivered", async (t) => {
    // engine.io-client splits its write buffer into POSTs of at most maxPayload bytes.
    const srv = await useServer(t, { args });
    const { socket, inbox } = await openSocket(t, srv.url, TRANSPORTS.polling);
    const sent = [];
    for (let i = 0; i < 30; i++) {
      const m = i % 2 ? `${i}:`.padEnd(300, "p") : bytes(200, i);
      sent.push(m);
      socket.send(m);
    }
    const got = await inbox.waitFor(30, 10_000);
    assert.deepEqual(got, sent);
    assert.equal(socket.readyState, "open");
  });

  test("websocket: a message just under the limit after an oversized one on another client", async (t) => {
    // The limit is per message, not per connection or server: one bad client does not affect another.
    const srv = await useServer(t, { args });
    const good = await openSocket(t, srv.url, TRANSPORTS.websocket);
    const bad = await openSocket(t, srv.url, TRANSPORTS.websocket);
    const closed = nextEvent(bad.socket, "close", { timeout: 5000 });
    bad.socket.send(randomBytes(5000));
    await closed;
    const m = randomBytes(1000);
    good.socket.send(m);
    assert.deepEqual(await good.inbox.take(), m);
    assert.equal(good.socket.readyState, "open");
  });
});

describe("server restart (SIGTERM, then start on the same port)", () => {
  test("clients on every transport see 'close'; after restart new clients connect and echo", async (t) => {
    const srv = await useServer(t);
    const clients = {};
    for (const [name, opts] of Object.entries(TRANSPORTS)) {
      const c = await openSocket(t, srv.url, opts);
      if (name === "upgrade") {
        await nextEvent(c.socket, "upgrade", { timeout: 5000, failOn: ["close", "upgradeError"] });
      }
      c.socket.send(`hello ${name}`);
      assert.equal(await c.inbox.take(), `hello ${name}`);
      clients[name] = c;
    }
    const oldSid = clients.polling.socket.id;

    const closes = Object.entries(clients).map(([name, c]) =>
      withTimeout(
        new Promise((resolve) => c.socket.once("close", (reason, desc) => resolve({ name, reason, desc }))),
        5000,
        `'close' on the ${name} client`,
      ),
    );
    const started = Date.now();
    const exit = await srv.stop();
    assert.deepEqual(
      { code: exit.code, signal: exit.signal, killed: exit.killed },
      { code: 0, signal: null, killed: false },
      `testserver must exit 0 on SIGTERM within 5 s\n${srv.logs()}`,
    );
    const results = await Promise.all(closes);
    const elapsed = Date.now() - started;
    for (const { name, reason, desc } of results) {
      // A graceful shutdown closes each session ("transport close"); a client that only
      // notices through a failed request or a missed ping would report another reason.
      assert.equal(
        reason,
        "transport close",
        `${name}: closed with "${reason}" (${desc?.message ?? ""} ${desc?.description ?? ""}) after ${elapsed} ms`,
      );
    }

    // Nothing listens now.
    await assert.rejects(fetch(`${srv.url}/engine.io/?EIO=4&transport=polling`), "server still answers after stop");

    await srv.restart();
    await assertServes(t, srv.url, "after restart");

    // The old session is gone: the restarted server does not know its sid.
    const res = await fetch(`${srv.url}/engine.io/?EIO=4&transport=polling&sid=${encodeURIComponent(oldSid)}`);
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { code: 1, message: "Session ID unknown" });
  });

  test("a client connecting while the server is down gets an error, then works after restart", async (t) => {
    const srv = await useServer(t);
    await srv.stop();
    for (const [name, opts] of Object.entries(TRANSPORTS)) {
      await assert.rejects(openSocket(t, srv.url, opts), /got "(error|close)"/, `${name}: open must fail while down`);
    }
    await srv.restart();
    await assertServes(t, srv.url, "after restart");
  });

  test("several restarts in a row", async (t) => {
    const srv = await useServer(t);
    for (let i = 0; i < 3; i++) {
      const { socket, inbox } = await openSocket(t, srv.url, TRANSPORTS.websocket);
      socket.send(`round ${i}`);
      assert.equal(await inbox.take(), `round ${i}`);
      const closed = nextEvent(socket, "close", { timeout: 5000 });
      await srv.restart();
      const [reason] = await closed;
      assert.equal(reason, "transport close");
    }
    await assertServes(t, srv.url, "after 3 restarts");
  });
});
