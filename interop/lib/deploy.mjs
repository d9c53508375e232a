// Helpers for the load-balancer tests (interop/deploy/): real nginx, HAProxy
// and Apache httpd, and `herald lb`, run as unprivileged processes with
// configurations generated from the files in deploy/ (the ones users copy),
// in front of three testserver nodes sharing a real redis-server.
//
//   const cl = useDeployCluster();                   // top level: Redis + 3 nodes
//   test("...", async (t) => {
//     const lb = await startNginx(t, "herald-round-robin.conf", cl.current.nodes);
//     const stats = await runWorkload(t, lb.url, { transports: ["polling"] });
//     assertClean(stats);
//   });
//
// Each proxy gets a temp dir for its config, pid and logs; stop() ends it
// and t.after stops it in any case. HERALD_INTEROP_VERBOSE=1 prints its log.

import { spawn, spawnSync, execFile } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { before, after } from "node:test";
import { freePort, repoRoot, testserverBinary } from "./server.mjs";
import { startRedis, redisSkipReason } from "./cluster.mjs";

export const deployDir = path.join(repoRoot, "deploy");

/** The secret every test node shares (forwarding between nodes). */
export const CLUSTER_SECRET = "deploy-test-secret";

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

// ---------------------------------------------------------------- binaries

const SBIN = ["/usr/sbin", "/usr/local/sbin", "/sbin"];

/** Path of a program (PATH, then the sbin directories), or null. */
export function findBinary(name) {
  const r = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  for (const dir of SBIN) {
    const p = path.join(dir, name);
    if (existsSync(p)) return p;
  }
  return null;
}

/**
 * `skip` value for a test that needs the programs `names`: false when all are
 * installed, else the reason. Under CI=true a missing program is an error:
 * CI must not pass by skipping (scripts/test installs them with apt).
 */
export function skipUnless(...names) {
  const missing = names.filter((n) => !findBinary(n));
  if (missing.length === 0) return false;
  if (process.env.CI === "true") {
    throw new Error(`${missing.join(", ")} not installed (CI=true: the deploy tests must run; scripts/test installs them with apt)`);
  }
  return `${missing.join(", ")} not installed (run scripts/test to install)`;
}

let heraldPromise = null;

/** Path of the herald binary: $HERALD_BIN or a fresh build (once per process). */
export function heraldBinary() {
  if (process.env.HERALD_BIN) return Promise.resolve(process.env.HERALD_BIN);
  if (!heraldPromise) {
    heraldPromise = new Promise((resolve, reject) => {
      const dir = mkdtempSync(path.join(os.tmpdir(), "herald-deploy-bin-"));
      process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
      const out = path.join(dir, "herald");
      execFile("go", ["build", "-o", out, "./cmd/herald"], { cwd: repoRoot, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
        err ? reject(new Error(`go build ./cmd/herald failed: ${err.message}\n${stdout}${stderr}`)) : resolve(out),
      );
    });
  }
  return heraldPromise;
}

// ---------------------------------------------------------------- processes

/** A temp dir that an unprivileged child (nobody, when we are root) can write. */
function workDir(t, what) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `herald-${what}-`));
  chmodSync(dir, 0o777);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** When the tests run as root, the proxies run as nobody, as a service would. */
function dropPrivileges() {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return {};
  return { uid: 65534, gid: 65534 };
}

function waitExit(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** Resolves once something accepts TCP connections on port, or rejects at the deadline. */
async function waitListening(port, child, logs, what) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what} exited (code ${child.exitCode}, signal ${child.signalCode}):\n${logs()}`);
    }
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} not listening on ${port} within ${READY_TIMEOUT_MS} ms:\n${logs()}`);
    await sleep(50);
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Spawns a long-running program and waits until it listens on port.
 * logFiles are read (after its output) for diagnostics. Returns {url, port,
 * child, stop(graceMs), kill(), logs(), running()}: stop sends SIGTERM and
 * SIGKILL after the grace period, kill sends SIGKILL at once.
 */
export async function spawnService({ what, cmd, args, port, logFiles = [], env, privileged = true }) {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env }, ...(privileged ? {} : dropPrivileges()) });
  running.add(child);
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  child.on("exit", () => running.delete(child));
  child.on("error", (err) => (out += `spawn error: ${err.message}\n`));
  const logs = () => {
    let s = out;
    for (const f of logFiles) {
      try {
        s += `--- ${path.basename(f)} ---\n${readFileSync(f, "utf8")}`;
      } catch {}
    }
    return s;
  };
  const stop = async (graceMs = STOP_GRACE_MS) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    let timer;
    const timedOut = await Promise.race([waitExit(child).then(() => false), new Promise((r) => (timer = setTimeout(() => r(true), graceMs)))]);
    clearTimeout(timer);
    if (timedOut) {
      child.kill("SIGKILL");
      await waitExit(child);
    }
  };
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGKILL");
    await waitExit(child);
  };
  try {
    await waitListening(port, child, logs, what);
  } catch (err) {
    await stop();
    throw err;
  }
  const running_ = () => child.exitCode === null && child.signalCode === null;
  return { what, port, url: `http://127.0.0.1:${port}`, child, stop, kill, logs, running: running_ };
}

/** spawnService for a proxy in a test: unprivileged, stopped in t.after. */
async function startProxy(t, { privileged = false, ...opts }) {
  const svc = await spawnService({ privileged, ...opts });
  t.after(async () => {
    await svc.stop();
    if (process.env.HERALD_INTEROP_VERBOSE) process.stderr.write(`--- ${svc.what} (${t.name}) ---\n${svc.logs()}\n`);
  });
  return svc;
}

// ---------------------------------------------------------------- config rewriting

/**
 * Replaces the example node lines of a deploy/ config (the lines matching
 * `re`) with one line per test node, made by `line(node, i, first)` from the
 * first example line, at its place: the test runs the options users copy.
 */
export function replaceNodeLines(text, re, nodes, line) {
  let done = false;
  const out = [];
  for (const l of text.split("\n")) {
    if (re.test(l)) {
      if (!done) {
        for (const [i, n] of nodes.entries()) out.push(line(n, i, l));
        done = true;
      }
      continue;
    }
    out.push(l);
  }
  if (!done) throw new Error(`no node lines (${re}) in the config`);
  return out.join("\n");
}

function mustReplace(text, from, to) {
  if (!text.includes(from)) throw new Error(`config has no ${JSON.stringify(from)}`);
  return text.replace(from, to);
}

// ---------------------------------------------------------------- nginx

/** Starts nginx with deploy/nginx/<file> in front of nodes ([{port}]). */
export async function startNginx(t, file, nodes) {
  const bin = findBinary("nginx");
  const dir = workDir(t, "nginx");
  const port = await freePort();
  let site = readFileSync(path.join(deployDir, "nginx", file), "utf8");
  site = replaceNodeLines(site, /^\s*server 10\.0\.0\.\d+:3000\b/, nodes, (n, i, l) =>
    l.replace(/10\.0\.0\.\d+:3000/, `127.0.0.1:${n.port}`),
  );
  site = mustReplace(site, "listen 80;", `listen 127.0.0.1:${port};`);
  writeFileSync(path.join(dir, "herald.conf"), site);
  for (const d of ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]) mkdirSync(path.join(dir, d), { mode: 0o777 });
  writeFileSync(
    path.join(dir, "nginx.conf"),
    `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    include ${dir}/herald.conf;
}
`,
  );
  return startProxy(t, {
    what: `nginx (${file})`,
    cmd: bin,
    args: ["-p", `${dir}/`, "-c", `${dir}/nginx.conf`, "-e", `${dir}/error.log`, "-g", "daemon off;"],
    port,
    logFiles: [`${dir}/error.log`],
  });
}

// ---------------------------------------------------------------- HAProxy

/** Starts HAProxy with deploy/haproxy/haproxy.cfg in front of nodes. */
export async function startHaproxy(t, nodes) {
  const bin = findBinary("haproxy");
  const dir = workDir(t, "haproxy");
  const port = await freePort();
  let cfg = readFileSync(path.join(deployDir, "haproxy", "haproxy.cfg"), "utf8");
  cfg = replaceNodeLines(cfg, /^\s*server node\d 10\.0\.0\.\d+:3000\b/, nodes, (n, i, l) =>
    l.replace(/10\.0\.0\.\d+:3000/, `127.0.0.1:${n.port}`).replace(/node1/g, `n${i + 1}`),
  );
  cfg = mustReplace(cfg, "bind :80", `bind 127.0.0.1:${port}`);
  // The test process may not raise its file limit to 2×20000.
  cfg = mustReplace(cfg, "maxconn 20000", "maxconn 4000");
  writeFileSync(path.join(dir, "haproxy.cfg"), cfg);
  return startProxy(t, { what: "haproxy", cmd: bin, args: ["-f", `${dir}/haproxy.cfg`, "-db"], port });
}

// ---------------------------------------------------------------- Apache httpd

const APACHE_MODULE_DIRS = ["/usr/lib/apache2/modules", "/usr/lib64/httpd/modules", "/usr/lib/httpd/modules"];

/** Starts Apache httpd with deploy/apache/herald.conf in front of nodes. */
export async function startApache(t, nodes) {
  const bin = findBinary("apache2") ?? findBinary("httpd");
  const modDir = APACHE_MODULE_DIRS.find((d) => existsSync(path.join(d, "mod_proxy.so")));
  if (!modDir) throw new Error("Apache modules (mod_proxy.so) not found");
  const dir = workDir(t, "apache");
  const port = await freePort();
  let site = readFileSync(path.join(deployDir, "apache", "herald.conf"), "utf8");
  site = replaceNodeLines(
    site,
    /^\s*BalancerMember "http:\/\/10\.0\.0\.\d+:3000"/,
    nodes,
    (n, i, l) => l.replace(/10\.0\.0\.\d+:3000/, `127.0.0.1:${n.port}`).replace(/route=node1/, `route=n${i + 1}`),
  );
  writeFileSync(path.join(dir, "herald.conf"), site);
  const mods = ["mpm_event", "authz_core", "proxy", "proxy_http", "proxy_balancer", "lbmethod_byrequests", "slotmem_shm", "headers"];
  const load = mods
    .filter((m) => existsSync(path.join(modDir, `mod_${m}.so`)))
    .map((m) => `LoadModule ${m}_module ${modDir}/mod_${m}.so`)
    .join("\n");
  const unixd = existsSync(path.join(modDir, "mod_unixd.so")) ? `LoadModule unixd_module ${modDir}/mod_unixd.so` : "";
  writeFileSync(
    path.join(dir, "httpd.conf"),
    `ServerRoot ${dir}
ServerName 127.0.0.1
Listen 127.0.0.1:${port}
PidFile ${dir}/httpd.pid
DefaultRuntimeDir ${dir}
Mutex file:${dir} default
ErrorLog ${dir}/error.log
LogLevel warn
${load}
${unixd}
# Every open long-poll and proxied request holds a worker thread (200
# polling clients need ~400): start them all up front, as a server sized
# for its clients would, rather than let httpd grow while clients time out.
StartServers 4
MinSpareThreads 256
MaxSpareThreads 1024
ServerLimit 4
ThreadLimit 256
ThreadsPerChild 256
MaxRequestWorkers 1024
MaxConnectionsPerChild 0
KeepAliveTimeout 75
Include ${dir}/herald.conf
`,
  );
  return startProxy(t, {
    what: "apache2",
    cmd: bin,
    args: ["-d", dir, "-f", `${dir}/httpd.conf`, "-DFOREGROUND"],
    port,
    logFiles: [`${dir}/error.log`],
  });
}

// ---------------------------------------------------------------- herald lb

/** Starts `herald lb` in front of nodes. */
export async function startHeraldLB(t, nodes, { args = [] } = {}) {
  const bin = await heraldBinary();
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    try {
      return await startProxy(t, {
        what: "herald lb",
        cmd: bin,
        args: ["lb", "--listen", `127.0.0.1:${port}`, "--health-interval", "500ms", ...nodes.flatMap((n) => ["--backend", n.url]), ...args],
        port,
        privileged: true,
      });
    } catch (err) {
      if (attempt < 5 && /address already in use/i.test(err.message)) continue;
      throw err;
    }
  }
}

/** GET url; resolves {status, body}. */
export function httpGet(url, timeout = 10_000) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout, agent: false }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url}: timeout`)));
    req.on("error", reject);
  });
}

// ---------------------------------------------------------------- cluster

/** Flags of every node: forwarding, the io cookie (HAProxy), a short drain. */
export const NODE_ARGS = ["--cluster-secret", CLUSTER_SECRET, "--cookie", "--drain-delay", "1s"];

/** Heartbeat of the nodes (robust on a loaded 2-core machine). */
export const HEARTBEAT = ["--ping-interval", "2s", "--ping-timeout", "5s"];

/**
 * Starts one testserver node (Socket.IO mode, classic Redis adapter) with
 * NODE_ARGS. Returns a spawnService handle plus nodeId and name.
 */
export async function startTestNode({ nodeId, redisUrl, args = [] }) {
  const bin = await testserverBinary();
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    try {
      const svc = await spawnService({
        what: `node ${nodeId}`,
        cmd: bin,
        args: ["--mode", "sio", "--addr", `127.0.0.1:${port}`, "--node-id", nodeId, "--redis", redisUrl, "--adapter", "redis", ...HEARTBEAT, ...NODE_ARGS, ...args],
        port,
      });
      return { ...svc, nodeId, name: nodeId };
    } catch (err) {
      if (attempt < 5 && /address already in use/i.test(err.message)) continue;
      throw err;
    }
  }
}

/**
 * Starts a redis-server and `count` testserver nodes (ids <prefix>1..N).
 * Returns {redis, nodes, stop()}.
 */
export async function startDeployCluster({ count = 3, prefix = "d" } = {}) {
  const redis = await startRedis();
  const nodes = [];
  // At the end of a file the nodes are killed: a graceful stop would drain
  // (waiting for the sessions of clients already gone) and test nothing.
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.kill()));
    if (process.env.HERALD_INTEROP_VERBOSE) for (const n of nodes) process.stderr.write(`--- ${n.what} ---\n${n.logs()}\n`);
    await redis.stop();
  };
  try {
    const started = await Promise.all(Array.from({ length: count }, (_, i) => startTestNode({ nodeId: `${prefix}${i + 1}`, redisUrl: redis.url })));
    nodes.push(...started);
    // Every node answers /health and is in the registry (forwarding finds it).
    for (const n of nodes) {
      await until(async () => (await httpGet(`${n.url}/health`)).status === 200, 15_000, `${n.name} /health`);
    }
    await until(async () => (await redisNodeCount(redis)) === count, 15_000, `${count} nodes in the registry`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { redis, nodes, stop };
}

async function redisNodeCount(redis) {
  const c = await redis.client();
  return (await c.keys("herald:node:*")).length;
}

/**
 * Top-level hooks: one Redis + nodes for the test file. `.current` is the
 * started cluster; `.skip` the reason when a program is missing.
 */
export function useDeployCluster(programs = [], opts = {}) {
  const holder = { current: null, skip: false };
  try {
    holder.skip = redisSkipReason() || skipUnless(...programs);
  } catch (err) {
    holder.error = err;
  }
  before(async () => {
    if (holder.error) throw holder.error;
    if (holder.skip) return;
    holder.current = await startDeployCluster(opts);
  });
  after(async () => {
    if (holder.current) await holder.current.stop();
  });
  return holder;
}

/** Polls cond until it is true, or throws after timeout ms. */
export async function until(cond, timeout, what) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      if (await cond()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
    await sleep(100);
  }
}
