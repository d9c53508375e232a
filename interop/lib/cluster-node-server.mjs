#!/usr/bin/env node
// A Node.js cluster node for the interop cluster tests: the official
// `socket.io` 4.8.4 server with `@socket.io/redis-adapter` 8.3.0, implementing
// the DESIGN.md `--mode sio` contract exactly like lib/sio-reference-server.mjs
// (namespaces /, /custom and /private, the same event table, `volatile` and
// `local` flags of `broadcast`), plus the cluster parts:
//
//   --redis redis://127.0.0.1:PORT   Redis of the cluster (node-redis 4.7.1 clients)
//   --adapter redis                  createAdapter(pub, sub)          (classic)
//   --adapter redis-sharded          createShardedAdapter(pub, sub, {subscriptionMode})
//   --sharded-mode dynamic|static|dynamic-private   (default dynamic)
//   --node-id ID                     reported by whoami
//   --key PREFIX                     key / channelPrefix (default "socket.io", as the Go testserver)
//
// Every server-side event a namespace receives (from another node or from an
// emitter) is relayed to that namespace's local clients as
// `server-side` (event, ...args), as the Go testserver does.
//
// Other flags as the reference: --mode sio, --addr host:port, --ping-interval,
// --ping-timeout, --max-payload, --log-level (ignored). Logs the same
// "testserver listening" line once the adapter's Redis clients are connected.

import http from "node:http";
import { randomBytes } from "node:crypto";
import { Server } from "socket.io";
import { createClient } from "redis";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";

function parseDuration(s) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s);
  if (!m) throw new Error(`bad duration ${s}`);
  const n = Number(m[1]);
  return { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? "ms"] * n;
}

const opts = {
  mode: "sio",
  addr: ":3000",
  pingInterval: 300,
  pingTimeout: 200,
  maxPayload: 1_000_000,
  adapter: "memory",
  shardedMode: "dynamic",
  key: "socket.io",
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  let [flag, value] = argv[i].split("=", 2);
  flag = flag.replace(/^--?/, "");
  const next = () => value ?? argv[++i];
  switch (flag) {
    case "mode": opts.mode = next(); break;
    case "addr": opts.addr = next(); break;
    case "ping-interval": opts.pingInterval = parseDuration(next()); break;
    case "ping-timeout": opts.pingTimeout = parseDuration(next()); break;
    case "max-payload": opts.maxPayload = Number(next()); break;
    case "node-id": opts.nodeId = next(); break;
    case "redis": opts.redis = next(); break;
    case "adapter": opts.adapter = next(); break;
    case "sharded-mode": opts.shardedMode = next(); break;
    case "key": opts.key = next(); break;
    case "log-level": next(); break;
    default:
      console.error(`cluster-node-server: unsupported flag --${flag}`);
      process.exit(2);
  }
}
if (opts.mode !== "sio") {
  console.error("cluster-node-server: only --mode sio");
  process.exit(2);
}
if (!["memory", "redis", "redis-sharded"].includes(opts.adapter)) {
  console.error(`cluster-node-server: --adapter ${opts.adapter}: want memory, redis or redis-sharded`);
  process.exit(2);
}
if (opts.adapter !== "memory" && !opts.redis) {
  console.error(`cluster-node-server: --adapter ${opts.adapter} needs --redis URL`);
  process.exit(2);
}
const node = opts.nodeId ?? randomBytes(6).toString("base64url");

const i = opts.addr.lastIndexOf(":");
const host = opts.addr.slice(0, i) || undefined;
const port = Number(opts.addr.slice(i + 1));

let pub = null;
let sub = null;
let adapter;
if (opts.adapter !== "memory") {
  pub = createClient({ url: opts.redis });
  sub = pub.duplicate();
  for (const c of [pub, sub]) c.on("error", (err) => console.error(`level=WARN msg="redis client error" err="${err.message}"`));
  await Promise.all([pub.connect(), sub.connect()]);
  adapter =
    opts.adapter === "redis"
      ? createAdapter(pub, sub, { key: opts.key })
      : createShardedAdapter(pub, sub, { channelPrefix: opts.key, subscriptionMode: opts.shardedMode });
}

const httpServer = http.createServer();
const io = new Server(httpServer, {
  path: "/socket.io/",
  pingInterval: opts.pingInterval,
  pingTimeout: opts.pingTimeout,
  maxHttpBufferSize: opts.maxPayload,
  adapter,
});

const list = (v) => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);

// Relay every server-side event to the namespace's local clients. socket.io
// 4.8 hands incoming server-side events to Namespace#_onServerSideEmit(args)
// (args = [event, ...args, ack?]) from every adapter (classic, sharded).
function relayServerSide(nsp) {
  const orig = nsp._onServerSideEmit.bind(nsp);
  nsp._onServerSideEmit = (args) => {
    const plain = typeof args[args.length - 1] === "function" ? args.slice(0, -1) : args;
    nsp.local.emit("server-side", ...plain);
    return orig(args);
  };
}

function setup(nsp) {
  relayServerSide(nsp);
  nsp.on("connection", (socket) => {
    socket.emit("auth", socket.handshake.auth);
    socket.on("message", (...args) => socket.emit("message-back", ...args));
    socket.on("message-with-ack", (...args) => {
      const ack = args.pop();
      ack(...args);
    });
    socket.on("join", (room, ack) => {
      socket.join(room);
      ack?.(true);
    });
    socket.on("leave", (room, ack) => {
      socket.leave(room);
      ack?.(true);
    });
    socket.on("broadcast", (req, ack) => {
      let op = nsp.to(list(req.to)).except(list(req.except));
      if (req.volatile) op = op.volatile;
      if (req.local) op = op.local;
      if (!(req.ackTimeoutMs > 0)) {
        op.emit(req.event, ...(req.args ?? []));
        ack?.(true);
        return;
      }
      op.timeout(req.ackTimeoutMs).emit(req.event, ...(req.args ?? []), (err, responses) => {
        ack?.({ err: err ? err.message : null, responses });
      });
    });
    socket.on("fetch", async (req, ack) => {
      try {
        const socks = await nsp.in(list(req?.rooms)).fetchSockets();
        // Node's socket.data defaults to {}; Herald's unset data is null.
        // Nothing sets data here, so {} is reported as null (as the reference).
        const data = (d) => (d && typeof d === "object" && Object.keys(d).length === 0 ? null : d ?? null);
        ack(socks.map((s) => ({ id: s.id, rooms: [...s.rooms], data: data(s.data) })));
      } catch (err) {
        ack({ err: err.message });
      }
    });
    socket.on("whoami", (ack) => ack({ id: socket.id, node, rooms: [...socket.rooms] }));
    socket.on("server-count", async (ack) => {
      try {
        ack(await nsp.adapter.serverCount());
      } catch (err) {
        ack({ err: err.message });
      }
    });
    socket.on("server-side-emit", (event, ...args) => {
      try {
        nsp.serverSideEmit(event, ...args);
      } catch (err) {
        console.error(`level=WARN msg="serverSideEmit failed" err="${err.message}"`);
      }
    });
    socket.on("sockets-join", (req, ack) => {
      nsp.in(list(req.in)).socketsJoin(req.room);
      ack?.(true);
    });
    socket.on("sockets-leave", (req, ack) => {
      nsp.in(list(req.in)).socketsLeave(req.room);
      ack?.(true);
    });
    socket.on("disconnect-sockets", (req, ack) => {
      ack?.(true);
      setImmediate(() => nsp.in(list(req.in)).disconnectSockets(!!req.close));
    });
  });
}

setup(io.of("/"));
setup(io.of("/custom"));
const priv = io.of("/private");
priv.use((socket, next) => {
  if (socket.handshake.auth?.token === "secret") return next();
  const err = new Error("not authorized");
  err.data = { why: "token" };
  next(err);
});
setup(priv);

httpServer.listen(port, host, () => {
  const a = httpServer.address();
  console.error(
    `level=INFO msg="testserver listening" addr=${a.address}:${a.port} mode=sio impl=node adapter=${opts.adapter} node=${node}`,
  );
});

const shutdown = () => {
  io.close(async () => {
    try {
      await Promise.allSettled([pub?.quit(), sub?.quit()]);
    } catch {}
    process.exit(0);
  });
  setTimeout(() => httpServer.closeAllConnections?.(), 200).unref();
  setTimeout(() => process.exit(1), 5000).unref();
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
