// A real redis-server for the cluster tests (tests/e2e/cluster.test.mjs): started on a
// free loopback port in a temporary directory, without persistence, stopped by its PID.
// The same port can be started again after a stop, as a Redis restart.

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
  constructor(port, dir, { aof = false } = {}) { this.port = port; this.dir = dir; this.aof = aof; this.proc = null; }

  get url() { return `redis://127.0.0.1:${this.port}`; }

  /** Starts redis-server (again) on this.port; resolves once it accepts connections. */
  async start(timeout = 10000) {
    // aof: every write fsynced before Redis answers, so a restart keeps what it acknowledged.
    const persist = this.aof ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
    const proc = spawn(REDIS_BIN, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '',
      ...persist, '--dir', this.dir, '--protected-mode', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);
    this.proc = proc;
    this.log = '';
    this.exited = new Promise((r) => proc.on('exit', () => { live.delete(proc); r(); }));
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`redis-server did not start on ${this.port}:\n${this.log}`)), timeout);
      const on = (d) => {
        this.log += d;
        if (/Ready to accept connections/.test(this.log)) { clearTimeout(t); resolve(); }
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
