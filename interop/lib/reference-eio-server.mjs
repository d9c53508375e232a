#!/usr/bin/env node
// The Node.js reference for `testserver --mode eio`: the official `engine.io`
// server (installed with socket.io) echoing every message on /engine.io/.
// It accepts the same flags and logs the same "testserver listening" line, so
// the interop tests can be pointed at it to check that their expectations
// match the reference implementation:
//
//   HERALD_INTEROP_SERVER=node node --test eio/
//
// Flags: --mode eio, --addr host:port, --ping-interval 300ms, --ping-timeout 200ms,
// --max-payload 1000000, --eio3, --cors-origin a,b, --cookie, --node-id (ignored).

import http from "node:http";
import { Server } from "engine.io";

function parseDuration(s) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s);
  if (!m) throw new Error(`bad duration ${s}`);
  const n = Number(m[1]);
  return m[2] === "s" ? n * 1000 : m[2] === "m" ? n * 60_000 : n;
}

const opts = { mode: "eio", addr: ":3000", pingInterval: 300, pingTimeout: 200, maxPayload: 1_000_000 };
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
    case "eio3": opts.eio3 = value === undefined ? true : value !== "false"; break;
    case "cors-origin": opts.cors = next(); break;
    case "cookie": opts.cookie = value === undefined ? true : value !== "false"; break;
    case "node-id": next(); break;
    default:
      console.error(`reference-eio-server: unknown flag --${flag}`);
      process.exit(2);
  }
}
if (opts.mode !== "eio") {
  console.error("reference-eio-server: only --mode eio");
  process.exit(2);
}

const i = opts.addr.lastIndexOf(":");
const host = opts.addr.slice(0, i) || undefined;
const port = Number(opts.addr.slice(i + 1));

const httpServer = http.createServer();
const engine = new Server({
  path: "/engine.io/",
  pingInterval: opts.pingInterval,
  pingTimeout: opts.pingTimeout,
  maxHttpBufferSize: opts.maxPayload,
  allowEIO3: !!opts.eio3,
  cookie: opts.cookie ? { name: "io", path: "/", httpOnly: true, sameSite: "lax" } : false,
  cors: opts.cors ? { origin: opts.cors.split(","), credentials: true } : undefined,
});
engine.attach(httpServer, { path: "/engine.io/" });
engine.on("connection", (socket) => {
  socket.on("message", (data) => socket.send(data));
});

httpServer.listen(port, host, () => {
  const a = httpServer.address();
  console.error(`level=INFO msg="testserver listening" addr=${a.address}:${a.port} mode=eio impl=node`);
});

const shutdown = () => {
  engine.close();
  httpServer.close(() => process.exit(0));
  httpServer.closeAllConnections?.();
  setTimeout(() => process.exit(1), 5000).unref();
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
