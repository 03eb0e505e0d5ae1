// Every route and status code of PROTOCOL.md §2 and the spec: /login,
// /broadcast, /admin/stop (refusals; the 200 is in shutdown.test.mjs),
// /healthz, /example, the client files, 404, 405, OPTIONS; the login
// cookie and JWT; JSON answers stay valid JSON whatever the user sent.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  ACCOUNTS, APP_KEY, JSON_CT, b64, broadcast, decodeJwt, headerValues, login, mintJwt,
  openStream, request, startServer, tokenFor,
} from './lib/server.mjs';

const TTL = 120;
let srv;
let pubToken;
let subToken;
let adminToken;

before(async () => {
  srv = await startServer({ env: { SSE_TOKEN_TTL: TTL, SSE_HEARTBEAT: 60 } });
  pubToken = await tokenFor(srv, 'pub');
  subToken = await tokenFor(srv, 'sub');
  adminToken = await tokenFor(srv, 'admin');
});
after(async () => { if (srv) await srv.stopClean(); });

function assertJsonError(res, status) {
  assert.equal(res.status, status, `status (body ${res.body})`);
  assert.match(res.headers['content-type'] || '', JSON_CT);
  assert.ok(res.json && typeof res.json === 'object', `body is JSON: ${res.body}`);
  assert.equal(typeof res.json.error, 'string', `{"error": string}: ${res.body}`);
  assert.ok(res.json.error.length > 0);
}

describe('POST /login', () => {
  test('200 with {"token","id"} JSON, HS256 JWT with username and exp', async () => {
    const t0 = Math.floor(Date.now() / 1000);
    const r = await login(srv, 'sub', 'user-42');
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], JSON_CT);
    assert.deepEqual(Object.keys(r.json).sort(), ['id', 'token']);
    assert.equal(r.json.id, 'user-42');
    const { header, payload, signature } = decodeJwt(r.json.token);
    assert.equal(header.alg, 'HS256');
    assert.equal(payload.username, ACCOUNTS.sub.username);
    assert.ok(Number.isInteger(payload.exp), 'exp is an integer');
    assert.ok(Math.abs(payload.exp - (t0 + TTL)) <= 5, `exp ${payload.exp} ~ now+${TTL} (${t0 + TTL})`);
    const [h, p] = r.json.token.split('.');
    const expected = crypto.createHmac('sha256', APP_KEY).update(`${h}.${p}`).digest('base64url');
    assert.equal(signature, expected, 'signed with SSE_APP_KEY');
  });

  test('id defaults to "" when absent', async () => {
    const r = await login(srv, 'pub');
    assert.equal(r.status, 200);
    assert.equal(r.json.id, '');
    assert.equal(typeof r.json.token, 'string');
  });

  test('every account kind can log in', async () => {
    for (const who of ['sub', 'pub', 'admin']) {
      const r = await login(srv, who, 'x');
      assert.equal(r.status, 200, who);
    }
  });

  test('cookie sse_token = standard padded base64 of exactly the body, with attributes', async () => {
    const t0 = Date.now();
    const r = await login(srv, 'sub', 'cookie-user?>>');
    assert.equal(r.status, 200);
    assert.equal(r.setCookie.length, 1, `one Set-Cookie: ${JSON.stringify(r.setCookie)}`);
    const sc = r.setCookie[0];
    const [pair, ...attrs] = sc.split(';').map((s) => s.trim());
    assert.equal(pair, `sse_token=${b64(r.buf)}`, 'value is base64 of the exact body bytes');
    assert.equal(Buffer.from(r.cookie, 'base64').toString('utf8'), r.body);
    const a = Object.fromEntries(attrs.map((x) => { const i = x.indexOf('='); return i < 0 ? [x.toLowerCase(), true] : [x.slice(0, i).toLowerCase(), x.slice(i + 1)]; }));
    assert.equal(a.path, '/');
    assert.equal(a['max-age'], String(TTL));
    assert.equal(a.httponly, true);
    assert.equal(String(a.samesite).toLowerCase(), 'lax');
    const exp = Date.parse(a.expires);
    assert.ok(!Number.isNaN(exp), `Expires parses: ${a.expires}`);
    assert.ok(Math.abs(exp - (t0 + TTL * 1000)) <= 5000, `Expires ~ now+ttl: ${a.expires}`);
  });

  test('400 on malformed JSON', async () => {
    for (const body of ['{"username":', 'not json', '', '{"username":"a","password":"b"} trailing']) {
      const r = await request(srv, 'POST', '/login', { body, headers: { 'Content-Type': 'application/json' } });
      assertJsonError(r, 400);
      assert.equal(headerValues(r, 'set-cookie').length, 0);
    }
  });

  test('415 unless the body is sent as application/json (media type in any case, parameters allowed)', async () => {
    // Right credentials, valid JSON: only the declared type is wrong. A cross-site
    // <form enctype="text/plain"> can send exactly this body, without a preflight.
    const body = JSON.stringify({ username: ACCOUNTS.sub.username, password: ACCOUNTS.sub.password, id: 'csrf' });
    const refused = [undefined, 'text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=----x', 'application/jsonp', 'application/json5', ''];
    for (const ct of refused) {
      const headers = ct === undefined ? {} : { 'Content-Type': ct };
      const r = await request(srv, 'POST', '/login', { body, headers });
      assertJsonError(r, 415);
      assert.match(r.json.error, /application\/json/, r.body);
      assert.equal(headerValues(r, 'set-cookie').length, 0, `no cookie with ${ct}`);
    }
    for (const ct of ['application/json', 'Application/JSON', 'application/json; charset=utf-8', 'APPLICATION/JSON;charset=UTF-8']) {
      const r = await request(srv, 'POST', '/login', { body, headers: { 'Content-Type': ct } });
      assert.equal(r.status, 200, `${ct}: ${r.status} ${r.body}`);
      assert.equal(headerValues(r, 'set-cookie').length, 1);
    }
  });

  test('a 415 is not counted as a failed login', async () => {
    const s = await startServer({ env: { SSE_LOGIN_MAX_FAILURES: 2, SSE_DB: 'off' } });
    try {
      const wrong = JSON.stringify({ username: ACCOUNTS.sub.username, password: 'wrong' });
      for (let i = 0; i < 10; i++) {
        const r = await request(s, 'POST', '/login', { body: wrong, headers: { 'Content-Type': 'text/plain' } });
        assert.equal(r.status, 415, `attempt ${i}: ${r.status} ${r.body}`);
      }
      const r = await login(s, 'sub');
      assert.equal(r.status, 200, `after ten 415s: ${r.status} ${r.body}`);
      assert.ok(!s.lines.some((l) => /login-failed|login-blocked/.test(l)), 'a 415 was logged as a failed login');
    } finally {
      await s.stopClean();
    }
  });

  test('401 on wrong password, unknown user, empty credentials', async () => {
    const cases = [
      { username: ACCOUNTS.sub.username, password: 'wrong' },
      { username: ACCOUNTS.sub.username, password: ACCOUNTS.pub.password },
      { username: 'nobody', password: ACCOUNTS.sub.password },
      { username: '', password: '' },
      { username: ACCOUNTS.sub.username, password: '' },
    ];
    for (const c of cases) {
      const r = await login(srv, c, 'x');
      assertJsonError(r, 401);
      assert.equal(r.setCookie.length, 0, 'no cookie on failure');
    }
  });

  test('JSON stays valid with quotes, backslashes, control chars, non-ASCII in id', async () => {
    const ids = [
      'q"uo"te',
      'back\\slash\\',
      'ctl\u0001\u0002\u001f\t\b\f',
      'é☃😀 漢字',
      '</script><b>"\\u0000"',
    ];
    for (const id of ids) {
      const r = await login(srv, 'sub', id);
      assert.equal(r.status, 200, JSON.stringify(id));
      assert.ok(r.json, `valid JSON for ${JSON.stringify(id)}: ${r.body}`);
      assert.equal(r.json.id, id);
      assert.equal(Buffer.from(r.cookie, 'base64').toString('utf8'), r.body);
    }
  });

  test('401 JSON stays valid with hostile username', async () => {
    const r = await login(srv, { username: 'a"b\\c\u0001é\n', password: 'x"\\' }, 'i');
    assertJsonError(r, 401);
  });
});

describe('POST /broadcast', () => {
  test('201 {"id": N} for publisher and admin', async () => {
    const a = await broadcast(srv, pubToken, { content: 'hello' });
    assert.equal(a.status, 201, a.body);
    assert.match(a.headers['content-type'], JSON_CT);
    assert.ok(Number.isInteger(a.json.id) && a.json.id >= 1, a.body);
    const b = await broadcast(srv, adminToken, { content: 'hello', type: 't', user: 'u' });
    assert.equal(b.status, 201, b.body);
    assert.ok(b.json.id > a.json.id, 'ids increase');
  });

  test('401 without token, with a bad token, with a non-Bearer scheme', async () => {
    assertJsonError(await broadcast(srv, null, { content: 'x' }), 401);
    assertJsonError(await broadcast(srv, 'not.a.jwt', { content: 'x' }), 401);
    assertJsonError(await broadcast(srv, `${pubToken}x`, { content: 'x' }), 401);
    assertJsonError(await broadcast(srv, null, { content: 'x' }, { headers: { Authorization: `Basic ${b64('a:b')}` } }), 401);
    assertJsonError(await broadcast(srv, null, { content: 'x' }, { headers: { Authorization: 'Bearer ' } }), 401);
  });

  test('401 for expired publisher token and for one signed with another key', async () => {
    const { payload } = decodeJwt(pubToken);
    const fresh = mintJwt(payload);
    assert.equal((await broadcast(srv, fresh, { content: 'control' })).status, 201, 'control: re-signed token works');
    assertJsonError(await broadcast(srv, mintJwt({ ...payload, exp: Math.floor(Date.now() / 1000) - 60 }), { content: 'x' }), 401);
    assertJsonError(await broadcast(srv, mintJwt(payload, 'another-key'), { content: 'x' }), 401);
    assertJsonError(await broadcast(srv, mintJwt(payload, null, { alg: 'none', typ: 'JWT' }), { content: 'x' }), 401);
  });

  test('403 for the subscriber role', async () => {
    assertJsonError(await broadcast(srv, subToken, { content: 'x' }), 403);
  });

  test('400 on bad JSON or content not a string', async () => {
    const bodies = [
      '{"content":',
      'nope',
      '',
      '{"content": 5}',
      '{"content": null}',
      '{"content": {"a":1}}',
      '{"content": ["x"]}',
      '{"type":"t"}',
      '[]',
    ];
    for (const body of bodies) {
      const r = await broadcast(srv, pubToken, body, { headers: { 'Content-Type': 'application/json' } });
      assertJsonError(r, 400);
    }
  });

  test('400 on invalid UTF-8 inside the JSON', async () => {
    const body = Buffer.concat([Buffer.from('{"content":"a'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    const r = await broadcast(srv, pubToken, body, { headers: { 'Content-Type': 'application/json' } });
    assertJsonError(r, 400);
  });

  test('400 on CR or LF in type or user', async () => {
    for (const p of [{ type: 'a\nb' }, { type: 'a\rb' }, { type: 'a\r\nevent: x' }, { user: 'u\n' }, { user: '\ru' }, { user: 'u\r\ndata: x' }]) {
      assertJsonError(await broadcast(srv, pubToken, { content: 'x', ...p }), 400);
    }
  });
});

describe('POST /admin/stop refusals', () => {
  test('401 without or with an invalid token', async () => {
    assertJsonError(await request(srv, 'POST', '/admin/stop'), 401);
    assertJsonError(await request(srv, 'POST', '/admin/stop', { headers: { Authorization: 'Bearer x.y.z' } }), 401);
    const { payload } = decodeJwt(adminToken);
    assertJsonError(await request(srv, 'POST', '/admin/stop', { headers: { Authorization: `Bearer ${mintJwt(payload, 'other-key')}` } }), 401);
    assertJsonError(await request(srv, 'POST', '/admin/stop', { headers: { Authorization: `Bearer ${mintJwt({ ...payload, exp: 1000 })}` } }), 401);
  });

  test('401 for subscriber and publisher (as goSSE, PROTOCOL.md §2); server keeps running', async () => {
    assertJsonError(await request(srv, 'POST', '/admin/stop', { headers: { Authorization: `Bearer ${subToken}` } }), 401);
    assertJsonError(await request(srv, 'POST', '/admin/stop', { headers: { Authorization: `Bearer ${pubToken}` } }), 401);
    const h = await request(srv, 'GET', '/healthz');
    assert.equal(h.status, 200);
    assert.equal(srv.exitInfo, null);
  });
});

describe('other routes', () => {
  test('GET /healthz -> 200 {"status":"ok"}', async () => {
    const r = await request(srv, 'GET', '/healthz');
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], JSON_CT);
    assert.deepEqual(r.json, { status: 'ok' });
    const q = await request(srv, 'GET', '/healthz?x=1');
    assert.equal(q.status, 200);
  });

  test('GET /example -> 200 text/html page', async () => {
    const r = await request(srv, 'GET', '/example');
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^text\/html/i);
    assert.match(r.body, /<html/i);
    assert.match(r.body, /EventSource|SSEClient|sse-client/);
  });

  test('GET /client/sse-client.js and .mjs serve the JS client', async () => {
    for (const p of ['/client/sse-client.js', '/client/sse-client.mjs']) {
      const r = await request(srv, 'GET', p);
      assert.equal(r.status, 200, p);
      assert.match(r.headers['content-type'], /javascript/i, p);
      assert.match(r.body, /SSEClient/, p);
    }
  });

  test('404 JSON for unknown paths (JSON valid whatever the path)', async () => {
    for (const p of ['/nope', '/events/extra', '/login/', '/%22quote%5C', '/a"b\\c', '/%C3%A9%00']) {
      const r = await request(srv, 'GET', p);
      assertJsonError(r, 404);
    }
  });

  test('405 JSON with Allow for wrong methods', async () => {
    const cases = [
      ['GET', '/login', 'POST'],
      ['PUT', '/login', 'POST'],
      ['POST', '/events', 'GET'],
      ['DELETE', '/events', 'GET'],
      ['GET', '/broadcast', 'POST'],
      ['GET', '/admin/stop', 'POST'],
      ['POST', '/healthz', 'GET'],
      ['POST', '/example', 'GET'],
    ];
    for (const [m, p, allow] of cases) {
      const r = await request(srv, m, p, m === 'POST' ? { body: '{}' } : {});
      assertJsonError(r, 405);
      const a = (r.headers.allow || '').split(',').map((s) => s.trim());
      assert.ok(a.includes(allow), `${m} ${p}: Allow "${r.headers.allow}" includes ${allow}`);
    }
  });

  test('OPTIONS on any path -> 204, empty body (CORS headers: cors.test.mjs)', async () => {
    for (const p of ['/events', '/login', '/broadcast', '/admin/stop', '/healthz', '/whatever']) {
      const r = await request(srv, 'OPTIONS', p);
      assert.equal(r.status, 204, p);
      assert.equal(r.buf.length, 0);
      assert.equal(r.headers['content-length'] ?? '0', '0');
    }
  });

  test('subscribe works for every role', async () => {
    for (const t of [subToken, pubToken, adminToken]) {
      const s = await openStream(srv, { bearer: t });
      assert.equal(s.status, 200);
      s.close();
    }
  });
});
