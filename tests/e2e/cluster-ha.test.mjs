// Cluster mode's high availability (issue 10) against real redis-server processes:
// SSE_REDIS_MIN_REPLICAS (a 201 only once replicas hold the event, WAIT), a Redis with an
// fsync-always AOF restarted in the middle of a burst of publishes, and Redis Sentinel
// (SSE_REDIS_SENTINELS, SSE_REDIS_MASTER) following a failover. Every wait has a deadline.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, until } from './lib/server.mjs';
import { tokens, subscribe, evs, idsOf, waitForId, keepAlivePublisher, firstNonIncreasing } from './lib/history.mjs';
import { Redis, startRedis, freePort, command, replicationField, HAVE_REDIS, NO_REDIS } from './lib/redis.mjs';

const servers = [];
const redises = [];
after(async () => {
  for (const s of servers) await s.stop({ signal: 'SIGKILL' }).catch(() => {});
  for (const r of redises) await r.stop().catch(() => {});
});

async function redis(opts) {
  const r = await startRedis(opts);
  redises.push(r);
  return r;
}

/** A replica of primary on a fresh port; resolves once its link to the primary is up. */
async function replica(primary, timeout = 10000) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-replica-'));
  const r = new Redis(await freePort(), dir, { replicaof: primary.port });
  redises.push(r);
  await r.start();
  await until(async () => (await replicationField(r.port, 'master_link_status')) === 'up', timeout, `replica ${r.port} in sync`, 50);
  return r;
}

async function node(env) {
  const srv = await startServer({ env });
  servers.push(srv);
  return srv;
}

const skip = HAVE_REDIS ? false : NO_REDIS;

test('SSE_REDIS_MIN_REPLICAS=1: 201 while the replica holds the event; replica stopped: 503 + Retry-After within the WAIT, never 201, the log says why; replica back: 201 again', { skip, timeout: 40000 }, async () => {
  const primary = await redis();
  const rep = await replica(primary);
  const a = await node({ SSE_REDIS_URL: primary.url, SSE_REDIS_MIN_REPLICAS: '1' });
  await a.waitForLog(/cluster redis=127\.0\.0\.1:\d+\/0 .*min_replicas=1 /);
  const tk = await tokens(a);
  const sub = await subscribe(a, tk.anon, '');
  const pub = keepAlivePublisher(a, tk.pub);
  try {
    const ok = await pub.post({ content: 'held by the replica' });
    assert.equal(ok.status, 201, ok.body);
    assert.equal(await contentOf(rep.port, ok.json.id), 'held by the replica', 'the replica holds it');

    await rep.stop();
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      const res = await pub.post({ content: `unsafe${i}` });
      const ms = Date.now() - t0;
      assert.equal(res.status, 503, `never a 201 without a replica: ${res.status} ${res.body}`);
      assert.ok(ms >= 900 && ms < 3000, `answered after the 1 s WAIT (${ms} ms)`);
    }
    await a.waitForLog(/ERROR publish-failed account=e2e-pub reason=store-unreachable error="redis 127\.0\.0\.1:\d+: only 0 of 1 replicas acknowledged within 1000 ms \(SSE_REDIS_MIN_REPLICAS\)"$/);
    // What a 503 means here: not known durable. Redis took the events, so they are delivered.
    await until(() => evs(sub).some((e) => e.data === 'unsafe2'), 5000, 'the refused events are delivered');

    await rep.start();
    let res;
    await until(async () => { res = await pub.post({ content: 'safe again' }); return res.status === 201; }, 15000, '201 once the replica is back', 200);
    assert.equal(await contentOf(rep.port, res.json.id), 'safe again');
    await waitForId(sub, res.json.id);
    const seen = evs(sub).map((e) => e.data);
    assert.deepEqual(seen.filter((d) => d === 'safe again').length, 1);
    assert.equal(firstNonIncreasing(idsOf(sub)), -1, 'ids increase on the stream');
  } finally { pub.close(); }
  sub.close();
});

/** The content of event id in the stream held by the Redis on port (a replica too). */
async function contentOf(port, id) {
  const rows = await command(port, ['XRANGE', 'ssehub:events', `${id}-0`, `${id}-0`]);
  if (!rows.length) return undefined;
  const f = rows[0][1];
  return f[f.indexOf('content') + 1];
}

test('SSE_REDIS_MIN_REPLICAS without cluster mode stops start-up with one line', { timeout: 10000 }, async () => {
  const srv = await startServer({ env: { SSE_REDIS_MIN_REPLICAS: '1' } }).catch((e) => e);
  assert.ok(srv instanceof Error);
  assert.match(srv.message, /ssehub: SSE_REDIS_MIN_REPLICAS: needs cluster mode/);
});

test('Redis with an fsync-always AOF restarted (SIGTERM, then SIGKILL) in the middle of a burst from four connections: every 201 is in the history and reaches the streams that stayed open once, in order', { skip, timeout: 60000 }, async () => {
  const r = await redis({ aof: true });
  const a = await node({ SSE_REDIS_URL: r.url });
  const b = await node({ SSE_REDIS_URL: r.url });
  const tk = await tokens(a);
  const onA = await subscribe(a, tk.anon, '');
  const onB = await subscribe(b, tk.anon, '');
  const acked = new Map(); // id -> content
  let refused = 0;
  for (const signal of ['SIGTERM', 'SIGKILL']) {
    const pubs = [a, b, a, b].map((srv) => keepAlivePublisher(srv, tk.pub));
    let restarted = false;
    const base = acked.size;
    const restart = (async () => {
      await until(() => acked.size >= base + 40, 10000, 'publishes before the restart', 5);
      await r.stop(signal);
      await r.start();
      restarted = true;
    })();
    // Each connection: 60 publishes, each with content of its own, so none is retried;
    // after the restart it goes on until it got 10 more 201s (at most 200 attempts).
    await Promise.all(pubs.map(async (p, k) => {
      let after = 0;
      for (let i = 0; i < 200 && (i < 60 || (restarted ? after < 10 : true)); i++) {
        const content = `${signal}-p${k}-${i}`;
        const res = await p.post({ content }).catch((e) => ({ status: 0, body: e.message }));
        if (res.status === 201) {
          assert.ok(!acked.has(res.json.id), `id ${res.json.id} given twice`);
          acked.set(res.json.id, content);
          if (restarted) after++;
        } else {
          assert.equal(res.status, 503, res.body);
          refused++;
          await new Promise((t) => setTimeout(t, 20));
        }
      }
    }));
    await restart;
    for (const p of pubs) p.close();
  }
  const ids = [...acked.keys()].sort((x, y) => x - y);
  const last = ids.at(-1);
  for (const s of [onA, onB]) {
    await waitForId(s, last, 15000);
    assert.equal(firstNonIncreasing(idsOf(s)), -1, 'ids increase: none delivered twice');
    const got = new Map(evs(s).map((e) => [e.id, e.data]));
    for (const id of ids) assert.equal(got.get(id), acked.get(id), `acknowledged event ${id} delivered`);
    const contents = evs(s).map((e) => e.data);
    assert.equal(new Set(contents).size, contents.length, 'no event stored twice under two ids');
  }
  const replay = await subscribe(b, tk.anon, '', { lastId: 0 });
  await waitForId(replay, last, 10000);
  const hist = new Map(evs(replay).map((e) => [e.id, e.data]));
  for (const id of ids) assert.equal(hist.get(id), acked.get(id), `acknowledged event ${id} in the history`);
  assert.deepEqual(idsOf(replay).slice(0, idsOf(onB).length), idsOf(onB), 'the history is what the stream delivered');
  replay.close(); onA.close(); onB.close();
  console.log(`AOF restarts: ${acked.size} acknowledged, ${refused} refused with 503`);
});
