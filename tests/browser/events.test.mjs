/*
 * events.test.mjs: the events a page did not ask for by type, in Chromium.
 *
 * - "reset" (ssehub's answer to a resume point outside its history) reaches
 *   onReset(oldest, latest) and the callback: once for an id newer than any
 *   given, once for a page that was away while the history was trimmed
 *   (SSE_HISTORY_MAX_EVENTS=3; the trim runs every 10 s).
 * - An event addressed to the stream's user with a type the stream did not
 *   ask for is on the wire (checked on the raw stream first, and a bare
 *   EventSource drops it), and reaches setCallback once the page names it
 *   with listen(); "token-expired" reaches it with no listen() at all.
 * The tokens come from POST /token, with SSE_TRUST_CLIENT_ID=0.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, broadcast, mintToken } from "./lib/server.mjs";
import { startOrigin } from "./lib/origin.mjs";
import { launchBrowser, newPage } from "./lib/browser.mjs";
import { nonce, withLog } from "./lib/page.mjs";

const T = { timeout: 30000 };
let origin, server, trimmed, browser;

before(async () => {
  origin = await startOrigin();
  const env = { SSE_TRUST_CLIENT_ID: "0" };
  server = await startServer({ allowedOrigin: origin.origin, env });
  trimmed = await startServer({ allowedOrigin: origin.origin, env: { ...env, SSE_HISTORY_MAX_EVENTS: "3" } });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await trimmed?.stop();
  await origin?.close();
});

async function withPage(fn) {
  const p = await newPage(browser);
  try {
    await p.page.goto(`${origin.origin}/page.html`);
    await fn(p);
  } finally {
    await p.context.close();
  }
}

async function publish(srv, body) {
  const r = await broadcast(srv.url, body);
  assert.equal(r.status, 201, withLog(new Error(`broadcast ${JSON.stringify(body)} -> ${r.status} ${r.text}`), srv).message);
  return JSON.parse(r.text).id;
}

/* window.client: an SSEClient on `type` recording callback events, resets
 * and reports in window.__events / __resets / __reports. */
async function makeClient(page, { url, type, listen = [], lastEventId }) {
  await page.evaluate((o) => {
    window.__events = [];
    window.__resets = [];
    window.__reports = [];
    const c = new SSEClient(o.url, o.type);
    if (o.listen.length) c.listen(...o.listen);
    if (o.lastEventId !== undefined) c.lastEventId = o.lastEventId;
    c.setCallback((e) => window.__events.push({ type: e.type, data: e.data, id: e.lastEventId }));
    c.onReset = (oldest, latest, e) => window.__resets.push({ oldest, latest, id: e.lastEventId });
    c.onError = (err) => window.__reports.push({ reason: err.reason, willRetry: err.willRetry });
    window.client = c;
  }, { url, type, listen, lastEventId });
}

async function connect(page, srv, user, ttl) {
  const { token } = await mintToken(srv.url, user, ttl ? { ttl } : {});
  await page.evaluate(([jwt, id]) => window.client.withToken(jwt, id), [token, user]);
  await waitFor(page, () => window.client.es && window.client.es.readyState === 1, null, "stream not open", srv);
}

async function waitFor(page, fn, arg, what, srv, timeout = 10000) {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 50 });
  } catch (err) {
    const state = await page.evaluate(() => ({ events: window.__events, resets: window.__resets, reports: window.__reports }));
    throw withLog(new Error(`${what}: ${JSON.stringify(state)}: ${err.message}`), srv);
  }
}

test("reset for a resume point newer than any id reaches onReset(oldest, latest) and the callback", T, async () => {
  await withPage(async ({ page, errors }) => {
    const user = nonce("reset-new");
    const first = await publish(server, { content: nonce("a"), type: "sse", user });
    const latest = await publish(server, { content: nonce("b"), type: "sse", user });
    await makeClient(page, { url: server.url, type: "sse", lastEventId: String(latest + 1000) });
    const streamUrl = page.waitForRequest((r) => new URL(r.url()).pathname === "/events");
    await connect(page, server, user);
    assert.match((await streamUrl).url(), new RegExp(`&lastEventId=${latest + 1000}$`));
    await waitFor(page, () => window.__resets.length === 1, null, "no reset", server);

    const [reset] = await page.evaluate(() => window.__resets);
    assert.equal(typeof reset.oldest, "number");
    assert.ok(reset.oldest >= 1 && reset.oldest <= first, JSON.stringify(reset));
    assert.equal(reset.latest, latest);
    /* Then the live stream, ids growing from the reset's id. */
    const live = nonce("live");
    const liveId = await publish(server, { content: live, type: "sse", user });
    await waitFor(page, (d) => window.__events.some((e) => e.data === d), live, "live event after reset", server);
    const events = await page.evaluate(() => window.__events);
    assert.deepEqual(events.map((e) => e.type), ["reset", "sse"]);
    assert.deepEqual(JSON.parse(events[0].data), { oldest: reset.oldest, latest });
    assert.equal(events[1].id, String(liveId));
    assert.equal(await page.evaluate(() => window.client.lastEventId), String(liveId));
    assert.deepEqual(errors, []);
  });
});

test("a page away while the history was trimmed gets a reset on its next stream", { timeout: 60000 }, async () => {
  await withPage(async ({ page, errors }) => {
    const user = nonce("reset-old");
    await makeClient(page, { url: trimmed.url, type: "sse" });
    await connect(page, trimmed, user);
    const seen = nonce("seen");
    const seenId = await publish(trimmed, { content: seen, type: "sse", user });
    await waitFor(page, (d) => window.__events.some((e) => e.data === d), seen, "first event", trimmed);

    /* Away: the client is closed while more events come and the history
     * keeps only the newest three. */
    await page.evaluate(() => window.client.close());
    const away = [];
    for (let i = 0; i < 6; i++) away.push(await publish(trimmed, { content: nonce("away"), type: "sse", user }));
    const { token } = await mintToken(trimmed.url, user);
    const deadline = Date.now() + 25000;
    for (;;) {
      const res = await fetch(`${trimmed.url}/notifications?limit=500`, { headers: { Authorization: `Bearer ${token}` } });
      const items = (await res.json()).items || [];
      if (JSON.stringify(items.map((it) => it.id).reverse()) === JSON.stringify(away.slice(3))) break;
      assert.ok(Date.now() < deadline, `history not trimmed: ${JSON.stringify(items.map((it) => it.id))}`);
      await new Promise((r) => setTimeout(r, 250));
    }

    /* Back: the same client resumes after the id it saw, which is gone. */
    const streamUrl = page.waitForRequest((r) => new URL(r.url()).pathname === "/events");
    await connect(page, trimmed, user);
    assert.match((await streamUrl).url(), new RegExp(`&lastEventId=${seenId}$`));
    await waitFor(page, () => window.__resets.length === 1, null, "no reset after the trim", trimmed);
    const [reset] = await page.evaluate(() => window.__resets);
    assert.deepEqual(reset, { oldest: away[3], latest: away[5], id: String(away[5]) });
    const events = await page.evaluate(() => window.__events);
    assert.deepEqual(events.map((e) => [e.type, e.id]), [["sse", String(seenId)], ["reset", String(away[5])]]);
    assert.deepEqual(errors, []);
  });
});

test("an event of a type the stream did not ask for is on the wire, and reaches setCallback through listen()", T, async () => {
  const user = nonce("other-type");
  /* The raw stream first: a type=sse stream of this user carries the
   * user's "invoice" event with its own name. */
  const { token } = await mintToken(server.url, user);
  const wrapped = Buffer.from(JSON.stringify({ token, id: user })).toString("base64");
  const ctl = new AbortController();
  const res = await fetch(`${server.url}/events?type=sse&token=${wrapped}`, { signal: ctl.signal });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  const wire = nonce("wire");
  await publish(server, { content: wire, type: "invoice", user });
  let text = "";
  const until = Date.now() + 5000;
  while (!text.includes(`data: ${wire}`) && Date.now() < until) {
    const { value, done } = await reader.read();
    if (done) break;
    text += Buffer.from(value).toString();
  }
  ctl.abort();
  assert.match(text, new RegExp(`event: invoice\\ndata: ${wire}\\n`), text);

  await withPage(async ({ page, errors }) => {
    await makeClient(page, { url: server.url, type: "sse", listen: ["invoice"] });
    /* A bare EventSource next to it, listening like goSSE's client did. */
    await page.evaluate(([url, w]) => {
      window.__bare = [];
      const es = new EventSource(`${url}/events?type=sse&token=${w}`);
      es.onmessage = (e) => window.__bare.push(e.type);
      es.addEventListener("sse", (e) => window.__bare.push(e.type));
      window.__bareEs = es;
    }, [server.url, wrapped]);
    await connect(page, server, user);
    await waitFor(page, () => window.__bareEs.readyState === 1, null, "bare stream not open", server);

    const ids = [];
    ids.push(await publish(server, { content: "invoice 1", type: "invoice", user }));
    ids.push(await publish(server, { content: "sse 1", type: "sse", user }));
    ids.push(await publish(server, { content: "plain" }));
    ids.push(await publish(server, { content: "invoice 2", type: "invoice", user }));
    ids.push(await publish(server, { content: "last", type: "sse" }));
    await waitFor(page, () => window.__events.length >= 5 && window.__bare.length >= 3, null, "events", server);
    await page.waitForTimeout(200);
    const events = await page.evaluate(() => window.__events);
    assert.deepEqual(events, [
      { type: "invoice", data: "invoice 1", id: String(ids[0]) },
      { type: "sse", data: "sse 1", id: String(ids[1]) },
      { type: "message", data: "plain", id: String(ids[2]) },
      { type: "invoice", data: "invoice 2", id: String(ids[3]) },
      { type: "sse", data: "last", id: String(ids[4]) },
    ]);
    assert.deepEqual(await page.evaluate(() => window.__bare), ["sse", "message", "sse"],
      "a bare EventSource drops the invoice events: the test would prove nothing");

    /* listen() on an open stream applies at once. */
    await page.evaluate(() => window.client.listen("late"));
    const lateId = await publish(server, { content: "late one", type: "late", user });
    await waitFor(page, (id) => window.__events.some((e) => e.id === id), String(lateId), "listen() on an open stream", server);
    assert.deepEqual(errors, []);
  });
});

test("token-expired reaches setCallback without listen(), then the stream goes on", T, async () => {
  await withPage(async ({ page, errors }) => {
    const user = nonce("expired-cb");
    await makeClient(page, { url: server.url, type: "sse" });
    await page.exposeFunction("backendToken", async () => (await mintToken(server.url, user, { ttl: 60 })).token);
    await page.evaluate((id) => {
      window.client.id = id;
      window.client.getToken = () => window.backendToken();
    }, user);
    await connect(page, server, user, 1);
    await waitFor(page, () => window.__events.some((e) => e.type === "token-expired"), null, "no token-expired", server);
    await waitFor(page, () => window.client.es.readyState === 1, null, "not reconnected", server);
    const after = nonce("after");
    await publish(server, { content: after, type: "sse", user });
    await waitFor(page, (d) => window.__events.some((e) => e.data === d), after, "event after renewal", server);
    const events = await page.evaluate(() => window.__events);
    assert.deepEqual(events.map((e) => e.type), ["token-expired", "sse"]);
    assert.deepEqual(JSON.parse(events[0].data), { error: "token expired" });
    assert.deepEqual(errors, []);
  });
});
