// Redis restarts under a mixed cluster (G1, G2 Go + N Node): the
// redis-server of this file is stopped and started again on the same port
// (empty: no persistence). Every node must reconnect and subscribe again
// (classic: the pattern and request/response channels; sharded dynamic: the
// main, response and room channels), with the Socket.IO clients staying
// connected throughout; afterwards broadcasts in every direction, fetch and
// server-count work exactly as before. Pub/sub is at-most-once: what is
// published while Redis is down is lost, so only traffic after the restart
// is asserted.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { useRedis, useCluster, flowing, fetchAll } from "../lib/cluster.mjs";
import { layout, fence, assertDelivery, namesWhere, normFetch, expectFetch } from "../lib/cluster-scenarios.mjs";
import { call, until } from "../lib/sio.mjs";

const redis = useRedis();

const variants = [
  { adapter: "redis", label: "classic" },
  { adapter: "redis-sharded", shardedMode: "dynamic", label: "sharded (dynamic)" },
];

describe("Redis restart under a mixed cluster", { timeout: 120_000, skip: redis.skip || undefined }, () => {
  for (const v of variants) {
    test(`${v.label}: every node subscribes again; broadcasts, fetch and server-count work after the restart`, async (t) => {
      const cl = await useCluster(t, redis, v);
      const { all, by } = await layout(t, cl);
      const senders = cl.names.map((n) => by[`${n}d`]);
      await flowing(senders, all);

      for (let round = 1; round <= 2; round++) {
        await redis.current.restart();
        await flowing(senders, all, { timeout: 30_000 });
        await cl.settleRooms(all, { timeout: 20_000 });
        for (const n of cl.names) {
          await until(async () => (await call(by[`${n}a`].socket, "server-count"))[0] === 3, {
            timeout: 20_000,
            what: `server-count 3 via ${n} after restart ${round}`,
          });
        }
        // exact traffic in every direction after the restart
        for (const S of senders) {
          const ev = `after-${round}-${S.name}`;
          assert.deepEqual(await call(S.socket, "broadcast", { to: "r1", except: "r2", event: ev, args: [round] }), [true]);
          await fence(S, all);
          await assertDelivery(all, ev, [round], namesWhere(all, (r) => r.has("r1") && !r.has("r2")), `restart ${round}`);
        }
        const ignore = new Set(cl.probeIds);
        for (const S of senders) {
          assert.deepEqual(normFetch(await fetchAll(S), ignore), expectFetch(all), `fetch via ${S.name} after restart ${round}`);
        }
        // server-side emits flow again too
        by.Nd.socket.emit("server-side-emit", `sse-${round}`, 1);
        by.G1d.socket.emit("server-side-emit", `sse-${round}`, 2);
        await until(
          () =>
            all.every((c) => {
              const got = c.rec.of("server-side").filter((a) => a[0] === `sse-${round}`).map((a) => a[1]).sort();
              return JSON.stringify(got) === JSON.stringify(c.node === "N" ? [2] : c.node === "G1" ? [1] : [1, 2]);
            }),
          { what: `server-side events after restart ${round}` },
        );
      }
      for (const c of all) assert.deepEqual(c.rec.disconnects, [], `${c.name}: the Socket.IO connection survived`);
    });
  }
});
