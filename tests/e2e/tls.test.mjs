// HTTPS (issue 5): SSE_TLS_CERT / SSE_TLS_KEY with a certificate made by the
// openssl command at test time. curl and node's https/tls clients against
// the real binary: the three auth flows with exact SSE bytes, protocol
// versions, ciphers and ALPN, plain HTTP on the TLS port, stalled
// handshakes, SIGHUP certificate reload (good and bad files), the sse_token
// cookie's Secure/SameSite/Domain attributes, and start-up refusals.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import {
  ACCOUNTS, HOST, login, runBinary, sleep, startServer, tokenParam, until,
} from './lib/server.mjs';
import {
  captureClientHello, cookieParts, httpsLogin, httpsPublish, httpsRequest, httpsToken, makeCert,
  openTlsStream, rawTcp, servedFingerprint, startTlsServer, tlsConnect, tlsTempDir,
} from './lib/tls.mjs';

const dir = tlsTempDir();
const A = makeCert(dir, 'a');
const B = makeCert(dir, 'b');
const C = makeCert(dir, 'c');
const SSE_HEAD_CT = /^text\/event-stream/;

after(() => { fs.rmSync(dir, { recursive: true, force: true }); });

/** Run curl (bounded); resolves {code, stdout, stderr}. */
function curl(args, timeout = 10000) {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', String(timeout / 1000), ...args], { encoding: 'utf8', timeout: timeout + 2000 },
      (err, stdout, stderr) => resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr }));
  });
}

/** Wait for a stderr line matching re that appears after line index `from`. */
function logAfter(srv, from, re, timeout = 3000) {
  return until(() => srv.lines.slice(from).find((l) => re.test(l)) || (srv.exitInfo ? Promise.reject(new Error(`server exited ${JSON.stringify(srv.exitInfo)}:\n${srv.stderr}`)) : null),
    timeout, `log line ${re} (log:\n${srv.stderr.split('\n').slice(-10).join('\n')})`);
}

describe('HTTPS serving', () => {
  let srv;
  let pub;
  before(async () => {
    srv = await startTlsServer(A, { env: { SSE_HEARTBEAT: 60 } });
    pub = await httpsToken(srv.port, A.cert, ACCOUNTS.pub);
  });
  after(async () => { if (srv) await srv.stopClean(); });

  test('start line says scheme=https', () => {
    const line = srv.lines.find((l) => /listening on /.test(l));
    assert.match(line, new RegExp(`listening on ${HOST}:${srv.port} scheme=https\\b`));
  });

  test('curl --cacert: /healthz 200 over HTTP/1.1, login, broadcast, a stream that receives the event', async () => {
    const base = `https://${HOST}:${srv.port}`;
    const h = await curl(['--cacert', A.certPath, '-o', '-', '-w', '\n%{http_code} %{http_version} %{ssl_verify_result}', `${base}/healthz`]);
    assert.equal(h.code, 0, `curl /healthz failed: ${h.stderr}`);
    const [body, meta] = h.stdout.split('\n');
    assert.deepEqual(JSON.parse(body), { status: 'ok' });
    assert.equal(meta, '200 1.1 0');

    const jar = path.join(dir, 'curl-jar');
    const l = await curl(['--cacert', A.certPath, '-c', jar, '-X', 'POST', '-H', 'Content-Type: application/json',
      '-d', JSON.stringify({ username: ACCOUNTS.sub.username, password: ACCOUNTS.sub.password, id: 'curl-user' }),
      '-w', '\n%{http_code}', `${base}/login`]);
    assert.equal(l.code, 0, l.stderr);
    const [lbody, lstatus] = l.stdout.split('\n');
    assert.equal(lstatus, '200');
    assert.equal(JSON.parse(lbody).id, 'curl-user');
    assert.match(fs.readFileSync(jar, 'utf8'), /\bsse_token\b/, 'curl stored the cookie (it is Secure: only sent over HTTPS)');

    const lp = await curl(['--cacert', A.certPath, '-X', 'POST', '-H', 'Content-Type: application/json',
      '-d', JSON.stringify({ username: ACCOUNTS.pub.username, password: ACCOUNTS.pub.password }), `${base}/login`]);
    const token = JSON.parse(lp.stdout).token;
    assert.ok(token, lp.stdout);

    // The stream: curl -N with the cookie jar, killed by us once done.
    const stream = spawn('curl', ['-sS', '-N', '--max-time', '15', '--cacert', A.certPath, '-b', jar, `${base}/events?type=sse`],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    stream.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
    stream.stderr.setEncoding('utf8').on('data', (d) => { err += d; });
    try {
      await until(() => out.includes('retry: 3000\n\n') || stream.exitCode !== null, 5000, 'curl stream to open');
      assert.equal(out, 'retry: 3000\n\n', `curl stream: ${err}`);
      const b = await curl(['--cacert', A.certPath, '-X', 'POST', '-H', `Authorization: Bearer ${token}`,
        '-d', JSON.stringify({ content: 'via curl', type: 'sse', user: 'curl-user' }), '-w', '\n%{http_code}', `${base}/broadcast`]);
      assert.equal(b.code, 0, b.stderr);
      const [bbody, bstatus] = b.stdout.split('\n');
      assert.equal(bstatus, '201');
      const id = JSON.parse(bbody).id;
      await until(() => out.includes('data: via curl\n\n') || stream.exitCode !== null, 5000, 'event on the curl stream');
      assert.equal(out, `retry: 3000\n\nid: ${id}\nevent: sse\ndata: via curl\n\n`, `curl stream: ${err}`);
    } finally {
      stream.kill('SIGKILL');
    }
  });

  test('curl: plain http:// to the TLS port gets no HTTP answer', async () => {
    const r = await curl(['-o', '-', '-w', '%{http_code}', `http://${HOST}:${srv.port}/healthz`], 5000);
    assert.notEqual(r.code, 0, `curl should fail, got ${JSON.stringify(r)}`);
    assert.notEqual(r.code, 28, 'the connection was closed, not left to time out');
    assert.equal(r.stdout, '000');
  });

  test('node https, cookie flow: login over HTTPS, cookie on GET /events, exact SSE bytes', async () => {
    const lg = await httpsLogin(srv.port, A.cert, ACCOUNTS.sub, 'cookie-user');
    assert.equal(lg.status, 200, lg.body);
    assert.ok(lg.cookie, `Set-Cookie: ${lg.setCookie}`);
    const s = await openTlsStream(srv.port, { ca: A.cert, path: '/events?type=sse', headers: { Cookie: `sse_token=${lg.cookie}` } });
    try {
      assert.equal(s.sock.getProtocol() === 'TLSv1.3' || s.sock.getProtocol() === 'TLSv1.2', true);
      const h = s.headInfo;
      assert.equal(h.status, 200);
      assert.match(h.headers['content-type'], SSE_HEAD_CT);
      assert.equal(h.headers['cache-control'], 'no-cache');
      assert.equal(h.headers['transfer-encoding'], undefined);
      const i1 = await httpsPublish(srv.port, A.cert, pub, { content: 'for someone else', type: 'sse', user: 'other-user' });
      const i2 = await httpsPublish(srv.port, A.cert, pub, { content: 'l1\nl2', type: 'sse', user: 'cookie-user' });
      const i3 = await httpsPublish(srv.port, A.cert, pub, { content: 'to all' });
      assert.ok(i1 < i2 && i2 < i3);
      await s.waitForData('to all');
      assert.equal(s.text, `retry: 3000\n\nid: ${i2}\nevent: sse\ndata: l1\ndata: l2\n\nid: ${i3}\ndata: to all\n\n`);
    } finally { s.close(); }
  });

  test('node https, token-parameter flow: exact SSE bytes', async () => {
    const jwt = await httpsToken(srv.port, A.cert, ACCOUNTS.sub, 'param-user');
    const q = encodeURIComponent(tokenParam(jwt, 'param-user'));
    const s = await openTlsStream(srv.port, { ca: A.cert, path: `/events?type=news&token=${q}` });
    try {
      await httpsPublish(srv.port, A.cert, pub, { content: 'wrong type', type: 'sport' });
      const i2 = await httpsPublish(srv.port, A.cert, pub, { content: 'right type', type: 'news' });
      const i3 = await httpsPublish(srv.port, A.cert, pub, { content: 'addressed', type: 'sport', user: 'param-user' });
      await s.waitForData('addressed');
      assert.equal(s.text, `retry: 3000\n\nid: ${i2}\nevent: news\ndata: right type\n\nid: ${i3}\nevent: sport\ndata: addressed\n\n`);
    } finally { s.close(); }
  });

  test('node https, Bearer flow: exact SSE bytes; a bad token gets 401 over TLS', async () => {
    const sub = await httpsToken(srv.port, A.cert, ACCOUNTS.sub);
    const s = await openTlsStream(srv.port, { ca: A.cert, bearer: sub });
    try {
      const i1 = await httpsPublish(srv.port, A.cert, pub, { content: 'bearer hello' });
      await s.waitForData('bearer hello');
      assert.equal(s.text, `retry: 3000\n\nid: ${i1}\ndata: bearer hello\n\n`);
    } finally { s.close(); }
    const bad = await httpsRequest(srv.port, 'GET', '/events', { ca: A.cert, headers: { Authorization: `Bearer ${sub}x` } });
    assert.equal(bad.status, 401);
  });

  test('ALPN: offered h2 and http/1.1, the server picks http/1.1', async () => {
    const s = await tlsConnect(srv.port, { ca: A.cert, ALPNProtocols: ['h2', 'http/1.1'] });
    assert.equal(s.alpnProtocol, 'http/1.1');
    s.destroy();
  });

  test('TLS 1.0 and 1.1 refused (client proven able to speak them), 1.2 and 1.3 accepted and serve requests', async () => {
    const old = { ciphers: 'DEFAULT:@SECLEVEL=0' };
    // Control: the same client options do complete TLS 1.0/1.1 against a
    // node server that allows them, so a refusal below is ssehub's.
    const control = tls.createServer({ key: A.key, cert: A.cert, minVersion: 'TLSv1', ...old }, (c) => c.end());
    await new Promise((r) => control.listen(0, HOST, r));
    try {
      for (const v of ['TLSv1', 'TLSv1.1']) {
        const c = await tlsConnect(control.address().port, { ca: A.cert, minVersion: v, maxVersion: v, ...old });
        assert.equal(c.getProtocol(), v);
        c.destroy();
      }
    } finally { control.close(); }

    for (const v of ['TLSv1', 'TLSv1.1']) {
      await assert.rejects(tlsConnect(srv.port, { ca: A.cert, minVersion: v, maxVersion: v, ...old }),
        (e) => {
          // A refusal by the server: an alert (protocol_version), not a local error.
          assert.match(String(e.code), /ALERT/, `${v}: ${e.code} ${e.message}`);
          return true;
        }, `${v} must be refused`);
    }
    for (const v of ['TLSv1.2', 'TLSv1.3']) {
      const c = await tlsConnect(srv.port, { ca: A.cert, minVersion: v, maxVersion: v });
      assert.equal(c.getProtocol(), v);
      // A request over exactly this version.
      const reply = await new Promise((resolve, reject) => {
        let buf = '';
        c.setEncoding('latin1');
        c.on('data', (d) => { buf += d; if (buf.includes('"ok"')) resolve(buf); });
        c.on('error', reject);
        c.on('end', () => resolve(buf));
        c.write(`GET /healthz HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
      });
      c.destroy();
      assert.match(reply, /^HTTP\/1\.1 200 /, `${v}: ${reply}`);
    }
  });

  test('TLS 1.2 ciphers: ECDHE with AEAD negotiated; a CBC-only client refused', async () => {
    const c = await tlsConnect(srv.port, { ca: A.cert, maxVersion: 'TLSv1.2' });
    const name = c.getCipher().name;
    c.destroy();
    assert.match(name, /^ECDHE-.*(GCM|CHACHA20-POLY1305)/, `negotiated ${name}`);
    await assert.rejects(tlsConnect(srv.port, {
      ca: A.cert, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256',
    }), (e) => { assert.match(String(e.code), /ALERT/, `${e.code} ${e.message}`); return true; }, 'a CBC cipher must not be accepted');
  });

  test('plain HTTP on the TLS port: no HTTP answer, connection closed promptly; server still serves HTTPS', async () => {
    const r = await rawTcp(srv.port, [{ data: `GET /healthz HTTP/1.1\r\nHost: ${HOST}\r\n\r\n` }], { timeout: 4000 });
    assert.notEqual(r.closed, 'timeout', `connection left open for ${r.ms} ms`);
    assert.ok(!r.buf.toString('latin1').includes('HTTP/'), `got an HTTP answer: ${JSON.stringify(r.buf.toString('latin1'))}`);
    assert.ok(r.ms < 3000, `closed after ${r.ms} ms (SSE_HEADER_TIMEOUT is 10 s: should be closed on the bad bytes)`);
    const h = await httpsRequest(srv.port, 'GET', '/healthz', { ca: A.cert });
    assert.equal(h.status, 200);
  });
});

// OpenSSL 3 reports a bare EOF as a protocol error; it used to be logged as a read error.
describe('a TLS client that goes away', () => {
  let srv;
  let sub;
  before(async () => {
    srv = await startTlsServer(A, { env: { SSE_HEARTBEAT: 60 } });
    sub = await httpsToken(srv.port, A.cert, ACCOUNTS.sub);
  });
  after(async () => { if (srv) await srv.stopClean(); });

  /** A TLS stream on a TCP socket of our own, so it can be closed under TLS (no close_notify). */
  async function stream(user) {
    const raw = net.connect({ host: HOST, port: srv.port });
    await new Promise((resolve, reject) => { raw.once('connect', resolve); raw.once('error', reject); });
    const t = tls.connect({ socket: raw, ca: A.cert, host: HOST });
    await new Promise((resolve, reject) => { t.once('secureConnect', resolve); t.once('error', reject); });
    const q = encodeURIComponent(tokenParam(sub, user));
    t.write(`GET /events?token=${q} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    let text = '';
    t.on('data', (d) => { text += d; });
    t.on('error', () => {});
    await until(() => text.includes('retry:'), 3000, `stream head for ${user}`);
    return { raw, t };
  }

  for (const [what, close] of [
    ['without close_notify (socket closed)', ({ raw }) => raw.destroy()],
    ['with close_notify', ({ t }) => t.end()],
  ]) {
    test(`${what}: logged as client closed`, async () => {
      const user = `gone-${what.length}-${process.pid}`;
      const s = await stream(user);
      const from = srv.lines.length;
      close(s);
      const line = await logAfter(srv, from, new RegExp(`disconnect .*user=${user} `));
      assert.match(line, /reason=client closed/, line);
      s.raw.destroy();
    });
  }
});

describe('stalled handshakes (SSE_HEADER_TIMEOUT=1)', () => {
  let srv;
  let stalls;
  const KINDS = ['nothing sent', 'half a ClientHello', 'a full ClientHello, then silence', 'handshake completed, no request'];
  before(async () => {
    srv = await startTlsServer(A, { env: { SSE_HEADER_TIMEOUT: 1, SSE_HEARTBEAT: 60 } });
    const hello = await captureClientHello();
    assert.equal(hello[0], 0x16, 'captured a TLS handshake record');
    // All stalls start together; each test below checks one. Bounded at 6 s.
    stalls = [
      rawTcp(srv.port, [], { timeout: 6000 }),
      rawTcp(srv.port, [{ data: hello.subarray(0, Math.floor(hello.length / 2)) }], { timeout: 6000 }),
      rawTcp(srv.port, [{ data: hello }], { timeout: 6000 }),
      (async () => {
        const t0 = Date.now();
        const c = await tlsConnect(srv.port, { ca: A.cert });
        const bytes = [];
        c.on('data', (d) => bytes.push(d));
        c.on('error', () => {});
        const closed = await Promise.race([new Promise((r) => c.once('close', () => r('end'))), sleep(6000).then(() => 'timeout')]);
        c.destroy();
        return { closed, ms: Date.now() - t0, buf: Buffer.concat(bytes) };
      })(),
    ];
  });
  after(async () => { if (srv) await srv.stopClean(); });

  test('while handshakes stall, another client is served at once (stream + requests)', async () => {
    await sleep(200);
    const pub = await httpsToken(srv.port, A.cert, ACCOUNTS.pub);
    const s = await openTlsStream(srv.port, { ca: A.cert, bearer: pub });
    try {
      const t0 = Date.now();
      const h = await httpsRequest(srv.port, 'GET', '/healthz', { ca: A.cert });
      assert.equal(h.status, 200);
      assert.ok(Date.now() - t0 < 800, `healthz took ${Date.now() - t0} ms while handshakes stalled`);
      await httpsPublish(srv.port, A.cert, pub, { content: 'during stall' });
      await s.waitForData('during stall');
      await Promise.all(stalls);
      assert.equal(s.endInfo, null, 'the established stream is not cut by the header timeout');
      await httpsPublish(srv.port, A.cert, pub, { content: 'after stall' });
      await s.waitForData('after stall');
    } finally { s.close(); }
  });

  for (const [i, what] of KINDS.entries()) {
    test(`${what}: closed after about SSE_HEADER_TIMEOUT (1 s), no HTTP answer in clear`, async () => {
      const r = await stalls[i];
      assert.notEqual(r.closed, 'timeout', `${what}: still open after ${r.ms} ms (SSE_HEADER_TIMEOUT=1)`);
      assert.ok(r.ms >= 800 && r.ms <= 4000, `${what}: closed after ${r.ms} ms, expected about 1000`);
      if (i < 3) assert.ok(!r.buf.toString('latin1').includes('HTTP/'), `${what}: no plaintext HTTP answer`);
    });
  }
});

describe('SIGHUP certificate reload', () => {
  let srv;
  let live;
  before(async () => {
    const d = fs.mkdtempSync(path.join(dir, 'live-'));
    live = { certPath: path.join(d, 'live.crt'), keyPath: path.join(d, 'live.key') };
    fs.writeFileSync(live.certPath, A.cert);
    fs.writeFileSync(live.keyPath, A.key, { mode: 0o600 });
    srv = await startTlsServer(live, { env: { SSE_HEARTBEAT: 60 } });
  });
  after(async () => { if (srv) await srv.stopClean(); });

  const install = (certPem, keyPem) => {
    for (const [p, content] of [[live.certPath, certPem], [live.keyPath, keyPem]]) {
      fs.writeFileSync(`${p}.tmp`, content, { mode: 0o600 });
      fs.renameSync(`${p}.tmp`, p);
    }
  };

  test('new certificate: new connections get it, an open stream keeps receiving; bad files refused, old kept', async () => {
    assert.equal(await servedFingerprint(srv.port), A.fingerprint256, 'serves A at start');
    const pub = await httpsToken(srv.port, A.cert, ACCOUNTS.pub);
    const sub = await httpsToken(srv.port, A.cert, ACCOUNTS.sub, 'hup-user');
    const s = await openTlsStream(srv.port, { ca: A.cert, path: `/events?token=${encodeURIComponent(tokenParam(sub, 'hup-user'))}` });
    try {
      await httpsPublish(srv.port, A.cert, pub, { content: 'before reload' });
      await s.waitForData('before reload');

      // 1. A good new pair (B).
      install(B.cert, B.key);
      let from = srv.lines.length;
      srv.proc.kill('SIGHUP');
      await logAfter(srv, from, /reload: new certificate in use/);
      assert.equal(await servedFingerprint(srv.port), B.fingerprint256, 'new connections see B');
      const hb = await httpsRequest(srv.port, 'GET', '/healthz', { ca: B.cert });
      assert.equal(hb.status, 200);
      await assert.rejects(httpsRequest(srv.port, 'GET', '/healthz', { ca: A.cert }), /self[- ]signed|certificate|verify/i,
        'a client trusting only A no longer accepts the server');
      assert.equal(s.endInfo, null, 'the open stream survived the reload');
      assert.equal(s.sock.getPeerCertificate().fingerprint256, A.fingerprint256);
      await httpsPublish(srv.port, B.cert, pub, { content: 'after reload' });
      await s.waitForData('after reload');

      // 2. Garbage certificate file: refused, B still served, server alive.
      install('this is not a certificate\n', B.key);
      from = srv.lines.length;
      srv.proc.kill('SIGHUP');
      await logAfter(srv, from, /reload refused/);
      await sleep(100);
      assert.equal(srv.exitInfo, null, 'server still running');
      assert.ok(!srv.lines.slice(from).some((l) => /reload: new certificate in use/.test(l)), 'no success line for a garbage file');
      assert.equal(await servedFingerprint(srv.port), B.fingerprint256, 'still serves B after a garbage file');
      assert.equal((await httpsRequest(srv.port, 'GET', '/healthz', { ca: B.cert })).status, 200);

      // 3. A valid certificate with a key that does not match it: refused.
      install(C.cert, A.key);
      from = srv.lines.length;
      srv.proc.kill('SIGHUP');
      await logAfter(srv, from, /reload refused/);
      assert.equal(await servedFingerprint(srv.port), B.fingerprint256, 'still serves B after a mismatched pair');

      // 4. Garbage key with a good certificate: refused.
      install(C.cert, '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
      from = srv.lines.length;
      srv.proc.kill('SIGHUP');
      await logAfter(srv, from, /reload refused/);
      assert.equal(await servedFingerprint(srv.port), B.fingerprint256, 'still serves B after a garbage key');

      // 5. And a good pair after refusals is taken.
      install(C.cert, C.key);
      from = srv.lines.length;
      srv.proc.kill('SIGHUP');
      await logAfter(srv, from, /reload: new certificate in use/);
      assert.equal(await servedFingerprint(srv.port), C.fingerprint256, 'serves C');

      await httpsPublish(srv.port, C.cert, pub, { content: 'at the end' });
      await s.waitForData('at the end');
      assert.equal(s.endInfo, null);
      assert.deepEqual(s.events.map((e) => e.data.join('\n')), ['before reload', 'after reload', 'at the end']);
    } finally { s.close(); }
  });
});

describe('sse_token cookie attributes', () => {
  /** Start a server (TLS when pair given), log in, return the Set-Cookie list. */
  async function cookieOf(pair, env = {}) {
    const srv = pair ? await startTlsServer(pair, { env: { SSE_DB: 'off', ...env } })
      : await startServer({ env: { SSE_DB: 'off', ...env } });
    try {
      const r = pair ? await httpsLogin(srv.port, pair.cert, ACCOUNTS.sub, 'u1') : await login(srv, 'sub', 'u1');
      assert.equal(r.status, 200, r.body);
      const sc = r.setCookie;
      assert.equal(sc.length, 1, `one Set-Cookie: ${JSON.stringify(sc)}`);
      return sc[0];
    } finally { await srv.stopClean(); }
  }
  const attrs = (sc) => cookieParts(sc).slice(1);
  const named = (sc, n) => attrs(sc).filter((a) => a.split('=')[0].toLowerCase() === n.toLowerCase());

  test('with TLS, default: ...; HttpOnly; Secure; SameSite=None', async () => {
    const sc = await cookieOf(A);
    assert.match(sc, /^sse_token=[A-Za-z0-9+/]+=*; Path=\/; /);
    assert.ok(sc.endsWith('; HttpOnly; Secure; SameSite=None'), sc);
    assert.deepEqual(named(sc, 'Domain'), []);
    assert.equal(named(sc, 'SameSite').length, 1, sc);
    assert.equal(named(sc, 'Secure').length, 1, sc);
  });

  test('without TLS, default: ...; HttpOnly; SameSite=Lax, no Secure', async () => {
    const sc = await cookieOf(null);
    assert.ok(sc.endsWith('; HttpOnly; SameSite=Lax'), sc);
    assert.deepEqual(named(sc, 'Secure'), [], sc);
    assert.deepEqual(named(sc, 'Domain'), []);
  });

  for (const v of ['Strict', 'Lax', 'None']) {
    test(`with TLS, SSE_COOKIE_SAMESITE=${v}: Secure and SameSite=${v}`, async () => {
      const sc = await cookieOf(A, { SSE_COOKIE_SAMESITE: v });
      assert.deepEqual(named(sc, 'SameSite'), [`SameSite=${v}`], sc);
      assert.deepEqual(named(sc, 'Secure'), ['Secure'], sc);
      assert.deepEqual(named(sc, 'HttpOnly'), ['HttpOnly'], sc);
    });
  }

  for (const v of ['Strict', 'Lax']) {
    test(`without TLS, SSE_COOKIE_SAMESITE=${v}: SameSite=${v}, no Secure`, async () => {
      const sc = await cookieOf(null, { SSE_COOKIE_SAMESITE: v });
      assert.deepEqual(named(sc, 'SameSite'), [`SameSite=${v}`], sc);
      assert.deepEqual(named(sc, 'Secure'), [], sc);
      assert.deepEqual(named(sc, 'HttpOnly'), ['HttpOnly'], sc);
    });
  }

  test('SSE_COOKIE_DOMAIN adds Domain=..., with and without TLS, other attributes kept', async () => {
    const t = await cookieOf(A, { SSE_COOKIE_DOMAIN: 'example.test' });
    assert.deepEqual(named(t, 'Domain'), ['Domain=example.test'], t);
    assert.deepEqual(named(t, 'SameSite'), ['SameSite=None'], t);
    assert.deepEqual(named(t, 'Secure'), ['Secure'], t);
    assert.deepEqual(named(t, 'Path'), ['Path=/'], t);
    const p = await cookieOf(null, { SSE_COOKIE_DOMAIN: 'example.test', SSE_COOKIE_SAMESITE: 'Strict' });
    assert.deepEqual(named(p, 'Domain'), ['Domain=example.test'], p);
    assert.deepEqual(named(p, 'SameSite'), ['SameSite=Strict'], p);
    assert.deepEqual(named(p, 'Secure'), [], p);
  });
});

describe('start-up refusals', () => {
  const missing = path.join(dir, 'no-such-file.pem');
  const garbage = path.join(dir, 'garbage.pem');
  fs.writeFileSync(garbage, 'not a PEM file at all\n');
  const cases = [
    ['certificate without key', { SSE_TLS_CERT: A.certPath }, /SSE_TLS_KEY/],
    ['key without certificate', { SSE_TLS_KEY: A.keyPath }, /SSE_TLS_CERT/],
    ['certificate file missing', { SSE_TLS_CERT: missing, SSE_TLS_KEY: A.keyPath }, /SSE_TLS_CERT/],
    ['certificate path is a directory', { SSE_TLS_CERT: dir, SSE_TLS_KEY: A.keyPath }, /SSE_TLS_CERT/],
    ['garbage certificate', { SSE_TLS_CERT: garbage, SSE_TLS_KEY: A.keyPath }, /SSE_TLS_CERT/],
    ['key file missing', { SSE_TLS_CERT: A.certPath, SSE_TLS_KEY: missing }, /SSE_TLS_KEY/],
    ['garbage key', { SSE_TLS_CERT: A.certPath, SSE_TLS_KEY: garbage }, /SSE_TLS_KEY/],
    ['key that does not match the certificate', { SSE_TLS_CERT: A.certPath, SSE_TLS_KEY: B.keyPath }, /SSE_TLS_KEY/],
    ['SSE_COOKIE_SAMESITE=None without TLS', { SSE_COOKIE_SAMESITE: 'None' }, /SSE_COOKIE_SAMESITE/],
    ['SSE_COOKIE_SAMESITE not Lax|Strict|None', { SSE_COOKIE_SAMESITE: 'Sometimes', SSE_TLS_CERT: A.certPath, SSE_TLS_KEY: A.keyPath }, /SSE_COOKIE_SAMESITE/],
  ];
  for (const [what, env, re] of cases) {
    test(`${what}: exit 1, one stderr line naming the variable`, () => {
      const r = runBinary([], { env: { SSE_DB: 'off', ...env }, defaults: true, timeout: 5000 });
      assert.equal(r.signal, null, `still running (killed): ${r.stderr}`);
      assert.equal(r.code, 1, `exit code; stderr:\n${r.stderr}`);
      const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
      assert.equal(lines.length, 1, `exactly one stderr line, got:\n${r.stderr}`);
      assert.match(lines[0], re);
    });
  }

  test('the valid pair starts (control for the cases above)', () => {
    const r = runBinary([], { env: { SSE_DB: 'off', SSE_TLS_CERT: A.certPath, SSE_TLS_KEY: A.keyPath }, defaults: true, timeout: 1500 });
    assert.equal(r.signal, 'SIGKILL', `should still be running when killed; exit ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, /scheme=https/);
  });
});
