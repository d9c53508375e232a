// Start and stop the Go test server (interop/testserver) from Node tests.
//
//   import { startServer, useServer } from "../lib/server.mjs";
//   const srv = await useServer(t, { mode: "eio", args: ["--max-payload", "1000"] });
//   // srv.url, srv.port, await srv.stop(), await srv.restart()
//
// The binary comes from $HERALD_TESTSERVER, or is built once per process with
// `go build -o <tmpdir>/testserver ./interop/testserver` from the repository
// root. With HERALD_INTEROP_SERVER=node, the Node.js reference server
// (lib/reference-eio-server.mjs, official `engine.io`) is started instead, to
// check the tests' expectations against the reference implementation. Every process started here is stopped by stop(), by the t.after hook
// that useServer registers, and, as a last resort, by a SIGKILL when the Node
// process exits.

import { spawn, execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
/** Repository root (interop/lib/ -> ../..). */
export const repoRoot = path.resolve(here, "..", "..");

const READY_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 5_000;

/** Every child still running, so the exit hook can kill leftovers. */
const running = new Set();
let tmpDir = null;

process.on("exit", () => {
  for (const child of running) {
    try {
      child.kill("SIGKILL");
    } catch {}
  }
  if (tmpDir) {
    try {
      rmSync(tmpDir, { recursive: true, force: true });
    } catch {}
  }
});

// If this test process is interrupted, take the servers down with it.
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.once(sig, () => {
    for (const child of running) {
      try {
        child.kill("SIGKILL");
      } catch {}
    }
    process.exit(sig === "SIGINT" ? 130 : 143);
  });
}

let binaryPromise = null;

/** Path of the testserver binary: $HERALD_TESTSERVER or a fresh build (once per process). */
export function testserverBinary() {
  if (process.env.HERALD_TESTSERVER) {
    return Promise.resolve(process.env.HERALD_TESTSERVER);
  }
  if (!binaryPromise) {
    binaryPromise = new Promise((resolve, reject) => {
      tmpDir = mkdtempSync(path.join(os.tmpdir(), "herald-interop-"));
      const out = path.join(tmpDir, "testserver");
      execFile(
        "go",
        ["build", "-o", out, "./interop/testserver"],
        { cwd: repoRoot, maxBuffer: 16 << 20 },
        (err, stdout, stderr) => {
          if (err) {
            reject(new Error(`go build ./interop/testserver failed: ${err.message}\n${stdout}${stderr}`));
          } else {
            resolve(out);
          }
        },
      );
    });
  }
  return binaryPromise;
}

/** A free TCP port on 127.0.0.1 (listen on port 0, read it, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** Waits until `child` exits; resolves {code, signal}. */
function waitExit(child) {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
}

/**
 * Starts the test server.
 *
 * @param {object} [opts]
 * @param {"eio"|"sio"} [opts.mode="eio"]
 * @param {string[]} [opts.args] extra flags, e.g. ["--max-payload", "1000"]
 * @param {number} [opts.port] port to listen on (default: a free one)
 * @param {string} [opts.host="127.0.0.1"]
 * @param {object} [opts.env] extra environment variables
 * @returns {Promise<{url: string, port: number, host: string, pid: number,
 *   stop: (graceMs?: number) => Promise<{code: number|null, signal: string|null, killed: boolean}>,
 *   restart: () => Promise<void>, logs: () => string, running: () => boolean}>}
 */
export async function startServer(opts = {}) {
  const mode = opts.mode ?? "eio";
  const host = opts.host ?? "127.0.0.1";
  const extra = opts.args ?? [];
  const useNode = process.env.HERALD_INTEROP_SERVER === "node";
  const bin = useNode ? process.execPath : await testserverBinary();
  const prefix = useNode ? [path.join(here, "reference-eio-server.mjs")] : [];
  const port = opts.port ?? (await freePort());

  let child = null;
  let logText = "";

  const launch = async () => {
    // A port picked by freePort (or the previous run's port on restart) can be
    // taken in the meantime; retry a few times on "address already in use".
    for (let attempt = 0; ; attempt++) {
      try {
        return await launchOnce();
      } catch (err) {
        if (attempt < 20 && /address already in use/i.test(err.message)) {
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        throw err;
      }
    }
  };

  const launchOnce = () =>
    new Promise((resolve, reject) => {
      const args = [...prefix, "--mode", mode, "--addr", `${host}:${port}`, ...extra];
      const c = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...opts.env } });
      child = c;
      running.add(c);
      let settled = false;
      let buf = "";
      const timer = setTimeout(() => {
        fail(new Error(`testserver did not report "listening" within ${READY_TIMEOUT_MS} ms\n${logText}`));
      }, READY_TIMEOUT_MS);
      const done = () => {
        settled = true;
        clearTimeout(timer);
      };
      const fail = (err) => {
        if (settled) return;
        done();
        c.kill("SIGKILL");
        waitExit(c).then(() => reject(err));
      };
      const onLine = (line) => {
        if (!settled && line.includes("testserver listening")) {
          done();
          resolve();
        }
      };
      const onData = (chunk) => {
        const s = chunk.toString("utf8");
        logText += s;
        buf += s;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          onLine(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      };
      c.stdout.on("data", onData);
      c.stderr.on("data", onData);
      c.on("error", (err) => fail(new Error(`cannot run ${bin}: ${err.message}`)));
      c.on("exit", (code, signal) => {
        running.delete(c);
        if (!settled) {
          done();
          reject(new Error(`testserver exited before listening (code ${code}, signal ${signal}):\n${logText}`));
        }
      });
    });

  const stop = async (graceMs = STOP_GRACE_MS) => {
    const c = child;
    if (!c) return { code: null, signal: null, killed: false };
    if (c.exitCode !== null || c.signalCode !== null) {
      return { code: c.exitCode, signal: c.signalCode, killed: false };
    }
    c.kill("SIGTERM");
    let timer;
    const timedOut = await Promise.race([
      waitExit(c).then(() => false),
      new Promise((r) => {
        timer = setTimeout(() => r(true), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      c.kill("SIGKILL");
    }
    const res = await waitExit(c);
    return { ...res, killed: timedOut };
  };

  await launch();

  return {
    host,
    port,
    url: `http://${host}:${port}`,
    get pid() {
      return child?.pid;
    },
    stop,
    /** Stops the server (if running) and starts it again on the same port. */
    restart: async () => {
      await stop();
      await launch();
    },
    logs: () => logText,
    running: () => !!child && child.exitCode === null && child.signalCode === null,
  };
}

/**
 * startServer plus a t.after hook (node:test) that stops the server when the
 * test ends, whether it passed or failed. With HERALD_INTEROP_VERBOSE=1 the
 * server's log is written to the test diagnostics.
 */
export async function useServer(t, opts = {}) {
  const srv = await startServer(opts);
  t.after(async () => {
    await srv.stop();
    if (process.env.HERALD_INTEROP_VERBOSE) {
      process.stderr.write(`--- testserver log (${t.name}) ---\n${srv.logs()}`);
    }
  });
  return srv;
}
