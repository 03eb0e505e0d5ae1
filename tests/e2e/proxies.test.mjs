// SSE_TRUSTED_PROXIES: behind a trusted proxy the client is the right-most
// address of X-Forwarded-For / Forwarded that is not itself a trusted proxy;
// from any other peer those headers are ignored. That address is what the login
// limits, the per-address connection cap and the logs (`ip=`) use; IPv6 clients
// are limited per /64. Also the login limiter under bursts: attempts in flight
// count as failures in waiting, and one address holds only a share of the
// argon2id check queue.
//
// Every client socket binds its local address: 127.0.0.1 is the trusted proxy,
// 127.0.0.2 and up are peers that are not trusted.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  ACCOUNTS, BIN, HOST, mintJwt, rawRequest, runBinary, serverEnv, sleep, startServer, until,
} from './lib/server.mjs';

const PROXY = '127.0.0.1';
const now = () => Math.floor(Date.now() / 1000);
const subToken = () => mintJwt({ username: ACCOUNTS.sub.username, iat: now(), exp: now() + 600 });

/** One request on its own connection from localAddress. Resolves {status, headers, body, json}. */
function req(srv, method, path, { headers = {}, body, localAddress = PROXY, timeout = 60000 } = {}) {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const h = { ...headers };
  if (payload !== undefined) {
    h['Content-Type'] = 'application/json';
    h['Content-Length'] = Buffer.byteLength(payload);
  }
  return new Promise((resolve, reject) => {
    const r = http.request({ host: HOST, port: srv.port, method, path, localAddress, agent: false, timeout, headers: h }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, body: text, json });
      });
    });
    r.on('timeout', () => r.destroy(new Error(`${method} ${path}: timeout`)));
    r.on('error', reject);
    if (payload !== undefined) r.end(payload); else r.end();
  });
}

/** POST /login with creds, extra headers (X-Forwarded-For...), from localAddress. */
function loginVia(srv, creds, headers = {}, localAddress = PROXY) {
  return req(srv, 'POST', '/login', { body: { username: creds.username, password: creds.password, id: 'x' }, headers, localAddress });
}

const xff = (a) => ({ 'X-Forwarded-For': a });
const WRONG = { username: ACCOUNTS.sub.username, password: 'not-the-password' };

/** A raw connection from localAddress; collects the bytes it gets. */
class Conn {
  constructor(srv, localAddress = PROXY) {
    this.srv = srv;
    this.chunks = [];
    this.endInfo = null;
    this.sock = net.connect({ host: HOST, port: srv.port, localAddress });
    this.connected = new Promise((r) => this.sock.once('connect', r));
    this.ended = new Promise((r) => { this._end = r; });
    const end = (how) => { if (!this.endInfo) { this.endInfo = { how }; this._end(this.endInfo); } };
    this.sock.on('data', (c) => this.chunks.push(c));
    this.sock.on('end', () => end('end'));
    this.sock.on('error', (e) => end(`error:${e.code}`));
    this.sock.on('close', () => end(this._ours ? 'destroyed' : 'end'));
  }

  get text() { return Buffer.concat(this.chunks).toString('latin1'); }

  async send(path, headers = {}) {
    await this.connected;
    this.sock.write(rawRequest({ path, headers, host: `${HOST}:${this.srv.port}` }));
  }

  /** Waits for the n-th response head (from 1) and returns its status. */
  async status(n = 1, timeout = 5000) {
    const re = /HTTP\/1\.1 (\d{3})/g;
    let m;
    await until(() => {
      const all = [...this.text.matchAll(re)];
      m = all[n - 1];
      return m || this.endInfo;
    }, timeout, `response ${n} (got ${JSON.stringify(this.text.slice(0, 200))})`);
    if (!m) throw new Error(`closed before response ${n}: ${JSON.stringify(this.text.slice(0, 200))}`);
    return Number(m[1]);
  }

  close() { this._ours = true; this.sock.destroy(); }
}

/** GET /events from localAddress with extra headers; resolves the Conn and its status. */
async function streamVia(srv, headers, localAddress = PROXY) {
  const c = new Conn(srv, localAddress);
  await c.send('/events', { Authorization: `Bearer ${subToken()}`, ...headers });
  const st = await c.status();
  if (st === 200) await until(() => /retry:/.test(c.text), 3000, 'retry line');
  return { c, st };
}

/** Insists on a 200 stream. */
async function openVia(srv, headers, localAddress = PROXY) {
  const { c, st } = await streamVia(srv, headers, localAddress);
  assert.equal(st, 200, `stream ${JSON.stringify(headers)} from ${localAddress}: ${c.text.slice(0, 200)}`);
  return c;
}

/** Insists on a 503 with Retry-After, after which the connection closes. */
async function refusedVia(srv, headers, localAddress = PROXY) {
  const { c, st } = await streamVia(srv, headers, localAddress);
  assert.equal(st, 503, `stream ${JSON.stringify(headers)} from ${localAddress} should be refused: ${c.text.slice(0, 200)}`);
  assert.match(c.text, /\r\nRetry-After: 1\r\n/i);
  await Promise.race([c.ended, sleep(3000)]);
  assert.ok(c.endInfo, 'the refused connection is closed');
  c.close();
}

/** Retries until a stream is accepted (a close is processed a moment after the client's). */
async function openWhenFree(srv, headers, localAddress = PROXY, timeout = 3000) {
  const end = Date.now() + timeout;
  for (;;) {
    const { c, st } = await streamVia(srv, headers, localAddress);
    if (st === 200) return c;
    c.close();
    if (Date.now() > end) throw new Error(`no stream for ${JSON.stringify(headers)} within ${timeout} ms`);
    await sleep(50);
  }
}

const linesMatching = (srv, re) => srv.lines.filter((l) => re.test(l));

describe('login limits by the address a trusted proxy names', () => {
  let srv;
  before(async () => {
    srv = await startServer({
      env: { SSE_TRUSTED_PROXIES: PROXY, SSE_LOGIN_MAX_FAILURES: 2, SSE_LOG_LEVEL: 'debug', SSE_DB: 'off' },
    });
  });
  after(async () => { if (srv) await srv.stopClean(); });

  test('one guesser behind the proxy is blocked; other clients of the proxy still log in', async () => {
    assert.equal((await loginVia(srv, WRONG, xff('203.0.113.7'))).status, 401);
    assert.equal((await loginVia(srv, WRONG, xff('203.0.113.7'))).status, 401);
    const blocked = await loginVia(srv, ACCOUNTS.sub, xff('203.0.113.7'));
    assert.equal(blocked.status, 429, blocked.body);
    assert.match(blocked.headers['retry-after'], /^[1-9]\d*$/);
    const other = await loginVia(srv, ACCOUNTS.sub, xff('203.0.113.8'));
    assert.equal(other.status, 200, other.body);
    // The client's own junk in front of the proxy's hop does not help it.
    assert.equal((await loginVia(srv, ACCOUNTS.sub, xff('198.51.100.99, 203.0.113.7'))).status, 429);
    // The proxy itself (no header) is not blocked either.
    assert.equal((await loginVia(srv, ACCOUNTS.sub)).status, 200);
    assert.ok(linesMatching(srv, /WARN login-blocked ip=203\.0\.113\.7 user=e2e-sub/).length >= 1, srv.stderr);
    assert.ok(linesMatching(srv, /INFO login-failed ip=203\.0\.113\.7 user=e2e-sub/).length === 2, srv.stderr);
    assert.ok(linesMatching(srv, /INFO login ip=203\.0\.113\.8 user=e2e-sub/).length === 1, srv.stderr);
  });

  test('from a peer that is not trusted, the headers are ignored entirely', async () => {
    const peer = '127.0.0.2';
    assert.equal((await loginVia(srv, WRONG, xff('203.0.113.20'), peer)).status, 401);
    assert.equal((await loginVia(srv, WRONG, { Forwarded: 'for=203.0.113.21' }, peer)).status, 401);
    // Both failures counted against the peer: another claimed address does not help.
    const r = await loginVia(srv, ACCOUNTS.sub, xff('203.0.113.22'), peer);
    assert.equal(r.status, 429, r.body);
    assert.equal(linesMatching(srv, /login-failed ip=127\.0\.0\.2 /).length, 2, srv.stderr);
    assert.equal(linesMatching(srv, /ip=203\.0\.113\.2[012]\b/).length, 0, 'no line names a claimed address');
    // Nor can an untrusted peer borrow a blocked address's... or anyone's: 203.0.113.7 is
    // blocked, yet a login claiming it from 127.0.0.3 is judged as 127.0.0.3.
    assert.equal((await loginVia(srv, ACCOUNTS.sub, xff('203.0.113.7'), '127.0.0.3')).status, 200);
  });

  test('IPv6 clients are limited per /64; the logs keep the full address', async () => {
    assert.equal((await loginVia(srv, WRONG, xff('2001:db8:1:2::1'))).status, 401);
    assert.equal((await loginVia(srv, WRONG, { Forwarded: 'for="[2001:db8:1:2::2]:4711"' })).status, 401);
    const same64 = await loginVia(srv, ACCOUNTS.sub, xff('2001:db8:1:2:ffff::9'));
    assert.equal(same64.status, 429, same64.body);
    assert.equal((await loginVia(srv, ACCOUNTS.sub, { Forwarded: 'for="[2001:db8:1:2::77]"' })).status, 429);
    const next64 = await loginVia(srv, ACCOUNTS.sub, xff('2001:db8:1:3::1'));
    assert.equal(next64.status, 200, next64.body);
    assert.ok(linesMatching(srv, /login-failed ip=2001:db8:1:2::1 /).length === 1, srv.stderr);
    assert.ok(linesMatching(srv, /login-failed ip=2001:db8:1:2::2 /).length === 1, srv.stderr);
    assert.ok(linesMatching(srv, /login-blocked ip=2001:db8:1:2:ffff::9 /).length === 1, srv.stderr);
    assert.ok(linesMatching(srv, /INFO login ip=2001:db8:1:3::1 /).length === 1, srv.stderr);
  });

  test('the chain is read from the right; malformed or conflicting headers name the proxy', async () => {
    const cases = [
      [xff('198.51.100.1, 203.0.113.30'), '203.0.113.30'],
      [xff('203.0.113.31, 127.0.0.1'), '203.0.113.31'],
      [{ Forwarded: 'for="[2001:DB8::31]:4711";proto=http' }, '2001:db8::31'],
      [{ Forwarded: 'for=198.51.100.1, for=203.0.113.33;proto=https' }, '203.0.113.33'],
      [{ 'X-Forwarded-For': '203.0.113.34', Forwarded: 'for="203.0.113.34:80"' }, '203.0.113.34'],
      [xff('::ffff:203.0.113.35'), '203.0.113.35'],
    ];
    for (const [headers, ip] of cases) {
      const n = linesMatching(srv, new RegExp(`INFO login ip=${ip.replace(/\./g, '\\.')} `)).length;
      const r = await loginVia(srv, ACCOUNTS.sub, headers);
      assert.equal(r.status, 200, `${JSON.stringify(headers)}: ${r.body}`);
      await until(() => linesMatching(srv, new RegExp(`INFO login ip=${ip.replace(/\./g, '\\.')} `)).length === n + 1,
        3000, `a login line for ${ip} (${JSON.stringify(headers)})`);
    }
    const bad = [
      [xff('not-an-ip'), 'malformed-header'],
      [xff('203.0.113.40, unknown'), 'malformed-header'],
      [{ Forwarded: 'for=unknown' }, 'malformed-header'],
      [{ Forwarded: 'for="[2001:db8::1]' }, 'malformed-header'],
      [{ 'X-Forwarded-For': '203.0.113.41', Forwarded: 'for=203.0.113.42' }, 'conflicting-headers'],
    ];
    for (const [headers, why] of bad) {
      const n = linesMatching(srv, /INFO login ip=127\.0\.0\.1 /).length;
      const m = linesMatching(srv, new RegExp(`DEBUG forwarded-ignored ip=127\\.0\\.0\\.1 reason=${why}`)).length;
      const r = await loginVia(srv, ACCOUNTS.sub, headers);
      assert.equal(r.status, 200, `${JSON.stringify(headers)}: ${r.body}`);
      await until(() => linesMatching(srv, /INFO login ip=127\.0\.0\.1 /).length === n + 1, 3000,
        `the proxy's address for ${JSON.stringify(headers)}`);
      assert.equal(linesMatching(srv, new RegExp(`DEBUG forwarded-ignored ip=127\\.0\\.0\\.1 reason=${why}`)).length, m + 1,
        `a debug line for ${JSON.stringify(headers)}`);
    }
    assert.equal(linesMatching(srv, /ip=203\.0\.113\.4[012]\b/).length, 0, srv.stderr);
  });
});

describe('SSE_MAX_CONNS_PER_IP by the address a trusted proxy names', () => {
  let srv;
  before(async () => {
    srv = await startServer({ env: { SSE_TRUSTED_PROXIES: `${PROXY},::1`, SSE_MAX_CONNS_PER_IP: 2, SSE_HEARTBEAT: 60, SSE_DB: 'off' } });
  });
  after(async () => { if (srv) await srv.stopClean(); });

  test("the proxy's connections are not capped at accept; each stream counts for its client", async () => {
    const idle = [];
    for (let i = 0; i < 5; i++) { const c = new Conn(srv); await c.connected; idle.push(c); }
    await sleep(200);
    for (const c of idle) assert.ok(!c.endInfo && c.text === '', `an idle proxy connection was refused: ${c.text.slice(0, 100)}`);
    const a = [await openVia(srv, xff('203.0.113.7')), await openVia(srv, xff('203.0.113.7'))];
    await refusedVia(srv, xff('203.0.113.7'));
    const b = await openVia(srv, xff('203.0.113.8'));
    assert.ok(linesMatching(srv, /WARN refused ip=203\.0\.113\.7 reason=per-address-limit limit=2/).length >= 1, srv.stderr);
    // A closed stream gives its place back, exactly once.
    a[0].close();
    a[0] = await openWhenFree(srv, xff('203.0.113.7'));
    await refusedVia(srv, xff('203.0.113.7'));
    for (const c of [...idle, ...a, b]) c.close();
  });

  test('IPv6 clients count per /64', async () => {
    const s = [await openVia(srv, xff('2001:db8:5:6::1')), await openVia(srv, { Forwarded: 'for="[2001:db8:5:6::2]:1"' })];
    await refusedVia(srv, xff('2001:db8:5:6:ffff::3'));
    s.push(await openVia(srv, xff('2001:db8:5:7::1')));
    assert.ok(linesMatching(srv, /refused ip=2001:db8:5:6:ffff::3 reason=per-address-limit/).length === 1, srv.stderr);
    assert.ok(linesMatching(srv, /connect ip=2001:db8:5:6::1 /).length === 1, srv.stderr);
    for (const c of s) c.close();
  });

  test('a keep-alive request naming another address moves the count; the close releases it', async () => {
    const k = new Conn(srv);
    await k.send('/healthz', xff('203.0.113.40'));
    assert.equal(await k.status(1), 200);
    const s40 = await openVia(srv, xff('203.0.113.40'));
    await refusedVia(srv, xff('203.0.113.40')); // the keep-alive connection holds one of its two
    await k.send('/healthz', xff('203.0.113.41'));
    assert.equal(await k.status(2), 200);
    const s40b = await openWhenFree(srv, xff('203.0.113.40')); // given back by that request
    const s41 = await openVia(srv, xff('203.0.113.41'));
    await refusedVia(srv, xff('203.0.113.41'));
    // The same address again on the same connection counts nothing more.
    await k.send('/healthz', xff('203.0.113.41'));
    assert.equal(await k.status(3), 200);
    k.close();
    const s41b = await openWhenFree(srv, xff('203.0.113.41'));
    for (const c of [s40, s40b, s41, s41b]) c.close();
  });

  test('a request from the proxy past its client\'s cap gets 503 and ends its connection only', async () => {
    const s = [await openVia(srv, xff('203.0.113.50')), await openVia(srv, xff('203.0.113.50'))];
    const k = new Conn(srv);
    await k.send('/healthz', xff('203.0.113.51'));
    assert.equal(await k.status(1), 200);
    await k.send('/healthz', xff('203.0.113.50'));
    assert.equal(await k.status(2), 503);
    await Promise.race([k.ended, sleep(3000)]);
    assert.ok(k.endInfo, 'the connection ends after the 503');
    // Its count for .51 went with it.
    const t = [await openWhenFree(srv, xff('203.0.113.51')), await openWhenFree(srv, xff('203.0.113.51'))];
    for (const c of [...s, ...t]) c.close();
  });

  test('peers that are not trusted are capped at accept, whatever header they send', async () => {
    const peer = '127.0.0.2';
    const s = [await openVia(srv, xff('203.0.113.60'), peer), await openVia(srv, xff('203.0.113.61'), peer)];
    const c = new Conn(srv, peer);
    await Promise.race([c.ended, sleep(3000)]);
    assert.match(c.text, /^HTTP\/1\.1 503 /, 'refused at accept');
    c.close();
    assert.ok(linesMatching(srv, /connect ip=127\.0\.0\.2 /).length === 2, srv.stderr);
    for (const x of s) x.close();
  });
});

describe('SSE_TRUSTED_PROXIES at start-up', () => {
  test('a bad value stops start-up with one line naming the setting and the item', () => {
    for (const v of ['10.0.0.0/33', 'banana', '127.0.0.1, 10.0.0.1/8', 'fd00::/129', '127.0.0.1:8080']) {
      const r = runBinary([], { defaults: true, timeout: 5000, env: { SSE_TRUSTED_PROXIES: v, SSE_DB: 'off' } });
      assert.equal(r.code, 1, `${v}: exit ${r.code}; ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^ssehub: SSE_TRUSTED_PROXIES: "/, r.stderr);
      const item = v.split(',').map((x) => x.trim()).find((x) => x.includes('/') || !/^127\.0\.0\.1$/.test(x));
      assert.ok(lines[0].includes(`"${item}"`), `${lines[0]} names ${item}`);
    }
  });

  test('a /0 starts, with a warning', async () => {
    const srv = await startServer({ env: { SSE_TRUSTED_PROXIES: '0.0.0.0/0', SSE_DB: 'off' } });
    try {
      await srv.waitForLog(/WARN SSE_TRUSTED_PROXIES holds a \/0/);
    } finally {
      await srv.stopClean();
    }
  });

  test('--help lists it', () => {
    const r = runBinary(['--help']);
    assert.match(r.stdout + r.stderr, /SSE_TRUSTED_PROXIES/);
  });
});

// ----------------------------------------------------- bursts of logins ----

const USERS = {
  alice: { username: 'alice', password: 'alice-Pw-1q2w3e', role: 'subscriber' },
  bob: { username: 'bob', password: 'bob-Pw-4r5t6y', role: 'publisher' },
};
let usersText;

/** The users file (argon2id lines from `ssehub passwd`), made once. */
function users() {
  usersText ||= Object.values(USERS).map((u) => {
    const r = spawnSync(BIN, ['passwd', '--user', u.username, '--role', u.role], {
      input: `${u.password}\n`, encoding: 'utf8', timeout: 30000, env: serverEnv({}, { defaults: false }),
    });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  }).join('');
  return usersText;
}

/** n concurrent wrong logins for alice claiming address ip through the proxy. */
function burst(srv, n, ip) {
  return Promise.all(Array.from({ length: n }, (_, i) => loginVia(srv, { username: 'alice', password: `guess-${i}` }, xff(ip))));
}

const verifies = (srv, ip) => linesMatching(srv, new RegExp(`login-verify ip=${ip.replace(/\./g, '\\.')} `)).length;

describe('a burst of logins from one address (hashed accounts)', () => {
  let srv;
  before(async () => {
    srv = await startServer({
      files: { users: users() },
      env: { SSE_USERS_FILE: 'users', SSE_TRUSTED_PROXIES: PROXY, SSE_LOG_LEVEL: 'debug', SSE_DB: 'off' },
    });
  });
  after(async () => { if (srv) await srv.stopClean(); });

  test('attempts in flight count: 40 concurrent guesses get 429s, not 40 checks; others log in', async () => {
    const guesses = burst(srv, 40, '203.0.113.7');
    const bob = loginVia(srv, USERS.bob, xff('203.0.113.8'));
    const [rs, ok] = await Promise.all([guesses, bob]);
    assert.equal(ok.status, 200, `the other address: ${ok.body}`);
    const count = (s) => rs.filter((r) => r.status === s).length;
    assert.equal(count(401) + count(429), 40, JSON.stringify(rs.map((r) => r.status)));
    assert.ok(count(401) <= 5, `at most SSE_LOGIN_MAX_FAILURES (5) checked: ${count(401)} got 401`);
    assert.ok(count(429) >= 35, `the rest waits: ${count(429)} got 429`);
    for (const r of rs.filter((x) => x.status === 429)) assert.match(r.headers['retry-after'], /^[1-9]\d*$/);
    await until(() => verifies(srv, '203.0.113.7') === count(401), 5000, 'the checks to be logged');
    assert.ok(verifies(srv, '203.0.113.7') <= 5, `${verifies(srv, '203.0.113.7')} argon2id checks for the burst`);
  });
});

describe('a burst of logins from one address with the failure limits off', () => {
  let srv;
  before(async () => {
    srv = await startServer({
      files: { users: users() },
      env: { SSE_USERS_FILE: 'users', SSE_TRUSTED_PROXIES: PROXY, SSE_LOGIN_MAX_FAILURES: 0, SSE_LOG_LEVEL: 'debug', SSE_DB: 'off' },
    });
  });
  after(async () => { if (srv) await srv.stopClean(); });

  test('one address holds at most a quarter of the check queue (64): past it 429, others get through', async () => {
    const guesses = burst(srv, 100, '203.0.113.9');
    await sleep(20);
    const [rs, ok] = await Promise.all([guesses, loginVia(srv, USERS.bob, xff('203.0.113.10'))]);
    assert.equal(ok.status, 200, `the other address: ${ok.status} ${ok.body}`);
    const count = (s) => rs.filter((r) => r.status === s).length;
    assert.equal(count(401) + count(429), 100, JSON.stringify(rs.map((r) => r.status)));
    assert.ok(count(429) >= 10, `past its share the address gets 429: ${count(429)} did`);
    for (const r of rs.filter((x) => x.status === 429)) {
      assert.equal(r.headers['retry-after'], '1');
      assert.match(r.json?.error, /in progress from this address/);
    }
    assert.ok(linesMatching(srv, /WARN login-blocked ip=203\.0\.113\.9 reason=checks-in-progress limit=64/).length === count(429), srv.stderr.slice(-2000));
  });
});
