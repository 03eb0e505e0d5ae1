// A real redis-server for the cluster tests (tests/e2e/cluster*.test.mjs): started on a
// free loopback port in a temporary directory, without persistence unless asked, stopped
// by its PID. The same port can be started again after a stop, as a Redis restart. It
// may be a replica of another (replicaof) or a sentinel (Sentinel below); command()
// speaks RESP to any of them, so the tests need no redis-cli.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const REDIS_BIN = process.env.REDIS_SERVER || '/usr/bin/redis-server';
export const HAVE_REDIS = fs.existsSync(REDIS_BIN);
export const NO_REDIS = `redis-server not installed (Debian package "redis-server", see scripts/setup.sh)`;

const live = new Set();
process.on('exit', () => { for (const p of live) { try { p.kill('SIGKILL'); } catch { /* gone */ } } });

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

export class Redis {
  constructor(port, dir, { aof = false, replicaof = null } = {}) {
    this.port = port; this.dir = dir; this.aof = aof; this.replicaof = replicaof; this.proc = null;
  }

  get url() { return `redis://127.0.0.1:${this.port}`; }

  /** Starts redis-server (again) on this.port; resolves once it accepts connections. */
  async start(timeout = 10000) {
    // aof: every write fsynced before Redis answers, so a restart keeps what it acknowledged.
    const persist = this.aof ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
    const args = this.args ? this.args() : ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '',
      ...persist, '--dir', this.dir, '--protected-mode', 'no',
      ...(this.replicaof ? ['--replicaof', '127.0.0.1', String(this.replicaof)] : [])];
    const proc = spawn(REDIS_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);
    this.proc = proc;
    this.log = '';
    this.exited = new Promise((r) => proc.on('exit', () => { live.delete(proc); r(); }));
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`redis-server did not start on ${this.port}:\n${this.log}`)), timeout);
      const on = (d) => {
        this.log += d;
        if (/Ready to accept connections|Sentinel ID is/.test(this.log)) { clearTimeout(t); resolve(); }
      };
      proc.stdout.setEncoding('utf8');
      proc.stdout.on('data', on);
      proc.stderr.setEncoding('utf8');
      proc.stderr.on('data', on);
      proc.on('exit', (code) => { clearTimeout(t); reject(new Error(`redis-server exited (${code}):\n${this.log}`)); });
    });
    return this;
  }

  /** Stops it by its PID (SIGKILL by default: Redis gone at once) and waits for the exit. */
  async stop(signal = 'SIGKILL') {
    if (!this.proc) return;
    const p = this.proc;
    this.proc = null;
    try { process.kill(p.pid, signal); } catch { /* gone */ }
    await this.exited;
  }
}

/** A fresh redis-server on a free port (opts.aof: append-only file, fsync always). */
export async function startRedis(opts = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-redis-'));
  const r = new Redis(await freePort(), dir, opts);
  return r.start();
}

/** A redis-server in sentinel mode watching the primary at masterPort as `name`. */
export class Sentinel extends Redis {
  constructor(port, dir, name, masterPort, { quorum = 2, downAfter = 1000, failoverTimeout = 3000 } = {}) {
    super(port, dir);
    this.conf = path.join(dir, 'sentinel.conf');
    fs.writeFileSync(this.conf, [
      `port ${port}`, 'bind 127.0.0.1', 'protected-mode no', `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${masterPort} ${quorum}`,
      `sentinel down-after-milliseconds ${name} ${downAfter}`,
      `sentinel failover-timeout ${name} ${failoverTimeout}`,
      `sentinel parallel-syncs ${name} 2`, '',
    ].join('\n'));
  }

  args() { return [this.conf, '--sentinel']; }
}

/** A sentinel on a free port in a directory of its own. */
export async function startSentinel(name, masterPort, opts = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-sentinel-'));
  const s = new Sentinel(await freePort(), dir, name, masterPort, opts);
  return s.start();
}

/**
 * Sends one command to the Redis (or sentinel) on port and resolves its reply: a string,
 * a number, null or an array of those; an error reply rejects. At most timeout ms.
 */
export function command(port, args, timeout = 2000) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`redis ${port}: ${args[0]} timed out`)); }, timeout);
    const done = (fn, v) => { clearTimeout(timer); sock.destroy(); fn(v); };
    sock.on('error', (e) => done(reject, e));
    sock.on('connect', () => {
      sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('')}`);
    });
    // Parses one reply at off; returns [value, next offset], or null when incomplete.
    const parse = (off) => {
      const eol = buf.indexOf('\r\n', off);
      if (eol < 0) return null;
      const kind = String.fromCharCode(buf[off]);
      const line = buf.toString('utf8', off + 1, eol);
      if (kind === '+') return [line, eol + 2];
      if (kind === '-') return [new Error(line), eol + 2];
      if (kind === ':') return [Number(line), eol + 2];
      if (kind === '$') {
        const n = Number(line);
        if (n < 0) return [null, eol + 2];
        if (buf.length < eol + 2 + n + 2) return null;
        return [buf.toString('utf8', eol + 2, eol + 2 + n), eol + 4 + n];
      }
      if (kind === '*') {
        const n = Number(line);
        if (n < 0) return [null, eol + 2];
        const out = [];
        let at = eol + 2;
        for (let i = 0; i < n; i++) {
          const r = parse(at);
          if (!r) return null;
          out.push(r[0]);
          at = r[1];
        }
        return [out, at];
      }
      return [new Error(`unexpected reply ${kind}`), eol + 2];
    };
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const r = parse(0);
      if (!r) return;
      if (r[0] instanceof Error) done(reject, r[0]);
      else done(resolve, r[0]);
    });
  });
}

/** The INFO replication field of the Redis on port (e.g. role, connected_slaves), or undefined. */
export async function replicationField(port, field) {
  const text = await command(port, ['INFO', 'replication']);
  const m = new RegExp(`^${field}:(.*)$`, 'm').exec(text);
  return m ? m[1].trim() : undefined;
}
