// Misbehaving clients for the chaos test (chaos.test.mjs), all over loopback.
// Each client is one of a few kinds (pipelining without reading, trickled or
// stalled requests, subscribers that never or hardly read, Last-Event-ID
// reconnect storms, odd tokens, malformed HTTP, publish bursts, resets and
// half-closes). Its choices come from its own PRNG, seeded from the run's seed
// and the client's index, so a seed replays the same clients in the same
// order. Where a client can tell that an answer is wrong (a stream with an id
// twice, ids going backwards, an event it must not get, pipelined answers out
// of order, an expired token accepted), it records a violation.
// Built on lib/server.mjs, which this file does not change.

import { setMaxListeners } from 'node:events';
import net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import {
  ACCOUNTS, HOST, SseStream, b64, mintJwt, parseResponses, rawRequest, tokenParam,
} from './server.mjs';

// ------------------------------------------------------------ PRNG ----

/** mulberry32 with a few helpers; the same seed gives the same sequence. */
export function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const r = {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    chance: (p) => next() < p,
    pick: (arr) => arr[Math.floor(next() * arr.length)],
    weighted: (pairs) => {
      const total = pairs.reduce((s, p) => s + p[1], 0);
      let x = next() * total;
      for (const p of pairs) { x -= p[1]; if (x < 0) return p[0]; }
      return pairs[pairs.length - 1][0];
    },
    bytes: (n) => {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256);
      return b;
    },
  };
  return r;
}

/** A 32-bit seed for client `i` of a run seeded with `seed`. */
export function subSeed(seed, i) {
  let h = (seed ^ Math.imul(i + 1, 0x9E3779B1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85EBCA6B) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xC2B2AE35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

// ---------------------------------------------------- event contents ----

export const TYPES = ['ta', 'tb', 'tc', 'a'];
export const USERS = ['honest-user', 'chaos-u1', 'chaos-u2', 'chaos-u3'];

const fnv = (s) => {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193); }
  return (h >>> 0).toString(36);
};
const norm = (s) => s.replace(/\r\n|\r/g, '\n');

/**
 * Every published content describes itself: origin|type|user|hash|filler. A
 * reader can then check, without knowing the id in advance, that the event was
 * meant for it, that its `event:` line is right and that no byte changed (the
 * hash is over the filler with line breaks normalised, as SSE delivers them).
 */
export function makeContent(origin, type, user, filler) {
  return `${origin}|${type || ''}|${user || ''}|${fnv(norm(filler))}|${filler}`;
}

/** {origin, type, user, ok} of a content made by makeContent, else null. */
export function parseContent(data) {
  if (typeof data !== 'string') return null;
  const f = [];
  let p = 0;
  for (let k = 0; k < 4; k++) {
    const i = data.indexOf('|', p);
    if (i < 0) return null;
    f.push(data.slice(p, i));
    p = i + 1;
  }
  if (!/^(h\d+|c|end)$/.test(f[0])) return null;
  return { origin: f[0], type: f[1], user: f[2], ok: fnv(norm(data.slice(p))) === f[3] };
}

const ALPHABET = Array.from('abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,.;:-_"\'\\/{}[]<>|&%+=\té€ü中😀');

/** n code points of text; with lines, line breaks (LF, CRLF, CR) inside, never at the ends. */
export function filler(r, n, { lines = true } = {}) {
  let s = '';
  for (let i = 0; i < n; i++) {
    if (lines && i > 0 && i < n - 1 && r.chance(0.01)) s += r.pick(['\n', '\r\n', '\r']);
    else s += ALPHABET[Math.floor(r.next() * ALPHABET.length)];
  }
  return s;
}

/** Mostly small contents, some of a few KB. */
export function contentSize(r) {
  const x = r.next();
  if (x < 0.7) return r.int(0, 200);
  if (x < 0.95) return r.int(200, 1500);
  return r.int(1500, 4000);
}

/** A random valid /broadcast body (routing encoded in the content). */
export function chaosEvent(r) {
  const type = r.chance(0.5) ? r.pick(TYPES) : '';
  const user = r.chance(0.3) ? r.pick(USERS) : '';
  const body = { content: makeContent('c', type, user, filler(r, contentSize(r))) };
  if (type) body.type = type;
  if (user) body.user = user;
  return body;
}

/**
 * Does a stream (or /notifications) of `sub` {user, types, claims} get an
 * event {type, user}? With a user: only that user's streams, whatever their
 * types. Else with a type: streams that asked for it or asked for none. Else
 * every stream. A token's `types` claim keeps every other typed event out,
 * even one addressed to its user, and asking for no type means its types.
 */
export function accepts(sub, ev) {
  if (ev.type && sub.claims && !sub.claims.includes(ev.type)) return false;
  if (ev.user) return ev.user === sub.user;
  if (ev.type) {
    const asked = sub.types.length ? sub.types : (sub.claims || []);
    return asked.length === 0 || asked.includes(ev.type);
  }
  return true;
}

// -------------------------------------------------------------- tokens ----

const now = () => Math.floor(Date.now() / 1000);

/** JWTs signed with the suite's app key (and a few that are not valid). */
export function makeTokens() {
  const sub = (claims = {}) => mintJwt({ username: ACCOUNTS.sub.username, iat: now(), exp: now() + 3600, ...claims });
  const users = new Map();
  return {
    pub: mintJwt({ username: ACCOUNTS.pub.username, iat: now(), exp: now() + 3600 }),
    anon: sub(),
    user: (u) => { if (!users.has(u)) users.set(u, sub({ sub: u })); return users.get(u); },
    typed: (u, types) => sub({ sub: u, types }),
    soon: (u, s) => sub({ sub: u, exp: now() + s }),
    expiredSub: (u) => sub({ ...(u ? { sub: u } : {}), iat: now() - 100, exp: now() - 30 }),
    expiredPub: () => mintJwt({ username: ACCOUNTS.pub.username, iat: now() - 100, exp: now() - 30 }),
    wrongKey: (u) => mintJwt({ username: ACCOUNTS.sub.username, iat: now(), exp: now() + 3600, ...(u ? { sub: u } : {}) }, 'not-the-app-key'),
    wrongKeyPub: () => mintJwt({ username: ACCOUNTS.pub.username, iat: now(), exp: now() + 3600 }, 'not-the-app-key'),
  };
}

// ------------------------------------------------------------ checkers ----

const subText = (sub) => `[user=${sub.user || '-'} types=${sub.types.join(',') || '-'} claims=${sub.claims ? sub.claims.join(',') : '-'}]`;

/**
 * Checks one stream's frames as they arrive: ids strictly increasing (so no
 * id twice), nothing at or before a valid Last-Event-ID (until a reset event),
 * and for contents made by makeContent: intact, right `event:` line, meant
 * for this stream.
 */
export class StreamChecker {
  constructor({ label, sub, after = null, report }) {
    this.label = label;
    this.sub = sub;
    this.after = after;
    this.report = report;
    this.last = null;
    this.count = 0;
    this.resets = 0;
  }

  feed(f) {
    if (!f.data.length) return;
    if (f.id === undefined) {
      if (f.event !== 'token-expired') this.report('stream: data event without an id', `${this.label}: event=${f.event} data=${JSON.stringify(f.data.join('\n').slice(0, 80))}`);
      return;
    }
    const id = Number(f.id);
    if (!Number.isSafeInteger(id) || id < 1) {
      this.report('stream: id not a positive integer', `${this.label}: id ${JSON.stringify(f.id)}`);
      return;
    }
    if (this.last !== null && id <= this.last) {
      const cat = id === this.last ? 'stream: the same id twice in a row'
        : this.resets ? 'stream: ids not increasing after a reset event (its id is newer than live events still to come)'
          : 'stream: ids not increasing';
      this.report(cat, `${this.label} ${subText(this.sub)}: id ${id} (event=${f.event || ''}) after ${this.last}`);
    }
    this.last = id;
    this.count++;
    if (f.event === 'reset') { this.resets++; return; }
    if (this.after !== null && this.resets === 0 && id <= this.after) {
      this.report('stream: event at or before Last-Event-ID', `${this.label}: id ${id} after Last-Event-ID ${this.after}`);
    }
    const c = parseContent(f.data.join('\n'));
    if (!c) return;
    if (!c.ok) this.report('stream: content changed', `${this.label}: id ${id}`);
    if ((f.event || '') !== c.type) this.report('stream: wrong event: line', `${this.label}: id ${id} event=${f.event} for type ${JSON.stringify(c.type)}`);
    if (!accepts(this.sub, c)) {
      this.report('stream: event routed to the wrong stream',
        `${this.label}: id ${id} type=${c.type || '-'} user=${c.user || '-'} reached ${subText(this.sub)}`);
    }
  }
}

/** Violations by category: counts and the first few details. */
export class Violations {
  constructor(keep = 6) { this.keep = keep; this.byCat = new Map(); }
  add(cat, detail) {
    let v = this.byCat.get(cat);
    if (!v) { v = { n: 0, first: [] }; this.byCat.set(cat, v); }
    v.n++;
    if (v.first.length < this.keep) v.first.push(detail);
  }
  get total() { let n = 0; for (const v of this.byCat.values()) n += v.n; return n; }
  toString() {
    const out = [];
    for (const [cat, v] of this.byCat) out.push(`${cat}: ${v.n}\n${v.first.map((d) => `    ${d}`).join('\n')}`);
    return out.join('\n');
  }
}

// ----------------------------------------------------------- sockets ----

/** A raw client socket; swallows socket errors, records how it ended. */
class Conn {
  constructor(cl, { read = true, keep = 256 * 1024, onData, noDelay = false } = {}) {
    const sock = net.connect({ host: HOST, port: cl.ctx.port });
    this.sock = sock;
    this.chunks = [];
    this.kept = 0;
    this.bytes = 0;
    this.end = null;
    this._w = new Set();
    if (noDelay) sock.setNoDelay(true);
    sock.on('data', (c) => {
      this.bytes += c.length;
      if (this.kept < keep) { this.chunks.push(c); this.kept += c.length; }
      if (onData) onData(c);
      this._notify();
    });
    if (!read) sock.pause();
    sock.on('error', (e) => { this.err = e.code; });
    sock.on('close', () => {
      // 'ours' when this side ended it; else how the server did
      this.end = sock.ours ? 'ours' : this.err === 'ECONNRESET' ? 'reset' : this.err ? `error:${this.err}` : 'end';
      cl.ctx.sockets.delete(sock);
      this._notify();
    });
    this.connected = new Promise((res) => { sock.once('connect', () => res(true)); sock.once('close', () => res(false)); });
    cl.ctx.stats.sockets++;
    cl.ctx.sockets.add(sock);
    cl.socks.add(sock);
  }

  get buf() { return Buffer.concat(this.chunks); }
  get text() { return this.buf.toString('latin1'); }

  write(data) {
    if (this.sock.destroyed || this.sock.writableEnded || this.end) return false;
    this.sock.write(data, () => {});
    return true;
  }

  _notify() { for (const w of this._w) w(); }

  /** Resolve true once pred() holds, false when closed first or after ms. */
  waitFor(pred, ms) {
    const test = () => { try { return pred(); } catch { return true; } };
    if (test()) return Promise.resolve(true);
    if (this.end) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (v) => { clearTimeout(t); this._w.delete(w); resolve(v); };
      const w = () => { if (test()) done(true); else if (this.end) done(false); };
      const t = setTimeout(() => done(false), Math.max(0, ms));
      this._w.add(w);
    });
  }

  /** Status of the first response head, once it arrived (or null). */
  firstStatus(ms) {
    return this.waitFor(() => this.text.includes('\r\n\r\n') || this.bytes >= 12, ms).then(() => {
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(this.text);
      return m ? Number(m[1]) : null;
    });
  }
}

/** End a socket one of the rude ways: destroy, RST, or FIN then destroy. */
export function finishSocket(sock, mode) {
  if (sock.destroyed) return;
  sock.ours = true;
  try {
    if (mode === 'reset' && typeof sock.resetAndDestroy === 'function' && sock.readyState === 'open') sock.resetAndDestroy();
    else if (mode === 'fin' && sock.readyState === 'open') {
      sock.end();
      setTimeout(() => sock.destroy(), 300).unref();
    } else sock.destroy();
  } catch { sock.destroy(); }
}

const STOP = Symbol('stopped');

/** One chaos client: its PRNG, deadline, sockets. */
class Client {
  constructor(ctx, index, kind, r, life) {
    this.ctx = ctx;
    this.index = index;
    this.kind = kind;
    this.mode = '';
    this.r = r;
    this.deadline = Date.now() + life;
    this.socks = new Set();
    this.done = false;
  }

  get label() { return `client ${this.index} (${this.kind}${this.mode ? `/${this.mode}` : ''})`; }
  left() { return this.deadline - Date.now(); }

  /** Sleep ms (bounded by the deadline); false when the client should stop. */
  async sleep(ms) {
    const t = Math.min(ms, this.left());
    if (this.done || t <= 0) return false;
    try { await delay(t, undefined, { signal: this.ctx.signal }); } catch { return false; }
    return !this.done && this.left() > 0;
  }

  conn(opts) {
    if (this.done || this.ctx.signal.aborted) throw STOP;
    return new Conn(this, opts);
  }

  /** An SSE stream (lib/server.mjs parser) whose frames go to a checker. */
  sse(p, headers, checker) {
    if (this.done || this.ctx.signal.aborted) throw STOP;
    const s = new SseStream(this.ctx.port, { path: p, headers, keep: false, onFrame: (f) => checker && checker.feed(f) });
    this.ctx.stats.sockets++;
    this.ctx.sockets.add(s.sock);
    this.socks.add(s.sock);
    s.sock.on('close', () => this.ctx.sockets.delete(s.sock));
    return s;
  }

  headStatus(s, ms) {
    return Promise.race([s.head.then((h) => h.status, () => null), delay(ms).then(() => null)]);
  }

  report(cat, detail) { this.ctx.violations.add(cat, `${this.label}: ${detail}`); }

  finishAll() {
    this.done = true;
    for (const s of this.socks) finishSocket(s, this.r.pick(['destroy', 'reset', 'fin']));
  }
}

// ---------------------------------------------------- request helpers ----

const enc = encodeURIComponent;

function req(ctx, o) { return rawRequest({ host: `${HOST}:${ctx.port}`, ...o }); }

function pubRequest(ctx, body, extra = {}) {
  return req(ctx, {
    method: 'POST', path: '/broadcast', body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { Authorization: `Bearer ${ctx.tok.pub}`, 'Content-Type': 'application/json', ...extra },
  });
}

/**
 * Where a stream goes and who it is: {path, headers, sub: {user, types, claims}}.
 * Bearer for the anonymous subscriber, else the token query parameter or the
 * cookie; types as repeated or comma-separated parameters, sometimes twice.
 */
function streamTarget(r, ctx, { dupTypes = false, base = '/events', extraQuery = [] } = {}) {
  let user = r.chance(0.4) ? '' : r.pick(USERS);
  let claims = null;
  if (dupTypes) {
    claims = r.pick([['ta', 'ta'], ['a', 'a'], ['ta', 'tb', 'ta'], ['a', 'a', 'a', 'ta']]);
    user ||= 'chaos-dup';
  }
  const jwt = claims ? ctx.tok.typed(user, claims) : user ? ctx.tok.user(user) : ctx.tok.anon;
  const asked = claims
    ? r.pick([[], [claims[0]], [claims[0], claims[0]], [...claims]])
    : r.pick([[], [], ['ta'], ['tb'], ['ta', 'tb'], ['a'], ['ta', 'ta'], ['tc', 'a']]);
  const q = [...extraQuery];
  if (asked.length) {
    if (r.chance(0.5)) for (const t of asked) q.push(`type=${t}`);
    else q.push(`type=${asked.join(',')}`);
  }
  const headers = {};
  if (!user && !claims && r.chance(0.7)) headers.Authorization = `Bearer ${jwt}`;
  else if (r.chance(0.7)) q.push(`token=${enc(tokenParam(jwt, user))}`);
  else headers.Cookie = `sse_token=${tokenParam(jwt, user)}`;
  return { path: q.length ? `${base}?${q.join('&')}` : base, headers, sub: { user, types: [...new Set(asked)], claims } };
}

/** Incremental parse of consecutive responses (statuses and small bodies). */
function responseReader() {
  let pending = Buffer.alloc(0);
  const got = [];
  return {
    got,
    feed(chunk, stopAt) {
      if (got.length >= stopAt) return;
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      const { responses, rest } = parseResponses(pending);
      for (const res of responses) {
        got.push({ status: res.status, ct: res.headers['content-type'] || '', text: res.body.length < 4096 ? res.text : '' });
        if (got.length >= stopAt) break;
      }
      pending = rest;
    },
  };
}

function ackId(ctx, text, body) {
  try {
    const id = JSON.parse(text).id;
    if (Number.isSafeInteger(id)) ctx.chaosAcked.set(id, { type: body.type || '', user: body.user || '' });
  } catch { /* not JSON: reported by the caller when it matters */ }
}

// -------------------------------------------------------------- kinds ----

const short = (list, n = 14) => (list.length > n ? `${list.slice(0, n).join(',')},… (${list.length})` : list.join(','));

/** Many requests in one write (up to 120), ending with GET /events; most never read. */
async function pipeline(cl) {
  const { r, ctx } = cl;
  const n = r.chance(0.5) ? r.int(2, 10) : r.int(10, 120);
  const parts = [];
  const want = [];
  const names = [];
  const bodies = [];
  for (let i = 0; i < n; i++) {
    const k = r.pick(['notifications', 'healthz', 'client.js', 'broadcast']);
    if (k === 'notifications') {
      const u = r.pick(USERS);
      parts.push(req(ctx, { path: `/notifications?limit=500&token=${enc(tokenParam(ctx.tok.user(u), u))}` }));
      want.push(200);
    } else if (k === 'client.js') {
      parts.push(req(ctx, { path: '/client/sse-client.js' }));
      want.push(200);
    } else if (k === 'broadcast' && ctx.budget.take(1)) {
      const body = chaosEvent(r);
      parts.push(pubRequest(ctx, body));
      bodies[i] = body;
      want.push(201);
    } else {
      parts.push(req(ctx, { path: '/healthz' }));
      want.push(200);
      names.push('healthz');
      continue;
    }
    names.push(k);
  }
  const t = streamTarget(r, ctx);
  const resume = r.pick([null, null, '0', 'random', 'beyond']);
  if (resume === '0') t.headers['Last-Event-ID'] = '0';
  else if (resume === 'random') t.headers['Last-Event-ID'] = String(r.int(1, Math.max(1, ctx.latestId())));
  else if (resume === 'beyond') t.headers['Last-Event-ID'] = String(ctx.latestId() + r.int(1000, 100000));
  parts.push(req(ctx, { path: t.path, headers: t.headers }));
  want.push(200);
  names.push(resume ? `events(Last-Event-ID ${resume})` : 'events');
  const reads = r.chance(0.35);
  cl.mode = reads ? 'reads' : 'never-reads';
  const rr = responseReader();
  let parseError = null;
  const c = cl.conn({
    read: reads,
    keep: 0,
    onData: (chunk) => { if (!parseError) { try { rr.feed(chunk, want.length); } catch (e) { parseError = e.message; } } },
  });
  if (!(await c.connected)) return;
  c.write(Buffer.concat(parts));
  if (!reads) { await cl.sleep(cl.left()); return; }
  await c.waitFor(() => parseError || rr.got.length >= want.length, Math.min(cl.left(), 8000));
  if (parseError) { cl.report('pipeline: unparseable answers', `${parseError} (requests ${short(names)})`); return; }
  for (let i = 0; i < rr.got.length && i < want.length; i++) {
    if (rr.got[i].status !== want[i]) {
      cl.report('pipeline: answers out of order or wrong', `answer ${i + 1} is ${rr.got[i].status}, expected ${want[i]} for ${names[i]} (requests ${short(names)}; statuses ${short(rr.got.map((g) => g.status))})`);
      return;
    }
    if (bodies[i]) ackId(ctx, rr.got[i].text, bodies[i]);
  }
  if (rr.got.length < want.length) {
    if (c.end && c.end !== 'ours') cl.report('pipeline: connection closed by the server before every answer', `${rr.got.length} of ${want.length} answers (requests ${short(names)}), closed by ${c.end}`);
    else ctx.stats.slow++;
    return;
  }
  await cl.sleep(cl.left());
}

/** A request one byte per write, or stopped in the head or body, or closed mid-request. */
async function slowRequest(cl) {
  const { r, ctx } = cl;
  const mode = r.pick(['bytewise', 'bytewise', 'stall-head', 'stall-body', 'close-mid']);
  cl.mode = mode;
  let buf;
  let want;
  let headLen;
  const pick = mode === 'stall-body' ? 'broadcast' : r.pick(['healthz', 'events', 'broadcast', 'notifications']);
  if (pick === 'broadcast' && (mode === 'stall-body' || ctx.budget.take(1))) {
    const body = chaosEvent(r);
    buf = pubRequest(ctx, body);
    want = 201;
  } else if (pick === 'events') {
    buf = req(ctx, { path: '/events', headers: { Authorization: `Bearer ${ctx.tok.anon}` } });
    want = 200;
  } else if (pick === 'notifications') {
    buf = req(ctx, { path: '/notifications?limit=20', headers: { Authorization: `Bearer ${ctx.tok.anon}` } });
    want = 200;
  } else {
    buf = req(ctx, { path: '/healthz' });
    want = 200;
  }
  headLen = buf.indexOf('\r\n\r\n') + 4;
  const c = cl.conn({ noDelay: true });
  if (!(await c.connected)) return;
  if (mode === 'bytewise') {
    const pause = r.int(0, 12);
    for (let i = 0; i < buf.length; i++) {
      if (!c.write(buf.subarray(i, i + 1))) return;
      if (!(await cl.sleep(pause))) return;
    }
    const st = await c.firstStatus(Math.min(cl.left(), 5000));
    if (st !== null && st !== want && st !== 408) cl.report('trickled request: wrong answer', `${pick} one byte per write -> ${st}, expected ${want}`);
    await cl.sleep(cl.left());
    return;
  }
  let cut;
  if (mode === 'stall-head') cut = r.int(1, headLen - 2);
  else if (mode === 'stall-body') cut = r.int(headLen, buf.length - 1);
  else cut = r.int(1, buf.length - 1);
  c.write(buf.subarray(0, cut));
  if (mode === 'close-mid') { await cl.sleep(r.int(0, 300)); return; }
  // A stalled request must get 408 (or at least a close) within SSE_HEADER_TIMEOUT.
  const limit = ctx.headerTimeout * 1000 + 4000;
  const t0 = Date.now();
  const answered = await c.waitFor(() => c.bytes > 0, Math.min(cl.left(), limit));
  if (!answered && !c.end && Date.now() - t0 >= limit - 50) {
    cl.report('stalled request: neither 408 nor a close', `${mode} after ${cut} of ${buf.length} bytes, nothing after ${Date.now() - t0} ms`);
  }
}

/** GET /events that never reads or reads a little now and then; sometimes replaying all history. */
async function slowSubscriber(cl) {
  const { r, ctx } = cl;
  const mode = r.pick(['never', 'never', 'slow', 'replay-never', 'replay-slow']);
  cl.mode = mode;
  const replay = mode.startsWith('replay');
  const t = streamTarget(r, ctx, { extraQuery: replay && r.chance(0.3) ? ['lastEventId=0'] : [] });
  if (replay && !t.path.includes('lastEventId')) t.headers['Last-Event-ID'] = '0';
  if (mode.endsWith('never')) {
    const c = cl.conn({ read: false });
    if (!(await c.connected)) return;
    c.write(req(ctx, { path: t.path, headers: t.headers }));
    await cl.sleep(cl.left());
    return;
  }
  const chk = new StreamChecker({ label: t.path.replace(/token=[^&]*/, 'token=…').slice(0, 60), sub: t.sub, after: replay ? 0 : null, report: (a, b) => cl.report(a, b) });
  const s = cl.sse(t.path, t.headers, chk);
  const st = await cl.headStatus(s, 5000);
  if (st !== null && st !== 200) cl.report('stream: refused', `${t.path.slice(0, 80)} -> ${st}`);
  while (cl.left() > 0 && !s.endInfo) {
    s.sock.pause();
    if (!(await cl.sleep(r.int(200, 1500)))) break;
    s.sock.resume();
    if (!(await cl.sleep(r.int(1, 40)))) break;
  }
}

const GARBAGE_IDS = ['abc', '-1', '1e3', '0x10', '+5', '1.5', '12abc', 'NaN', '%00', ' '];

/** Reconnects again and again with Last-Event-ID: 0, a random id, garbage, 2^64, 2^64-1. */
async function reconnector(cl) {
  const { r, ctx } = cl;
  const rounds = r.int(2, 8);
  const t = streamTarget(r, ctx, { dupTypes: r.chance(0.2) });
  cl.mode = `${rounds} rounds`;
  for (let i = 0; i < rounds && cl.left() > 0; i++) {
    const which = r.pick(['zero', 'random', 'random', 'garbage', '2^64', '2^64-1', 'huge']);
    let value;
    let after = null; // a clean decimal id below 2^64: nothing at or before it may arrive
    if (which === 'zero') { value = '0'; after = 0; }
    else if (which === 'random') { const v = r.int(1, Math.max(1, ctx.latestId())); value = String(v); after = v; }
    else if (which === 'garbage') value = r.pick(GARBAGE_IDS);
    else if (which === '2^64') value = '18446744073709551616';
    else if (which === '2^64-1') { value = '18446744073709551615'; after = Number.MAX_SAFE_INTEGER; }
    else value = '99999999999999999999999';
    const headers = { ...t.headers };
    let p = t.path;
    if (r.chance(0.7)) headers['Last-Event-ID'] = value;
    else p += `${p.includes('?') ? '&' : '?'}lastEventId=${enc(value)}`;
    const hold = r.int(50, 1500);
    if (r.chance(0.6)) {
      const chk = new StreamChecker({ label: `Last-Event-ID ${JSON.stringify(value)}`, sub: t.sub, after, report: (a, b) => cl.report(a, b) });
      const s = cl.sse(p, headers, chk);
      const st = await cl.headStatus(s, Math.min(hold + 3000, Math.max(cl.left(), 1)));
      if (st !== null && st !== 200) cl.report('stream: refused', `Last-Event-ID ${JSON.stringify(value)} ${p.slice(0, 80)} -> ${st}`);
      await cl.sleep(hold);
      finishSocket(s.sock, r.pick(['destroy', 'reset', 'fin']));
    } else {
      const c = cl.conn({ read: false });
      if (!(await c.connected)) return;
      c.write(req(ctx, { path: p, headers }));
      await cl.sleep(hold);
      finishSocket(c.sock, r.pick(['destroy', 'reset', 'fin']));
    }
    if (!(await cl.sleep(r.int(0, 100)))) return;
  }
}

/** Tokens with duplicate types, expired, signed with another key, garbage, the wrong role. */
async function tokens(cl) {
  const { r, ctx } = cl;
  const mode = r.weighted([['dup-stream', 5], ['dup-notifications', 2], ['expired', 2], ['wrong', 2], ['wrong-role', 1], ['expiring', 1]]);
  cl.mode = mode;
  if (mode === 'dup-stream' || mode === 'expiring') {
    let t;
    if (mode === 'expiring') { // a token that expires within 3 s: the stream gets token-expired and ends
      const user = r.pick(USERS);
      const jwt = ctx.tok.soon(user, r.int(1, 3));
      t = { path: `/events?token=${enc(tokenParam(jwt, user))}`, headers: {}, sub: { user, types: [], claims: null } };
    } else t = streamTarget(r, ctx, { dupTypes: true });
    const chk = new StreamChecker({ label: t.path.replace(/token=[^&]*/, 'token=…').slice(0, 60), sub: t.sub, report: (a, b) => cl.report(a, b) });
    const s = cl.sse(t.path, t.headers, chk);
    const st = await cl.headStatus(s, 5000);
    if (st !== null && ![200, 400, 401, 403].includes(st)) cl.report('auth: unexpected status', `${mode} stream -> ${st}`);
    await cl.sleep(cl.left());
    return;
  }
  if (mode === 'dup-notifications') {
    const t = streamTarget(r, ctx, { dupTypes: true, base: '/notifications', extraQuery: ['limit=500'] });
    const c = cl.conn({ keep: 16 << 20 });
    if (!(await c.connected)) return;
    c.write(req(ctx, { path: t.path, headers: { ...t.headers, Connection: 'close' } }));
    await c.waitFor(() => false, Math.min(cl.left(), 8000)); // until the server closes
    let res;
    try { res = parseResponses(c.buf).responses[0]; } catch { res = null; }
    if (!res || res.status !== 200) return;
    let items;
    try { items = JSON.parse(res.text).items; } catch { cl.report('notifications: not JSON', res.text.slice(0, 80)); return; }
    let prev = Infinity;
    for (const it of items) {
      if (!(it.id < prev)) cl.report('notifications: ids not strictly decreasing (an event twice?)', `id ${it.id} after ${prev}, claims=${t.sub.claims}`);
      prev = it.id;
      const pc = parseContent(it.content);
      if (pc && !accepts(t.sub, { type: it.type || '', user: it.user || '' })) {
        cl.report('notifications: item not for this user', `id ${it.id} type=${it.type} user=${it.user} for user=${t.sub.user} claims=${t.sub.claims}`);
      }
      if (pc && !pc.ok) cl.report('notifications: content changed', `id ${it.id}`);
    }
    return;
  }
  // One request whose credential is bad (401) or of the wrong role (403, or 401 for /admin/stop).
  const u = r.chance(0.5) ? r.pick(USERS) : '';
  const cases = mode === 'expired' ? [
    () => [req(ctx, { path: '/events', headers: { Authorization: `Bearer ${ctx.tok.expiredSub()}` } }), [401]],
    () => [req(ctx, { path: `/events?token=${enc(tokenParam(ctx.tok.expiredSub(u), u))}` }), [401]],
    () => [req(ctx, { path: '/events', headers: { Cookie: `sse_token=${tokenParam(ctx.tok.expiredSub(u), u)}` } }), [401]],
    () => [req(ctx, { path: `/notifications?token=${enc(tokenParam(ctx.tok.expiredSub(u), u))}` }), [401]],
    () => [req(ctx, { method: 'POST', path: '/broadcast', headers: { Authorization: `Bearer ${ctx.tok.expiredPub()}` }, body: '{"content":"x"}' }), [401]],
  ] : mode === 'wrong' ? [
    () => [req(ctx, { path: '/events', headers: { Authorization: `Bearer ${ctx.tok.wrongKey()}` } }), [401]],
    () => [req(ctx, { path: `/events?token=${enc(tokenParam(ctx.tok.wrongKey(u), u))}` }), [401]],
    () => [req(ctx, { path: '/events', headers: { Authorization: 'Bearer x.y.z' } }), [401]],
    () => [req(ctx, { path: '/events', headers: { Authorization: `Bearer ${'A'.repeat(r.int(100, 3000))}` } }), [401]],
    () => [req(ctx, { path: '/events?token=%%%' }), [400, 401]],
    () => [req(ctx, { path: `/events?token=${enc(b64('{"token":"abc","id":"u"}'))}` }), [401]],
    () => [req(ctx, { path: `/notifications?token=${enc(tokenParam(ctx.tok.wrongKey(u), u))}` }), [401]],
    () => [req(ctx, { method: 'POST', path: '/broadcast', headers: { Authorization: `Bearer ${ctx.tok.wrongKeyPub()}` }, body: '{"content":"x"}' }), [401]],
  ] : [
    () => [req(ctx, { method: 'POST', path: '/broadcast', headers: { Authorization: `Bearer ${ctx.tok.anon}` }, body: '{"content":"x"}' }), [403]],
    () => [req(ctx, { method: 'POST', path: '/token', headers: { Authorization: `Bearer ${ctx.tok.user('chaos-u1')}` }, body: '{"user":"x"}' }), [403]],
    () => [req(ctx, { method: 'POST', path: '/admin/stop', headers: { Authorization: `Bearer ${ctx.tok.pub}` } }), [401]],
  ];
  const [buf, want] = r.pick(cases)();
  const c = cl.conn();
  if (!(await c.connected)) return;
  c.write(buf);
  const st = await c.firstStatus(Math.min(cl.left(), 5000));
  if (st !== null && !want.includes(st)) cl.report('auth: bad credential or role accepted', `${buf.toString('latin1').split('\r\n')[0].slice(0, 60)} -> ${st}, expected ${want.join('/')}`);
  await cl.sleep(r.int(0, 500));
}

/** Malformed or hostile HTTP; where the docs name the answer, it is checked. */
function malformedCase(r, ctx) {
  const h = `Host: ${HOST}:${ctx.port}`;
  const auth = `Authorization: Bearer ${ctx.tok.pub}`;
  const json = JSON.stringify(chaosEvent(r));
  const cases = [
    ['huge header', () => [`GET /healthz HTTP/1.1\r\n${h}\r\nX-Big: ${'a'.repeat(r.int(9000, 40000))}\r\n\r\n`, [431]]],
    ['many headers', () => [`GET /healthz HTTP/1.1\r\n${h}\r\n${'X-H: v\r\n'.repeat(r.int(70, 1500))}\r\n`, [431]]],
    ['query over the head limit', () => [`GET /healthz?q=${'q'.repeat(r.int(9000, 30000))} HTTP/1.1\r\n${h}\r\n\r\n`, [431, 400]]],
    ['long query', () => [`GET /healthz?q=${'q'.repeat(r.int(1000, 7000))} HTTP/1.1\r\n${h}\r\n\r\n`, [200]]],
    ['long type', () => [`GET /events?type=${'t'.repeat(r.int(300, 6000))} HTTP/1.1\r\n${h}\r\nAuthorization: Bearer ${ctx.tok.anon}\r\n\r\n`, [400]]],
    ['33 types', () => [`GET /events?${Array.from({ length: 33 }, (_, i) => `type=t${i}`).join('&')} HTTP/1.1\r\n${h}\r\nAuthorization: Bearer ${ctx.tok.anon}\r\n\r\n`, [400]]],
    ['HTTP/0.9', () => [r.pick(['GET /\r\n', 'GET /healthz\r\n\r\n', 'GET /events\r\n\r\n']), null]],
    ['HTTP/2 preface', () => ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', null]],
    ['bad version', () => [`GET /healthz ${r.pick(['HTTP/1.2', 'HTTP/2.0', 'HTTX/1.1', 'HTTP/1', 'HTTP/11.1'])}\r\n${h}\r\n\r\n`, null]],
    ['binary junk', () => [r.bytes(r.int(1, 4096)), null]],
    ['TLS hello', () => [Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]), r.bytes(r.int(10, 500))]), null]],
    ['NUL in head', () => [`GET /healthz HTTP/1.1\r\n${h}\r\nX-A: a\u0000b\r\n\r\n`, null]],
    ['bare LF', () => [`GET /healthz HTTP/1.1\n${h}\n\n`, null]],
    ['obs-fold', () => [`GET /healthz HTTP/1.1\r\n${h}\r\nX-A: a\r\n  b\r\n\r\n`, null]],
    ['no colon', () => [`GET /healthz HTTP/1.1\r\n${h}\r\nNoColonHere\r\n\r\n`, null]],
    ['space before colon', () => [`GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n`, null]],
    ['odd method', () => [`${r.pick(['BREW', 'G\u0001T', 'get', 'CONNECT', 'TRACE'])} /healthz HTTP/1.1\r\n${h}\r\n\r\n`, null]],
    ['no slash', () => [`GET healthz HTTP/1.1\r\n${h}\r\n\r\n`, null]],
    ['Content-Length twice', () => [`POST /broadcast HTTP/1.1\r\n${h}\r\n${auth}\r\nContent-Length: ${json.length}\r\nContent-Length: ${json.length}\r\n\r\n${json}`, [400]]],
    ['Content-Length and Transfer-Encoding', () => [`POST /broadcast HTTP/1.1\r\n${h}\r\n${auth}\r\nContent-Length: ${json.length}\r\nTransfer-Encoding: chunked\r\n\r\n${json.length.toString(16)}\r\n${json}\r\n0\r\n\r\n`, [400]]],
    ['Content-Length huge', () => [`POST /broadcast HTTP/1.1\r\n${h}\r\n${auth}\r\nContent-Length: ${r.pick(['99999999999999999999', '18446744073709551616', '4294967296'])}\r\n\r\n{}`, [400, 413]]],
    ['Content-Length bad', () => [`POST /broadcast HTTP/1.1\r\n${h}\r\n${auth}\r\nContent-Length: ${r.pick(['-1', '1e3', 'abc', '0x10', '5, 6'])}\r\n\r\n{}`, [400]]],
    ['body over the limit', () => [`POST /broadcast HTTP/1.1\r\n${h}\r\n${auth}\r\nContent-Length: 70000\r\n\r\n${'x'.repeat(70000)}`, [413]]],
    ['chunk size not hex', () => [`POST /broadcast HTTP/1.1\r\n${h}\r\n${auth}\r\nTransfer-Encoding: chunked\r\n\r\n${r.pick(['zz', '-5', ' ', '0x5', 'g'])}\r\nabc\r\n0\r\n\r\n`, [400]]],
    ['chunk size huge', () => [`POST /broadcast HTTP/1.1\r\n${h}\r\n${auth}\r\nTransfer-Encoding: chunked\r\n\r\n${'f'.repeat(r.int(9, 40))}\r\nabc\r\n`, [400, 413]]],
    ['chunk longer than its size', () => [`POST /broadcast HTTP/1.1\r\n${h}\r\n${auth}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdefgh\r\n0\r\n\r\n`, [400]]],
    ['chunked over the limit', () => [`POST /broadcast HTTP/1.1\r\n${h}\r\n${auth}\r\nTransfer-Encoding: chunked\r\n\r\n${'8000\r\n'}${'x'.repeat(0x8000)}\r\n8000\r\n${'x'.repeat(0x8000)}\r\n10\r\n${'x'.repeat(16)}\r\n0\r\n\r\n`, [413]]],
    ['chunked, cut', () => [`POST /broadcast HTTP/1.1\r\n${h}\r\n${auth}\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nab`, null]],
    ['chunked, odd coding', () => [`POST /broadcast HTTP/1.1\r\n${h}\r\n${auth}\r\nTransfer-Encoding: ${r.pick(['gzip, chunked', 'chunked, chunked', 'identity', 'xchunked'])}\r\n\r\n5\r\nabcde\r\n0\r\n\r\n`, null]],
    ['Host twice', () => [`GET /healthz HTTP/1.1\r\n${h}\r\n${h}\r\n\r\n`, null]],
    ['Authorization twice', () => [`GET /events HTTP/1.1\r\n${h}\r\nAuthorization: Bearer ${ctx.tok.anon}\r\nAuthorization: Bearer x.y.z\r\n\r\n`, null]],
    ['Last-Event-ID twice', () => [`GET /events HTTP/1.1\r\n${h}\r\nAuthorization: Bearer ${ctx.tok.anon}\r\nLast-Event-ID: 1\r\nLast-Event-ID: 0\r\n\r\n`, null]],
    ['Cookie twice', () => [`GET /events HTTP/1.1\r\n${h}\r\nCookie: sse_token=${tokenParam(ctx.tok.anon, '')}\r\nCookie: sse_token=abc\r\n\r\n`, null]],
  ];
  if (ctx.budget.take(1)) {
    // A correct chunked publish, split anywhere: must be stored (201).
    cases.push(['chunked publish', () => {
      const b = Buffer.from(json);
      let body = '';
      for (let i = 0; i < b.length;) {
        const n = Math.min(b.length - i, r.int(1, 64));
        body += `${n.toString(16)}${r.chance(0.2) ? ';ext=1' : ''}\r\n${b.subarray(i, i + n).toString('latin1')}\r\n`;
        i += n;
      }
      return [Buffer.from(`POST /broadcast HTTP/1.1\r\n${h}\r\n${auth}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${body}0\r\n\r\n`, 'latin1'), [201]];
    }]);
  }
  const [name, make] = r.pick(cases);
  const [data, want] = make();
  return { name, data: Buffer.isBuffer(data) ? data : Buffer.from(data, 'latin1'), want };
}

async function malformed(cl) {
  const { r, ctx } = cl;
  const m = malformedCase(r, ctx);
  cl.mode = m.name;
  const c = cl.conn();
  if (!(await c.connected)) return;
  if (r.chance(0.3) && m.data.length > 8) {
    // the same bytes in a few pieces
    const cuts = Array.from({ length: r.int(1, 4) }, () => r.int(1, m.data.length - 1)).sort((a, b) => a - b);
    let at = 0;
    for (const x of [...cuts, m.data.length]) {
      if (x > at && !c.write(m.data.subarray(at, x))) return;
      at = Math.max(at, x);
      if (!(await cl.sleep(r.int(0, 30)))) return;
    }
  } else c.write(m.data);
  await c.waitFor(() => c.text.includes('\r\n\r\n'), Math.min(cl.left(), 3000));
  if (c.bytes === 0) return;
  const text = c.text;
  if (!/^HTTP\/1\.[01] \d{3} /.test(text)) {
    cl.report('malformed: answer without an HTTP/1.x status line', JSON.stringify(text.slice(0, 60)));
    return;
  }
  const st = Number(text.slice(9, 12));
  if (m.want && !m.want.includes(st) && st !== 408) cl.report('malformed: wrong status', `${m.name} -> ${st}, expected ${m.want.join('/')}`);
}

/** A burst of publishes of random size, typed and per-user, pipelined or one by one. */
async function publishBurst(cl) {
  const { r, ctx } = cl;
  const n = ctx.budget.take(r.int(3, 30));
  if (!n) return;
  const pipelined = r.chance(0.5);
  cl.mode = `${n} ${pipelined ? 'pipelined' : 'one by one'}`;
  const reqs = [];
  for (let i = 0; i < n; i++) {
    const x = r.next();
    if (x < 0.9) { const body = chaosEvent(r); reqs.push({ buf: pubRequest(ctx, body), want: [201], body }); }
    else if (x < 0.93) reqs.push({ buf: pubRequest(ctx, { content: 'x', type: 'a\nb' }), want: [400] });
    else if (x < 0.96) reqs.push({ buf: pubRequest(ctx, { content: 5 }), want: [400] });
    else if (x < 0.98) reqs.push({ buf: pubRequest(ctx, '{"content": "trunc'), want: [400] });
    else { reqs.push({ buf: pubRequest(ctx, { content: 'x'.repeat(70000) }), want: [413], closes: true }); break; }
  }
  const rr = responseReader();
  let parseError = null;
  const c = cl.conn({ keep: 0, onData: (chunk) => { if (!parseError) { try { rr.feed(chunk, reqs.length); } catch (e) { parseError = e.message; } } } });
  if (!(await c.connected)) return;
  const limit = Math.min(cl.left(), 10000);
  if (pipelined) {
    c.write(Buffer.concat(reqs.map((q) => q.buf)));
    await c.waitFor(() => parseError || rr.got.length >= reqs.length, limit);
  } else {
    for (let i = 0; i < reqs.length; i++) {
      if (!c.write(reqs[i].buf)) break;
      if (!(await c.waitFor(() => parseError || rr.got.length > i, limit))) break;
      if (parseError) break;
    }
  }
  if (parseError) { cl.report('publish: unparseable answers', parseError); return; }
  for (let i = 0; i < rr.got.length && i < reqs.length; i++) {
    if (!reqs[i].want.includes(rr.got[i].status)) {
      cl.report('publish: wrong status', `request ${i + 1} of ${reqs.length} -> ${rr.got[i].status}, expected ${reqs[i].want.join('/')} (${rr.got.map((g) => g.status).join(',')})`);
      return;
    }
    if (reqs[i].body) ackId(ctx, rr.got[i].text, reqs[i].body);
  }
  if (rr.got.length < reqs.length) {
    if (c.end && c.end !== 'ours') cl.report('publish: connection closed by the server before every answer', `${rr.got.length} of ${reqs.length} answers, closed by ${c.end}`);
    else ctx.stats.slow++;
  }
}

/** Half-closes and resets at random moments: after a request, in a stream, mid-body. */
async function rude(cl) {
  const { r, ctx } = cl;
  const mode = r.pick(['fin-after-request', 'fin-in-stream', 'reset-in-stream', 'reset-mid-body', 'reset-in-answer', 'reset-at-once']);
  cl.mode = mode;
  const c = cl.conn({ read: r.chance(0.7) });
  if (!(await c.connected)) return;
  if (mode === 'reset-at-once') { finishSocket(c.sock, 'reset'); return; }
  if (mode === 'reset-mid-body') {
    const buf = pubRequest(ctx, chaosEvent(r));
    c.write(buf.subarray(0, r.int(buf.indexOf('\r\n\r\n') + 4, buf.length - 1)));
    await cl.sleep(r.int(0, 500));
    finishSocket(c.sock, 'reset');
    return;
  }
  if (mode === 'reset-in-answer') {
    const u = r.pick(USERS);
    c.write(req(ctx, { path: `/notifications?limit=500&token=${enc(tokenParam(ctx.tok.user(u), u))}` }));
    await cl.sleep(r.int(0, 50));
    finishSocket(c.sock, 'reset');
    return;
  }
  const t = streamTarget(r, ctx, { extraQuery: r.chance(0.3) ? ['lastEventId=0'] : [] });
  const buf = mode === 'fin-after-request' && r.chance(0.5) ? req(ctx, { path: '/healthz' }) : req(ctx, { path: t.path, headers: t.headers });
  c.write(buf);
  if (mode === 'fin-after-request') { c.sock.end(); await cl.sleep(r.int(100, 2000)); return; }
  await cl.sleep(r.int(0, 2000));
  finishSocket(c.sock, mode === 'fin-in-stream' ? 'fin' : 'reset');
}

/** [name, weight, life range ms, run]. */
export const KINDS = [
  ['pipeline', 14, [500, 5000], pipeline],
  ['slow-request', 12, [1000, 8000], slowRequest],
  ['slow-subscriber', 12, [1000, 6000], slowSubscriber],
  ['reconnect', 14, [1000, 6000], reconnector],
  ['tokens', 14, [500, 6000], tokens],
  ['malformed', 16, [300, 4000], malformed],
  ['publish', 8, [500, 6000], publishBurst],
  ['rude', 10, [200, 3000], rude],
];

/**
 * The shared state of a chaos run. tok: makeTokens(); latestId(): the newest
 * id known; kinds: the names of the kinds to run; budget: a token bucket bounding chaos publishes (rate per second,
 * cap in total).
 */
export function chaosContext({ port, seed, headerTimeout, tok, latestId, kinds = KINDS.map((k) => k[0]), publishRate = 40, publishCap = 60 }) {
  const abort = new AbortController();
  setMaxListeners(1e6, abort.signal); // every sleeping client listens for the stop
  return {
    port,
    seed,
    kinds: KINDS.filter((k) => kinds.includes(k[0])),
    headerTimeout,
    tok,
    latestId,
    abort,
    signal: abort.signal,
    sockets: new Set(),
    violations: new Violations(),
    chaosAcked: new Map(),
    harnessErrors: [],
    running: new Map(),
    stats: { kinds: {}, started: 0, slow: 0, sockets: 0 },
    budget: {
      tokens: publishCap,
      last: Date.now(),
      take(n) {
        const t = Date.now();
        this.tokens = Math.min(publishCap, this.tokens + ((t - this.last) / 1000) * publishRate);
        this.last = t;
        const g = Math.max(0, Math.min(n, Math.floor(this.tokens)));
        this.tokens -= g;
        return g;
      },
    },
  };
}

async function runClient(ctx, index) {
  const r = prng(subSeed(ctx.seed, index));
  const name = r.weighted(ctx.kinds.map((k) => [k[0], k[1]]));
  const [kind, , [lo, hi], run] = ctx.kinds.find((k) => k[0] === name);
  const cl = new Client(ctx, index, kind, r, r.int(lo, hi));
  ctx.stats.kinds[kind] = (ctx.stats.kinds[kind] || 0) + 1;
  ctx.running.set(index, cl);
  const script = run(cl).catch((e) => {
    if (e !== STOP && ctx.harnessErrors.length < 20) ctx.harnessErrors.push(`${cl.label}: ${e && e.stack ? e.stack : e}`);
  });
  let t;
  let onAbort;
  const timer = new Promise((res) => {
    t = setTimeout(res, Math.max(0, cl.left()));
    onAbort = () => { clearTimeout(t); res(); };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
  });
  await Promise.race([script, timer]);
  clearTimeout(t);
  ctx.signal.removeEventListener('abort', onAbort);
  cl.finishAll();
  ctx.running.delete(index);
  await Promise.race([script, delay(2000)]);
}

/**
 * Keep `concurrency` chaos clients alive for `seconds` (at most `maxTotal`
 * clients in all, fewer when stop() says so), then end every one of them.
 * Resolves {started, leftover}.
 */
export async function runChaos(ctx, { seconds, concurrency, maxTotal, stop = () => false }) {
  const end = Date.now() + seconds * 1000;
  const all = new Set();
  let index = 0;
  while (Date.now() < end && index < maxTotal && !stop()) {
    for (let k = 0; k < 20 && ctx.running.size < concurrency && index < maxTotal; k++) {
      const p = runClient(ctx, index++);
      all.add(p);
      p.finally(() => all.delete(p));
    }
    await delay(20);
  }
  ctx.stats.started = index;
  ctx.abort.abort();
  await Promise.race([Promise.allSettled([...all]), delay(8000)]);
  const leftover = ctx.sockets.size;
  for (const s of ctx.sockets) s.destroy();
  ctx.sockets.clear();
  return { started: index, leftover };
}
