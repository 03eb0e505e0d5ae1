// The binary as a program: --help, --version, refusing to start on missing
// or bad settings (exit 1, one line naming the variable), the .env file in
// the working directory, --env-file, real env over .env, and logs (format,
// no secrets).

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  ACCOUNTS, APP_KEY, HOST, REPO, login, openStream, publish, request, runBinary, serverEnv, sleep,
  startServer, tempDir, tokenFor, tokenParam, until,
} from './lib/server.mjs';

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
