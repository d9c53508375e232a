// Engine.IO v4 interop: the official engine.io-client against `testserver --mode eio`
// (an echo server on /engine.io/). Run: cd interop && node --test eio/

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { useServer } from "../lib/server.mjs";
import { acquire } from "../lib/lock.mjs";
import { TRANSPORTS, bytes, createSocket, nextEvent, openSocket, toBuffer, closeQuietly } from "../lib/eio.mjs";

const TEXTS = [
  "hello",
  "héllo wörld — 日本語 🚀", // multi-byte UTF-8, astral plane
  "b64 lookalike: bAQID", // starts with "b" like a polling binary packet
  "4 starts with a digit 123",
  '{"json":[1,2,3],"nested":{"a":null}}',
  "line\nbreaks\r\nand\ttabs",
  "x".repeat(10_000),
];

for (const [name, opts] of [
  ["polling", TRANSPORTS.polling],
  ["websocket", TRANSPORTS.websocket],
]) {
  describe(`${name} only`, () => {
    test("opens with the server's handshake values", async (t) => {
      const srv = await useServer(t);
      const { socket, handshake } = await openSocket(t, srv.url, opts);
      assert.equal(socket.readyState, "open");
      assert.equal(socket.transport.name, name);
      assert.equal(typeof socket.id, "string");
      assert.ok(socket.id.length >= 20, `sid too short: ${socket.id}`);
      assert.match(socket.id, /^[A-Za-z0-9_-]+$/, "sid must be URL-safe");
      // The open packet, exactly as the official server sends it.
      assert.deepEqual(handshake, {
        sid: socket.id,
        upgrades: name === "polling" ? ["websocket"] : [],
        pingInterval: 300,
        pingTimeout: 200,
        maxPayload: 1_000_000,
      });
    });

    test("two clients get different session ids", async (t) => {
      const srv = await useServer(t);
      const a = await openSocket(t, srv.url, opts);
      const b = await openSocket(t, srv.url, opts);
      assert.notEqual(a.socket.id, b.socket.id);
    });

    test("text echo", async (t) => {
      const srv = await useServer(t);
      const { socket, inbox } = await openSocket(t, srv.url, opts);
      for (const text of TEXTS) {
        socket.send(text);
        const got = await inbox.take();
        assert.equal(typeof got, "string", `echo of ${JSON.stringify(text.slice(0, 40))} is not a string`);
        assert.equal(got, text);
      }
    });

    test("empty text message echo", async (t) => {
      const srv = await useServer(t);
      const { socket, inbox } = await openSocket(t, srv.url, opts);
      socket.send("");
      socket.send("after-empty");
      const got = await inbox.waitFor(2);
      // The server must echo the bare "4" packet. engine.io-parser decodes a
      // message packet without data as `data: undefined` (the same happens
      // against the Node.js engine.io server), so that is what the client sees.
      assert.equal(got[0], undefined);
      assert.equal(got[1], "after-empty");
    });

    test("binary echo (Buffer, Uint8Array, ArrayBuffer)", async (t) => {
      const srv = await useServer(t);
      const { socket, inbox } = await openSocket(t, srv.url, opts);
      const cases = [
        ["Buffer", bytes(1, 1)],
        ["Buffer 256 values", Buffer.from(Array.from({ length: 256 }, (_, i) => i))],
        ["Uint8Array", new Uint8Array(bytes(1000, 2))],
        ["ArrayBuffer", new Uint8Array(bytes(77, 3)).buffer],
        ["Buffer 64 KiB", bytes(65_536, 4)],
      ];
      for (const [label, data] of cases) {
        socket.send(data);
        const got = await inbox.take();
        assert.ok(Buffer.isBuffer(got), `${label}: echo is not a Buffer but ${Object.prototype.toString.call(got)}`);
        assert.deepEqual(got, toBuffer(data), `${label}: echoed bytes differ`);
      }
    });

    test("empty binary message echo", async (t) => {
      const srv = await useServer(t);
      const { socket, inbox } = await openSocket(t, srv.url, opts);
      socket.send(new Uint8Array(0));
      socket.send("after-empty");
      const got = await inbox.waitFor(2);
      assert.ok(Buffer.isBuffer(got[0]), `echo is ${Object.prototype.toString.call(got[0])} ${JSON.stringify(got[0])}`);
      assert.equal(got[0].length, 0);
      assert.equal(got[1], "after-empty");
    });

    test("200 mixed messages sent in one burst come back in order", async (t) => {
      const srv = await useServer(t);
      const { socket, inbox } = await openSocket(t, srv.url, opts);
      const sent = [];
      for (let i = 0; i < 200; i++) {
        const m = i % 3 === 2 ? bytes(i + 1, i) : `msg ${i}`;
        sent.push(m);
        socket.send(m);
      }
      socket.send("end");
      const got = await inbox.waitFor(201, 10_000);
      assert.equal(got.at(-1), "end");
      assert.deepEqual(got.slice(0, 200), sent);
      assert.equal(inbox.messages.length, 201, "extra messages after the sentinel");
    });

    test("messages sent one at a time over 100 event-loop turns come back in order", async (t) => {
      const srv = await useServer(t);
      const { socket, inbox } = await openSocket(t, srv.url, opts);
      const sent = [];
      for (let i = 0; i < 100; i++) {
        const m = i % 2 ? `n${i}` : bytes(5, i);
        sent.push(m);
        socket.send(m);
        await new Promise((r) => setImmediate(r));
      }
      const got = await inbox.waitFor(100, 10_000);
      assert.deepEqual(got, sent);
    });

    test("messages sent before 'open' are delivered after it", async (t) => {
      const srv = await useServer(t);
      const { socket, inbox, opened } = createSocket(t, srv.url, opts);
      socket.send("early-1");
      socket.send(bytes(3, 9));
      socket.send("early-3");
      await opened;
      const got = await inbox.waitFor(3);
      assert.deepEqual(got, ["early-1", bytes(3, 9), "early-3"]);
    });

    test("client close() ends the session cleanly", async (t) => {
      const srv = await useServer(t);
      const { socket, inbox } = await openSocket(t, srv.url, opts);
      socket.send("x");
      assert.equal(await inbox.take(), "x");
      const closed = nextEvent(socket, "close", { timeout: 5000 });
      socket.close();
      const [reason] = await closed;
      assert.equal(reason, "forced close");
      assert.equal(socket.readyState, "closed");
      // The server keeps serving.
      const other = await openSocket(t, srv.url, opts);
      other.socket.send("still there");
      assert.equal(await other.inbox.take(), "still there");
    });
  });
}

describe("upgrade (polling then websocket)", () => {
  test("the upgrade event fires and the transport becomes websocket", async (t) => {
    const srv = await useServer(t);
    const { socket, inbox, opened } = createSocket(t, srv.url, TRANSPORTS.upgrade);
    const upgraded = nextEvent(socket, "upgrade", { timeout: 5000, failOn: ["close", "upgradeError"] });
    await opened;
    assert.equal(socket.transport.name, "polling");
    const [transport] = await upgraded;
    assert.equal(transport.name, "websocket");
    assert.equal(socket.transport.name, "websocket");
    assert.equal(socket.readyState, "open");
    socket.send("after upgrade");
    socket.send(bytes(10, 1));
    assert.deepEqual(await inbox.waitFor(2), ["after upgrade", bytes(10, 1)]);
  });

  test("messages sent before, during and after the upgrade arrive once each, in order", async (t) => {
    const srv = await useServer(t);
    const { socket, inbox } = createSocket(t, srv.url, TRANSPORTS.upgrade);
    const phases = { beforeOpen: 0, polling: 0, upgrading: 0, inUpgradeEvent: 0, websocket: 0 };
    const sent = [];
    let i = 0;
    const send = (phase) => {
      const m = i % 4 === 3 ? bytes(8, i) : `m${i}`;
      i++;
      sent.push(m);
      phases[phase]++;
      socket.send(m);
    };
    const phaseNow = () =>
      socket.readyState !== "open" ? "beforeOpen" : socket.upgrading ? "upgrading" : socket.transport.name;

    for (let k = 0; k < 20; k++) send("beforeOpen");
    socket.on("open", () => {
      for (let k = 0; k < 20; k++) send("polling");
    });
    // "upgrading": the probe succeeded and the polling transport is being paused.
    socket.on("upgrading", () => {
      for (let k = 0; k < 20; k++) send("upgrading");
    });
    socket.on("upgrade", () => {
      for (let k = 0; k < 20; k++) send("inUpgradeEvent");
    });
    const upgraded = nextEvent(socket, "upgrade", { timeout: 5000, failOn: ["close", "upgradeError"] });

    // Keep sending on every timer tick until the upgrade is done and at least
    // 200 messages (50 of them after the upgrade) are out.
    await new Promise((resolve, reject) => {
      let afterUpgrade = 0;
      const started = Date.now();
      const tick = () => {
        if (socket.readyState === "closed") return reject(new Error("socket closed while sending"));
        if (Date.now() - started > 10_000) return reject(new Error(`upgrade not done after 10 s (${JSON.stringify(phases)})`));
        if (socket.readyState === "open") {
          const phase = phaseNow();
          send(phase);
          if (phase === "websocket") afterUpgrade++;
        }
        if (afterUpgrade >= 50 && sent.length >= 200) return resolve();
        setTimeout(tick, 1);
      };
      tick();
    });
    await upgraded;
    socket.send("end");
    const got = await inbox.waitFor(sent.length + 1, 15_000);
    assert.equal(got.at(-1), "end");
    // Compare as printable lists so a failure shows where the order breaks.
    const show = (m) => (typeof m === "string" ? m : `bin:${toBuffer(m).toString("hex")}`);
    assert.deepEqual(got.slice(0, -1).map(show), sent.map(show), `phases ${JSON.stringify(phases)}`);
    assert.equal(inbox.messages.length, sent.length + 1, "messages after the sentinel (duplicates?)");
    assert.equal(socket.transport.name, "websocket");
    for (const phase of ["beforeOpen", "polling", "upgrading", "inUpgradeEvent", "websocket"]) {
      assert.ok(phases[phase] > 0, `no message was sent in phase ${phase}: ${JSON.stringify(phases)}`);
    }
    t.diagnostic(`sent ${sent.length} messages: ${JSON.stringify(phases)}`);
  });

  test("large messages queued while upgrading are not lost", async (t) => {
    const srv = await useServer(t);
    const { socket, inbox } = createSocket(t, srv.url, TRANSPORTS.upgrade);
    const sent = [];
    socket.on("upgrading", () => {
      for (let k = 0; k < 5; k++) {
        const m = k % 2 ? "y".repeat(100_000 + k) : bytes(100_000 + k, k);
        sent.push(m);
        socket.send(m);
      }
    });
    await nextEvent(socket, "upgrade", { timeout: 5000, failOn: ["close", "upgradeError"] });
    const got = await inbox.waitFor(5, 10_000);
    assert.deepEqual(got, sent);
  });
});

describe("heartbeat (--ping-interval 100ms --ping-timeout 100ms)", () => {
  // 100 ms timeouts: never run next to the 500-client test (another file, another process).
  let release;
  before(async () => {
    release = await acquire("timing");
  });
  after(() => release?.());

  for (const [name, opts] of Object.entries(TRANSPORTS)) {
    test(`${name}: stays connected for 1.5 s of ping rounds`, async (t) => {
      const srv = await useServer(t, { args: ["--ping-interval", "100ms", "--ping-timeout", "100ms"] });
      const { socket, inbox } = await openSocket(t, srv.url, opts);
      assert.equal(socket._pingInterval, 100);
      assert.equal(socket._pingTimeout, 100);
      const started = Date.now();
      let pings = 0;
      const timeline = []; // for failure messages
      const mark = (what) => timeline.push(`${Date.now() - started}ms ${what}`);
      socket.on("upgrade", () => mark("upgrade"));
      socket.on("ping", () => mark("ping"));
      // Wait until 1.5 s have passed AND at least 10 pings arrived; fail at once on close.
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`only ${pings} pings in 4 s`));
        }, 4000);
        const onPing = () => {
          pings++;
          if (pings >= 10 && Date.now() - started >= 1500) {
            cleanup();
            resolve();
          }
        };
        const onClose = (reason, desc) => {
          cleanup();
          reject(
            new Error(
              `closed after ${Date.now() - started} ms and ${pings} pings on ${socket.transport?.name}: ` +
                `${reason} ${desc?.message ?? desc?.description ?? ""} [${timeline.join(", ")}]`,
            ),
          );
        };
        const cleanup = () => {
          clearTimeout(timer);
          socket.off("ping", onPing);
          socket.off("close", onClose);
        };
        socket.on("ping", onPing);
        socket.on("close", onClose);
      });
      const elapsed = Date.now() - started;
      // One ping per ~100 ms: about 15 in 1.5 s. Far more would mean the interval is ignored.
      assert.ok(pings <= Math.ceil(elapsed / 100) + 3, `${pings} pings in ${elapsed} ms: interval not respected`);
      assert.equal(socket.readyState, "open");
      if (name === "upgrade") assert.equal(socket.transport.name, "websocket");
      socket.send("still alive");
      assert.equal(await inbox.take(), "still alive");
      await closeQuietly(socket);
    });
  }

  test("a client that stops answering pings is closed by the server", async (t) => {
    const srv = await useServer(t, { args: ["--ping-interval", "100ms", "--ping-timeout", "100ms"] });
    const { socket } = await openSocket(t, srv.url, TRANSPORTS.websocket);
    // Swallow outgoing pongs: the server must give up after pingInterval + pingTimeout.
    const write = socket.transport.write.bind(socket.transport);
    socket.transport.write = (packets) => write(packets.filter((p) => p.type !== "pong"));
    // Server: ping at ~100 ms, no pong by ~200 ms -> close. The client's own timer
    // (pingInterval + pingTimeout after the last ping) would only fire at ~300 ms.
    const started = Date.now();
    const [reason] = await nextEvent(socket, "close", { timeout: 3000 });
    const elapsed = Date.now() - started;
    assert.equal(reason, "transport close", `closed by ${reason} after ${elapsed} ms`);
    assert.ok(elapsed < 1500, `server took ${elapsed} ms to drop a silent client`);
  });
});
