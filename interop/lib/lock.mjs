// A cross-process lock for tests. `node --test` runs test files in parallel
// processes; tests that load the machine (hundreds of clients) and tests that
// measure time (100 ms heartbeats) take the same lock so they never overlap.

import { openSync, writeSync, closeSync, readFileSync, unlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";

const held = new Set();
process.on("exit", () => {
  for (const file of held) {
    try {
      unlinkSync(file);
    } catch {}
  }
});

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === "EPERM";
  }
}

/**
 * Acquires the named lock (waiting up to `timeout` ms); resolves with a release function.
 * A lock left behind by a dead process is taken over.
 */
export async function acquire(name, { timeout = 300_000 } = {}) {
  const file = path.join(os.tmpdir(), `herald-interop-${name}.lock`);
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      const fd = openSync(file, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      held.add(file);
      return () => {
        if (held.delete(file)) {
          try {
            unlinkSync(file);
          } catch {}
        }
      };
    } catch (err) {
      if (err.code !== "EEXIST") throw err;
    }
    let owner = NaN;
    try {
      owner = Number(readFileSync(file, "utf8"));
    } catch {}
    if (Number.isInteger(owner) && owner > 0 && !alive(owner)) {
      try {
        unlinkSync(file);
      } catch {}
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(`lock ${file} still held by pid ${owner} after ${timeout} ms`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs fn while holding the named lock. */
export async function exclusive(name, fn, opts) {
  const release = await acquire(name, opts);
  try {
    return await fn();
  } finally {
    release();
  }
}
