// Durable history across a clean restart (issue 3): a client that comes back
// with its Last-Event-ID after the server was stopped (SIGTERM) and started
// again on the same data directory gets exactly the events it missed, in
// order, then the live stream; ids keep growing across the restart.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, tempDir, sleep } from './lib/server.mjs';
import {
  tokens, subscribe, evs, waitForId, waitForCount, publishAll, allNotifications,
} from './lib/history.mjs';

const servers = [];
after(async () => { for (const s of servers) await s.stop().catch(() => {}); });

async function start(cwd, env = {}) {
  const s = await startServer({ cwd, env });
  servers.push(s);
  return s;
}

test('restart: a client resumes with its Last-Event-ID and gets exactly what it missed, then live', { timeout: 30000 }, async () => {
  const cwd = tempDir();
  let srv = await start(cwd);
  let t = await tokens(srv);
  const subJwt = await t.sub('alice');

  // alice watches the first three events live.
  const live = await subscribe(srv, subJwt, 'alice');
  const first = [
    { content: 'one' },
    { content: 'two', type: 'news' },
    { content: 'three for alice', user: 'alice' },
  ];
  const firstIds = await publishAll(srv, t.pub, first);
  assert.deepEqual(firstIds, [1, 2, 3], 'ids start at 1 and grow by one on a fresh database');
  await waitForCount(live, 3);
  const lastSeen = Number(live.events.at(-1).id);
  assert.equal(lastSeen, 3);
  live.close();

  // While alice is away: events for her, for others, multi-line and non-ASCII content.
  const missed = [
    { content: 'four\nsecond line', type: 'news' },
    { content: 'not for alice', user: 'bob' },
    { content: 'für alice ✓ "quoted"', user: 'alice', type: 'dm' },
    { content: 'five' },
    { content: 'bob again', user: 'bob', type: 'news' },
    { content: 'six\r\nwith crlf' },
  ];
  const missedIds = await publishAll(srv, t.pub, missed);
  assert.deepEqual(missedIds, [4, 5, 6, 7, 8, 9]);

  const stopped = await srv.stop();
  assert.equal(stopped.code, 0, `SIGTERM exit: ${JSON.stringify(stopped)}\n${srv.stderr}`);

  srv = await start(cwd);
  t = await tokens(srv); // same key: the old token would do too, but log in again like a backend
  const resumed = await subscribe(srv, subJwt, 'alice', { lastId: lastSeen });
  // Everything after 3 that alice's stream accepts: all but bob's two.
  const expected = [
    { id: 4, event: 'news', data: 'four\nsecond line' },
    { id: 6, event: 'dm', data: 'für alice ✓ "quoted"' },
    { id: 7, event: undefined, data: 'five' },
    { id: 9, event: undefined, data: 'six\nwith crlf' },
  ];
  await waitForId(resumed, 9);
  await sleep(200); // nothing else may follow the replay
  assert.deepEqual(evs(resumed), expected, 'replay after restart');
  assert.ok(!resumed.frames.some((f) => f.event === 'reset'), 'no reset for a known id');

  // Live events after the restart: ids above every old one, delivered after the replay.
  const liveIds = await publishAll(srv, t.pub, [{ content: 'after restart' }, { content: 'after restart 2', user: 'alice' }]);
  assert.ok(liveIds[0] > 9, `first id after restart ${liveIds[0]} must exceed 9`);
  assert.ok(liveIds[1] > liveIds[0]);
  await waitForId(resumed, liveIds[1]);
  await sleep(100);
  assert.deepEqual(evs(resumed), [...expected,
    { id: liveIds[0], event: undefined, data: 'after restart' },
    { id: liveIds[1], event: undefined, data: 'after restart 2' }]);
  resumed.close();

  // A second restart with nothing published in between: ids still only grow.
  assert.equal((await srv.stop()).code, 0);
  srv = await start(cwd);
  t = await tokens(srv);
  const [again] = await publishAll(srv, t.pub, [{ content: 'after second restart' }]);
  assert.ok(again > liveIds[1], `id ${again} after the second restart must exceed ${liveIds[1]}`);

  // The whole history, newest first, survived both restarts.
  const { items } = await allNotifications(srv, subJwt, 'alice');
  assert.deepEqual(items.map((i) => i.id), [again, liveIds[1], liveIds[0], 9, 7, 6, 4, 3, 2, 1]);
  assert.deepEqual(items.find((i) => i.id === 6),
    { id: 6, time: items.find((i) => i.id === 6).time, type: 'dm', user: 'alice', content: 'für alice ✓ "quoted"' });
  assert.equal(items.find((i) => i.id === 9).content, 'six\r\nwith crlf', 'content is stored exactly as published');
  assert.equal((await srv.stop()).code, 0);
});

