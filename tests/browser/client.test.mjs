/*
 * client.test.mjs: web/sse-client.js in headless Chromium against the real
 * ssehub, from a page on another origin (another loopback port).
 *
 * Covers PROTOCOL.md §3: withCreds (the cookie from a cross-origin XHR login
 * comes back on the EventSource), the older run() form, withToken (base64
 * token parameter, unescaped, with an ASCII and a non-ASCII id), untyped
 * events through onmessage, typed ones through addEventListener, and the ES
 * module served at /client/sse-client.mjs.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, tokenFor, broadcast, ACCOUNTS } from "./lib/server.mjs";
import { startOrigin } from "./lib/origin.mjs";
import { launchBrowser, newPage } from "./lib/browser.mjs";
import { connectClient, waitForData, nonce, withLog } from "./lib/page.mjs";

const T = { timeout: 30000 };
const sub = ACCOUNTS.subscriber;
let origin, server, browser;

before(async () => {
  origin = await startOrigin();
  server = await startServer({ allowedOrigin: origin.origin });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await origin?.close();
});

/* Opens the cross-origin test page in a fresh context; `fn` gets the page. */
async function withPage(fn) {
  const p = await newPage(browser);
  try {
    await p.page.goto(`${origin.origin}/page.html`);
    await fn(p);
  } finally {
    await p.context.close();
  }
}

async function publish(body) {
  const r = await broadcast(server.url, body);
  assert.equal(r.status, 201, withLog(new Error(`broadcast ${JSON.stringify(body)} -> ${r.status} ${r.text}`), server).message);
}

test("withCreds: cookie set by a cross-origin XHR login authenticates the EventSource", T, async () => {
  await withPage(async ({ page, context, errors }) => {
    const id = nonce("creds");
    const loginResponse = page.waitForResponse((r) => r.url() === `${server.url}/login`);
    const eventsRequest = page.waitForRequest((r) => r.url().startsWith(`${server.url}/events`));
    await connectClient(page, { mode: "creds", url: server.url, event: "sse", user: sub.username, pass: sub.password, id }, server);

    const login = await loginResponse;
    assert.equal(login.status(), 200);
    const loginBody = await login.text();
    assert.deepEqual(JSON.parse(loginBody).id, id);

    /* The cookie holds the standard base64 of the login body, HttpOnly. */
    const cookie = (await context.cookies(server.url)).find((c) => c.name === "sse_token");
    assert.ok(cookie, "no sse_token cookie stored by the browser");
    assert.equal(Buffer.from(cookie.value, "base64").toString("utf8"), loginBody);
    assert.equal(cookie.httpOnly, true);

    /* The stream request has no token in its URL: only the cookie can have
     * authenticated it. */
    const req = await eventsRequest;
    assert.equal(req.url(), `${server.url}/events?type=sse`);
    const headers = await req.allHeaders();
    assert.match(headers.cookie || "", /(^|;\s*)sse_token=/);

    /* The id from the cookie is the stream's user id: an event for another
     * user must not arrive, ours must. */
    const other = nonce("other-user");
    const mine = nonce("mine");
    await publish({ content: other, type: "sse", user: nonce("someone-else") });
    await publish({ content: mine, type: "sse", user: id });
    const events = await waitForData(page, mine, server);
    assert.deepEqual(events.map((e) => e.data), [mine]);
    assert.equal(events[0].type, "sse");
    assert.deepEqual(errors, []);
  });
});

test("older form: new SSEClient(url, event, user, pass, id).run() logs in and streams", T, async () => {
  await withPage(async ({ page, errors }) => {
    const id = nonce("legacy");
    await connectClient(page, { mode: "legacy", url: server.url, event: "sse", user: sub.username, pass: sub.password, id }, server);
    const data = nonce("legacy-data");
    await publish({ content: data, type: "sse", user: id });
    const events = await waitForData(page, data, server);
    assert.deepEqual(events.map((e) => e.data), [data]);
    assert.deepEqual(errors, []);
  });
});

test("withToken: unescaped base64 token parameter (with + / =) authenticates", T, async () => {
  await withPage(async ({ page, errors }) => {
    const jwt = await tokenFor(server.url, sub);
    /* Pick an id whose encoding holds all of + / and =, which goSSE's
     * client sends as they are. ASCII JSON only yields "+" and "/" from a
     * "~" or "?" in the third byte of a 3-byte group, hence "~~~???". */
    let id, b64;
    for (let i = 0; i < 100; i++) {
      id = `tok-${i}-~~~???`;
      b64 = Buffer.from(JSON.stringify({ token: jwt, id })).toString("base64");
      if (b64.includes("+") && b64.includes("/") && b64.endsWith("=")) break;
    }
    assert.ok(b64.includes("+") && b64.includes("/") && b64.endsWith("="), "no suitable id found");

    const eventsRequest = page.waitForRequest((r) => r.url().startsWith(`${server.url}/events`));
    await connectClient(page, { mode: "token", url: server.url, event: "sse", jwt, id }, server);
    assert.equal((await eventsRequest).url(), `${server.url}/events?type=sse&token=${b64}`);

    const other = nonce("other-user");
    const mine = nonce("mine");
    await publish({ content: other, type: "sse", user: `${id}0` });
    await publish({ content: mine, type: "sse", user: id });
    const events = await waitForData(page, mine, server);
    assert.deepEqual(events.map((e) => e.data), [mine]);
    assert.deepEqual(errors, []);
  });
});

test("withToken: a non-ASCII user id survives (UTF-8 before base64)", T, async () => {
  await withPage(async ({ page, errors }) => {
    const jwt = await tokenFor(server.url, sub);
    const id = `zoë-用户-${nonce("u")}`;
    const eventsRequest = page.waitForRequest((r) => r.url().startsWith(`${server.url}/events`));
    await connectClient(page, { mode: "token", url: server.url, event: "sse", jwt, id }, server);
    const b64 = Buffer.from(JSON.stringify({ token: jwt, id }), "utf8").toString("base64");
    assert.equal((await eventsRequest).url(), `${server.url}/events?type=sse&token=${b64}`);

    const other = nonce("other-user");
    const mine = `pour ${id} ✓`;
    await publish({ content: other, type: "sse", user: `zoe-用户` });
    await publish({ content: mine, type: "sse", user: id });
    const events = await waitForData(page, mine, server);
    assert.deepEqual(events.map((e) => e.data), [mine]);
    assert.deepEqual(errors, []);
  });
});

test("an untyped event arrives through es.onmessage", T, async () => {
  await withPage(async ({ page, errors }) => {
    const jwt = await tokenFor(server.url, sub);
    await connectClient(page, { mode: "token", url: server.url, event: "sse", jwt, id: nonce("untyped") }, server);
    assert.equal(await page.evaluate(() => typeof window.client.es.onmessage), "function");
    const data = nonce("untyped-data");
    await publish({ content: data });
    const events = await waitForData(page, data, server);
    assert.equal(events.length, 1, `delivered ${events.length} times`);
    assert.equal(events[0].type, "message");
    assert.notEqual(events[0].id, "", "event carries no id: line");
    assert.deepEqual(errors, []);
  });
});

test("a typed event arrives through addEventListener(event), once, filtered by type", T, async () => {
  await withPage(async ({ page, errors }) => {
    const jwt = await tokenFor(server.url, sub);
    await connectClient(page, { mode: "token", url: server.url, event: "sse", jwt, id: nonce("typed") }, server);
    /* The client never listens for other types, so watch for one directly:
     * the server itself must not send it on a type=sse stream. */
    await page.evaluate(() => window.client.es.addEventListener("not-sse",
      (e) => window.__events.push({ type: e.type, data: e.data, id: e.lastEventId })));
    const otherType = nonce("other-type");
    const data = nonce("typed-data");
    await publish({ content: otherType, type: "not-sse" });
    await publish({ content: data, type: "sse" });
    const events = await waitForData(page, data, server);
    /* The other type never arrives, ours arrives exactly once. */
    assert.deepEqual(events.map((e) => e.data), [data]);
    assert.equal(events[0].type, "sse");
    assert.notEqual(events[0].id, "", "event carries no id: line");
    assert.deepEqual(errors, []);
  });
});

test("multi-line content arrives as one event with its lines intact", T, async () => {
  await withPage(async ({ page, errors }) => {
    const jwt = await tokenFor(server.url, sub);
    await connectClient(page, { mode: "token", url: server.url, event: "sse", jwt, id: nonce("lines") }, server);
    const tag = nonce("lines");
    await publish({ content: `${tag}\r\nsecond\rthird\nevent: fake\ndata: x`, type: "sse" });
    const expected = `${tag}\nsecond\nthird\nevent: fake\ndata: x`;
    const events = await waitForData(page, expected, server);
    assert.deepEqual(events.map((e) => [e.type, e.data]), [["sse", expected]]);
    assert.deepEqual(errors, []);
  });
});

test("the ES module /client/sse-client.mjs works from another origin", T, async () => {
  await withPage(async ({ page, errors }) => {
    const jwt = await tokenFor(server.url, sub);
    const id = nonce("module");
    await connectClient(page, {
      mode: "module", moduleUrl: `${server.url}/client/sse-client.mjs`,
      url: server.url, event: "sse", jwt, id,
    }, server);
    const named = await page.evaluate(async (u) => {
      const m = await import(u);
      return m.SSEClient === m.default && typeof m.default.prototype.withCreds === "function";
    }, `${server.url}/client/sse-client.mjs`);
    assert.equal(named, true);
    const data = nonce("module-data");
    await publish({ content: data, type: "sse", user: id });
    const events = await waitForData(page, data, server);
    assert.deepEqual(events.map((e) => e.data), [data]);
    assert.deepEqual(errors, []);
  });
});

test("close() while the withCreds login is in flight opens no stream", T, async () => {
  await withPage(async ({ page, errors }) => {
    const loginResponse = page.waitForResponse((r) => r.url() === `${server.url}/login`);
    await page.evaluate(({ url, user, pass }) => {
      window.client = new SSEClient(url, "sse");
      window.client.withCreds(user, pass, "closed-early");
      window.client.close();
    }, { url: server.url, user: sub.username, pass: sub.password });
    assert.equal((await loginResponse).status(), 200);
    await page.waitForTimeout(300);
    assert.equal(await page.evaluate(() => window.client.es), null);
    assert.deepEqual(errors, []);
  });
});

test("run(url, type, callback, token), tinyClientSSE's own form, opens a stream", T, async () => {
  await withPage(async ({ page, errors }) => {
    const jwt = await tokenFor(server.url, sub);
    const id = nonce("run4");
    const b64 = Buffer.from(JSON.stringify({ token: jwt, id })).toString("base64");
    await page.evaluate(({ url, b64 }) => {
      window.__events = [];
      window.client = new SSEClient("http://127.0.0.1:9", "unused");
      window.client.run(url, "sse", (e) => window.__events.push({ type: e.type, data: e.data }), b64);
    }, { url: server.url, b64 });
    assert.equal(await page.evaluate(() => window.client.es.url), `${server.url}/events?type=sse&token=${b64}`);
    await page.waitForFunction(() => window.client.es.readyState === 1, null, { timeout: 10000, polling: 50 });
    const data = nonce("run4-data");
    await publish({ content: data, type: "sse", user: id });
    const events = await waitForData(page, data, server);
    assert.deepEqual(events.map((e) => [e.type, e.data]), [["sse", data]]);
    assert.deepEqual(errors, []);
  });
});
