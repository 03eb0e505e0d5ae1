/*
 * renew.test.mjs: a page whose tokens last two seconds keeps receiving, with
 * no gap and no duplicate, across several renewals.
 *
 * The page (another origin) uses withToken() with a getToken hook that asks
 * "its backend" (a function the test exposes, which calls POST /token with
 * ttl 2 for the user, as an application backend would). SSE_TRUST_CLIENT_ID
 * is 0, so only the token's signed user id counts. Events are published
 * without pause for the whole test, so some land while a stream has just
 * been closed with token-expired and the next is not open yet: those must
 * come through the replay after the last id the client saw (the lastEventId
 * parameter of the new stream). The page must end up with exactly the ids
 * the publisher got back for what its stream accepts, in order. A second
 * test does the same with goSSE's cookie flow (withCreds), which logs in
 * again when its cookie (SSE_TOKEN_TTL=2) expires.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, tokenFor, mintToken, ACCOUNTS } from "./lib/server.mjs";
import { startOrigin } from "./lib/origin.mjs";
import { launchBrowser, newPage } from "./lib/browser.mjs";
import { withLog } from "./lib/page.mjs";

const USER = "u-renew";
const TTL = 2;
const RENEWALS = 3;
let origin, server, browser;

before(async () => {
  origin = await startOrigin();
  server = await startServer({ allowedOrigin: origin.origin, env: { SSE_TRUST_CLIENT_ID: "0" } });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
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
  assert.equal(res.status, 201, withLog(new Error(`publish ${JSON.stringify(body)}: ${res.status} ${text}`), srv).message);
  return JSON.parse(text).id;
}

/*
 * Publishes without pause (every ~25 ms) until renewed() says the client has
 * renewed `renewals` times, then for half a second more. A stream of user
 * USER with type sse accepts its own events and untyped or sse broadcasts;
 * the others are there to be filtered out. Resolves to what it accepts, in
 * publish order, as the page's callback records it.
 */
async function publishThrough(srv, renewed, renewals, streams) {
  /* With SSE_TOKEN_TTL=2 the publisher's own token expires too: renew it early. */
  let pubJwt = await tokenFor(srv.url, ACCOUNTS.publisher);
  let pubAt = Date.now();
  const kinds = [
    (n) => ({ body: { content: `mine-${n}`, type: "sse", user: USER }, accepted: true }),
    (n) => ({ body: { content: `bcast-${n}` }, accepted: true }),
    (n) => ({ body: { content: `other-user-${n}`, type: "sse", user: "u-someone-else" }, accepted: false }),
    (n) => ({ body: { content: `sse-${n}`, type: "sse" }, accepted: true }),
    (n) => ({ body: { content: `other-type-${n}`, type: "not-sse" }, accepted: false }),
  ];
  const sent = [];
  const deadline = Date.now() + 60000;
  let stopAt = Infinity;
  for (let i = 0; Date.now() < stopAt; i++) {
    assert.ok(Date.now() < deadline, withLog(new Error(`only ${renewed()} renewals in 60 s; streams ${JSON.stringify(streams)}`), srv).message);
    const { body, accepted } = kinds[i % kinds.length](i);
    if (Date.now() - pubAt > 800) {
      pubJwt = await tokenFor(srv.url, ACCOUNTS.publisher);
      pubAt = Date.now();
    }
    const id = await publish(srv, pubJwt, body);
    if (accepted) sent.push({ id: String(id), data: body.content, type: body.type || "message" });
    if (stopAt === Infinity && renewed() >= renewals) stopAt = Date.now() + 500;
    await new Promise((r) => setTimeout(r, 25));
  }
  return sent;
}

/* Waits for every event of `sent`, then checks the page got exactly those,
 * in order (token-expired aside), and that each stream after the first
 * resumed after the last id seen. Resolves to the page's events. */
async function expectExactly(page, srv, sent, streams, renewals) {
  try {
    await page.waitForFunction((n) => window.__events.filter((e) => e.type !== "token-expired").length >= n,
      sent.length, { timeout: 15000, polling: 50 });
  } catch (err) {
    const got = await page.evaluate(() => window.__events);
    const ids = new Set(got.map((e) => e.id));
    const missing = sent.filter((e) => !ids.has(e.id)).map((e) => e.id);
    throw withLog(new Error(`received ${got.length} events for ${sent.length} sent, missing ids ${missing}; ` +
      `streams ${JSON.stringify(streams)}: ${err.message}`), srv);
  }
  await page.waitForTimeout(300); /* nothing more may arrive */
  const events = await page.evaluate(() => window.__events);
  assert.deepEqual(events.filter((e) => e.type !== "token-expired"), sent,
    "every accepted event exactly once, in publish order");
  const expired = events.filter((e) => e.type === "token-expired").length;
  assert.ok(expired >= renewals, `${expired} token-expired events`);
  assert.ok(streams.length >= renewals + 1, `only ${streams.length} streams`);
  assert.ok(!/lastEventId=/.test(streams[0]), streams[0]);
  for (const u of streams.slice(1)) assert.match(u, /[?&]lastEventId=\d+$/, u);
  const reports = await page.evaluate(() => window.__reports);
  assert.ok(reports.every((r) => r.willRetry), JSON.stringify(reports));
  assert.ok(reports.filter((r) => r.reason === "expired").length >= renewals, JSON.stringify(reports));
  return events;
}

/* Records the page's stream requests. */
function watchStreams(page) {
  const streams = [];
  page.on("request", (r) => {
    if (new URL(r.url()).pathname === "/events") streams.push(r.url());
  });
  return streams;
}

test(`a page with ${TTL}-second tokens receives every event once, in order, across ${RENEWALS}+ renewals`, { timeout: 90000 }, async () => {
  const { page, context, errors } = await newPage(browser);
  try {
    await page.goto(`${origin.origin}/page.html`);
    let minted = 0;
    await page.exposeFunction("backendToken", async () => {
      minted++;
      const t = await mintToken(server.url, USER, { ttl: TTL, types: ["sse"] });
      return { token: t.token, id: USER };
    });
    const streams = watchStreams(page);
    await page.evaluate((url) => {
      window.__events = [];
      window.__reports = [];
      const c = new SSEClient(url, "sse");
      c.getToken = () => window.backendToken();
      c.onError = (err) => window.__reports.push({ reason: err.reason, willRetry: err.willRetry });
      c.setCallback((e) => window.__events.push({ type: e.type, data: e.data, id: e.lastEventId }));
      window.client = c;
      c.withToken();
    }, server.url);
    await page.waitForFunction(() => window.client.es && window.client.es.readyState === 1, null,
      { timeout: 10000, polling: 50 }).catch((err) => { throw withLog(err, server); });

    const sent = await publishThrough(server, () => minted - 1, RENEWALS, streams);
    await expectExactly(page, server, sent, streams, RENEWALS);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test("withCreds (goSSE's cookie flow) logs in again when its 2-second cookie expires, with no gap or duplicate", { timeout: 90000 }, async () => {
  /* SSE_TRUST_CLIENT_ID=1, the built-in default: the page names its own id. */
  const srv = await startServer({ allowedOrigin: origin.origin, env: { SSE_TOKEN_TTL: String(TTL) } });
  const { page, context, errors } = await newPage(browser);
  try {
    await page.goto(`${origin.origin}/page.html`);
    let logins = 0;
    page.on("request", (r) => { if (r.url() === `${srv.url}/login`) logins++; });
    const streams = watchStreams(page);
    await page.evaluate(({ url, user, pass, id }) => {
      window.__events = [];
      window.__reports = [];
      const c = new SSEClient(url, "sse");
      c.onError = (err) => window.__reports.push({ reason: err.reason, willRetry: err.willRetry });
      c.setCallback((e) => window.__events.push({ type: e.type, data: e.data, id: e.lastEventId }));
      window.client = c;
      c.withCreds(user, pass, id);
    }, { url: srv.url, user: ACCOUNTS.subscriber.username, pass: ACCOUNTS.subscriber.password, id: USER });
    await page.waitForFunction(() => window.client.es && window.client.es.readyState === 1, null,
      { timeout: 10000, polling: 50 }).catch((err) => { throw withLog(err, srv); });

    const sent = await publishThrough(srv, () => logins - 1, 2, streams);
    await expectExactly(page, srv, sent, streams, 2);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    await srv.stop();
  }
});
