#!/usr/bin/env node
// The Node.js reference for `testserver --mode sio`: the official `socket.io`
// 4.8.4 server implementing the DESIGN.md contract (namespaces / and /custom,
// the event table), plus the testserver's additions to it: the `/private`
// namespace (its middleware rejects unless auth.token === "secret", with
// message "not authorized" and data {why: "token"}) and the `volatile` and
// `local` flags of `broadcast`. It accepts the testserver flags
// and logs the same "testserver listening" line, so the sio/ tests can be
// pointed at it to check their expectations against the reference:
//
//   HERALD_INTEROP_SERVER=node node --test sio/
//
// Flags: --mode sio, --addr host:port, --ping-interval 1s, --ping-timeout 2s,
// --max-payload N, --eio3, --recovery 2m, --cors-origin a,b, --cookie,
// --node-id ID (reported by whoami), --log-level (ignored).
// Single node only (in-memory adapter): --redis/--adapter are refused.

import http from "node:http";
import { randomBytes } from "node:crypto";
import { Server } from "socket.io";

function parseDuration(s) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s);
  if (!m) throw new Error(`bad duration ${s}`);
  const n = Number(m[1]);
  return { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? "ms"] * n;
}

const opts = { mode: "sio", addr: ":3000", pingInterval: 300, pingTimeout: 200, maxPayload: 1_000_000, recovery: 0 };
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
    case "recovery": opts.recovery = parseDuration(next()); break;
    case "eio3": opts.eio3 = value === undefined ? true : value !== "false"; break;
    case "cors-origin": opts.cors = next(); break;
    case "cookie": opts.cookie = value === undefined ? true : value !== "false"; break;
    case "node-id": opts.nodeId = next(); break;
    case "log-level": next(); break;
    default:
      console.error(`sio-reference-server: unsupported flag --${flag}`);
      process.exit(2);
  }
}
if (opts.mode !== "sio") {
  console.error("sio-reference-server: only --mode sio");
  process.exit(2);
}
const node = opts.nodeId ?? randomBytes(6).toString("base64url");

const i = opts.addr.lastIndexOf(":");
const host = opts.addr.slice(0, i) || undefined;
const port = Number(opts.addr.slice(i + 1));

const httpServer = http.createServer();
const io = new Server(httpServer, {
  path: "/socket.io/",
  pingInterval: opts.pingInterval,
  pingTimeout: opts.pingTimeout,
  maxHttpBufferSize: opts.maxPayload,
  allowEIO3: !!opts.eio3,
  cookie: opts.cookie ? { name: "io", path: "/", httpOnly: true, sameSite: "lax" } : false,
  cors: opts.cors ? { origin: opts.cors.split(","), credentials: true } : undefined,
  connectionStateRecovery: opts.recovery > 0 ? { maxDisconnectionDuration: opts.recovery, skipMiddlewares: true } : undefined,
});

const list = (v) => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);

function setup(nsp) {
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
      if (req.volatile) op = op.volatile; // additions to the contract
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
      const socks = await nsp.in(list(req?.rooms)).fetchSockets();
      // Node's socket.data defaults to {}; Herald's unset data is null. The
      // testserver never sets data, so both are reported as null here.
      const data = (d) => (d && typeof d === "object" && Object.keys(d).length === 0 ? null : d ?? null);
      ack(socks.map((s) => ({ id: s.id, rooms: [...s.rooms], data: data(s.data) })));
    });
    socket.on("whoami", (ack) => ack({ id: socket.id, node, rooms: [...socket.rooms] }));
    socket.on("server-count", async (ack) => ack(await nsp.adapter.serverCount()));
    socket.on("server-side-emit", (event, ...args) => {
      try {
        nsp.serverSideEmit(event, ...args); // the in-memory adapter has no server-side emit
      } catch {}
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
  console.error(`level=INFO msg="testserver listening" addr=${a.address}:${a.port} mode=sio impl=node`);
});

// io.close() closes every Engine.IO socket (pending polls get a close packet)
// and the HTTP server; connections still open a moment later are cut.
const shutdown = () => {
  io.close(() => process.exit(0));
  setTimeout(() => httpServer.closeAllConnections?.(), 200).unref();
  setTimeout(() => process.exit(1), 5000).unref();
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
