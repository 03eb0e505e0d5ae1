// GET /events authentication: the `token` parameter in every encoding,
// the sse_token cookie, the Bearer header, which one wins, and every way a
// token can be refused (missing, bad signature, expired, other key, alg none).
// The user id each flow yields is checked by routing a user-addressed event.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import EventSource from 'eventsource';
import {
  JSON_CT, SseStream, b64, decodeJwt, login, mintJwt, openStream, publish, request,
  sleep, startServer, tokenFor, tokenParam,
} from './lib/server.mjs';

let srv;
let subJwt;
let pubJwt;
let seq = 0;

before(async () => {
  srv = await startServer({ env: { SSE_HEARTBEAT: 60 } });
  subJwt = await tokenFor(srv, 'sub');
  pubJwt = await tokenFor(srv, 'pub');
});
after(async () => { if (srv) await srv.stopClean(); });

/** An id whose {token,id} base64 has +, / and = padding. */
const AWK = ['?', '>', '~', 'ÿ', 'þ', 'û'];
function awkwardId(jwt, prefix) {
  for (let i = 0; i < 100000; i++) {
    let id = `${prefix}${i}`;
    for (let n = i; n > 0; n = Math.floor(n / AWK.length)) id += AWK[n % AWK.length];
    const t = tokenParam(jwt, id);
    if (t.includes('+') && t.includes('/') && t.endsWith('=')) return id;
  }
  throw new Error('no awkward id found');
}

/** Assert the stream belongs to user `id`: an event for that user reaches it, one for another user does not. */
async function assertUser(stream, id) {
  const n = ++seq;
  await publish(srv, pubJwt, { content: `not-for-you-${n}`, user: `${id}-other` });
  await publish(srv, pubJwt, { content: `for-you-${n}`, user: id });
  await stream.waitForData(`for-you-${n}`);
  assert.ok(!stream.events.some((e) => e.data.join('\n') === `not-for-you-${n}`), 'event for another user leaked');
}

async function status401(p, headers = {}) {
  const r = await request(srv, 'GET', p, { headers });
  assert.equal(r.status, 401, `${p} ${JSON.stringify(headers).slice(0, 120)} -> ${r.status} ${r.body}`);
  assert.match(r.headers['content-type'] || '', JSON_CT);
  assert.equal(typeof r.json?.error, 'string', r.body);
  return r;
}

describe('token query parameter', () => {
  test('+, / and = unescaped', async () => {
    const id = awkwardId(subJwt, 'raw');
    const t = tokenParam(subJwt, id);
    const s = await openStream(srv, { path: `/events?type=sse&token=${t}` });
    await assertUser(s, id);
    s.close();
  });

  test('%-escaped (upper and lower case hex)', async () => {
    const id = awkwardId(subJwt, 'esc');
    const t = tokenParam(subJwt, id);
    const s1 = await openStream(srv, { path: `/events?type=sse&token=${encodeURIComponent(t)}` });
    await assertUser(s1, id);
    s1.close();
    const lower = encodeURIComponent(t).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase());
    const s2 = await openStream(srv, { path: `/events?token=${lower}&type=sse` });
    await assertUser(s2, id);
    s2.close();
  });

  test('URL-safe alphabet, padded and unpadded; standard unpadded', async () => {
    const id = awkwardId(subJwt, 'url');
    const t = tokenParam(subJwt, id);
    const urlsafe = t.replace(/\+/g, '-').replace(/\//g, '_');
    for (const v of [urlsafe, urlsafe.replace(/=+$/, ''), t.replace(/=+$/, ''), encodeURIComponent(urlsafe)]) {
      const s = await openStream(srv, { path: `/events?token=${v}` });
      await assertUser(s, id);
      s.close();
    }
  });

  test('token built exactly like SSEClient.withToken, through the eventsource package', async () => {
    const id = 'withToken-user';
    const url = srv.url(`/events?type=sse&token=${b64(JSON.stringify({ token: subJwt, id }))}`);
    const es = new EventSource(url, { withCredentials: true });
    try {
      await new Promise((resolve, reject) => { es.onopen = resolve; es.onerror = (e) => reject(new Error(`EventSource error ${e.status || ''} ${e.message || ''}`)); });
      const typed = new Promise((r) => es.addEventListener('sse', r));
      const untyped = new Promise((r) => { es.onmessage = r; });
      const i1 = await publish(srv, pubJwt, { content: 'typed hi', type: 'sse', user: id });
      const i2 = await publish(srv, pubJwt, { content: 'untyped hi' });
      const [e1, e2] = await Promise.all([typed, untyped]);
      assert.equal(e1.data, 'typed hi');
      assert.equal(e1.lastEventId, String(i1));
      assert.equal(e2.data, 'untyped hi');
      assert.equal(e2.lastEventId, String(i2));
    } finally { es.close(); }
  });

  test('refused: garbage, not JSON, JSON without token, bad JWT inside', async () => {
    await status401('/events?token=%%%');
    await status401('/events?token=bm90IGpzb24=');
    await status401(`/events?token=${b64(JSON.stringify({ id: 'x' }))}`);
    await status401(`/events?token=${b64(JSON.stringify({ token: 'a.b.c', id: 'x' }))}`);
    await status401(`/events?token=${b64(JSON.stringify({ token: `${subJwt}x`, id: 'x' }))}`);
    await status401(`/events?token=${b64(JSON.stringify({ token: 5, id: 'x' }))}`);
    await status401('/events?token=');
  });
});

describe('cookie sse_token', () => {
  test('login then /events with the cookie (withCreds flow)', async () => {
    const l = await login(srv, 'sub', 'cookie-user');
    assert.equal(l.status, 200);
    const s = await openStream(srv, { path: '/events?type=sse', headers: { Cookie: `sse_token=${l.cookie}` } });
    await assertUser(s, 'cookie-user');
    s.close();
    // among other cookies
    const s2 = await openStream(srv, { path: '/events?type=sse', headers: { Cookie: `a=1; sse_token=${l.cookie}; b=2` } });
    await assertUser(s2, 'cookie-user');
    s2.close();
  });

  test('cookie flow through the eventsource package: onmessage and addEventListener', async () => {
    const l = await login(srv, 'pub', 'es-cookie');
    const es = new EventSource(srv.url('/events?type=sse'), { headers: { Cookie: `sse_token=${l.cookie}` }, withCredentials: true });
    try {
      await new Promise((resolve, reject) => { es.onopen = resolve; es.onerror = (e) => reject(new Error(`EventSource error ${e.status || ''}`)); });
      const got = [];
      const done = new Promise((r) => {
        es.onmessage = (e) => { got.push(['message', e.data]); if (got.length === 2) r(); };
        es.addEventListener('sse', (e) => { got.push(['sse', e.data]); if (got.length === 2) r(); });
      });
      await publish(srv, pubJwt, { content: 'one' });
      await publish(srv, pubJwt, { content: 'two', type: 'sse' });
      await publish(srv, pubJwt, { content: 'other type', type: 'zzz' });
      await done;
      await sleep(100);
      assert.deepEqual(got, [['message', 'one'], ['sse', 'two']]);
    } finally { es.close(); }
  });

  test('refused: tampered, expired, other key', async () => {
    const l = await login(srv, 'sub', 'c2');
    const body = JSON.parse(Buffer.from(l.cookie, 'base64').toString());
    const { payload } = decodeJwt(body.token);
    const enc = (tok) => b64(JSON.stringify({ token: tok, id: 'c2' }));
    // control: a re-signed copy of the same payload is accepted
    const ok = new SseStream(srv.port, { headers: { Cookie: `sse_token=${enc(mintJwt(payload))}` } });
    assert.equal((await ok.ready()).status, 200, 'control re-signed token');
    ok.close();
    await status401('/events', { Cookie: `sse_token=${enc(`${body.token.slice(0, -2)}AA`)}` });
    await status401('/events', { Cookie: `sse_token=${enc(mintJwt({ ...payload, exp: Math.floor(Date.now() / 1000) - 5 }))}` });
    await status401('/events', { Cookie: `sse_token=${enc(mintJwt(payload, 'some-other-key'))}` });
    await status401('/events', { Cookie: 'sse_token=garbage' });
    await status401('/events', { Cookie: 'other=1' });
  });
});

describe('Bearer header', () => {
  test('Authorization: Bearer <JWT> opens a stream', async () => {
    const s = await openStream(srv, { bearer: subJwt });
    assert.equal(s.status, 200);
    await publish(srv, pubJwt, { content: 'bearer-all' });
    await s.waitForData('bearer-all');
    s.close();
  });

  test('bearer stream has user id "" (a user-addressed event does not reach it)', async () => {
    const s = await openStream(srv, { bearer: subJwt });
    await publish(srv, pubJwt, { content: 'to-someone', user: 'someone' });
    await publish(srv, pubJwt, { content: 'marker-b' });
    await s.waitForData('marker-b');
    assert.deepEqual(s.events.map((e) => e.data.join('\n')), ['marker-b']);
    s.close();
  });
});

describe('refusals on /events', () => {
  test('401 JSON without any token', async () => {
    await status401('/events');
    await status401('/events?type=sse');
    await status401('/events', { Authorization: 'Bearer' });
    await status401('/events', { Authorization: `Basic ${b64('e2e-sub:sub-Pw-9f3k2j')}` });
  });

  test('401 for bad signature, expired, other key, alg none (token param, cookie and Bearer)', async () => {
    const { payload, header } = decodeJwt(subJwt);
    const now = Math.floor(Date.now() / 1000);
    const bad = {
      'bad signature': `${subJwt.slice(0, subJwt.lastIndexOf('.'))}.${mintJwt(payload, 'x').split('.')[2]}`,
      expired: mintJwt({ ...payload, exp: now - 10 }),
      'other key': mintJwt(payload, 'not-the-app-key'),
      'alg none, empty signature': mintJwt(payload, null, { alg: 'none', typ: 'JWT' }),
      'alg none, with the real signature': `${mintJwt(payload, null, { alg: 'none', typ: 'JWT' })}${subJwt.split('.')[2]}`,
      'alg NONE': mintJwt(payload, null, { alg: 'NONE', typ: 'JWT' }),
      'HS256 header, other key': mintJwt(payload, 'k2', { ...header }),
    };
    // control: our minting reproduces an accepted token
    const control = mintJwt(payload);
    for (const [how, h] of [
      ['param', (t) => ({ p: `/events?token=${encodeURIComponent(tokenParam(t, 'x'))}`, h: {} })],
      ['cookie', (t) => ({ p: '/events', h: { Cookie: `sse_token=${tokenParam(t, 'x')}` } })],
      ['bearer', (t) => ({ p: '/events', h: { Authorization: `Bearer ${t}` } })],
    ]) {
      const c = h(control);
      const s = new SseStream(srv.port, { path: c.p, headers: c.h });
      assert.equal((await s.ready()).status, 200, `control via ${how}`);
      s.close();
      for (const [name, tok] of Object.entries(bad)) {
        const x = h(tok);
        await status401(x.p, x.h).catch((e) => { throw new Error(`${name} via ${how}: ${e.message}`); });
      }
    }
  });
});

describe('which source wins', () => {
  test('token parameter beats cookie and Bearer', async () => {
    const l = await login(srv, 'sub', 'cookie-id');
    const s = await openStream(srv, {
      path: `/events?token=${encodeURIComponent(tokenParam(subJwt, 'param-id'))}`,
      headers: { Cookie: `sse_token=${l.cookie}` },
      bearer: subJwt,
    });
    await assertUser(s, 'param-id');
    await publish(srv, pubJwt, { content: 'cookie-only', user: 'cookie-id' });
    await publish(srv, pubJwt, { content: 'end-1' });
    await s.waitForData('end-1');
    assert.ok(!s.events.some((e) => e.data[0] === 'cookie-only'));
    s.close();
  });

  test('cookie beats Bearer', async () => {
    const l = await login(srv, 'sub', 'cookie-id2');
    const s = await openStream(srv, { headers: { Cookie: `sse_token=${l.cookie}` }, bearer: subJwt });
    await assertUser(s, 'cookie-id2');
    s.close();
  });
});

describe('token lifetime', () => {
  test('a /login token stops working after SSE_TOKEN_TTL', async () => {
    const short = await startServer({ env: { SSE_TOKEN_TTL: 2 } });
    try {
      const t = await tokenFor(short, 'sub');
      const s = new SseStream(short.port, { bearer: t });
      assert.equal((await s.ready()).status, 200);
      s.close();
      await sleep(3200);
      const r = await request(short, 'GET', '/events', { headers: { Authorization: `Bearer ${t}` } });
      assert.equal(r.status, 401);
    } finally { await short.stopClean(); }
  });
});
