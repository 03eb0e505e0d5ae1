// Start-up of one instance: a second ssehub on the same port or the same
// SSE_DB refuses to start with one line naming what is taken (SSE_REUSE_PORT=1
// shares the port on purpose), a history that cannot be written stops
// start-up, unknown SSE_* names are warned about, and the `make run` banner
// names the port really used.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, test, after } from 'node:test';
import {
  BIN, REPO, openStream, publish, request, runBinary, serverEnv, startServer, tempDir, tokenFor,
  until,
} from './lib/server.mjs';

const servers = [];
after(async () => { for (const s of servers) await s.stop().catch(() => {}); });

const lines = (s) => s.split('\n').filter((l) => l.trim() !== '');

/** Start a server and remember it for the after() hook. */
async function start(opts) {
  const srv = await startServer(opts);
  servers.push(srv);
  return srv;
}

/** Opens n streams on port, each with its own login, then closes them. */
async function openStreams(port, n) {
  const streams = [];
  for (let i = 0; i < n; i++) {
    // A login and a stream per connection: either may land on any listener of the port.
    const jwt = await tokenFor(port, 'sub', `u${i}`);
    streams.push(await openStream(port, { bearer: jwt }));
  }
  for (const s of streams) s.close();
}

const connects = (srv) => srv.lines.filter((l) => / connect ip=/.test(l)).length;

describe('one process per port', () => {
  test('a second server on the same port exits 1 naming the address; the first serves every connection', async () => {
    const first = await start({ env: { SSE_DB: 'off' } });
    const r = runBinary([], { env: { SSE_DB: 'off', SSE_PORT: String(first.port) }, defaults: true });
    assert.equal(r.code, 1, `second server: exit ${r.code} signal ${r.signal}; stderr:\n${r.stderr}`);
    const ls = lines(r.stderr);
    assert.equal(ls.length, 1, `one line expected, got:\n${r.stderr}`);
    assert.match(ls[0], new RegExp(`another process is listening on 127\\.0\\.0\\.1:${first.port}\\b`));

    await openStreams(first.port, 50);
    await until(() => connects(first) === 50, 3000, `50 connect lines from the first server (got ${connects(first)})`);
    for (let i = 0; i < 10; i++) assert.equal((await request(first, 'GET', '/healthz')).status, 200);
  });

  test('a server with SSE_REUSE_PORT=1 is refused by one that does not share', async () => {
    const first = await start({ env: { SSE_DB: 'off', SSE_REUSE_PORT: '1' } });
    const r = runBinary([], { env: { SSE_DB: 'off', SSE_PORT: String(first.port) }, defaults: true });
    assert.equal(r.code, 1, `exit ${r.code}; stderr:\n${r.stderr}`);
    assert.match(r.stderr, /another process is listening on 127\.0\.0\.1:\d+/);
  });

  test('with SSE_REUSE_PORT=1 on both, both start and share the connections', async () => {
    const first = await start({ env: { SSE_DB: 'off', SSE_REUSE_PORT: '1' } });
    const second = await start({ env: { SSE_DB: 'off', SSE_REUSE_PORT: '1', SSE_PORT: String(first.port) } });
    assert.equal(second.port, first.port);
    await openStreams(first.port, 50);
    await until(() => connects(first) + connects(second) === 50, 3000, '50 connect lines in all');
    const a = connects(first), b = connects(second);
    assert.ok(a > 0 && b > 0, `both servers took streams (first ${a}, second ${b})`);
    assert.equal((await first.stop()).code, 0);
    assert.equal((await request(second, 'GET', '/healthz')).status, 200, 'the second serves on alone');
  });

  test('a restart right after a stop binds the port again (connections in TIME_WAIT do not count)', async () => {
    const first = await start({ env: { SSE_DB: 'off' } });
    await openStreams(first.port, 5); // the server closes them at stop: TIME_WAIT on its side
    const jwt = await tokenFor(first, 'sub', 'x');
    const s = await openStream(first, { bearer: jwt });
    assert.equal((await first.stop()).code, 0);
    await s.ended;
    const again = await start({ env: { SSE_DB: 'off', SSE_PORT: String(first.port) } });
    assert.equal(again.port, first.port);
    assert.equal((await request(again, 'GET', '/healthz')).status, 200);
  });
});

describe('one process per database', () => {
  test('a second server on the same SSE_DB exits 1 naming it; a restart after the first stops works', async () => {
    const dir = tempDir();
    const db = path.join(dir, 'shared', 'history.db');
    const first = await start({ env: { SSE_DB: db } });
    const id = await publish(first, await tokenFor(first, 'pub'), { content: 'from the first' });

    // Another port, the same database.
    const r = runBinary([], { env: { SSE_DB: db }, defaults: true });
    assert.equal(r.code, 1, `second server: exit ${r.code} signal ${r.signal}; stderr:\n${r.stderr}`);
    const ls = lines(r.stderr);
    assert.equal(ls.length, 1, `one line expected, got:\n${r.stderr}`);
    assert.ok(ls[0].includes(`SSE_DB: store ${db}: another process is using this database`), ls[0]);
    assert.equal((await request(first, 'GET', '/healthz')).status, 200, 'the first serves on');
    assert.equal(await publish(first, await tokenFor(first, 'pub'), { content: 'still' }), id + 1);

    assert.equal((await first.stop()).code, 0);
    const again = await start({ env: { SSE_DB: db } });
    assert.equal(await publish(again, await tokenFor(again, 'pub'), { content: 'after' }), id + 2,
      'the restarted server continues the same history');
    assert.ok(fs.existsSync(`${db}.lock`), 'the lock file stays beside the database');
  });

  test('a relative and an absolute SSE_DB naming the same file are one database', async () => {
    const dir = tempDir();
    const first = await start({ cwd: dir, env: { SSE_DB: 'h.db' } });
    const r = runBinary([], { env: { SSE_DB: path.join(dir, 'h.db') }, defaults: true });
    assert.equal(r.code, 1, `exit ${r.code}; stderr:\n${r.stderr}`);
    assert.match(r.stderr, /another process is using this database/);
    assert.equal((await first.stop()).code, 0);
  });
});

describe('a history that cannot be written stops start-up', () => {
  /** A server's database after one event and a clean stop. */
  async function makeDb() {
    const srv = await start({});
    await publish(srv, await tokenFor(srv, 'pub'), { content: 'one' });
    assert.equal((await srv.stop()).code, 0);
    return { cwd: srv.cwd, db: path.join(srv.cwd, 'data', 'ssehub.db') };
  }

  test('a read-only database file: exit 1 with SQLite\'s message, not a server answering 503', async (t) => {
    const { cwd, db } = await makeDb();
    fs.chmodSync(db, 0o444);
    // Root ignores file modes (CAP_DAC_OVERRIDE): run it without capabilities, as a service would.
    let cmd = BIN, args = [];
    if (process.getuid() === 0) {
      const probe = spawnSync('setpriv', ['--inh-caps=-all', '--bounding-set=-all', 'true']);
      if (probe.status !== 0) {
        t.skip('running as root and setpriv cannot drop capabilities here');
        return;
      }
      cmd = 'setpriv';
      args = ['--inh-caps=-all', '--bounding-set=-all', BIN];
    }
    const r = spawnSync(cmd, args, { cwd, env: serverEnv({}), encoding: 'utf8', timeout: 5000, killSignal: 'SIGKILL' });
    assert.equal(r.status, 1, `exit ${r.status} signal ${r.signal}; stderr:\n${r.stderr}`);
    const ls = lines(r.stderr);
    assert.equal(ls.length, 1, `one line expected, got:\n${r.stderr}`);
    assert.match(ls[0], /^ssehub: SSE_DB: store \.\/data\/ssehub\.db: cannot write the database: attempt to write a readonly database$/);
  });

  test('a database whose inserts fail (a trigger refuses them): exit 1 with the trigger\'s message', async (t) => {
    if (spawnSync('sh', ['-c', 'command -v sqlite3']).status !== 0) {
      t.skip('sqlite3 CLI not installed (Debian package "sqlite3")');
      return;
    }
    const { cwd, db } = await makeDb();
    const sql = "CREATE TRIGGER no_more BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'history is frozen'); END;";
    const q = spawnSync('sqlite3', [db, sql], { encoding: 'utf8' });
    assert.equal(q.status, 0, q.stderr);
    const r = runBinary([], { cwd, defaults: true });
    assert.equal(r.code, 1, `exit ${r.code} signal ${r.signal}; stderr:\n${r.stderr}`);
    const ls = lines(r.stderr);
    assert.equal(ls.length, 1, `one line expected, got:\n${r.stderr}`);
    assert.match(ls[0], /SSE_DB: store .*: cannot write the database: history is frozen$/);
  });
});

describe('unknown SSE_ names', () => {
  test('a name in the environment or in .env that is no setting is warned about, with the closest one', async () => {
    const srv = await start({
      env: { SSE_PROT: '9999', SSE_SOMETHING_ELSE: '1', SSEHUB_NOT_OURS: '1', SSE_DB: 'off' },
      files: { '.env': '# typed by hand\nSSE_WORKER=2\nexport SSE_HEARTBEET=5\nCOMPOSE_PROJECT_NAME=x\n' },
    });
    const warnings = srv.lines.filter((l) => /unknown setting/.test(l)).map((l) => l.replace(/^\S+ /, ''));
    assert.deepEqual(warnings.sort(), [
      'WARN SSE_HEARTBEET: unknown setting; did you mean SSE_HEARTBEAT?',
      'WARN SSE_PROT: unknown setting; did you mean SSE_PORT?',
      'WARN SSE_SOMETHING_ELSE: unknown setting',
      'WARN SSE_WORKER: unknown setting; did you mean SSE_WORKERS?',
    ]);
    assert.equal((await request(srv, 'GET', '/healthz')).status, 200, 'a warning does not stop start-up');
  });

  test('the test environment itself sets no unknown SSE_ name', async () => {
    const srv = await start({ env: { SSE_DB: 'off' } });
    assert.deepEqual(srv.lines.filter((l) => /unknown setting/.test(l)), []);
  });
});

describe('the banner of `make run` names the port really used', () => {
  /** A port nothing listens on right now. */
  const freePort = () => new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });

  /** What `make run` does after building, in dir: scripts/make-env.sh, then the server. */
  async function makeRun(dir, env) {
    const banner = spawnSync('sh', [path.join(REPO, 'scripts/make-env.sh')], { cwd: dir, env, encoding: 'utf8', timeout: 5000 });
    assert.equal(banner.status, 0, banner.stderr);
    const srv = await start({ cwd: dir, rawEnv: env });
    return { banner: banner.stdout, srv };
  }

  const dotEnv = (port) => [
    'SSE_APP_KEY=banner-key-0123456789abcdef0123456789',
    'SSE_HOST=127.0.0.1',
    `export SSE_PORT = "${port}"   # the port of this file`,
    'SSE_BROADCASTER_USERNAME=bc',
    "SSE_BROADCASTER_PASSWORD='bc-pw'",
    'SSE_DB=off',
    '',
  ].join('\n');

  // The environment make run inherits: only what the test sets, no account or port by default.
  const bare = (extra) => serverEnv(extra, { defaults: false });

  test('SSE_PORT in the environment wins over .env, in the banner as in the server', async () => {
    const [inFile, inEnv] = [await freePort(), await freePort()];
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, '.env'), dotEnv(inFile));
    const { banner, srv } = await makeRun(dir, bare({ SSE_PORT: String(inEnv) }));
    assert.equal(srv.port, inEnv, 'the server listens on the environment\'s port');
    assert.ok(banner.includes(`curl -s -X POST http://127.0.0.1:${inEnv}/login -H 'Content-Type: application/json' -d '{"username":"bc","password":"bc-pw"}'`), banner);
    assert.ok(banner.includes(`open http://127.0.0.1:${inEnv}/example`), banner);
    assert.ok(!banner.includes(`:${inFile}`), `the banner names .env's port:\n${banner}`);
    assert.match(srv.lines.join('\n'), new RegExp(`listening on 127\\.0\\.0\\.1:${inEnv} `));
  });

  test('without one in the environment, .env\'s port (quoted, after export) is the one shown and used', async () => {
    const inFile = await freePort();
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, '.env'), dotEnv(inFile));
    const { banner, srv } = await makeRun(dir, bare({}));
    assert.equal(srv.port, inFile);
    assert.ok(banner.includes(`http://127.0.0.1:${inFile}/login`), banner);
  });

  test('SSE_PORT=0: the banner defers to the server, whose line gives the port it picked', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, '.env'), dotEnv(8080));
    const { banner, srv } = await makeRun(dir, bare({ SSE_PORT: '0' }));
    assert.ok(banner.includes('"listening on" line'), banner);
    assert.ok(!/127\.0\.0\.1:\d/.test(banner), `no port guessed:\n${banner}`);
    assert.notEqual(srv.port, 0);
    assert.notEqual(srv.port, 8080);
    assert.equal((await request(srv, 'GET', '/healthz')).status, 200);
  });
});
