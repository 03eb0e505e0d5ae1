// CORS: a listed Origin is echoed with credentials on every response, an
// unlisted one never is, OPTIONS preflight answers 204, `*` lets any origin read
// without credentials (never `Access-Control-Allow-Credentials: true` with an
// origin that was not listed; a listed one keeps its credentialed echo).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SseStream, login, request, runBinary, startServer, tokenFor } from './lib/server.mjs';

const A = 'http://app-a.test:8000';
const B = 'https://app-b.test';
const EVIL = 'http://evil.test';

function tokens(v) {
  return (v || '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
}

function assertCors(res, origin, what) {
  assert.equal(res.headers['access-control-allow-origin'], origin, `${what}: ACAO`);
  assert.equal(res.headers['access-control-allow-credentials'], 'true', `${what}: ACAC`);
  const m = tokens(res.headers['access-control-allow-methods']);
  for (const x of ['get', 'post', 'options']) assert.ok(m.includes(x), `${what}: methods ${res.headers['access-control-allow-methods']} has ${x}`);
  const h = tokens(res.headers['access-control-allow-headers']);
  for (const x of ['content-type', 'authorization', 'last-event-id']) assert.ok(h.includes(x), `${what}: headers ${res.headers['access-control-allow-headers']} has ${x}`);
  assert.ok(tokens(res.headers.vary).includes('origin'), `${what}: Vary has Origin (${res.headers.vary})`);
}

function assertNotEchoed(res, what) {
  const v = res.headers['access-control-allow-origin'];
  assert.notEqual(v, EVIL, `${what}: unlisted origin echoed`);
  assert.notEqual(v, '*', `${what}: wildcard with credentials`);
}

describe('CORS with a list of origins', () => {
  let srv;
  let pub;
  let sub;
  before(async () => {
    srv = await startServer({ env: { ALLOWED_ORIGIN: `${A}, ${B}`, SSE_HEARTBEAT: 60 } });
    pub = await tokenFor(srv, 'pub');
    sub = await tokenFor(srv, 'sub');
  });
  after(async () => { if (srv) await srv.stopClean(); });

  // Requests covering every route and several status codes.
  const calls = () => [
    ['login 200', 'POST', '/login', { body: { username: 'e2e-sub', password: 'sub-Pw-9f3k2j', id: 'c' } }, 200],
    ['login 401', 'POST', '/login', { body: { username: 'e2e-sub', password: 'no' } }, 401],
    ['login 400', 'POST', '/login', { body: '{', headers: { 'Content-Type': 'application/json' } }, 400],
    ['broadcast 201', 'POST', '/broadcast', { body: { content: 'x' }, headers: { Authorization: `Bearer ${pub}` } }, 201],
    ['broadcast 403', 'POST', '/broadcast', { body: { content: 'x' }, headers: { Authorization: `Bearer ${sub}` } }, 403],
    ['broadcast 401', 'POST', '/broadcast', { body: { content: 'x' } }, 401],
    ['events 401', 'GET', '/events', {}, 401],
    ['admin 401', 'POST', '/admin/stop', {}, 401],
    ['healthz 200', 'GET', '/healthz', {}, 200],
    ['example 200', 'GET', '/example', {}, 200],
    ['404', 'GET', '/nope', {}, 404],
    ['405', 'GET', '/login', {}, 405],
  ];

  test('listed origin is echoed on every response', async () => {
    for (const origin of [A, B]) {
      for (const [what, m, p, o, status] of calls()) {
        const r = await request(srv, m, p, { ...o, headers: { ...(o.headers || {}), Origin: origin } });
        assert.equal(r.status, status, `${what} status`);
        assertCors(r, origin, `${what} (${origin})`);
      }
    }
  });

  test('listed origin is echoed on the event stream head', async () => {
    const s = new SseStream(srv.port, { bearer: sub, headers: { Origin: B } });
    const h = await s.ready();
    s.close();
    assert.equal(h.status, 200);
    assertCors({ headers: h.headers }, B, 'events 200');
  });

  test('unlisted origin is not echoed (nor *)', async () => {
    for (const [what, m, p, o, status] of calls()) {
      const r = await request(srv, m, p, { ...o, headers: { ...(o.headers || {}), Origin: EVIL } });
      assert.equal(r.status, status, `${what} status`);
      assertNotEchoed(r, what);
    }
    const s = new SseStream(srv.port, { bearer: sub, headers: { Origin: EVIL } });
    const h = await s.ready();
    s.close();
    assertNotEchoed({ headers: h.headers }, 'events 200');
    // Near misses of a listed origin are not listed either.
    for (const o of [`${A}/`, 'http://app-a.test', `${A}.evil.test`, 'HTTP://APP-A.TEST:8000x']) {
      const r = await request(srv, 'GET', '/healthz', { headers: { Origin: o } });
      assert.notEqual(r.headers['access-control-allow-origin'], o, `near miss ${o} echoed`);
      assert.notEqual(r.headers['access-control-allow-origin'], '*');
    }
  });

  test('OPTIONS preflight -> 204 with CORS headers, no body', async () => {
    for (const p of ['/events', '/login', '/broadcast', '/admin/stop', '/nope']) {
      const r = await request(srv, 'OPTIONS', p, {
        headers: { Origin: A, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type, authorization' },
      });
      assert.equal(r.status, 204, p);
      assert.equal(r.buf.length, 0, `${p}: empty body`);
      assertCors(r, A, `OPTIONS ${p}`);
    }
    const r = await request(srv, 'OPTIONS', '/events', { headers: { Origin: EVIL, 'Access-Control-Request-Method': 'GET' } });
    assert.equal(r.status, 204);
    assertNotEchoed(r, 'OPTIONS from unlisted origin');
  });

  test('credentialed cross-origin flow: login from origin, cookie back on /events', async () => {
    const l = await login(srv, 'sub', 'xo-user', { headers: { Origin: A } });
    assert.equal(l.status, 200);
    assertCors(l, A, 'login');
    const s = new SseStream(srv.port, { headers: { Origin: A, Cookie: `sse_token=${l.cookie}` } });
    const h = await s.ready();
    s.close();
    assert.equal(h.status, 200);
    assert.equal(h.headers['access-control-allow-origin'], A);
  });
});

/** `*` without credentials: what a browser accepts for reads that carry no cookie. */
function assertAnyOrigin(res, what) {
  assert.equal(res.headers['access-control-allow-origin'], '*', `${what}: ACAO`);
  assert.equal(res.headers['access-control-allow-credentials'], undefined, `${what}: no credentials`);
  const m = tokens(res.headers['access-control-allow-methods']);
  for (const x of ['get', 'post', 'options']) assert.ok(m.includes(x), `${what}: methods has ${x}`);
  assert.ok(tokens(res.headers.vary).includes('origin'), `${what}: Vary has Origin`);
}

describe('CORS with ALLOWED_ORIGIN=*', () => {
  let srv;
  before(async () => { srv = await startServer({ env: { ALLOWED_ORIGIN: '*', SSE_HEARTBEAT: 60 } }); });
  after(async () => { if (srv) await srv.stopClean(); });

  test('any origin may read, never with credentials', async () => {
    for (const o of ['http://x.test', 'https://y.example:4443', 'null']) {
      const r = await request(srv, 'GET', '/healthz', { headers: { Origin: o } });
      assert.equal(r.status, 200);
      assertAnyOrigin(r, `* ${o}`);
      const p = await request(srv, 'OPTIONS', '/events', { headers: { Origin: o, 'Access-Control-Request-Method': 'GET' } });
      assert.equal(p.status, 204);
      assertAnyOrigin(p, `* OPTIONS ${o}`);
      const l = await login(srv, 'sub', 'star-user', { headers: { Origin: o } });
      assert.equal(l.status, 200);
      assertAnyOrigin(l, `* login ${o}`);
    }
    const r = await request(srv, 'GET', '/healthz');
    assertAnyOrigin(r, '* without Origin');
    const s = new SseStream(srv.port, { bearer: await tokenFor(srv, 'sub'), headers: { Origin: EVIL } });
    const h = await s.ready();
    s.close();
    assert.equal(h.status, 200);
    assertAnyOrigin({ headers: h.headers }, '* events 200');
  });
});

describe('CORS with listed origins and *', () => {
  let srv;
  before(async () => { srv = await startServer({ env: { ALLOWED_ORIGIN: `${A}, *`, SSE_HEARTBEAT: 60 } }); });
  after(async () => { if (srv) await srv.stopClean(); });

  test('a listed origin keeps the credentialed echo, others get * only', async () => {
    const r = await request(srv, 'GET', '/healthz', { headers: { Origin: A } });
    assertCors(r, A, 'listed with *');
    for (const o of [EVIL, B, `${A}.evil.test`]) {
      const u = await request(srv, 'GET', '/healthz', { headers: { Origin: o } });
      assertAnyOrigin(u, `unlisted ${o} with *`);
      const p = await request(srv, 'OPTIONS', '/login', { headers: { Origin: o, 'Access-Control-Request-Method': 'POST' } });
      assertAnyOrigin(p, `OPTIONS unlisted ${o} with *`);
    }
  });

  test('the cookie flow works for the listed origin', async () => {
    const l = await login(srv, 'sub', 'xo-star', { headers: { Origin: A } });
    assert.equal(l.status, 200);
    assertCors(l, A, 'login');
    const s = new SseStream(srv.port, { headers: { Origin: A, Cookie: `sse_token=${l.cookie}` } });
    const h = await s.ready();
    s.close();
    assert.equal(h.status, 200);
    assertCors({ headers: h.headers }, A, 'events with the cookie');
  });
});

describe('CORS with no ALLOWED_ORIGIN', () => {
  let srv;
  before(async () => { srv = await startServer({ env: { ALLOWED_ORIGIN: null } }); });
  after(async () => { if (srv) await srv.stopClean(); });

  test('no origin is echoed', async () => {
    const r = await request(srv, 'GET', '/healthz', { headers: { Origin: EVIL } });
    assert.equal(r.status, 200);
    assertNotEchoed(r, 'healthz');
    const o = await request(srv, 'OPTIONS', '/events', { headers: { Origin: EVIL, 'Access-Control-Request-Method': 'GET' } });
    assert.equal(o.status, 204);
    assertNotEchoed(o, 'OPTIONS');
  });
});

// A configured origin once overran the CORS buffers of the response heads.
describe('ALLOWED_ORIGIN length', () => {
  const origin = (n) => `https://${'a'.repeat(n - 'https://'.length)}`;

  test('an origin over 511 bytes: exit 1 naming the setting, before listening', () => {
    for (const n of [512, 2000, 60000]) {
      const r = runBinary([], { defaults: true, timeout: 3000, env: { ALLOWED_ORIGIN: `${A}, ${origin(n)}`, SSE_DB: 'off' } });
      assert.equal(r.code, 1, `${n}: exit ${r.code} signal ${r.signal}; stderr ${r.stderr.slice(0, 300)}`);
      assert.match(r.stderr, /ALLOWED_ORIGIN/, `${n}: ${r.stderr.slice(0, 300)}`);
      assert.doesNotMatch(r.stderr, /listening on/, `${n}: the server started`);
    }
  });

  test('a 511-byte origin is echoed whole on responses and on the stream head', async () => {
    const long = origin(511);
    const srv = await startServer({ env: { ALLOWED_ORIGIN: long, SSE_HEARTBEAT: 60 } });
    try {
      for (const o of [long, EVIL]) { /* echoed, or named as the configured one */
        const r = await request(srv, 'GET', '/healthz', { headers: { Origin: o } });
        assert.equal(r.status, 200);
        assertCors(r, long, `healthz (${o.slice(0, 20)})`);
      }
      const s = new SseStream(srv.port, { bearer: await tokenFor(srv, 'sub'), headers: { Origin: long } });
      const h = await s.ready();
      s.close();
      assert.equal(h.status, 200);
      assertCors({ headers: h.headers }, long, 'events 200');
    } finally {
      await srv.stopClean();
    }
  });
});
