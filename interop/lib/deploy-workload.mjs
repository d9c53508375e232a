// The workload of the load-balancer tests: many official socket.io-client
// clients behind one balancer URL join rooms and exchange room broadcasts,
// acks and broadcasts-with-acks in rounds, and everything they see is
// counted: connects, disconnects (with reasons), connect errors, Engine.IO
// errors (a 400 on a poll is "Session ID unknown"), missing and duplicate
// messages.
//
//   const w = await Workload.connect(t, lb.url, { transports: ["polling"] });
//   await w.run(3000);                 // strict rounds for about 3 s
//   w.assertClean();                   // zero errors, zero lost messages
//
// Each client binds its own loopback address (127.0.0.10 and up), so a
// balancer that hashes the client address sees 200 different clients.

import assert from "node:assert/strict";
import http from "node:http";
import { io } from "socket.io-client";
import { sleep, until } from "./deploy.mjs";

const ACK_TIMEOUT_MS = 20_000;
let workloadSeq = 0;
const DELIVERY_TIMEOUT_MS = 20_000;

export class Workload {
  /**
   * Connects `clients` clients to url and joins each to one of `rooms`
   * rooms. opts.transports: socket.io-client transports (default: polling
   * then upgrade). opts.reconnection: let clients reconnect (failover tests).
   */
  static async connect(t, url, { clients = 200, rooms = 10, transports, reconnection = false, connectTimeout = 60_000 } = {}) {
    const w = new Workload(url, { rooms, transports, reconnection });
    t.after(() => w.close());
    // Connect in batches: 200 handshakes at once through one proxy on a
    // busy 2-core machine can take longer than a client's connect timeout.
    const batch = 25;
    for (let i = 0; i < clients; i += batch) {
      const part = [];
      for (let j = i; j < Math.min(clients, i + batch); j++) part.push(w.add(j));
      await Promise.all(part);
    }
    // Without reconnection a client that failed has given up: stop waiting
    // for it and report.
    const settledOrGaveUp = (c) => (c.socket.connected && c.joined) || (!reconnection && (c.connectErrors.length > 0 || c.disconnects.length > 0));
    await until(() => w.clients.every(settledOrGaveUp), connectTimeout, "every client connected and in its room").catch((err) => {
      throw new Error(`${err.message}\n${JSON.stringify(w.summary(), null, 1)}`);
    });
    const failed = w.clients.filter((c) => !(c.socket.connected && c.joined));
    if (failed.length > 0) throw new Error(`${failed.length} clients failed to connect:\n${JSON.stringify(w.summary(), null, 1)}`);
    return w;
  }

  constructor(url, { rooms, transports, reconnection }) {
    this.url = url;
    this.rooms = rooms;
    this.transports = transports;
    this.reconnection = reconnection;
    this.clients = [];
    // Rooms of their own: sessions of an earlier workload may linger on
    // the nodes until their ping timeout.
    this.roomPrefix = `w${++workloadSeq}-`;
    this.roundNo = 0;
    this.strictRounds = 0;
    this.lost = []; // {round, client, id}
    this.duplicates = [];
    this.ackFailures = [];
  }

  add(i) {
    const localAddress = `127.0.0.${10 + (i % 240)}`;
    const agent = new http.Agent({ localAddress, keepAlive: true });
    const opts = {
      forceNew: true,
      withCredentials: true, // keeps cookies (HAProxy's io, Apache's route) in Node.js
      agent,
      localAddress, // the WebSocket transport
      reconnection: this.reconnection,
      reconnectionDelay: 200,
      reconnectionDelayMax: 1000,
      randomizationFactor: 0.5,
      timeout: 20_000,
    };
    if (this.transports) opts.transports = this.transports;
    const socket = io(this.url, opts);
    const c = {
      i,
      room: `${this.roomPrefix}room${i % this.rooms}`,
      socket,
      agent,
      joined: false,
      connects: 0,
      disconnects: [],
      connectErrors: [],
      engineErrors: [],
      received: new Map(), // message id -> count
      node: null,
    };
    socket.on("connect", () => {
      c.connects++;
      c.joined = false;
      socket.timeout(ACK_TIMEOUT_MS).emit("join", c.room, (err, ok) => {
        if (!err && ok === true) c.joined = true;
      });
    });
    socket.on("disconnect", (reason) => {
      c.joined = false;
      c.disconnects.push(reason);
    });
    socket.on("connect_error", (err) => c.connectErrors.push(err.message + (err.description ? ` (${err.description})` : "")));
    socket.io.on("error", (err) => c.engineErrors.push(`${err.message}${err.description !== undefined ? ` (${describe(err.description)})` : ""}`));
    socket.on("msg", (id) => c.received.set(id, (c.received.get(id) ?? 0) + 1));
    socket.on("ask", (x, ack) => ack({ i, x }));
    this.clients.push(c);
    return new Promise((resolve) => {
      if (socket.connected) return resolve();
      const done = () => {
        socket.off("connect", done);
        socket.off("connect_error", done);
        resolve();
      };
      socket.on("connect", done);
      socket.on("connect_error", done);
    });
  }

  /**
   * One round: every client broadcasts a fresh id to its room (each member
   * must receive it exactly once), does a message-with-ack, and one client
   * per room broadcasts with acks (every member must answer). With
   * strict=false (while nodes fail) nothing is recorded as a failure.
   */
  async round({ strict = true } = {}) {
    const r = ++this.roundNo;
    const members = {};
    for (const c of this.clients) (members[c.room] ??= []).push(c);
    const sent = [];
    const acks = this.clients.map(async (c) => {
      const id = `${r}:${c.i}`;
      try {
        const ok = await emitAck(c.socket, "broadcast", { to: c.room, event: "msg", args: [id] });
        if (ok[0] !== true) throw new Error(`broadcast acked ${JSON.stringify(ok)}`);
        sent.push({ c, id });
      } catch (err) {
        if (strict) this.ackFailures.push(`round ${r} client ${c.i} broadcast: ${err.message}`);
      }
      try {
        const echo = await emitAck(c.socket, "message-with-ack", id, { n: c.i });
        assert.deepEqual(echo, [id, { n: c.i }]);
      } catch (err) {
        if (strict) this.ackFailures.push(`round ${r} client ${c.i} message-with-ack: ${err.message}`);
      }
    });
    // One broadcast with acks per room: every member answers.
    const asks = Object.entries(members).map(async ([room, list]) => {
      try {
        const [reply] = await emitAck(list[0].socket, "broadcast", { to: room, event: "ask", args: [r], ackTimeoutMs: 10_000 });
        const got = (reply?.responses ?? []).map((x) => x.i).sort((a, b) => a - b);
        const want = list.map((c) => c.i).sort((a, b) => a - b);
        assert.deepEqual(got, want, `acks of the members of ${room}`);
        if (reply.err) throw new Error(`err ${JSON.stringify(reply.err)}`);
      } catch (err) {
        if (strict) this.ackFailures.push(`round ${r} ${room} broadcast with acks: ${err.message.split("\n")[0]}`);
      }
    });
    await Promise.all([...acks, ...asks]);
    if (!strict) return;
    this.strictRounds++;
    const delivered = () => sent.every(({ c, id }) => members[c.room].every((m) => m.received.has(id)));
    try {
      await until(delivered, DELIVERY_TIMEOUT_MS, `round ${r} deliveries`);
    } catch {}
    for (const { c, id } of sent) {
      for (const m of members[c.room]) {
        const n = m.received.get(id) ?? 0;
        if (n === 0) this.lost.push({ round: r, to: m.i, id });
        if (n > 1) this.duplicates.push({ round: r, to: m.i, id, n });
      }
    }
  }

  /** Strict rounds for about ms milliseconds (at least two). */
  async run(ms) {
    const end = Date.now() + ms;
    do {
      await this.round();
    } while (Date.now() < end || this.strictRounds < 2);
  }

  /** Waits until every client is connected again and back in its room. */
  async settled(timeout = 60_000) {
    await until(() => this.clients.every((c) => c.socket.connected && c.joined), timeout, "every client reconnected and in its room").catch((err) => {
      const off = this.clients.filter((c) => !(c.socket.connected && c.joined)).map((c) => c.i);
      throw new Error(`${err.message}: ${off.length} not (${off.slice(0, 20).join(",")})`);
    });
  }

  /** Asks every client which node it is on: {node: count}. */
  async nodes() {
    const count = {};
    await Promise.all(
      this.clients.map(async (c) => {
        try {
          const [me] = await emitAck(c.socket, "whoami");
          c.node = me.node;
          count[me.node] = (count[me.node] ?? 0) + 1;
        } catch (err) {
          this.ackFailures.push(`client ${c.i} whoami: ${err.message}`);
        }
      }),
    );
    return count;
  }

  summary() {
    const sum = (f) => this.clients.reduce((n, c) => n + f(c), 0);
    const transports = {};
    for (const c of this.clients) {
      const name = c.socket.io.engine?.transport?.name ?? "none";
      transports[name] = (transports[name] ?? 0) + 1;
    }
    const errs = this.clients.flatMap((c) => c.engineErrors);
    return {
      clients: this.clients.length,
      connected: this.clients.filter((c) => c.socket.connected).length,
      strictRounds: this.strictRounds,
      reconnects: sum((c) => Math.max(0, c.connects - 1)),
      disconnects: sum((c) => c.disconnects.length),
      disconnectReasons: tally(this.clients.flatMap((c) => c.disconnects)),
      connectErrors: tally(this.clients.flatMap((c) => c.connectErrors)),
      engineErrors: tally(errs),
      sessionUnknown: errs.filter((e) => e.includes("(400")).length,
      lost: this.lost.length,
      duplicates: this.duplicates.length,
      ackFailures: this.ackFailures.length,
      transports,
    };
  }

  /**
   * Asserts a clean run: no connect error, no disconnect, no Engine.IO
   * error, nothing lost or duplicated, every ack answered.
   */
  assertClean({ transport } = {}) {
    const s = this.summary();
    const detail = `${JSON.stringify(s, null, 1)}\nlost: ${JSON.stringify(this.lost.slice(0, 10))}\nacks: ${this.ackFailures.slice(0, 10).join("\n")}`;
    assert.ok(s.strictRounds >= 2, `only ${s.strictRounds} rounds ran`);
    assert.equal(s.connected, s.clients, `clients not connected:\n${detail}`);
    assert.equal(s.sessionUnknown, 0, `"Session ID unknown" answers:\n${detail}`);
    assert.deepEqual(s.connectErrors, {}, `connect errors:\n${detail}`);
    assert.deepEqual(s.engineErrors, {}, `Engine.IO errors:\n${detail}`);
    assert.equal(s.disconnects, 0, `disconnects:\n${detail}`);
    assert.equal(s.lost, 0, `lost messages:\n${detail}`);
    assert.equal(s.duplicates, 0, `duplicate messages:\n${detail}`);
    assert.equal(s.ackFailures, 0, `ack failures:\n${detail}`);
    if (transport) assert.deepEqual(s.transports, { [transport]: s.clients }, `final transports:\n${detail}`);
    return s;
  }

  /** The value of cookie `name` in client i's cookie jar (Node.js clients keep one with withCredentials). */
  cookie(i, name) {
    const jar = this.clients[i].socket.io.engine?._cookieJar;
    if (!jar) return undefined;
    for (const [n, c] of jar.cookies) if (n === name) return c.value;
    return undefined;
  }

  close() {
    for (const c of this.clients) {
      c.socket.io.opts.reconnection = false;
      c.socket.disconnect();
      c.agent.destroy();
    }
  }
}

function emitAck(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    socket.timeout(ACK_TIMEOUT_MS).emit(event, ...args, (err, ...reply) => (err ? reject(new Error(`no ack for ${event}: ${err.message}`)) : resolve(reply)));
  });
}

function describe(d) {
  if (d === null || d === undefined) return String(d);
  if (typeof d === "number" || typeof d === "string") return String(d);
  if (d.message) return d.message;
  try {
    return JSON.stringify(d).slice(0, 100);
  } catch {
    return String(d);
  }
}

function tally(list) {
  const out = {};
  for (const x of list) out[x] = (out[x] ?? 0) + 1;
  return out;
}

export { sleep };
