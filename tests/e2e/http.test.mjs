// HTTP/1.1 on raw sockets: keep-alive, pipelining, limits (431, 413),
// malformed requests (400 + close), header read timeout (408 / close).

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  ACCOUNTS, HOST, SseStream, parseResponses, publish, rawExchange, rawRequest, request, sleep,
  startServer, tokenFor,
} from './lib/server.mjs';

let srv;
let pub;

before(async () => {
  srv = await startServer({ env: { SSE_MAX_BODY_BYTES: 1024, SSE_HEARTBEAT: 60 } });
  pub = await tokenFor(srv, 'pub');
});
after(async () => { if (srv) await srv.stopClean(); });

/** A raw connection we drive step by step. */
function conn(port) {
  const sock = net.connect({ host: HOST, port });
  let buf = Buffer.alloc(0);
  let ended = null;
  const waiters = new Set();
  const poke = () => { for (const w of waiters) w(); };
  sock.on('data', (c) => { buf = Buffer.concat([buf, c]); poke(); });
  sock.on('end', () => { ended = ended || 'end'; poke(); });
  sock.on('error', (e) => { ended = ended || (e.code === 'ECONNRESET' ? 'reset' : e.code); poke(); });
  sock.on('close', () => { ended = ended || 'close'; poke(); });
  const api = {
    sock,
    get buf() { return buf; },
    get ended() { return ended; },
    write: (d) => sock.write(d),
    /** Wait for n complete responses (counted from the start). */
    async responses(n, timeout = 3000) {
      const end = Date.now() + timeout;
      for (;;) {
        const { responses } = parseResponses(buf);
        if (responses.length >= n) return responses;
        if (ended || Date.now() > end) throw new Error(`got ${responses.length}/${n} responses (ended=${ended}): ${JSON.stringify(buf.toString('latin1').slice(0, 500))}`);
        await new Promise((r) => { const w = () => { waiters.delete(w); r(); }; waiters.add(w); setTimeout(w, 20); });
      }
    },
    async closed(timeout = 3000) {
      const end = Date.now() + timeout;
      while (!ended) {
        if (Date.now() > end) return null;
        await sleep(10);
      }
      return ended;
    },
    close: () => sock.destroy(),
  };
  return api;
}

const healthz = rawRequest({ path: '/healthz' });

describe('keep-alive and pipelining', () => {
  test('two requests on one socket', async () => {
    const c = conn(srv.port);
    c.write(healthz);
    let rs = await c.responses(1);
    assert.equal(rs[0].status, 200);
    assert.deepEqual(JSON.parse(rs[0].text), { status: 'ok' });
    await sleep(100);
    assert.equal(c.ended, null, 'connection kept open after the first response');
    c.write(rawRequest({ method: 'POST', path: '/login', headers: { 'Content-Type': 'application/json' }, body: { username: ACCOUNTS.sub.username, password: ACCOUNTS.sub.password, id: 'ka' } }));
    rs = await c.responses(2);
    assert.equal(rs[1].status, 200);
    assert.equal(JSON.parse(rs[1].text).id, 'ka');
    c.write(healthz);
    rs = await c.responses(3);
    assert.equal(rs[2].status, 200);
    assert.equal(c.ended, null);
    c.close();
  });

  test('three pipelined requests in one write are answered in order', async () => {
    const c = conn(srv.port);
    c.write(Buffer.concat([
      rawRequest({ path: '/healthz' }),
      rawRequest({ method: 'POST', path: '/login', headers: { 'Content-Type': 'application/json' }, body: { username: 'nobody', password: 'x' } }),
      rawRequest({ path: '/no-such-route' }),
    ]));
    const rs = await c.responses(3);
    assert.deepEqual(rs.map((r) => r.status), [200, 401, 404]);
    assert.deepEqual(JSON.parse(rs[0].text), { status: 'ok' });
    assert.equal(typeof JSON.parse(rs[1].text).error, 'string');
    assert.equal(typeof JSON.parse(rs[2].text).error, 'string');
    c.close();
  });

  test('pipelined broadcasts are executed in order', async () => {
    const s = new SseStream(srv.port, { bearer: pub });
    await s.ready();
    const reqs = [];
    for (let i = 0; i < 10; i++) reqs.push(rawRequest({ method: 'POST', path: '/broadcast', headers: { Authorization: `Bearer ${pub}`, 'Content-Type': 'application/json' }, body: { content: `pl-${i}` } }));
    const c = conn(srv.port);
    c.write(Buffer.concat(reqs));
    const rs = await c.responses(10);
    assert.deepEqual(rs.map((r) => r.status), Array(10).fill(201));
    const ids = rs.map((r) => JSON.parse(r.text).id);
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], `ids in order ${ids}`);
    await s.waitForData('pl-9');
    assert.deepEqual(s.events.map((e) => e.data[0]), Array.from({ length: 10 }, (_, i) => `pl-${i}`));
    s.close();
    c.close();
  });

  test('a request split into many small writes', async () => {
    const c = conn(srv.port);
    const bytes = rawRequest({ method: 'POST', path: '/login', headers: { 'Content-Type': 'application/json' }, body: { username: ACCOUNTS.pub.username, password: ACCOUNTS.pub.password } });
    for (let i = 0; i < bytes.length; i += 7) { c.write(bytes.subarray(i, i + 7)); await sleep(2); }
    const rs = await c.responses(1);
    assert.equal(rs[0].status, 200);
    c.close();
  });

  test('Connection: close is honoured', async () => {
    const r = await rawExchange(srv.port, rawRequest({ path: '/healthz', headers: { Connection: 'close' } }));
    assert.equal(r.closed, 'end');
    const { responses } = parseResponses(r.buf);
    assert.equal(responses.length, 1);
    assert.equal(responses[0].status, 200);
  });
});

describe('limits', () => {
  test('head over 8192 bytes -> 431 and close', async () => {
    const big = rawRequest({ path: '/healthz', headers: { 'X-Big': 'a'.repeat(9000) } });
    const r = await rawExchange(srv.port, big);
    assert.match(r.text, /^HTTP\/1\.1 431 /, r.text.slice(0, 200));
    assert.notEqual(r.closed, 'timeout', 'connection closed');
    const many = { };
    for (let i = 0; i < 400; i++) many[`X-H${i}`] = 'v'.repeat(20);
    const r2 = await rawExchange(srv.port, rawRequest({ path: '/healthz', headers: many }));
    assert.match(r2.text, /^HTTP\/1\.1 431 /);
    assert.notEqual(r2.closed, 'timeout');
    const r3 = await rawExchange(srv.port, rawRequest({ path: `/healthz?${'q'.repeat(9000)}` }));
    assert.match(r3.text, /^HTTP\/1\.1 431 /, 'long request line counts');
    assert.notEqual(r3.closed, 'timeout');
  });

  test('head just under the limit is served', async () => {
    const r = await rawExchange(srv.port, rawRequest({ path: '/healthz', headers: { 'X-Big': 'a'.repeat(7000), Connection: 'close' } }));
    assert.match(r.text, /^HTTP\/1\.1 200 /);
  });

  test('431 also when the oversize head trickles in without its end', async () => {
    const r = await rawExchange(srv.port, [
      { data: 'GET /healthz HTTP/1.1\r\nHost: x\r\n' },
      { data: `X-A: ${'a'.repeat(5000)}\r\n`, delay: 20 },
      { data: `X-B: ${'b'.repeat(5000)}\r\n`, delay: 20 },
    ]);
    assert.match(r.text, /^HTTP\/1\.1 431 /);
    assert.notEqual(r.closed, 'timeout');
  });

  test('body over SSE_MAX_BODY_BYTES -> 413 and close', async () => {
    const body = JSON.stringify({ username: 'x', password: 'y', pad: 'p'.repeat(2000) });
    const r = await rawExchange(srv.port, rawRequest({ method: 'POST', path: '/login', headers: { 'Content-Type': 'application/json' }, body }));
    assert.match(r.text, /^HTTP\/1\.1 413 /, r.text.slice(0, 200));
    assert.notEqual(r.closed, 'timeout');
    const r2 = await rawExchange(srv.port, rawRequest({ method: 'POST', path: '/broadcast', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${pub}` }, body: JSON.stringify({ content: 'c'.repeat(2000) }) }));
    assert.match(r2.text, /^HTTP\/1\.1 413 /);
    assert.notEqual(r2.closed, 'timeout');
    // announced length alone is enough: no need to wait for the body
    const r3 = await rawExchange(srv.port, 'POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{');
    assert.match(r3.text, /^HTTP\/1\.1 413 /);
    assert.notEqual(r3.closed, 'timeout');
  });

  test('body at the limit is accepted', async () => {
    const base = JSON.stringify({ content: '' });
    const body = JSON.stringify({ content: 'c'.repeat(1024 - base.length) });
    assert.equal(body.length, 1024);
    const r = await request(srv, 'POST', '/broadcast', { body, headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${pub}` } });
    assert.equal(r.status, 201);
  });

  test('garbage bytes -> 400 and close; server survives', async () => {
    const garbage = [
      Buffer.from([0x00, 0x01, 0x02, 0xff, 0xfe, 0x0d, 0x0a, 0x0d, 0x0a]),
      Buffer.from('16030100a5010000a103035f', 'hex'), // TLS ClientHello start
      'HELLO\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nNoColonHere\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
      'POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{}{}{}',
      'GET\r\n\r\n',
    ];
    for (const g of garbage) {
      const r = await rawExchange(srv.port, g, { timeout: 3000 });
      assert.match(r.text, /^HTTP\/1\.[01] 400 /, `${JSON.stringify(g.toString('latin1'))} -> ${JSON.stringify(r.text.slice(0, 80))}`);
      assert.notEqual(r.closed, 'timeout', `${JSON.stringify(g.toString('latin1'))}: connection not closed`);
    }
    const h = await request(srv, 'GET', '/healthz');
    assert.equal(h.status, 200);
    assert.equal(srv.exitInfo, null);
  });

  test('garbage after a good request on the same connection: 200, then 400 and close', async () => {
    const r = await rawExchange(srv.port, Buffer.concat([healthz, Buffer.from('\x00\x01garbage\r\n\r\n', 'latin1')]));
    const { responses } = parseResponses(r.buf);
    assert.equal(responses[0]?.status, 200);
    assert.equal(responses[1]?.status, 400);
    assert.notEqual(r.closed, 'timeout');
  });
});

describe('timeouts', () => {
  let t;
  before(async () => { t = await startServer({ env: { SSE_HEADER_TIMEOUT: 1, SSE_IDLE_TIMEOUT: 1, SSE_HEARTBEAT: 60 } }); });
  after(async () => { if (t) await t.stopClean(); });

  test('silent connection is closed after SSE_HEADER_TIMEOUT, without a response', async () => {
    const r = await rawExchange(t.port, null, { timeout: 4000 });
    assert.notEqual(r.closed, 'timeout', 'closed by the server');
    assert.ok(r.ms >= 800 && r.ms <= 3000, `closed after ${r.ms} ms`);
    assert.equal(r.buf.length, 0);
  });

  test('partial head -> 408 then close', async () => {
    const r = await rawExchange(t.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n', { timeout: 4000 });
    assert.notEqual(r.closed, 'timeout');
    assert.ok(r.ms >= 800 && r.ms <= 3000, `closed after ${r.ms} ms`);
    assert.match(r.text, /^HTTP\/1\.1 408 /);
  });

  test('a head trickling in byte by byte still times out (deadline, not idle timer)', async () => {
    const steps = [];
    const line = 'GET /healthz HTTP/1.1\r\nX-Slow: ';
    steps.push({ data: line });
    for (let i = 0; i < 30; i++) steps.push({ data: 'a', delay: 100 });
    const r = await rawExchange(t.port, steps, { timeout: 4000 });
    assert.notEqual(r.closed, 'timeout');
    assert.ok(r.ms <= 2500, `closed after ${r.ms} ms`);
    assert.match(r.text, /^HTTP\/1\.1 408 /);
  });

  test('idle keep-alive connection is closed after SSE_IDLE_TIMEOUT', async () => {
    const c = conn(t.port);
    c.write(healthz);
    const rs = await c.responses(1);
    assert.equal(rs[0].status, 200);
    const e = await c.closed(3500);
    assert.ok(e, 'idle connection closed');
    c.close();
  });

  test('an event stream is not closed by header or idle timeouts', async () => {
    const tok = await tokenFor(t, 'sub');
    const p = await tokenFor(t, 'pub');
    const s = new SseStream(t.port, { bearer: tok });
    await s.ready();
    await sleep(2500);
    assert.equal(s.endInfo, null, 'stream still open');
    await publish(t, p, { content: 'still here' });
    await s.waitForData('still here');
    s.close();
  });
});
