// Raw-socket helpers for the robustness tests: a connection driven step by
// step (write, wait for n parsed responses, wait for the close), byte-by-byte
// writers that really send separate TCP segments, and the server's resident
// memory from /proc.

import fs from 'node:fs';
import net from 'node:net';
import { HOST, parseResponses, sleep } from './server.mjs';

/**
 * A raw TCP connection to the server. Options: read (false: never read from
 * the kernel, so the server's answers pile up on its side), noDelay.
 */
export function rawConn(port, { read = true, noDelay = true } = {}) {
  const sock = net.connect({ host: HOST, port });
  if (noDelay) sock.setNoDelay(true);
  const chunks = [];
  let size = 0;
  let ended = null;
  const waiters = new Set();
  const poke = () => { for (const w of waiters) w(); };
  const connected = new Promise((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  connected.catch(() => {});
  if (read) {
    sock.on('data', (c) => { chunks.push(c); size += c.length; poke(); });
  } else {
    sock.pause();
  }
  sock.on('end', () => { ended = ended || 'end'; poke(); });
  sock.on('error', (e) => { ended = ended || (e.code === 'ECONNRESET' ? 'reset' : e.code); poke(); });
  sock.on('close', () => { ended = ended || 'close'; poke(); });
  const wake = (ms) => new Promise((r) => {
    const w = () => { waiters.delete(w); clearTimeout(t); r(); };
    const t = setTimeout(w, ms);
    waiters.add(w);
  });
  const api = {
    sock,
    connected,
    get buf() {
      if (chunks.length > 1) { const b = Buffer.concat(chunks); chunks.length = 0; chunks.push(b); }
      return chunks[0] || Buffer.alloc(0);
    },
    get size() { return size; },
    get ended() { return ended; },
    /** Write and resolve once the bytes were handed to the kernel. */
    write(d) {
      return new Promise((resolve) => {
        if (sock.destroyed) { resolve(false); return; }
        sock.write(d, (e) => resolve(!e));
      });
    },
    /** Parse what arrived so far into HTTP responses. */
    parsed() { return parseResponses(api.buf); },
    /** Wait for n complete responses; throws on close or timeout with what came. */
    async responses(n, timeout = 5000) {
      const end = Date.now() + timeout;
      for (;;) {
        const { responses } = parseResponses(api.buf);
        if (responses.length >= n) return responses;
        if (ended || Date.now() > end) {
          const e = new Error(`got ${responses.length}/${n} responses (ended=${ended}): ${JSON.stringify(api.buf.toString('latin1').slice(0, 300))}`);
          e.responses = responses;
          throw e;
        }
        await wake(25);
      }
    },
    /** Wait until the server closes (returns how) or timeout ms pass (returns null). */
    async closed(timeout = 3000) {
      const end = Date.now() + timeout;
      while (!ended) {
        if (Date.now() > end) return null;
        await wake(25);
      }
      return ended;
    },
    close() { sock.destroy(); },
  };
  return api;
}

/**
 * Write data to an open rawConn one byte per write, pausing `pauseMs` after
 * every `every` bytes so the bytes leave in separate segments (Nagle is off).
 */
export async function writeBytewise(c, data, { every = 16, pauseMs = 1 } = {}) {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data, 'latin1');
  await c.connected;
  for (let i = 0; i < buf.length; i++) {
    if (c.ended) return false;
    c.sock.write(buf.subarray(i, i + 1));
    if ((i + 1) % every === 0) await sleep(pauseMs);
  }
  return true;
}

/** Resident set size of a process in KiB (VmRSS), or null once it is gone. */
export function rssKiB(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch { return null; }
}

/** Is the process still running (and not a zombie)? */
export function alive(pid) {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch { return false; }
}
