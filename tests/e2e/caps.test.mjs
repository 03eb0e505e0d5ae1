// Caps (issue 5, "Caps"): SSE_MAX_CONNS_PER_IP refuses a client address's
// connections past the cap with 503 (other addresses unaffected, a closed
// connection frees its slot); SSE_MAX_STREAMS_PER_USER closes the user's
// oldest stream when a new one opens; both are off by default.
//
// Client sockets bind their local address (127.0.0.1, 127.0.0.2, ...) so
// the server sees distinct client addresses on loopback. Publishes come from
// 127.0.0.9 so they never take one of the capped address's slots.

import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  ACCOUNTS, HOST, mintJwt, openStream, parseResponses, rawRequest, sleep, startServer, until,
} from './lib/server.mjs';

const now = () => Math.floor(Date.now() / 1000);
const subToken = (sub) => mintJwt({ username: ACCOUNTS.sub.username, iat: now(), exp: now() + 600, ...(sub ? { sub } : {}) });
const pubToken = () => mintJwt({ username: ACCOUNTS.pub.username, iat: now(), exp: now() + 600 });
let seq = 0;
const uniq = (p) => `${p}-${process.pid}-${++seq}`;

/** POST /broadcast from a given local address; resolves the event id (insists on 201). */
function publishFrom(srv, payload, localAddress = '127.0.0.9') {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify(payload);
    const req = http.request({
      host: HOST, port: srv.port, method: 'POST', path: '/broadcast', localAddress, agent: false, timeout: 5000,
      headers: { Authorization: `Bearer ${pubToken()}`, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      let t = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { t += c; });
      res.on('end', () => (res.statusCode === 201 ? resolve(JSON.parse(t).id) : reject(new Error(`broadcast -> ${res.statusCode} ${t}`))));
    });
    req.on('timeout', () => req.destroy(new Error('broadcast timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * A raw connection from localAddress. With `stream: jwt` it sends GET /events
 * with that Bearer token. Collects every byte; `ended` resolves on close.
 */
class RawConn {
  constructor(port, localAddress, { stream } = {}) {
    this.chunks = [];
    this.endInfo = null;
    this.sock = net.connect({ host: HOST, port, localAddress });
    this.ended = new Promise((r) => { this._end = r; });
    const end = (how) => { if (!this.endInfo) { this.endInfo = { how, at: Date.now() }; this._end(this.endInfo); } };
    this.sock.on('data', (c) => this.chunks.push(c));
    this.sock.on('end', () => end('end'));
    this.sock.on('error', (e) => end(e.code === 'ECONNRESET' ? 'reset' : `error:${e.code}`));
    this.sock.on('close', () => end(this._ours ? 'destroyed' : 'end'));
    if (stream) {
      this.sock.on('connect', () => {
        this.sock.write(rawRequest({ path: '/events', headers: { Authorization: `Bearer ${stream}` }, host: `${HOST}:${port}` }));
      });
    }
  }

  get text() { return Buffer.concat(this.chunks).toString('latin1'); }

  /** The status of the response head, or null when the connection closed without one. */
  async status(timeout = 3000) {
    const end = Date.now() + timeout;
    while (Date.now() < end) {
      const m = /^HTTP\/1\.1 (\d{3})[^\r\n]*\r\n[\s\S]*?\r\n\r\n/.exec(this.text);
      if (m) return Number(m[1]);
      if (this.endInfo) return null;
      await sleep(10);
    }
    throw new Error(`no response head within ${timeout} ms (got ${JSON.stringify(this.text.slice(0, 200))})`);
  }

  async waitText(re, timeout = 3000) {
    await until(() => re.test(this.text), timeout, `${re} on a raw stream (got ${JSON.stringify(this.text.slice(-200))})`);
  }

  close() { this._ours = true; this.sock.destroy(); }
}

/** Open a stream from localAddress and insist on 200. */
async function streamFrom(srv, localAddress, jwt) {
  const c = new RawConn(srv.port, localAddress, { stream: jwt });
  const st = await c.status();
  assert.equal(st, 200, `GET /events from ${localAddress}: ${st} ${c.text.slice(0, 200)}`);
  await c.waitText(/retry:/);
  return c;
}

/**
 * A connection from localAddress that sends nothing: the 503 the server writes
 * at accept, then the close. The head and body are split by hand (not by
 * Content-Length) so a wrong length is reported by its own test.
 */
async function refusedFrom(srv, localAddress) {
  const c = new RawConn(srv.port, localAddress);
  await Promise.race([c.ended, sleep(3000)]);
  const got = c.text;
  c.close();
  assert.ok(c.endInfo && c.endInfo.how !== 'destroyed', `connection from ${localAddress} past the cap stayed open; got ${JSON.stringify(got.slice(0, 200))}`);
  const i = got.indexOf('\r\n\r\n');
  assert.ok(i > 0, `no response head from ${localAddress}: ${JSON.stringify(got.slice(0, 200))}`);
  const head = got.slice(0, i);
  const body = Buffer.from(got.slice(i + 4), 'latin1');
  assert.match(head, /^HTTP\/1\.1 503 /, head);
  assert.match(head, /\r\ncontent-type: application\/json/i, head);
  assert.equal(typeof JSON.parse(body.toString('utf8')).error, 'string', body.toString('utf8'));
  const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
  return { head, body, declared: cl ? Number(cl[1]) : null };
}

/** Try, until timeout, to open a stream from localAddress; resolve the open RawConn. */
async function streamWhenAccepted(srv, localAddress, jwt, timeout = 3000) {
  const end = Date.now() + timeout;
  let last = '';
  while (Date.now() < end) {
    const c = new RawConn(srv.port, localAddress, { stream: jwt });
    const st = await c.status().catch(() => null);
    if (st === 200) { await c.waitText(/retry:/); return c; }
    last = `${st} ${c.text.slice(0, 120)}`;
    c.close();
    await sleep(50);
  }
  throw new Error(`no stream accepted from ${localAddress} within ${timeout} ms; last: ${last}`);
}

describe('SSE_MAX_CONNS_PER_IP=3', () => {
  let srv;
  before(async () => { srv = await startServer({ env: { SSE_MAX_CONNS_PER_IP: 3, SSE_HEARTBEAT: 60 } }); });
  after(async () => { if (srv) await srv.stopClean(); });

  test('the 503 is a well-formed HTTP response: Content-Length equals the body bytes', async () => {
    const jwt = subToken();
    const a = [];
    for (let i = 0; i < 3; i++) a.push(await streamWhenAccepted(srv, '127.0.0.1', jwt));
    const r = await refusedFrom(srv, '127.0.0.1');
    for (const c of a) c.close();
    assert.match(r.head, /\r\nConnection: close/i, r.head);
    assert.equal(r.declared, r.body.length,
      `Content-Length: ${r.declared} but ${r.body.length} body bytes (${JSON.stringify(r.body.toString('latin1'))}) before the close`);
    const { responses } = parseResponses(Buffer.concat([Buffer.from(`${r.head}\r\n\r\n`, 'latin1'), r.body]));
    assert.equal(responses.length, 1, 'a strict HTTP parser finds no complete response');
  });

  test('the 4th connection from 127.0.0.1 gets 503; 127.0.0.2 still connects; a closed one frees its slot', async () => {
    const jwt = subToken();
    const a = [];
    for (let i = 0; i < 3; i++) a.push(await streamFrom(srv, '127.0.0.1', jwt));
    await refusedFrom(srv, '127.0.0.1');
    // A request sent at once also does not get a stream.
    const eager = new RawConn(srv.port, '127.0.0.1', { stream: jwt });
    const est = await eager.status().catch(() => null);
    eager.close();
    assert.notEqual(est, 200, 'a 4th stream from 127.0.0.1 was accepted');
    await srv.waitForLog(/refused ip=127\.0\.0\.1 reason=per-address-limit/, 1000);

    const b = await streamFrom(srv, '127.0.0.2', jwt);
    // The refusals did not disturb the open streams.
    const n = uniq('all');
    await publishFrom(srv, { content: n });
    for (const c of [...a, b]) await c.waitText(new RegExp(`data: ${n}\\n`));
    for (const c of [...a, b]) assert.equal(c.endInfo, null);

    // Closing one lets exactly one more in.
    a[0].close();
    const a4 = await streamWhenAccepted(srv, '127.0.0.1', jwt);
    await refusedFrom(srv, '127.0.0.1');
    for (const c of [a[1], a[2], a4, b]) c.close();
  });

  test('refused and closed connections do not leak slots; idle connections count too', async () => {
    const jwt = subToken();
    // Whatever the previous test left, all three slots come back.
    const first = await streamWhenAccepted(srv, '127.0.0.1', jwt);
    const second = await streamFrom(srv, '127.0.0.1', jwt);
    // An idle connection (no request yet) also holds a slot.
    const idle = new RawConn(srv.port, '127.0.0.1');
    await new Promise((r) => idle.sock.once('connect', r));
    await sleep(100);
    assert.equal(idle.endInfo, null, `the idle 3rd connection was closed: ${JSON.stringify(idle.text)}`);
    for (let i = 0; i < 5; i++) await refusedFrom(srv, '127.0.0.1');
    // Other addresses are never counted against 127.0.0.1, and have their own caps.
    const others = [];
    for (let i = 0; i < 3; i++) others.push(await streamFrom(srv, '127.0.0.3', jwt));
    await refusedFrom(srv, '127.0.0.3');
    for (const c of [first, second, idle, ...others]) c.close();
    const again = [await streamWhenAccepted(srv, '127.0.0.1', jwt)];
    for (let i = 0; i < 2; i++) again.push(await streamWhenAccepted(srv, '127.0.0.1', jwt));
    await refusedFrom(srv, '127.0.0.1');
    for (const c of again) c.close();
  });
});

describe('SSE_MAX_STREAMS_PER_USER=2', () => {
  let srv;
  before(async () => { srv = await startServer({ env: { SSE_MAX_STREAMS_PER_USER: 2, SSE_HEARTBEAT: 60 } }); });
  after(async () => { if (srv) await srv.stopClean(); });

  const gotData = (s, d) => s.events.some((e) => e.data.join('\n') === d);

  test('a third stream of a user closes the oldest cleanly; the others and other users keep receiving', async () => {
    const U = uniq('capu');
    const V = uniq('capv');
    const u1 = await openStream(srv, { bearer: subToken(U) });
    const u2 = await openStream(srv, { bearer: subToken(U) });
    const v1 = await openStream(srv, { bearer: subToken(V) });
    const v2 = await openStream(srv, { bearer: subToken(V) });
    // Nobody is evicted at the cap itself.
    const pre = uniq('pre');
    await publishFrom(srv, { content: pre });
    for (const s of [u1, u2, v1, v2]) await s.waitForData(pre);
    assert.ok(!srv.lines.some((l) => /\bevict\b/.test(l)), 'evict logged at the cap');

    const u3 = await openStream(srv, { bearer: subToken(U) });
    await u1.waitFor((s) => s.endInfo, 3000, 'the oldest stream of U to be closed');
    assert.equal(u1.endInfo.how, 'end', `oldest stream closed by ${u1.endInfo.how}, expected a clean end (FIN)`);
    assert.match(u1.text, /\n\n$/, `oldest stream did not end on a frame boundary: ${JSON.stringify(u1.text.slice(-80))}`);
    const line = await srv.waitForLog(/\bevict\b/, 2000);
    assert.match(line, new RegExp(`user=${U}\\b`), line);

    const n = uniq('after');
    await publishFrom(srv, { content: `${n}-u`, user: U });
    await publishFrom(srv, { content: `${n}-v`, user: V });
    await publishFrom(srv, { content: `${n}-all` });
    for (const s of [u2, u3]) { await s.waitForData(`${n}-u`); await s.waitForData(`${n}-all`); }
    for (const s of [v1, v2]) { await s.waitForData(`${n}-v`); await s.waitForData(`${n}-all`); }
    for (const s of [u2, u3, v1, v2]) assert.equal(s.endInfo, null, 'a stream that should stay open was closed');
    assert.ok(!gotData(u1, `${n}-u`), 'the evicted stream still got events');
    assert.equal(srv.lines.filter((l) => /\bevict\b/.test(l)).length, 1, srv.lines.filter((l) => /\bevict\b/.test(l)).join('\n'));

    // The next one evicts the now-oldest (u2), not u3.
    const u4 = await openStream(srv, { bearer: subToken(U) });
    await u2.waitFor((s) => s.endInfo, 3000, 'u2 to be closed by the 4th stream');
    await sleep(200);
    assert.equal(u3.endInfo, null, 'u3 was closed instead of (or as well as) the oldest');
    const m = uniq('last');
    await publishFrom(srv, { content: m, user: U });
    for (const s of [u3, u4]) await s.waitForData(m);
    for (const s of [u3, u4, v1, v2]) s.close();
  });

  test('a stream the client closed frees its place: the next one evicts nobody', async () => {
    const U = uniq('capw');
    const w1 = await openStream(srv, { bearer: subToken(U) });
    const w2 = await openStream(srv, { bearer: subToken(U) });
    const evicts = () => srv.lines.filter((l) => /\bevict\b/.test(l) && l.includes(`user=${U}`)).length;
    w2.close();
    await until(() => srv.lines.some((l) => /disconnect /.test(l) && l.includes(`user=${U} `)), 3000, 'the server to see w2 close');
    const w3 = await openStream(srv, { bearer: subToken(U) });
    const n = uniq('w');
    await publishFrom(srv, { content: n, user: U });
    for (const s of [w1, w3]) await s.waitForData(n);
    assert.equal(w1.endInfo, null, 'w1 was evicted although only two streams of the user were open');
    assert.equal(evicts(), 0);
    w1.close();
    w3.close();
  });
});

describe('caps are off by default', () => {
  let srv;
  before(async () => { srv = await startServer({ env: { SSE_HEARTBEAT: 60 } }); });
  after(async () => { if (srv) await srv.stopClean(); });

  test('many streams of one user from one address all stay open and receive', async () => {
    const U = uniq('many');
    const streams = [];
    for (let i = 0; i < 20; i++) streams.push(await openStream(srv, { bearer: subToken(U) }));
    const n = uniq('fan');
    await publishFrom(srv, { content: n, user: U });
    for (const s of streams) await s.waitForData(n);
    await sleep(200);
    for (const s of streams) assert.equal(s.endInfo, null, 'a stream was closed with caps off');
    assert.ok(!srv.lines.some((l) => /\bevict\b|per-address-limit/.test(l)), srv.lines.filter((l) => /evict|refused/.test(l)).join('\n'));
    for (const s of streams) s.close();
  });
});

