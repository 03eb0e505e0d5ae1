/*
 * backoff.test.mjs: while ssehub is down the client retries with growing,
 * capped, jittered delays instead of EventSource's fixed retry, and once the
 * server is back on the same port it resumes after the last id it saw.
 *
 * The client runs with retryMin 200 ms and retryMax 1600 ms; the server's
 * own retry is 500 ms (lib/server.mjs). Every stream request the page makes
 * is timed. After the browser's one retry of its own, the gaps between
 * attempts must double (within the jitter: each lies in [d/2, d] for
 * d = 200, 400, 800, 1600, 1600 ...) and never pass the cap. Then the server
 * starts again on the same port and data directory; events published before
 * the client's next attempt (held until then) must arrive through the
 * replay, followed by the live stream: each once, in order.
 *
 * Then the auth side of a reconnection, which EventSource does not report
 * (it only closes): a token that expires while the server is down is
 * refused with 401 on the way back, and the client's one fetch of the same
 * URL tells it so, so it asks getToken for a new one and resumes with no
 * loss; a 403 (a type the token may not ask for) stops the client instead.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { startServer, mintToken, tokenFor, ACCOUNTS } from "./lib/server.mjs";
import { startOrigin } from "./lib/origin.mjs";
import { launchBrowser, newPage } from "./lib/browser.mjs";
import { withLog } from "./lib/page.mjs";

const USER = "u-backoff";
const MIN = 200;
const MAX = 1600;
const DOWN_MS = 7000;
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

async function publish(srv, jwt, body) {
  const res = await fetch(`${srv.url}/broadcast`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${jwt}` },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  assert.equal(res.status, 201, `publish: ${res.status} ${text}`);
  return String(JSON.parse(text).id);
}

async function waitFor(page, fn, arg, what, srv, timeout = 10000) {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 50 });
  } catch (err) {
    const state = await page.evaluate(() => ({ events: window.__events, reports: window.__reports }));
    throw withLog(new Error(`${what}: ${JSON.stringify(state)}: ${err.message}`), srv);
  }
}

test("server down: growing capped delays between attempts, then a resume with no loss", { timeout: 60000 }, async () => {
  const env = { SSE_TRUST_CLIENT_ID: "0" };
  const first = await startServer({ allowedOrigin: origin.origin, env });
  servers.push(first);
  const { page, context, errors } = await newPage(browser);
  try {
    await page.goto(`${origin.origin}/page.html`);
    const attempts = [];
    page.on("request", (r) => {
      if (new URL(r.url()).pathname === "/events") attempts.push({ at: Date.now(), url: r.url() });
    });
    const { token } = await mintToken(first.url, USER);
    await page.evaluate(({ url, jwt, user, min, max }) => {
      window.__events = [];
      window.__reports = [];
      window.__opens = 0;
      const c = new SSEClient(url, "sse");
      c.retryMin = min;
      c.retryMax = max;
      c.setCallback((e) => window.__events.push({ data: e.data, id: e.lastEventId }));
      c.onError = (err) => window.__reports.push({ reason: err.reason, willRetry: err.willRetry, retryIn: err.retryIn });
      c.withToken(jwt, user);
      c.es.addEventListener("open", () => { window.__opens++; });
      window.client = c;
    }, { url: first.url, jwt: token, user: USER, min: MIN, max: MAX });
    await waitFor(page, () => window.__opens === 1, null, "stream not open", first);

    const pubJwt = await tokenFor(first.url, ACCOUNTS.publisher);
    const sent = [];
    for (let i = 0; i < 3; i++) {
      const data = `before-${i}`;
      sent.push({ data, id: await publish(first, pubJwt, { content: data, type: "sse", user: USER }) });
    }
    await waitFor(page, (n) => window.__events.length === n, sent.length, "events before the stop", first);

    const before = attempts.length;
    const stopped = await first.stop("SIGTERM", { removeDir: false });
    assert.equal(stopped.code, 0);
    const downAt = Date.now();
    await new Promise((r) => setTimeout(r, DOWN_MS));

    /* The attempts while down: the browser's own retry, then the client's. */
    const times = attempts.slice(before).map((a) => a.at);
    assert.ok(times.length >= 5, `only ${times.length} attempts in ${DOWN_MS} ms`);
    assert.ok(times.length <= 12, `${times.length} attempts in ${DOWN_MS} ms: no backoff`);
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    const slack = 300; /* a refused connection and the timers of a busy machine */
    gaps.forEach((g, i) => {
      const d = Math.min(MAX, MIN * 2 ** i);
      assert.ok(g >= d / 2 - 20 && g <= d + slack, `gap ${i} is ${g} ms, not within [${d / 2}, ${d}]: ${gaps}`);
    });
    assert.ok(gaps[3] > gaps[0] * 2, `delays do not grow: ${gaps}`);
    const reports = await page.evaluate(() => window.__reports);
    const delays = reports.filter((r) => r.retryIn !== undefined).map((r) => r.retryIn);
    assert.ok(delays.length >= gaps.length, JSON.stringify(reports));
    assert.ok(delays.every((d) => d <= MAX), `a delay above the cap: ${delays}`);
    assert.ok(reports.every((r) => r.willRetry), JSON.stringify(reports));
    assert.ok(downAt + DOWN_MS - times[times.length - 1] < MAX + slack, "the client stopped trying");

    /* Back on the same port: hold the client's next attempt until more
     * events are published, so they can only come from the replay. */
    let release;
    const gate = new Promise((res) => { release = res; });
    await page.route((u) => u.pathname === "/events", async (route) => {
      await gate;
      await route.continue();
    });
    const second = await startServer({ allowedOrigin: origin.origin, port: first.port, cwd: first.cwd, env });
    servers.push(second);
    for (let i = 0; i < 3; i++) {
      const data = `while-away-${i}`;
      sent.push({ data, id: await publish(second, pubJwt, { content: data, type: "sse", user: USER }) });
    }
    assert.equal(await page.evaluate(() => window.__opens), 1, "reconnected before the gate opened");
    release();
    await waitFor(page, () => window.__opens === 2, null, "no reconnection after the restart", second, 15000);
    const last = attempts[attempts.length - 1].url;
    assert.match(last, new RegExp(`&lastEventId=${sent[2].id}$`), "the new stream resumes after the last id seen");
    const live = "live";
    sent.push({ data: live, id: await publish(second, pubJwt, { content: live, type: "sse", user: USER }) });
    await waitFor(page, (n) => window.__events.length >= n, sent.length, "replayed and live events", second);
    await page.waitForTimeout(300);
    assert.deepEqual(await page.evaluate(() => window.__events), sent, "every event once, in order");

    /* A successful open starts the backoff over. */
    const n = attempts.length;
    assert.equal((await second.stop("SIGTERM", { removeDir: false })).code, 0);
    await new Promise((r) => setTimeout(r, 1500));
    const again = attempts.slice(n).map((a) => a.at);
    assert.ok(again.length >= 3, `attempts after the second stop: ${again.length}`);
    const firstClientGap = again[1] - again[0]; /* the browser's retry, then the client's first */
    assert.ok(firstClientGap <= MIN + 150, `the backoff did not start over: ${firstClientGap} ms`);
    assert.deepEqual(errors.filter((e) => e.startsWith("pageerror")), []);
  } finally {
    await context.close();
  }
});

test("the token expires while the server is down: the refused reconnection (401) gets a new token and resumes", { timeout: 60000 }, async () => {
  const env = { SSE_TRUST_CLIENT_ID: "0" };
  const first = await startServer({ allowedOrigin: origin.origin, env });
  servers.push(first);
  const { page, context, errors } = await newPage(browser);
  try {
    await page.goto(`${origin.origin}/page.html`);
    let srv = first;
    let minted = 0;
    /* The first token lasts 3 s, the next ones an hour. */
    await page.exposeFunction("backendToken", async () => {
      minted++;
      return { token: (await mintToken(srv.url, USER, { ttl: minted === 1 ? 3 : 3600 })).token, id: USER };
    });
    const answers = [];
    page.on("response", (r) => {
      if (new URL(r.url()).pathname === "/events") answers.push(r.status());
    });
    await page.evaluate((url) => {
      window.__events = [];
      window.__reports = [];
      const c = new SSEClient(url, "sse");
      c.retryMin = 200;
      c.retryMax = 400;
      c.getToken = () => window.backendToken();
      c.setCallback((e) => window.__events.push({ data: e.data, id: e.lastEventId }));
      c.onError = (err) => window.__reports.push({ reason: err.reason, status: err.status, willRetry: err.willRetry });
      window.client = c;
      c.withToken();
    }, first.url);
    await waitFor(page, () => window.client.es && window.client.es.readyState === 1, null, "stream not open", first);
    const pubJwt = await tokenFor(first.url, ACCOUNTS.publisher);
    const sent = [{ data: "before", id: await publish(first, pubJwt, { content: "before", type: "sse", user: USER }) }];
    await waitFor(page, () => window.__events.length === 1, null, "first event", first);

    /* Down for longer than the token lives; events come in meanwhile,
     * published on the restarted server before the client is let in. */
    assert.equal((await first.stop("SIGTERM", { removeDir: false })).code, 0);
    await new Promise((r) => setTimeout(r, 3500));
    let release;
    const gate = new Promise((res) => { release = res; });
    await page.route((u) => u.pathname === "/events", async (route) => {
      await gate;
      await route.continue();
    });
    const second = await startServer({ allowedOrigin: origin.origin, port: first.port, cwd: first.cwd, env });
    servers.push(second);
    srv = second;
    for (const data of ["away-1", "away-2"]) {
      sent.push({ data, id: await publish(second, pubJwt, { content: data, type: "sse", user: USER }) });
    }
    assert.equal(minted, 1, "a token was asked for before the server refused one");
    release();
    await waitFor(page, (n) => window.__events.length >= n, sent.length, "events after the renewal", second, 15000);
    await page.waitForTimeout(300);
    assert.deepEqual(await page.evaluate(() => window.__events), sent, "every event once, in order");
    assert.equal(minted, 2, "exactly one new token");
    assert.ok(answers.includes(401), `the server never refused the spent token: ${answers}`);
    const reports = await page.evaluate(() => window.__reports);
    assert.ok(reports.some((r) => r.reason === "unauthorized" && r.status === 401 && r.willRetry), JSON.stringify(reports));
    assert.deepEqual(errors.filter((e) => e.startsWith("pageerror")), []);
  } finally {
    await context.close();
  }
});

test("a stream the server refuses for good (403: a type the token may not ask for) stops the client, which says so", { timeout: 30000 }, async () => {
  const srv = await startServer({ allowedOrigin: origin.origin, env: { SSE_TRUST_CLIENT_ID: "0" } });
  servers.push(srv);
  const { page, context } = await newPage(browser);
  try {
    await page.goto(`${origin.origin}/page.html`);
    const { token } = await mintToken(srv.url, USER, { types: ["sse"] });
    const requests = [];
    page.on("request", (r) => { if (new URL(r.url()).pathname === "/events") requests.push(r.url()); });
    await page.evaluate(({ url, jwt, user }) => {
      window.__reports = [];
      const c = new SSEClient(url, "other");
      c.retryMin = 100;
      c.onError = (err) => window.__reports.push({ reason: err.reason, status: err.status, willRetry: err.willRetry });
      window.client = c;
      c.withToken(jwt, user);
    }, { url: srv.url, jwt: token, user: USER });
    await waitFor(page, () => window.__reports.some((r) => !r.willRetry), null, "the client did not stop", srv);
    await page.waitForTimeout(1000);
    assert.deepEqual(await page.evaluate(() => window.__reports), [{ reason: "refused", status: 403, willRetry: false }]);
    assert.equal(requests.length, 2, `the stream, then one probe: ${requests}`);
    assert.equal(await page.evaluate(() => window.client.es.readyState), 2);
  } finally {
    await context.close();
  }
});
