// The event stream itself: response head, exact frame bytes, retry, ids,
// heartbeat, multi-line content, injection attempts, routing by type and
// user, several types, ordering, and the head arriving before any event.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import EventSource from 'eventsource';
import {
  SSE_CT, broadcast, openStream, publish, request, sleep, startServer, summary, tokenFor, tokenParam,
} from './lib/server.mjs';

let srv;
let pub;
let sub;

before(async () => {
  srv = await startServer({ env: { SSE_HEARTBEAT: 60, SSE_RETRY: 2500 } });
  pub = await tokenFor(srv, 'pub');
  sub = await tokenFor(srv, 'sub');
});
after(async () => { if (srv) await srv.stopClean(); });

/** A stream for user `id` with optional type query (string after `?`). */
function userStream(id, query = '') {
  const q = query ? `${query}&` : '';
  return openStream(srv, { path: `/events?${q}token=${encodeURIComponent(tokenParam(sub, id))}` });
}

describe('stream head and framing', () => {
  test('200, event-stream headers, not chunked, starts with retry', async () => {
    const s = await openStream(srv, { bearer: sub });
    const h = s.headInfo;
    assert.equal(h.status, 200);
    assert.match(h.headers['content-type'], SSE_CT);
    assert.equal(h.headers['cache-control'], 'no-cache');
    assert.equal(h.headers['x-accel-buffering'], 'no');
    assert.equal(h.headers['transfer-encoding'], undefined, 'not chunked');
    assert.equal(h.headers['content-length'], undefined, 'no length');
    await sleep(50);
    assert.equal(s.text, 'retry: 2500\n\n', 'first body bytes are exactly the retry block');
    s.close();
  });

  test('exact bytes of events: id, event, data lines; ids match the 201 answers and increase', async () => {
    const s = await openStream(srv, { bearer: sub });
    const i1 = await publish(srv, pub, { content: 'plain' });
    const i2 = await publish(srv, pub, { content: 'typed', type: 'news' });
    const i3 = await publish(srv, pub, { content: 'l1\r\nl2\nl3\rl4', type: 'multi' });
    assert.ok(i1 < i2 && i2 < i3, `ids increase: ${i1} ${i2} ${i3}`);
    await s.waitForData('l1\nl2\nl3\nl4');
    assert.equal(s.text,
      'retry: 2500\n\n'
      + `id: ${i1}\ndata: plain\n\n`
      + `id: ${i2}\nevent: news\ndata: typed\n\n`
      + `id: ${i3}\nevent: multi\ndata: l1\ndata: l2\ndata: l3\ndata: l4\n\n`);
    s.close();
  });

  test('ids are a per-process counter starting at 1', async () => {
    const fresh = await startServer({ env: { SSE_HEARTBEAT: 60 } });
    try {
      const t = await tokenFor(fresh, 'pub');
      const s = await openStream(fresh, { bearer: t });
      const r1 = await broadcast(fresh, t, { content: 'first' });
      const r2 = await broadcast(fresh, t, { content: 'second' });
      assert.equal(r1.status, 201);
      assert.deepEqual(r1.json, { id: 1 });
      assert.deepEqual(r2.json, { id: 2 });
      await s.waitForData('second');
      assert.deepEqual(s.events.map((e) => e.id), ['1', '2']);
      s.close();
    } finally { await fresh.stopClean(); }
  });

  test('SSE_RETRY default is 3000', async () => {
    const fresh = await startServer({ env: { SSE_RETRY: null } });
    try {
      const s = await openStream(fresh, { bearer: await tokenFor(fresh, 'sub') });
      await sleep(50);
      assert.equal(s.text, 'retry: 3000\n\n');
      s.close();
    } finally { await fresh.stopClean(); }
  });

  test('multi-line content: CRLF, LF, CR each split; empty lines kept; EventSource sees LF-joined data', async () => {
    const s = await openStream(srv, { bearer: sub });
    const es = new EventSource(srv.url('/events'), { headers: { Authorization: `Bearer ${sub}` } });
    await new Promise((r, j) => { es.onopen = r; es.onerror = () => j(new Error('es error')); });
    const got = [];
    es.onmessage = (e) => got.push(e.data);
    const contents = ['a\r\n\r\nb', 'x\n\ny', 'p\r\rq', 'mixed\r\n1\n2\r3\r\n', '\nlead', 'single'];
    for (const c of contents) await publish(srv, pub, { content: c });
    await s.waitForData('single');
    const norm = (c) => c.replace(/\r\n|\r/g, '\n');
    assert.deepEqual(s.events.map((e) => e.data.join('\n')), contents.map(norm));
    assert.deepEqual(s.events[0].data, ['a', '', 'b']);
    assert.deepEqual(s.events[3].data, ['mixed', '1', '2', '3', '']);
    // no raw CR anywhere in the stream, every line starts with a known field
    assert.ok(!s.text.includes('\r'), 'no CR written');
    for (const line of s.text.split('\n')) assert.match(line, /^(|retry: \d+|id: \d+|event: .*|data:.*)$/, `line ${JSON.stringify(line)}`);
    await until(() => got.length === contents.length, 2000);
    es.close();
    assert.deepEqual(got, contents.map(norm));
    s.close();
  });

  test('injection attempts: 400 and nothing written to any stream', async () => {
    const all = await openStream(srv, { bearer: sub });
    const victim = await userStream('victim', 'type=t');
    const attempts = [
      { content: 'x', type: 't\nevent: evil' },
      { content: 'x', type: 't\r\ndata: injected' },
      { content: 'x', type: 't\rid: 999' },
      { content: 'x', type: '\n' },
      { content: 'x', user: 'victim\ndata: injected' },
      { content: 'x', user: 'victim\r' },
      { content: 'x', user: '\rvictim' },
      { content: 'x', user: 'victim\r\n', type: 't' },
    ];
    for (const a of attempts) {
      const r = await broadcast(srv, pub, a);
      assert.equal(r.status, 400, `${JSON.stringify(a)} -> ${r.status} ${r.body}`);
      assert.equal(typeof r.json?.error, 'string');
    }
    const m = await publish(srv, pub, { content: 'marker' });
    await all.waitForData('marker');
    await victim.waitForData('marker');
    assert.equal(all.text, `retry: 2500\n\nid: ${m}\ndata: marker\n\n`);
    assert.equal(victim.text, `retry: 2500\n\nid: ${m}\ndata: marker\n\n`);
    all.close();
    victim.close();
  });

  test('content with quotes, backslashes, control chars and non-ASCII arrives byte-exact', async () => {
    const s = await openStream(srv, { bearer: sub });
    const c = 'q"uote \\back\\slash \u0001\u001f\t tab é☃😀 漢字 {"json":true} \\u0000';
    const r = await broadcast(srv, pub, { content: c, type: 'ty"pe\\é' });
    assert.equal(r.status, 201);
    assert.ok(Number.isInteger(r.json.id), r.body);
    await s.waitForData(c);
    const e = s.events.find((x) => x.data[0] === c);
    assert.equal(e.event, 'ty"pe\\é');
    assert.ok(s.body.includes(Buffer.from(`event: ty"pe\\é\ndata: ${c}\n\n`, 'utf8')), 'raw UTF-8 bytes');
    s.close();
  });

  test('empty content is still an event', async () => {
    const s = await openStream(srv, { bearer: sub });
    const id = await publish(srv, pub, { content: '', type: 'empty' });
    await s.waitFor((x) => x.events.some((e) => e.id === String(id)) || x.frames.some((f) => f.id === String(id)), 2000, 'empty event');
    const f = s.frames.find((x) => x.id === String(id));
    assert.equal(f.event, 'empty');
    assert.deepEqual(f.data, [''], 'one empty data line so EventSource dispatches it');
    s.close();
  });
});

describe('heartbeat and head timing', () => {
  test('`: ping` comment every SSE_HEARTBEAT seconds', async () => {
    const hb = await startServer({ env: { SSE_HEARTBEAT: 1 } });
    try {
      const s = await openStream(hb, { bearer: await tokenFor(hb, 'sub') });
      const t0 = Date.now();
      await s.waitFor((x) => (x.text.match(/: ping\n\n/g) || []).length >= 2, 3500, 'two pings');
      assert.ok(Date.now() - t0 >= 900, 'pings are not sent back to back');
      assert.match(s.text, /^retry: 3000\n\n(: ping\n\n)+$/);
      s.close();
    } finally { await hb.stopClean(); }
  });

  test('response head and retry arrive at once, before any event or ping', async () => {
    const t0 = Date.now();
    const s = await openStream(srv, { bearer: sub, timeout: 1000 });
    assert.ok(Date.now() - t0 < 1000, 'head within 1 s with no event published');
    assert.equal(s.events.length, 0);
    s.close();
  });

  test('EventSource fires open before the first message', async () => {
    const order = [];
    const es = new EventSource(srv.url('/events'), { headers: { Authorization: `Bearer ${sub}` } });
    es.onopen = () => order.push('open');
    es.onmessage = (e) => order.push(`message:${e.data}`);
    await until(() => order.includes('open'), 2000);
    await publish(srv, pub, { content: 'after-open' });
    await until(() => order.length >= 2, 2000);
    es.close();
    assert.deepEqual(order, ['open', 'message:after-open']);
  });
});

describe('routing', () => {
  test('by type, by user, both; untyped to everyone', async () => {
    const A = await userStream('alice', 'type=x');
    const B = await userStream('bob');
    const C = await userStream('carol', 'type=y');
    const D = await openStream(srv, { path: '/events?type=x,y', bearer: sub });
    const E = await userStream('alice', 'type=y');
    const F = await openStream(srv, { path: '/events?type=x&type=y', bearer: sub });
    const G = await openStream(srv, { path: '/events?type=z', bearer: sub });
    const plan = [
      [{ content: 'all' }, 'ABCDEFG'],
      [{ content: 'x-only', type: 'x' }, 'ABDF'],
      [{ content: 'y-only', type: 'y' }, 'BCDEF'],
      [{ content: 'to-alice' }, 'AE', 'alice'],
      [{ content: 'to-alice-z', type: 'z' }, 'AE', 'alice'],
      [{ content: 'to-bob-x', type: 'x' }, 'B', 'bob'],
      [{ content: 'to-carol-x', type: 'x' }, 'C', 'carol'],
      [{ content: 'to-nobody', type: 'x' }, '', 'nobody'],
      [{ content: 'w-only', type: 'w' }, 'B'],
      [{ content: 'end' }, 'ABCDEFG'],
    ];
    const streams = { A, B, C, D, E, F, G };
    const expected = Object.fromEntries(Object.keys(streams).map((k) => [k, []]));
    for (const [p, who, user] of plan) {
      const payload = user ? { ...p, user } : p;
      await publish(srv, pub, payload);
      for (const k of who) expected[k].push(p.type ? { event: p.type, data: p.content } : { event: undefined, data: p.content });
    }
    for (const [k, s] of Object.entries(streams)) {
      await s.waitForData('end');
      assert.deepEqual(summary(s), expected[k], `stream ${k}`);
      s.close();
    }
  });

  test('several types: type=a&type=b and type=a,b', async () => {
    const s1 = await openStream(srv, { path: '/events?type=a&type=b', bearer: sub });
    const s2 = await openStream(srv, { path: '/events?type=a,b', bearer: sub });
    const s3 = await openStream(srv, { path: `/events?type=a%2Cb`, bearer: sub });
    for (const t of ['a', 'b', 'c', 'ab', 'a,b']) await publish(srv, pub, { content: `ev-${t}`, type: t });
    await publish(srv, pub, { content: 'fin' });
    for (const s of [s1, s2, s3]) {
      await s.waitForData('fin');
      assert.deepEqual(summary(s), [
        { event: 'a', data: 'ev-a' },
        { event: 'b', data: 'ev-b' },
        { event: undefined, data: 'fin' },
      ], s === s3 ? 'type=a%2Cb' : s === s1 ? 'type=a&type=b' : 'type=a,b');
      s.close();
    }
  });

  test('ids are strictly increasing on every stream, and every subscriber sees publish order', async () => {
    const ss = [];
    for (let i = 0; i < 5; i++) ss.push(await openStream(srv, { bearer: sub }));
    const ids = [];
    // concurrent publishers: order on every stream must match the id order
    await Promise.all([0, 1, 2, 3].map(async (p) => {
      for (let i = 0; i < 25; i++) ids.push(await publish(srv, pub, { content: `p${p}-${i}` }));
    }));
    ids.sort((a, b) => a - b);
    for (const s of ss) {
      await s.waitFor((x) => x.events.length >= 100, 3000, '100 events');
      const got = s.events.map((e) => Number(e.id));
      assert.deepEqual(got, ids, 'all events, in id order');
      for (let p = 0; p < 4; p++) {
        const mine = s.events.map((e) => e.data[0]).filter((d) => d.startsWith(`p${p}-`));
        assert.deepEqual(mine, Array.from({ length: 25 }, (_, i) => `p${p}-${i}`), `publisher ${p} order`);
      }
      s.close();
    }
  });

  test('Last-Event-ID: a reconnecting client gets what it missed (its filter applied), then live events', async () => {
    const first = await publish(srv, pub, { content: 'h-before' });
    const missed = [
      [{ content: 'h-untyped' }, true],
      [{ content: 'h-a', type: 'a' }, true],
      [{ content: 'h-b', type: 'b' }, false],
      [{ content: 'h-other-user', user: 'someone-else' }, false],
      [{ content: 'h-multi\nline', type: 'a' }, true],
    ];
    const want = [];
    for (const [p, yes] of missed) {
      const id = await publish(srv, pub, p);
      if (yes) want.push({ id: String(id), event: p.type, data: p.content });
    }
    const s = await openStream(srv, { path: '/events?type=a', bearer: sub, headers: { 'Last-Event-ID': String(first) } });
    const live = await publish(srv, pub, { content: 'h-live', type: 'a' });
    want.push({ id: String(live), event: 'a', data: 'h-live' });
    await s.waitForData('h-live');
    assert.deepEqual(s.events.map((e) => ({ id: e.id, event: e.event, data: e.data.join('\n') })), want);
    s.close();
  });

  test('401 on /events keeps the server healthy', async () => {
    const r = await request(srv, 'GET', '/events?type=x');
    assert.equal(r.status, 401);
    assert.equal((await request(srv, 'GET', '/healthz')).status, 200);
  });
});

async function until(fn, timeout) {
  const end = Date.now() + timeout;
  while (!fn()) {
    if (Date.now() > end) throw new Error('timeout');
    await sleep(10);
  }
}
