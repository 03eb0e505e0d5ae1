// The binary as a program: --help, --version, refusing to start on missing
// or bad settings (exit 1, one line naming the variable), the .env file in
// the working directory, --env-file, real env over .env, and logs (format,
// no secrets). The verbs beside the server: publish (against a live server,
// over HTTP and HTTPS), token (minted offline), check (the server's
// validation, effective settings with their sources, secrets masked).

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  ACCOUNTS, APP_KEY, BIN, HOST, REPO, decodeJwt, login, openStream, publish, request, runBinary, serverEnv, sleep,
  startServer, tempDir, tokenFor, tokenParam, until,
} from './lib/server.mjs';
import { httpsToken, makeCert, openTlsStream, startTlsServer, tlsTempDir } from './lib/tls.mjs';

const SETTINGS = [
  'SSE_HOST', 'SSE_PORT', 'SSE_APP_KEY',
  'SSE_CLIENT_USERNAME', 'SSE_CLIENT_PASSWORD',
  'SSE_BROADCASTER_USERNAME', 'SSE_BROADCASTER_PASSWORD',
  'SSE_ADMIN_USERNAME', 'SSE_ADMIN_PASSWORD',
  'SSE_USERNAME', 'SSE_PASSWORD',
  'ALLOWED_ORIGIN', 'SSE_HEARTBEAT', 'SSE_RETRY', 'SSE_TOKEN_TTL', 'SSE_LOG_LEVEL',
  'SSE_MAX_CONNECTIONS', 'SSE_MAX_HEADER_BYTES', 'SSE_MAX_BODY_BYTES',
  'SSE_HEADER_TIMEOUT', 'SSE_IDLE_TIMEOUT', 'SSE_MAX_QUEUE_BYTES', 'SSE_WORKERS',
  'SSE_JWT_ISSUER', 'SSE_JWT_AUDIENCE',
];

const lines = (s) => s.split('\n').filter((l) => l.trim() !== '');

describe('command line', () => {
  test('--help lists every setting and exits 0 (no config needed)', () => {
    const r = runBinary(['--help']);
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout + r.stderr;
    for (const s of SETTINGS) assert.match(out, new RegExp(`\\b${s}\\b`), `--help mentions ${s}`);
    assert.match(out, /--env-file/);
    assert.match(out, /--version/);
  });

  test('--version prints "ssehub <version>" and exits 0', () => {
    const r = runBinary(['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ssehub \d+\.\d+(\.\d+)?\S*\n?$/);
  });

  test('unknown option: non-zero exit, one line', () => {
    const r = runBinary(['--no-such-flag'], { defaults: true });
    assert.notEqual(r.code, 0);
    assert.equal(r.signal, null);
    assert.match(r.stderr, /no-such-flag/);
  });
});

describe('refusing to start', () => {
  const refuse = (env, re, what) => {
    const r = runBinary([], { env, defaults: true });
    assert.equal(r.signal, null, `${what}: no crash (signal ${r.signal})`);
    assert.equal(r.code, 1, `${what}: exit 1 (stderr: ${r.stderr})`);
    const l = lines(r.stderr);
    assert.equal(l.length, 1, `${what}: exactly one line on stderr, got:\n${r.stderr}`);
    assert.match(l[0], re, `${what}: the line names the variable`);
    assert.doesNotMatch(l[0], /listening on/);
  };

  test('without SSE_APP_KEY', () => refuse({ SSE_APP_KEY: null }, /SSE_APP_KEY/, 'no key'));
  test('with an empty SSE_APP_KEY', () => refuse({ SSE_APP_KEY: '' }, /SSE_APP_KEY/, 'empty key'));
  test('with an SSE_APP_KEY shorter than 32 bytes: one line naming it and `openssl rand -hex 32`', () => {
    const short = 'short-key-0123456789abcdef01234'; // 31 bytes
    refuse({ SSE_APP_KEY: short }, /^ssehub: SSE_APP_KEY: must be at least 32 bytes \(got 31\); make one with `openssl rand -hex 32`$/, '31-byte key');
    refuse({ SSE_APP_KEY: 'secret' }, /SSE_APP_KEY.*openssl rand -hex 32/, '6-byte key');
    const r = runBinary([], { env: { SSE_APP_KEY: short }, defaults: true });
    assert.ok(!r.stderr.includes(short), 'the key is not printed');
  });

  test('an SSE_APP_KEY of exactly 32 bytes starts', async () => {
    const srv = await startServer({ env: { SSE_APP_KEY: 'k'.repeat(32), SSE_DB: 'off' } });
    await srv.stopClean();
  });

  test('without any account', () => refuse({
    SSE_CLIENT_USERNAME: null, SSE_CLIENT_PASSWORD: null,
    SSE_BROADCASTER_USERNAME: null, SSE_BROADCASTER_PASSWORD: null,
    SSE_ADMIN_USERNAME: null, SSE_ADMIN_PASSWORD: null,
  }, /SSE_(CLIENT_|BROADCASTER_|ADMIN_)?USERNAME/, 'no account'));

  test('with a bad SSE_PORT', () => {
    refuse({ SSE_PORT: 'eighty' }, /SSE_PORT/, 'port not a number');
    refuse({ SSE_PORT: '70000' }, /SSE_PORT/, 'port out of range');
  });

  test('with a bad numeric setting', () => {
    refuse({ SSE_HEARTBEAT: 'often' }, /SSE_HEARTBEAT/, 'heartbeat');
    refuse({ SSE_MAX_QUEUE_BYTES: '-5' }, /SSE_MAX_QUEUE_BYTES/, 'queue bytes');
    refuse({ SSE_LOG_LEVEL: 'loud' }, /SSE_LOG_LEVEL/, 'log level');
  });

  test('the key never appears in the refusal line', () => {
    const r = runBinary([], { env: { SSE_PORT: 'bad' }, defaults: true });
    assert.equal(r.code, 1);
    assert.ok(!r.stderr.includes(APP_KEY));
  });
});

describe('.env file', () => {
  const dotenv = [
    '# comment line',
    '',
    `SSE_APP_KEY=${APP_KEY}`,
    `SSE_CLIENT_USERNAME=${ACCOUNTS.sub.username}`,
    'SSE_CLIENT_PASSWORD=from-dotenv-pw',
    `SSE_BROADCASTER_USERNAME=${ACCOUNTS.pub.username}`,
    `SSE_BROADCASTER_PASSWORD=${ACCOUNTS.pub.password}`,
    'SSE_RETRY=1234',
    'SSE_HEARTBEAT=60',
    '',
  ].join('\n');
  const bare = () => serverEnv({ SSE_HOST: HOST, SSE_PORT: 0 }, { defaults: false });

  test('is read from the working directory', async () => {
    const srv = await startServer({ rawEnv: bare(), files: { '.env': dotenv } });
    try {
      const l = await login(srv, { username: ACCOUNTS.sub.username, password: 'from-dotenv-pw' }, 'd');
      assert.equal(l.status, 200);
      const s = await openStream(srv, { path: `/events?token=${encodeURIComponent(tokenParam(l.token, 'd'))}` });
      await sleep(30);
      assert.equal(s.text, 'retry: 1234\n\n');
      s.close();
    } finally { await srv.stopClean(); }
  });

  test('a real environment variable wins over .env', async () => {
    const env = { ...bare(), SSE_CLIENT_PASSWORD: 'from-env-pw', SSE_RETRY: '4321' };
    const srv = await startServer({ rawEnv: env, files: { '.env': dotenv } });
    try {
      assert.equal((await login(srv, { username: ACCOUNTS.sub.username, password: 'from-env-pw' })).status, 200);
      assert.equal((await login(srv, { username: ACCOUNTS.sub.username, password: 'from-dotenv-pw' })).status, 401);
      const s = await openStream(srv, { bearer: await tokenFor(srv, 'pub') });
      await sleep(30);
      assert.equal(s.text, 'retry: 4321\n\n');
      s.close();
    } finally { await srv.stopClean(); }
  });

  test('--env-file PATH is read instead of ./.env', async () => {
    const dir = tempDir();
    const other = path.join(dir, 'custom.env');
    fs.writeFileSync(other, dotenv.replace('SSE_RETRY=1234', 'SSE_RETRY=2222'));
    const srv = await startServer({ rawEnv: bare(), args: ['--env-file', other], files: { '.env': 'SSE_RETRY=9999\n' } });
    try {
      const l = await login(srv, { username: ACCOUNTS.sub.username, password: 'from-dotenv-pw' });
      assert.equal(l.status, 200);
      const s = await openStream(srv, { bearer: l.token });
      await sleep(30);
      assert.equal(s.text, 'retry: 2222\n\n');
      s.close();
    } finally { await srv.stopClean(); }
  });

  test('without .env nor env settings it refuses to start', () => {
    const r = runBinary([], { rawEnv: bare() });
    assert.equal(r.code, 1);
    assert.equal(lines(r.stderr).length, 1, r.stderr);
  });
});

describe('logs', () => {
  test('one line per entry, ISO time and level first, no token/cookie/password/key', async () => {
    const srv = await startServer({ env: { SSE_LOG_LEVEL: 'debug', SSE_HEARTBEAT: 60 } });
    const secrets = [APP_KEY, ACCOUNTS.sub.password, ACCOUNTS.pub.password, ACCOUNTS.admin.password, 'wrong-Pw-Zz9'];
    try {
      const l = await login(srv, 'sub', 'log-user');
      const p = await login(srv, 'pub');
      await login(srv, { username: ACCOUNTS.sub.username, password: 'wrong-Pw-Zz9' });
      secrets.push(l.token, l.cookie, p.token, l.token.split('.')[2], p.token.split('.')[2]);
      const param = tokenParam(l.token, 'log-user');
      secrets.push(param, encodeURIComponent(param));
      const s1 = await openStream(srv, { path: `/events?token=${encodeURIComponent(param)}` });
      const s2 = await openStream(srv, { headers: { Cookie: `sse_token=${l.cookie}` } });
      const s3 = await openStream(srv, { bearer: l.token });
      await publish(srv, p.token, { content: 'logged?' });
      await request(srv, 'GET', `/events?token=${encodeURIComponent(tokenParam(`${l.token}x`, 'log-user'))}`);
      await request(srv, 'POST', '/broadcast', { headers: { Authorization: `Bearer ${p.token}x` }, body: { content: 'x' } });
      for (const s of [s1, s2, s3]) { await s.waitForData('logged?'); s.close(); }
      await sleep(200);
    } finally { await srv.stopClean(); }
    const all = srv.stderr;
    for (const x of secrets) assert.ok(!all.includes(x), `secret ${x.slice(0, 12)}… appears in the logs`);
    const ls = lines(all);
    assert.ok(ls.length >= 3, 'debug level logs something');
    for (const line of ls) {
      assert.match(line, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2}) [A-Za-z]+ \S/, `log line format: ${line}`);
    }
  });

  test('SSE_LOG_LEVEL=error keeps info and debug lines out', async () => {
    const port = await freePort();
    const srv = await startServer({ env: { SSE_LOG_LEVEL: 'error', SSE_PORT: port }, port });
    try {
      await login(srv, 'sub');
      await login(srv, { username: 'x', password: 'y' });
      await request(srv, 'GET', '/nope');
    } finally { await srv.stopClean(); }
    const low = lines(srv.stderr).filter((l) => /^\S+ (INFO|info|DEBUG|debug) /.test(l));
    assert.deepEqual(low, []);
  });
});

// `make run` writes .env with scripts/make-env.sh from .env.dist; the README's
// "Try it with curl" section must work word for word against it.
describe("make run's .env and the README's curl section", () => {
  const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Try it with curl'), readme.indexOf('\n## ', readme.indexOf('## Try it with curl') + 5));
  const blocks = [...section.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1], text: m[2] }));
  const dir = tempDir();
  fs.copyFileSync(path.join(REPO, '.env.dist'), path.join(dir, '.env.dist'));
  const made = spawnSync('sh', [path.join(REPO, 'scripts/make-env.sh')], { cwd: dir, encoding: 'utf8', timeout: 10000 });
  const dotenv = fs.existsSync(path.join(dir, '.env')) ? fs.readFileSync(path.join(dir, '.env'), 'utf8') : '';
  const get = (name) => (new RegExp(`^${name}=(.*)$`, 'm').exec(dotenv) || [])[1];
  // The README's placeholders and fixed address, made real for this server.
  const fill = (text, base) => text
    .replaceAll('http://127.0.0.1:8080', base)
    .replaceAll('<broadcaster password>', get('SSE_BROADCASTER_PASSWORD'))
    .replaceAll('<client password>', get('SSE_CLIENT_PASSWORD'))
    .replaceAll('/tmp/', `${dir}/`);
  const env = (extra = {}) => serverEnv({ SSE_HOST: HOST, SSE_PORT: 0, ...extra }, { defaults: false });

  test('make-env.sh writes a 32-byte hex key and SSE_TRUST_CLIENT_ID=0 with a comment; its hint sends application/json', () => {
    assert.equal(made.status, 0, made.stderr);
    assert.match(get('SSE_APP_KEY') || '', /^[0-9a-f]{64}$/);
    assert.equal(get('SSE_TRUST_CLIENT_ID'), '0');
    assert.match(dotenv, /#[^\n]*POST \/token[\s\S]*\nSSE_TRUST_CLIENT_ID=0\n/, 'a comment explains it');
    assert.match(made.stdout, /curl [^\n]*\/login -H 'Content-Type: application\/json'/, made.stdout);
  });

  test('with that .env: no trust warning, the curl steps (login, /token, stream, publishes) give the stream shown', async () => {
    assert.equal(blocks[0].lang, 'sh');
    const srv = await startServer({ cwd: dir, rawEnv: env() });
    try {
      await srv.waitForLog(/ALLOWED_ORIGIN is empty/, 2000); // logged after the trust warning would be
      assert.ok(!srv.lines.some((l) => /SSE_TRUST_CLIENT_ID/.test(l)), srv.stderr);
      const r = spawnSync('bash', ['-c', fill(blocks[0].text, srv.base)], { cwd: dir, encoding: 'utf8', timeout: 20000 });
      assert.equal(r.status, 0, `the curl steps failed: ${r.stderr}\n${r.stdout}`);
      const shown = section.slice(section.indexOf('The stream shows:'));
      const want = /```\n([\s\S]*?)```/.exec(shown)[1];
      assert.equal(fs.readFileSync(path.join(dir, 'stream'), 'utf8'), `${want}\n`, `curl printed: ${r.stdout}`);
    } finally { await srv.stopClean(); }
  });

  test("goSSE's cookie flow: 403 with that .env, works with SSE_TRUST_CLIENT_ID=1", async () => {
    const compat = blocks.find((b) => b.lang === 'sh' && b.text.includes('-c /tmp/jar'));
    assert.ok(compat, 'the README shows the cookie flow');
    const [loginCmd, streamCmd] = compat.text.split(/\n(?=curl -N)/);
    let srv = await startServer({ cwd: dir, rawEnv: env({ SSE_DB: 'off' }) });
    try {
      const r = spawnSync('bash', ['-c', `${fill(loginCmd, srv.base)} -w ' %{http_code}'`], { encoding: 'utf8', timeout: 10000 });
      assert.match(r.stdout, /POST \/token.* 403$/, r.stdout);
    } finally { await srv.stopClean(); }
    srv = await startServer({ cwd: dir, rawEnv: env({ SSE_DB: 'off', SSE_TRUST_CLIENT_ID: 1 }) });
    try {
      await srv.waitForLog(/warn.*SSE_TRUST_CLIENT_ID=1/i, 2000);
      const r = spawnSync('bash', ['-c', `${fill(loginCmd, srv.base)} -w ' %{http_code}'`], { encoding: 'utf8', timeout: 10000 });
      assert.match(r.stdout, /"id":"user-42"\} 200$/, r.stdout);
      const stream = spawn('bash', ['-c', `exec ${fill(streamCmd, srv.base).trim()} --max-time 5`], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      stream.stdout.on('data', (d) => { out += d; });
      const done = new Promise((resolve) => stream.on('exit', resolve));
      try {
        await until(() => out.includes('retry:'), 4000, 'the stream to open');
        const pub = await tokenFor(srv, { username: get('SSE_BROADCASTER_USERNAME'), password: get('SSE_BROADCASTER_PASSWORD') });
        await publish(srv, pub, { content: 'for someone else', user: 'user-43' });
        await publish(srv, pub, { content: 'Just for you', type: 'sse', user: 'user-42' });
        await until(() => out.includes('data: Just for you'), 4000, 'the event for user-42');
        assert.ok(!out.includes('someone else'), out);
      } finally { stream.kill(); await done; }
    } finally { await srv.stopClean(); }
  });
});

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, HOST, () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

/** Run a verb without blocking the test's own sockets; resolves {code, signal, stdout, stderr}. */
function runVerb(args, { env = {}, defaults = true, cwd, rawEnv, timeout = 15000 } = {}) {
  return new Promise((resolve) => {
    const p = spawn(BIN, args, {
      cwd: cwd || tempDir(), env: rawEnv || serverEnv(env, { defaults }), stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), timeout);
    p.on('exit', (code, signal) => { clearTimeout(t); resolve({ code, signal, stdout, stderr }); });
  });
}

/** A failure of a verb: exit code `code`, no crash, exactly one line on stderr matching re, nothing on stdout. */
function oneLineFailure(r, re, what, code = 1) {
  assert.equal(r.signal, null, `${what}: no crash`);
  assert.equal(r.code, code, `${what}: exit ${code} (stderr: ${r.stderr})`);
  const l = lines(r.stderr);
  assert.equal(l.length, 1, `${what}: exactly one line on stderr, got:\n${r.stderr}`);
  assert.match(l[0], re, what);
  assert.equal(r.stdout, '', `${what}: nothing on stdout`);
}

describe('ssehub publish', () => {
  test('publishes through a running server: prints the id, the event reaches a stream with its type', async () => {
    const srv = await startServer({ env: { SSE_DB: 'off' } });
    try {
      const s = await openStream(srv, { bearer: await tokenFor(srv, 'sub') });
      const url = srv.base;
      const r = await runVerb(['publish', '--url', url, '--type', 'news', 'hello from the cli']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^\d+\n$/);
      const id = r.stdout.trim();
      const ev = await s.waitForData('hello from the cli');
      assert.equal(ev.id, id);
      assert.equal(ev.event, 'news');
      const r2 = await runVerb(['publish', `--url=${url}`, 'second']);
      assert.equal(r2.code, 0, r2.stderr);
      assert.equal(Number(r2.stdout), Number(id) + 1);
      const ev2 = await s.waitForData('second');
      assert.equal(ev2.event, undefined, 'no --type: an untyped event');
      const r3 = await runVerb(['publish', '--url', url, '--', '--not-an-option']);
      assert.equal(r3.code, 0, r3.stderr);
      await s.waitForData('--not-an-option');
      s.close();
    } finally { await srv.stopClean(); }
  });

  test('--user addresses one user: that user\'s stream gets it, another user\'s does not', async () => {
    const srv = await startServer({ env: { SSE_DB: 'off' } });
    try {
      const sub = await tokenFor(srv, 'sub');
      const alice = await openStream(srv, { path: `/events?token=${encodeURIComponent(tokenParam(sub, 'alice'))}` });
      const bob = await openStream(srv, { path: `/events?token=${encodeURIComponent(tokenParam(sub, 'bob'))}` });
      const r = await runVerb(['publish', '--url', srv.base, '--user', 'alice', 'for alice only']);
      assert.equal(r.code, 0, r.stderr);
      await alice.waitForData('for alice only');
      const r2 = await runVerb(['publish', '--url', srv.base, 'for everyone']);
      assert.equal(r2.code, 0, r2.stderr);
      await bob.waitForData('for everyone');
      assert.ok(!bob.events.some((e) => e.data.join('\n') === 'for alice only'), 'bob never sees alice\'s event');
      alice.close(); bob.close();
    } finally { await srv.stopClean(); }
  });

  test('without --url: the address from SSE_HOST (0.0.0.0 means loopback) and SSE_PORT, the account from --env-file', async () => {
    const port = await freePort();
    const srv = await startServer({ env: { SSE_DB: 'off', SSE_PORT: port } });
    try {
      const s = await openStream(srv, { bearer: await tokenFor(srv, 'sub') });
      const dir = tempDir();
      const file = path.join(dir, 'pub.env');
      fs.writeFileSync(file, [
        `SSE_APP_KEY=${APP_KEY}`, 'SSE_HOST=0.0.0.0', `SSE_PORT=${port}`,
        `SSE_BROADCASTER_USERNAME=${ACCOUNTS.pub.username}`, `SSE_BROADCASTER_PASSWORD=${ACCOUNTS.pub.password}`, '',
      ].join('\n'));
      const r = await runVerb(['publish', '--env-file', file, 'via the env file'], { rawEnv: serverEnv({}, { defaults: false }) });
      assert.equal(r.code, 0, r.stderr);
      const ev = await s.waitForData('via the env file');
      assert.equal(ev.id, r.stdout.trim());
      // the same from ./.env in the working directory
      fs.copyFileSync(file, path.join(dir, '.env'));
      const r2 = await runVerb(['publish', 'via ./.env'], { cwd: dir, rawEnv: serverEnv({}, { defaults: false }) });
      assert.equal(r2.code, 0, r2.stderr);
      await s.waitForData('via ./.env');
      s.close();
    } finally { await srv.stopClean(); }
  });

  test('over HTTPS when SSE_TLS_CERT is set: the server\'s own certificate is trusted', async () => {
    const dir = tlsTempDir();
    try {
      const A = makeCert(dir, 'cli');
      const port = await freePort();
      const srv = await startTlsServer(A, { env: { SSE_DB: 'off', SSE_PORT: port } });
      try {
        const sub = await httpsToken(srv.port, A.cert, ACCOUNTS.sub);
        const s = await openTlsStream(srv.port, { ca: A.cert, headers: { Authorization: `Bearer ${sub}` } });
        const r = await runVerb(['publish', '--type', 't', 'over tls'], { env: { SSE_PORT: port, SSE_TLS_CERT: A.certPath, SSE_TLS_KEY: A.keyPath } });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^\d+\n$/);
        const ev = await s.waitForData('over tls');
        assert.equal(ev.id, r.stdout.trim());
        s.close();
        // plain http to the TLS port is not an answer: one line, exit 1
        const r2 = await runVerb(['publish', '--url', `http://${HOST}:${port}`, 'x']);
        oneLineFailure(r2, /^ssehub publish: login at http:\/\/127\.0\.0\.1:\d+: /, 'http to a TLS port');
        // a certificate nobody vouches for is refused
        const r3 = await runVerb(['publish', '--url', `https://${HOST}:${port}`, 'x']);
        oneLineFailure(r3, /TLS handshake with 127\.0\.0\.1 failed: certificate/, 'untrusted certificate');
      } finally { await srv.stopClean(); }
    } finally { fs.rmSync(dir, { recursive: true, force: true }); }
  });

  test('a wrong broadcaster password: one line naming the refusal, exit 1', async () => {
    const srv = await startServer({ env: { SSE_DB: 'off' } });
    try {
      const r = await runVerb(['publish', '--url', srv.base, 'x'], { env: { SSE_BROADCASTER_PASSWORD: 'wrong-Pw-Zz9' } });
      oneLineFailure(r, /^ssehub publish: login at http:\/\/127\.0\.0\.1:\d+: 401 /, 'wrong password');
      assert.ok(!r.stderr.includes('wrong-Pw-Zz9'), 'the password is not printed');
    } finally { await srv.stopClean(); }
  });

  test('an account or an event the server refuses: one line with its status, exit 1', async () => {
    const srv = await startServer({ env: { SSE_DB: 'off' } });
    try {
      const r = await runVerb(['publish', '--url', srv.base, 'x'], {
        env: { SSE_BROADCASTER_USERNAME: 'not-used', SSE_BROADCASTER_PASSWORD: 'n' },
      });
      oneLineFailure(r, /401/, 'an unknown account');
      const bad = await runVerb(['publish', '--url', srv.base, '--type', 't'.repeat(300), 'x']);
      oneLineFailure(bad, /POST \/broadcast at .*: 400 /, 'a type the server refuses');
    } finally { await srv.stopClean(); }
  });

  test('the server down: one line, exit 1', async () => {
    const port = await freePort();
    const r = await runVerb(['publish', '--url', `http://${HOST}:${port}`, 'x']);
    oneLineFailure(r, /^ssehub publish: login at http:\/\/127\.0\.0\.1:\d+: cannot connect to 127\.0\.0\.1 port \d+: Connection refused$/, 'server down');
    const r2 = await runVerb(['publish', 'x'], { env: { SSE_PORT: port } });
    oneLineFailure(r2, /cannot connect/, 'server down, default URL');
  });

  test('usage mistakes and missing settings: one line each', async () => {
    oneLineFailure(await runVerb(['publish']), /CONTENT is required/, 'no content', 2);
    oneLineFailure(await runVerb(['publish', 'a', 'b']), /one CONTENT only/, 'two contents', 2);
    oneLineFailure(await runVerb(['publish', '--url', 'ftp://x', 'a']), /--url must be http/, 'bad url', 2);
    oneLineFailure(await runVerb(['publish', '--type']), /--type needs a value/, 'option without value', 2);
    oneLineFailure(await runVerb(['publish', '--bogus', 'a']), /unknown argument "--bogus"/, 'unknown option', 2);
    oneLineFailure(await runVerb(['publish', 'a'], { env: { SSE_PORT: 0 } }), /SSE_PORT is 0.*--url/, 'port 0');
    oneLineFailure(await runVerb(['publish', 'a'], { env: { SSE_BROADCASTER_USERNAME: null, SSE_BROADCASTER_PASSWORD: null } }),
      /SSE_BROADCASTER_USERNAME/, 'no broadcaster');
    oneLineFailure(await runVerb(['publish', 'a'], { env: { SSE_HEARTBEAT: 'often' } }), /^ssehub publish: SSE_HEARTBEAT: /, 'a bad setting');
    oneLineFailure(await runVerb(['publish', '--env-file', '/nonexistent/x.env', 'a']), /nonexistent/, 'missing --env-file');
  });
});

describe('ssehub token', () => {
  test('mints offline the claims POST /token gives; the token opens that user\'s stream and /notifications, no other\'s', async () => {
    const r = await runVerb(['token', '--user', 'alice', '--types', 'news,sport', '--ttl', '600']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const jwt = r.stdout.trim();
    const mine = decodeJwt(jwt);
    const srv = await startServer();
    try {
      const pub = await tokenFor(srv, 'pub');
      const api = await request(srv, 'POST', '/token', { headers: { Authorization: `Bearer ${pub}` }, body: { user: 'alice', types: ['news', 'sport'], ttl: 600 } });
      assert.equal(api.status, 201, api.body);
      const theirs = decodeJwt(api.json.token);
      assert.deepEqual(mine.header, theirs.header);
      assert.deepEqual(Object.keys(mine.payload).sort(), Object.keys(theirs.payload).sort());
      for (const k of ['username', 'sub', 'role', 'types']) assert.deepEqual(mine.payload[k], theirs.payload[k], k);
      assert.equal(mine.payload.exp - mine.payload.iat, 600);
      assert.ok(Math.abs(mine.payload.exp - theirs.payload.exp) <= 5);

      const s = await openStream(srv, { bearer: jwt, path: '/events?type=news' });
      const other = await openStream(srv, { path: `/events?token=${encodeURIComponent(tokenParam(await tokenFor(srv, 'sub'), 'bob'))}` });
      const id = await publish(srv, pub, { content: 'for alice', type: 'news', user: 'alice' });
      await publish(srv, pub, { content: 'for bob', type: 'news', user: 'bob' });
      await other.waitForData('for bob');
      const ev = await s.waitForData('for alice');
      assert.equal(Number(ev.id), id);
      await sleep(100);
      assert.ok(!s.events.some((e) => e.data.join('\n') === 'for bob'), 'alice\'s token never sees bob\'s event');
      s.close(); other.close();

      const n = await request(srv, 'GET', '/notifications', { headers: { Authorization: `Bearer ${jwt}` } });
      assert.equal(n.status, 200, n.body);
      assert.deepEqual(n.json.items.map((i) => i.content), ['for alice']);
      // bound to alice: claiming bob in the wrapper is refused, and so is a type outside the claim
      const asBob = await request(srv, 'GET', `/notifications?token=${encodeURIComponent(tokenParam(jwt, 'bob'))}`);
      assert.equal(asBob.status, 401);
      const streamBob = await request(srv, 'GET', `/events?token=${encodeURIComponent(tokenParam(jwt, 'bob'))}`);
      assert.equal(streamBob.status, 401);
      const weather = await request(srv, 'GET', '/events?type=weather', { headers: { Authorization: `Bearer ${jwt}` } });
      assert.equal(weather.status, 403);
      // a subscriber token: it cannot publish
      const b = await request(srv, 'POST', '/broadcast', { headers: { Authorization: `Bearer ${jwt}` }, body: { content: 'x' } });
      assert.equal(b.status, 403);
    } finally { await srv.stopClean(); }
  });

  test('defaults: no types claim, an hour; signed with SSE_APP_KEY (another key refuses it)', async () => {
    const r = await runVerb(['token', '--user', 'carol']);
    assert.equal(r.code, 0, r.stderr);
    const { payload } = decodeJwt(r.stdout.trim());
    assert.equal(payload.types, undefined);
    assert.equal(payload.exp - payload.iat, 3600);
    assert.equal(payload.username, ACCOUNTS.pub.username, 'minted in the publisher\'s name');
    const srv = await startServer({ env: { SSE_DB: 'off', SSE_APP_KEY: 'another-key-0123456789abcdef0123456789' } });
    try {
      const s = await request(srv, 'GET', '/notifications', { headers: { Authorization: `Bearer ${r.stdout.trim()}` } });
      assert.equal(s.status, 401);
    } finally { await srv.stopClean(); }
  });

  test('refusals: one line each', async () => {
    oneLineFailure(await runVerb(['token']), /--user is required/, 'no user', 2);
    oneLineFailure(await runVerb(['token', '--user', '']), /--user: 1 to 256 bytes/, 'empty user');
    oneLineFailure(await runVerb(['token', '--user', 'a\nb']), /--user/, 'user with LF');
    oneLineFailure(await runVerb(['token', '--user', 'a', '--ttl', '0']), /--ttl/, 'ttl 0');
    oneLineFailure(await runVerb(['token', '--user', 'a', '--ttl', '86401']), /--ttl/, 'ttl too long');
    oneLineFailure(await runVerb(['token', '--user', 'a', '--types', ',']), /--types/, 'no type');
    oneLineFailure(await runVerb(['token', '--user', 'a', '--types', Array.from({ length: 33 }, (_, i) => `t${i}`).join(',')]), /--types/, '33 types');
    oneLineFailure(await runVerb(['token', '--user', 'a'], { env: { SSE_APP_KEY: null } }), /SSE_APP_KEY/, 'no key');
    oneLineFailure(await runVerb(['token', '--user', 'a'], {
      env: { SSE_BROADCASTER_USERNAME: null, SSE_BROADCASTER_PASSWORD: null, SSE_ADMIN_USERNAME: null, SSE_ADMIN_PASSWORD: null },
    }), /no publisher or admin account/, 'only a subscriber account');
  });
});

describe('ssehub check', () => {
  const SECRET = /^(SSE_APP_KEY|\w*_PASSWORD|SSE_METRICS_TOKEN)$/;
  const parse = (out) => Object.fromEntries(lines(out).map((l) => {
    const m = /^([A-Z_]+)=(.*?)  # (env|\.env|default)$/.exec(l);
    assert.ok(m, `NAME=value  # source: ${l}`);
    return [m[1], { value: m[2], source: m[3] }];
  }));

  test('prints every setting with its source (env, .env, default), secrets masked', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, '.env'), `SSE_RETRY=1234\nSSE_HEARTBEAT=99\nSSE_ADMIN_PASSWORD=${ACCOUNTS.admin.password}\n`);
    const r = await runVerb(['check'], { cwd: dir, env: { SSE_HEARTBEAT: '42', SSE_HISTORY_MAX_AGE: '2h', SSE_ADMIN_PASSWORD: null } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const got = parse(r.stdout);
    const help = runBinary(['--help']).stdout;
    const names = [...help.matchAll(/^ {2}((?:SSE_|ALLOWED_)[A-Z_]+) /gm)].map((m) => m[1]);
    assert.deepEqual(Object.keys(got), names, 'every setting of the table, in its order');
    assert.deepEqual(got.SSE_HEARTBEAT, { value: '42', source: 'env' }, 'the environment wins over .env');
    assert.deepEqual(got.SSE_RETRY, { value: '1234', source: '.env' });
    assert.deepEqual(got.SSE_MAX_BODY_BYTES, { value: '65536', source: 'default' });
    assert.deepEqual(got.SSE_HISTORY_MAX_AGE, { value: '7200', source: 'env' }, 'durations in seconds');
    assert.deepEqual(got.SSE_BROADCASTER_USERNAME, { value: ACCOUNTS.pub.username, source: 'env' });
    assert.deepEqual(got.SSE_APP_KEY, { value: '********', source: 'env' });
    assert.deepEqual(got.SSE_ADMIN_PASSWORD, { value: '********', source: '.env' });
    assert.deepEqual(got.SSE_PASSWORD, { value: '', source: 'default' }, 'an unset secret shows empty');
    for (const [name, { value }] of Object.entries(got)) if (SECRET.test(name)) assert.match(value, /^(\*{8})?$/, `${name} is masked`);
    for (const x of [APP_KEY, ACCOUNTS.sub.password, ACCOUNTS.pub.password, ACCOUNTS.admin.password]) assert.ok(!r.stdout.includes(x), 'no secret printed');
  });

  test('a bad setting: one line naming it, exit 1, no settings printed; the same refusals as the server', async () => {
    oneLineFailure(await runVerb(['check'], { env: { SSE_PORT: 'eighty' } }), /^ssehub check: SSE_PORT: must be a whole number/, 'bad port');
    oneLineFailure(await runVerb(['check'], { env: { SSE_APP_KEY: 'short' } }), /^ssehub check: SSE_APP_KEY: must be at least 32 bytes/, 'short key');
    const short = await runVerb(['check'], { env: { SSE_APP_KEY: 'short' } });
    assert.ok(!short.stderr.includes('short"'), 'the key is not printed');
    oneLineFailure(await runVerb(['check'], { env: { SSE_USERS_FILE: '/nonexistent/users' } }), /SSE_USERS_FILE/, 'missing accounts file');
    oneLineFailure(await runVerb(['check'], { env: { SSE_JWT_PUBLIC_KEY: '/nonexistent/key.pem' } }), /SSE_JWT_PUBLIC_KEY/, 'missing public key');
    oneLineFailure(await runVerb(['check'], { env: { SSE_TLS_CERT: '/nonexistent/c.pem', SSE_TLS_KEY: '/nonexistent/k.pem' } }), /c\.pem|SSE_TLS/, 'missing certificate');
    for (const env of [{ SSE_PORT: 'eighty' }, { SSE_DB_SYNC: 'sometimes' }, { SSE_COOKIE_SAMESITE: 'None' }]) {
      const server = runBinary([], { env, defaults: true });
      const check = await runVerb(['check'], { env });
      assert.equal(server.code, 1);
      assert.equal(check.stderr.replace(/^ssehub check: /, ''), server.stderr.replace(/^ssehub: /, ''), `the server's words for ${JSON.stringify(env)}`);
    }
    oneLineFailure(await runVerb(['check', 'extra']), /unknown argument "extra"/, 'stray argument', 2);
  });

  test('an unknown SSE_ name is warned about as the server does, and check still passes', async () => {
    const r = await runVerb(['check'], { env: { SSE_PROT: '1' } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /SSE_PROT: unknown setting; did you mean SSE_PORT\?/);
  });
});

describe('--help of each verb', () => {
  for (const [verb, re] of [['publish', /--url[\s\S]*--type[\s\S]*--user[\s\S]*CONTENT/], ['token', /--user[\s\S]*--types[\s\S]*--ttl/], ['check', /masked/]]) {
    test(`ssehub ${verb} --help: usage on stdout, exit 0, no settings needed`, async () => {
      const r = await runVerb([verb, '--help'], { defaults: false });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^Usage: ssehub ${verb}`));
      assert.match(r.stdout, re);
      assert.match(r.stdout, /--env-file/);
    });
  }
  test('the server\'s --help names the verbs', () => {
    const out = runBinary(['--help']).stdout;
    for (const v of ['passwd', 'publish', 'token', 'check']) assert.match(out, new RegExp(`ssehub ${v}\\b`));
  });
});
