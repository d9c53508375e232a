// Engine.IO v4 interop: many concurrent official clients against `testserver --mode eio`.

import { test } from "node:test";
import assert from "node:assert/strict";

import { useServer } from "../lib/server.mjs";
import { acquire } from "../lib/lock.mjs";
import { TRANSPORTS, bytes, createSocket, nextEvent, withTimeout } from "../lib/eio.mjs";

const WS_CLIENTS = 250;
const UPGRADE_CLIENTS = 250;
const BOUND_MS = 30_000;

test(`${WS_CLIENTS + UPGRADE_CLIENTS} clients at once (${WS_CLIENTS} websocket, ${UPGRADE_CLIENTS} polling+upgrade)`, async (t) => {
  // One Node process drives all clients; with the default 300 ms + 200 ms heartbeat, its busy
  // event loop makes clients time out on their own (against the Node.js server too), so
  // this test uses a slower heartbeat (heartbeats are tested on their own elsewhere).
  // Heavy: never run next to the timing-sensitive heartbeat tests (see lib/lock.mjs).
  const release = await acquire("timing");
  t.after(release);
  const srv = await useServer(t, { args: ["--ping-interval", "5s", "--ping-timeout", "5s"] });
  const started = Date.now();

  const clients = [];
  for (let i = 0; i < WS_CLIENTS + UPGRADE_CLIENTS; i++) {
    const kind = i < WS_CLIENTS ? "websocket" : "upgrade";
    const c = createSocket(t, srv.url, TRANSPORTS[kind], { timeout: BOUND_MS });
    c.kind = kind;
    c.index = i;
    if (kind === "upgrade") {
      c.upgraded = nextEvent(c.socket, "upgrade", { timeout: BOUND_MS, failOn: ["close", "upgradeError"] });
      c.upgraded.catch(() => {});
    }
    clients.push(c);
  }

  // Each client: open, send a text and a binary message (unique to the client), get both
  // echoes back; upgrade clients then wait for the upgrade and echo once more over websocket.
  const run = async (c) => {
    await c.opened;
    const text = `client ${c.index} ${c.kind}`;
    const bin = bytes(32 + (c.index % 64), c.index);
    c.socket.send(text);
    c.socket.send(bin);
    const got = await c.inbox.waitFor(2, BOUND_MS);
    assert.deepEqual(got, [text, bin], `client ${c.index} (${c.kind}) echo`);
    if (c.kind === "upgrade") {
      await c.upgraded;
      assert.equal(c.socket.transport.name, "websocket", `client ${c.index} transport after upgrade`);
      c.socket.send(`${text} upgraded`);
      const all = await c.inbox.waitFor(3, BOUND_MS);
      assert.equal(all[2], `${text} upgraded`);
    }
    return c;
  };
  await withTimeout(Promise.all(clients.map(run)), BOUND_MS, `${clients.length} echoes`);
  const echoed = Date.now() - started;

  const ids = new Set(clients.map((c) => c.socket.id));
  assert.equal(ids.size, clients.length, "session ids must be unique");

  // Close everything and check each close is the clean, client-initiated one.
  const closes = clients.map((c) => nextEvent(c.socket, "close", { timeout: BOUND_MS }));
  for (const c of clients) c.socket.close();
  const reasons = await withTimeout(Promise.all(closes), BOUND_MS, "all clients to close");
  const counts = {};
  for (const [reason] of reasons) counts[reason] = (counts[reason] ?? 0) + 1;
  assert.deepEqual(counts, { "forced close": clients.length });
  for (const c of clients) {
    assert.equal(c.inbox.messages.length, c.kind === "upgrade" ? 3 : 2, `client ${c.index}: unexpected extra messages`);
    assert.equal(c.errors.length, 0, `client ${c.index}: errors ${c.errors.map(String).join(", ")}`);
  }
  const total = Date.now() - started;
  assert.ok(total < BOUND_MS, `took ${total} ms`);
  t.diagnostic(`all echoed after ${echoed} ms, all closed after ${total} ms`);

  // The server is still fine afterwards.
  const after = createSocket(t, srv.url, TRANSPORTS.upgrade);
  await after.opened;
  after.socket.send("after the crowd");
  assert.equal(await after.inbox.take(), "after the crowd");
});
