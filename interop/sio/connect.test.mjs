// socket.io-client 4.8.4 against `testserver --mode sio`: connecting, the
// handshake's auth payload, namespaces, CONNECT_ERROR for an unknown namespace
// and for a namespace whose middleware rejects. Each scenario runs over
// WebSocket only, polling only, and the default (polling, then upgrade).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  SETUPS,
  SETUP_NAMES,
  call,
  connect,
  connectManager,
  createClient,
  nextEvent,
  settleTransport,
  useSioServer,
} from "../lib/sio.mjs";

/** Resolves with the connect_error of a socket that must not connect. */
async function connectError(socket) {
  const [err] = await nextEvent(socket, "connect_error", { timeout: 5000, failOn: ["connect"] });
  return err;
}

for (const name of SETUP_NAMES) {
  const setup = SETUPS[name];

  describe(`connect (${name})`, { timeout: 60_000 }, () => {
    test("the server emits `auth` with exactly the auth object; socket.id is the server's id", async (t) => {
      const srv = await useSioServer(t);
      const c = await connect(t, srv.url, setup, { auth: { token: "abc" } });
      assert.deepEqual(await c.next("auth"), [{ token: "abc" }]);
      const id = c.socket.id;
      assert.equal(typeof id, "string");
      assert.ok(id.length >= 8, `socket.id ${JSON.stringify(id)}`);
      const [who] = await call(c.socket, "whoami");
      assert.equal(who.id, id);
      assert.deepEqual(who.rooms, [id]);
      assert.equal(typeof who.node, "string");
      await settleTransport(c.socket, name);
      // still answering on the final transport, and nothing else arrived
      assert.deepEqual(await call(c.socket, "message-with-ack", "after", 2), ["after", 2]);
      assert.deepEqual(c.rec.all.map((e) => e.event), ["auth"]);
      assert.equal(c.socket.id, id);
      assert.ok(!c.socket.recovered, "recovered without connection-state recovery");
    });

    test("auth payloads: nested object exactly; no auth gives {}", async (t) => {
      const srv = await useSioServer(t);
      const auth = { token: "abc", n: 1.5, ok: true, nothing: null, list: [1, "two", { three: [3] }], "ü😀": "ß" };
      const a = await connect(t, srv.url, setup, { auth });
      assert.deepEqual(await a.next("auth"), [auth]);
      const b = await connect(t, srv.url, setup);
      assert.deepEqual(await b.next("auth"), [{}]);
      assert.notEqual(a.socket.id, b.socket.id);
    });

    test("/custom with auth, next to / on the same connection", async (t) => {
      const srv = await useSioServer(t);
      const { manager, sockets } = await connectManager(t, srv.url, setup, ["/", "/custom"], { auth: { token: "abc" } });
      const main = sockets["/"];
      const custom = sockets["/custom"];
      assert.deepEqual(await custom.next("auth"), [{ token: "abc" }]);
      assert.deepEqual(await main.next("auth"), [{ token: "abc" }]);
      assert.equal(typeof custom.socket.id, "string");
      assert.notEqual(custom.socket.id, main.socket.id);
      const [whoCustom] = await call(custom.socket, "whoami");
      const [whoMain] = await call(main.socket, "whoami");
      assert.equal(whoCustom.id, custom.socket.id);
      assert.equal(whoMain.id, main.socket.id);
      // namespaces are separate: each sees only its own socket
      assert.deepEqual((await call(custom.socket, "fetch", {}))[0].map((s) => s.id), [custom.socket.id]);
      assert.deepEqual((await call(main.socket, "fetch", {}))[0].map((s) => s.id), [main.socket.id]);
      custom.socket.emit("message", "to custom");
      assert.deepEqual(await custom.next("message-back"), ["to custom"]);
      await settleTransport(custom.socket, name);
      assert.deepEqual(await call(custom.socket, "message-with-ack", "x"), ["x"]);
      assert.equal(main.rec.of("message-back").length, 0);
      assert.equal(manager.engine.id !== undefined, true);
    });

    test("/custom alone, with a different auth per namespace", async (t) => {
      const srv = await useSioServer(t);
      const c = await connect(t, `${srv.url}/custom`, setup, { auth: { token: "custom-only", k: [1] } });
      assert.deepEqual(await c.next("auth"), [{ token: "custom-only", k: [1] }]);
      const [who] = await call(c.socket, "whoami");
      assert.equal(who.id, c.socket.id);
    });

    test('an unknown namespace gives connect_error "Invalid namespace"', async (t) => {
      const srv = await useSioServer(t);
      const c = createClient(t, `${srv.url}/nope`, setup, { auth: { token: "abc" } });
      const err = await connectError(c.socket);
      assert.equal(err.message, "Invalid namespace");
      assert.equal(err.data, undefined);
      assert.equal(c.socket.connected, false);
      assert.equal(c.socket.active, false, "a namespace refused by the server is not retried");
      // the same server still accepts the known namespaces on every transport
      const ok = await connect(t, srv.url, setup);
      assert.deepEqual(await ok.next("auth"), [{}]);
    });

    test("an unknown namespace on a connection that also has / : / keeps working", async (t) => {
      const srv = await useSioServer(t);
      const { manager, sockets } = await connectManager(t, srv.url, setup, ["/"]);
      const bad = manager.socket("/nope");
      bad.on("connect_error", () => {});
      t.after(() => bad.disconnect());
      const err = await connectError(bad);
      assert.equal(err.message, "Invalid namespace");
      assert.deepEqual(await call(sockets["/"].socket, "message-with-ack", "still here"), ["still here"]);
    });

    // DESIGN.md's contract has no namespace whose middleware rejects. The sio
    // tests expect a `/private` namespace whose middleware rejects unless
    // auth.token === "secret", with message "not authorized" and data
    // {why: "token"}; until the testserver has it, this test is skipped.
    test('middleware rejection: /private gives "not authorized" with data {why: "token"}', async (t) => {
      const srv = await useSioServer(t);
      const probe = createClient(t, `${srv.url}/private`, setup);
      const err = await connectError(probe.socket);
      if (err.message === "Invalid namespace") {
        t.skip("testserver has no /private namespace (rejecting middleware is not in the DESIGN.md contract yet)");
        return;
      }
      assert.equal(err.message, "not authorized");
      assert.deepEqual(err.data, { why: "token" });
      assert.equal(probe.socket.active, false);

      const wrong = createClient(t, `${srv.url}/private`, setup, { auth: { token: "abc" } });
      const err2 = await connectError(wrong.socket);
      assert.equal(err2.message, "not authorized");
      assert.deepEqual(err2.data, { why: "token" });

      const right = await connect(t, `${srv.url}/private`, setup, { auth: { token: "secret" } });
      assert.deepEqual(await right.next("auth"), [{ token: "secret" }]);
      const [who] = await call(right.socket, "whoami");
      assert.equal(who.id, right.socket.id);
      await settleTransport(right.socket, name);
      assert.deepEqual(await call(right.socket, "message-with-ack", "in"), ["in"]);
    });
  });
}
