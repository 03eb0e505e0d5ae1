// Helpers for the end-to-end suite: start the real ssehub binary in a fresh
// temporary directory with an environment we control, talk to it over real
// sockets (node:http for ordinary requests, node:net for raw bytes and SSE
// streams), mint tokens, and count the server's open file descriptors.

import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = process.env.SSEHUB_BIN
  ? path.resolve(process.env.SSEHUB_BIN)
  : path.join(REPO, 'build/ssehub');
export const HOST = '127.0.0.1';

export const APP_KEY = 'e2e-app-key-Zq7v0Lr2x9Kp4Wm8-s3Jd6Ty1';
export const ACCOUNTS = {
  sub: { username: 'e2e-sub', password: 'sub-Pw-9f3k2j' },
  pub: { username: 'e2e-pub', password: 'pub-Pw-7h1g5d' },
  admin: { username: 'e2e-admin', password: 'adm-Pw-3x8c6v' },
};

// Sanitizer knobs may be passed through; nothing else from the parent env.
const PASS_THROUGH = ['ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS'];

/** The environment a test server gets: defaults plus overrides (null deletes). */
export function serverEnv(overrides = {}, { defaults = true } = {}) {
  const env = { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' };
  for (const k of PASS_THROUGH) if (process.env[k] !== undefined) env[k] = process.env[k];
  if (defaults) {
    Object.assign(env, {
      SSE_HOST: HOST,
      SSE_PORT: '0',
      SSE_APP_KEY: APP_KEY,
      SSE_CLIENT_USERNAME: ACCOUNTS.sub.username,
      SSE_CLIENT_PASSWORD: ACCOUNTS.sub.password,
      SSE_BROADCASTER_USERNAME: ACCOUNTS.pub.username,
      SSE_BROADCASTER_PASSWORD: ACCOUNTS.pub.password,
      SSE_ADMIN_USERNAME: ACCOUNTS.admin.username,
      SSE_ADMIN_PASSWORD: ACCOUNTS.admin.password,
      SSE_LOG_LEVEL: 'info',
    });
    // `make test` runs the suite with several worker counts.
    if (process.env.SSEHUB_WORKERS) env.SSE_WORKERS = process.env.SSEHUB_WORKERS;
  }
  for (const [k, v] of Object.entries(overrides)) {
    if (v === null || v === undefined) delete env[k];
    else env[k] = String(v);
  }
  return env;
}

export function tempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-e2e-'));
}

const live = new Set();
process.on('exit', () => {
  for (const p of live) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
});

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Wait until fn() is truthy (polling), or throw after timeout ms. */
export async function until(fn, timeout = 3000, what = 'condition', every = 10) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(every);
  }
}

/**
 * Start the binary. opts.env: overrides on top of serverEnv; opts.defaults:
 * false for an empty base env; opts.files: {name: content} written into the
 * temp cwd first; opts.args: extra argv. Resolves once the `listening on
 * HOST:PORT` line is seen on stderr.
 */
export async function startServer(opts = {}) {
  const cwd = opts.cwd || tempDir();
  for (const [name, content] of Object.entries(opts.files || {})) {
    fs.writeFileSync(path.join(cwd, name), content);
  }
  const env = opts.rawEnv || serverEnv(opts.env || {}, { defaults: opts.defaults !== false });
  if (!fs.existsSync(BIN)) throw new Error(`ssehub binary not found at ${BIN} (build it or set SSEHUB_BIN)`);
  const proc = spawn(BIN, opts.args || [], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  const srv = new Server(proc, cwd);
  if (opts.port) {
    // Fixed port (e.g. a log level that hides the listening line): poll it.
    srv.host = HOST;
    srv.port = opts.port;
    const end = Date.now() + (opts.startTimeout || 10000);
    for (;;) {
      const ok = await new Promise((r) => {
        const s = net.connect({ host: HOST, port: opts.port });
        s.on('connect', () => { s.destroy(); r(true); });
        s.on('error', () => r(false));
      });
      if (ok) return srv;
      if (srv.exitInfo || Date.now() > end) {
        try { proc.kill('SIGKILL'); } catch { /* gone */ }
        throw new Error(`server did not start on port ${opts.port}\nstderr:\n${srv.stderr}`);
      }
      await sleep(50);
    }
  }
  try {
    const line = await srv.waitForLog(/listening on (\S+):(\d+)/, opts.startTimeout || 10000);
    const m = /listening on (\S+):(\d+)/.exec(line);
    srv.host = m[1];
    srv.port = Number(m[2]);
  } catch (e) {
    try { proc.kill('SIGKILL'); } catch { /* gone */ }
    throw new Error(`server did not start: ${e.message}\nstderr:\n${srv.stderr}`);
  }
  return srv;
}

export class Server {
  constructor(proc, cwd) {
    this.proc = proc;
    this.pid = proc.pid;
    this.cwd = cwd;
    this.lines = [];
    this.stdout = '';
    this._waiters = new Set();
    let partial = '';
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d) => {
      partial += d;
      let i;
      while ((i = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, i);
        partial = partial.slice(i + 1);
        this.lines.push(line);
        if (process.env.SSEHUB_E2E_VERBOSE) process.stderr.write(`[ssehub ${proc.pid}] ${line}\n`);
        for (const w of this._waiters) w(line);
      }
    });
    proc.stderr.on('end', () => { if (partial) { this.lines.push(partial); for (const w of this._waiters) w(partial); partial = ''; } });
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (d) => { this.stdout += d; });
    this.exitInfo = null;
    this.exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        live.delete(proc);
        this.exitInfo = { code, signal };
        for (const w of this._waiters) w(null);
        resolve(this.exitInfo);
      });
    });
  }

  get stderr() { return this.lines.join('\n'); }
  get base() { return `http://${HOST}:${this.port}`; }
  url(p) { return this.base + p; }

  /** Resolve with the first stderr line (already seen or future) matching re. */
  waitForLog(re, timeout = 3000) {
    const hit = this.lines.find((l) => re.test(l));
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this._waiters.delete(w); reject(new Error(`no log line matching ${re} within ${timeout} ms`)); }, timeout);
      const w = (line) => {
        if (line === null) {
          clearTimeout(t); this._waiters.delete(w);
          reject(new Error(`server exited (${JSON.stringify(this.exitInfo)}) before logging ${re}`));
        } else if (re.test(line)) { clearTimeout(t); this._waiters.delete(w); resolve(line); }
      };
      this._waiters.add(w);
      if (this.exitInfo) w(null);
    });
  }

  /** Number of open file descriptors of the server process. */
  fdCount() { return fs.readdirSync(`/proc/${this.pid}/fd`).length; }

  /**
   * Send a signal (SIGTERM by default) and wait for exit. If the process is
   * still alive after timeout ms it is SIGKILLed and this throws, so the test
   * fails. Resolves with {code, signal, ms}.
   */
  async stop({ signal = 'SIGTERM', timeout = 5000 } = {}) {
    if (this.exitInfo) return { ...this.exitInfo, ms: 0 };
    const t0 = Date.now();
    try { this.proc.kill(signal); } catch { /* already gone */ }
    return this.waitExit(timeout, t0);
  }

  /** Wait for the process to exit on its own; SIGKILL + throw after timeout. */
  async waitExit(timeout = 5000, t0 = Date.now()) {
    let timer;
    const r = await Promise.race([
      this.exited,
      new Promise((res) => { timer = setTimeout(() => res(null), timeout); }),
    ]);
    clearTimeout(timer);
    if (r === null) {
      try { this.proc.kill('SIGKILL'); } catch { /* gone */ }
      await this.exited;
      throw new Error(`ssehub (pid ${this.pid}) did not exit within ${timeout} ms; killed with SIGKILL`);
    }
    const report = sanitizerReport(this.stderr);
    if (report) throw new Error(`sanitizer report from ssehub (pid ${this.pid}):\n${report}`);
    return { ...r, ms: Date.now() - t0 };
  }

  /** Stop and assert a clean exit (code 0); used in after() hooks. */
  async stopClean() {
    const r = await this.stop();
    if (r.code !== 0) throw new Error(`ssehub exited with ${JSON.stringify(r)} on SIGTERM; stderr:\n${this.stderr}`);
    return r;
  }
}

/** The first sanitizer (ASan/UBSan/LSan) report in a stderr text, if any. */
export function sanitizerReport(text) {
  const i = text.search(/ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|SUMMARY: \w+Sanitizer/);
  return i < 0 ? null : text.slice(Math.max(0, i - 200), i + 3000);
}

/** Run the binary to completion (for --help, start-up refusals). */
export function runBinary(args = [], { env = {}, defaults = false, cwd, timeout = 5000, rawEnv } = {}) {
  const dir = cwd || tempDir();
  const r = spawnSync(BIN, args, {
    cwd: dir,
    env: rawEnv || serverEnv(env, { defaults }),
    encoding: 'utf8',
    timeout,
    killSignal: 'SIGKILL',
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout || '', stderr: r.stderr || '', error: r.error };
}

// ---------------------------------------------------------------- HTTP ----

/**
 * One HTTP request on its own connection. body: string/Buffer, or an object
 * (sent as JSON). Resolves {status, headers, rawHeaders, body, json}.
 */
export function request(srv, method, p, { headers = {}, body, timeout = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    let payload = body;
    const h = { ...headers };
    if (payload !== undefined && typeof payload === 'object' && !Buffer.isBuffer(payload)) {
      payload = JSON.stringify(payload);
      if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['Content-Type'] = 'application/json';
    }
    const req = http.request({
      host: HOST, port: srv.port ?? srv, method, path: p, headers: h, agent: false, timeout,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const buf = Buffer.concat(chunks);
        const text = buf.toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, rawHeaders: res.rawHeaders, body: text, buf, json });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${p}: timeout`)));
    req.on('error', reject);
    if (payload !== undefined) req.end(payload); else req.end();
  });
}

/** All values of a response header (case-insensitive) from rawHeaders. */
export function headerValues(res, name) {
  const out = [];
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    if (res.rawHeaders[i].toLowerCase() === name.toLowerCase()) out.push(res.rawHeaders[i + 1]);
  }
  return out;
}

export const JSON_CT = /^application\/json(;\s*charset=utf-8)?$/i;
export const SSE_CT = /^text\/event-stream(;\s*charset=utf-8)?$/i;

/** POST /login; resolves the response plus token, id and cookie value. */
export async function login(srv, who, id, extra = {}) {
  const creds = typeof who === 'string' ? ACCOUNTS[who] : who;
  const body = { username: creds.username, password: creds.password };
  if (id !== undefined) body.id = id;
  const res = await request(srv, 'POST', '/login', { body, ...extra });
  const sc = headerValues(res, 'set-cookie');
  const m = sc.length ? /^sse_token=([^;]*)/.exec(sc[0]) : null;
  return { ...res, token: res.json?.token, id: res.json?.id, cookie: m ? m[1] : undefined, setCookie: sc };
}

/** Log in and return the JWT; throws unless 200. */
export async function tokenFor(srv, who, id) {
  const r = await login(srv, who, id);
  if (r.status !== 200 || !r.token) throw new Error(`login ${JSON.stringify(who)} failed: ${r.status} ${r.body}`);
  return r.token;
}

/** POST /broadcast with a Bearer token. */
export function broadcast(srv, token, payload, extra = {}) {
  const headers = { ...(extra.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  return request(srv, 'POST', '/broadcast', { ...extra, headers, body: payload });
}

/** Broadcast and insist on 201; returns the event id. */
export async function publish(srv, token, payload) {
  const r = await broadcast(srv, token, payload);
  if (r.status !== 201) throw new Error(`broadcast ${JSON.stringify(payload).slice(0, 200)} -> ${r.status} ${r.body}`);
  return r.json.id;
}

// -------------------------------------------------------------- tokens ----

export const b64 = (s) => Buffer.from(s).toString('base64');
export const b64url = (s) => Buffer.from(s).toString('base64url');

/** The `token` query parameter / cookie value SSEClient.withToken builds. */
export function tokenParam(jwt, id) {
  return b64(JSON.stringify({ token: jwt, id }));
}

export function decodeJwt(jwt) {
  const [h, p, s] = jwt.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')),
    signature: s,
  };
}

/** Sign header.payload with HMAC-SHA256 (or build alg:none when key is null). */
export function mintJwt(payload, key = APP_KEY, header = { alg: 'HS256', typ: 'JWT' }) {
  const data = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  if (key === null) return `${data}.`;
  const sig = crypto.createHmac('sha256', key).update(data).digest('base64url');
  return `${data}.${sig}`;
}

// ----------------------------------------------------------- raw bytes ----

/**
 * Parse consecutive HTTP/1.x responses out of buf. Responses without a
 * length (and not 204/304) take the rest of the buffer. Returns
 * {responses: [{status, reason, headers, raw, body}], rest}.
 */
export function parseResponses(buf) {
  const responses = [];
  let off = 0;
  while (off < buf.length) {
    const end = buf.indexOf('\r\n\r\n', off, 'latin1');
    if (end < 0) break;
    const head = buf.subarray(off, end).toString('latin1');
    const [statusLine, ...lines] = head.split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine);
    if (!m) throw new Error(`bad status line: ${JSON.stringify(statusLine)}`);
    const headers = {};
    const raw = [];
    for (const l of lines) {
      const i = l.indexOf(':');
      const k = l.slice(0, i).trim().toLowerCase();
      const v = l.slice(i + 1).trim();
      raw.push([k, v]);
      headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
    }
    const status = Number(m[1]);
    let bodyStart = end + 4;
    let body;
    if (status === 204 || status === 304 || (status >= 100 && status < 200)) {
      body = Buffer.alloc(0);
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (bodyStart + n > buf.length) break;
      body = buf.subarray(bodyStart, bodyStart + n);
      bodyStart += n;
    } else if (/chunked/i.test(headers['transfer-encoding'] || '')) {
      const parts = [];
      let p = bodyStart;
      let done = false;
      for (;;) {
        const le = buf.indexOf('\r\n', p, 'latin1');
        if (le < 0) break;
        const size = parseInt(buf.subarray(p, le).toString('latin1'), 16);
        if (size === 0) { const te = buf.indexOf('\r\n\r\n', le - 2 < p ? p : le - 2, 'latin1'); if (te < 0) break; p = te + 4; done = true; break; }
        if (le + 2 + size + 2 > buf.length) break;
        parts.push(buf.subarray(le + 2, le + 2 + size));
        p = le + 2 + size + 2;
      }
      if (!done) break;
      body = Buffer.concat(parts);
      bodyStart = p;
    } else {
      body = buf.subarray(bodyStart);
      bodyStart = buf.length;
    }
    responses.push({ status, reason: m[2] || '', headers, raw, head, body, text: body.toString('utf8') });
    off = bodyStart;
  }
  return { responses, rest: buf.subarray(off) };
}

/**
 * Open a raw TCP connection, write `data` (a string/Buffer, or an array of
 * {data, delay} steps), then collect everything until the server closes the
 * connection or `timeout` ms pass. Resolves {buf, text, closed: 'end' |
 * 'reset' | 'timeout', ms (time of close since connect), writeError}.
 */
export function rawExchange(port, data, { timeout = 3000, stopWhen } = {}) {
  return new Promise((resolve) => {
    const chunks = [];
    const t0 = Date.now();
    let finished = false;
    let writeError;
    const sock = net.connect({ host: HOST, port });
    const finish = (closed) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.destroy();
      const buf = Buffer.concat(chunks);
      resolve({ buf, text: buf.toString('latin1'), closed, ms: Date.now() - t0, writeError });
    };
    const timer = setTimeout(() => finish('timeout'), timeout);
    sock.on('data', (c) => {
      chunks.push(c);
      if (stopWhen && stopWhen(Buffer.concat(chunks))) finish('stopped');
    });
    sock.on('end', () => finish('end'));
    sock.on('error', (e) => {
      if (e.code === 'EPIPE' && !finished) { writeError = e.code; return; }
      finish(e.code === 'ECONNRESET' ? 'reset' : `error:${e.code}`);
    });
    sock.on('close', () => finish('end'));
    sock.on('connect', async () => {
      const steps = Array.isArray(data) ? data : [{ data }];
      for (const s of steps) {
        if (finished) return;
        if (s.delay) await sleep(s.delay);
        if (finished || sock.destroyed) return;
        if (s.data !== undefined && s.data !== null && s.data.length) sock.write(s.data, (e) => { if (e) writeError = e.code; });
      }
    });
  });
}

/** Serialize a request: {method, path, headers{}, body}. Adds Host and Content-Length. */
export function rawRequest({ method = 'GET', path: p = '/', headers = {}, body, host = '127.0.0.1' }) {
  const lines = [`${method} ${p} HTTP/1.1`, `Host: ${host}`];
  let b = body;
  if (b !== undefined && typeof b === 'object' && !Buffer.isBuffer(b)) b = JSON.stringify(b);
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  if (b !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-length')) {
    lines.push(`Content-Length: ${Buffer.byteLength(b)}`);
  }
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), Buffer.from(b ?? '', 'utf8')]);
}

// --------------------------------------------------------- SSE streams ----

/**
 * A GET /events (or any path) on a raw socket, with an SSE parser over the
 * body. Fields:
 *   head      promise of {status, headers, raw, text} once the head arrived
 *   body      Buffer of every body byte received so far (keep: true)
 *   text      body decoded as UTF-8
 *   frames    parsed blocks: {id, event, data: [lines], comments: [], retry}
 *   events    frames holding data lines (what an EventSource dispatches)
 *   ended     promise of {how: 'end' | 'reset' | 'destroyed', at}
 * Options: headers, bearer (JWT), keep (store raw bytes, default true),
 * onFrame(frame) callback, pauseAfterHead (stop reading from the kernel once
 * the head and first bytes came).
 */
export class SseStream {
  constructor(port, { path: p = '/events', headers = {}, bearer, keep = true, onFrame, pauseAfterHead = false, tls: tlsOpts } = {}) {
    this.port = port;
    this.keep = keep;
    this.onFrame = onFrame;
    this.chunks = [];
    this.bodyBytes = 0;
    this.frames = [];
    this.events = [];
    this.headInfo = null;
    this._pending = Buffer.alloc(0);
    this._dec = new StringDecoder('utf8');
    this._lineBuf = '';
    this._cur = null;
    this._watchers = new Set();
    this.endInfo = null;
    const h = { ...headers };
    if (bearer) h.Authorization = `Bearer ${bearer}`;
    // With opts.tls ({ca, ...} for tls.connect) the same stream runs over HTTPS.
    this.sock = tlsOpts ? tls.connect({ host: HOST, port, ...tlsOpts }) : net.connect({ host: HOST, port });
    const up = tlsOpts ? 'secureConnect' : 'connect';
    this.connected = new Promise((r) => this.sock.once(up, r));
    this.head = new Promise((resolve, reject) => { this._headResolve = resolve; this._headReject = reject; });
    this.head.catch(() => {});
    this.ended = new Promise((resolve) => { this._endResolve = resolve; });
    this.sock.on(up, () => {
      this.sock.write(rawRequest({ method: 'GET', path: p, headers: h, host: `${HOST}:${port}` }));
    });
    this.sock.on('data', (c) => {
      this._onData(c);
      if (pauseAfterHead && this.headInfo) this.sock.pause();
    });
    const end = (how) => {
      if (this.endInfo) return;
      this.endInfo = { how, at: Date.now() };
      if (!this.headInfo) this._headReject(new Error(`connection closed (${how}) before response head`));
      this._endResolve(this.endInfo);
      this._notify();
    };
    this.sock.on('end', () => { end('end'); });
    this.sock.on('error', (e) => end(e.code === 'ECONNRESET' ? 'reset' : `error:${e.code}`));
    this.sock.on('close', () => end(this._destroyedByUs ? 'destroyed' : 'end'));
  }

  _onData(c) {
    if (!this.headInfo) {
      this._pending = Buffer.concat([this._pending, c]);
      const i = this._pending.indexOf('\r\n\r\n');
      if (i < 0) return;
      const head = this._pending.subarray(0, i).toString('latin1');
      const [statusLine, ...lines] = head.split('\r\n');
      const headers = {};
      const raw = [];
      for (const l of lines) {
        const j = l.indexOf(':');
        const k = l.slice(0, j).trim().toLowerCase();
        const v = l.slice(j + 1).trim();
        raw.push([k, v]);
        headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
      }
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
      this.headInfo = { status: m ? Number(m[1]) : NaN, statusLine, headers, raw, text: head, at: Date.now() };
      const rest = this._pending.subarray(i + 4);
      this._pending = null;
      this._headResolve(this.headInfo);
      if (rest.length) this._onBody(rest);
      this._notify();
      return;
    }
    this._onBody(c);
    this._notify();
  }

  _onBody(c) {
    this.bodyBytes += c.length;
    if (this.keep) this.chunks.push(c);
    this._parse(this._dec.write(c));
  }

  // SSE parsing per the WHATWG rules (lines end with CRLF, LF or CR).
  _parse(s) {
    const buf = this._lineBuf + s;
    const re = /[\r\n]/g;
    let start = 0;
    let m;
    while ((m = re.exec(buf)) !== null) {
      let i = m.index;
      const ch = buf.charCodeAt(i);
      if (ch === 13 && i + 1 === buf.length) break; // CR at end: wait for a possible LF
      const line = buf.slice(start, i);
      if (ch === 13 && buf.charCodeAt(i + 1) === 10) i++;
      start = i + 1;
      re.lastIndex = start;
      this._line(line);
    }
    this._lineBuf = buf.slice(start);
  }

  _line(line) {
    if (line === '') {
      if (this._cur) {
        const f = this._cur;
        this._cur = null;
        if (this.keep) this.frames.push(f);
        if (f.data.length) { if (this.keep) this.events.push(f); }
        if (this.onFrame) this.onFrame(f);
      }
      return;
    }
    if (!this._cur) this._cur = { id: undefined, event: undefined, data: [], comments: [], retry: undefined, lines: [] };
    const f = this._cur;
    if (this.keep) f.lines.push(line);
    if (line[0] === ':') { f.comments.push(line.slice(1)); return; }
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'data') f.data.push(value);
    else if (field === 'id') f.id = value;
    else if (field === 'event') f.event = value;
    else if (field === 'retry') f.retry = value;
    else (f.unknown ||= []).push(line);
  }

  _notify() { for (const w of this._watchers) w(); }

  get body() { return Buffer.concat(this.chunks); }
  get text() { return this.body.toString('utf8'); }
  get status() { return this.headInfo?.status; }

  /** Resolve when pred(this) is true; reject after timeout ms. */
  waitFor(pred, timeout = 3000, what = 'stream condition') {
    if (pred(this)) return Promise.resolve(this);
    return new Promise((resolve, reject) => {
      const w = () => {
        let ok = false;
        try { ok = pred(this); } catch (e) { cleanup(); reject(e); return; }
        if (ok) { cleanup(); resolve(this); }
      };
      const t = setTimeout(() => { cleanup(); reject(new Error(`timed out after ${timeout} ms waiting for ${what}; got ${this.events.length} events, end=${JSON.stringify(this.endInfo)}, body=${JSON.stringify(this.keep ? this.text.slice(-400) : '(not kept)')}`)); }, timeout);
      const cleanup = () => { clearTimeout(t); this._watchers.delete(w); };
      this._watchers.add(w);
    });
  }

  /** Wait until an event whose data (lines joined by \n) equals / matches m. */
  waitForData(m, timeout = 3000) {
    const test = (e) => (typeof m === 'string' ? e.data.join('\n') === m : m.test(e.data.join('\n')));
    return this.waitFor((s) => s.events.some(test), timeout, `event with data ${m}`).then(() => this.events.find(test));
  }

  /** Wait for the response head plus the initial retry block. */
  async ready(timeout = 3000) {
    const h = await Promise.race([this.head, sleep(timeout).then(() => { throw new Error(`no response head within ${timeout} ms`); })]);
    if (h.status === 200) await this.waitFor((s) => s.frames.some((f) => f.retry !== undefined) || !s.keep, timeout, 'retry line');
    return h;
  }

  close() {
    this._destroyedByUs = true;
    this.sock.destroy();
  }
}

/** Open an SSE stream and wait until it is established (200 + retry line). */
export async function openStream(srv, opts = {}) {
  const s = new SseStream(srv.port ?? srv, opts);
  const h = await s.ready(opts.timeout || 3000);
  if (opts.expectStatus !== false && h.status !== 200) {
    s.close();
    throw new Error(`GET ${opts.path || '/events'} -> ${h.status}\n${h.text}`);
  }
  return s;
}

/** Data events of a stream in a compact form: [{id, event, data}] with data joined. */
export function summary(stream) {
  return stream.events.map((e) => ({ event: e.event, data: e.data.join('\n') }));
}

/** Is python3 usable (for a socket with a small SO_RCVBUF)? */
export function havePython() {
  try {
    const r = spawnSync('python3', ['-c', 'import socket'], { encoding: 'utf8', timeout: 5000 });
    return r.status === 0;
  } catch { return false; }
}
