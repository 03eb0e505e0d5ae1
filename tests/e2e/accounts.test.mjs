// Accounts from SSE_USERS_FILE (argon2id hashes made by `ssehub passwd`), the
// brute-force limits on POST /login (429 + Retry-After per address and per
// username), and the equal-work check for unknown names. Timings are never
// asserted: the debug line `login-verify` shows the verifier ran instead.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  ACCOUNTS, BIN, HOST, JSON_CT, broadcast, decodeJwt, headerValues, login, openStream, publish, runBinary,
  serverEnv, startServer, tempDir, until,
} from './lib/server.mjs';

const USERS = {
  alice: { username: 'alice', password: 'alice-Pw-1q2w3e', role: 'subscriber' },
  bob: { username: 'bob', password: 'bob-Pw-4r5t6y', role: 'publisher' },
  carol: { username: 'carol', password: 'carol-Pw-7u8i9o', role: 'admin' },
};

/** `ssehub passwd [args]` with input on stdin. */
function passwd(args, input) {
  const r = spawnSync(BIN, ['passwd', ...args], {
    input, encoding: 'utf8', timeout: 30000, env: serverEnv({}, { defaults: false }),
  });
  return { code: r.status, stdout: r.stdout || '', stderr: r.stderr || '' };
}

/** POST /login from a chosen source address (127.0.0.x all reach the server on lo). */
function loginFrom(srv, creds, localAddress, id = 'x') {
  const body = JSON.stringify({ username: creds.username, password: creds.password, id });
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: HOST, port: srv.port, method: 'POST', path: '/login', localAddress, agent: false, timeout: 20000,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, rawHeaders: res.rawHeaders, body: text, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error('login timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

const verifyLines = (srv) => srv.lines.filter((l) => / login-verify /.test(l)).length;

let usersText;
let hashLine;

before(() => {
  const lines = Object.values(USERS).map((u) => {
    const r = passwd(['--user', u.username, '--role', u.role], `${u.password}\n`);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  });
  usersText = `# made by ssehub passwd\n\n${lines.join('')}`;
  const r = passwd([], 'plain-Pw\n');
  assert.equal(r.code, 0, r.stderr);
  hashLine = r.stdout;
});

describe('ssehub passwd', () => {
  test('prints one argon2id hash line, or a whole users-file line', () => {
    assert.match(hashLine, /^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[^:\s]+\n$/);
    const lines = usersText.split('\n').filter((l) => l && !l.startsWith('#'));
    assert.equal(lines.length, 3);
    for (const [i, u] of Object.values(USERS).entries()) {
      assert.ok(lines[i].startsWith(`${u.username}:${u.role}:$argon2id$`), lines[i]);
      assert.ok(!lines[i].includes(u.password), 'the password is not echoed');
    }
  });

  test('refuses no password, a bad role, --user without --role', () => {
    let r = passwd([], '');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no password/);
    assert.equal(r.stdout, '');
    r = passwd(['--user', 'x', '--role', 'root'], 'pw\n');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /role/);
    r = passwd(['--user', 'x'], 'pw\n');
    assert.equal(r.code, 2);
    r = passwd(['--user', 'a:b', '--role', 'admin'], 'pw\n');
    assert.equal(r.code, 2);
  });
});

describe('users file', () => {
  let srv;
  before(async () => {
    srv = await startServer({
      files: { users: usersText },
      env: { SSE_USERS_FILE: 'users', SSE_LOG_LEVEL: 'debug', SSE_DB: 'off' },
    });
  });
  after(async () => { if (srv) await srv.stopClean(); });

  test('each role logs in; its token works for that role', async () => {
    for (const u of Object.values(USERS)) {
      const r = await login(srv, u, `${u.username}-id`);
      assert.equal(r.status, 200, r.body);
      assert.match(r.headers['content-type'], JSON_CT);
      const claims = decodeJwt(r.token).payload;
      assert.equal(claims.username, u.username);
      assert.equal(claims.sub, `${u.username}-id`);
      assert.equal(r.id, `${u.username}-id`);
      assert.equal(Buffer.from(r.cookie, 'base64').toString('utf8'), r.body, 'goSSE cookie: base64 of the body');
      assert.match(r.setCookie[0], /; HttpOnly; SameSite=Lax$/);
    }
    const bob = await login(srv, USERS.bob);
    const carol = await login(srv, USERS.carol);
    const alice = await login(srv, USERS.alice, 'alice-stream');
    const s = await openStream(srv, { bearer: alice.token });
    await publish(srv, bob.token, { content: 'from-bob', user: 'alice-stream' });
    await publish(srv, carol.token, { content: 'from-carol' });
    await s.waitForData('from-bob');
    await s.waitForData('from-carol');
    s.close();
    const denied = await broadcast(srv, alice.token, { content: 'no' });
    assert.equal(denied.status, 403, 'a subscriber may not publish');
    assert.ok(srv.lines.some((l) => /INFO login ip=127\.0\.0\.1 user=carol role=admin/.test(l)));
  });

  test('SSE_* accounts still log in next to the file', async () => {
    const r = await login(srv, 'sub', 'e');
    assert.equal(r.status, 200, r.body);
    assert.equal(decodeJwt(r.token).payload.username, ACCOUNTS.sub.username);
  });

  test('wrong password and unknown name: 401, and both run the argon2id verifier', async () => {
    const cases = [
      { username: 'alice', password: 'not-alices' },
      { username: 'nobody-here', password: 'whatever-Pw' },
      { username: ACCOUNTS.sub.username, password: 'wrong-env-pw' },
    ];
    for (const c of cases) {
      const n = verifyLines(srv);
      const r = await loginFrom(srv, c, `127.0.0.${10 + cases.indexOf(c)}`);
      assert.equal(r.status, 401, r.body);
      assert.deepEqual(r.json, { error: 'invalid credentials' });
      assert.equal(headerValues(r, 'set-cookie').length, 0);
      await until(() => verifyLines(srv) === n + 1, 3000, `a login-verify line for ${c.username}`);
      const line = srv.lines.filter((l) => / login-verify /.test(l)).at(-1);
      assert.match(line, new RegExp(`user=${c.username} check=argon2id`));
    }
  });
});

describe('bad users file', () => {
  const start = (text, env = {}) => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'users'), text);
    return runBinary([], { cwd: dir, defaults: true, env: { SSE_USERS_FILE: 'users', SSE_DB: 'off', ...env }, timeout: 15000 });
  };

  test('a bad line stops start-up with one line naming SSE_USERS_FILE and the line', () => {
    const r = start(`${usersText}\nmallory:root:${hashLine}`);
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^ssehub: SSE_USERS_FILE: users: line 7: the role must be/);
  });

  test('a name clashing with an SSE_* account, a hash that is not argon2id, a missing file', () => {
    let r = start(`${ACCOUNTS.pub.username}:publisher:${hashLine}`);
    assert.equal(r.code, 1);
    assert.match(r.stderr.trim(), /^ssehub: SSE_USERS_FILE: users: line 1: account name "e2e-pub" is already used$/);
    r = start('eve:admin:secret\n');
    assert.equal(r.code, 1);
    assert.match(r.stderr.trim(), /^ssehub: SSE_USERS_FILE: users: line 1: the hash is not an argon2id string/);
    r = runBinary([], { defaults: true, env: { SSE_USERS_FILE: '/nonexistent/users' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr.trim(), /^ssehub: SSE_USERS_FILE: cannot read "\/nonexistent\/users"/);
  });
});

describe('brute-force limits', () => {
  let srv;
  before(async () => {
    srv = await startServer({
      files: { users: usersText },
      env: { SSE_USERS_FILE: 'users', SSE_LOG_LEVEL: 'debug', SSE_DB: 'off' },
    });
  });
  after(async () => { if (srv) await srv.stopClean(); });

  test('after 5 failures from one address: 429 with Retry-After, without checking the password', async () => {
    const attacker = '127.0.0.1';
    for (let i = 0; i < 5; i++) {
      const r = await loginFrom(srv, { username: 'alice', password: `guess-${i}` }, attacker);
      assert.equal(r.status, 401, `failure ${i + 1} is free: ${r.body}`);
    }
    const n = verifyLines(srv);
    const r = await loginFrom(srv, { username: 'alice', password: 'guess-5' }, attacker);
    assert.equal(r.status, 429, r.body);
    assert.match(r.headers['content-type'], JSON_CT);
    assert.match(r.headers['retry-after'], /^[1-9]\d*$/);
    assert.ok(Number(r.headers['retry-after']) <= 900);
    assert.equal(typeof r.json?.error, 'string');
    assert.equal(headerValues(r, 'set-cookie').length, 0);
    // Even the right password of another account waits: the address is blocked.
    const r2 = await loginFrom(srv, USERS.bob, attacker);
    assert.equal(r2.status, 429, r2.body);
    assert.equal(verifyLines(srv), n, 'blocked attempts never reach the verifier');
    assert.ok(srv.lines.some((l) => /WARN login-blocked ip=127\.0\.0\.1 user=alice retry=\d+s/.test(l)));
  });

  test('the attacked user still logs in from another address', async () => {
    const r = await loginFrom(srv, USERS.alice, '127.0.0.2', 'alice-2');
    assert.equal(r.status, 200, r.body);
    assert.equal(decodeJwt(r.json.token).payload.username, 'alice');
  });

  test('another user from another address still logs in', async () => {
    const r = await loginFrom(srv, USERS.bob, '127.0.0.3');
    assert.equal(r.status, 200, r.body);
  });

  test('the blocked address may log in again once the wait is over; a success clears it', async () => {
    // Blocked attempts are not counted, so polling does not lengthen the wait.
    const ok = await until(async () => {
      const r = await loginFrom(srv, USERS.bob, '127.0.0.1');
      assert.ok(r.status === 200 || r.status === 429, `${r.status} ${r.body}`);
      return r.status === 200 && r;
    }, 10000, 'the address to be let in again', 250);
    assert.equal(decodeJwt(ok.json.token).payload.username, 'bob');
    const again = await loginFrom(srv, { username: 'bob', password: 'typo' }, '127.0.0.1');
    assert.equal(again.status, 401, 'counting starts over after a success');
  });
});

describe('brute-force limits without a users file', () => {
  test('SSE_* accounts are limited too; SSE_LOGIN_MAX_FAILURES sets the free failures', async () => {
    const srv = await startServer({ env: { SSE_LOGIN_MAX_FAILURES: 2, SSE_DB: 'off' } });
    try {
      const wrong = { username: ACCOUNTS.sub.username, password: 'nope' };
      assert.equal((await login(srv, wrong)).status, 401);
      assert.equal((await login(srv, wrong)).status, 401);
      const r = await login(srv, 'pub');
      assert.equal(r.status, 429);
      assert.equal(r.headers['retry-after'], '1');
      assert.equal((await loginFrom(srv, ACCOUNTS.sub, '127.0.0.2')).status, 200);
      assert.ok(!srv.lines.some((l) => / login-verify /.test(l)), 'no argon2id without hashed accounts');
    } finally {
      await srv.stopClean();
    }
  });
});
