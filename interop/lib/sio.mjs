// Helpers for driving the official socket.io-client (4.x, and 2.x as
// "socket.io-client-v2") against `testserver --mode sio` from node:test.
// Every wait has a timeout; every client and server started here is closed by
// a t.after hook.
//
//   const srv = await useSioServer(t, { args: ["--recovery", "2m"] });
//   const c = await connect(t, srv.url, SETUPS.websocket, { auth: { token: "abc" } });
//   c.socket.emit("message", 1);
//   assert.deepEqual(await c.next("message-back"), [1]);
//
// With HERALD_INTEROP_SERVER=node the Node.js reference
// (lib/sio-reference-server.mjs, official `socket.io` 4.8.4) is started
// instead of the Go testserver, to check the tests against the reference.

import path from "node:path";
import { fileURLToPath } from "node:url";
import { io, Manager } from "socket.io-client";
import ioV2 from "socket.io-client-v2";
import { startServer } from "./server.mjs";

export { io, Manager, ioV2 };

const here = path.dirname(fileURLToPath(import.meta.url));
const referenceServer = path.join(here, "sio-reference-server.mjs");

/** Default heartbeat for tests that are not about timing (robust on a loaded 2-core machine). */
export const RELAXED = ["--ping-interval", "1s", "--ping-timeout", "2s"];

/** true when the tests run against the Node.js reference server. */
export const againstNode = process.env.HERALD_INTEROP_SERVER === "node";

/**
 * Starts `testserver --mode sio` (or the Node.js reference) with `args`
 * (default: RELAXED heartbeat). Stopped in t.after when `t` is given.
 */
export async function useSioServer(t, { args = RELAXED, ...rest } = {}) {
  let srv;
  if (againstNode) {
    // server.mjs starts its own (Engine.IO) reference when HERALD_INTEROP_SERVER=node.
    // Point it at the Socket.IO reference instead: startServer reads both
    // variables synchronously, before its first await.
    const saved = { node: process.env.HERALD_INTEROP_SERVER, bin: process.env.HERALD_TESTSERVER };
    delete process.env.HERALD_INTEROP_SERVER;
    process.env.HERALD_TESTSERVER = referenceServer;
    try {
      srv = startServer({ mode: "sio", args, ...rest });
    } finally {
      process.env.HERALD_INTEROP_SERVER = saved.node;
      if (saved.bin === undefined) delete process.env.HERALD_TESTSERVER;
      else process.env.HERALD_TESTSERVER = saved.bin;
    }
  } else {
    srv = startServer({ mode: "sio", args, ...rest });
  }
  srv = await srv;
  if (t) {
    t.after(async () => {
      await srv.stop();
      if (process.env.HERALD_INTEROP_VERBOSE) {
        process.stderr.write(`--- testserver log (${t.name}) ---\n${srv.logs()}`);
      }
    });
  }
  return srv;
}

/** The three transport setups every scenario runs over. */
export const SETUPS = {
  websocket: { transports: ["websocket"] },
  polling: { transports: ["polling"] },
  // default transports: polling first, then upgrade to WebSocket
  upgrade: {},
};
export const SETUP_NAMES = Object.keys(SETUPS);

/** Rejects with a descriptive error if `promise` does not settle within `ms`. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function describe(v) {
  if (v instanceof Error) {
    return `${v.name}: ${v.message}${v.data !== undefined ? ` data=${JSON.stringify(v.data)}` : ""}${
      v.description ? ` [${v.description?.message ?? v.description}]` : ""
    }`;
  }
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

/**
 * Resolves with the arguments of the next `event` on `emitter`, or rejects
 * after `timeout` ms, or as soon as one of `failOn` fires.
 */
export function nextEvent(emitter, event, { timeout = 5000, failOn = [] } = {}) {
  return new Promise((resolve, reject) => {
    const cleanups = [];
    const cleanup = () => cleanups.forEach((f) => f());
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeout} ms waiting for "${event}"`));
    }, timeout);
    cleanups.push(() => clearTimeout(timer));
    const on = (name, fn) => {
      emitter.on(name, fn);
      cleanups.push(() => emitter.off(name, fn));
    };
    on(event, (...args) => {
      cleanup();
      resolve(args);
    });
    for (const name of failOn) {
      on(name, (...args) => {
        cleanup();
        reject(new Error(`got "${name}" (${args.map(describe).join(", ")}) while waiting for "${event}"`));
      });
    }
  });
}

/**
 * Records every event a socket receives (via onAny, plus the reserved
 * connect/disconnect/connect_error), in order, and lets a test await them.
 */
export class Recorder {
  constructor(socket) {
    this.socket = socket;
    /** [{event, args}] in arrival order (args without a trailing ack callback). */
    this.all = [];
    this.disconnects = []; // reasons
    this._waiters = new Set();
    socket.onAny((event, ...args) => {
      if (typeof args[args.length - 1] === "function") args = args.slice(0, -1);
      this.all.push({ event, args });
      this._wake();
    });
    socket.on("disconnect", (reason) => {
      this.disconnects.push(reason);
      this._wake();
    });
  }

  _wake() {
    for (const w of [...this._waiters]) w();
  }

  /** Argument lists of every `event` received so far. */
  of(event) {
    return this.all.filter((e) => e.event === event).map((e) => e.args);
  }

  /**
   * Waits until `n` `event`s have arrived in total (since the socket was
   * created); returns their argument lists. Fails on timeout, or on a
   * disconnect unless `allowDisconnect`.
   */
  waitFor(event, n = 1, { timeout = 5000, allowDisconnect = false } = {}) {
    const start = this.disconnects.length;
    return new Promise((resolve, reject) => {
      let timer;
      const finish = () => {
        clearTimeout(timer);
        this._waiters.delete(check);
      };
      const check = () => {
        const got = this.of(event);
        if (got.length >= n) {
          finish();
          resolve(got.slice(0, n));
        } else if (!allowDisconnect && this.disconnects.length > start) {
          finish();
          reject(new Error(`disconnected (${this.disconnects.at(-1)}) after ${got.length} of ${n} "${event}"`));
        }
      };
      timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeout} ms: got ${this.of(event).length} of ${n} "${event}"`));
      }, timeout);
      this._waiters.add(check);
      check();
    });
  }

  /** Waits for the next `event` after the ones already returned by next() for that event. */
  async next(event, opts) {
    this._taken ??= {};
    const n = (this._taken[event] ?? 0) + 1;
    const all = await this.waitFor(event, n, opts);
    this._taken[event] = n;
    return all[n - 1];
  }

  /** Waits for the next "disconnect"; resolves with its reason. */
  nextDisconnect({ timeout = 5000 } = {}) {
    this._takenDisc = (this._takenDisc ?? 0) + 1;
    const n = this._takenDisc;
    return new Promise((resolve, reject) => {
      let timer;
      const finish = () => {
        clearTimeout(timer);
        this._waiters.delete(check);
      };
      const check = () => {
        if (this.disconnects.length >= n) {
          finish();
          resolve(this.disconnects[n - 1]);
        }
      };
      timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeout} ms waiting for "disconnect"`));
      }, timeout);
      this._waiters.add(check);
      check();
    });
  }
}

/** Resolves on "connect"; rejects on "connect_error" or timeout. */
export function waitConnect(socket, { timeout = 5000 } = {}) {
  if (socket.connected) return Promise.resolve();
  return nextEvent(socket, "connect", { timeout, failOn: ["connect_error"] }).then(() => undefined);
}

/** Closes a v4 socket and its manager (bounded, never throws). */
export async function closeClient(socket) {
  try {
    socket.disconnect();
  } catch {}
  try {
    socket.io._close?.();
  } catch {}
}

const defaultsV4 = { forceNew: true, reconnection: false, timeout: 5000 };

/**
 * Creates a socket.io-client 4 socket (closed in t.after) without waiting.
 * `setup` is one of SETUPS; `opts` are extra client options (reconnection is
 * off unless asked for). Returns {socket, rec, connected}.
 */
export function createClient(t, url, setup = {}, opts = {}) {
  const socket = io(url, { ...defaultsV4, ...setup, ...opts });
  const rec = new Recorder(socket);
  socket.on("connect_error", () => {}); // tests that care listen themselves
  if (t) t.after(() => closeClient(socket));
  const connected = waitConnect(socket);
  connected.catch(() => {});
  return { socket, rec, connected, next: (ev, o) => rec.next(ev, o) };
}

/** createClient + wait for "connect" and (for the upgrade setup) nothing else. */
export async function connect(t, url, setup = {}, opts = {}) {
  const c = createClient(t, url, setup, opts);
  await c.connected;
  return c;
}

/**
 * A Manager (one Engine.IO connection) with sockets on several namespaces,
 * closed in t.after. Returns {manager, sockets: {[nsp]: {socket, rec, next}}}.
 */
export async function connectManager(t, url, setup = {}, namespaces = ["/"], opts = {}) {
  const manager = new Manager(url, { ...defaultsV4, ...setup, ...opts });
  if (t) t.after(() => manager._close());
  const sockets = {};
  for (const nsp of namespaces) {
    const socket = manager.socket(nsp, opts.auth ? { auth: opts.auth } : {});
    const rec = new Recorder(socket);
    socket.on("connect_error", () => {});
    if (t) t.after(() => closeClient(socket));
    sockets[nsp] = { socket, rec, next: (ev, o) => rec.next(ev, o) };
  }
  await Promise.all(Object.values(sockets).map((s) => waitConnect(s.socket)));
  return { manager, sockets };
}

/** Name of the Engine.IO transport a v4 socket currently uses. */
export const transportOf = (socket) => socket.io.engine?.transport?.name;

/**
 * Waits until a v4 socket's connection has upgraded to WebSocket (for the
 * "upgrade" setup); for the other setups checks the transport did not change.
 */
export async function settleTransport(socket, setupName, { timeout = 5000 } = {}) {
  const engine = socket.io.engine;
  if (setupName === "upgrade") {
    if (engine.transport.name !== "websocket") {
      await nextEvent(engine, "upgrade", { timeout, failOn: ["close", "upgradeError"] });
    }
    if (engine.transport.name !== "websocket") {
      throw new Error(`expected an upgrade to websocket, transport is ${engine.transport.name}`);
    }
  } else {
    const want = SETUPS[setupName].transports[0];
    if (engine.transport.name !== want) throw new Error(`transport is ${engine.transport.name}, want ${want}`);
  }
}

/**
 * Emits `event` with `args` and an ack callback; resolves with every argument
 * of the ack, or rejects after `timeout` ms.
 */
export function call(socket, event, ...args) {
  return callWithTimeout(socket, 5000, event, ...args);
}

export function callWithTimeout(socket, timeout, event, ...args) {
  return new Promise((resolve, reject) => {
    socket.timeout(timeout).emit(event, ...args, (err, ...reply) => {
      if (err) reject(new Error(`no ack for "${event}" within ${timeout} ms: ${err.message}`));
      else resolve(reply);
    });
  });
}

/** Polls `fn` (async) every 25 ms until it returns truthy; returns that value. */
export async function until(fn, { timeout = 5000, what = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** Ids of the sockets the server lists for `rooms` (via the "fetch" event of `socket`), sorted. */
export async function fetchIds(socket, rooms) {
  const [list] = await call(socket, "fetch", rooms === undefined ? {} : { rooms });
  if (!Array.isArray(list)) throw new Error(`fetch answered ${JSON.stringify(list)}`);
  return list.map((s) => s.id).sort();
}

/** Bytes of a received binary value as a Buffer; throws if it is not binary. */
export function toBuffer(data) {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError(`not binary: ${Object.prototype.toString.call(data)}`);
}

// ---- socket.io-client 2.x (Engine.IO v3) ----

const defaultsV2 = { forceNew: true, reconnection: false, timeout: 5000 };

/** Creates a socket.io-client 2 socket (closed in t.after). Returns {socket, rec, connected}. */
export function createClientV2(t, url, setup = {}, opts = {}) {
  const socket = ioV2(url, { ...defaultsV2, ...setup, ...opts });
  const rec = new RecorderV2(socket);
  socket.on("connect_error", () => {});
  socket.on("error", () => {});
  if (t) {
    t.after(() => {
      try {
        socket.close();
        socket.io.close?.();
      } catch {}
    });
  }
  const connected = socket.connected
    ? Promise.resolve()
    : nextEvent(socket, "connect", { timeout: 5000, failOn: ["connect_error", "error"] }).then(() => undefined);
  connected.catch(() => {});
  return { socket, rec, connected, next: (ev, o) => rec.next(ev, o) };
}

export async function connectV2(t, url, setup = {}, opts = {}) {
  const c = createClientV2(t, url, setup, opts);
  await c.connected;
  return c;
}

/** Recorder for the 2.x client, which has no onAny: records the listed events. */
export class RecorderV2 extends Recorder {
  constructor(socket) {
    super({ onAny() {}, on(ev, fn) { socket.on(ev, fn); } });
    this.socket = socket;
  }
  /** Starts recording `event` (call before it can arrive). */
  record(...events) {
    for (const event of events) {
      this.socket.on(event, (...args) => {
        if (typeof args[args.length - 1] === "function") args = args.slice(0, -1);
        this.all.push({ event, args });
        this._wake();
      });
    }
    return this;
  }
}

/** 2.x emit with ack, bounded (2.x has no timeout()). Resolves with the ack's arguments. */
export function callV2(socket, event, ...args) {
  return withTimeout(new Promise((resolve) => socket.emit(event, ...args, (...reply) => resolve(reply))), 5000, `ack of "${event}"`);
}
