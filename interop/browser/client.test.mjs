// herald-client.js (cmd/herald/herald-client.js) in Chromium against
// `testserver --mode sio` (interop/testserver): handshake and auth, acks both
// ways, namespaces, CONNECT_ERROR, server- and client-side disconnect, and
// reconnection after a server restart.
//
//   cd interop && node --test browser/
//
// The page comes from a small Node HTTP server on another loopback port (a page
// fulfilled by page.route counts as a public origin, and Chromium's Local Network
// Access checks then block its WebSocket to 127.0.0.1), so every connection here
// is cross-origin; demo.test.mjs covers herald.connect() without a URL.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "../lib/server.mjs";
import { bounded, launchChromium, skipWithoutChromium } from "./chromium.mjs";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const clientJS = readFileSync(path.join(repoRoot, "cmd", "herald", "herald-client.js"), "utf8");

// Helpers inside the page: next(socket, event, ms) resolves with the event's
// arguments; call(socket, ...args) emits with an ack and resolves with its arguments.
const page_ = (origin) => `<!doctype html><meta charset="utf-8"><title>client test</title>
<script>${clientJS.replace(/<\/script/gi, "<\\/script")}</script>
<script>
window.O = ${JSON.stringify(origin)};
window.next = (s, ev, ms = 5000) => new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error("no " + ev + " within " + ms + " ms")), ms);
  const fn = (...args) => { clearTimeout(t); s.off(ev, fn); resolve(args); };
  s.on(ev, fn);
});
window.call = (s, ...args) => new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error("no ack for " + args[0])), 5000);
  s.emit(...args, (...reply) => { clearTimeout(t); resolve(reply); });
});
window.sleep = (ms) => new Promise((r) => setTimeout(r, ms));
</script>`;

describe("herald-client.js in Chromium against testserver --mode sio", { skip: skipWithoutChromium, timeout: 180_000 }, () => {
  let server, pageServer, browser, page;
  const pageErrors = [];

  before(async () => {
    browser = await launchChromium();
    server = await startServer({ mode: "sio" });
    page = await browser.newPage();
    page.setDefaultTimeout(10_000);
    page.on("pageerror", (e) => pageErrors.push(e.message));
    const body = page_(server.url);
    pageServer = http.createServer((req, res) => {
      res.writeHead(req.url === "/" ? 200 : 404, { "content-type": "text/html; charset=utf-8" });
      res.end(req.url === "/" ? body : "");
    });
    await new Promise((resolve) => pageServer.listen(0, "127.0.0.1", resolve));
    await page.goto(`http://127.0.0.1:${pageServer.address().port}/`, { timeout: 10_000 });
  }, { timeout: 150_000 });

  after(async () => {
    await bounded(browser?.close() ?? Promise.resolve(), 10_000, "browser close").catch((e) => console.error(e.message));
    await server?.stop();
    pageServer?.closeAllConnections();
    pageServer?.close();
  });

  /** page.evaluate, bounded. */
  const run = (fn, arg) => bounded(page.evaluate(fn, arg), 15_000, "page.evaluate");

  test("connect, auth, queued emits, acks both ways", async () => {
    const r = await run(async () => {
      const s = herald.connect(O, { auth: { token: "abc" } });
      const auth = next(s, "auth");
      const back = next(s, "message-back");
      // emitted before the connection is up: queued, then sent in order
      s.emit("message", 1, "two", { three: [false] });
      const ack = call(s, "message-with-ack", 1, "2", { 3: [false] });
      await next(s, "connect");
      const out = { id: s.id, connected: s.connected, auth: await auth, back: await back, ack: await ack };
      // a server event with an ack id: the handler gets a callback
      s.on("ask", (n, cb) => cb(n * 2, "ok"));
      out.join = await call(s, "join", "r1");
      out.broadcast = await call(s, "broadcast", { to: "r1", event: "ask", args: [21], ackTimeoutMs: 2000 });
      s.disconnect();
      return out;
    });
    assert.equal(typeof r.id, "string");
    assert.ok(r.id.length > 0);
    assert.equal(r.connected, true);
    assert.deepEqual(r.auth, [{ token: "abc" }]);
    assert.deepEqual(r.back, [1, "two", { three: [false] }]);
    assert.deepEqual(r.ack, [1, "2", { 3: [false] }]);
    assert.deepEqual(r.join, [true]);
    assert.deepEqual(r.broadcast, [{ err: null, responses: [21 * 2] }]);
  });

  test("namespace in the URL, and an unknown namespace gives connect_error without retries", async () => {
    const r = await run(async () => {
      const s = herald.connect(O + "/custom", { auth: () => ({ token: "fn" }) });
      const auth = next(s, "auth");
      await next(s, "connect");
      const out = { auth: await auth, who: await call(s, "whoami") };
      s.disconnect();

      const bad = herald.connect(O + "/nope");
      let connects = 0, errors = [];
      bad.on("connect", () => connects++);
      bad.on("connect_error", (e) => errors.push({ message: e.message, data: e.data }));
      await sleep(1500);
      out.bad = { connects, errors, connected: bad.connected };
      bad.disconnect();
      return out;
    });
    assert.deepEqual(r.auth, [{ token: "fn" }]);
    assert.equal(typeof r.who[0].id, "string");
    assert.deepEqual(r.bad, { connects: 0, errors: [{ message: "Invalid namespace", data: undefined }], connected: false });
  });

  test("server-side disconnect: reason 'io server disconnect', no reconnection", async () => {
    const r = await run(async () => {
      const s = herald.connect(O);
      await next(s, "connect");
      let connects = 0;
      s.on("connect", () => connects++);
      await call(s, "join", "kick");
      const gone = next(s, "disconnect");
      s.emit("disconnect-sockets", { in: "kick", close: false });
      const [reason] = await gone;
      await sleep(1500);
      return { reason, connected: s.connected, id: s.id, connects };
    });
    assert.deepEqual(r, { reason: "io server disconnect", connected: false, id: undefined, connects: 0 });
  });

  test("client disconnect() and connect() again", async () => {
    const r = await run(async () => {
      const s = herald.connect(O);
      await next(s, "connect");
      const first = s.id;
      const gone = next(s, "disconnect");
      s.disconnect();
      const [reason] = await gone;
      s.connect();
      await next(s, "connect");
      const ack = await call(s, "message-with-ack", "again");
      const out = { reason, first, second: s.id, ack };
      s.disconnect();
      return out;
    });
    assert.equal(r.reason, "io client disconnect");
    assert.notEqual(r.first, r.second);
    assert.deepEqual(r.ack, ["again"]);
  });

  test("reconnects with backoff after the server restarts", async () => {
    await run(async () => {
      window.rs = herald.connect(O, { reconnectionDelay: 100, reconnectionDelayMax: 500 });
      window.rsLog = [];
      rs.on("disconnect", (reason) => rsLog.push("disconnect:" + reason));
      rs.on("connect", () => rsLog.push("connect"));
      await next(rs, "connect");
    });
    await server.restart();
    const r = await run(async () => {
      let ack;
      try {
        if (!rs.connected) await next(rs, "connect", 10000);
        ack = await call(rs, "message-with-ack", "after restart");
      } catch (e) {
        ack = e.message;
      }
      rs.disconnect();
      return { log: rsLog, ack };
    });
    assert.deepEqual(r.ack, ["after restart"], `events: ${r.log.join(", ")}`);
    assert.deepEqual(r.log.slice(0, 3), ["connect", "disconnect:transport close", "connect"]);
    assert.deepEqual(pageErrors, []);
  });
});
