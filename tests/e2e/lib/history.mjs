// Helpers for the durable-history tests (tests/e2e/history-*.test.mjs):
// subscriber streams with Last-Event-ID, keep-alive publishers, paging
// through /notifications, and the sqlite3 CLI for integrity checks.
// Built on lib/server.mjs, which this file does not change.

import { spawnSync } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import {
  HOST, openStream, request, sleep, tokenFor, tokenParam,
} from './server.mjs';

/** Path of the default history database inside a server's cwd. */
export const dbPath = (srv) => path.join(srv.cwd, 'data', 'ssehub.db');

/**
 * Tokens for a publisher and subscriber identities: {pub, sub(user), anon}.
 * sub(user) logs in with id=user (the token then carries that user id);
 * anon is a subscriber token without a user id.
 */
export async function tokens(srv) {
  const pub = await tokenFor(srv, 'pub');
  const anon = await tokenFor(srv, 'sub');
  const cache = new Map();
  const sub = async (user) => {
    if (!cache.has(user)) cache.set(user, await tokenFor(srv, 'sub', user));
    return cache.get(user);
  };
  return { pub, sub, anon };
}

/** The /events (or /notifications) query for a subscriber: ?token=...&rest */
export function authQuery(jwt, user, extra = '') {
  const q = `token=${encodeURIComponent(tokenParam(jwt, user))}`;
  return extra ? `${q}&${extra}` : q;
}

/**
 * Open /events as `user` (subscriber token). lastId: undefined (no header),
 * or a string/number sent as Last-Event-ID; opts.query adds query parameters
 * (e.g. "type=a&lastEventId=3").
 */
export async function subscribe(srv, jwt, user, { lastId, query = '', timeout = 3000 } = {}) {
  const headers = {};
  if (lastId !== undefined) headers['Last-Event-ID'] = String(lastId);
  return openStream(srv, { path: `/events?${authQuery(jwt, user, query)}`, headers, timeout });
}

/** Data events of a stream as {id: Number, event, data} (data lines joined by \n). */
export function evs(stream) {
  return stream.events.map((e) => ({ id: e.id === undefined ? undefined : Number(e.id), event: e.event, data: e.data.join('\n') }));
}

/** Ids of the data events of a stream. */
export const idsOf = (stream) => stream.events.map((e) => Number(e.id));

/** Wait until the stream has an event with id >= id. */
export function waitForId(stream, id, timeout = 5000) {
  return stream.waitFor((s) => s.events.some((e) => Number(e.id) >= id), timeout, `event id >= ${id}`);
}

/** Wait until the stream holds n data events. */
export function waitForCount(stream, n, timeout = 5000) {
  return stream.waitFor((s) => s.events.length >= n, timeout, `${n} events`);
}

/**
 * A publisher on one keep-alive connection (like a PHP backend with
 * curl reuse). post(payload) resolves {status, json, body}; close() ends it.
 */
export function keepAlivePublisher(srv, jwt) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const post = (payload, timeout = 5000) => new Promise((resolve, reject) => {
    const body = JSON.stringify(payload);
    const req = http.request({
      host: HOST, port: srv.port, method: 'POST', path: '/broadcast', agent, timeout,
      headers: { Authorization: `Bearer ${jwt}`, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, json, body: text });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('publish timeout')));
    req.on('error', reject);
    req.end(body);
  });
  return { post, close: () => agent.destroy() };
}

/** Publish each payload in order on one keep-alive connection; returns the ids (throws unless 201). */
export async function publishAll(srv, jwt, payloads) {
  const p = keepAlivePublisher(srv, jwt);
  const ids = [];
  try {
    for (const pl of payloads) {
      const r = await p.post(pl);
      if (r.status !== 201 || !Number.isInteger(r.json?.id)) throw new Error(`publish ${JSON.stringify(pl).slice(0, 100)} -> ${r.status} ${r.body}`);
      ids.push(r.json.id);
    }
  } finally { p.close(); }
  return ids;
}

/** GET /notifications as user with a query string; resolves the response. */
export function notifications(srv, jwt, user, query = '') {
  return request(srv, 'GET', `/notifications?${authQuery(jwt, user, query)}`);
}

/**
 * Walk every page of /notifications (limit per page) and return
 * {items, pages}. Each page must be 200; stops after maxPages.
 */
export async function allNotifications(srv, jwt, user, { limit = 500, type = [], maxPages = 1000 } = {}) {
  const items = [];
  const pages = [];
  let before = null;
  for (let i = 0; i < maxPages; i++) {
    const q = [`limit=${limit}`, ...type.map((t) => `type=${encodeURIComponent(t)}`)];
    if (before !== null) q.push(`before=${before}`);
    const r = await notifications(srv, jwt, user, q.join('&'));
    if (r.status !== 200) throw new Error(`/notifications ${q.join('&')} -> ${r.status} ${r.body}`);
    pages.push(r.json);
    items.push(...r.json.items);
    if (r.json.next === null) return { items, pages };
    before = r.json.next;
  }
  throw new Error(`/notifications: more than ${maxPages} pages`);
}

/** Run `PRAGMA integrity_check` with the sqlite3 CLI; null when the CLI is missing. */
export function integrityCheck(file) {
  const which = spawnSync('sh', ['-c', 'command -v sqlite3'], { encoding: 'utf8' });
  if (which.status !== 0) return null;
  const r = spawnSync('sqlite3', [file, 'PRAGMA integrity_check;'], { encoding: 'utf8', timeout: 20000 });
  return { code: r.status, out: (r.stdout || '').trim(), err: (r.stderr || '').trim() };
}

/** A message that explains a skipped sqlite3 assertion. */
export const NO_SQLITE3 = 'sqlite3 CLI not installed (Debian package "sqlite3"): PRAGMA integrity_check not run';

/** Bounded wait for an asynchronous condition (async fn), polling every `every` ms. */
export async function eventually(fn, timeout, what, every = 100) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(every);
  }
}

/** Is `arr` strictly increasing? Returns the first offending index or -1. */
export function firstNonIncreasing(arr) {
  for (let i = 1; i < arr.length; i++) if (!(arr[i] > arr[i - 1])) return i;
  return -1;
}
