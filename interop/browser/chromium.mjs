// Shared by the browser tests: Debian's Chromium through playwright-core.
//
// CHROMIUM_PATH overrides /usr/bin/chromium. When the executable is missing the
// suites are skipped with a message, except with CI=true, where they fail.

import { existsSync } from "node:fs";
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
export const chromiumMissing = !existsSync(CHROMIUM);

/** The `skip` option for describe(): a message when Chromium is missing outside CI, else false. */
export const skipWithoutChromium = chromiumMissing && process.env.CI !== "true"
  ? `Chromium not found at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH`
  : false;

/** Rejects after ms with a message naming what timed out. */
export function bounded(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Launches Chromium (bounded); throws a clear error if it is missing (the CI case).
 * Chromium itself sometimes crashes while starting on a busy VM (SIGSEGV before the
 * first page: seen in a CI run); that is retried twice, with the failure logged.
 */
export async function launchChromium() {
  if (chromiumMissing) {
    throw new Error(`CI=true and Chromium is missing at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`);
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await bounded(chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 }), 35_000, "Chromium launch");
    } catch (err) {
      if (attempt >= 3) throw err;
      console.error(`Chromium launch failed (attempt ${attempt}), retrying: ${String(err.message).split("\n")[0]}`);
    }
  }
}
