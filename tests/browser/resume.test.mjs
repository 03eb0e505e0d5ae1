/*
 * resume.test.mjs: real Chromium EventSources resume after a server restart
 * with their own Last-Event-ID and see every event exactly once (issue 3).
 *
 * A page on another origin holds three streams for user "u-b" with type
 * "sse": a bare EventSource (token in the URL), SSEClient.withToken and
 * SSEClient.withCreds (cookie). Events are published, the server is stopped
 * (SIGTERM) and started again on the same port and data directory, and more
 * events are published right after the restart, before the browsers' retry
 * (SSE_RETRY=2000) fires: those can only arrive through the replay of the
 * Last-Event-ID each EventSource sends. Every stream must end up with
 * exactly the ids the publisher got back for what it accepts, in order.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { startServer, tokenFor, ACCOUNTS } from "./lib/server.mjs";
import { startOrigin } from "./lib/origin.mjs";
import { launchBrowser, newPage } from "./lib/browser.mjs";
import { withLog } from "./lib/page.mjs";

const sub = ACCOUNTS.subscriber;
const USER = "u-b";
const RETRY_MS = 2000;
let origin, browser;
const servers = [];

before(async () => {
  origin = await startOrigin();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  for (const s of servers) {
    await s.stop("SIGTERM", { removeDir: false });
    rmSync(s.cwd, { recursive: true, force: true });
  }
  await origin?.close();
});

/* Publishes in order as the publisher; returns the ids from the 201 bodies. */
async function publish(baseUrl, jwt, payloads) {
  const ids = [];
  for (const p of payloads) {
    const res = await fetch(`${baseUrl}/broadcast`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${jwt}` },
      body: JSON.stringify(p),
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.text();
    assert.equal(res.status, 201, `publish ${JSON.stringify(p)}: ${res.status} ${text}`);
    ids.push(JSON.parse(text).id);
  }
  return ids;
}

/* What a stream of USER with type filter "sse" accepts (docs/api.md). */
const accepts = (p) => (p.user ? p.user === USER : !p.type || p.type === "sse");

/* A batch of events: some for these streams, some not. */
function batch(tag) {
  return [
    { content: `${tag}-bcast` },
    { content: `${tag}-sse`, type: "sse" },
    { content: `${tag}-other-type`, type: "other" },
    { content: `${tag}-mine`, user: USER },
    { content: `${tag}-mine-typed`, user: USER, type: "sse" },
    { content: `${tag}-not-mine`, user: "u-x" },
    { content: `${tag}-multi\nline`, type: "sse" },
  ];
}

async function waitAll(page, cond, arg, what, server, timeout = 15000) {
  try {
    await page.waitForFunction(cond, arg, { timeout, polling: 50 });
  } catch (err) {
    const state = await page.evaluate(() => window.__state);
    throw withLog(new Error(`${what}: ${JSON.stringify(state)}: ${err.message}`), server);
  }
}

test("EventSource resumes after a restart with its own Last-Event-ID: every event once, no gap", { timeout: 60000 }, async () => {
  const first = await startServer({ allowedOrigin: origin.origin, env: { SSE_RETRY: String(RETRY_MS) } });
  servers.push(first);
  const { page, context, errors } = await newPage(browser);
  try {
    await page.goto(`${origin.origin}/page.html`);
    const subJwt = await tokenFor(first.url, sub);
    const pubJwt = await tokenFor(first.url, ACCOUNTS.publisher); /* same key after the restart */

    await page.evaluate(({ url, jwt, user, login, pass }) => {
      window.__state = {};
      window.__es = {};
      const track = (name, getEs, attach) => {
        const st = { opens: 0, errors: 0, events: [] };
        window.__state[name] = st;
        const hook = () => {
          const es = getEs();
          if (!es) return setTimeout(hook, 10);
          window.__es[name] = es;
          if (es.readyState === 1) st.opens++;
          es.addEventListener("open", () => { st.opens++; });
          es.addEventListener("error", () => { st.errors++; });
          if (attach) attach(es);
        };
        hook();
        return st;
      };
      /* A bare EventSource: the token travels in the URL. */
      const token = btoa(JSON.stringify({ token: jwt, id: user }));
      const raw = new EventSource(`${url}/events?type=sse&token=${encodeURIComponent(token)}`);
      const rawSt = track("raw", () => raw, (es) => {
        const push = (e) => rawSt.events.push({ id: e.lastEventId, type: e.type, data: e.data });
        es.onmessage = push;
        es.addEventListener("sse", push);
      });
      /* The JS client, both ways. */
      for (const name of ["token", "creds"]) {
        const c = new SSEClient(url, "sse");
        const st = track(name, () => c.es);
        c.setCallback((e) => st.events.push({ id: e.lastEventId, type: e.type, data: e.data }));
        if (name === "token") c.withToken(jwt, user);
        else c.withCreds(login, pass, user);
      }
    }, { url: first.url, jwt: subJwt, user: USER, login: sub.username, pass: sub.password });

    await waitAll(page, () => Object.values(window.__state).every((s) => s.opens === 1),
      null, "streams did not open", first);

    const sent = []; /* {id, payload} in publish order */
    const record = (payloads, ids) => ids.forEach((id, i) => sent.push({ id, payload: payloads[i] }));
    const b1 = batch("before");
    record(b1, await publish(first.url, pubJwt, b1));
    const want1 = sent.filter((s) => accepts(s.payload)).length;
    await waitAll(page, (n) => Object.values(window.__state).every((s) => s.events.length === n),
      want1, "events before the restart not received", first);

    /* Stop; the browsers see the streams end and schedule a retry. */
    const stopped = await first.stop("SIGTERM", { removeDir: false });
    assert.equal(stopped.timedOut, false);
    assert.equal(stopped.code, 0, `exit code ${stopped.code} signal ${stopped.signal}`);
    const downAt = Date.now();
    await waitAll(page, () => Object.values(window.__state).every((s) => s.errors >= 1),
      null, "streams did not notice the stop", first);

    /* Same port, same data directory; publish at once, before the retry. */
    const second = await startServer({
      allowedOrigin: origin.origin, port: first.port, cwd: first.cwd, env: { SSE_RETRY: String(RETRY_MS) },
    });
    servers.push(second);
    const b2 = batch("while-away");
    const ids2 = await publish(second.url, pubJwt, b2);
    record(b2, ids2);
    const publishedAt = Date.now();
    const opensNow = await page.evaluate(() => Object.values(window.__state).map((s) => s.opens));
    assert.ok(publishedAt - downAt < RETRY_MS, `restart + publish took ${publishedAt - downAt} ms, not before the retry`);
    assert.deepEqual(opensNow, [1, 1, 1], "a browser reconnected before the events were published: the test would not exercise replay");
    assert.ok(Math.min(...ids2) > Math.max(...sent.slice(0, b1.length).map((s) => s.id)), "ids grow across the restart");

    await waitAll(page, () => Object.values(window.__state).every((s) => s.opens === 2),
      null, "streams did not reconnect", second);
    const want2 = sent.filter((s) => accepts(s.payload)).length;
    await waitAll(page, (n) => Object.values(window.__state).every((s) => s.events.length >= n),
      want2, "events published while the browsers were away not received", second);

    /* Then the live stream continues on the same connection. */
    const b3 = batch("live");
    record(b3, await publish(second.url, pubJwt, b3));
    const want = sent.filter((s) => accepts(s.payload));
    await waitAll(page, (n) => Object.values(window.__state).every((s) => s.events.length >= n),
      want.length, "live events after the resume not received", second);
    await new Promise((r) => setTimeout(r, 300)); /* nothing else may arrive */

    const state = await page.evaluate(() => window.__state);
    const expected = want.map((s) => ({ id: String(s.id), type: s.payload.type || "message", data: s.payload.content }));
    for (const name of ["raw", "token", "creds"]) {
      assert.deepEqual(state[name].events, expected, `${name}: every event exactly once, in order`);
      assert.equal(state[name].opens, 2, `${name} opened twice`);
    }
    assert.deepEqual(errors.filter((e) => e.startsWith("pageerror")), [], "no page errors");
    assert.equal((await second.stop("SIGTERM", { removeDir: false })).code, 0);
  } finally {
    await context.close();
  }
});
