// The demo chat (cmd/herald/demo.html + herald-client.js) in a real browser:
// `herald serve` on a free loopback port, Debian's Chromium driven by
// playwright-core, three pages in two rooms.
//
//   cd interop && node --test browser/
//
// Environment: HERALD_BIN (a built cmd/herald; otherwise it is built into a
// temporary directory), CHROMIUM_PATH (default /usr/bin/chromium; install it
// with `apt-get install -y chromium`). Without Chromium the suite is skipped,
// or fails when CI=true. The screenshot of bob's page is kept and its path printed.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { bounded, launchChromium, skipWithoutChromium } from "./chromium.mjs";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const WAIT = 10_000; // every single wait in the browser

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function buildHerald(dir) {
  if (process.env.HERALD_BIN) return Promise.resolve(process.env.HERALD_BIN);
  const out = path.join(dir, "herald");
  return new Promise((resolve, reject) => {
    execFile("go", ["build", "-o", out, "./cmd/herald"], { cwd: repoRoot, maxBuffer: 16 << 20, timeout: 170_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`go build ./cmd/herald: ${err.message}\n${stdout}${stderr}`)) : resolve(out)));
  });
}

/** Starts `herald serve` and resolves once /health answers. */
async function startHerald(bin, port) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("HERALD_")));
  const child = spawn(bin, ["serve", "--addr", `127.0.0.1:${port}`, "--shutdown-timeout", "3s"], { env, stdio: ["ignore", "pipe", "pipe"] });
  const srv = { child, port, url: `http://127.0.0.1:${port}/`, log: "" };
  child.stdout.on("data", (d) => (srv.log += d));
  child.stderr.on("data", (d) => (srv.log += d));
  const exited = new Promise((resolve) => child.once("exit", (code, sig) => resolve({ code, sig })));
  srv.exited = exited;
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    try {
      const r = await fetch(srv.url + "health", { signal: AbortSignal.timeout(1000) });
      if (r.ok) return srv;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  throw new Error(`herald serve did not become healthy on port ${port}:\n${srv.log}`);
}

/** SIGTERM, then SIGKILL after 5 s. */
async function stopHerald(srv) {
  if (!srv || srv.child.exitCode !== null || srv.child.signalCode !== null) return;
  srv.child.kill("SIGTERM");
  try {
    await bounded(srv.exited, 5_000, "herald shutdown");
  } catch {
    srv.child.kill("SIGKILL");
    await bounded(srv.exited, 5_000, "herald SIGKILL").catch(() => {});
  }
}

describe("demo chat in Chromium", { skip: skipWithoutChromium, timeout: 240_000 }, () => {
  let tmp, server, browser;
  const pageErrors = [];

  before(async () => {
    browser = await launchChromium();
    tmp = mkdtempSync(path.join(os.tmpdir(), "herald-browser-"));
    const bin = await buildHerald(tmp);
    for (let attempt = 1; !server; attempt++) {
      // the free port can be taken before herald binds it: try another
      try {
        server = await startHerald(bin, await freePort());
      } catch (err) {
        if (attempt === 3) throw err;
      }
    }
    server.bin = bin;
  }, { timeout: 200_000 });

  after(async () => {
    await bounded(browser?.close() ?? Promise.resolve(), 10_000, "browser close").catch((e) => console.error(e.message));
    await stopHerald(server);
    if (tmp && !process.env.HERALD_BIN) {
      // keep the screenshot, drop the binary
      rmSync(path.join(tmp, "herald"), { force: true });
    }
  });

  /** A fresh page (own context, so own cookies) that has joined `room` as `nick`. */
  async function joinAs(nick, room) {
    const ctx = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(WAIT);
    page.on("pageerror", (e) => pageErrors.push(`${nick}: ${e.message}`));
    page.on("console", (m) => { if (m.type() === "error") pageErrors.push(`${nick} console: ${m.text()}`); });
    page.on("response", (r) => { if (r.status() >= 400) pageErrors.push(`${nick}: HTTP ${r.status()} for ${r.url()}`); });
    await page.goto(server.url, { timeout: WAIT });
    await page.locator("#status[data-state=connected]").waitFor();
    await page.fill("#nick", nick);
    await page.fill("#room", room);
    await page.click("#join");
    await page.locator("#members li", { hasText: nick }).waitFor();
    await page.locator("#message:enabled").waitFor();
    return page;
  }

  async function say(page, text) {
    await page.fill("#message", text);
    await page.click("#send");
  }

  /** Texts of the .msg elements: [{nick, text}]. */
  const messages = (page) => page.$$eval("#messages .msg", (els) =>
    els.map((e) => ({ nick: e.querySelector(".nick")?.textContent, text: e.querySelector(".text")?.textContent })));
  const members = (page) => page.$$eval("#members li", (els) => els.map((e) => e.textContent));

  test("two rooms: bob sees alice, carol does not; members, escaping, left", { timeout: 120_000 }, async (t) => {
    const alice = await joinAs("alice", "blue");
    const bob = await joinAs("bob", "blue");
    const carol = await joinAs("carol", "red");

    // alice learns about bob through `joined` + `who`
    await alice.waitForFunction(() => document.querySelectorAll("#members li").length === 2, null, { timeout: WAIT });
    assert.deepEqual(await members(alice), ["alice", "bob"]);
    assert.deepEqual(await members(bob), ["alice", "bob"]);
    assert.deepEqual(await members(carol), ["carol"]);

    const hello = "hello from alice";
    const html = `<b id="x">bold</b><img src=x onerror="document.title='pwned'">`;
    await say(alice, hello);
    await say(alice, html);

    await bob.locator("#messages .msg", { hasText: hello }).waitFor();
    await bob.locator("#messages .msg .text", { hasText: "bold" }).waitFor();
    const got = await messages(bob);
    assert.deepEqual(got, [{ nick: "alice", text: hello }, { nick: "alice", text: html }], "bob's messages");
    assert.equal(await bob.locator("#messages b, #messages img").count(), 0, "user text must not become markup");
    assert.notEqual(await bob.title(), "pwned");
    // the sender sees her own messages too
    await alice.locator("#messages .msg .text", { hasText: "bold" }).waitFor();
    assert.equal((await messages(alice)).length, 2);

    // carol's page is live (her own message arrives), and alice's never did
    await say(carol, "carol here");
    await carol.locator("#messages .msg", { hasText: "carol here" }).waitFor();
    assert.deepEqual(await messages(carol), [{ nick: "carol", text: "carol here" }]);
    assert.equal(await carol.locator("#messages .msg", { hasText: hello }).count(), 0);
    assert.equal((await messages(bob)).length, 2, "bob must not see carol's message");

    const shot = path.join(tmp, "bob.png");
    await bob.screenshot({ path: shot, fullPage: true, timeout: WAIT });
    t.diagnostic(`screenshot of bob's page: ${shot}`);

    // bob leaves: alice gets `left` and her list shrinks
    await bob.context().close();
    await alice.locator("#messages .note", { hasText: "bob left" }).waitFor();
    await alice.waitForFunction(() => document.querySelectorAll("#members li").length === 1, null, { timeout: WAIT });
    assert.deepEqual(await members(alice), ["alice"]);

    // alice moves to red: carol sees her join, both lists show two people
    await alice.fill("#room", "red");
    await alice.click("#join");
    await carol.waitForFunction(() => document.querySelectorAll("#members li").length === 2, null, { timeout: WAIT });
    assert.deepEqual(await members(carol), ["alice", "carol"]);
    await alice.waitForFunction(() => document.getElementById("room-title").textContent === "#red", null, { timeout: WAIT });

    await alice.context().close();
    await carol.context().close();
    assert.deepEqual(pageErrors, []);
  });

  test("reconnects after a server restart and joins again", { timeout: 90_000 }, async () => {
    pageErrors.length = 0;
    const dave = await joinAs("dave", "green");
    await stopHerald(server);
    await dave.locator("#status[data-state=disconnected]").waitFor();
    const status = await dave.textContent("#status");
    assert.match(status, /reconnecting/, `status after the server stopped: ${status}`);
    assert.equal(await dave.locator("#message:disabled").count(), 1, "input disabled while offline");

    const bin = server.bin;
    server = await startHerald(bin, server.port);
    server.bin = bin;
    await dave.locator("#status[data-state=connected]").waitFor({ timeout: 15_000 });
    await dave.locator("#message:enabled").waitFor();
    // the page joined again by itself: a new peer sees dave, and dave's messages flow
    const erin = await joinAs("erin", "green");
    assert.deepEqual(await members(erin), ["dave", "erin"]);
    await say(dave, "back again");
    await erin.locator("#messages .msg", { hasText: "back again" }).waitFor();
    await dave.context().close();
    await erin.context().close();
    // a WebSocket failing to connect while the server was down is logged by Chromium
    const real = pageErrors.filter((e) => !/WebSocket connection to .* failed/.test(e));
    assert.deepEqual(real, []);
  });
});
