// Retention and reset (issue 3): SSE_HISTORY_MAX_EVENTS and
// SSE_HISTORY_MAX_AGE trim the history in the background (every 10 s here);
// a Last-Event-ID older than the retained history gets one `event: reset`
// frame with {"oldest","latest"} and then the live stream; ids keep growing
// even when every stored row was trimmed, across a restart.
// The two scenarios run concurrently, as each waits for a trim pass.

import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, tempDir, sleep } from './lib/server.mjs';
import {
  tokens, subscribe, evs, publishAll, notifications, eventually,
} from './lib/history.mjs';

const servers = [];
after(async () => { for (const s of servers) await s.stop().catch(() => {}); });

const TRIM_WAIT = 20000; // the trim pass runs every 10 s

/** Open a stream with lastId, wait briefly, return its events (closed). */
async function peek(srv, jwt, user, opts, ms = 250) {
  const s = await subscribe(srv, jwt, user, opts);
  await sleep(ms);
  s.close();
  return evs(s);
}

describe('retention', { concurrency: true }, () => {
  test('SSE_HISTORY_MAX_EVENTS: an id older than the retained history gets a reset, then live', { timeout: 40000 }, async () => {
    const cwd = tempDir();
    const env = { SSE_HISTORY_MAX_EVENTS: '5' };
    let srv = await startServer({ cwd, env });
    servers.push(srv);
    let tk = await tokens(srv);
    const jwt = await tk.sub('u1');
    const payloads = Array.from({ length: 20 }, (_, i) => ({ content: `m${i + 1}`, ...(i % 4 === 1 ? { user: 'u2' } : {}), ...(i % 4 === 2 ? { type: 't' } : {}) }));
    const ids = await publishAll(srv, tk.pub, payloads);
    assert.deepEqual(ids, Array.from({ length: 20 }, (_, i) => i + 1));

    // Before the trim pass every event is still there (u2's excluded for u1).
    const visible = (from) => ids.filter((id) => id > from && payloads[id - 1].user !== 'u2');
    // Wait for the trim: only ids 16..20 remain.
    await eventually(async () => {
      const r = await notifications(srv, jwt, 'u1', 'limit=500');
      return r.status === 200 && r.json.items.every((i) => i.id >= 16);
    }, TRIM_WAIT, 'the history to be trimmed to the newest 5 events');
    const r = await notifications(srv, jwt, 'u1', 'limit=500');
    assert.deepEqual(r.json.items.map((i) => i.id), visible(15).reverse());

    const reset = { id: 20, event: 'reset', data: JSON.stringify({ oldest: 16, latest: 20 }) };
    const resetOf = (e) => (e.event === 'reset' ? { ...e, data: JSON.stringify(JSON.parse(e.data)) } : e);
    for (const from of [1, 3, 14]) {
      const e = await peek(srv, jwt, 'u1', { lastId: from });
      assert.deepEqual(e.map(resetOf), [reset], `Last-Event-ID ${from}`);
    }
    const q = await peek(srv, jwt, 'u1', { query: 'lastEventId=3' });
    assert.deepEqual(q.map(resetOf), [reset], 'lastEventId=3');
    assert.deepEqual((await peek(srv, jwt, 'u1', { lastId: 21 })).map(resetOf), [reset], 'Last-Event-ID 21 (never issued)');
    // 15 is just before the oldest retained: full replay, no reset.
    assert.deepEqual((await peek(srv, jwt, 'u1', { lastId: 15 })).map((e) => e.id), visible(15));
    assert.deepEqual((await peek(srv, jwt, 'u1', { lastId: 0 })).map((e) => e.id), visible(15), 'Last-Event-ID 0: all retained');

    // After the reset comes the live stream.
    const s = await subscribe(srv, jwt, 'u1', { lastId: 2 });
    await s.waitFor((x) => x.events.length >= 1, 3000, 'reset frame');
    const [live] = await publishAll(srv, tk.pub, [{ content: 'live after reset' }]);
    await s.waitForData('live after reset');
    await sleep(50);
    assert.deepEqual(evs(s).map(resetOf), [reset, { id: live, event: undefined, data: 'live after reset' }]);
    s.close();

    // A restart keeps the bounds: still a reset for an old id, new ids above all.
    assert.equal((await srv.stop()).code, 0);
    srv = await startServer({ cwd, env });
    servers.push(srv);
    tk = await tokens(srv);
    const e = await peek(srv, jwt, 'u1', { lastId: 3 });
    assert.equal(e.length, 1);
    assert.equal(e[0].event, 'reset');
    const d = JSON.parse(e[0].data);
    assert.equal(d.latest, live);
    assert.ok(d.oldest >= 16 && d.oldest <= live, `oldest ${d.oldest}`);
    const [next] = await publishAll(srv, tk.pub, [{ content: 'after restart' }]);
    assert.ok(next > live, `id ${next} after restart must exceed ${live}`);
  });

  test('SSE_HISTORY_MAX_AGE: once everything expired, ids still grow across a restart and known ids replay nothing', { timeout: 40000 }, async () => {
    const cwd = tempDir();
    const env = { SSE_HISTORY_MAX_AGE: '1s' };
    let srv = await startServer({ cwd, env });
    servers.push(srv);
    let tk = await tokens(srv);
    const jwt = await tk.sub('u1');
    const ids = await publishAll(srv, tk.pub, Array.from({ length: 5 }, (_, i) => ({ content: `old${i}` })));
    assert.deepEqual(ids, [1, 2, 3, 4, 5]);
    await eventually(async () => {
      const r = await notifications(srv, jwt, 'u1');
      return r.status === 200 && r.json.items.length === 0;
    }, TRIM_WAIT, 'every event to expire');

    // The newest id a client saw: nothing to replay, no reset.
    assert.deepEqual(await peek(srv, jwt, 'u1', { lastId: 5 }), [], 'Last-Event-ID 5 after expiry');
    assert.deepEqual(await peek(srv, jwt, 'u1', { lastId: 0 }), [], 'Last-Event-ID 0: nothing retained');
    const old = await peek(srv, jwt, 'u1', { lastId: 2 });
    assert.equal(old.length, 1, `Last-Event-ID 2 after expiry: ${JSON.stringify(old)}`);
    assert.equal(old[0].event, 'reset');
    assert.equal(JSON.parse(old[0].data).latest, 5);

    assert.equal((await srv.stop()).code, 0);
    srv = await startServer({ cwd, env });
    servers.push(srv);
    tk = await tokens(srv);
    const [next] = await publishAll(srv, tk.pub, [{ content: 'new' }]);
    assert.ok(next > 5, `the id after an emptied history and a restart (${next}) must exceed 5: never a reused one`);
  });
});
