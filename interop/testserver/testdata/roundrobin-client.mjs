// Official socket.io-client through a round-robin proxy (no stickiness) in
// front of three Herald nodes. Driven by TestOfficialClientRoundRobin
// (nodeclient_test.go): node roundrobin-client.mjs <proxy URL> <clients>.
// Prints one JSON line; exits 1 on any failure. Every wait has a timeout.
import { io } from "socket.io-client";

const [url, n = "10"] = process.argv.slice(2);
const clients = Number(n);
const failures = [];
const timeout = (ms, what) => new Promise((_, rej) => setTimeout(() => rej(new Error(`timeout: ${what}`)), ms).unref());

async function scenario(name, opts) {
  const sockets = [];
  let connectErrors = 0, disconnects = 0;
  for (let i = 0; i < clients; i++) {
    const s = io(url, { forceNew: true, reconnection: false, ...opts });
    s.on("connect_error", (e) => { connectErrors++; failures.push(`${name}: connect_error ${e.message}`); });
    s.on("disconnect", (r, d) => {
      if (s.closing) return;
      disconnects++;
      const why = d ? ` (${d.message ?? ""} ${d.description?.message ?? d.description ?? ""} ${d.context?.status ?? ""})` : "";
      failures.push(`${name}: disconnect ${r}${why} sid=${s.io.engine?.id} transport=${s.io.engine?.transport?.name}`);
    });
    sockets.push(s);
  }
  await Promise.race([Promise.all(sockets.map((s) => s.connected ? null : new Promise((r) => s.once("connect", r)))), timeout(20000, `${name} connect`)]);
  const nodes = new Set();
  for (const s of sockets) {
    const who = await Promise.race([s.emitWithAck("whoami"), timeout(10000, "whoami")]);
    nodes.add(who.node);
    await Promise.race([s.emitWithAck("join", "room"), timeout(10000, "join")]);
  }
  // Acks, each request of each client on the next node.
  await Promise.race([Promise.all(sockets.map(async (s, i) => {
    for (let k = 0; k < 20; k++) {
      // emitWithAck resolves with the ack's first argument.
      const got = await s.emitWithAck("message-with-ack", [i, k]);
      if (got[0] !== i || got[1] !== k) failures.push(`${name}: ack ${JSON.stringify(got)} for ${i},${k}`);
    }
  })), timeout(30000, `${name} acks`)]);
  // A broadcast to the room reaches every client, whatever node owns it.
  const received = sockets.map((s) => Promise.race([new Promise((r) => s.once("hello", r)), timeout(15000, `${name} broadcast`)]));
  await sockets[0].emitWithAck("broadcast", { to: ["room"], event: "hello", args: ["all"] });
  await Promise.all(received);
  const transports = new Set(sockets.map((s) => s.io.engine.transport.name));
  for (const s of sockets) { s.closing = true; s.disconnect(); }
  return { name, clients, nodes: [...nodes].sort(), transports: [...transports], connectErrors, disconnects };
}

let results = [];
try {
  results.push(await scenario("polling", { transports: ["polling"] }));
  results.push(await scenario("polling+upgrade", {}));
  if (results[1].transports.join() !== "websocket") failures.push(`upgrade: transports ${results[1].transports}`);
  for (const r of results) if (r.nodes.length < 2) failures.push(`${r.name}: sessions on ${r.nodes} only`);
} catch (e) {
  failures.push(String(e));
}
console.log(JSON.stringify({ results, failures: failures.slice(0, 20), failureCount: failures.length }));
process.exit(failures.length ? 1 : 0);
