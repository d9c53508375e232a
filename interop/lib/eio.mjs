// Helpers for driving the official engine.io-client from node:test.
// Every wait has a timeout; every socket opened here is closed by a t.after hook.

import { Socket } from "engine.io-client";

export { Socket };

/** Rejects with a descriptive error if `promise` does not settle within `ms`. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Resolves with the arguments of the next `event` on `emitter`, or rejects
 * after `timeout` ms, or as soon as one of `failOn` fires (e.g. "close").
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

function describe(v) {
  if (v instanceof Error) return `${v.name}: ${v.message}${v.description ? ` [${describe(v.description)}]` : ""}`;
  if (v && typeof v === "object") {
    if (v.description !== undefined || v.context !== undefined) {
      const code = v.context?.code ?? v.context?.status;
      return `{description: ${describe(v.description)}${code !== undefined ? `, code: ${code}` : ""}}`;
    }
    try {
      return JSON.stringify(v);
    } catch {
      return String(v);
    }
  }
  return String(v);
}

/**
 * Collects every message a socket receives, in order, and lets a test await
 * them. Any pending wait fails as soon as the socket closes.
 */
export class Inbox {
  constructor(socket) {
    this.socket = socket;
    this.messages = [];
    this.closed = null; // {reason, description} once closed
    this._waiters = [];
    socket.on("message", (data) => {
      this.messages.push(data);
      this._wake();
    });
    socket.on("close", (reason, description) => {
      this.closed = { reason, description };
      this._wake();
    });
  }

  _wake() {
    for (const w of [...this._waiters]) w();
  }

  /** Waits until at least `n` messages have arrived in total; returns messages[0..n). */
  waitFor(n, timeout = 5000) {
    return new Promise((resolve, reject) => {
      let timer;
      const check = () => {
        if (this.messages.length >= n) {
          finish();
          resolve(this.messages.slice(0, n));
        } else if (this.closed) {
          finish();
          reject(
            new Error(
              `socket closed (${this.closed.reason}: ${describe(this.closed.description)}) ` +
                `after ${this.messages.length} of ${n} messages`,
            ),
          );
        }
      };
      const finish = () => {
        clearTimeout(timer);
        this._waiters = this._waiters.filter((w) => w !== check);
      };
      timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeout} ms: got ${this.messages.length} of ${n} messages`));
      }, timeout);
      this._waiters.push(check);
      check();
    });
  }

  /** Waits for the next message after the ones already consumed with take(). */
  async take(timeout = 5000) {
    this._taken = (this._taken ?? 0) + 1;
    const all = await this.waitFor(this._taken, timeout);
    return all[this._taken - 1];
  }
}

/**
 * Creates an engine.io-client Socket for `url` (closed by t.after), without
 * waiting for it to open. Returns {socket, inbox, opened, errors, handshake}:
 * `opened` resolves on "open" and rejects on "error"/"close" or after
 * `timeout`; `errors` collects "error" events; `handshake` is the open
 * packet's data once received.
 */
export function createSocket(t, url, opts = {}, { timeout = 5000 } = {}) {
  const socket = new Socket(url, opts);
  const inbox = new Inbox(socket);
  // Keep an "error" listener so an unexpected error never becomes an unhandled exception;
  // tests that care assert on "close".
  const errors = [];
  socket.on("error", (err) => errors.push(err));
  const c = { socket, inbox, errors, handshake: null };
  // The open packet's JSON as the server sent it (before the client filters "upgrades").
  socket.once("handshake", (data) => {
    c.handshake = data;
  });
  const opened = nextEvent(socket, "open", { timeout, failOn: ["error", "close"] });
  opened.catch(() => {}); // callers await it; avoid an unhandled rejection if they do not
  if (t) {
    t.after(() => closeQuietly(socket));
  }
  c.opened = opened;
  return c;
}

/** createSocket + wait for "open". */
export async function openSocket(t, url, opts = {}, { timeout = 5000 } = {}) {
  const c = createSocket(t, url, opts, { timeout });
  await c.opened;
  return c;
}

/** Closes the socket if it is not closed yet and waits (bounded) for "close". */
export async function closeQuietly(socket, timeout = 5000) {
  if (socket.readyState === "closed") return;
  const closed = nextEvent(socket, "close", { timeout }).catch(() => {});
  try {
    socket.close();
  } catch {}
  await closed;
}

/** Bytes of a received binary message (Buffer / ArrayBuffer / view) as a Buffer. */
export function toBuffer(data) {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError(`not binary: ${typeof data} ${Object.prototype.toString.call(data)}`);
}

/** A deterministic byte pattern of length n, different for each seed. */
export function bytes(n, seed = 0) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

/** Transport configurations the tests run against. */
export const TRANSPORTS = {
  polling: { transports: ["polling"] },
  websocket: { transports: ["websocket"] },
  // default transports: polling first, then upgrade to websocket
  upgrade: {},
};
