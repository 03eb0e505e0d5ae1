// Hostile request shapes: smuggling, header injection, NUL bytes, overlong lines,
// slowloris and thousands of half-open connections. After each, the server must
// still serve everyone else.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  startServer, rawExchange, parseResponses, request, login, openStream, publish, until, sleep, HOST,
} from './lib/server.mjs';

let srv;
let pubToken, subToken;

before(async () => {
  srv = await startServer({ env: { SSE_HEADER_TIMEOUT: '2', ALLOWED_ORIGIN: 'https://app.test' } });
  pubToken = (await login(srv, 'pub')).token;
  subToken = (await login(srv, 'sub')).token;
});
after(async () => { await srv.stopClean(); });

async function stillServes() {
  const h = await request(srv, 'GET', '/healthz');
  assert.equal(h.status, 200);
  assert.equal(srv.exitInfo, null);
}

describe('request smuggling shapes', () => {
  const bodies = '{"content":"smuggled"}';
  const shapes = {
    'Content-Length and Transfer-Encoding':
      `POST /broadcast HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKEN\r\nContent-Length: ${bodies.length}\r\n` +
      `Transfer-Encoding: chunked\r\n\r\n${bodies.length.toString(16)}\r\n${bodies}\r\n0\r\n\r\n`,
    'Transfer-Encoding then Content-Length':
      `POST /broadcast HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKEN\r\nTransfer-Encoding: chunked\r\n` +
      `Content-Length: 4\r\n\r\n${bodies.length.toString(16)}\r\n${bodies}\r\n0\r\n\r\n`,
    'Content-Length twice, equal': `POST /broadcast HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKEN\r\n` +
      `Content-Length: ${bodies.length}\r\nContent-Length: ${bodies.length}\r\n\r\n${bodies}`,
    'Content-Length twice, different': `POST /broadcast HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKEN\r\n` +
      `Content-Length: ${bodies.length}\r\nContent-Length: 2\r\n\r\n${bodies}`,
    'negative Content-Length': `POST /broadcast HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKEN\r\n` +
      `Content-Length: -1\r\n\r\n${bodies}`,
  };
  for (const [name, shape] of Object.entries(shapes)) {
    test(`${name}: 400, closed, nothing published`, async () => {
      const stream = await openStream(srv, { bearer: subToken });
      const r = await rawExchange(srv.port, shape.replace('TOKEN', pubToken), { timeout: 3000 });
      const { responses } = parseResponses(r.buf);
      assert.equal(responses.length, 1, `one answer only, got ${JSON.stringify(r.text.slice(0, 200))}`);
      assert.equal(responses[0].status, 400);
      assert.notEqual(r.closed, 'timeout', 'the connection must be closed');
      await sleep(200);
      assert.equal(stream.events.length, 0, 'nothing may be published');
      stream.close();
      await stillServes();
    });
  }

  test('a chunked body alone is accepted and published once', async () => {
    const stream = await openStream(srv, { bearer: subToken });
    const r = await rawExchange(srv.port,
      `POST /broadcast HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${pubToken}\r\nTransfer-Encoding: chunked\r\n` +
      `Connection: close\r\n\r\n5\r\n{"con\r\n${(bodies.length - 5).toString(16)}\r\n${bodies.slice(5)}\r\n0\r\n\r\n`);
    assert.equal(parseResponses(r.buf).responses[0]?.status, 201, r.text.slice(0, 200));
    await until(() => stream.events.length === 1, 3000, 'the chunked event');
    assert.equal(stream.events[0].data.join('\n'), 'smuggled');
    stream.close();
  });
});

describe('header injection and NUL bytes', () => {
  test('an Origin with CR/LF or NUL is never echoed into a header', async () => {
    for (const origin of ['https://app.test\r\nSet-Cookie: evil=1', 'https://app.test\u0000x']) {
      const raw = `GET /healthz HTTP/1.1\r\nHost: x\r\nOrigin: ${origin}\r\nConnection: close\r\n\r\n`;
      const r = await rawExchange(srv.port, Buffer.from(raw, 'latin1'));
      assert.doesNotMatch(r.text, /evil=1/i);
      assert.doesNotMatch(r.text, /Access-Control-Allow-Origin: https:\/\/app\.test(\r\n)?Set-Cookie/i);
    }
    await stillServes();
  });

  test('a listed Origin is echoed exactly; values from the request appear nowhere else', async () => {
    const r = await request(srv, 'GET', '/nope%0d%0aSet-Cookie:%20x=1', { headers: { Origin: 'https://app.test' } });
    assert.equal(r.status, 404);
    assert.equal(r.headers['access-control-allow-origin'], 'https://app.test');
    assert.equal(r.headers['set-cookie'], undefined);
  });

  test('NUL bytes in the request line, in a header and in a JSON body', async () => {
    const cases = [
      'GET /heal\u0000thz HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\n\r\n',
    ];
    for (const c of cases) {
      const r = await rawExchange(srv.port, Buffer.from(c, 'latin1'));
      assert.match(r.text, /^HTTP\/1\.1 (400|404) /, JSON.stringify(c));
    }
    const body = '{"content":"a\\u0000b","type":"t"}';
    const r = await rawExchange(srv.port, `POST /broadcast HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${pubToken}\r\n` +
      `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    assert.equal(parseResponses(r.buf).responses[0]?.status, 400, 'a NUL inside JSON content is refused');
    await stillServes();
  });

  test('a user id with an encoded CR/LF is refused on /events', async () => {
    const wrapper = Buffer.from(JSON.stringify({ token: subToken, id: 'a\r\nevent: x' })).toString('base64');
    const r = await request(srv, 'GET', `/events?token=${encodeURIComponent(wrapper)}`);
    assert.ok(r.status === 400 || r.status === 401, `got ${r.status}`);
    await stillServes();
  });
});

describe('overlong input', () => {
  test('an overlong request line gets 431 (or 414-like 400) and a close', async () => {
    const r = await rawExchange(srv.port, `GET /${'a'.repeat(20000)} HTTP/1.1\r\nHost: x\r\n\r\n`, { timeout: 3000 });
    assert.match(r.text, /^HTTP\/1\.1 (431|400) /);
    assert.notEqual(r.closed, 'timeout');
  });

  test('one overlong header line gets 431 and a close', async () => {
    const r = await rawExchange(srv.port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: ${'b'.repeat(9000)}\r\n\r\n`);
    assert.match(r.text, /^HTTP\/1\.1 431 /);
    assert.notEqual(r.closed, 'timeout');
  });

  test('more than 64 headers gets 431', async () => {
    const many = Array.from({ length: 80 }, (_, i) => `X-H${i}: v`).join('\r\n');
    const r = await rawExchange(srv.port, `GET /healthz HTTP/1.1\r\nHost: x\r\n${many}\r\n\r\n`);
    assert.match(r.text, /^HTTP\/1\.1 431 /);
    await stillServes();
  });
});

describe('slow and half-open clients', () => {
  test('slowloris: one byte every 700 ms is cut at SSE_HEADER_TIMEOUT while others are served', async () => {
    const req = 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'z'.repeat(20);
    const steps = [...req].map((ch) => ({ data: ch, delay: 700 }));
    const slow = rawExchange(srv.port, steps, { timeout: 8000 });
    await sleep(300);
    const t0 = Date.now();
    await stillServes();
    assert.ok(Date.now() - t0 < 1000, 'others are served at once');
    const r = await slow;
    assert.notEqual(r.closed, 'timeout', 'the slow client must be cut');
    assert.ok(r.ms < 5000, `cut after ${r.ms} ms (timeout 2 s)`);
  });

  test('2,000 half-open connections do not stop streams and publishes', { timeout: 60000 }, async () => {
    const stream = await openStream(srv, { bearer: subToken });
    const socks = [];
    let closed = 0;
    for (let i = 0; i < 2000; i++) {
      const s = net.connect({ host: HOST, port: srv.port, localAddress: `127.0.0.${2 + (i % 4)}` });
      s.on('error', () => {});
      s.on('close', () => { closed++; });
      s.resume(); // read what the server sends (a 408, then the end)
      if (i % 2) s.on('connect', () => s.write('GET /events HTTP/1.1\r\nHost: x\r\n')); // never finished
      socks.push(s);
    }
    await until(() => socks.filter((s) => s.readyState === 'open').length > 1900, 10000, 'half-open connections');
    const t0 = Date.now();
    const id = await publish(srv, pubToken, { content: 'through the crowd' });
    assert.ok(id > 0);
    await until(() => stream.events.length === 1, 3000, 'the event');
    assert.ok(Date.now() - t0 < 2000);
    await stillServes();
    // The header deadline (2 s) clears them all.
    await until(() => closed === socks.length, 10000, 'the server to close the half-open connections', 100);
    for (const s of socks) s.destroy();
    stream.close();
  });
});
