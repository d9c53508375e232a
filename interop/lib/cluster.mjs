// Helpers for the cluster interop tests (interop/cluster/): a throw-away
// redis-server per test file, mixed clusters of Go testservers and Node.js
// socket.io nodes (lib/cluster-node-server.mjs) on one Redis, clients on every
// node, and bounded waits on Redis subscriptions.
//
//   const redis = useRedis();                      // at the top level of a test file
//   test("...", async (t) => {
//     const cl = await useCluster(t, redis, { adapter: "redis" });
//     const c = await cl.client(t, "G1", { rooms: ["r1"] });
//   });
//
// With HERALD_INTEROP_SERVER=node every "Go" node is a Node.js node as well
// (an all-Node cluster), to tell a test bug from a Herald bug.
// HERALD_INTEROP_VERBOSE=1 prints the logs of the nodes of each test.

import { spawn, spawnSync } from "node:child_process";
import { before, after } from "node:test";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "redis";
import { freePort, testserverBinary } from "./server.mjs";
import { Recorder, call, closeClient, io, until, waitConnect } from "./sio.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeServer = path.join(here, "cluster-node-server.mjs");

/** true when every node is a Node.js node (reference run). */
export const allNode = process.env.HERALD_INTEROP_SERVER === "node";

/** Heartbeat of every cluster node (robust on a loaded 2-core machine). */
export const HEARTBEAT = ["--ping-interval", "2s", "--ping-timeout", "5s"];

const READY_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;

const running = new Set();
process.on("exit", () => {
  for (const c of running) {
    try {
      c.kill("SIGKILL");
    } catch {}
  }
});

// ---------------------------------------------------------------- processes

function waitExit(child) {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
}

/**
 * Spawns `cmd args` and resolves once a line of its output matches `ready`.
 * Returns {child, logs(), stop()}; stop() sends SIGTERM, then SIGKILL after 5 s.
 */
function spawnReady(cmd, args, ready, what) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    running.add(child);
    let logText = "";
    let buf = "";
    let settled = false;
    const timer = setTimeout(() => fail(new Error(`${what} not ready within ${READY_TIMEOUT_MS} ms\n${logText}`)), READY_TIMEOUT_MS);
    const fail = (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      waitExit(child).then(() => reject(err));
    };
    const onData = (chunk) => {
      const s = chunk.toString("utf8");
      logText += s;
      buf += s;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (!settled && ready.test(line)) {
          settled = true;
          clearTimeout(timer);
          resolve(handle);
        }
      }
    };
    const handle = {
      child,
      logs: () => logText,
      running: () => child.exitCode === null && child.signalCode === null,
      stop: async (graceMs = STOP_GRACE_MS) => {
        if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode };
        child.kill("SIGTERM");
        let t;
        const timedOut = await Promise.race([
          waitExit(child).then(() => false),
          new Promise((r) => (t = setTimeout(() => r(true), graceMs))),
        ]);
        clearTimeout(t);
        if (timedOut) child.kill("SIGKILL");
        return { ...(await waitExit(child)), killed: timedOut };
      },
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", (err) => fail(new Error(`cannot run ${cmd}: ${err.message}`)));
    child.on("exit", (code, signal) => {
      running.delete(child);
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(new Error(`${what} exited before it was ready (code ${code}, signal ${signal}):\n${logText}`));
      }
    });
  });
}

/** Retries `start(port)` on fresh ports while it fails with "address in use". */
async function onFreePort(start) {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    try {
      return { port, proc: await start(port) };
    } catch (err) {
      if (attempt < 20 && /address already in use|Address already in use/i.test(err.message)) continue;
      throw err;
    }
  }
}

// ---------------------------------------------------------------- Redis

/** Path of redis-server, or null. */
export function redisServerPath() {
  const r = spawnSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" });
  const p = r.stdout?.trim();
  return r.status === 0 && p ? p : null;
}

/**
 * Why the cluster tests cannot run (a string to pass as `skip`), or false.
 * Throws when redis-server is missing and CI=true: CI must not skip them.
 */
export function redisSkipReason() {
  if (redisServerPath()) return false;
  if (process.env.CI === "true") {
    throw new Error("redis-server is not installed (CI=true: the cluster interop tests must run; apt-get install redis-server)");
  }
  return "redis-server is not installed";
}

/** Starts `redis-server` on a free loopback port (no persistence). */
export async function startRedis() {
  const bin = redisServerPath();
  if (!bin) throw new Error("redis-server is not installed");
  const started = await onFreePort((port) =>
    spawnReady(bin, redisArgs(port), /Ready to accept connections/, `redis-server :${port}`),
  );
  const port = started.port;
  let proc = started.proc;
  const url = `redis://127.0.0.1:${port}`;
  let client = null;
  return {
    port,
    url,
    logs: () => proc.logs(),
    /** A shared node-redis client for queries (PUBSUB …); connected lazily. */
    async client() {
      if (!client) {
        client = createClient({ url });
        client.on("error", () => {});
        await client.connect();
      }
      return client;
    },
    /** A new node-redis client (caller closes it). */
    async newClient() {
      const c = createClient({ url });
      c.on("error", () => {});
      await c.connect();
      return c;
    },
    /** Stops redis-server and starts it again on the same port (empty: no persistence). */
    async restart() {
      if (client) {
        try {
          client.disconnect();
        } catch {}
        client = null;
      }
      await proc.stop();
      for (let attempt = 0; ; attempt++) {
        try {
          proc = await spawnReady(bin, redisArgs(port), /Ready to accept connections/, `redis-server :${port}`);
          return;
        } catch (err) {
          if (attempt < 50 && /address already in use/i.test(err.message)) {
            await new Promise((r) => setTimeout(r, 100));
            continue;
          }
          throw err;
        }
      }
    },
    async stop() {
      if (client) {
        try {
          await client.quit();
        } catch {}
        client = null;
      }
      return proc.stop();
    },
  };
}

const redisArgs = (port) => ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];

/**
 * Registers top-level before/after hooks that start one redis-server for the
 * test file and stop it at the end. Returns a holder whose `.current` is the
 * running Redis (set once `before` has run). When redis-server is missing
 * (and CI is not "true"), `.skip` is the reason and nothing is started.
 */
export function useRedis() {
  const holder = { current: null, skip: false };
  try {
    holder.skip = redisSkipReason();
  } catch (err) {
    holder.error = err;
  }
  before(async () => {
    if (holder.error) throw holder.error;
    if (holder.skip) return;
    holder.current = await startRedis();
  });
  after(async () => {
    if (holder.current) await holder.current.stop();
  });
  return holder;
}

// ---------------------------------------------------------------- cluster nodes

/**
 * Starts one cluster node: kind "go" (interop/testserver) or "node"
 * (lib/cluster-node-server.mjs). Returns {name, kind, nodeId, url, port, stop, logs}.
 */
export async function startNode({ name, kind, redisUrl, adapter, shardedMode, nodeId, args = [] }) {
  const realKind = allNode ? "node" : kind;
  const flags = [
    "--mode",
    "sio",
    ...HEARTBEAT,
    "--redis",
    redisUrl,
    "--adapter",
    adapter,
    ...(adapter === "redis-sharded" ? ["--sharded-mode", shardedMode ?? "dynamic"] : []),
    "--node-id",
    nodeId,
    ...args,
  ];
  const cmd = realKind === "go" ? await testserverBinary() : process.execPath;
  const { port, proc } = await onFreePort((port) =>
    spawnReady(
      cmd,
      [...(realKind === "go" ? [] : [nodeServer]), ...flags, "--addr", `127.0.0.1:${port}`],
      /testserver listening/,
      `${name} (${realKind})`,
    ),
  );
  return { name, kind: realKind, nodeId, port, url: `http://127.0.0.1:${port}`, stop: proc.stop, logs: proc.logs, running: proc.running };
}

let clusterSeq = 0;

/**
 * Starts a cluster on `redis` (the holder from useRedis, or a started Redis)
 * and stops it in t.after: by default two Go nodes "G1", "G2" and one Node.js
 * node "N". Waits until every node reports server-count = number of nodes and
 * a broadcast from every node reaches a client on every node.
 *
 * @param {object} opts
 * @param {"redis"|"redis-sharded"} opts.adapter
 * @param {"dynamic"|"static"|"dynamic-private"} [opts.shardedMode]
 * @param {{name: string, kind: "go"|"node"}[]} [opts.nodes]
 */
export async function useCluster(t, redis, { adapter, shardedMode = "dynamic", nodes = DEFAULT_NODES } = {}) {
  const r = redis.current ?? redis;
  const seq = ++clusterSeq;
  const started = [];
  t.after(async () => {
    await Promise.all(started.map((n) => n.stop()));
    if (process.env.HERALD_INTEROP_VERBOSE) {
      for (const n of started) process.stderr.write(`--- ${n.name} (${n.kind}) log (${t.name}) ---\n${n.logs()}`);
    }
  });
  const results = await Promise.allSettled(
    nodes.map((spec) =>
      startNode({ ...spec, redisUrl: r.url, adapter, shardedMode, nodeId: `${spec.name.toLowerCase()}c${seq}` }).then((n) => {
        started.push(n);
        return n;
      }),
    ),
  );
  for (const res of results) if (res.status === "rejected") throw res.reason;
  const byName = Object.fromEntries(nodes.map((spec) => [spec.name, started.find((n) => n.name === spec.name)]));
  const cl = new Cluster(r, adapter, shardedMode, byName);
  await cl.ready(t);
  return cl;
}

export const DEFAULT_NODES = [
  { name: "G1", kind: "go" },
  { name: "G2", kind: "go" },
  { name: "N", kind: "node" },
];

const WS = { transports: ["websocket"] };
const clientDefaults = { forceNew: true, reconnection: false, timeout: 5000, ...WS };

let probeSeq = 0;

/** What the readiness probes (one client per node, connected for the whole test) answer to every ack. */
export const PROBE_ACK = "probe-ack";

export class Cluster {
  constructor(redis, adapter, shardedMode, nodes) {
    this.redis = redis;
    this.adapter = adapter;
    this.shardedMode = adapter === "redis-sharded" ? shardedMode : null;
    /** {name: node} */
    this.nodes = nodes;
    this.names = Object.keys(nodes);
  }

  /** Channel prefix of namespace `nsp` (the default key "socket.io"). */
  base(nsp = "/") {
    return `socket.io#${nsp}#`;
  }

  /**
   * Connects a socket.io-client (WebSocket only) to node `nodeName`,
   * namespace `nsp`, joins `rooms` (each acked), and records every event.
   * Closed in t.after. Returns {name, node, socket, rec, id}.
   */
  async client(t, nodeName, { rooms = [], name = nodeName, nsp = "/", opts = {} } = {}) {
    const node = this.nodes[nodeName];
    if (!node) throw new Error(`no node ${nodeName}`);
    const socket = io(node.url + (nsp === "/" ? "" : nsp), { ...clientDefaults, ...opts });
    const rec = new Recorder(socket);
    socket.on("connect_error", () => {});
    t.after(() => closeClient(socket));
    await waitConnect(socket, { timeout: 10_000 });
    for (const room of rooms) {
      const reply = await call(socket, "join", room);
      if (reply[0] !== true) throw new Error(`join ${room} on ${nodeName} answered ${JSON.stringify(reply)}`);
    }
    return { name, node: nodeName, socket, rec, id: socket.id, rooms: [socket.id, ...rooms] };
  }

  /**
   * Waits until every node counts `n` servers and a broadcast from each node
   * reaches a probe client on every node (the subscriptions are in place).
   */
  async ready(t) {
    const n = this.names.length;
    const probes = {};
    for (const name of this.names) {
      const p = await this.client(t, name, { name: `probe-${name}` });
      // The probes stay connected for the whole test (closing them would race
      // with the test's fetches): they answer every ack with PROBE_ACK.
      p.socket.onAny((...args) => {
        if (typeof args[args.length - 1] === "function") args[args.length - 1](PROBE_ACK);
      });
      probes[name] = p;
    }
    for (const name of this.names) {
      await until(
        async () => {
          const [count] = await call(probes[name].socket, "server-count");
          return count === n;
        },
        { timeout: 15_000, what: `server-count = ${n} on ${name}` },
      );
    }
    await flowing(Object.values(probes), Object.values(probes));
    // fetch assertions leave the probes' ids out, ack assertions PROBE_ACK.
    this.probes = probes;
    this.probeIds = Object.values(probes).map((p) => p.id);
  }

  /**
   * For the sharded adapter in the dynamic modes: waits until the room
   * channels of `rooms` ({room: number of nodes with a member}) have exactly
   * that many subscribers (SHARDNUMSUB), so a broadcast to the room cannot
   * race the subscription. A no-op for the other adapters and modes.
   * `privateRooms` (socket ids) count only in dynamic-private mode.
   */
  async roomChannels(expect, { privateRooms = {}, nsp = "/", timeout = 10_000 } = {}) {
    if (this.shardedMode !== "dynamic" && this.shardedMode !== "dynamic-private") return;
    const want = { ...expect, ...(this.shardedMode === "dynamic-private" ? privateRooms : {}) };
    const rc = await this.redis.client();
    const channels = Object.keys(want).map((room) => `${this.base(nsp)}${room}#`);
    if (channels.length === 0) return;
    let last = null;
    try {
      await until(
        async () => {
          last = await rc.pubSubShardNumSub(channels);
          return Object.entries(want).every(([room, n]) => last[`${this.base(nsp)}${room}#`] === n);
        },
        { timeout, what: "room channel subscriptions" },
      );
    } catch (err) {
      throw new Error(`${err.message}: want ${JSON.stringify(want)}, SHARDNUMSUB ${JSON.stringify(last)}`);
    }
  }

  /** Room → number of distinct nodes among `clients` that are in it (for roomChannels). */
  static roomNodes(clients, { privateRooms = false } = {}) {
    const m = {};
    for (const c of clients) {
      for (const room of c.rooms) {
        if (room === c.id && !privateRooms) continue;
        if (room !== c.id && privateRooms) continue;
        (m[room] ??= new Set()).add(c.node);
      }
    }
    return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v.size]));
  }

  /** roomChannels for the rooms (and, in dynamic-private mode, the ids) of `clients`. */
  settleRooms(clients, opts) {
    return this.roomChannels(Cluster.roomNodes(clients), {
      privateRooms: Cluster.roomNodes(clients, { privateRooms: true }),
      ...opts,
    });
  }
}

/**
 * Waits until a broadcast ("probe" event with a fresh id, repeated every
 * 500 ms) from each client in `senders` reaches every client in
 * `receivers`. Receivers get extra "probe" events: leave them out of exact
 * assertions.
 */
export async function flowing(senders, receivers, { timeout = 15_000 } = {}) {
  for (const from of senders) {
    const deadline = Date.now() + timeout;
    let k = 0;
    for (;;) {
      const id = `probe-${++probeSeq}`;
      k++;
      try {
        await callT(from.socket, 2000, "broadcast", { event: "probe", args: [id] });
        await until(() => receivers.every((p) => p.rec.of("probe").some((a) => a[0] === id)), { timeout: 500, what: "probe" });
        break;
      } catch (err) {
        if (Date.now() > deadline) {
          const missing = receivers.filter((p) => !p.rec.of("probe").some((a) => a[0] === id)).map((p) => p.name);
          throw new Error(`a broadcast from ${from.name} does not reach ${missing.join(", ")} after ${k} tries: ${err.message}`);
        }
      }
    }
  }
}

/** Fetches the cluster's sockets through client `c` ("fetch" event). Throws on an error reply. */
export async function fetchAll(c, rooms, timeout = 10_000) {
  const [list] = await callT(c.socket, timeout, "fetch", rooms === undefined ? {} : { rooms });
  if (!Array.isArray(list)) throw new Error(`fetch via ${c.name} (${c.node}) answered ${JSON.stringify(list)}`);
  return list;
}

/** call() with a timeout. */
export function callT(socket, timeout, event, ...args) {
  return new Promise((resolve, reject) => {
    socket.timeout(timeout).emit(event, ...args, (err, ...reply) => {
      if (err) reject(new Error(`no ack for "${event}" within ${timeout} ms: ${err.message}`));
      else resolve(reply);
    });
  });
}
