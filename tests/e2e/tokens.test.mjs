// Tokens bound to users (issue 5, "Accounts and tokens"): /login signs the id
// as `sub`; a sub-bound token refuses another id; POST /token mints
// subscriber tokens (user, types, ttl); the `types` claim limits what a
// stream may ask for and what reaches it (live, Last-Event-ID replay,
// /notifications); expired tokens end streams with `event: token-expired`;
// SSE_TRUST_CLIENT_ID; SSE_JWT_PUBLIC_KEY (RS256, ES256) and the attacks on it.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  JSON_CT, SseStream, decodeJwt, login, mintJwt, openStream, publish, request, runBinary,
  sleep, startServer, tempDir, tokenFor, tokenParam, ACCOUNTS,
} from './lib/server.mjs';
import { ecKeys, nowSec, rsaKeys, signJwt } from './lib/jwt.mjs';

let srv;
let pubJwt;
let adminJwt;
let subJwt; // the subscriber account, no id (no sub)
let seq = 0;
const uniq = (p) => `${p}-${process.pid}-${++seq}`;

before(async () => {
  srv = await startServer({ env: { SSE_HEARTBEAT: 60 } });
  pubJwt = await tokenFor(srv, 'pub');
  adminJwt = await tokenFor(srv, 'admin');
  subJwt = await tokenFor(srv, 'sub');
});
after(async () => { if (srv) await srv.stopClean(); });

// ------------------------------------------------------------- helpers ----

const wrapped = (jwt, id) => encodeURIComponent(tokenParam(jwt, id));

/** GET a stream path and report its status (and error body); always closes. */
async function streamStatus(server, p, { headers = {}, bearer } = {}) {
  const s = new SseStream(server.port, { path: p, headers, bearer });
  try {
    const h = await s.ready(3000);
    if (h.status !== 200) {
      await s.waitFor((x) => { try { JSON.parse(x.text); return true; } catch { return false; } }, 2000, 'error body')
        .catch(() => {});
    }
    return { status: h.status, body: s.text, headers: h.headers };
  } finally {
    s.close();
  }
}

async function expectStream(server, p, want, opts = {}, what = '') {
  const r = await streamStatus(server, p, opts);
  assert.equal(r.status, want, `GET ${p.slice(0, 160)} ${what} -> ${r.status} ${r.body.slice(0, 200)} (expected ${want})`);
  if (want !== 200) {
    assert.match(r.headers['content-type'] || '', JSON_CT);
    assert.equal(typeof JSON.parse(r.body).error, 'string', r.body);
  }
  return r;
}

/** The stream belongs to `user`: an event for user reaches it, one for another user does not. */
async function assertRoutedTo(server, pub, stream, user) {
  const n = uniq('route');
  await publish(server, pub, { content: `${n}-other`, user: `${user}-not` });
  await publish(server, pub, { content: `${n}-mine`, user });
  await stream.waitForData(`${n}-mine`);
  assert.ok(!stream.events.some((e) => e.data.join('\n') === `${n}-other`), `an event for ${user}-not reached ${user}'s stream`);
}

function mintReq(server, jwt, body) {
  const headers = jwt ? { Authorization: `Bearer ${jwt}` } : {};
  return request(server, 'POST', '/token', { headers, body });
}

async function mint(server, jwt, body) {
  const r = await mintReq(server, jwt, body);
  assert.equal(r.status, 201, `POST /token ${JSON.stringify(body)} -> ${r.status} ${r.body}`);
  return r.json;
}

const dataOf = (s, prefix) => s.events.map((e) => e.data.join('\n')).filter((d) => d.startsWith(prefix));

// ------------------------------------------------------------ /login ----

describe('/login signs the id as sub', () => {
  test('with id: sub = id; without id or with an empty id: no sub', async () => {
    const r = await login(srv, 'sub', 'alice-1');
    assert.equal(r.status, 200, r.body);
    const { header, payload } = decodeJwt(r.token);
    assert.equal(header.alg, 'HS256');
    assert.equal(payload.sub, 'alice-1', JSON.stringify(payload));
    assert.equal(payload.username, ACCOUNTS.sub.username);
    assert.equal(r.json.id, 'alice-1');

    for (const id of [undefined, '']) {
      const r2 = await login(srv, 'sub', id);
      assert.equal(r2.status, 200, r2.body);
      const p2 = decodeJwt(r2.token).payload;
      assert.ok(!('sub' in p2), `login with id ${JSON.stringify(id)} gave a sub: ${JSON.stringify(p2)}`);
    }
  });

  test('a stream with the same id (token parameter, empty id, cookie) works and is routed by the sub', async () => {
    const id = uniq('alice');
    const r = await login(srv, 'sub', id);
    const s1 = await openStream(srv, { path: `/events?token=${wrapped(r.token, id)}` });
    await assertRoutedTo(srv, pubJwt, s1, id);
    s1.close();
    // An empty id in the wrapper: the signed sub decides.
    const s2 = await openStream(srv, { path: `/events?token=${wrapped(r.token, '')}` });
    await assertRoutedTo(srv, pubJwt, s2, id);
    s2.close();
    // The cookie /login set.
    assert.ok(r.cookie, `no sse_token cookie: ${r.setCookie}`);
    const s3 = await openStream(srv, { headers: { Cookie: `sse_token=${r.cookie}` } });
    await assertRoutedTo(srv, pubJwt, s3, id);
    s3.close();
  });

  test('another id in the token wrapper or the cookie is refused with 401 (/events and /notifications)', async () => {
    const id = uniq('alice');
    const jwt = await tokenFor(srv, 'sub', id);
    const forged = tokenParam(jwt, 'mallory');
    await expectStream(srv, `/events?token=${encodeURIComponent(forged)}`, 401, {}, '(token param, other id)');
    await expectStream(srv, '/events', 401, { headers: { Cookie: `sse_token=${forged}` } }, '(cookie, other id)');
    // The query parameter is tried first; a bad one is not rescued by a good cookie.
    await expectStream(srv, `/events?token=${encodeURIComponent(forged)}`, 401,
      { headers: { Cookie: `sse_token=${tokenParam(jwt, id)}` } }, '(bad param + good cookie)');
    for (const [what, opts] of [
      ['param', { p: `/notifications?token=${encodeURIComponent(forged)}` }],
      ['cookie', { p: '/notifications', headers: { Cookie: `sse_token=${forged}` } }],
    ]) {
      const r = await request(srv, 'GET', opts.p, { headers: opts.headers || {} });
      assert.equal(r.status, 401, `/notifications (${what}, other id) -> ${r.status} ${r.body}`);
    }
    const ok = await request(srv, 'GET', `/notifications?token=${wrapped(jwt, id)}`);
    assert.equal(ok.status, 200, ok.body);
  });

  test('Bearer with a sub token: routing by the sub (stream and /notifications)', async () => {
    const id = uniq('bearer');
    const jwt = await tokenFor(srv, 'sub', id);
    const s = await openStream(srv, { bearer: jwt });
    await assertRoutedTo(srv, pubJwt, s, id);
    s.close();
    const n = await request(srv, 'GET', '/notifications?limit=500', { headers: { Authorization: `Bearer ${jwt}` } });
    assert.equal(n.status, 200, n.body);
    const mine = n.json.items.filter((i) => i.user !== '');
    assert.ok(mine.length >= 1 && mine.every((i) => i.user === id), `items: ${JSON.stringify(n.json.items).slice(0, 400)}`);
  });
});

// ------------------------------------------------------------ /token ----

describe('POST /token', () => {
  test('publisher and admin: 201 {token, expires}, expires = now + ttl, sub = user', async () => {
    for (const [who, jwt] of [['publisher', pubJwt], ['admin', adminJwt]]) {
      for (const [ttl, body] of [[120, { user: 'bob', ttl: 120 }], [3600, { user: 'bob' }],
        [1, { user: 'bob', ttl: 1 }], [86400, { user: 'bob', ttl: 86400, types: ['a', 'b'] }]]) {
        const t0 = nowSec();
        const r = await mintReq(srv, jwt, body);
        const t1 = nowSec();
        assert.equal(r.status, 201, `${who} POST /token ${JSON.stringify(body)} -> ${r.status} ${r.body}`);
        assert.match(r.headers['content-type'] || '', JSON_CT);
        assert.deepEqual(Object.keys(r.json).sort(), ['expires', 'token'], r.body);
        assert.ok(Number.isInteger(r.json.expires), r.body);
        assert.ok(r.json.expires >= t0 + ttl && r.json.expires <= t1 + ttl,
          `${who} ttl ${ttl}: expires ${r.json.expires} not in [${t0 + ttl}, ${t1 + ttl}]`);
        const p = decodeJwt(r.json.token).payload;
        assert.equal(p.sub, 'bob', JSON.stringify(p));
        assert.equal(p.exp, r.json.expires, JSON.stringify(p));
        if (body.types) assert.deepEqual(p.types, body.types);
        else assert.ok(!('types' in p), JSON.stringify(p));
      }
    }
  });

  test('subscriber 403; no token, bad token 401', async () => {
    const body = { user: 'bob' };
    let r = await mintReq(srv, subJwt, body);
    assert.equal(r.status, 403, `subscriber -> ${r.status} ${r.body}`);
    r = await mintReq(srv, null, body);
    assert.equal(r.status, 401, `no token -> ${r.status} ${r.body}`);
    r = await mintReq(srv, 'not.a.jwt', body);
    assert.equal(r.status, 401, `garbage token -> ${r.status} ${r.body}`);
    r = await mintReq(srv, mintJwt({ username: ACCOUNTS.admin.username, exp: nowSec() + 60 }, 'other-key'), body);
    assert.equal(r.status, 401, `token of another key -> ${r.status} ${r.body}`);
    // Only Bearer counts for /token: the cookie of a publisher login is not enough.
    const pl = await login(srv, 'pub');
    r = await request(srv, 'POST', '/token', { headers: { Cookie: `sse_token=${pl.cookie}` }, body });
    assert.equal(r.status, 401, `publisher cookie only -> ${r.status} ${r.body}`);
  });

  test('bad bodies: 400', async () => {
    const long = 'u'.repeat(257);
    const bodies = [
      'not json', '[]', '"bob"', '{}',
      { types: ['a'] },                 // missing user
      { user: '' }, { user: 'a\rb' }, { user: 'a\nb' }, { user: 'a\r\nb' }, { user: 'a\u0000b' },
      { user: 12 }, { user: null }, { user: ['bob'] }, { user: long },
      { user: 'bob', types: 'a' }, { user: 'bob', types: 'a,b' }, { user: 'bob', types: { a: 1 } },
      { user: 'bob', types: [1] }, { user: 'bob', types: ['a', null] }, { user: 'bob', types: [['a']] },
      { user: 'bob', types: ['a,b'] }, { user: 'bob', types: ['a', 'b,c'] }, { user: 'bob', types: [''] },
      { user: 'bob', types: ['a\nb'] }, { user: 'bob', types: Array.from({ length: 33 }, (_, i) => `t${i}`) },
      { user: 'bob', ttl: 0 }, { user: 'bob', ttl: -5 }, { user: 'bob', ttl: 86401 }, { user: 'bob', ttl: '60' },
      { user: 'bob', ttl: 1.5 }, { user: 'bob', ttl: 1e12 },
    ];
    for (const b of bodies) {
      const r = await request(srv, 'POST', '/token', {
        headers: { Authorization: `Bearer ${pubJwt}`, 'Content-Type': 'application/json' }, body: b,
      });
      assert.equal(r.status, 400, `POST /token ${JSON.stringify(b).slice(0, 100)} -> ${r.status} ${r.body.slice(0, 200)}`);
      assert.equal(typeof r.json?.error, 'string', r.body);
    }
  });

  test('a minted token is a subscriber, even minted by an admin: no /broadcast, /token or /admin/stop', async () => {
    const { token } = await mint(srv, adminJwt, { user: 'carol' });
    const p = decodeJwt(token).payload;
    assert.equal(p.sub, 'carol');
    let r = await broadcast403(token);
    assert.equal(r.status, 403, `/broadcast with a minted token -> ${r.status} ${r.body}`);
    r = await mintReq(srv, token, { user: 'carol2' });
    assert.equal(r.status, 403, `/token with a minted token -> ${r.status} ${r.body}`);
    r = await request(srv, 'POST', '/admin/stop', { headers: { Authorization: `Bearer ${token}` } });
    assert.notEqual(r.status, 200, `/admin/stop with an admin-minted subscriber token -> ${r.status} ${r.body}`);
    await sleep(200);
    assert.equal(srv.exitInfo, null, 'the server stopped on a minted token');
    const h = await request(srv, 'GET', '/healthz');
    assert.equal(h.status, 200);
  });

  test('a minted token streams as its user; another id in the wrapper or cookie is 401', async () => {
    const user = uniq('minted');
    const { token } = await mint(srv, pubJwt, { user });
    const s = await openStream(srv, { bearer: token });
    await assertRoutedTo(srv, pubJwt, s, user);
    s.close();
    const s2 = await openStream(srv, { path: `/events?token=${wrapped(token, user)}` });
    await assertRoutedTo(srv, pubJwt, s2, user);
    s2.close();
    await expectStream(srv, `/events?token=${wrapped(token, 'someone-else')}`, 401);
    await expectStream(srv, '/events', 401, { headers: { Cookie: `sse_token=${tokenParam(token, 'someone-else')}` } });
  });
});

function broadcast403(token) {
  return request(srv, 'POST', '/broadcast', { headers: { Authorization: `Bearer ${token}` }, body: { content: 'x' } });
}

// ------------------------------------------------------ types claim ----

describe('types claim', () => {
  let typed; // token for user tu, types alpha + beta
  let tu;
  before(async () => {
    tu = uniq('tu');
    typed = (await mint(srv, pubJwt, { user: tu, types: ['alpha', 'beta'] })).token;
  });

  test('may ask only for its types (/events and /notifications); asking for none is allowed', async () => {
    for (const q of ['', '?type=alpha', '?type=beta', '?type=alpha,beta', '?type=alpha&type=beta']) {
      await expectStream(srv, `/events${q}`, 200, { bearer: typed });
    }
    for (const q of ['?type=gamma', '?type=alpha,gamma', '?type=alpha&type=gamma', '?type=ALPHA']) {
      await expectStream(srv, `/events${q}`, 403, { bearer: typed });
    }
    // Same through the token wrapper.
    await expectStream(srv, `/events?type=gamma&token=${wrapped(typed, tu)}`, 403);
    const auth = { Authorization: `Bearer ${typed}` };
    for (const q of ['', '?type=alpha', '?type=alpha,beta']) {
      const r = await request(srv, 'GET', `/notifications${q}`, { headers: auth });
      assert.equal(r.status, 200, `/notifications${q} -> ${r.status} ${r.body}`);
    }
    for (const q of ['?type=gamma', '?type=beta&type=gamma']) {
      const r = await request(srv, 'GET', `/notifications${q}`, { headers: auth });
      assert.equal(r.status, 403, `/notifications${q} -> ${r.status} ${r.body}`);
      assert.equal(typeof r.json?.error, 'string', r.body);
    }
  });

  // One batch of events, checked live, in replay and in /notifications.
  let batchPrefix;
  let firstId;
  const expectAll = ['untyped-bcast', 'alpha-bcast', 'beta-bcast', 'alpha-user', 'untyped-user', 'end'];
  const expectAlpha = ['untyped-bcast', 'alpha-bcast', 'alpha-user', 'untyped-user', 'end'];
  const expectControl = ['untyped-bcast', 'alpha-bcast', 'alpha-user', 'gamma-user', 'untyped-user', 'end'];

  test('live: typed broadcasts outside the types never arrive; user events of other types do not either', async () => {
    batchPrefix = uniq('batch');
    const a = await openStream(srv, { bearer: typed });                      // all allowed types
    const b = await openStream(srv, { path: '/events?type=alpha', bearer: typed });
    // Control: an unrestricted token for the same user, asking for alpha (docs: user events ignore the filter).
    const ctlJwt = await tokenFor(srv, 'sub', tu);
    const c = await openStream(srv, { path: '/events?type=alpha', bearer: ctlJwt });
    const P = (x) => `${batchPrefix}:${x}`;
    const steps = [
      { content: P('gamma-bcast'), type: 'gamma' },
      { content: P('untyped-bcast') },
      { content: P('alpha-bcast'), type: 'alpha' },
      { content: P('beta-bcast'), type: 'beta' },
      { content: P('alpha-user'), type: 'alpha', user: tu },
      { content: P('gamma-user'), type: 'gamma', user: tu },
      { content: P('other-user'), type: 'alpha', user: `${tu}-x` },
      { content: P('untyped-user'), user: tu },
      { content: P('end'), user: tu },
    ];
    for (const st of steps) {
      const id = await publish(srv, pubJwt, st);
      firstId ??= id;
    }
    for (const s of [a, b, c]) await s.waitForData(P('end'));
    const got = (s) => dataOf(s, `${batchPrefix}:`).map((d) => d.slice(batchPrefix.length + 1));
    assert.deepEqual(got(a), expectAll, 'typed token, no type asked');
    assert.deepEqual(got(b), expectAlpha, 'typed token, type=alpha');
    assert.deepEqual(got(c), expectControl, 'control: untyped token, type=alpha');
    const alphaUser = a.events.find((e) => e.data[0] === P('alpha-user'));
    assert.equal(alphaUser.event, 'alpha');
    for (const s of [a, b, c]) s.close();
  });

  test('Last-Event-ID replay applies the same rules', async () => {
    assert.ok(firstId, 'the live test did not run');
    const P = `${batchPrefix}:`;
    const got = (s) => dataOf(s, P).map((d) => d.slice(P.length));
    const a = await openStream(srv, { bearer: typed, headers: { 'Last-Event-ID': String(firstId - 1) } });
    const b = await openStream(srv, { path: `/events?type=alpha&lastEventId=${firstId - 1}`, bearer: typed });
    for (const s of [a, b]) await s.waitForData(`${P}end`);
    assert.deepEqual(got(a), expectAll, 'replay, typed token, no type asked');
    assert.deepEqual(got(b), expectAlpha, 'replay, typed token, type=alpha');
    a.close();
    b.close();
  });

  test('/notifications applies the same rules', async () => {
    assert.ok(firstId, 'the live test did not run');
    const P = `${batchPrefix}:`;
    const list = async (q, jwt) => {
      const r = await request(srv, 'GET', `/notifications?limit=500${q}`, { headers: { Authorization: `Bearer ${jwt}` } });
      assert.equal(r.status, 200, r.body);
      return r.json.items.filter((i) => i.content.startsWith(P)).map((i) => i.content.slice(P.length));
    };
    assert.deepEqual(await list('', typed), [...expectAll].reverse(), '/notifications, typed token');
    assert.deepEqual(await list('&type=alpha', typed), [...expectAlpha].reverse(), '/notifications?type=alpha, typed token');
    // Control: an unrestricted token of the same user sees every type.
    const ctlJwt = await tokenFor(srv, 'sub', tu);
    assert.deepEqual(await list('', ctlJwt),
      ['gamma-bcast', 'untyped-bcast', 'alpha-bcast', 'beta-bcast', 'alpha-user', 'gamma-user', 'untyped-user', 'end'].reverse(),
      '/notifications, untyped token');
  });
});

// ---------------------------------------------------- token expiry ----

describe('token expiry', () => {
  test('a stream gets `event: token-expired` with a data line within 5 s of expiry, then closes', async () => {
    const user = uniq('exp');
    const { token, expires } = await mint(srv, pubJwt, { user, ttl: 2 });
    const long = (await mint(srv, pubJwt, { user, ttl: 600 })).token;
    const s1 = await openStream(srv, { bearer: token });
    const s2 = await openStream(srv, { path: `/events?token=${wrapped(token, user)}` });
    const keep = await openStream(srv, { bearer: long });
    const n = uniq('pre');
    await publish(srv, pubJwt, { content: n, user });
    for (const s of [s1, s2, keep]) await s.waitForData(n);

    const deadline = expires * 1000 + 5000 - Date.now();
    await Promise.all([s1, s2].map((s) => s.waitFor((x) => x.endInfo, Math.max(deadline, 0) + 300,
      'the stream to close 5 s after expiry')));
    for (const [name, s] of [['bearer', s1], ['token param', s2]]) {
      assert.equal(s.endInfo.how, 'end', `${name}: closed by ${s.endInfo.how}, expected a clean end`);
      assert.ok(s.endInfo.at >= expires * 1000 - 100, `${name}: closed ${expires * 1000 - s.endInfo.at} ms before the token expired`);
      assert.ok(s.endInfo.at <= expires * 1000 + 5000, `${name}: closed ${s.endInfo.at - expires * 1000} ms after expiry`);
      const last = s.frames[s.frames.length - 1];
      assert.equal(last.event, 'token-expired', `${name}: last frame ${JSON.stringify(last)}`);
      assert.equal(last.data.length, 1, `${name}: token-expired needs exactly one data line: ${JSON.stringify(last)}`);
      assert.deepEqual(JSON.parse(last.data[0]), { error: 'token expired' });
      assert.equal(s.frames.filter((f) => f.event === 'token-expired').length, 1, `${name}: more than one token-expired`);
      assert.ok(/\n\n$/.test(s.text) || /\r\n\r\n$/.test(s.text), `${name}: body does not end on a frame boundary: ${JSON.stringify(s.text.slice(-80))}`);
    }
    await srv.waitForLog(/token-expired/, 1000);
    // The long-lived token's stream is untouched.
    assert.equal(keep.endInfo, null, 'the stream with a valid token was closed');
    const m = uniq('post');
    await publish(srv, pubJwt, { content: m, user });
    await keep.waitForData(m);
    assert.ok(!keep.frames.some((f) => f.event === 'token-expired'));
    keep.close();
    // The expired token is now refused outright.
    await expectStream(srv, '/events', 401, { bearer: token });
  });
});

// ---------------------------------------------- SSE_TRUST_CLIENT_ID ----

describe('SSE_TRUST_CLIENT_ID', () => {
  test('default 1: warning at start-up; a token without sub takes the wrapper id', async () => {
    const line = await srv.waitForLog(/SSE_TRUST_CLIENT_ID/, 2000);
    assert.match(line, /\bwarn/i, line);
    // goSSE's cookie flow: the subscriber account logs in with the user's id.
    const l = await login(srv, 'sub', uniq('gosse'));
    assert.equal(l.status, 200, `${l.status} ${l.body}`);
    assert.ok(l.cookie, 'the cookie is set');
    const id = uniq('legacy');
    const s = await openStream(srv, { path: `/events?token=${wrapped(subJwt, id)}` });
    await assertRoutedTo(srv, pubJwt, s, id);
    s.close();
    const c = await openStream(srv, { headers: { Cookie: `sse_token=${tokenParam(subJwt, id)}` } });
    await assertRoutedTo(srv, pubJwt, c, id);
    c.close();
  });

  describe('0', () => {
    let s0;
    let pub0;
    before(async () => {
      s0 = await startServer({ env: { SSE_TRUST_CLIENT_ID: 0, SSE_HEARTBEAT: 60 } });
      pub0 = await tokenFor(s0, 'pub');
    });
    after(async () => { if (s0) await s0.stopClean(); });

    test('no start-up warning', async () => {
      await tokenFor(s0, 'sub');
      await s0.waitForLog(/ login /, 2000);
      const hits = s0.lines.filter((l) => /SSE_TRUST_CLIENT_ID/.test(l));
      assert.deepEqual(hits, [], 'warning printed with SSE_TRUST_CLIENT_ID=0');
    });

    test('/login of a subscriber account with an id: 403 pointing to POST /token; without one, or as publisher/admin: 200', async () => {
      const r = await login(s0, 'sub', 'user-42');
      assert.equal(r.status, 403, `${r.status} ${r.body}`);
      assert.match(r.headers['content-type'] || '', JSON_CT);
      assert.match(r.json.error, /POST \/token/, r.body);
      assert.match(r.json.error, /backend/, r.body);
      assert.equal(r.setCookie.length, 0, 'no cookie');
      assert.equal(r.token, undefined, 'no token');
      await s0.waitForLog(/login-refused .*reason=client-id/, 2000);
      for (const id of [undefined, '', null]) {
        const ok = await login(s0, 'sub', id);
        assert.equal(ok.status, 200, `id ${JSON.stringify(id)}: ${ok.status} ${ok.body}`);
        assert.ok(!('sub' in decodeJwt(ok.token).payload));
      }
      for (const who of ['pub', 'admin']) {
        const ok = await login(s0, who, `${who}-id`);
        assert.equal(ok.status, 200, `${who}: ${ok.status} ${ok.body}`);
        assert.equal(decodeJwt(ok.token).payload.sub, `${who}-id`);
      }
      // The refusal is not a failed login: more of them never lead to 429.
      for (let i = 0; i < 12; i++) assert.equal((await login(s0, 'sub', 'again')).status, 403);
      assert.equal((await login(s0, 'sub')).status, 200);
      // The user id of a stream then comes only from a signed sub (a /token token).
      const { token } = await mint(s0, pub0, { user: 'user-42' });
      const st = await openStream(s0, { bearer: token });
      await assertRoutedTo(s0, pub0, st, 'user-42');
      st.close();
    });

    test('a sub-less token with a non-empty id: 401 (param, cookie, /notifications)', async () => {
      const jwt = await tokenFor(s0, 'sub');
      assert.ok(!('sub' in decodeJwt(jwt).payload));
      await expectStream(s0, `/events?token=${wrapped(jwt, 'claimed')}`, 401);
      await expectStream(s0, '/events', 401, { headers: { Cookie: `sse_token=${tokenParam(jwt, 'claimed')}` } });
      const r = await request(s0, 'GET', `/notifications?token=${wrapped(jwt, 'claimed')}`);
      assert.equal(r.status, 401, `/notifications -> ${r.status} ${r.body}`);
      // /login's own cookie for a login with an id is sub-bound, so it works
      // (a publisher's: a subscriber account may not name an id here).
      const l = await login(s0, 'pub', 'bound-1');
      const c = await openStream(s0, { headers: { Cookie: `sse_token=${l.cookie}` } });
      await assertRoutedTo(s0, pub0, c, 'bound-1');
      c.close();
    });

    test('a sub-less token with an empty id, or as Bearer, still works (no user id)', async () => {
      const jwt = await tokenFor(s0, 'sub');
      const s = await openStream(s0, { path: `/events?token=${wrapped(jwt, '')}` });
      const b = await openStream(s0, { bearer: jwt });
      const n = uniq('all');
      await publish(s0, pub0, { content: `${n}-user`, user: 'someone' });
      await publish(s0, pub0, { content: n });
      for (const x of [s, b]) await x.waitForData(n);
      for (const x of [s, b]) assert.ok(!x.events.some((e) => e.data[0] === `${n}-user`), 'a user event leaked');
      s.close();
      b.close();
    });

    test('sub tokens (/login with id, /token) work with their own id', async () => {
      const jwt = await tokenFor(s0, 'pub', 'bound-2');
      const s = await openStream(s0, { path: `/events?token=${wrapped(jwt, 'bound-2')}` });
      await assertRoutedTo(s0, pub0, s, 'bound-2');
      s.close();
      const { token } = await mint(s0, pub0, { user: 'bound-3' });
      const t = await openStream(s0, { bearer: token });
      await assertRoutedTo(s0, pub0, t, 'bound-3');
      t.close();
      await expectStream(s0, `/events?token=${wrapped(jwt, 'bound-3')}`, 401);
    });
  });
});

// ----------------------------------------------- SSE_JWT_PUBLIC_KEY ----

/** Start a server trusting `pem` (written to a file). */
async function startWithKey(pem, env = {}) {
  const cwd = tempDir();
  const file = path.join(cwd, 'idp-public.pem');
  fs.writeFileSync(file, pem);
  return startServer({ cwd, env: { SSE_JWT_PUBLIC_KEY: file, SSE_HEARTBEAT: 60, ...env } });
}

/** The checks shared by RS256 and ES256: good token bound to its sub; every forgery 401. */
function externalSuite(name, keysFn, alg, foreignAlgTokens) {
  describe(`SSE_JWT_PUBLIC_KEY ${name}`, () => {
    let s;
    let keys;
    let pub;
    const claims = (extra = {}) => ({ sub: 'ext-user', exp: nowSec() + 300, iat: nowSec(), ...extra });
    before(async () => {
      keys = keysFn();
      s = await startWithKey(keys.publicPem);
      pub = await tokenFor(s, 'pub');
    });
    after(async () => { if (s) await s.stopClean(); });

    test(`${alg} token with sub and exp: a subscriber bound to its sub`, async () => {
      const user = uniq('ext');
      const jwt = signJwt(claims({ sub: user }), { alg, key: keys.privateKey });
      const b = await openStream(s, { bearer: jwt });
      await assertRoutedTo(s, pub, b, user);
      b.close();
      const w = await openStream(s, { path: `/events?token=${wrapped(jwt, user)}` });
      await assertRoutedTo(s, pub, w, user);
      w.close();
      await expectStream(s, `/events?token=${wrapped(jwt, 'not-me')}`, 401, {}, '(other id)');
      await expectStream(s, '/events', 401, { headers: { Cookie: `sse_token=${tokenParam(jwt, 'not-me')}` } }, '(cookie, other id)');
      const n = await request(s, 'GET', '/notifications', { headers: { Authorization: `Bearer ${jwt}` } });
      assert.equal(n.status, 200, n.body);
      // Only a subscriber.
      let r = await request(s, 'POST', '/broadcast', { headers: { Authorization: `Bearer ${jwt}` }, body: { content: 'x' } });
      assert.equal(r.status, 403, `/broadcast -> ${r.status} ${r.body}`);
      r = await mintReq(s, jwt, { user: 'x' });
      assert.equal(r.status, 403, `/token -> ${r.status} ${r.body}`);
      // A role claim cannot raise it.
      const adminish = signJwt(claims({ sub: user, role: 'admin', username: ACCOUNTS.admin.username }), { alg, key: keys.privateKey });
      r = await request(s, 'POST', '/broadcast', { headers: { Authorization: `Bearer ${adminish}` }, body: { content: 'x' } });
      assert.equal(r.status, 403, `/broadcast with role/username claims -> ${r.status} ${r.body}`);
      // HS256 tokens of the server still work alongside.
      const hs = await tokenFor(s, 'sub', 'hs-user');
      const h = await openStream(s, { bearer: hs });
      await assertRoutedTo(s, pub, h, 'hs-user');
      h.close();
    });

    test('refused with 401: missing/empty sub, missing exp, expired, other key, tampered, alg none, HS256 with the public key as secret, other algs', async () => {
      const other = keysFn();
      const good = signJwt(claims(), { alg, key: keys.privateKey });
      const [h, , sig] = good.split('.');
      const tampered = `${h}.${Buffer.from(JSON.stringify(claims({ sub: 'victim' }))).toString('base64url')}.${sig}`;
      const noExp = claims();
      delete noExp.exp;
      const cases = {
        'missing sub': signJwt(claims({ sub: undefined }), { alg, key: keys.privateKey }),
        'empty sub': signJwt(claims({ sub: '' }), { alg, key: keys.privateKey }),
        'missing exp': signJwt(noExp, { alg, key: keys.privateKey }),
        expired: signJwt(claims({ exp: nowSec() - 10 }), { alg, key: keys.privateKey }),
        'other key': signJwt(claims(), { alg, key: other.privateKey }),
        tampered,
        'alg none': signJwt(claims(), { alg: 'none' }),
        'alg none, signature kept': `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${good.split('.')[1]}.${sig}`,
        'HS256, secret = public key PEM': signJwt(claims(), { alg: 'HS256', key: keys.publicPem }),
        'HS256, secret = public key PEM trimmed': signJwt(claims(), { alg: 'HS256', key: keys.publicPem.trim() }),
        'HS256, secret = DER key': signJwt(claims(), { alg: 'HS256', key: keys.publicKey.export({ type: 'spki', format: 'der' }) }),
        [`lower-case ${alg.toLowerCase()}`]: signJwt(claims(), { alg, key: keys.privateKey, header: { alg: alg.toLowerCase() } }),
        ...foreignAlgTokens(claims, keys),
      };
      for (const [what, jwt] of Object.entries(cases)) {
        await expectStream(s, '/events', 401, { bearer: jwt }, `(Bearer: ${what})`);
        await expectStream(s, `/events?token=${wrapped(jwt, '')}`, 401, {}, `(token param: ${what})`);
        const r = await request(s, 'GET', '/notifications', { headers: { Authorization: `Bearer ${jwt}` } });
        assert.equal(r.status, 401, `/notifications (${what}) -> ${r.status} ${r.body}`);
      }
    });
  });
}

externalSuite('RSA 2048', () => rsaKeys(2048), 'RS256', (claims, keys) => ({
  'RS512 with the key': signJwt(claims(), { alg: 'RS512', key: keys.privateKey }),
  'PS256 with the key': signJwt(claims(), { alg: 'PS256', key: keys.privateKey }),
  'ES256 with an EC key': signJwt(claims(), { alg: 'ES256', key: ecKeys().privateKey }),
}));

externalSuite('EC P-256', () => ecKeys('prime256v1'), 'ES256', (claims, keys) => ({
  'ES256 with a DER signature': signJwt(claims(), { alg: 'ES256', key: keys.privateKey, der: true }),
  'RS256 with an RSA key': signJwt(claims(), { alg: 'RS256', key: rsaKeys(2048).privateKey }),
  'ES256 header, SHA-384 curve key': signJwt(claims(), { alg: 'ES256', key: ecKeys('secp384r1').privateKey }),
}));

/** nbf (30 s leeway), and SSE_JWT_ISSUER / SSE_JWT_AUDIENCE, on real tokens of the key. */
function claimsSuite(name, keysFn, alg) {
  describe(`SSE_JWT_PUBLIC_KEY ${name}: nbf, SSE_JWT_ISSUER, SSE_JWT_AUDIENCE`, () => {
    const ISS = 'https://idp.example/';
    const AUD = 'ssehub-notifications';
    let keys;
    let plain; // the key only: iss and aud not checked
    let strict; // with SSE_JWT_ISSUER and SSE_JWT_AUDIENCE
    const tok = (extra = {}) => signJwt({ sub: uniq('claims'), exp: nowSec() + 300, ...extra }, { alg, key: keys.privateKey });
    const accepted = (srvr, jwt, what) => expectStream(srvr, '/events', 200, { bearer: jwt }, what);
    const refused = async (srvr, jwt, what) => {
      await expectStream(srvr, '/events', 401, { bearer: jwt }, what);
      await expectStream(srvr, `/events?token=${wrapped(jwt, '')}`, 401, {}, `(token param) ${what}`);
    };
    before(async () => {
      keys = keysFn();
      plain = await startWithKey(keys.publicPem);
      strict = await startWithKey(keys.publicPem, { SSE_JWT_ISSUER: ISS, SSE_JWT_AUDIENCE: AUD });
    });
    after(async () => {
      if (plain) await plain.stopClean();
      if (strict) await strict.stopClean();
    });

    test(`${alg}: nbf in the future refused, in the past or within 30 s accepted`, async () => {
      await refused(plain, tok({ nbf: nowSec() + 3600 }), '(nbf in an hour)');
      await refused(plain, tok({ nbf: nowSec() + 120 }), '(nbf in two minutes, past the leeway)');
      await refused(plain, tok({ nbf: String(nowSec() - 60) }), '(nbf a string)');
      await accepted(plain, tok({ nbf: nowSec() - 60 }), '(nbf a minute ago)');
      await accepted(plain, tok({ nbf: nowSec() + 5 }), '(nbf 5 s ahead: clock skew)');
      await accepted(plain, tok({ nbf: nowSec() - 60, iat: nowSec() - 60 }), '(nbf and iat)');
      // With the settings the same holds.
      await refused(strict, tok({ iss: ISS, aud: AUD, nbf: nowSec() + 3600 }), '(strict, nbf in an hour)');
      await accepted(strict, tok({ iss: ISS, aud: AUD, nbf: nowSec() - 60 }), '(strict, nbf past)');
    });

    test(`${alg}: iss and aud not checked while SSE_JWT_ISSUER and SSE_JWT_AUDIENCE are unset`, async () => {
      await accepted(plain, tok(), '(neither)');
      await accepted(plain, tok({ iss: 'https://someone.example/', aud: ['x', 'y'] }), '(any iss, any aud)');
    });

    test(`${alg}: SSE_JWT_ISSUER: iss must equal it; missing or different refused`, async () => {
      await accepted(strict, tok({ iss: ISS, aud: AUD }), '(iss matches)');
      await refused(strict, tok({ aud: AUD }), '(iss missing)');
      await refused(strict, tok({ iss: 'https://evil.example/', aud: AUD }), '(iss mismatch)');
      await refused(strict, tok({ iss: ISS.slice(0, -1), aud: AUD }), '(iss without the final slash)');
      await refused(strict, tok({ iss: ISS.toUpperCase(), aud: AUD }), '(iss in other case)');
      await refused(strict, tok({ iss: [ISS], aud: AUD }), '(iss an array)');
    });

    test(`${alg}: SSE_JWT_AUDIENCE: aud string or array must hold it; missing or mismatch refused`, async () => {
      await accepted(strict, tok({ iss: ISS, aud: AUD }), '(aud string)');
      await accepted(strict, tok({ iss: ISS, aud: ['other-api', AUD] }), '(aud array holding it)');
      await accepted(strict, tok({ iss: ISS, aud: [AUD] }), '(aud array of one)');
      await refused(strict, tok({ iss: ISS }), '(aud missing)');
      await refused(strict, tok({ iss: ISS, aud: 'other-api' }), '(aud string mismatch)');
      await refused(strict, tok({ iss: ISS, aud: ['other-api', `${AUD}-2`] }), '(aud array mismatch)');
      await refused(strict, tok({ iss: ISS, aud: [] }), '(aud empty array)');
      await refused(strict, tok({ iss: ISS, aud: `${AUD} other-api` }), '(aud a string holding more)');
      await refused(strict, tok({ iss: ISS, aud: [AUD, 5] }), '(aud array not of strings)');
    });

    test(`${alg}: the server's own HS256 tokens are not checked against SSE_JWT_ISSUER / SSE_JWT_AUDIENCE`, async () => {
      const pub = await tokenFor(strict, 'pub');
      const { token } = await mint(strict, pub, { user: 'hs-user' });
      await accepted(strict, token, '(a /token token)');
      await accepted(strict, await tokenFor(strict, 'sub'), '(a /login token)');
    });
  });
}

claimsSuite('RSA 2048', () => rsaKeys(2048), 'RS256');
claimsSuite('EC P-256', () => ecKeys('prime256v1'), 'ES256');

describe('SSE_JWT_ISSUER / SSE_JWT_AUDIENCE without SSE_JWT_PUBLIC_KEY', () => {
  test('exit 1 with one line naming the setting and SSE_JWT_PUBLIC_KEY', () => {
    for (const name of ['SSE_JWT_ISSUER', 'SSE_JWT_AUDIENCE']) {
      const r = runBinary([], { defaults: true, env: { [name]: 'x', SSE_DB: 'off' }, timeout: 3000 });
      assert.equal(r.code, 1, `${name}: exit ${r.code}; ${r.stderr}`);
      const lines = r.stderr.split('\n').filter((l) => l.trim());
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], new RegExp(`${name}: .*SSE_JWT_PUBLIC_KEY`), lines[0]);
    }
  });
});

// A key file was once read through a 16 KB buffer: the key's type was checked on
// the whole file, but the verifier got the cut text and refused every token.
describe('SSE_JWT_PUBLIC_KEY with 40 KB of text before the key', () => {
  let s;
  let keys;
  before(async () => {
    keys = ecKeys('prime256v1');
    s = await startWithKey(`${'# explanatory text before the key block\n'.repeat(1000)}${keys.publicPem}`);
  });
  after(async () => { if (s) await s.stopClean(); });

  test('tokens it signed are accepted', async () => {
    const user = uniq('ext-long');
    const jwt = signJwt({ sub: user, exp: nowSec() + 300 }, { alg: 'ES256', key: keys.privateKey });
    const b = await openStream(s, { bearer: jwt });
    await assertRoutedTo(s, await tokenFor(s, 'pub'), b, user);
    b.close();
  });
});

describe('SSE_JWT_PUBLIC_KEY refused at start-up', () => {
  test('missing file, not a key, RSA 1024, EC P-384, a certificate-less garbage PEM, over 1 MiB, a NUL byte: exit 1 naming the setting', () => {
    const dir = tempDir();
    const files = {
      'garbage.pem': 'hello\n',
      'over-1mib.pem': ecKeys().publicPem + '\n'.repeat(1024 * 1024),
      'nul.pem': `${ecKeys().publicPem}\0`,
      'rsa1024.pem': rsaKeys(1024).publicPem,
      'p384.pem': ecKeys('secp384r1').publicPem,
      'bad-body.pem': '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n',
      'empty.pem': '',
    };
    for (const [n, c] of Object.entries(files)) fs.writeFileSync(path.join(dir, n), c);
    for (const f of ['does-not-exist.pem', ...Object.keys(files)]) {
      const r = runBinary([], {
        defaults: true, cwd: dir, timeout: 3000,
        env: { SSE_JWT_PUBLIC_KEY: path.join(dir, f), SSE_DB: 'off' },
      });
      assert.equal(r.code, 1, `${f}: exit ${r.code} signal ${r.signal}; stderr ${r.stderr.slice(0, 300)}`);
      assert.match(r.stderr, /SSE_JWT_PUBLIC_KEY/, `${f}: ${r.stderr.slice(0, 300)}`);
      assert.doesNotMatch(r.stderr, /listening on/, `${f}: the server started`);
    }
  });
});
