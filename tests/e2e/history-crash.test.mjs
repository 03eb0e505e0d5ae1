// Crash safety (issue 3): several keep-alive publishers publish in a loop while
// the server is killed with SIGKILL at a random moment. After a restart on
// the same database every event that got a 201 is in the history with its
// exact content (replay from Last-Event-ID: 0 and /notifications), no id was
// given twice, new ids are above every old one, and the database passes
// PRAGMA integrity_check (sqlite3 CLI).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, tempDir, sleep } from './lib/server.mjs';
import {
  tokens, subscribe, waitForId, keepAlivePublisher, publishAll, allNotifications,
  integrityCheck, NO_SQLITE3, dbPath, firstNonIncreasing,
} from './lib/history.mjs';

const servers = [];
after(async () => { for (const s of servers) await s.stop().catch(() => {}); });

const PUBLISHERS = 4;
const ROUNDS = 3;

/** Content that identifies the publisher, round and sequence, with awkward characters. */
const contentFor = (round, p, i) => `r${round}-p${p}-#${i} ${'x'.repeat((i * 37) % 300)} ünï\n"line2"\\`;

test('crash: every event acknowledged before a SIGKILL survives, exactly, and the database is intact', { timeout: 60000 }, async (t) => {
  const cwd = tempDir();
  const acked = new Map(); // id -> content
  let maxId = 0;
  let integritySkipped = false;

  for (let round = 0; round < ROUNDS; round++) {
    const srv = await startServer({ cwd });
    servers.push(srv);
    const tk = await tokens(srv);

    // The first id of this run is above every id any earlier run acknowledged.
    let stop = false;
    let firstOfRound = Infinity;
    const errors = [];
    const loops = Array.from({ length: PUBLISHERS }, async (_, p) => {
      const pub = keepAlivePublisher(srv, tk.pub);
      try {
        for (let i = 0; !stop && i < 100000; i++) {
          const content = contentFor(round, p, i);
          let r;
          try { r = await pub.post({ content }, 3000); } catch { return; } // killed mid-request: not acknowledged
          if (r.status !== 201) { errors.push(`${r.status} ${r.body}`); return; }
          const id = r.json?.id;
          if (!Number.isInteger(id)) { errors.push(`201 without an id: ${r.body}`); return; }
          if (acked.has(id)) errors.push(`id ${id} acknowledged twice: ${JSON.stringify(acked.get(id))} and ${JSON.stringify(content)}`);
          acked.set(id, content);
          firstOfRound = Math.min(firstOfRound, id);
        }
      } finally { pub.close(); }
    });

    await sleep(150 + Math.floor(Math.random() * 450));
    const killed = await srv.stop({ signal: 'SIGKILL' });
    stop = true;
    await Promise.all(loops);
    assert.equal(killed.signal, 'SIGKILL');
    assert.deepEqual(errors, [], `round ${round}: publisher errors`);
    assert.ok(firstOfRound > maxId || firstOfRound === Infinity, `round ${round}: first id ${firstOfRound} not above previous max ${maxId}`);
    const ids = [...acked.keys()];
    assert.ok(ids.length > 0, 'some publishes were acknowledged before the kill');
    maxId = Math.max(...ids);

    // The crashed file, as left by SIGKILL (sqlite3 replays the WAL as any reader would).
    const chk = integrityCheck(dbPath(srv));
    if (chk === null) integritySkipped = true;
    else assert.deepEqual(chk, { code: 0, out: 'ok', err: '' }, `round ${round}: integrity_check after SIGKILL`);
  }

  // Restart and read everything back.
  const srv = await startServer({ cwd });
  servers.push(srv);
  const tk = await tokens(srv);
  const subJwt = await tk.sub('reader');
  const sorted = [...acked.keys()].sort((a, b) => a - b);

  const replay = await subscribe(srv, subJwt, 'reader', { lastId: 0 });
  await waitForId(replay, maxId, 20000);
  const got = replay.events.map((e) => ({ id: Number(e.id), data: e.data.join('\n') }));
  const gotIds = got.map((e) => e.id);
  assert.equal(firstNonIncreasing(gotIds), -1, `replay ids not strictly increasing at ${firstNonIncreasing(gotIds)}`);
  const byId = new Map(got.map((e) => [e.id, e.data]));
  const missing = sorted.filter((id) => !byId.has(id));
  assert.deepEqual(missing, [], `acknowledged ids missing from the replay (${missing.length} of ${sorted.length})`);
  // SSE splits content on CR/LF into data lines; rejoined with \n it must equal the original.
  const wrong = sorted.filter((id) => byId.get(id) !== acked.get(id));
  assert.deepEqual(wrong.map((id) => ({ id, want: acked.get(id), got: byId.get(id) })), [], 'replayed content differs');
  // Events that were committed but whose 201 was lost may exist; they must look like ours.
  for (const e of got) {
    if (!acked.has(e.id)) assert.match(e.data, /^r\d+-p\d+-#\d+ /, `unexpected event ${e.id} in history`);
  }
  replay.close();

  // /notifications, newest first, page by page: the same events with exact content.
  const { items } = await allNotifications(srv, subJwt, 'reader', { limit: 500 });
  const listIds = items.map((i) => i.id);
  assert.deepEqual(listIds, [...gotIds].reverse(), '/notifications lists exactly the replayed ids, newest first');
  for (const it of items) {
    if (acked.has(it.id)) assert.equal(it.content, acked.get(it.id), `content of ${it.id}`);
  }

  // No id is reused after the crashes.
  const [fresh] = await publishAll(srv, tk.pub, [{ content: 'after the crashes' }]);
  assert.ok(fresh > Math.max(...gotIds), `new id ${fresh} must exceed every stored id (max ${Math.max(...gotIds)})`);

  const stopped = await srv.stop();
  assert.equal(stopped.code, 0);
  const chk = integrityCheck(dbPath(srv));
  if (chk === null) integritySkipped = true;
  else assert.deepEqual(chk, { code: 0, out: 'ok', err: '' }, 'integrity_check after the final clean stop');
  if (integritySkipped) t.diagnostic(`SKIPPED ASSERTION: ${NO_SQLITE3}`);
  t.diagnostic(`${sorted.length} acknowledged events over ${ROUNDS} SIGKILLs, ${got.length} stored`);
});
