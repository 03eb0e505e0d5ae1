// Helpers for the HTTPS tests: certificates made with the `openssl` command
// at test time, a ssehub started with SSE_TLS_CERT/SSE_TLS_KEY, and clients
// over node:https / node:tls (the shared helpers in server.mjs speak plain
// node:http / node:net only).

import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { HOST, SseStream, startServer, sleep } from './server.mjs';

export function tlsTempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-tls-'));
}

/**
 * A self-signed P-256 certificate for 127.0.0.1 (CN and IP SAN), made with
 * the openssl command into dir/<name>.crt and dir/<name>.key. Returns
 * {certPath, keyPath, cert, key (PEM strings), fingerprint256 (as node's
 * getPeerCertificate() spells it)}.
 */
export function makeCert(dir, name = 'server', { cn = '127.0.0.1' } = {}) {
  const certPath = path.join(dir, `${name}.crt`);
  const keyPath = path.join(dir, `${name}.key`);
  const r = spawnSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-subj', `/CN=${cn}`, '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '2',
    '-keyout', keyPath, '-out', certPath,
  ], { encoding: 'utf8', timeout: 20000 });
  if (r.status !== 0) throw new Error(`openssl req failed (${r.status}): ${r.stderr}${r.error || ''}`);
  const cert = fs.readFileSync(certPath, 'utf8');
  const key = fs.readFileSync(keyPath, 'utf8');
  return { certPath, keyPath, cert, key, fingerprint256: new crypto.X509Certificate(cert).fingerprint256 };
}

/** Start ssehub with HTTPS on; opts as for startServer, env merged. */
export function startTlsServer(pair, opts = {}) {
  return startServer({
    ...opts,
    env: { SSE_TLS_CERT: pair.certPath, SSE_TLS_KEY: pair.keyPath, ...(opts.env || {}) },
  });
}

/**
 * One HTTPS request on its own connection, trusting `ca`. body: string, or
 * an object (sent as JSON). Resolves {status, headers, body, json, cert
 * (peer certificate), protocol, alpn}.
 */
export function httpsRequest(port, method, p, { ca, headers = {}, body, timeout = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    let payload = body;
    const h = { ...headers };
    if (payload !== undefined && typeof payload === 'object' && !Buffer.isBuffer(payload)) {
      payload = JSON.stringify(payload);
      h['Content-Type'] = 'application/json';
    }
    const req = https.request({
      host: HOST, port, method, path: p, headers: h, ca, agent: false, timeout,
    }, (res) => {
      const chunks = [];
      const sock = res.socket;
      const info = { cert: sock.getPeerCertificate(), protocol: sock.getProtocol(), alpn: sock.alpnProtocol };
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, body: text, json, ...info });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`HTTPS ${method} ${p} timed out after ${timeout} ms`)));
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** POST /login over HTTPS. Adds token, id, setCookie (array), cookie (value). */
export async function httpsLogin(port, ca, creds, id) {
  const body = { username: creds.username, password: creds.password };
  if (id !== undefined) body.id = id;
  const r = await httpsRequest(port, 'POST', '/login', { ca, body });
  const sc = [].concat(r.headers['set-cookie'] || []);
  const m = sc.length ? /^sse_token=([^;]*)/.exec(sc[0]) : null;
  return { ...r, token: r.json?.token, id: r.json?.id, setCookie: sc, cookie: m ? m[1] : undefined };
}

export async function httpsToken(port, ca, creds, id) {
  const r = await httpsLogin(port, ca, creds, id);
  if (r.status !== 200 || !r.token) throw new Error(`HTTPS login ${creds.username} -> ${r.status} ${r.body}`);
  return r.token;
}

/** POST /broadcast over HTTPS; insists on 201 and returns the event id. */
export async function httpsPublish(port, ca, token, payload) {
  const r = await httpsRequest(port, 'POST', '/broadcast', { ca, body: payload, headers: { Authorization: `Bearer ${token}` } });
  if (r.status !== 201) throw new Error(`HTTPS broadcast -> ${r.status} ${r.body}`);
  return r.json.id;
}

/** A TLS connection (no request); resolves the connected socket or rejects. */
export function tlsConnect(port, opts = {}, timeout = 5000) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: HOST, port, ...opts });
    const t = setTimeout(() => { s.destroy(); reject(new Error(`TLS handshake timed out after ${timeout} ms`)); }, timeout);
    s.once('secureConnect', () => { clearTimeout(t); resolve(s); });
    s.once('error', (e) => { clearTimeout(t); s.destroy(); reject(e); });
    s.once('close', () => { clearTimeout(t); reject(new Error('closed before the handshake completed')); });
  });
}

/** The SHA-256 fingerprint of the certificate a fresh connection is shown. */
export async function servedFingerprint(port) {
  const s = await tlsConnect(port, { rejectUnauthorized: false });
  const fp = s.getPeerCertificate().fingerprint256;
  s.destroy();
  return fp;
}

/** The bytes of a real ClientHello, as node's TLS client sends it. */
export function captureClientHello() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer((c) => {
      c.once('data', (d) => { resolve(d); c.destroy(); srv.close(); });
    });
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const s = tls.connect({ host: HOST, port: srv.address().port, rejectUnauthorized: false });
      s.on('error', () => {});
    });
  });
}

/**
 * An SSE stream over TLS: GET path, with an SSE parser over the body.
 * Fields as SseStream in server.mjs: head (promise), text, frames, events,
 * ended, waitFor(pred), waitForData(data), ready(), close(); plus sock
 * (the TLSSocket).
 */
/** The e2e suite's SSE stream (lib/server.mjs), over TLS with the given CA. */
export class TlsSseStream extends SseStream {
  constructor(port, { ca, ...opts } = {}) {
    super(port, { ...opts, tls: { ca } });
  }
}

/** Open a TLS SSE stream and wait for 200 + the retry line. */
export async function openTlsStream(port, opts = {}) {
  const s = new TlsSseStream(port, opts);
  let h;
  try { h = await s.ready(opts.timeout || 3000); } catch (e) { s.close(); throw e; }
  if (h.status !== 200) { s.close(); throw new Error(`GET ${opts.path || '/events'} over TLS -> ${h.status}\n${h.text}`); }
  return s;
}

/**
 * A raw TCP exchange: connect, write steps [{data, delay}], collect until
 * the server closes or timeout ms pass. Resolves {buf, closed, ms}.
 */
export function rawTcp(port, steps, { timeout = 5000 } = {}) {
  return new Promise((resolve) => {
    const chunks = [];
    const t0 = Date.now();
    let done = false;
    const sock = net.connect({ host: HOST, port });
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ buf: Buffer.concat(chunks), closed, ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => finish('timeout'), timeout);
    sock.on('data', (c) => chunks.push(c));
    sock.on('end', () => finish('end'));
    sock.on('close', () => finish('end'));
    sock.on('error', (e) => finish(e.code === 'ECONNRESET' ? 'reset' : `error:${e.code}`));
    sock.on('connect', async () => {
      for (const s of steps) {
        if (s.delay) await sleep(s.delay);
        if (done) return;
        if (s.data && s.data.length) sock.write(s.data, () => {});
      }
    });
  });
}

/** Parse a Set-Cookie value into [name=value, attributes...] (trimmed). */
export function cookieParts(setCookie) {
  return setCookie.split(';').map((s) => s.trim());
}
