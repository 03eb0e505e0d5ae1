// Chaos: for SSEHUB_CHAOS_SECONDS (default 40) a server with 4 workers, the
// history on (SSE_DB default, in the test's temp dir) and a 64 KiB queue cap
// per subscriber is hit by about 250 live misbehaving clients at a time
// (lib/chaos.mjs: pipelining without reading, trickled and stalled requests,
// subscribers that never or hardly read, Last-Event-ID storms with 0, random,
// garbage and 2^64 ids, tokens with duplicate types, expired or foreign
// tokens, malformed HTTP, publish bursts, resets and half-closes), while four
// honest subscribers read (unfiltered, typed, one user's, and one that
// reconnects with its Last-Event-ID every ~2 s) and an honest publisher
// publishes a known sequence. Afterwards:
//   - the server is alive and answers /healthz;
//   - every acknowledged publish (honest and chaos) reached each honest
//     subscriber it is routed to, once, ids strictly increasing, intact, and
//     nothing reached a subscriber it is not routed to;
//   - chaos clients that read saw no id twice, no misrouted event, pipelined
//     answers in order, and bad credentials refused;
//   - a replay from Last-Event-ID: 0 after the chaos reaches the newest event
//     (a replay bigger than the queue cap must still finish);
//   - RSS, sampled every second, stayed under start + 150 MB (start + 600 MB
//     under ASan, whose quarantine alone keeps up to 256 MB of freed memory;
//     SSEHUB_CHAOS_RSS_MB overrides either);
//   - open fds return near the start value once the chaos clients are gone;
//   - SIGTERM still gives a clean exit, and stderr holds no sanitizer report.
// The seed is printed; SSEHUB_CHAOS_SEED replays the same clients (timing
// still differs from run to run). SSEHUB_CHAOS_KINDS=kind,kind runs only those
// kinds (names in lib/chaos.mjs KINDS), to look past a failure that ends the
// run early.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import {
  SseStream, request, sanitizerReport, sleep, startServer, tokenParam,
} from './lib/server.mjs';
import { keepAlivePublisher } from './lib/history.mjs';
import {
  KINDS, StreamChecker, Violations, accepts, chaosContext, filler, makeContent, makeTokens,
  parseContent, prng, runChaos, subSeed,
} from './lib/chaos.mjs';

function envNumber(name, def, { integer = false } = {}) {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) throw new Error(`${name} must be a ${integer ? 'non-negative integer' : 'positive number'}, got ${JSON.stringify(v)}`);
  return n;
}

const SECONDS = envNumber('SSEHUB_CHAOS_SECONDS', 40) || 40;
const SEED = envNumber('SSEHUB_CHAOS_SEED', crypto.randomInt(2 ** 32), { integer: true }) >>> 0;
// SSEHUB_CHAOS_KINDS=a,b runs only those kinds of chaos client (to look past one failure).
const KIND_NAMES = KINDS.map((k) => k[0]);
const ONLY = (process.env.SSEHUB_CHAOS_KINDS || '').split(',').map((k) => k.trim()).filter(Boolean);
for (const k of ONLY) if (!KIND_NAMES.includes(k)) throw new Error(`SSEHUB_CHAOS_KINDS: unknown kind ${JSON.stringify(k)} (kinds: ${KIND_NAMES.join(', ')})`);
const CONCURRENCY = 250;              // chaos clients alive at once
const MAX_CLIENTS = Math.ceil(200 * SECONDS); // in all, whatever the pace
const HEADER_TIMEOUT = 3;             // SSE_HEADER_TIMEOUT, so stalled requests meet it within the run
const QUEUE = 65536;                  // SSE_MAX_QUEUE_BYTES
const PUBLISH_EVERY_MS = 20;
const TAIL_MS = 1000;                 // honest publishing goes on this long after the chaos
const HONEST_USER = 'honest-user';

const MB = 1024 * 1024;
const rssOf = (pid) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : null;
};
const isAsan = (pid) => { try { return /libasan|libclang_rt\.asan/.test(fs.readFileSync(`/proc/${pid}/maps`, 'utf8')); } catch { return false; } };
const norm = (s) => s.replace(/\r\n|\r/g, '\n');
const fmtMB = (b) => `${(b / MB).toFixed(1)} MB`;

/** The sanitizer report in a stderr text, without the log lines interleaved with it. */
function sanitizerText(stderr) {
  const report = sanitizerReport(stderr);
  if (!report) return null;
  const i = stderr.search(/ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|SUMMARY: \w+Sanitizer/);
  const lines = stderr.slice(Math.max(0, stderr.lastIndexOf('\n', i) + 1)).split('\n')
    .filter((l) => !/^\d{4}-\d\d-\d\dT[\d:.]+Z (DEBUG|INFO|WARN|ERROR) /.test(l));
  const end = lines.findIndex((l) => /^SUMMARY: /.test(l));
  return lines.slice(0, end >= 0 ? Math.min(end + 1, 60) : 60).join('\n');
}

/**
 * A subscriber that reads promptly. It reconnects with its last id after a
 * server close (as EventSource does), or every ~2 s when `resume` is set;
 * every connect, close and refusal is recorded.
 */
class Honest {
  constructor(srv, name, { user = '', types = [], jwt, resume = false, r }) {
    this.srv = srv;
    this.name = name;
    this.jwt = jwt;
    this.resume = resume;
    this.r = r;
    this.sub = { user, types, claims: null };
    this.got = [];
    this.violations = new Violations();
    this.checker = new StreamChecker({ label: name, sub: this.sub, report: (c, d) => this.violations.add(c, d) });
    this.serverCloses = [];
    this.refused = [];
    this.noHead = 0;
    this.connects = 0;
    this.stopped = false;
    this.stream = null;
    this.timer = null;
  }

  connect(lastId) {
    if (this.connects >= 400) return; // bounded, even if every attempt fails
    const q = this.sub.types.map((t) => `type=${t}`);
    const headers = {};
    if (this.sub.user) q.push(`token=${encodeURIComponent(tokenParam(this.jwt, this.sub.user))}`);
    else headers.Authorization = `Bearer ${this.jwt}`;
    if (lastId !== undefined) {
      if (this.r.chance(0.3)) q.push(`lastEventId=${lastId}`);
      else headers['Last-Event-ID'] = String(lastId);
    }
    const s = new SseStream(this.srv.port, {
      path: q.length ? `/events?${q.join('&')}` : '/events', headers, keep: false, onFrame: (f) => this.onFrame(f),
    });
    this.stream = s;
    this.connects++;
    s.head.then((h) => { if (h.status !== 200) this.refused.push(`${h.status} at connect ${this.connects}`); }, () => {});
    const watchdog = setTimeout(() => {
      if (this.stream === s && !s.headInfo && !s.endInfo && !this.stopped) { this.noHead++; this.reconnect(); }
    }, 5000);
    watchdog.unref();
    s.ended.then((e) => {
      clearTimeout(watchdog);
      if (this.stream !== s || this.stopped || s._destroyedByUs) return;
      this.serverCloses.push(`${e.how} at ${new Date(e.at).toISOString().slice(11, 23)} after id ${this.checker.last}`);
      setTimeout(() => { if (this.stream === s && !this.stopped) this.reconnect(); }, 100).unref();
    });
    return s;
  }

  /** Close (our side) and resume from the last id received. */
  reconnect() {
    if (this.stream) this.stream.close();
    this.connect(this.checker.last ?? 0);
  }

  onFrame(f) {
    this.checker.feed(f);
    if (!f.data.length || f.id === undefined) return;
    const data = f.data.join('\n');
    const honest = /^(h\d+|end)\|/.test(data);
    this.got.push({ id: Number(f.id), event: f.event, data: honest ? data : null });
  }

  async start() {
    const s = this.connect(undefined);
    const h = await Promise.race([s.head, sleep(5000).then(() => null)]);
    if (!h || h.status !== 200) throw new Error(`honest subscriber ${this.name}: ${h ? h.status : 'no answer'}`);
    if (this.resume) this.schedule();
  }

  schedule() {
    this.timer = setTimeout(() => {
      if (this.stopped || !this.resume) return;
      this.reconnect();
      this.schedule();
    }, this.r.int(1500, 2500));
  }

  stopResuming() { this.resume = false; clearTimeout(this.timer); }

  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.stream) this.stream.close();
  }
}

/** The honest publisher's n-th event: broadcasts, typed, for the honest user, for another user. */
function honestEvent(r, seq) {
  const x = r.next();
  let type = '';
  let user = '';
  if (x < 0.40) { /* untyped broadcast */ } else if (x < 0.55) type = 'ta';
  else if (x < 0.70) type = 'tb';
  else if (x < 0.75) type = 'tc';
  else if (x < 0.85) user = HONEST_USER;
  else if (x < 0.95) { user = HONEST_USER; type = r.pick(['ta', 'tb', 'tc']); } else { user = 'other-user'; type = r.chance(0.5) ? 'ta' : ''; }
  const body = { content: makeContent(`h${seq}`, type, user, filler(r, r.int(0, 300))) };
  if (type) body.type = type;
  if (user) body.user = user;
  return body;
}

/**
 * Wait (at most 15 s) until done(progress()) holds; give up early when the
 * progress values have not moved for 5 s or the server is gone.
 */
async function settle(progress, done, srv) {
  const by = Date.now() + 15000;
  let last = JSON.stringify(progress());
  let moved = Date.now();
  while (Date.now() < by && !srv.exitInfo && !done(progress())) {
    await sleep(50);
    const now = JSON.stringify(progress());
    if (now !== last) { last = now; moved = Date.now(); } else if (Date.now() - moved > 5000) return;
  }
}

/** What a stream `sub` must have got of `acked` (id -> {type, user}) up to endId, and what it lacks. */
function missingFor(sub, acked, gotIds, endId) {
  const missing = [];
  let expected = 0;
  for (const [id, ev] of acked) {
    if (id > endId || !accepts(sub, ev)) continue;
    expected++;
    if (!gotIds.has(id)) missing.push(id);
  }
  missing.sort((a, b) => a - b);
  return { expected, missing };
}

/** Ranges of a sorted id list, e.g. "3-7, 12, 15-16". */
function ranges(ids, max = 12) {
  const out = [];
  for (let i = 0; i < ids.length && out.length < max; i++) {
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === ids[j] + 1) j++;
    out.push(i === j ? `${ids[i]}` : `${ids[i]}-${ids[j]}`);
    i = j;
  }
  return out.join(', ') + (out.length === max ? ', …' : '');
}

function describeIds(ids, acked, n = 6) {
  return ids.slice(0, n).map((id) => {
    const ev = acked.get(id);
    return `${id} (${ev.origin || 'chaos'} type=${ev.type || '-'} user=${ev.user || '-'})`;
  }).join(', ');
}

describe(`chaos: ${SECONDS} s, seed ${SEED}`, () => {
  const run = {
    srv: null, honest: [], acked: new Map(), sent: [], endId: null, samples: [], ctx: null,
    chaos: null, crash: null, health: null, replays: [], fds: {}, rss: {}, asan: false, errors: [],
  };

  before(async () => {
    console.log(`chaos seed ${SEED} (replay with SSEHUB_CHAOS_SEED=${SEED}), ${SECONDS} s, ${CONCURRENCY} clients alive at once, kinds ${(ONLY.length ? ONLY : KIND_NAMES).join(',')}`);
    const srv = await startServer({
      env: {
        SSE_WORKERS: 4,
        SSE_MAX_QUEUE_BYTES: QUEUE,
        SSE_HEARTBEAT: 2,
        SSE_HEADER_TIMEOUT: HEADER_TIMEOUT,
        SSE_IDLE_TIMEOUT: 10,
        SSE_LOG_LEVEL: 'info',
      },
    });
    run.srv = srv;
    const t0 = Date.now();
    run.asan = isAsan(srv.pid);
    const tok = makeTokens();
    const r = prng(subSeed(SEED, 0xffffffff));

    // Resource samples every second, from now until the end.
    const sample = () => {
      if (srv.exitInfo) return;
      try { run.samples.push({ t: Date.now() - t0, rss: rssOf(srv.pid), fds: srv.fdCount() }); } catch { /* exiting */ }
    };
    sample();
    const sampler = setInterval(sample, 1000);

    let ctx;
    srv.exited.then((info) => {
      run.crash = {
        info, at: Date.now() - t0,
        running: ctx ? [...ctx.running.values()].map((c) => c.label) : [],
      };
    });

    try {
      // Honest subscribers, all connected before anything is published.
      run.honest = [
        new Honest(srv, 'unfiltered', { jwt: tok.anon, r: prng(subSeed(SEED, 0xfffffff0)) }),
        new Honest(srv, 'typed ta', { jwt: tok.anon, types: ['ta'], r: prng(subSeed(SEED, 0xfffffff1)) }),
        new Honest(srv, `user ${HONEST_USER} type tb`, { jwt: tok.user(HONEST_USER), user: HONEST_USER, types: ['tb'], r: prng(subSeed(SEED, 0xfffffff2)) }),
        new Honest(srv, `resuming, user ${HONEST_USER} type ta`, { jwt: tok.user(HONEST_USER), user: HONEST_USER, types: ['ta'], resume: true, r: prng(subSeed(SEED, 0xfffffff3)) }),
      ];
      for (const h of run.honest) await h.start();

      // The honest publisher: one event every ~20 ms on one keep-alive connection.
      let latest = 0;
      let pubStop = false;
      const maxPublishes = Math.ceil((SECONDS * 1000 + TAIL_MS + 5000) / PUBLISH_EVERY_MS);
      const publisher = keepAlivePublisher(srv, tok.pub);
      const post = async (body, seq) => {
        const rec = { seq, body };
        try {
          const res = await publisher.post(body, 10000);
          rec.status = res.status;
          if (res.status === 201 && Number.isSafeInteger(res.json?.id)) {
            rec.id = res.json.id;
            latest = Math.max(latest, rec.id);
            run.acked.set(rec.id, { origin: `h${seq}`, type: body.type || '', user: body.user || '', content: body.content });
          } else rec.body = `${res.status} ${res.body.slice(0, 120)}`;
        } catch (e) { rec.error = e.message; }
        run.sent.push(rec);
        return rec;
      };
      const publishing = (async () => {
        for (let seq = 1; seq <= maxPublishes && !pubStop && !srv.exitInfo; seq++) {
          const t = Date.now();
          await post(honestEvent(r, seq), seq);
          const wait = PUBLISH_EVERY_MS - (Date.now() - t);
          if (wait > 0) await sleep(wait);
        }
      })();

      await sleep(1000); // warm-up: history files open, a few events through
      run.fds.start = srv.fdCount();
      run.rss.start = rssOf(srv.pid);
      console.log(`start: rss ${fmtMB(run.rss.start)}, ${run.fds.start} fds, asan ${run.asan}`);

      // The chaos.
      ctx = chaosContext({
        port: srv.port, seed: SEED, headerTimeout: HEADER_TIMEOUT, tok, kinds: ONLY.length ? ONLY : KIND_NAMES,
        latestId: () => latest,
      });
      run.ctx = ctx;
      const tc = Date.now();
      run.chaos = await runChaos(ctx, { seconds: SECONDS, concurrency: CONCURRENCY, maxTotal: MAX_CLIENTS, stop: () => !!srv.exitInfo });
      run.chaos.ms = Date.now() - tc;
      for (const [id, ev] of ctx.chaosAcked) run.acked.set(id, { origin: 'chaos', ...ev });

      // A quiet tail, then the end marker (an untyped broadcast: every stream gets it).
      await sleep(TAIL_MS);
      pubStop = true;
      await publishing;
      if (!srv.exitInfo) {
        const end = await post({ content: makeContent('end', '', '', 'end of the run') }, 0);
        if (end.id) run.endId = end.id;
      }
      publisher.close();
      for (const h of run.honest) h.stopResuming();
      if (!srv.exitInfo) run.honest[3].reconnect(); // one last resume after the chaos
      if (run.endId) {
        await settle(() => run.honest.map((h) => h.checker.last ?? 0), (ids) => ids.every((id) => id >= run.endId), srv);
      }

      // Quiet: the chaos clients are gone; fds should come back.
      if (!srv.exitInfo) {
        const quietBy = Date.now() + 15000;
        for (;;) {
          try { run.fds.end = srv.fdCount(); } catch { break; }
          if (run.fds.end <= run.fds.start + 8 || Date.now() > quietBy || srv.exitInfo) break;
          await sleep(200);
        }
        try { run.health = await request(srv, 'GET', '/healthz', { timeout: 5000 }); } catch (e) { run.health = { error: e.message }; }
      }

      // Full replays from 0 after the chaos, as a fresh client would ask.
      if (!srv.exitInfo && run.endId) {
        const mk = (name, sub, path, headers) => {
          const rep = { name, sub, got: new Set(), violations: new Violations(), status: null };
          rep.checker = new StreamChecker({ label: name, sub, after: 0, report: (c, d) => rep.violations.add(c, d) });
          rep.stream = new SseStream(srv.port, {
            path, headers, keep: false,
            onFrame: (f) => { rep.checker.feed(f); if (f.data.length && f.id !== undefined) rep.got.add(Number(f.id)); },
          });
          rep.stream.head.then((h) => { rep.status = h.status; }, () => {});
          return rep;
        };
        run.replays = [
          mk('replay from 0, unfiltered', { user: '', types: [], claims: null }, '/events', { Authorization: `Bearer ${tok.anon}`, 'Last-Event-ID': '0' }),
          mk(`replay from 0, user ${HONEST_USER} type tb`, { user: HONEST_USER, types: ['tb'], claims: null },
            `/events?type=tb&lastEventId=0&token=${encodeURIComponent(tokenParam(tok.user(HONEST_USER), HONEST_USER))}`, {}),
        ];
        await settle(() => run.replays.map((x) => (x.stream.endInfo ? Infinity : x.checker.last ?? 0)), (ids) => ids.every((id) => id >= run.endId), srv);
        for (const x of run.replays) { x.endInfo = x.stream.endInfo; x.stream.close(); }
      }
    } catch (e) {
      run.errors.push(e.stack || String(e));
    } finally {
      clearInterval(sampler);
      sample();
      for (const h of run.honest) h.close();
    }

    const rss = run.samples.map((s) => s.rss).filter((x) => x);
    run.rss.max = rss.length ? Math.max(...rss) : null;
    const fds = run.samples.map((s) => s.fds).filter((x) => x);
    run.fds.max = fds.length ? Math.max(...fds) : null;
    const drops = srv.lines.filter((l) => /\bdrop\b/.test(l)).length;
    console.log(`chaos: ${run.chaos?.started ?? 0} clients (${run.ctx?.stats.sockets ?? 0} connections) in ${run.chaos?.ms ?? 0} ms (${JSON.stringify(run.ctx?.stats.kinds || {})}), `
      + `${run.ctx?.chaosAcked.size ?? 0} chaos publishes acknowledged, ${run.sent.filter((s) => s.id).length} honest, `
      + `${drops} slow-subscriber drops logged, ${run.ctx?.stats.slow ?? 0} answers still pending at a client's end`);
    console.log(`rss: start ${fmtMB(run.rss.start || 0)}, max ${fmtMB(run.rss.max || 0)}; fds: start ${run.fds.start}, max ${run.fds.max}, end ${run.fds.end}`);
    if (run.ctx?.harnessErrors.length) console.log(`chaos client errors (test side):\n${run.ctx.harnessErrors.join('\n')}`);
    if (run.errors.length) console.log(`run errors:\n${run.errors.join('\n')}`);
  }, { timeout: (SECONDS + 150) * 1000 });

  after(async () => {
    for (const h of run.honest) h.close();
    if (run.srv && !run.srv.exitInfo) {
      try { run.srv.proc.kill('SIGKILL'); } catch { /* gone */ }
      await run.srv.exited;
    }
  });

  const crashText = () => {
    const c = run.crash;
    const tail = run.srv ? run.srv.lines.slice(-30).join('\n') : '';
    if (!c) return tail;
    const kinds = {};
    for (const l of c.running) { const k = l.replace(/^client \d+ \(|\)$/g, ''); kinds[k] = (kinds[k] || 0) + 1; }
    return `server exited ${JSON.stringify(c.info)} ${(c.at / 1000).toFixed(1)} s into the run (seed ${SEED}); `
      + `chaos clients alive then: ${JSON.stringify(kinds)}\n${sanitizerText(run.srv.stderr) || tail}`;
  };

  test('the server is still alive and answers /healthz', () => {
    assert.equal(run.errors.length, 0, `the run itself failed:\n${run.errors.join('\n')}`);
    assert.ok(!run.crash, crashText());
    assert.equal(run.health?.status, 200, `/healthz after the chaos: ${JSON.stringify(run.health)}`);
  });

  test('the honest publisher got 201 for every event', () => {
    assert.ok(!run.crash, 'the server died during the run (see the first test)');
    const bad = run.sent.filter((s) => !s.id);
    assert.ok(run.sent.length > 0, 'nothing was published');
    assert.equal(bad.length, 0, `${bad.length} of ${run.sent.length} honest publishes not acknowledged: ${JSON.stringify(bad.slice(0, 5).map((b) => ({ seq: b.seq, status: b.status, error: b.error, body: typeof b.body === 'string' ? b.body : undefined })))}`);
    assert.ok(run.endId, 'the end marker was not published');
  });

  for (const idx of [0, 1, 2, 3]) {
    test(`honest subscriber ${idx + 1}: every event routed to it, once, in increasing order, intact`, (t) => {
      const h = run.honest[idx];
      assert.ok(h, 'not started');
      assert.ok(!run.crash, 'the server died during the run (see the first test)');
      assert.ok(run.endId, 'no end marker: nothing to compare');
      const gotIds = new Set(h.got.map((g) => g.id));
      const { expected, missing } = missingFor(h.sub, run.acked, gotIds, run.endId);
      const mismatched = [];
      for (const g of h.got) {
        if (g.data === null) continue;
        const c = parseContent(g.data);
        const ev = run.acked.get(g.id);
        if (ev && ev.content !== undefined && (norm(ev.content) !== g.data || (g.event || '') !== ev.type)) mismatched.push(g.id);
        else if (!ev && c && run.sent.some((s) => s.id && `h${s.seq}` === c.origin)) mismatched.push(g.id);
      }
      const chaosGot = h.got.filter((g) => g.data === null).length;
      t.diagnostic(`${h.name}: ${h.got.length} events (${chaosGot} from chaos clients), ${expected} expected, ${h.connects} connects`);
      const problems = [];
      if ((h.checker.last ?? 0) < run.endId) problems.push(`did not reach the end marker ${run.endId} (last id ${h.checker.last})`);
      if (missing.length) problems.push(`${missing.length} of ${expected} events routed to it never arrived: ids ${ranges(missing)}; e.g. ${describeIds(missing, run.acked)}`);
      if (h.violations.total) problems.push(h.violations.toString());
      if (mismatched.length) problems.push(`${mismatched.length} events differ from what was published: ids ${ranges(mismatched)}`);
      if (h.serverCloses.length) problems.push(`closed by the server ${h.serverCloses.length} times while reading promptly: ${h.serverCloses.slice(0, 4).join('; ')}`);
      if (h.refused.length) problems.push(`refused on reconnect: ${h.refused.slice(0, 4).join('; ')}`);
      if (h.noHead) problems.push(`${h.noHead} connects got no answer within 5 s`);
      assert.equal(problems.length, 0, `${h.name} (seed ${SEED}):\n${problems.join('\n')}`);
    });
  }

  test('chaos clients that read: no id twice, no misrouted event, answers in order, bad credentials refused', (t) => {
    assert.ok(run.ctx, 'the chaos did not run');
    const v = run.ctx.violations;
    t.diagnostic(`${run.ctx.stats.started} chaos clients: ${JSON.stringify(run.ctx.stats.kinds)}`);
    const died = run.crash ? ` (the server died ${(run.crash.at / 1000).toFixed(1)} s into the run: connections it closed then were the crash)` : '';
    assert.equal(v.total, 0, `${v.total} violations seen by chaos clients (seed ${SEED})${died}:\n${v}`);
  });

  test('a replay from Last-Event-ID: 0 after the chaos reaches the newest event, with everything routed to it', () => {
    assert.ok(!run.crash, 'the server died during the run (see the first test)');
    assert.ok(run.endId, 'no end marker');
    assert.equal(run.replays.length, 2, 'the replays did not run');
    const problems = [];
    for (const x of run.replays) {
      const { expected, missing } = missingFor(x.sub, run.acked, x.got, run.endId);
      if (x.status !== 200) problems.push(`${x.name}: status ${x.status}`);
      if ((x.checker.last ?? 0) < run.endId) problems.push(`${x.name}: stopped at id ${x.checker.last} of ${run.endId} (${x.got.size} events; ${x.endInfo ? `closed by the server: ${x.endInfo.how}` : 'still open, no progress for 5 s'})`);
      if (missing.length) problems.push(`${x.name}: ${missing.length} of ${expected} events missing: ids ${ranges(missing)}`);
      if (x.violations.total) problems.push(`${x.name}:\n${x.violations}`);
    }
    assert.equal(problems.length, 0, `(seed ${SEED}) queue cap ${QUEUE} bytes:\n${problems.join('\n')}`);
  });

  test('RSS stayed bounded', (t) => {
    assert.ok(run.rss.start && run.rss.max, 'no RSS samples');
    const extraMB = envNumber('SSEHUB_CHAOS_RSS_MB', run.asan ? 600 : 150);
    t.diagnostic(`max RSS ${fmtMB(run.rss.max)} (start ${fmtMB(run.rss.start)}, bound start + ${extraMB} MB${run.asan ? ', ASan' : ''})`);
    const worst = run.samples.reduce((a, s) => (s.rss > (a?.rss || 0) ? s : a), null);
    assert.ok(run.rss.max <= run.rss.start + extraMB * MB,
      `max RSS ${fmtMB(run.rss.max)} at ${(worst.t / 1000).toFixed(0)} s > start ${fmtMB(run.rss.start)} + ${extraMB} MB`);
  });

  test('open fds come back near the start value after the chaos clients are gone', (t) => {
    assert.ok(!run.crash, 'the server died during the run (see the first test)');
    assert.ok(Number.isInteger(run.fds.start) && Number.isInteger(run.fds.end), `fd counts: ${JSON.stringify(run.fds)}`);
    t.diagnostic(`fds: start ${run.fds.start}, max ${run.fds.max}, end ${run.fds.end}`);
    assert.ok(run.fds.end <= run.fds.start + 8, `${run.fds.end} fds open after waiting up to 15 s for the chaos clients to go, ${run.fds.start} before it (max ${run.fds.max})`);
  });

  test('SIGTERM: clean exit, no sanitizer report', async () => {
    const srv = run.srv;
    assert.ok(srv, 'no server');
    const problems = [];
    if (run.crash) problems.push(`the server had already died: ${JSON.stringify(run.crash.info)} (see the first test)`);
    if (!srv.exitInfo) {
      try {
        const r = await srv.stop({ timeout: 10000 });
        if (r.code !== 0) problems.push(`exit ${JSON.stringify(r)} on SIGTERM; stderr tail:\n${srv.lines.slice(-20).join('\n')}`);
      } catch (e) { if (!/sanitizer report/.test(e.message)) problems.push(e.message); }
    }
    const report = sanitizerText(srv.stderr);
    if (report) problems.push(`sanitizer report:\n${report}`);
    assert.equal(problems.length, 0, `(seed ${SEED}) ${problems.join('\n')}`);
  });
});
