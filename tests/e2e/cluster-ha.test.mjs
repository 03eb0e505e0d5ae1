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
import {
  Redis, startRedis, startSentinel, freePort, command, replicationField, HAVE_REDIS, NO_REDIS,
} from './lib/redis.mjs';

const servers = [];
const redises = [];
after(async () => {
  for (const s of servers) await s.stop({ signal: 'SIGKILL' }).catch(() => {});
  for (const r of redises) await r.stop().catch(() => {});
});

/** Field name of a SENTINEL MASTER reply (a flat name, value list). */
function field(list, name) { const i = list.indexOf(name); return i < 0 ? undefined : list[i + 1]; }

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

test('Sentinel failover: a primary, two replicas, three sentinels, two nodes with SSE_REDIS_MIN_REPLICAS=1; the primary SIGKILLed: publishes resume on both nodes once the new primary has a replica, every 201 is on that replica and reaches both nodes\' streams', { skip, timeout: 60000 }, async () => {
  const primary = await redis();
  const reps = [await replica(primary), await replica(primary)];
  const sentinels = [];
  for (let i = 0; i < 3; i++) {
    const st = await startSentinel('hub', primary.port, { quorum: 2, downAfter: 1000, failoverTimeout: 3000 });
    redises.push(st);
    sentinels.push(st);
  }
  // Each sentinel must know both replicas and the two other sentinels before a failover can be agreed.
  await until(async () => {
    for (const st of sentinels) {
      const m = await command(st.port, ['SENTINEL', 'MASTER', 'hub']);
      if (Number(field(m, 'num-slaves')) !== 2 || Number(field(m, 'num-other-sentinels')) !== 2) return false;
    }
    return true;
  }, 15000, 'sentinels that know each other and both replicas', 200);
  const env = {
    SSE_REDIS_SENTINELS: sentinels.map((st) => `127.0.0.1:${st.port}`).join(','),
    SSE_REDIS_MASTER: 'hub',
    SSE_REDIS_MIN_REPLICAS: '1',
  };
  const a = await node(env);
  const b = await node(env);
  await a.waitForLog(/cluster sentinels=127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+ master=hub .*min_replicas=1 /);
  const tk = await tokens(a);
  const onA = await subscribe(a, tk.anon, '');
  const onB = await subscribe(b, tk.anon, '');

  const acked = new Map(); // id -> content
  const afterKill = { a: [], b: [] }; // ms from the kill to each 201
  let killedAt = 0;
  let stop = false;
  const pubs = { a: keepAlivePublisher(a, tk.pub), b: keepAlivePublisher(b, tk.pub) };
  const loops = Object.entries(pubs).map(async ([name, p]) => {
    for (let i = 0; i < 2000 && !stop; i++) {
      const content = `${name}${i}`;
      const res = await p.post({ content }).catch((e) => ({ status: 0, body: e.message }));
      if (res.status === 201) {
        acked.set(res.json.id, content);
        if (killedAt) afterKill[name].push(Date.now() - killedAt);
      } else {
        assert.equal(res.status, 503, res.body);
        await new Promise((t) => setTimeout(t, 50));
      }
    }
  });
  try {
    await until(() => acked.size >= 20, 10000, 'publishes before the failover', 10);
    await primary.stop('SIGKILL');
    killedAt = Date.now();
    await until(() => afterKill.a.length >= 5 && afterKill.b.length >= 5, 30000, 'publishes resumed on both nodes', 50);
  } finally {
    stop = true;
    await Promise.all(loops);
    for (const p of Object.values(pubs)) p.close();
  }
  const [host, port] = await command(sentinels[0].port, ['SENTINEL', 'get-master-addr-by-name', 'hub']);
  assert.equal(host, '127.0.0.1');
  const promoted = reps.find((r) => r.port === Number(port));
  assert.ok(promoted, `a replica was promoted (${host}:${port})`);
  const other = reps.find((r) => r !== promoted);
  assert.equal(await replicationField(promoted.port, 'role'), 'master');
  console.log(`failover: first 201 after the kill on a after ${afterKill.a[0]} ms, on b after ${afterKill.b[0]} ms; ${acked.size} acknowledged`);

  const ids = [...acked.keys()].sort((x, y) => x - y);
  // Durable: every acknowledged event is on the new primary and on its replica.
  await until(async () => (await replicationField(other.port, 'master_link_status')) === 'up', 10000, 'the other replica follows the new primary', 100);
  for (const id of ids) {
    assert.equal(await contentOf(promoted.port, id), acked.get(id), `event ${id} on the new primary`);
    assert.equal(await contentOf(other.port, id), acked.get(id), `event ${id} on its replica`);
  }
  for (const s of [onA, onB]) {
    await waitForId(s, ids.at(-1), 10000);
    assert.equal(firstNonIncreasing(idsOf(s)), -1, 'ids increase: none delivered twice');
    const got = new Map(evs(s).map((e) => [e.id, e.data]));
    for (const id of ids) assert.equal(got.get(id), acked.get(id), `acknowledged event ${id} delivered`);
  }
  onA.close(); onB.close();
});

test('bad Sentinel settings stop start-up with one line naming the setting', { timeout: 20000 }, async () => {
  const cases = [
    [{ SSE_REDIS_SENTINELS: '127.0.0.1:1' }, /ssehub: SSE_REDIS_MASTER: must be set with SSE_REDIS_SENTINELS/],
    [{ SSE_REDIS_MASTER: 'hub' }, /ssehub: SSE_REDIS_MASTER: needs SSE_REDIS_SENTINELS/],
    [{ SSE_REDIS_SENTINELS: '127.0.0.1', SSE_REDIS_MASTER: 'hub' }, /ssehub: SSE_REDIS_SENTINELS: must be HOST:PORT,\.\.\./],
    [{ SSE_REDIS_SENTINELS: '127.0.0.1:1,:2', SSE_REDIS_MASTER: 'hub' }, /ssehub: SSE_REDIS_SENTINELS: must be HOST:PORT/],
    [{ SSE_REDIS_SENTINELS: '127.0.0.1:1', SSE_REDIS_MASTER: 'hub', SSE_REDIS_URL: 'redis://127.0.0.1:1' }, /ssehub: SSE_REDIS_SENTINELS: set it or SSE_REDIS_URL, not both/],
  ];
  for (const [env, re] of cases) {
    const srv = await startServer({ env }).catch((e) => e);
    assert.ok(srv instanceof Error, JSON.stringify(env));
    assert.match(srv.message, re);
  }
});

test('sentinels that cannot be reached, or that name a replica, stop start-up with one line saying so', { skip, timeout: 30000 }, async () => {
  const dead = await freePort();
  let srv = await startServer({ env: { SSE_REDIS_SENTINELS: `127.0.0.1:${dead}`, SSE_REDIS_MASTER: 'hub' } }).catch((e) => e);
  assert.ok(srv instanceof Error);
  assert.match(srv.message, new RegExp(`ssehub: SSE_REDIS_SENTINELS: redis master hub: sentinel 127\\.0\\.0\\.1:${dead}: cannot connect`));
  // A sentinel whose master was made a replica by hand, behind its back: ROLE says so.
  const primary = await redis();
  const st = await startSentinel('hub', primary.port);
  redises.push(st);
  const other = await redis();
  await command(primary.port, ['REPLICAOF', '127.0.0.1', String(other.port)]);
  await until(async () => (await replicationField(primary.port, 'role')) === 'slave', 5000, 'primary demoted', 50);
  srv = await startServer({ env: { SSE_REDIS_SENTINELS: `127.0.0.1:${dead},127.0.0.1:${st.port}`, SSE_REDIS_MASTER: 'hub' } }).catch((e) => e);
  assert.ok(srv instanceof Error);
  assert.match(srv.message, new RegExp(`ssehub: SSE_REDIS_SENTINELS: redis 127\\.0\\.0\\.1:${primary.port}: the node the sentinels named is not the master \\(ROLE: slave\\)`));
});
