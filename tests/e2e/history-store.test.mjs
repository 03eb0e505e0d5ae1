// The history store's edges (issue 3): SSE_DB=off, a full database
// (SSE_DB_MAX_BYTES), and start-up refusals for a corrupt or unwritable
// SSE_DB.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  startServer, tempDir, sleep, request, runBinary, login,
} from './lib/server.mjs';
import {
  tokens, subscribe, evs, idsOf, waitForId, keepAlivePublisher, publishAll, notifications,
  allNotifications, firstNonIncreasing, integrityCheck, NO_SQLITE3,
} from './lib/history.mjs';

const servers = [];
after(async () => { for (const s of servers) await s.stop().catch(() => {}); });

test('the default SSE_DB is ./data/ssehub.db, created on first run', async () => {
  const srv = await startServer();
  servers.push(srv);
  const tk = await tokens(srv);
  await publishAll(srv, tk.pub, [{ content: 'x' }]);
  assert.ok(fs.statSync(path.join(srv.cwd, 'data', 'ssehub.db')).isFile());
  assert.equal((await srv.stop()).code, 0);
});

test('SSE_DB=off: /notifications is 503, Last-Event-ID is ignored, publishing still works', async () => {
  const srv = await startServer({ env: { SSE_DB: 'off' } });
  servers.push(srv);
  const tk = await tokens(srv);
  const jwt = await tk.sub('u1');
  const ids = await publishAll(srv, tk.pub, [{ content: 'a' }, { content: 'b', user: 'u1' }, { content: 'c', type: 't' }]);
  assert.equal(ids.length, 3);
  assert.ok(ids.every((id) => Number.isInteger(id)) && firstNonIncreasing(ids) === -1, `ids ${ids}`);

  for (const q of ['', 'limit=10', 'type=t', 'before=2']) {
    const r = await notifications(srv, jwt, 'u1', q);
    assert.equal(r.status, 503, `/notifications?${q} with SSE_DB=off -> ${r.status} ${r.body}`);
    assert.equal(typeof r.json?.error, 'string');
  }
  // Auth still comes first.
  assert.equal((await request(srv, 'GET', '/notifications')).status, 401);

  for (const opts of [{ lastId: 0 }, { lastId: 1 }, { lastId: 999 }, { query: 'lastEventId=0' }]) {
    const s = await subscribe(srv, jwt, 'u1', opts);
    await sleep(150);
    const [live] = await publishAll(srv, tk.pub, [{ content: `live ${JSON.stringify(opts)}` }]);
    await s.waitForData(`live ${JSON.stringify(opts)}`);
    await sleep(50);
    assert.deepEqual(evs(s), [{ id: live, event: undefined, data: `live ${JSON.stringify(opts)}` }], `SSE_DB=off ${JSON.stringify(opts)}: no replay, no reset`);
    s.close();
  }
  assert.ok(!fs.existsSync(path.join(srv.cwd, 'data', 'ssehub.db')), 'SSE_DB=off writes no database file');
  assert.equal((await srv.stop()).code, 0);
});

test('full database (SSE_DB_MAX_BYTES): 503 once full, nothing acknowledged is lost, the server keeps serving', { timeout: 30000 }, async (t) => {
  const srv = await startServer({ env: { SSE_DB_MAX_BYTES: '65536' } });
  servers.push(srv);
  const tk = await tokens(srv);
  const jwt = await tk.sub('u1');
  const watcher = await subscribe(srv, jwt, 'u1');

  const pub = keepAlivePublisher(srv, tk.pub);
  const acked = new Map();
  let full = null;
  for (let i = 0; i < 200 && !full; i++) {
    const content = `big-${i}-` + crypto.randomBytes(3000).toString('hex'); // ~6 KB, incompressible
    const r = await pub.post({ content, ...(i % 2 ? { user: 'u1' } : {}) });
    if (r.status === 201) acked.set(r.json.id, content);
    else if (r.status === 503) full = r;
    else assert.fail(`publish ${i}: unexpected ${r.status} ${r.body}`);
  }
  pub.close();
  assert.ok(full, `no 503 after ${acked.size} publishes of ~6 KB with SSE_DB_MAX_BYTES=65536`);
  assert.equal(typeof full.json?.error, 'string', `503 body: ${full.body}`);
  // The log says why, in the store's own words.
  await srv.waitForLog(/ERROR publish-failed account=e2e-pub reason=store-full error="database or disk is full"$/);
  assert.ok(acked.size >= 1, 'some events fit before the cap');
  const ids = [...acked.keys()];

  // The refused event was not delivered: the live watcher got exactly the acknowledged ones.
  await waitForId(watcher, ids.at(-1));
  await sleep(200);
  assert.deepEqual(idsOf(watcher), ids, 'live delivery = acknowledged events only');
  watcher.close();

  // Every acknowledged event is replayable with its exact content, and listed.
  const s = await subscribe(srv, jwt, 'u1', { lastId: 0 });
  await waitForId(s, ids.at(-1));
  await sleep(100);
  assert.deepEqual(evs(s).map((e) => [e.id, e.data]), ids.map((id) => [id, acked.get(id)]), 'replay after the disk filled');
  s.close();
  const { items } = await allNotifications(srv, jwt, 'u1', { limit: 3 });
  assert.deepEqual(items.map((i) => [i.id, i.content]), ids.map((id) => [id, acked.get(id)]).reverse());

  // Still serving: health, login, streams; small publishes either fit or get 503, never hang.
  assert.equal((await request(srv, 'GET', '/healthz')).status, 200);
  assert.equal((await login(srv, 'sub', 'u9')).status, 200);
  const again = await subscribe(srv, jwt, 'u1', { lastId: ids.at(-1) });
  for (let i = 0; i < 5; i++) {
    const r = await request(srv, 'POST', '/broadcast', { headers: { Authorization: `Bearer ${tk.pub}` }, body: { content: `small ${i}` } });
    assert.ok([201, 503].includes(r.status), `small publish after full: ${r.status} ${r.body}`);
    if (r.status === 201) { await again.waitForData(`small ${i}`); acked.set(r.json.id, `small ${i}`); }
  }
  again.close();
  const stopped = await srv.stop();
  assert.equal(stopped.code, 0, `exit after running full: ${JSON.stringify(stopped)}`);
  const chk = integrityCheck(path.join(srv.cwd, 'data', 'ssehub.db'));
  if (chk === null) t.diagnostic(`SKIPPED ASSERTION: ${NO_SQLITE3}`);
  else assert.deepEqual(chk, { code: 0, out: 'ok', err: '' });
});

/** Run the binary expecting a start-up refusal; returns trimmed stderr lines. */
function refuse(env, cwd) {
  const r = runBinary([], { env: { SSE_HOST: '127.0.0.1', SSE_PORT: '0', SSE_APP_KEY: 'k-0123456789abcdef0123456789abcdef', ...env }, defaults: true, cwd });
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  return { ...r, lines };
}

test('start-up: SSE_DB holding random bytes -> exit 1 with one line naming SSE_DB', () => {
  const cwd = tempDir();
  fs.writeFileSync(path.join(cwd, 'garbage.db'), crypto.randomBytes(65536));
  for (const db of ['garbage.db', path.join(cwd, 'garbage.db')]) {
    const r = refuse({ SSE_DB: db }, cwd);
    assert.equal(r.code, 1, `exit ${r.code} signal ${r.signal}; stderr:\n${r.stderr}`);
    assert.equal(r.lines.length, 1, `one stderr line expected, got:\n${r.stderr}`);
    assert.match(r.lines[0], /SSE_DB/);
  }
});

test('start-up: a database whose pages were overwritten -> exit 1 with one line naming SSE_DB', async () => {
  const cwd = tempDir();
  const srv = await startServer({ cwd });
  servers.push(srv);
  const tk = await tokens(srv);
  await publishAll(srv, tk.pub, Array.from({ length: 300 }, (_, i) => ({ content: `row ${i} ${'y'.repeat(400)}` })));
  assert.equal((await srv.stop()).code, 0);
  const file = path.join(cwd, 'data', 'ssehub.db');
  for (const ext of ['-wal', '-shm']) fs.rmSync(file + ext, { force: true }); // checkpointed on a clean stop
  const size = fs.statSync(file).size;
  assert.ok(size > 8 * 4096, `database size ${size}`);
  // Keep page 1 (the header), scramble the rest.
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, crypto.randomBytes(size - 4096), 0, size - 4096, 4096);
  fs.closeSync(fd);
  const r = refuse({ SSE_DB: file }, cwd);
  assert.equal(r.code, 1, `exit ${r.code} signal ${r.signal}; stderr:\n${r.stderr}`);
  assert.equal(r.lines.length, 1, `one stderr line expected, got:\n${r.stderr}`);
  assert.match(r.lines[0], /SSE_DB/);
});

test('start-up: SSE_DB under a regular file, or naming a directory -> exit 1 with one line', () => {
  const cwd = tempDir();
  fs.writeFileSync(path.join(cwd, 'plain'), 'not a directory');
  fs.mkdirSync(path.join(cwd, 'adir'));
  for (const db of [path.join(cwd, 'plain', 'x.db'), path.join(cwd, 'plain', 'sub', 'x.db'), path.join(cwd, 'adir')]) {
    const r = refuse({ SSE_DB: db }, cwd);
    assert.equal(r.code, 1, `SSE_DB=${db}: exit ${r.code} signal ${r.signal}; stderr:\n${r.stderr}`);
    assert.equal(r.lines.length, 1, `SSE_DB=${db}: one stderr line expected, got:\n${r.stderr}`);
    assert.match(r.lines[0], /SSE_DB/);
  }
});
