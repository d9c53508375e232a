// Node.js peer servers for Herald's benchmarks (engine.io 6.6.12, socket.io 4.8.4).
//
//   node --expose-gc server.mjs --mode eio|sio --addr 127.0.0.1:PORT \
//        [--ping-interval 25000] [--ping-timeout 20000] \
//        [--adapter memory|redis|redis-sharded --redis redis://127.0.0.1:PORT]
//
// --mode eio  a bare engine.io echo server on /engine.io/ (as `testserver --mode eio`)
// --mode sio  a socket.io server on /socket.io/ whose namespaces "/" and "/custom"
//             register the same per-socket handlers as `testserver --mode sio`, so each
//             connection carries a comparable amount of application state
//
// --adapter redis          @socket.io/redis-adapter 8.3.0 createAdapter(pub, sub) (node-redis 4.7.1)
// --adapter redis-sharded  createShardedAdapter(pub, sub) (SSUBSCRIBE/SPUBLISH, dynamic mode)
//
// WebSocket compression is off in both (the default). Protocol for the harness:
//   stdout  {"event":"listening","addr":...,"pid":...} once listening
//   SIGUSR2 run gc() (needs --expose-gc) and print
//           {"event":"mem","gc":true,"clients":N,"rss":...,"heapUsed":...,...}
//   SIGTERM / SIGINT: exit; with --exit-on-stdin-eof, also when stdin closes
// The server stops by itself after --max-lifetime seconds (default 900).

import http from "node:http";
import { Server as EngineServer } from "engine.io";
import { Server as IOServer } from "socket.io";
import { createClient } from "redis";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";

function parseArgs(argv) {
  const out = { mode: "eio", addr: "127.0.0.1:3000", pingInterval: 25000, pingTimeout: 20000, maxLifetime: 900, exitOnStdinEOF: false, adapter: "memory", redis: "" };
  for (let i = 0; i < argv.length; i++) {
    const [k, inline] = argv[i].split("=", 2);
    if (k === "--exit-on-stdin-eof") {
      out.exitOnStdinEOF = true;
      continue;
    }
    const v = inline ?? argv[++i];
    switch (k) {
      case "--mode": out.mode = v; break;
      case "--addr": out.addr = v; break;
      case "--ping-interval": out.pingInterval = Number(v); break;
      case "--ping-timeout": out.pingTimeout = Number(v); break;
      case "--max-lifetime": out.maxLifetime = Number(v); break;
      case "--adapter": out.adapter = v; break;
      case "--redis": out.redis = v; break;
      default:
        console.error(`server.mjs: unknown flag ${k}`);
        process.exit(2);
    }
  }
  return out;
}

const opts = parseArgs(process.argv.slice(2));
const sep = opts.addr.lastIndexOf(":");
const host = opts.addr.slice(0, sep) || "127.0.0.1";
const port = Number(opts.addr.slice(sep + 1));

const httpServer = http.createServer((req, res) => {
  res.writeHead(404).end();
});

let clientsCount;
if (opts.mode === "eio") {
  const engine = new EngineServer({
    pingInterval: opts.pingInterval,
    pingTimeout: opts.pingTimeout,
    maxHttpBufferSize: 1e6,
  });
  engine.attach(httpServer, { path: "/engine.io/" });
  engine.on("connection", (socket) => {
    socket.on("message", (data) => socket.send(data));
  });
  clientsCount = () => engine.clientsCount;
} else if (opts.mode === "sio") {
  const io = new IOServer(httpServer, {
    pingInterval: opts.pingInterval,
    pingTimeout: opts.pingTimeout,
    maxHttpBufferSize: 1e6,
  });
  if (opts.adapter !== "memory") {
    if (!opts.redis) {
      console.error(`server.mjs: --adapter ${opts.adapter} needs --redis URL`);
      process.exit(2);
    }
    const pub = createClient({ url: opts.redis });
    const sub = pub.duplicate();
    for (const c of [pub, sub]) c.on("error", (err) => console.error(`redis client error: ${err.message}`));
    await Promise.all([pub.connect(), sub.connect()]);
    if (opts.adapter === "redis") io.adapter(createAdapter(pub, sub));
    else if (opts.adapter === "redis-sharded") io.adapter(createShardedAdapter(pub, sub));
    else {
      console.error(`server.mjs: unknown --adapter ${opts.adapter}: want memory, redis or redis-sharded`);
      process.exit(2);
    }
  }
  for (const name of ["/", "/custom"]) {
    setupNamespace(io.of(name));
  }
  clientsCount = () => io.engine.clientsCount;
} else {
  console.error(`server.mjs: unknown --mode ${opts.mode}: want eio or sio`);
  process.exit(2);
}

// The per-socket handlers of interop/testserver's Socket.IO app (same events, same
// closures per socket; bodies shortened where they only matter under traffic).
function setupNamespace(nsp) {
  nsp.on("connection", (socket) => {
    socket.emit("auth", socket.handshake.auth);
    socket.on("message", (...args) => socket.emit("message-back", ...args));
    socket.on("message-with-ack", (...args) => {
      const ack = args.pop();
      if (typeof ack === "function") ack(...args);
    });
    socket.on("join", (room, ack) => {
      socket.join(room);
      if (typeof ack === "function") ack(true);
    });
    socket.on("leave", (room, ack) => {
      socket.leave(room);
      if (typeof ack === "function") ack(true);
    });
    socket.on("broadcast", (req, ack) => {
      let op = nsp.to(req.to ?? []).except(req.except ?? []);
      if (!req.ackTimeoutMs) {
        op.emit(req.event, ...(req.args ?? []));
        if (typeof ack === "function") ack(true);
        return;
      }
      op.timeout(req.ackTimeoutMs).emit(req.event, ...(req.args ?? []), (err, responses) => {
        if (typeof ack === "function") ack({ err: err ? String(err) : null, responses });
      });
    });
    socket.on("fetch", async (req, ack) => {
      const socks = await nsp.in(req?.rooms ?? []).fetchSockets();
      if (typeof ack === "function") ack(socks.map((s) => ({ id: s.id, rooms: [...s.rooms], data: s.data })));
    });
    socket.on("whoami", (ack) => {
      if (typeof ack === "function") ack({ id: socket.id, node: "node", rooms: [...socket.rooms] });
    });
    socket.on("server-count", async (ack) => {
      const n = await nsp.serverCount?.() ?? 1;
      if (typeof ack === "function") ack(n);
    });
    socket.on("server-side-emit", (event, ...args) => nsp.serverSideEmit(event, ...args));
    socket.on("sockets-join", (req, ack) => {
      nsp.in(req?.in ?? []).socketsJoin(req?.room);
      if (typeof ack === "function") ack(true);
    });
    socket.on("sockets-leave", (req, ack) => {
      nsp.in(req?.in ?? []).socketsLeave(req?.room);
      if (typeof ack === "function") ack(true);
    });
    socket.on("disconnect-sockets", (req, ack) => {
      if (typeof ack === "function") ack(true);
      nsp.in(req?.in ?? []).disconnectSockets(req?.close);
    });
  });
}

function memReport(didGC) {
  const m = process.memoryUsage();
  return JSON.stringify({
    event: "mem",
    gc: didGC,
    clients: clientsCount(),
    rss: m.rss,
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
  });
}

process.on("SIGUSR2", () => {
  const canGC = typeof globalThis.gc === "function";
  if (canGC) {
    globalThis.gc();
    globalThis.gc();
  }
  process.stdout.write(memReport(canGC) + "\n");
});

function shutdown() {
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
if (opts.exitOnStdinEOF) {
  // The harness keeps our stdin open; when it goes away, so do we.
  process.stdin.on("end", shutdown);
  process.stdin.on("error", shutdown);
  process.stdin.resume();
}
setTimeout(shutdown, opts.maxLifetime * 1000).unref();

httpServer.listen({ host, port, backlog: 4096 }, () => {
  const a = httpServer.address();
  process.stdout.write(
    JSON.stringify({ event: "listening", addr: `${a.address}:${a.port}`, pid: process.pid, mode: opts.mode }) + "\n",
  );
});
