// Resource behaviour under (bounded) load: 1,000 connect/disconnect cycles
// leave no file descriptors behind, and a subscriber that never reads is
// dropped (and logged) while 100 others receive every event, in order.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { describe, test } from 'node:test';
import {
  HOST, SseStream, havePython, openStream, request, sleep, startServer, tokenFor, until,
} from './lib/server.mjs';

describe('file descriptors', () => {
  test('1,000 /events connect/disconnect cycles leave no fds behind', { timeout: 60000 }, async () => {
    const srv = await startServer({ env: { SSE_HEARTBEAT: 15 } });
    try {
      const tok = await tokenFor(srv, 'sub');
      const cycle = async () => {
        const s = new SseStream(srv.port, { bearer: tok, keep: true });
        const h = await s.ready();
        assert.equal(h.status, 200);
        s.close();
      };
      for (let i = 0; i < 10; i++) await cycle(); // warm-up
      await sleep(300);
      const base = srv.fdCount();

      // the counter works: 50 open streams are visible as fds
      const open = [];
      for (let i = 0; i < 50; i++) open.push(await openStream(srv, { bearer: tok }));
      assert.ok(srv.fdCount() >= base + 50, `fd count ${srv.fdCount()} rises with 50 open streams (base ${base})`);
      for (const s of open) s.close();

      const BATCH = 25;
      for (let done = 0; done < 1000; done += BATCH) {
        await Promise.all(Array.from({ length: BATCH }, cycle));
      }
      let last;
      try {
        await until(() => { last = srv.fdCount(); return last <= base; }, 5000, 'fds back to baseline');
      } catch {
        assert.fail(`open fds grew from ${base} to ${last} after 1,000 cycles (5 s after the last disconnect)`);
      }
      assert.equal((await request(srv, 'GET', '/healthz')).status, 200);
    } finally { await srv.stopClean(); }
  });
});

// A subscriber that never reads: a python socket with a tiny SO_RCVBUF when
// python3 exists, else a node socket that stops reading after the head.
function slowSubscriber(port, token) {
  if (havePython()) {
    const script = `
import socket, sys, time, json
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect((sys.argv[1], int(sys.argv[2])))
s.sendall(("GET /events HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer " + sys.argv[3] + "\\r\\n\\r\\n").encode())
head = b""
while b"\\r\\n\\r\\n" not in head:
    c = s.recv(1)
    if not c: break
    head += c
print(json.dumps({"head": head.decode("latin1")}), flush=True)
sys.stdin.readline()          # never read until told to
s.settimeout(10)
n, eof = 0, False
try:
    while True:
        c = s.recv(65536)
        if not c:
            eof = True
            break
        n += len(c)
except Exception as e:
    print(json.dumps({"error": str(e)}), flush=True)
print(json.dumps({"bytes": n, "eof": eof}), flush=True)
`;
    const p = spawn('python3', ['-c', script, HOST, String(port), token], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    const msgs = [];
    const waiters = [];
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d) => {
      out += d;
      let i;
      while ((i = out.indexOf('\n')) >= 0) {
        msgs.push(JSON.parse(out.slice(0, i)));
        out = out.slice(i + 1);
        for (const w of waiters.splice(0)) w();
      }
    });
    const next = async (pred, timeout) => until(() => msgs.find(pred), timeout, 'python subscriber message');
    return {
      kind: 'python SO_RCVBUF=4096',
      async ready() { const m = await next((x) => x.head !== undefined, 5000); return /^HTTP\/1\.1 200 /.test(m.head); },
      async drain() { p.stdin.write('go\n'); const m = await next((x) => x.bytes !== undefined, 15000); return m; },
      kill() { try { p.kill('SIGKILL'); } catch { /* gone */ } },
    };
  }
  const s = new SseStream(port, { bearer: token, keep: false, pauseAfterHead: true });
  return {
    kind: 'node socket, paused',
    async ready() { const h = await s.head; return h.status === 200; },
    async drain() {
      s.sock.resume();
      const e = await Promise.race([s.ended, sleep(15000).then(() => null)]);
      return { bytes: s.bodyBytes, eof: e?.how === 'end' };
    },
    kill() { s.close(); },
  };
}

describe('slow subscriber', () => {
  test('a subscriber that never reads is dropped; 100 others get every event promptly, in order', { timeout: 90000 }, async () => {
    const srv = await startServer({ env: { SSE_MAX_QUEUE_BYTES: 65536, SSE_HEARTBEAT: 60, SSE_MAX_BODY_BYTES: 65536 } });
    const fast = [];
    let slow;
    try {
      const sub = await tokenFor(srv, 'sub');
      const pub = await tokenFor(srv, 'pub');
      const FILL = 'x'.repeat(16 * 1024);
      const N = 100;
      const state = Array.from({ length: N }, () => ({ ids: [], bad: [], last: 0 }));
      for (let i = 0; i < N; i++) {
        const st = state[i];
        fast.push(await openStream(srv, {
          bearer: sub,
          keep: false,
          onFrame: (f) => {
            if (!f.data.length) return;
            const id = Number(f.id);
            st.ids.push(id);
            st.last = id;
            const d = f.data.join('\n');
            if (!(d.startsWith(`ev-${id}-`) || d === 'the-end')) st.bad.push(id);
          },
        }));
      }
      slow = slowSubscriber(srv.port, sub);
      assert.ok(await slow.ready(), 'slow subscriber got 200');

      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const post = (content) => new Promise((resolve, reject) => {
        const body = JSON.stringify({ content });
        const req = http.request({ host: HOST, port: srv.port, method: 'POST', path: '/broadcast', agent, headers: { Authorization: `Bearer ${pub}`, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
          let t = '';
          res.setEncoding('utf8');
          res.on('data', (c) => { t += c; });
          res.on('end', () => (res.statusCode === 201 ? resolve(JSON.parse(t).id) : reject(new Error(`broadcast ${res.statusCode} ${t}`))));
        });
        req.on('error', reject);
        req.end(body);
      });
      const published = [];
      // Each event carries its id; ids are predictable only after the answer,
      // so the content names the previous id + 1 and we check it below.
      let nextId = 0;
      const allGot = (id, timeout) => until(() => state.every((s) => s.last >= id), timeout, `all ${N} fast subscribers got event ${id}`, 2);
      const dropped = () => srv.lines.some((l) => /\bdrop(ped)?\b/i.test(l));
      const MAX_EVENTS = 2000; // 32 MB: far beyond any kernel buffering
      let afterDrop = -1;
      for (let i = 0; i < MAX_EVENTS && afterDrop < 20; i++) {
        const id = await post(`ev-${nextId || 'x'}-${FILL}`);
        published.push(id);
        nextId = id + 1;
        await allGot(id, 5000); // the fast ones are never held back
        if (afterDrop >= 0) afterDrop++;
        else if (dropped()) afterDrop = 0;
      }
      assert.ok(dropped(), `no drop line logged after ${published.length} events of 16 KiB`);
      const endId = await post('the-end');
      published.push(endId);
      await allGot(endId, 5000);
      agent.destroy();

      // Contents named the predicted id; the first one could not.
      for (const [i, st] of state.entries()) {
        assert.deepEqual(st.ids, published, `fast subscriber ${i}: every event, in order`);
        assert.deepEqual(st.bad.filter((id) => id !== published[0]), [], `fast subscriber ${i}: contents match ids`);
      }
      for (const s of fast) assert.equal(s.endInfo, null, 'fast subscribers are not closed');
      const dropLines = srv.lines.filter((l) => /\bdrop(ped)?\b/i.test(l));
      assert.equal(dropLines.length, 1, `exactly one subscriber dropped:\n${dropLines.join('\n')}`);

      // The slow one was closed by the server: draining it reaches EOF, and it
      // got far less than was published.
      const d = await slow.drain();
      assert.equal(d.eof, true, `slow subscriber (${slow.kind}) connection closed by the server: ${JSON.stringify(d)}`);
      assert.ok(d.bytes < published.length * FILL.length, `slow subscriber got ${d.bytes} bytes, less than everything`);
    } finally {
      for (const s of fast) s.close();
      if (slow) slow.kill();
      await srv.stopClean();
    }
  });
});
