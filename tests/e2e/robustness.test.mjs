// Robustness regressions: pipelined requests whose answers pile up on a
// client that never reads, tokens naming a type twice, a replay larger than
// the subscriber's queue cap, requests arriving one byte per segment, a read
// buffer filled to its last byte behind pending publishes, exactly-once
// delivery across reconnects that land on other workers, Last-Event-ID values
// the server never issued, HTTP/0.9 request lines, and a stop in the middle
// of pipelined publishes. Every test starts its own server, so a crash in one
// does not hide the others, and checks at the end that the server is still up
// and its stderr holds no sanitizer report.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import {
  ACCOUNTS, BIN, serverEnv, SseStream, mintJwt, openStream, parseResponses, rawExchange, rawRequest, request,
  sanitizerReport, sleep, startServer, tokenFor, tokenParam,
} from './lib/server.mjs';
import {
  allNotifications, authQuery, evs, idsOf, keepAlivePublisher, publishAll, subscribe,
} from './lib/history.mjs';
import { rawConn, rssKiB, writeBytewise } from './lib/raw.mjs';
import { httpsRequest, makeCert, startTlsServer, tlsConnect, tlsTempDir } from './lib/tls.mjs';

const nowSec = () => Math.floor(Date.now() / 1000);

/** The last lines of the server's stderr, for assertion messages. */
function tail(srv, n = 25) {
  return srv.lines.slice(-n).join('\n');
}

/** The server is still running and has printed no sanitizer report. */
function assertAlive(srv, what) {
  const report = sanitizerReport(srv.stderr);
  assert.equal(report, null, `${what}: sanitizer report:\n${report}`);
  assert.equal(srv.exitInfo, null, `${what}: the server exited ${JSON.stringify(srv.exitInfo)}; stderr:\n${tail(srv)}`);
}

/** Alive, and answers /healthz on a fresh connection. */
async function assertServing(srv, what) {
  assertAlive(srv, what);
  const h = await request(srv, 'GET', '/healthz', { timeout: 3000 }).catch((e) => ({ status: e.message }));
  assert.equal(h.status, 200, `${what}: /healthz on a new connection; stderr:\n${tail(srv)}`);
  assertAlive(srv, what);
}

/** A stream opened now receives a broadcast published now. */
async function assertDelivers(srv, pubJwt, subJwt, what) {
  const s = await openStream(srv, { bearer: subJwt });
  try {
    const content = `probe-${Math.random().toString(36).slice(2)}`;
    const r = await request(srv, 'POST', '/broadcast', {
      headers: { Authorization: `Bearer ${pubJwt}` }, body: { content }, timeout: 3000,
    });
    assert.equal(r.status, 201, `${what}: publish -> ${r.status} ${r.body}`);
    await s.waitForData(content, 3000);
  } finally { s.close(); }
}

/** Stop the server; a crash or a sanitizer report before or during the stop fails the test. */
async function finish(srv) {
  if (srv.exitInfo) {
    const report = sanitizerReport(srv.stderr);
    throw new Error(`the server had already exited ${JSON.stringify(srv.exitInfo)}${report ? `\n${report}` : `; stderr:\n${tail(srv)}`}`);
  }
  await srv.stopClean();
}

/** A serialized POST /broadcast with a Bearer token. */
function broadcastReq(jwt, payload, headers = {}) {
  return rawRequest({
    method: 'POST', path: '/broadcast', body: payload,
    headers: { Authorization: `Bearer ${jwt}`, 'Content-Type': 'application/json', ...headers },
  });
}

/** A POST /broadcast of exactly `size` bytes (head and body), content padded with 'p'. */
function broadcastOfSize(jwt, size, tag) {
  let pad = Math.max(0, size - broadcastReq(jwt, { content: tag }).length);
  for (;;) {
    const r = broadcastReq(jwt, { content: tag + 'p'.repeat(pad) });
    if (r.length === size) return r;
    pad += size - r.length; // the Content-Length digits may have changed
    if (pad < 0) throw new Error(`cannot build a broadcast of ${size} bytes`);
  }
}

/** Asserts n answers, every one a 201, with ids increasing; returns the ids. */
function assertAll201InOrder(rs, n, what) {
  const bad = rs.map((r, i) => ({ answer: i, status: r.status, body: r.text.slice(0, 80) })).filter((x) => x.status !== 201);
  assert.deepEqual(bad.slice(0, 3), [], `${what}: ${bad.length} of ${rs.length} answers were not 201`);
  assert.equal(rs.length, n, `${what}: ${rs.length} answers for ${n} requests`);
  const ids = rs.map((r) => JSON.parse(r.text).id);
  for (let i = 1; i < ids.length; i++) {
    assert.ok(ids[i] > ids[i - 1], `${what}: ids not increasing at answer ${i}: ${ids.slice(Math.max(0, i - 2), i + 2)}`);
  }
  return ids;
}

// ----------------------------------------------------------- finding 1 ----

describe('answers that pile up on a client that does not read', () => {
  test('pipelined /notifications then /events does not crash and stays bounded (finding 1)', { timeout: 30000 }, async () => {
    const srv = await startServer({ env: { SSE_HEARTBEAT: 60 } });
    try {
      const pub = await tokenFor(srv, 'pub');
      const sub = await tokenFor(srv, 'sub', 'greedy');
      const honestJwt = await tokenFor(srv, 'sub', 'honest');
      // Some history, so each /notifications?limit=500 answer is about 300 KB.
      await publishAll(srv, pub, Array.from({ length: 300 }, (_, i) => ({ content: `h${i}-${'x'.repeat(1000)}` })));
      const honest = await subscribe(srv, honestJwt, 'honest');
      const rss0 = rssKiB(srv.pid);
      assert.ok(rss0 > 0, 'VmRSS readable');

      // One write: 100 pipelined history reads and a stream, on a socket that is never read.
      const q = authQuery(sub, 'greedy');
      const reqs = [];
      for (let i = 0; i < 100; i++) reqs.push(rawRequest({ path: `/notifications?limit=500&${q}` }));
      reqs.push(rawRequest({ path: `/events?${q}` }));
      const greedy = rawConn(srv.port, { read: false });
      await greedy.connected;
      greedy.sock.write(Buffer.concat(reqs));

      let peak = rss0;
      for (let i = 0; i < 40 && !srv.exitInfo; i++) {
        await sleep(50);
        peak = Math.max(peak, rssKiB(srv.pid) ?? 0);
      }
      await assertServing(srv, 'while a client ignores 100 pipelined answers');
      const grownMiB = (peak - rss0) / 1024;
      assert.ok(grownMiB < 64, `RSS grew by ${grownMiB.toFixed(1)} MiB (from ${rss0} KiB to ${peak} KiB)`);

      // An honest subscriber, opened before and after, still gets what is published.
      const content = `after-flood-${Date.now()}`;
      const r = await request(srv, 'POST', '/broadcast', { headers: { Authorization: `Bearer ${pub}` }, body: { content }, timeout: 3000 });
      assert.equal(r.status, 201, `publish during the flood -> ${r.status} ${r.body}`);
      await honest.waitForData(content, 3000);
      await assertDelivers(srv, pub, honestJwt, 'during the flood');
      honest.close();
      greedy.close();
      await sleep(200);
      await assertServing(srv, 'after the flooding client left');
      peak = Math.max(peak, rssKiB(srv.pid) ?? 0);
      assert.ok((peak - rss0) / 1024 < 64, `RSS grew by ${((peak - rss0) / 1024).toFixed(1)} MiB`);
    } finally { await finish(srv); }
  });

  test('a stream dropped by the queue cap behind a pipelined answer leaves no dangling connection (finding 1)', { timeout: 30000 }, async () => {
    // With a 1 KiB queue cap the JS client's answer alone passes the cap when
    // the stream starts behind it; the stream is dropped at once. The server
    // must then forget the connection entirely: later reads, publishes and
    // streams must not touch it.
    const srv = await startServer({ env: { SSE_HEARTBEAT: 60, SSE_MAX_QUEUE_BYTES: 1024 } });
    try {
      const pub = await tokenFor(srv, 'pub');
      const sub = await tokenFor(srv, 'sub', 'u1');
      const q = `token=${encodeURIComponent(tokenParam(sub, 'u1'))}`;
      const payload = Buffer.concat([rawRequest({ path: '/client/sse-client.js' }), rawRequest({ path: `/events?${q}` })]);
      for (let round = 0; round < 6; round++) {
        const c = rawConn(srv.port, { read: round % 2 === 1 });
        await c.connected;
        await c.write(payload);
        await sleep(100);
        assertAlive(srv, `round ${round}, after the pipelined script + stream`);
        const r = await request(srv, 'POST', '/broadcast', { headers: { Authorization: `Bearer ${pub}` }, body: { content: `r${round}` }, timeout: 3000 })
          .catch((e) => ({ status: e.message }));
        assert.equal(r.status, 201, `round ${round}: publish after the drop -> ${r.status}; stderr:\n${tail(srv)}`);
        await sleep(50);
        c.write('x'); // a late byte from the dropped client
        c.close();
        await sleep(50);
        await assertServing(srv, `round ${round}`);
      }
      await assertDelivers(srv, pub, sub, 'after the dropped streams');
    } finally { await finish(srv); }
  });
});

// ----------------------------------------------------------- finding 2 ----

describe('a type named twice', () => {
  test('a token whose types claim names "a" twice gets each event of type a once (finding 2)', { timeout: 20000 }, async () => {
    const srv = await startServer({ env: { SSE_HEARTBEAT: 60 } });
    try {
      const pub = await tokenFor(srv, 'pub');
      const jwt = mintJwt({
        username: ACCOUNTS.sub.username, role: 'subscriber', sub: 'dup-u', types: ['a', 'a'], iat: nowSec(), exp: nowSec() + 600,
      });
      const plain = await openStream(srv, { bearer: jwt });
      const asked = await openStream(srv, { bearer: jwt, path: '/events?type=a' });
      const steps = [
        { content: 'typed-bcast', type: 'a' },
        { content: 'typed-user', type: 'a', user: 'dup-u' },
        { content: 'untyped-bcast' },
        { content: 'other-type', type: 'b' },
        { content: 'end', user: 'dup-u' },
      ];
      const ids = await publishAll(srv, pub, steps);
      const want = [
        { id: ids[0], event: 'a', data: 'typed-bcast' },
        { id: ids[1], event: 'a', data: 'typed-user' },
        { id: ids[2], event: undefined, data: 'untyped-bcast' },
        { id: ids[4], event: undefined, data: 'end' },
      ];
      for (const [name, s] of [['no type asked', plain], ['type=a', asked]]) {
        await s.waitForData('end', 3000);
        await sleep(100);
        assert.deepEqual(evs(s), want, `live, ${name}`);
        s.close();
      }
      // The replay, then one live event, through the same token.
      const rp = await openStream(srv, { bearer: jwt, headers: { 'Last-Event-ID': '0' } });
      const [liveId] = await publishAll(srv, pub, [{ content: 'live-a', type: 'a' }]);
      await rp.waitForData('live-a', 3000);
      await sleep(100);
      assert.deepEqual(evs(rp), [...want, { id: liveId, event: 'a', data: 'live-a' }], 'replay then live');
      rp.close();
      await assertServing(srv, 'end');
    } finally { await finish(srv); }
  });

  test('?type=a,a&type=a does not duplicate events, with or without a types claim (finding 2)', { timeout: 20000 }, async () => {
    const srv = await startServer({ env: { SSE_HEARTBEAT: 60 } });
    try {
      const pub = await tokenFor(srv, 'pub');
      const ordinary = await tokenFor(srv, 'sub', 'q-u');
      const claimed = mintJwt({
        username: ACCOUNTS.sub.username, role: 'subscriber', sub: 'q-u', types: ['a', 'a'], iat: nowSec(), exp: nowSec() + 600,
      });
      const streams = [
        await openStream(srv, { bearer: ordinary, path: '/events?type=a,a&type=a' }),
        await openStream(srv, { bearer: claimed, path: '/events?type=a,a&type=a' }),
        await openStream(srv, { path: `/events?type=a&type=a,a&${authQuery(ordinary, 'q-u')}` }),
      ];
      const ids = await publishAll(srv, pub, [
        { content: 'x', type: 'a' }, { content: 'y', type: 'a', user: 'q-u' }, { content: 'z', type: 'b' }, { content: 'end' },
      ]);
      for (const [i, s] of streams.entries()) {
        await s.waitForData('end', 3000);
        await sleep(100);
        assert.deepEqual(evs(s), [
          { id: ids[0], event: 'a', data: 'x' }, { id: ids[1], event: 'a', data: 'y' }, { id: ids[3], event: undefined, data: 'end' },
        ], `stream ${i}`);
        s.close();
      }
      await assertServing(srv, 'end');
    } finally { await finish(srv); }
  });
});

// ----------------------------------------------------------- finding 3 ----

describe('a replay larger than the queue cap', () => {
  const N = 1060;
  const CONTENT = 2048;

  /**
   * A client that resumes like EventSource: it connects with Last-Event-ID
   * (0 first, then the last id it saw) and reconnects when the server ends the
   * stream, until it has `want` events, `maxConns` connections were used or
   * `deadline` passed. pauseMs > 0 makes it a slow reader: after every chunk
   * it stops reading for that long.
   */
  async function resume(srv, jwt, user, want, { maxConns = 5, deadline, pauseMs = 0 }) {
    const got = [];
    const conns = [];
    let last = 0;
    while (got.length < want && conns.length < maxConns && Date.now() < deadline) {
      const s = new SseStream(srv.port, {
        path: `/events?${authQuery(jwt, user)}`, headers: { 'Last-Event-ID': String(last) }, keep: false,
        onFrame: (f) => {
          if (!f.data.length) return;
          got.push({ id: Number(f.id), event: f.event, data: f.data.join('\n') });
          if (f.event !== 'reset') last = Number(f.id);
        },
      });
      if (pauseMs > 0) {
        s.sock.on('data', () => {
          s.sock.pause();
          setTimeout(() => { if (!s.sock.destroyed) s.sock.resume(); }, pauseMs);
        });
      }
      const before = got.length;
      await s.waitFor((x) => got.length >= want || x.endInfo, Math.max(0, deadline - Date.now()), 'all events or the end').catch(() => {});
      conns.push({ events: got.length - before, end: s.endInfo?.how ?? 'open' });
      s.close();
    }
    return { got, conns };
  }

  function check(srv, ids, r, what) {
    const drops = srv.lines.filter((l) => /\bdrop\b/.test(l)).length;
    const detail = `${what}: ${r.got.length}/${ids.length} events over ${r.conns.length} connection(s) ${JSON.stringify(r.conns)}, ${drops} drop line(s) in the log`;
    const resets = r.got.filter((e) => e.event === 'reset');
    assert.deepEqual(resets, [], `${detail}: no reset expected`);
    const gotIds = r.got.map((e) => e.id);
    assert.equal(gotIds.length, ids.length, detail);
    assert.deepEqual(gotIds, ids, `${detail}: every id once, in order`);
    for (let i = 0; i < r.got.length; i++) {
      if (!r.got[i].data.startsWith(`${i}:`) || r.got[i].data.length !== CONTENT) {
        assert.fail(`${what}: event ${r.got[i].id} has the wrong content ${JSON.stringify(r.got[i].data.slice(0, 40))}`);
      }
    }
  }

  test('a client that missed more than its queue cap receives all of it, in order, once (finding 3)', { timeout: 40000 }, async () => {
    const srv = await startServer({ env: { SSE_HEARTBEAT: 60, SSE_MAX_QUEUE_BYTES: 1048576 } });
    try {
      const pub = await tokenFor(srv, 'pub');
      const sub = await tokenFor(srv, 'sub', 'late');
      const ids = await publishAll(srv, pub, Array.from({ length: N }, (_, i) => ({ content: `${i}:`.padEnd(CONTENT, 'c') })));
      assert.equal(ids.length, N);

      const fast = await resume(srv, sub, 'late', N, { deadline: Date.now() + 10000 });
      check(srv, ids, fast, 'reading normally');
      await assertServing(srv, 'after the catch-up');

      const slow = await resume(srv, sub, 'late', N, { deadline: Date.now() + 12000, pauseMs: 25 });
      check(srv, ids, slow, 'a slow reader (25 ms pause after every chunk)');
      await assertServing(srv, 'after the slow catch-up');
    } finally { await finish(srv); }
  });
});

// ----------------------------------------------------------- finding 4 ----

describe('requests arriving one byte per segment', () => {
  test('an 8 KB request head sent one byte per write gets its answer (finding 4)', { timeout: 20000 }, async () => {
    const srv = await startServer({ env: { SSE_HEARTBEAT: 60, SSE_MAX_HEADER_BYTES: 8192 } });
    try {
      const headers = {};
      // 50 headers (the server keeps at most 64 per request) of 145 bytes each.
      for (let i = 0; i < 50; i++) headers[`X-Filler-${String(i).padStart(3, '0')}`] = String(i).padEnd(145, 'v');
      const req = rawRequest({ path: '/healthz', headers });
      assert.ok(req.length > 8000 && req.length <= 8192, `head of ${req.length} bytes`);
      const c = rawConn(srv.port);
      await writeBytewise(c, req, { every: 8, pauseMs: 1 });
      const rs = await c.responses(1, 5000);
      assert.equal(rs[0].status, 200, rs[0].head);
      assert.deepEqual(JSON.parse(rs[0].text), { status: 'ok' });
      // The connection stays usable.
      await c.write(rawRequest({ path: '/healthz' }));
      assert.equal((await c.responses(2, 3000))[1].status, 200);
      c.close();
      await assertServing(srv, 'end');
    } finally { await finish(srv); }
  });

  test('a chunked POST /broadcast sent one byte per write is accepted with 201 (finding 4)', { timeout: 20000 }, async () => {
    const srv = await startServer({ env: { SSE_HEARTBEAT: 60 } });
    try {
      const pub = await tokenFor(srv, 'pub');
      const s = await openStream(srv, { bearer: await tokenFor(srv, 'sub') });
      const content = Array.from({ length: 40 }, (_, i) => `line ${i} `.padEnd(40, '.')).join('');
      const body = JSON.stringify({ content, type: 'bytewise' });
      let chunked = '';
      for (let i = 0; i < body.length; i += 37) {
        const piece = body.slice(i, i + 37);
        chunked += `${piece.length.toString(16)}\r\n${piece}\r\n`;
      }
      chunked += '0\r\n\r\n';
      const head = `POST /broadcast HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${pub}\r\n`
        + 'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
      const c = rawConn(srv.port);
      await writeBytewise(c, head + chunked, { every: 8, pauseMs: 1 });
      const rs = await c.responses(1, 5000);
      assert.equal(rs[0].status, 201, `${rs[0].head}\n${rs[0].text}`);
      const { id } = JSON.parse(rs[0].text);
      const e = await s.waitForData(content, 3000);
      assert.equal(Number(e.id), id);
      assert.equal(e.event, 'bytewise');
      c.close();
      s.close();
      await assertServing(srv, 'end');
    } finally { await finish(srv); }
  });
});

// ----------------------------------------------------------- finding 5 ----

describe('a read buffer filled to its last byte', () => {
  // The request limits, set explicitly: a connection buffers at most one
  // largest request (head + body) plus 1 KiB of what follows it.
  const HEAD = 8192;
  const BODY = 65536;
  const LIMIT = HEAD + BODY + 1024;
  const env = { SSE_HEARTBEAT: 60, SSE_MAX_HEADER_BYTES: HEAD, SSE_MAX_BODY_BYTES: BODY };

  /** Send `parts` (serialized requests) in one write and expect n answers, all 201, ids increasing. */
  async function pipeline(srv, parts, what) {
    const c = rawConn(srv.port);
    await c.connected;
    await c.write(Buffer.concat(parts));
    let rs;
    try {
      rs = await c.responses(parts.length, 10000);
    } catch (e) {
      rs = e.responses || [];
    }
    c.close();
    return assertAll201InOrder(rs, parts.length, what);
  }

  test('400 pipelined publishes in one write, more than the read buffer holds, all get 201 in order (finding 5)', { timeout: 20000 }, async () => {
    const srv = await startServer({ env });
    try {
      const pub = await tokenFor(srv, 'pub');
      const s = await openStream(srv, { bearer: await tokenFor(srv, 'sub') });
      const all = [];
      for (let round = 0; round < 3; round++) {
        const parts = Array.from({ length: 400 }, (_, i) => broadcastReq(pub, { content: `m${round}-${i}` }));
        assert.ok(Buffer.concat(parts).length > LIMIT + 64 * parts[0].length, 'more than the buffer plus 64 requests');
        const ids = await pipeline(srv, parts, `round ${round}: 400 pipelined publishes`);
        all.push(...ids);
        await s.waitFor((x) => x.events.length >= all.length, 5000, `${all.length} events`);
        assert.deepEqual(idsOf(s), all, 'the stream got every published event in order');
        assert.deepEqual(s.events.slice(-400).map((e) => e.data[0]), parts.map((_, i) => `m${round}-${i}`));
      }
      s.close();
      await assertServing(srv, 'end');
    } finally { await finish(srv); }
  });

  test('behind 64 pending publishes, a request ending exactly at the full buffer\'s last byte is answered, no 431 (finding 5)', { timeout: 20000 }, async () => {
    const srv = await startServer({ env });
    try {
      const pub = await tokenFor(srv, 'pub');
      for (let round = 0; round < 3; round++) {
        // 64 publishes (each waits for its commit), then a large one and 64
        // more sized so that, once the first 64 are taken out, the rest fills
        // the buffer exactly: the last request ends on its last byte.
        const a = Array.from({ length: 64 }, (_, i) => broadcastReq(pub, { content: `a${round}-${String(i).padStart(2, '0')}` }));
        const c = Array.from({ length: 64 }, (_, i) => broadcastReq(pub, { content: `c${round}-${String(i).padStart(2, '0')}` }));
        const cBytes = Buffer.concat(c).length;
        const b = broadcastOfSize(pub, LIMIT - cBytes, `b${round}-`);
        const parts = [...a, b, ...c];
        assert.equal(Buffer.concat(parts).length - Buffer.concat(a).length, LIMIT);
        await pipeline(srv, parts, `round ${round}: 129 pipelined publishes`);
      }
      await assertServing(srv, 'end');
    } finally { await finish(srv); }
  });

  test('64 pending publishes with a nearly full buffer behind them are all answered in order (finding 5)', { timeout: 20000 }, async () => {
    const srv = await startServer({ env });
    try {
      const pub = await tokenFor(srv, 'pub');
      for (let round = 0; round < 3; round++) {
        // After the first 64 are taken out, the buffer holds all but 1000 of
        // its bytes and more requests wait in the socket behind it.
        const a = Array.from({ length: 64 }, (_, i) => broadcastReq(pub, { content: `a${round}-${String(i).padStart(2, '0')}` }));
        const c = Array.from({ length: 64 }, (_, i) => broadcastReq(pub, { content: `c${round}-${String(i).padStart(2, '0')}` }));
        const b = broadcastOfSize(pub, LIMIT - 1000 - Buffer.concat(c).length, `b${round}-`);
        const d = Array.from({ length: 64 }, (_, i) => broadcastReq(pub, { content: `d${round}-${String(i).padStart(2, '0')}` }));
        await pipeline(srv, [...a, b, ...c, ...d], `round ${round}: 193 pipelined publishes`);
      }
      await assertServing(srv, 'end');
    } finally { await finish(srv); }
  });
});

// ----------------------------------------------------------- finding 6 ----

describe('exactly once across reconnects', () => {
  test('a client reconnecting with its last id (landing on any of 4 workers) never gets an id twice and misses none (finding 6)', { timeout: 30000 }, async () => {
    const srv = await startServer({ env: { SSE_HEARTBEAT: 60, SSE_WORKERS: 4 } });
    try {
      const pub = await tokenFor(srv, 'pub');
      const sub = await tokenFor(srv, 'sub', 'hopper');
      let stop = false;
      const published = [];
      const pubErrors = [];
      const publishers = Array.from({ length: 2 }, async (_, p) => {
        const k = keepAlivePublisher(srv, pub);
        try {
          for (let i = 0; !stop; i++) {
            const r = await k.post({ content: `p${p}-${i}` });
            if (r.status !== 201) { pubErrors.push(`${r.status} ${r.body}`); return; }
            published.push(r.json.id);
          }
        } finally { k.close(); }
      });
      await sleep(100);

      const counts = new Map(); // id -> times received, over all connections
      const violations = [];    // ids at or below the Last-Event-ID a connection sent
      const resets = [];
      let last = null;
      let conns = 0;
      const t0 = Date.now();
      // For 8 s, each connection takes 1 to 3 events, then the client closes
      // it and reconnects at once with the last id it saw. A new connection
      // may land on a worker that has not yet handled the events the client
      // already saw on another one.
      while (Date.now() - t0 < 8000 && !srv.exitInfo) {
        const sent = last;
        const want = 1 + (conns++ % 3);
        await new Promise((resolve) => {
          let got = 0;
          const s = new SseStream(srv.port, {
            path: `/events?${authQuery(sub, 'hopper')}`,
            headers: sent === null ? {} : { 'Last-Event-ID': String(sent) },
            keep: false,
            onFrame: (f) => {
              if (!f.data.length) return;
              if (f.event === 'reset') { resets.push({ sent, frame: f.data.join('') }); return; }
              const id = Number(f.id);
              if (sent !== null && id <= sent) violations.push({ conn: conns, lastEventId: sent, got: id });
              counts.set(id, (counts.get(id) || 0) + 1);
              if (last === null || id > last) last = id;
              if (++got >= want) { s.close(); resolve(); }
            },
          });
          s.ended.then(resolve);
          setTimeout(() => { s.close(); resolve(); }, 2000);
        });
      }
      stop = true;
      await Promise.all(publishers);
      assert.deepEqual(pubErrors, []);
      assertAlive(srv, 'after the reconnect loop');
      // One more event once the publishers stopped; a last connection catches up to it.
      const maxId = (await publishAll(srv, pub, [{ content: 'final' }]))[0];
      const fin = await subscribe(srv, sub, 'hopper', { lastId: last });
      await fin.waitFor((x) => x.events.some((e) => Number(e.id) >= maxId), 10000, `id ${maxId} after Last-Event-ID ${last}`);
      await sleep(100);
      for (const e of fin.events) {
        if (e.event === 'reset') { resets.push({ sent: last, frame: e.data.join('') }); continue; }
        const id = Number(e.id);
        if (id <= last) violations.push({ conn: 'final', lastEventId: last, got: id });
        counts.set(id, (counts.get(id) || 0) + 1);
      }
      fin.close();

      assert.ok(conns >= 50, `only ${conns} reconnects in 8 s`);
      const first = Math.min(...counts.keys());
      const dups = [...counts].filter(([, n]) => n > 1).map(([id, n]) => `${id}x${n}`);
      const missing = [];
      for (let id = first; id <= maxId; id++) if (!counts.has(id)) missing.push(id);
      assert.deepEqual({
        violations: violations.slice(0, 10), duplicates: dups.slice(0, 10), missing: missing.slice(0, 10), resets: resets.slice(0, 3),
      }, { violations: [], duplicates: [], missing: [], resets: [] },
      `${conns} connections, ids ${first}..${maxId}: ${violations.length} at or below Last-Event-ID, ${dups.length} duplicated, ${missing.length} missing`);
      await assertServing(srv, 'end');
    } finally { await finish(srv); }
  });
});

// ----------------------------------------------------------- finding 7 ----

describe('Last-Event-ID the server never issued', () => {
  const cases = [
    ['2^64 in the header', { lastId: '18446744073709551616' }],
    ['a 300-digit number in the header', { lastId: `9${'0'.repeat(299)}` }],
    ['2^64 in the lastEventId parameter', { query: 'lastEventId=18446744073709551616' }],
  ];
  test('ids past the largest 64-bit id get one reset event, then the live stream (finding 7)', { timeout: 20000 }, async () => {
    const srv = await startServer({ env: { SSE_HEARTBEAT: 60 } });
    try {
      const pub = await tokenFor(srv, 'pub');
      const sub = await tokenFor(srv, 'sub', 'u7');
      await publishAll(srv, pub, [{ content: 'h1' }, { content: 'h2' }, { content: 'h3' }]);
      const got = {};
      const want = {};
      for (const [name, opts] of cases) {
        const s = await subscribe(srv, sub, 'u7', opts);
        await sleep(150); // the reset comes first
        const content = `live-${Math.random().toString(36).slice(2)}`;
        const [id] = await publishAll(srv, pub, [{ content }]);
        await s.waitForData(content, 3000);
        await sleep(50);
        s.close();
        got[name] = evs(s).map((e) => (e.event === 'reset' ? { ...e, data: JSON.parse(e.data) } : e));
        // The reset carries the newest id (the one before the live event) and the bounds.
        want[name] = [
          { id: id - 1, event: 'reset', data: { oldest: 1, latest: id - 1 } },
          { id, event: undefined, data: content },
        ];
      }
      assert.deepEqual(got, want);
      await assertServing(srv, 'end');
    } finally { await finish(srv); }
  });
});

// ----------------------------------------------------------- finding 8 ----

describe('HTTP/0.9 request lines', () => {
  test('a request line without a version gets 400 and the connection is closed (finding 8)', { timeout: 20000 }, async () => {
    const srv = await startServer({ env: { SSE_HEARTBEAT: 60 } });
    try {
      const sub = await tokenFor(srv, 'sub');
      const lines = [
        'GET /login\r\n\r\n',
        'GET /healthz\r\n\r\n',
        'GET /nope\r\n\r\n',
        `GET /events?token=${encodeURIComponent(tokenParam(sub, 'u8'))}\r\n\r\n`,
      ];
      for (const l of lines) {
        const r = await rawExchange(srv.port, l, { timeout: 3000 });
        const shown = JSON.stringify(l.slice(0, 20));
        assert.match(r.text, /^HTTP\/1\.1 400 /, `${shown} -> ${JSON.stringify(r.text.slice(0, 60))}`);
        assert.notEqual(r.closed, 'timeout', `${shown}: the connection is closed`);
        const { responses } = parseResponses(r.buf);
        assert.equal(responses.length, 1, `${shown}: one answer, then the close`);
      }
      await assertServing(srv, 'end');
    } finally { await finish(srv); }
  });
});

// ----------------------------------------------------------- finding 9 ----

describe('a stop during pipelined publishes', () => {
  test('every stored event was acknowledged with 201 and delivered live before the stream ended (finding 9)', { timeout: 40000 }, async () => {
    // 200 pipelined publishes (less than a connection buffers), then SIGTERM
    // 0 to 20 ms after the write: the stop lands at varying points of the
    // batches of publishes waiting for their commit.
    for (const delay of [0, 1, 2, 3, 5, 8, 12, 20]) {
      const srv = await startServer({ env: { SSE_HEARTBEAT: 60 } });
      let rs;
      let live;
      try {
        const pub = await tokenFor(srv, 'pub');
        const subJwt = await tokenFor(srv, 'sub', 'watcher');
        const stream = await subscribe(srv, subJwt, 'watcher');
        const parts = Array.from({ length: 200 }, (_, i) => broadcastReq(pub, { content: `s${delay}-${i}` }));
        const c = rawConn(srv.port);
        await c.connected;
        c.sock.write(Buffer.concat(parts));
        if (delay) await sleep(delay);
        const ex = await srv.stop({ signal: 'SIGTERM', timeout: 5000 });
        assert.equal(ex.code, 0, `stop ${delay} ms after the write: exit ${JSON.stringify(ex)}; stderr:\n${tail(srv)}`);
        await Promise.race([stream.ended, sleep(2000)]);
        await c.closed(2000);
        rs = c.parsed().responses;
        c.close();
        stream.close();
        live = new Set(idsOf(stream));
      } finally {
        if (!srv.exitInfo) await srv.stop({ signal: 'SIGKILL' }).catch(() => {});
      }
      const acked = rs.filter((r) => r.status === 201).map((r) => JSON.parse(r.text).id);
      const others = rs.filter((r) => r.status !== 201 && r.status !== 503).map((r) => `${r.status} ${r.text}`);

      // What the store holds, read back by a new server on the same database.
      const again = await startServer({ cwd: srv.cwd, env: { SSE_HEARTBEAT: 60 } });
      try {
        const jwt = await tokenFor(again, 'sub', 'watcher');
        const stored = (await allNotifications(again, jwt, 'watcher')).items.map((i) => i.id).sort((x, y) => x - y);
        const ackedSet = new Set(acked);
        const storedSet = new Set(stored);
        const notAcked = stored.filter((id) => !ackedSet.has(id));
        const notLive = stored.filter((id) => !live.has(id));
        const ackedNotStored = acked.filter((id) => !storedSet.has(id));
        assert.deepEqual({
          others, storedNotAcknowledged: notAcked.slice(0, 10), storedNotDelivered: notLive.slice(0, 10), acknowledgedNotStored: ackedNotStored,
        }, { others: [], storedNotAcknowledged: [], storedNotDelivered: [], acknowledgedNotStored: [] },
        `stop ${delay} ms after the write: ${stored.length} stored, ${acked.length} acknowledged, ${live.size} delivered live, `
          + `${rs.length} answers in all; ${notAcked.length} stored but not acknowledged, ${notLive.length} stored but not delivered`);
      } finally { await finish(again); }
    }
  });
});

// ------------------------------------------- answers that finish out of order ----

describe('pipelined answers prepared on other threads', () => {
  test('a slow login followed by a fast publish and a health check: answers in request order', { timeout: 40000 }, async () => {
    // The login's argon2id check runs on a checker thread and ends after the
    // publish's commit: each answer must still go to the place of its request.
    const made = spawnSync(BIN, ['passwd', '--user', 'dora', '--role', 'subscriber'], {
      input: 'dora-Pw-5t6y7u\n', encoding: 'utf8', timeout: 30000, env: serverEnv({}, { defaults: false }),
    });
    assert.equal(made.status, 0, made.stderr);
    const srv = await startServer({ files: { users: made.stdout }, env: { SSE_USERS_FILE: 'users' } });
    try {
      const pub = await tokenFor(srv, 'pub');
      for (let round = 0; round < 3; round++) {
        const c = rawConn(srv.port);
        await c.connected;
        await c.write(Buffer.concat([
          rawRequest({ method: 'POST', path: '/login', headers: { 'Content-Type': 'application/json' },
            body: { username: 'dora', password: 'dora-Pw-5t6y7u', id: 'dora' } }),
          broadcastReq(pub, { content: `after-login-${round}` }),
          rawRequest({ path: '/healthz' }),
        ]));
        const rs = await c.responses(3, 20000);
        c.close();
        assert.deepEqual(rs.map((r) => r.status), [200, 201, 200], `round ${round}`);
        assert.ok(JSON.parse(rs[0].text).token, 'the first answer is the login\'s');
        assert.ok(JSON.parse(rs[1].text).id > 0, 'the second answer is the publish\'s');
        assert.equal(JSON.parse(rs[2].text).status, 'ok');
      }
      await assertServing(srv, 'after pipelined logins');
    } finally { await finish(srv); }
  });

  test('a /notifications answer holds at most 256 KiB and pages on with next', { timeout: 40000 }, async () => {
    const srv = await startServer({});
    try {
      const pub = await tokenFor(srv, 'pub');
      const sub = await tokenFor(srv, 'sub', 'reader');
      await publishAll(srv, pub, Array.from({ length: 300 }, (_, i) => ({ content: `n${i}-${'y'.repeat(2000)}` })));
      const q = authQuery(sub, 'reader');
      const first = await request(srv, 'GET', `/notifications?limit=500&${q}`, { timeout: 5000 });
      assert.equal(first.status, 200);
      assert.ok(first.body.length <= 256 * 1024, `answer of ${first.body.length} bytes`);
      const page = JSON.parse(first.body);
      assert.ok(page.items.length > 0 && page.items.length < 300, `${page.items.length} items`);
      assert.equal(page.next, page.items.at(-1).id, 'next names the oldest item shown');
      const { items: all, pages } = await allNotifications(srv, sub, 'reader');
      assert.ok(pages.length > 1, `${pages.length} pages`);
      assert.equal(all.length, 300, 'paging with next walks every event once');
      assert.equal(new Set(all.map((x) => x.id)).size, 300);
    } finally { await finish(srv); }
  });

  test('a reading client that pipelines a large answer and then /events gets both, then live events', { timeout: 30000 }, async () => {
    // The stream starts once the answers before it are written, so they do not
    // count against its queue cap.
    const srv = await startServer({ env: { SSE_MAX_QUEUE_BYTES: 65536 } });
    try {
      const pub = await tokenFor(srv, 'pub');
      const sub = await tokenFor(srv, 'sub', 'piper');
      await publishAll(srv, pub, Array.from({ length: 100 }, (_, i) => ({ content: `p${i}-${'z'.repeat(1500)}` })));
      const q = authQuery(sub, 'piper');
      const c = rawConn(srv.port);
      await c.connected;
      await c.write(Buffer.concat([
        rawRequest({ path: `/notifications?limit=500&${q}` }),
        rawRequest({ path: `/notifications?limit=500&${q}` }),
        rawRequest({ path: `/events?${q}` }),
      ]));
      const rs = await c.responses(2, 10000);
      assert.deepEqual(rs.slice(0, 2).map((r) => r.status), [200, 200]);
      const content = `live-after-pipeline-${Date.now()}`;
      for (let i = 0; i < 50 && !c.buf.includes('text/event-stream'); i++) await sleep(20);
      assert.ok(c.buf.includes('text/event-stream'), 'the stream head follows the answers');
      const r = await request(srv, 'POST', '/broadcast', { headers: { Authorization: `Bearer ${pub}` }, body: { content }, timeout: 3000 });
      assert.equal(r.status, 201);
      for (let i = 0; i < 100 && !c.buf.includes(content); i++) await sleep(20);
      assert.ok(c.buf.includes(content), 'the live event arrives on the pipelined stream');
      assert.equal(c.ended, null, 'the stream stays open');
      c.close();
      await assertServing(srv, 'after the pipelined stream');
    } finally { await finish(srv); }
  });
});

describe('a request that closes the connection', () => {
  test('nothing pipelined after a Connection: close publish is taken, even while the commit is pending', { timeout: 20000 }, async () => {
    const srv = await startServer({});
    try {
      const pub = await tokenFor(srv, 'pub');
      const c = rawConn(srv.port);
      await c.connected;
      await c.write(Buffer.concat([
        broadcastReq(pub, { content: 'last-one' }, { Connection: 'close' }),
        broadcastReq(pub, { content: 'must-not-be-taken' }),
        rawRequest({ path: '/healthz' }),
      ]));
      const how = await c.closed(5000);
      assert.ok(how, 'the server closes the connection');
      const { responses } = c.parsed();
      assert.equal(responses.length, 1, `one answer, got ${responses.map((r) => r.status)}`);
      assert.equal(responses[0].status, 201);
      const list = await request(srv, 'GET', `/notifications?limit=10&${authQuery(await tokenFor(srv, 'sub', 'u'), 'u')}`);
      assert.ok(!list.body.includes('must-not-be-taken'), 'the request after the close was not published');
      await assertServing(srv, 'after a closing publish');
    } finally { await finish(srv); }
  });
});

// ------------------------------------------------ found by an attacker's review ----

describe('clients that stop reading or half-close', () => {
  test('a client that never reads its last answer is closed by the idle deadline, even while it keeps sending', { timeout: 30000 }, async () => {
    const srv = await startServer({ env: { SSE_IDLE_TIMEOUT: 2, SSE_HEADER_TIMEOUT: 2 } });
    try {
      const c = rawConn(srv.port, { read: false });
      await c.connected;
      c.sock.setNoDelay(true);
      // Enough answers to fill the socket buffers, then a request that closes the connection.
      for (let i = 0; i < 12; i++) { await c.write(Buffer.from('GET /example HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(40))); await sleep(100); }
      await c.write(Buffer.from('GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      await sleep(300);
      for (let i = 0; i < 5; i++) { await c.write(Buffer.from('Z')); await sleep(200); }
      await sleep(3000); // past the idle deadline; then read what is left, up to the close
      c.sock.resume();
      const gone = await c.closed(8000);
      assert.ok(gone, 'the server gave up on the connection');
      await assertServing(srv, 'after the non-reading client');
    } finally { await finish(srv); }
  });

  test('a request followed by a half-close still gets its answer, and a publish its 201', { timeout: 20000 }, async () => {
    const srv = await startServer({});
    try {
      const pub = await tokenFor(srv, 'pub');
      for (const [what, bytes] of [
        ['healthz', rawRequest({ path: '/healthz' })],
        ['publish', broadcastReq(pub, { content: 'half-closed' })],
        ['two pipelined', Buffer.concat([broadcastReq(pub, { content: 'hc1' }), rawRequest({ path: '/healthz' })])],
      ]) {
        const c = rawConn(srv.port);
        await c.connected;
        await c.write(bytes);
        c.sock.end(); // FIN: nothing more will be sent
        await c.closed(5000);
        const { responses } = c.parsed();
        assert.ok(responses.length >= 1, `${what}: got ${JSON.stringify(c.buf.toString('latin1').slice(0, 120))}`);
        assert.ok([200, 201].includes(responses[0].status), `${what}: status ${responses[0].status}`);
        if (what === 'two pipelined') assert.deepEqual(responses.map((r) => r.status), [201, 200]);
      }
      await assertServing(srv, 'after half-closed clients');
    } finally { await finish(srv); }
  });
});

describe('resets while events are published', () => {
  test('a resume from an id never given or long trimmed: the reset, then every later id once, in order', { timeout: 60000 }, async () => {
    const srv = await startServer({ env: { SSE_HISTORY_MAX_EVENTS: 20, SSE_WORKERS: 2 } });
    try {
      const pub = await tokenFor(srv, 'pub');
      const sub = await tokenFor(srv, 'sub', 'racer');
      await publishAll(srv, pub, Array.from({ length: 60 }, (_, i) => ({ content: `old-${i}` })));
      let stop = false;
      const publisher = (async () => {
        const p = keepAlivePublisher(srv, pub);
        try { while (!stop) await p.post({ content: 'live' }); } finally { p.close(); }
      })();
      const bad = [];
      try {
        for (const lastId of ['-5', '999999999', '18446744073709551616', '1']) {
          for (let k = 0; k < 8; k++) {
            const s = await subscribe(srv, sub, 'racer', { lastId });
            await sleep(150);
            s.close();
            const e = evs(s);
            if (lastId === '1' && e[0]?.event !== 'reset') continue; // not trimmed yet
            assert.equal(e[0]?.event, 'reset', `${lastId}: first frame ${JSON.stringify(e[0])}`);
            const r = Number(e[0].id);
            const rest = e.slice(1).map((x) => Number(x.id));
            if (rest.length && rest[0] !== r + 1) bad.push(`${lastId}: reset ${r} then ${rest.slice(0, 3)}`);
            for (let i = 1; i < rest.length; i++) if (rest[i] !== rest[i - 1] + 1) { bad.push(`${lastId}: gap or repeat ${rest.slice(i - 1, i + 1)}`); break; }
          }
        }
      } finally { stop = true; await publisher; }
      assert.deepEqual(bad, []);
      await assertServing(srv, 'after racing resets');
    } finally { await finish(srv); }
  });
});

describe('a stream that ends during its replay', () => {
  test('evicted while catching up: it is closed, not left open and silent', { timeout: 40000 }, async () => {
    const srv = await startServer({ env: { SSE_MAX_STREAMS_PER_USER: 1, SSE_STREAM_SNDBUF: 4096 } });
    try {
      const pub = await tokenFor(srv, 'pub');
      const sub = await tokenFor(srv, 'sub', 'evictee');
      await publishAll(srv, pub, Array.from({ length: 3000 }, () => ({ content: 'y'.repeat(1000) })));
      const slow = rawConn(srv.port, { read: false });
      await slow.connected;
      await slow.write(rawRequest({ path: `/events?${authQuery(sub, 'evictee')}`, headers: { 'Last-Event-ID': '0' } }));
      await sleep(500);
      const fresh = await subscribe(srv, sub, 'evictee');
      await sleep(200);
      slow.sock.resume(); // read again: what was queued, then the end
      const how = await slow.closed(10000);
      assert.ok(how, `the evicted stream ended; server log:\n${tail(srv, 12)}`);
      fresh.close();
      await assertServing(srv, 'after an eviction during a replay');
    } finally { await finish(srv); }
  });
});

describe('TLS records that hold more requests than are read at once', () => {
  test('90 pipelined publishes in one TLS write, past the 64 answers in preparation: all 90 answered', { timeout: 30000 }, async () => {
    const dir = tlsTempDir();
    const pair = makeCert(dir, 'srv');
    const srv = await startTlsServer(pair, {});
    try {
      const login = await httpsRequest(srv.port, 'POST', '/login', { ca: pair.cert, body: { username: ACCOUNTS.pub.username, password: ACCOUNTS.pub.password } });
      const pub = login.json.token;
      for (const size of [512, 500, 777]) {
        const one = broadcastOfSize(pub, size, `tls-${size}`);
        const s = await tlsConnect(srv.port, { ca: pair.cert });
        let buf = Buffer.alloc(0);
        s.on('data', (d) => { buf = Buffer.concat([buf, d]); });
        s.write(Buffer.concat(Array.from({ length: 90 }, () => one)));
        for (let i = 0; i < 200 && parseResponses(buf).responses.length < 90; i++) await sleep(25);
        s.destroy();
        const statuses = parseResponses(buf).responses.map((r) => r.status);
        assert.equal(statuses.length, 90, `${size}-byte requests: ${statuses.length} answers`);
        assert.ok(statuses.every((x) => x === 201), `${size}: ${statuses}`);
      }
      await assertServing(srv, 'after pipelined TLS publishes').catch(() => {}); // plain /healthz is not served on a TLS port
      assertAlive(srv, 'after pipelined TLS publishes');
    } finally { await finish(srv); }
  });
});
