// Graceful shutdown: SIGTERM, SIGINT and POST /admin/stop end every open
// stream cleanly (FIN after a whole frame, no reset) and exit 0 within 5 s.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ACCOUNTS, openStream, publish, rawExchange, request, sleep, startServer, tokenFor,
} from './lib/server.mjs';

async function openSome(srv, n = 5) {
  const tok = await tokenFor(srv, 'sub');
  const pub = await tokenFor(srv, 'pub');
  const streams = [];
  for (let i = 0; i < n; i++) streams.push(await openStream(srv, { bearer: tok, path: i % 2 ? '/events?type=t' : '/events' }));
  await publish(srv, pub, { content: 'before stop\nsecond line', type: 't' });
  for (const s of streams) await s.waitForData('before stop\nsecond line');
  return { streams, pub };
}

async function assertClosedCleanly(streams) {
  for (const s of streams) {
    const e = await Promise.race([s.ended, sleep(5000).then(() => null)]);
    assert.ok(e, 'stream ended');
    assert.equal(e.how, 'end', `stream ended with FIN, not ${e.how}`);
    assert.ok(s.text.endsWith('\n\n'), `stream ends on a frame boundary: ${JSON.stringify(s.text.slice(-40))}`);
  }
}

describe('graceful shutdown', () => {
  for (const signal of ['SIGTERM', 'SIGINT']) {
    test(`${signal}: streams end cleanly, exit 0 within 5 s`, async () => {
      const srv = await startServer({ env: { SSE_HEARTBEAT: 60 } });
      const { streams } = await openSome(srv);
      // an idle keep-alive connection and a half-sent request too
      const idle = rawExchange(srv.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', { timeout: 6000 });
      const partial = rawExchange(srv.port, 'GET /healthz HTTP/1.1\r\nHo', { timeout: 6000 });
      await sleep(100);
      const r = await srv.stop({ signal, timeout: 5000 });
      assert.equal(r.signal, null, `exited by itself, not killed by ${r.signal}`);
      assert.equal(r.code, 0, `exit code (stderr:\n${srv.stderr})`);
      assert.ok(r.ms < 5000, `exit after ${r.ms} ms`);
      await assertClosedCleanly(streams);
      const [i, p] = await Promise.all([idle, partial]);
      assert.notEqual(i.closed, 'timeout', 'idle connection closed');
      assert.notEqual(p.closed, 'timeout', 'partial connection closed');
      // nothing listens any more
      await assert.rejects(request(srv, 'GET', '/healthz', { timeout: 1000 }));
    });
  }

  test('POST /admin/stop (admin): 200 {"status":"stopping"}, streams end, exit 0', async () => {
    const srv = await startServer({ env: { SSE_HEARTBEAT: 60 } });
    const { streams } = await openSome(srv);
    const admin = await tokenFor(srv, 'admin');
    const t0 = Date.now();
    const r = await request(srv, 'POST', '/admin/stop', { headers: { Authorization: `Bearer ${admin}` } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { status: 'stopping' });
    const x = await srv.waitExit(5000, t0);
    assert.equal(x.signal, null);
    assert.equal(x.code, 0, `exit code (stderr:\n${srv.stderr})`);
    await assertClosedCleanly(streams);
  });

  test('POST /admin/stop with the single SSE_USERNAME account (every role)', async () => {
    const srv = await startServer({
      env: {
        SSE_CLIENT_USERNAME: null, SSE_CLIENT_PASSWORD: null,
        SSE_BROADCASTER_USERNAME: null, SSE_BROADCASTER_PASSWORD: null,
        SSE_ADMIN_USERNAME: null, SSE_ADMIN_PASSWORD: null,
        SSE_USERNAME: 'solo', SSE_PASSWORD: 'solo-Pw-1',
      },
    });
    const tok = await tokenFor(srv, { username: 'solo', password: 'solo-Pw-1' });
    const s = await openStream(srv, { bearer: tok });
    await publish(srv, tok, { content: 'solo says hi' });
    await s.waitForData('solo says hi');
    // the three-account names are not configured
    const other = await request(srv, 'POST', '/login', { body: { username: ACCOUNTS.sub.username, password: ACCOUNTS.sub.password } });
    assert.equal(other.status, 401);
    const r = await request(srv, 'POST', '/admin/stop', { headers: { Authorization: `Bearer ${tok}` } });
    assert.equal(r.status, 200);
    const x = await srv.waitExit(5000);
    assert.equal(x.code, 0);
    await assertClosedCleanly([s]);
  });
});
