/*
 * reconnect.test.mjs: the client's reconnection when ssehub restarts.
 *
 * A cross-origin page holds two clients, one on the cookie (withCreds), one
 * on the token parameter (withToken). The server is stopped with SIGTERM
 * (it must exit 0), started again on the same port with the same key, and
 * both clients must reconnect by themselves (the browser's own retry first,
 * SSE_RETRY is 500 ms here (lib/server.mjs), then the client's backoff) and
 * receive an event published after the restart. The listeners the page put
 * on client.es follow it when the client replaces the EventSource.
 * A second test holds the reconnection until an event has been published
 * to the restarted server: it must arrive through Last-Event-ID replay.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, tokenFor, broadcast, ACCOUNTS } from "./lib/server.mjs";
import { startOrigin } from "./lib/origin.mjs";
import { launchBrowser, newPage } from "./lib/browser.mjs";
import { nonce, withLog } from "./lib/page.mjs";

const sub = ACCOUNTS.subscriber;
let origin, browser;
const servers = [];
const dirs = [];

before(async () => {
  origin = await startOrigin();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  for (const s of servers) await s.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await origin?.close();
});

/* One working directory for both runs, so the history database (and so the
 * event ids) survive the restart as in a real deployment. */
function workDir() {
  const dir = mkdtempSync(join(tmpdir(), "ssehub-browser-restart-"));
  dirs.push(dir);
  return dir;
}

/* Waits until every client in the page satisfies `cond(state)`. */
async function waitClients(page, cond, what, server, timeout = 15000) {
  try {
    await page.waitForFunction(cond, null, { timeout, polling: 50 });
  } catch (err) {
    const state = await page.evaluate(() => window.__state);
    throw withLog(new Error(`${what}: ${JSON.stringify(state)}: ${err.message}`), server);
  }
}

test("both clients reconnect by themselves after a restart on the same port", { timeout: 60000 }, async () => {
  const cwd = workDir();
  const first = await startServer({ allowedOrigin: origin.origin, cwd });
  servers.push(first);
  const { page, context } = await newPage(browser);
  try {
    await page.goto(`${origin.origin}/page.html`);
    const jwt = await tokenFor(first.url, sub);
    const ids = { creds: nonce("rc-creds"), token: nonce("rc-token") };

    await page.evaluate(({ url, user, pass, jwt, ids }) => {
      window.__state = {};
      window.__clients = {};
      for (const name of ["creds", "token"]) {
        const st = { opens: 0, errors: 0, events: [], gaveUp: 0 };
        window.__state[name] = st;
        const c = new SSEClient(url, "sse").setCallback((e) => st.events.push({ data: e.data, id: e.lastEventId }));
        c.onError = (err) => { if (!err.willRetry) st.gaveUp++; };
        window.__clients[name] = c;
        if (name === "creds") c.withCreds(user, pass, ids.creds);
        else c.withToken(jwt, ids.token);
        const hook = () => {
          if (!c.es) return setTimeout(hook, 10);
          if (c.es.readyState === 1) st.opens++; /* opened before we looked */
          c.es.addEventListener("open", () => { st.opens++; });
          c.es.addEventListener("error", () => { st.errors++; });
        };
        hook();
      }
    }, { url: first.url, user: sub.username, pass: sub.password, jwt, ids });

    await waitClients(page, () => Object.values(window.__state).every((s) => s.opens === 1),
      "streams did not open", first);
    const before = nonce("before");
    assert.equal((await broadcast(first.url, { content: before, type: "sse" })).status, 201);
    await waitClients(page, () => Object.values(window.__state).every((s) => s.events.length === 1),
      "event before restart not received", first);

    /* Stop: a clean exit, and the browsers see their streams end. */
    const stopped = await first.stop("SIGTERM");
    assert.equal(stopped.timedOut, false, "ssehub did not exit within 5 s of SIGTERM");
    assert.equal(stopped.code, 0, `exit code ${stopped.code} signal ${stopped.signal}`);
    await waitClients(page, () => Object.values(window.__state).every((s) => s.errors >= 1),
      "clients did not notice the stop", first);
    assert.deepEqual(await page.evaluate(() => Object.values(window.__state).map((s) => s.gaveUp)),
      [0, 0], "a client gave up instead of reconnecting");

    const second = await startServer({ allowedOrigin: origin.origin, port: first.port, cwd });
    servers.push(second);
    assert.equal(second.port, first.port);
    await waitClients(page, () => Object.values(window.__state).every((s) => s.opens === 2),
      "clients did not reconnect after the restart", second);

    const afterRestart = nonce("after");
    assert.equal((await broadcast(second.url, { content: afterRestart, type: "sse" })).status, 201);
    await waitClients(page, () => Object.values(window.__state).every((s) => s.events.length === 2),
      "event after restart not received", second);
    const state = await page.evaluate(() => window.__state);
    for (const name of ["creds", "token"]) {
      assert.deepEqual(state[name].events.map((e) => e.data), [before, afterRestart], name);
    }
    assert.equal((await second.stop()).code, 0);
  } finally {
    await context.close();
  }
});

test("after a restart the browser's Last-Event-ID brings the event it missed", { timeout: 60000 }, async () => {
  const cwd = workDir();
  const first = await startServer({ allowedOrigin: origin.origin, cwd });
  servers.push(first);
  const { page, context } = await newPage(browser);
  try {
    await page.goto(`${origin.origin}/page.html`);
    const id = nonce("replay");
    await page.evaluate(({ url, user, pass, id }) => {
      const st = { opens: 0, errors: 0, events: [] };
      window.__state = { creds: st };
      const c = new SSEClient(url, "sse").setCallback((e) => st.events.push({ data: e.data, id: e.lastEventId }));
      window.__clients = { creds: c };
      c.withCreds(user, pass, id);
      const hook = () => {
        if (!c.es) return setTimeout(hook, 10);
        if (c.es.readyState === 1) st.opens++;
        c.es.addEventListener("open", () => { st.opens++; });
        c.es.addEventListener("error", () => { st.errors++; });
      };
      hook();
    }, { url: first.url, user: sub.username, pass: sub.password, id });
    await waitClients(page, () => window.__state.creds.opens === 1, "stream did not open", first);

    const seen = nonce("seen");
    const seenPub = await broadcast(first.url, { content: seen, type: "sse", user: id });
    assert.equal(seenPub.status, 201);
    await waitClients(page, () => window.__state.creds.events.length === 1, "first event not received", first);
    const seenId = (await page.evaluate(() => window.__state.creds.events[0].id));
    assert.equal(seenId, String(JSON.parse(seenPub.text).id), "event id differs from the id /broadcast returned");

    /* Hold the browser's reconnection until the missed event is published,
     * so it can only arrive through Last-Event-ID replay. (Playwright does
     * not report the Last-Event-ID header Chromium sends, so the replay is
     * the proof: exactly the missed event, no duplicate of the seen one.) */
    let release;
    const gate = new Promise((res) => { release = res; });
    await page.route((u) => u.pathname === "/events", async (route) => {
      await gate;
      await route.continue();
    });

    const stopped = await first.stop("SIGTERM");
    assert.equal(stopped.code, 0, `exit code ${stopped.code} signal ${stopped.signal}`);
    const second = await startServer({ allowedOrigin: origin.origin, port: first.port, cwd });
    servers.push(second);

    const missed = nonce("missed");
    const missedPub = await broadcast(second.url, { content: missed, type: "sse", user: id });
    assert.equal(missedPub.status, 201);
    const missedId = JSON.parse(missedPub.text).id;
    assert.ok(missedId > Number(seenId), `ids went back after the restart: ${seenId} then ${missedId}`);
    assert.equal(await page.evaluate(() => window.__state.creds.opens), 1, "reconnected before the gate opened");

    release();
    await waitClients(page, () => window.__state.creds.events.length >= 2, "missed event not replayed", second);
    await page.waitForTimeout(300);
    const state = await page.evaluate(() => window.__state.creds);
    assert.deepEqual(state.events.map((e) => e.data), [seen, missed]);
    assert.equal(state.events[1].id, String(missedId));
    assert.equal((await second.stop()).code, 0);
  } finally {
    await context.close();
  }
});
