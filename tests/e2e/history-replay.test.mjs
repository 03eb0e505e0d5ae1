// Last-Event-ID replay (issue 3, docs/api.md "Replay"): the race between a
// replay and live publishes, Last-Event-ID: 0, ids newer than any given
// (reset), the lastEventId query parameter, and bad values.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sleep, request, openStream } from './lib/server.mjs';
import {
  tokens, subscribe, evs, idsOf, waitForId, keepAlivePublisher, publishAll, firstNonIncreasing,
} from './lib/history.mjs';

const servers = [];
after(async () => { for (const s of servers) await s.stop().catch(() => {}); });

/** Does a stream of (user, types) get event ev, by the live delivery rules of docs/api.md? */
function accepts({ user, types }, ev) {
  if (ev.user) return ev.user === user;
  if (ev.type) return types.length === 0 || types.includes(ev.type);
  return true;
}

/** The payload mix the race publishers cycle through. */
const MIX = [
  {}, { type: 'a' }, { type: 'b' }, { user: 'u1' }, { user: 'u1', type: 'b' }, { user: 'u2' }, { user: 'u2', type: 'a' },
];

test('replay race: events published during a long replay arrive once each, in order, with no gap', { timeout: 60000 }, async () => {
  const srv = await startServer();
  servers.push(srv);
  const tk = await tokens(srv);
  const all = new Map(); // id -> payload

  // Store plenty of history first, from 4 concurrent publishers.
  const PRE = 4000;
  await Promise.all(Array.from({ length: 4 }, async (_, p) => {
    const payloads = Array.from({ length: PRE / 4 }, (_, i) => ({ ...MIX[(p + i) % MIX.length], content: `pre-${p}-${i}` }));
    const ids = await publishAll(srv, tk.pub, payloads);
    ids.forEach((id, i) => all.set(id, payloads[i]));
  }));
  assert.equal(all.size, PRE);
  const preMax = Math.max(...all.keys());
  assert.equal(preMax, PRE, 'ids are dense 1..N for a fresh database');

  // Publishers keep going while three clients connect with a Last-Event-ID deep in the history.
  let stop = false;
  const pubErrors = [];
  const racers = Array.from({ length: 3 }, async (_, p) => {
    const pub = keepAlivePublisher(srv, tk.pub);
    try {
      for (let i = 0; !stop && i < 20000; i++) {
        const payload = { ...MIX[(i * 3 + p) % MIX.length], content: `race-${p}-${i}` };
        const r = await pub.post(payload);
        if (r.status !== 201) { pubErrors.push(`${r.status} ${r.body}`); return; }
        all.set(r.json.id, payload);
      }
    } finally { pub.close(); }
  });
  await sleep(50);
  const subs = [
    { user: 'u1', types: [], lastId: 100 },
    { user: 'u1', types: ['a'], lastId: 1000 },
    { user: 'u3', types: ['b'], lastId: 2500 },
  ];
  const streams = await Promise.all(subs.map(async (s) => {
    const q = s.types.length ? `type=${s.types.join(',')}` : '';
    return subscribe(srv, await tk.sub(s.user), s.user, { lastId: s.lastId, query: q });
  }));
  await sleep(800);
  stop = true;
  await Promise.all(racers);
  assert.deepEqual(pubErrors, []);
  const maxId = Math.max(...all.keys());
  assert.ok(maxId > preMax + 50, `publishers published during the replay (max id ${maxId})`);

  for (let k = 0; k < subs.length; k++) {
    const s = subs[k];
    const want = [...all.keys()].filter((id) => id > s.lastId && accepts(s, all.get(id))).sort((a, b) => a - b);
    await waitForId(streams[k], want.at(-1), 15000);
    await sleep(150); // nothing may follow
    const got = idsOf(streams[k]);
    const bad = firstNonIncreasing(got);
    assert.equal(bad, -1, `${JSON.stringify(s)}: ids not strictly increasing at index ${bad}: ${got.slice(Math.max(0, bad - 3), bad + 3)}`);
    const gotSet = new Set(got);
    const missing = want.filter((id) => !gotSet.has(id));
    const wantSet = new Set(want);
    const extra = got.filter((id) => !wantSet.has(id));
    assert.deepEqual({ missing: missing.slice(0, 20), extra: extra.slice(0, 20) }, { missing: [], extra: [] },
      `${JSON.stringify(s)}: ${missing.length} missing, ${extra.length} extra of ${want.length}`);
    assert.deepEqual(got, want);
    // Contents match what was published under that id.
    for (const e of evs(streams[k])) {
      const p = all.get(e.id);
      assert.equal(e.data, p.content, `content of ${e.id}`);
      assert.equal(e.event, p.type, `type of ${e.id}`);
    }
    assert.ok(!streams[k].frames.some((f) => f.event === 'reset'), 'no reset for an id inside the history');
    streams[k].close();
  }
});

let srv;
let tk;
let stored; // [{id, payload}] of the five stored events
before(async () => {
  srv = await startServer();
  servers.push(srv);
  tk = await tokens(srv);
  const payloads = [
    { content: 'h1' }, { content: 'h2', type: 'a' }, { content: 'h3', user: 'u1' }, { content: 'h4', type: 'b' }, { content: 'h5' },
  ];
  const ids = await publishAll(srv, tk.pub, payloads);
  assert.deepEqual(ids, [1, 2, 3, 4, 5]);
  stored = ids.map((id, i) => ({ id, payload: payloads[i] }));
});

/** Open a stream, publish one live event, and return the stream once that event arrived. */
async function withLive(opts, user = 'u1') {
  const s = await subscribe(srv, await tk.sub(user), user, opts);
  await sleep(150); // a replay (or reset) would come first
  const content = `live-${Math.random().toString(36).slice(2)}`;
  const [id] = await publishAll(srv, tk.pub, [{ content }]);
  await s.waitForData(content, 3000);
  await sleep(50);
  s.close();
  return { s, id, content };
}

test('Last-Event-ID: 0 replays all retained history the filters accept, then live', async () => {
  const { s, id, content } = await withLive({ lastId: 0 });
  assert.deepEqual(evs(s), [
    { id: 1, event: undefined, data: 'h1' }, { id: 2, event: 'a', data: 'h2' }, { id: 3, event: undefined, data: 'h3' },
    { id: 4, event: 'b', data: 'h4' }, { id: 5, event: undefined, data: 'h5' }, { id, event: undefined, data: content },
  ]);
  // u2 with type=b: no h3 (u1's), no h2 (type a); the untyped live event above is history now.
  const r = await withLive({ lastId: 0, query: 'type=b' }, 'u2');
  assert.deepEqual(idsOf(r.s), [1, 4, 5, id, r.id]);
});

test('Last-Event-ID equal to the newest id: nothing replayed, no reset, then live', async () => {
  const latest = Number((await withLive({})).id); // one more live event: the newest id now
  const { s, id } = await withLive({ lastId: latest });
  assert.deepEqual(idsOf(s), [id]);
  assert.equal(s.frames.filter((f) => f.event === 'reset').length, 0);
});

test('Last-Event-ID larger than the newest id: one reset frame {"oldest","latest"}, then live', async () => {
  const latest = (await withLive({})).id;
  const { s, id, content } = await withLive({ lastId: latest + 1000 });
  const e = evs(s);
  assert.equal(e.length, 2, `expected reset + live, got ${JSON.stringify(e)}`);
  assert.equal(e[0].event, 'reset');
  assert.equal(e[0].id, latest, 'the reset frame carries the newest id');
  assert.deepEqual(JSON.parse(e[0].data), { oldest: 1, latest });
  assert.deepEqual(e[1], { id, event: undefined, data: content });
  // The same through the query parameter.
  const q = await withLive({ query: `lastEventId=${id + 5}` });
  assert.equal(evs(q.s)[0].event, 'reset');
  assert.deepEqual(JSON.parse(evs(q.s)[0].data), { oldest: 1, latest: id });
  assert.equal(evs(q.s).length, 2);
});

test('lastEventId query parameter works like the header', async () => {
  const { s, id } = await withLive({ query: 'lastEventId=3' });
  const ids = idsOf(s);
  assert.deepEqual(ids.slice(0, 2), [4, 5], 'replay after 3');
  assert.equal(ids.at(-1), id);
  assert.ok(ids.every((x, i) => i === 0 || x > ids[i - 1]));
  const g = await withLive({ query: 'lastEventId=abc' });
  assert.deepEqual(idsOf(g.s), [g.id], 'a non-decimal lastEventId is ignored');
});

test('the Last-Event-ID header wins over the lastEventId query parameter (a browser reconnecting to the same URL)', async () => {
  // EventSource reconnects to the URL it was given (which may carry
  // lastEventId=N) and adds the header with the last id it saw; replaying
  // from the stale query value would send duplicates.
  const { s, id } = await withLive({ lastId: 4, query: 'lastEventId=1' });
  const ids = idsOf(s);
  assert.equal(ids[0], 5, `replay must start after the header's id 4, got ids ${ids}`);
  assert.equal(ids.at(-1), id);
});

for (const bad of ['abc', '3abc', '0x2', '+2', '2.0', '1e1', '', ' ', '1 2', '05x']) {
  test(`bad Last-Event-ID ${JSON.stringify(bad)}: live stream only, no reset, no error`, async () => {
    const { s, id, content } = await withLive({ lastId: bad });
    assert.equal(s.status, 200);
    assert.deepEqual(evs(s), [{ id, event: undefined, data: content }]);
  });
}

for (const never of ['-1', '-0', '-18446744073709551616']) {
  test(`negative Last-Event-ID ${JSON.stringify(never)}: an id never given, so one reset, then live`, async () => {
    const { s, id, content } = await withLive({ lastId: never });
    assert.equal(s.status, 200);
    const e = evs(s);
    assert.equal(e.length, 2, `got ${JSON.stringify(e)}`);
    assert.equal(e[0].event, 'reset');
    assert.deepEqual(e[1], { id, event: undefined, data: content });
  });
}

for (const huge of ['123456789012345678901234567890', '18446744073709551616', '99999999999999999999999999999999999999999999']) {
  test(`huge Last-Event-ID ${huge.length} digits: no replay, no hang, live stream`, async () => {
    const { s, id, content } = await withLive({ lastId: huge });
    assert.equal(s.status, 200);
    const e = evs(s);
    // Either ignored (not a representable id) or a reset; never stored events.
    const nonReset = e.filter((x) => x.event !== 'reset');
    assert.deepEqual(nonReset, [{ id, event: undefined, data: content }], `got ${JSON.stringify(e)}`);
    assert.ok(e.length - nonReset.length <= 1, 'at most one reset frame');
  });
}

test('bad lastEventId query values are ignored too; the stream still works', async () => {
  for (const v of ['-5', '%20', 'abc', '123456789012345678901234567890']) {
    const { s, id } = await withLive({ query: `lastEventId=${v}` });
    const got = idsOf(s).filter((x, i) => s.events[i].event !== 'reset');
    assert.deepEqual(got, [id], `lastEventId=${v}`);
  }
  assert.equal((await request(srv, 'GET', '/healthz')).status, 200);
});

test('a Bearer-token stream (empty user id) replays only broadcasts', async () => {
  const s = await openStream(srv, { path: '/events', bearer: tk.anon, headers: { 'Last-Event-ID': '0' } });
  await waitForId(s, 5);
  await sleep(100);
  const ids = idsOf(s).filter((x) => x <= 5);
  assert.deepEqual(ids, [1, 2, 4, 5], 'h3 is addressed to u1');
  s.close();
  assert.equal(stored.length, 5);
});
