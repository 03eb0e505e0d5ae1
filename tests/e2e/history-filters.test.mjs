// Filters on history (issue 3): replay and /notifications select exactly what
// live delivery selects (user-addressed events only to that user, typed
// broadcasts to matching or unfiltered streams, untyped to all); one user
// never reads another's notifications; /notifications paging and its errors.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sleep, request, tokenParam, mintJwt } from './lib/server.mjs';
import {
  tokens, subscribe, evs, waitForId, publishAll, notifications, allNotifications,
} from './lib/history.mjs';

const servers = [];
after(async () => { for (const s of servers) await s.stop().catch(() => {}); });

/** Live delivery rule of docs/api.md. */
function accepts({ user, types }, ev) {
  if (ev.user) return ev.user === user;
  if (ev.type) return types.length === 0 || types.includes(ev.type);
  return true;
}

// Users whose names would collide under a sloppy match (prefix, LIKE wildcards, case).
const EVENTS = [
  { content: 'untyped broadcast' },
  { content: 'typed a', type: 'a' },
  { content: 'typed b', type: 'b' },
  { content: 'typed c', type: 'c' },
  { content: 'u1 untyped', user: 'u1' },
  { content: 'u1 typed b', user: 'u1', type: 'b' },
  { content: 'u2 typed a', user: 'u2', type: 'a' },
  { content: 'u2 untyped', user: 'u2' },
  { content: 'U1 upper', user: 'U1' },
  { content: 'u10 prefix', user: 'u10' },
  { content: 'percent', user: 'u%' },
  { content: 'underscore', user: 'u_' },
  { content: 'quote', user: "o'neil", type: 'a' },
  { content: 'type with comma-free odd chars', type: "it's" },
];

const SUBS = [
  { user: 'u1', types: [] },
  { user: 'u1', types: ['a'] },
  { user: 'u2', types: ['b'] },
  { user: 'u3', types: ['a', 'b'] },
  { user: 'u3', types: [] },
  { user: 'u%', types: [] },
  { user: 'u_', types: ['c'] },
  { user: 'u', types: [] },
  { user: "o'neil", types: ["it's"] },
];

const typeQuery = (types) => types.map((t) => `type=${encodeURIComponent(t)}`).join('&');

let srv;
let tk;
const live = [];
let ids;

before(async () => {
  srv = await startServer();
  servers.push(srv);
  tk = await tokens(srv);
  for (const s of SUBS) live.push(await subscribe(srv, await tk.sub(s.user), s.user, { query: typeQuery(s.types) }));
  ids = await publishAll(srv, tk.pub, EVENTS);
  assert.deepEqual(ids, EVENTS.map((_, i) => i + 1));
});

const want = (s) => EVENTS.map((e, i) => ({ ...e, id: i + 1 })).filter((e) => accepts(s, e))
  .map((e) => ({ id: e.id, event: e.type, data: e.content }));

test('live delivery follows the documented rules (baseline)', async () => {
  for (let k = 0; k < SUBS.length; k++) {
    const w = want(SUBS[k]);
    await waitForId(live[k], w.at(-1).id);
  }
  await sleep(150);
  for (let k = 0; k < SUBS.length; k++) {
    assert.deepEqual(evs(live[k]), want(SUBS[k]), `live ${JSON.stringify(SUBS[k])}`);
    live[k].close();
  }
});

test('replay from Last-Event-ID: 0 and from a middle id selects exactly what live delivery selects', async () => {
  for (const s of SUBS) {
    for (const from of [0, 4, 9]) {
      const st = await subscribe(srv, await tk.sub(s.user), s.user, { lastId: from, query: typeQuery(s.types) });
      const w = want(s).filter((e) => e.id > from);
      if (w.length) await waitForId(st, w.at(-1).id);
      await sleep(80);
      assert.deepEqual(evs(st), w, `replay ${JSON.stringify(s)} after ${from}`);
      st.close();
    }
  }
});

test('/notifications lists exactly that, newest first, with exact fields', async () => {
  for (const s of SUBS) {
    const r = await notifications(srv, await tk.sub(s.user), s.user, typeQuery(s.types));
    assert.equal(r.status, 200, r.body);
    assert.match(r.headers['content-type'], /^application\/json/);
    const w = want(s).reverse();
    assert.deepEqual(r.json.items.map((i) => i.id), w.map((e) => e.id), `ids for ${JSON.stringify(s)}`);
    assert.equal(r.json.next, null);
    for (const it of r.json.items) {
      const e = EVENTS[it.id - 1];
      assert.deepEqual(Object.keys(it).sort(), ['content', 'id', 'time', 'type', 'user']);
      assert.equal(it.content, e.content);
      assert.equal(it.type || '', e.type || '', `type of ${it.id}`);
      assert.equal(it.user || '', e.user || '', `user of ${it.id}`);
      assert.match(it.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.ok(Math.abs(Date.parse(it.time) - Date.now()) < 60000, `time ${it.time} is now`);
    }
  }
});

test('type lists are read the same way on /events and /notifications (repeat and comma forms)', async () => {
  const jwt = await tk.sub('u3');
  const a = await notifications(srv, jwt, 'u3', 'type=a&type=c');
  const b = await notifications(srv, jwt, 'u3', 'type=a,c');
  const w = want({ user: 'u3', types: ['a', 'c'] }).map((e) => e.id).reverse();
  assert.deepEqual(a.json.items.map((i) => i.id), w);
  assert.deepEqual(b.json.items.map((i) => i.id), w);
});

test("one user can never read another user's notifications, whatever the query", async () => {
  const others = (user) => EVENTS.map((e, i) => ({ ...e, id: i + 1 })).filter((e) => e.user && e.user !== user).map((e) => e.id);
  for (const user of ['u1', 'u2', 'u3', 'u', 'u%', 'u_', 'U1', '', "o'neil", "' OR 1=1 --"]) {
    const jwt = user ? await tk.sub(user) : tk.anon;
    for (const q of ['', 'type=a', 'type=b', 'limit=500', 'before=1000', "type=%27%20OR%20%27%27%3D%27", 'type=%25']) {
      const r = await request(srv, 'GET', `/notifications?token=${encodeURIComponent(tokenParam(jwt, user))}${q ? `&${q}` : ''}`);
      assert.equal(r.status, 200, `${user} ${q}: ${r.body}`);
      const leaked = r.json.items.filter((i) => others(user).includes(i.id));
      assert.deepEqual(leaked, [], `user ${JSON.stringify(user)} with ?${q} saw others' events`);
    }
  }
  // A Bearer token without a user id gets broadcasts only.
  const r = await request(srv, 'GET', '/notifications', { headers: { Authorization: `Bearer ${tk.anon}` } });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.items.map((i) => i.id), want({ user: '', types: [] }).map((e) => e.id).reverse());
});

test("a token issued for one user id cannot claim another's history", async () => {
  // /login with an id signs it into the token; a wrapper naming another id is refused.
  const jwt = await tk.sub('u1');
  const r = await request(srv, 'GET', `/notifications?token=${encodeURIComponent(tokenParam(jwt, 'u2'))}`);
  assert.equal(r.status, 401, `u1's token claiming u2 on /notifications -> ${r.status} ${r.body}`);
  const e = await request(srv, 'GET', `/events?token=${encodeURIComponent(tokenParam(jwt, 'u2'))}`, { headers: { 'Last-Event-ID': '0' }, timeout: 2000 })
    .catch((err) => ({ status: `error ${err.message}` }));
  assert.equal(e.status, 401, `u1's token claiming u2 on /events with Last-Event-ID: 0 -> ${e.status}`);
});

test('/notifications errors: bad limit and before are 400, no or bad token is 401', async () => {
  const jwt = await tk.sub('u1');
  for (const q of ['limit=0', 'limit=501', 'limit=-1', 'limit=abc', 'limit=1.5', 'limit=', 'before=abc', 'before=-3', 'before=1e3', 'limit=99999999999999999999999']) {
    const r = await notifications(srv, jwt, 'u1', q);
    assert.equal(r.status, 400, `?${q} -> ${r.status} ${r.body}`);
    assert.equal(typeof r.json?.error, 'string', `?${q}: JSON error body`);
  }
  for (const q of ['limit=1', 'limit=500']) {
    assert.equal((await notifications(srv, jwt, 'u1', q)).status, 200, q);
  }
  const none = await request(srv, 'GET', '/notifications');
  assert.equal(none.status, 401);
  const forged = mintJwt({ username: 'e2e-sub', iat: 1, exp: 4102444800 }, 'wrong-key');
  const bad = await request(srv, 'GET', `/notifications?token=${encodeURIComponent(tokenParam(forged, 'u1'))}`);
  assert.equal(bad.status, 401);
  assert.equal((await request(srv, 'GET', '/notifications', { headers: { Authorization: 'Bearer nope' } })).status, 401);
});

test('/notifications paging: limit, before and next walk the history newest first without overlap', async () => {
  const ps = await startServer();
  servers.push(ps);
  const pt = await tokens(ps);
  const payloads = [];
  for (let i = 0; i < 23; i++) payloads.push({ content: `p${i}`, ...(i % 3 === 0 ? { user: 'pager' } : i % 3 === 1 ? { type: i % 2 ? 'x' : 'y' } : { user: 'other' }) });
  const pids = await publishAll(ps, pt.pub, payloads);
  const jwt = await pt.sub('pager');
  const visible = (types) => pids.filter((id, i) => accepts({ user: 'pager', types }, payloads[i])).reverse();

  for (const limit of [1, 3, 5, visible([]).length, 500]) {
    const { items, pages } = await allNotifications(ps, jwt, 'pager', { limit });
    assert.deepEqual(items.map((i) => i.id), visible([]), `limit=${limit}`);
    for (let p = 0; p < pages.length; p++) {
      const pg = pages[p];
      const last = p === pages.length - 1;
      assert.equal(pg.items.length, last ? items.length - limit * p : limit, `limit=${limit} page ${p} size`);
      assert.equal(pg.next, last ? null : pg.items.at(-1).id, `limit=${limit} page ${p} next`);
    }
  }
  // Default limit is 50: 23 events fit, next is null.
  const d = await notifications(ps, jwt, 'pager');
  assert.deepEqual(d.json.items.map((i) => i.id), visible([]));
  assert.equal(d.json.next, null);
  // before: only older events; before the oldest: empty with next null.
  const v = visible([]);
  const mid = v[4];
  const b = await notifications(ps, jwt, 'pager', `before=${mid}&limit=500`);
  assert.deepEqual(b.json.items.map((i) => i.id), v.filter((id) => id < mid));
  const e = await notifications(ps, jwt, 'pager', 'before=1');
  assert.deepEqual(e.json, { items: [], next: null });
  const far = await notifications(ps, jwt, 'pager', 'before=999999999');
  assert.deepEqual(far.json.items.map((i) => i.id), v);
  // type: typed broadcasts of that type only, plus the user's own and untyped ones.
  for (const types of [['x'], ['y'], ['x', 'y'], ['nothing']]) {
    const { items } = await allNotifications(ps, jwt, 'pager', { limit: 4, type: types });
    assert.deepEqual(items.map((i) => i.id), visible(types), `type=${types}`);
  }
  // The default limit caps at 50.
  const more = await publishAll(ps, pt.pub, Array.from({ length: 60 }, (_, i) => ({ content: `m${i}` })));
  const page = await notifications(ps, jwt, 'pager');
  assert.equal(page.json.items.length, 50);
  assert.deepEqual(page.json.items.map((i) => i.id), more.slice(10).reverse());
  assert.equal(page.json.next, more[10]);
});
