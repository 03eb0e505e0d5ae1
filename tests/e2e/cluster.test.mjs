// Cluster mode (issue 10): several ssehub nodes on one real redis-server
// (SSE_REDIS_URL). One hub: an event published on any node reaches the
// subscribers of every node in one order, with ids increasing across nodes;
// Last-Event-ID and /notifications read the shared history; while Redis is
// unreachable publishes get 503 + Retry-After and streams stay open, and the
// feed resumes after the last id it delivered; a node started late replays
// what came before it; a subscriber of a SIGKILLed node resumes on another.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, sleep, request, until, tempDir } from './lib/server.mjs';
import {
  tokens, subscribe, evs, idsOf, waitForId, waitForCount, keepAlivePublisher, publishAll, notifications,
  dbPath,
} from './lib/history.mjs';
import { startRedis, HAVE_REDIS, NO_REDIS } from './lib/redis.mjs';

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

async function node(r, env = {}) {
  const srv = await startServer({ env: { SSE_REDIS_URL: r.url, ...env } });
  servers.push(srv);
  return srv;
}

const skip = HAVE_REDIS ? false : NO_REDIS;

test('two nodes on one Redis: a publish on A reaches B, ids increase across nodes, one order everywhere', { skip, timeout: 30000 }, async () => {
  const r = await redis();
  const a = await node(r);
  const b = await node(r);
  assert.match(a.stderr, /cluster redis=127\.0\.0\.1:\d+\/0 .*SSE_DB is ignored/);
  const tk = await tokens(a);
  const onA = await subscribe(a, tk.anon, '');
  const onB = await subscribe(b, tk.anon, '');
  const pa = keepAlivePublisher(a, tk.pub);
  const pb = keepAlivePublisher(b, tk.pub);
  const ids = [];
  try {
    for (let i = 0; i < 40; i++) {
      const res = await (i % 2 ? pb : pa).post({ content: `m${i}` });
      assert.equal(res.status, 201, res.body);
      ids.push(res.json.id);
    }
  } finally { pa.close(); pb.close(); }
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], `id ${ids[i]} after ${ids[i - 1]}`);
  assert.deepEqual(ids, Array.from({ length: 40 }, (_, i) => i + 1), 'dense ids from one counter');
  await waitForCount(onA, 40);
  await waitForCount(onB, 40);
  const want = ids.map((id, i) => ({ id, event: undefined, data: `m${i}` }));
  assert.deepEqual(evs(onA), want, 'A delivers its own and B\'s events from the same feed, in id order');
  assert.deepEqual(evs(onB), want, 'B delivers the same, in the same order');
  onA.close(); onB.close();

  // Last-Event-ID on B replays what was published on A (and B); /notifications reads the shared history.
  const resumed = await subscribe(b, tk.anon, '', { lastId: 30 });
  await waitForCount(resumed, 10);
  assert.deepEqual(idsOf(resumed), ids.slice(30));
  resumed.close();
  const n = await notifications(a, tk.anon, '', 'limit=5');
  assert.equal(n.status, 200, n.body);
  assert.deepEqual(JSON.parse(n.body).items.map((x) => x.id), [40, 39, 38, 37, 36]);
  // User-addressed events follow the same filter on both nodes.
  const alice = await tk.sub('alice');
  const sa = await subscribe(b, alice, 'alice');
  const [idBob] = await publishAll(a, tk.pub, [{ content: 'bob only', user: 'bob' }]);
  const [idAlice] = await publishAll(a, tk.pub, [{ content: 'alice only', user: 'alice' }]);
  await waitForId(sa, idAlice);
  assert.deepEqual(idsOf(sa), [idAlice], `bob's ${idBob} is not alice's`);
  sa.close();
  for (const s of [a, b]) assert.equal((await request(s, 'GET', '/readyz')).status, 200);
  for (const s of [a, b]) {
    assert.deepEqual(s.lines.filter((l) => /unknown setting/.test(l)), [], 'SSE_REDIS_URL is a setting');
    assert.ok(!fs.existsSync(dbPath(s)) && !fs.existsSync(`${dbPath(s)}.lock`), 'no SQLite file, no lock');
  }
});

test('two nodes on one machine share one port with SSE_REUSE_PORT=1 and one SSE_DB line, which cluster mode neither opens nor locks', { skip, timeout: 30000 }, async () => {
  const r = await redis();
  const db = path.join(tempDir(), 'data', 'history.db');
  const a = await node(r, { SSE_REUSE_PORT: '1', SSE_DB: db });
  const b = await node(r, { SSE_REUSE_PORT: '1', SSE_DB: db, SSE_PORT: String(a.port) });
  assert.equal(b.port, a.port);
  assert.ok(!fs.existsSync(db) && !fs.existsSync(`${db}.lock`), `${db}: no SQLite file, no lock`);
  const tk = await tokens(a);
  const streams = [];
  for (let i = 0; i < 24; i++) streams.push(await subscribe(a, tk.anon, ''));
  const connects = (s) => s.lines.filter((l) => / connect ip=/.test(l)).length;
  assert.ok(connects(a) > 0 && connects(b) > 0, `the kernel spread the streams (a ${connects(a)}, b ${connects(b)})`);
  const [id] = await publishAll(a, tk.pub, [{ content: 'to every stream on the port' }]);
  for (const s of streams) await waitForId(s, id);
  for (const s of streams) s.close();
});

test('a node started late replays events published before it existed', { skip, timeout: 30000 }, async () => {
  const r = await redis();
  const a = await node(r);
  const tk = await tokens(a);
  const ids = await publishAll(a, tk.pub, Array.from({ length: 12 }, (_, i) => ({ content: `early${i}` })));
  const late = await node(r);
  assert.match(late.stderr, /latest=12/);
  const s = await subscribe(late, tk.anon, '', { lastId: 0 });
  await waitForCount(s, 12);
  assert.deepEqual(idsOf(s), ids);
  const [next] = await publishAll(late, tk.pub, [{ content: 'from the late node' }]);
  assert.equal(next, 13);
  await waitForId(s, 13);
  assert.deepEqual(idsOf(s), [...ids, 13], 'then live, without a gap or a repeat');
  s.close();
});

test('Redis down: publishes get 503 + Retry-After, /readyz 503, streams stay open with heartbeats; back up: every acknowledged event arrives once, in order', { skip, timeout: 60000 }, async () => {
  const r = await redis({ aof: true });
  const a = await node(r, { SSE_HEARTBEAT: '1' });
  const b = await node(r, { SSE_HEARTBEAT: '1' });
  const tk = await tokens(a);
  const sb = await subscribe(b, tk.anon, '');
  const acked = [];
  acked.push(...await publishAll(a, tk.pub, Array.from({ length: 5 }, (_, i) => ({ content: `before${i}` }))));
  await waitForId(sb, acked.at(-1));

  await r.stop();
  const pub = keepAlivePublisher(a, tk.pub);
  let refused = 0;
  try {
    for (let i = 0; i < 5; i++) {
      const res = await pub.post({ content: `down${i}` });
      assert.notEqual(res.status, 201, 'never a 201 while Redis is gone');
      if (res.status === 503) refused++;
    }
  } finally { pub.close(); }
  assert.equal(refused, 5);
  await a.waitForLog(/ERROR publish-failed account=e2e-pub reason=store-unreachable error="redis 127\.0\.0\.1:\d+: (cannot connect|lost the link)[^"]*"$/);
  const raw = await request(a, 'POST', '/broadcast', { headers: { Authorization: `Bearer ${tk.pub}` }, body: { content: 'x' } });
  assert.equal(raw.status, 503);
  assert.equal(raw.headers['retry-after'], '1');
  await until(async () => (await request(b, 'GET', '/readyz')).status === 503, 5000, 'readyz 503 on b');
  const rz = await request(a, 'GET', '/readyz');
  assert.equal(rz.status, 503);
  assert.equal(JSON.parse(rz.body).reason, 'redis unreachable');
  assert.equal((await request(a, 'GET', '/healthz')).status, 200, 'liveness is not readiness');
  const pings = sb.frames.filter((f) => f.comments.length).length;
  await sleep(2200);
  assert.equal(sb.endInfo, null, 'the stream stays open');
  assert.ok(sb.frames.filter((f) => f.comments.length).length > pings, 'heartbeats go on');

  await r.start();
  await until(async () => (await request(a, 'GET', '/readyz')).status === 200, 10000, 'readyz 200 on a');
  acked.push(...await publishAll(a, tk.pub, Array.from({ length: 5 }, (_, i) => ({ content: `after${i}` }))));
  await until(async () => (await request(b, 'GET', '/readyz')).status === 200, 10000, 'readyz 200 on b');
  acked.push(...await publishAll(b, tk.pub, [{ content: 'after on b' }]));
  await waitForId(sb, acked.at(-1), 10000);
  assert.deepEqual(idsOf(sb), acked, 'every acknowledged event once, in order, on the stream that stayed open');
  for (let i = 1; i < acked.length; i++) assert.ok(acked[i] > acked[i - 1]);
  sb.close();
});

test('a node killed with SIGKILL: its subscriber resumes on the other node with Last-Event-ID and gets exactly what it missed', { skip, timeout: 30000 }, async () => {
  const r = await redis();
  const a = await node(r);
  const b = await node(r);
  const tk = await tokens(b);
  const sa = await subscribe(a, tk.anon, '');
  const first = await publishAll(b, tk.pub, Array.from({ length: 6 }, (_, i) => ({ content: `one${i}` })));
  await waitForId(sa, first.at(-1));
  const seen = idsOf(sa);
  assert.deepEqual(seen, first);
  await a.stop({ signal: 'SIGKILL' });
  await sa.ended;
  const missed = await publishAll(b, tk.pub, Array.from({ length: 6 }, (_, i) => ({ content: `two${i}` })));
  const again = await subscribe(b, tk.anon, '', { lastId: seen.at(-1) });
  await waitForId(again, missed.at(-1));
  const live = await publishAll(b, tk.pub, [{ content: 'live' }]);
  await waitForId(again, live[0]);
  assert.deepEqual(idsOf(again), [...missed, ...live], 'exactly the missed events, once, in order, then live');
  again.close();
});

test('one node: /readyz is 200 while the SQLite store is open, and with SSE_DB=off', { timeout: 20000 }, async () => {
  for (const env of [{}, { SSE_DB: 'off' }]) {
    const srv = await startServer({ env });
    servers.push(srv);
    const res = await request(srv, 'GET', '/readyz');
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(JSON.parse(res.body), { status: 'ready' });
    await srv.stop();
  }
});

test('a bad SSE_REDIS_URL, or a Redis that cannot be reached, stops start-up with one line naming SSE_REDIS_URL', { skip, timeout: 20000 }, async () => {
  for (const url of ['redis//127.0.0.1:1', 'redis://127.0.0.1:99999']) {
    const srv = await startServer({ env: { SSE_REDIS_URL: url } }).catch((e) => e);
    assert.ok(srv instanceof Error);
    assert.match(srv.message, /ssehub: SSE_REDIS_URL: must be redis:\/\/HOST:PORT\[\/DB\]/);
  }
  const r = await redis();
  const port = r.port;
  await r.stop();
  const srv = await startServer({ env: { SSE_REDIS_URL: `redis://127.0.0.1:${port}` } }).catch((e) => e);
  assert.ok(srv instanceof Error);
  assert.match(srv.message, new RegExp(`ssehub: SSE_REDIS_URL: redis 127\\.0\\.0\\.1:${port}: cannot connect`));
});
