/*
 * tls.test.mjs: real headless Chromium receiving events from ssehub over
 * HTTPS (issue 5), from a page on another origin (http://127.0.0.1:<port>,
 * lib/origin.mjs). The certificate is made with the openssl command at test
 * time; Chromium runs with the flags of lib/browser.mjs plus
 * --ignore-certificate-errors.
 *
 * http://127.0.0.1:A and https://127.0.0.1:B are different *sites* (the
 * scheme counts), so the sse_token cookie of a withCreds login is a
 * third-party cookie: it must be SameSite=None; Secure (the default with
 * TLS) to be stored and sent back on the EventSource. Chromium blocks
 * third-party cookies in Playwright's (incognito) contexts and by default,
 * so each test runs in a fresh persistent profile whose preferences allow
 * them (profile.cookie_controls_mode = 0), as a user's browser that allows
 * them would. A control server with SSE_COOKIE_SAMESITE=Lax shows the
 * withCreds test depends on SameSite=None.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { startServer, ACCOUNTS } from "./lib/server.mjs";
import { startOrigin } from "./lib/origin.mjs";
import { CHROMIUM, CHROMIUM_ARGS } from "./lib/browser.mjs";
import { connectClient, waitForData, nonce, withLog } from "./lib/page.mjs";
import { makeCert, tlsTempDir, httpsToken, httpsPublish } from "../e2e/lib/tls.mjs";

const T = { timeout: 30000 };
const sub = ACCOUNTS.subscriber;
const dir = tlsTempDir();
const cert = makeCert(dir, "browser");
let origin, server, httpsUrl;

/* The flags of lib/browser.mjs, plus --ignore-certificate-errors. */
const ARGS = [...CHROMIUM_ARGS, "--ignore-certificate-errors"];

/*
 * A fresh Chromium with its own profile (so its own cookies) that allows
 * third-party cookies. Resolves to { context, page, errors } like
 * lib/browser.mjs's newPage; close() with context.close().
 */
async function newTlsPage() {
  const profile = mkdtempSync(join(dir, "profile-"));
  mkdirSync(join(profile, "Default"));
  writeFileSync(join(profile, "Default", "Preferences"),
    JSON.stringify({ profile: { cookie_controls_mode: 0, block_third_party_cookies: false } }));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, timeout: 30000, args: ARGS,
  });
  context.setDefaultTimeout(10000);
  const page = context.pages()[0] || await context.newPage();
  const errors = [];
  page.on("pageerror", (err) => errors.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console: ${msg.text()}`);
  });
  return { context, page, errors };
}

function startTls(env = {}) {
  return startServer({
    allowedOrigin: origin.origin,
    env: { SSE_TLS_CERT: cert.certPath, SSE_TLS_KEY: cert.keyPath, ...env },
  });
}

before(async () => {
  origin = await startOrigin();
  server = await startTls();
  assert.match(server.stderr(), /scheme=https/);
  httpsUrl = `https://127.0.0.1:${server.port}`;
});

after(async () => {
  await server?.stop();
  await origin?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function withPage(fn) {
  const p = await newTlsPage();
  try {
    await p.page.goto(`${origin.origin}/page.html`);
    await fn(p);
  } finally {
    await p.context.close();
  }
}

async function publish(srv, body) {
  const pubToken = await httpsToken(srv.port, cert.cert, ACCOUNTS.publisher);
  try {
    return await httpsPublish(srv.port, cert.cert, pubToken, body);
  } catch (err) {
    throw withLog(err, srv);
  }
}

test("withCreds over HTTPS from another origin: SameSite=None; Secure cookie crosses, events arrive", T, async () => {
  await withPage(async ({ page, context, errors }) => {
    const id = nonce("tls-creds");
    const loginResponse = page.waitForResponse((r) => r.url() === `${httpsUrl}/login`);
    const eventsRequest = page.waitForRequest((r) => r.url().startsWith(`${httpsUrl}/events`));
    await connectClient(page, { mode: "creds", url: httpsUrl, event: "sse", user: sub.username, pass: sub.password, id }, server);

    const login = await loginResponse;
    assert.equal(login.status(), 200);
    assert.match((await login.allHeaders())["set-cookie"] || "", /; HttpOnly; Secure; SameSite=None/);

    const cookie = (await context.cookies(httpsUrl)).find((c) => c.name === "sse_token");
    assert.ok(cookie, "the browser stored no sse_token cookie from the cross-site HTTPS login");
    assert.equal(cookie.secure, true);
    assert.equal(cookie.sameSite, "None");
    assert.equal(cookie.httpOnly, true);

    /* Only the cookie can authenticate this stream: no token in the URL. */
    const req = await eventsRequest;
    assert.equal(req.url(), `${httpsUrl}/events?type=sse`);
    assert.match((await req.allHeaders()).cookie || "", /(^|;\s*)sse_token=/);

    const other = nonce("other");
    const mine = nonce("mine");
    await publish(server, { content: other, type: "sse", user: nonce("someone-else") });
    await publish(server, { content: mine, type: "sse", user: id });
    const untyped = nonce("all");
    await publish(server, { content: untyped });
    const events = await waitForData(page, untyped, server);
    assert.deepEqual(events.map((e) => [e.type, e.data]), [["sse", mine], ["message", untyped]]);
    assert.ok(events.every((e) => /^\d+$/.test(e.id)), JSON.stringify(events));
    assert.deepEqual(errors, []);
  });
});

test("withToken over HTTPS from another origin: events arrive", T, async () => {
  await withPage(async ({ page, errors }) => {
    const id = nonce("tls-token");
    const jwt = await httpsToken(server.port, cert.cert, sub, id);
    const eventsRequest = page.waitForRequest((r) => r.url().startsWith(`${httpsUrl}/events`));
    await connectClient(page, { mode: "token", url: httpsUrl, event: "sse", jwt, id }, server);
    const b64 = Buffer.from(JSON.stringify({ token: jwt, id })).toString("base64");
    assert.equal((await eventsRequest).url(), `${httpsUrl}/events?type=sse&token=${b64}`);

    const mine = nonce("mine");
    await publish(server, { content: nonce("other"), type: "sse", user: `${id}x` });
    await publish(server, { content: nonce("other-type"), type: "not-sse" });
    await publish(server, { content: mine, type: "sse", user: id });
    const events = await waitForData(page, mine, server);
    assert.deepEqual(events.map((e) => [e.type, e.data]), [["sse", mine]]);
    assert.deepEqual(errors, []);
  });
});

test("control: with SSE_COOKIE_SAMESITE=Lax the cross-site withCreds stream cannot authenticate", T, async () => {
  const lax = await startTls({ SSE_COOKIE_SAMESITE: "Lax" });
  const laxUrl = `https://127.0.0.1:${lax.port}`;
  try {
    await withPage(async ({ page, context }) => {
      const loginResponse = page.waitForResponse((r) => r.url() === `${laxUrl}/login`);
      const eventsResponse = page.waitForResponse((r) => r.url().startsWith(`${laxUrl}/events`));
      await page.evaluate(([u, user, pass, id]) => {
        window.__opens = 0;
        const c = new SSEClient(u, "sse");
        window.client = c;
        c.withCreds(user, pass, id);
        const tick = () => {
          if (!c.es) return setTimeout(tick, 10);
          c.es.addEventListener("open", () => { window.__opens++; });
        };
        tick();
      }, [laxUrl, sub.username, sub.password, nonce("lax")]);
      const lr = await loginResponse;
      assert.equal(lr.status(), 200, "the login itself succeeds");
      assert.match((await lr.allHeaders())["set-cookie"] || "", /SameSite=Lax/);
      const er = await eventsResponse;
      assert.equal(er.status(), 401, "the stream request carried no usable cookie");
      assert.equal(await page.evaluate(() => window.__opens), 0);
      const cookie = (await context.cookies(laxUrl)).find((c) => c.name === "sse_token");
      assert.ok(!cookie, `the browser stored a Lax cookie from a cross-site response: ${JSON.stringify(cookie)}`);
    });
  } finally {
    await lax.stop();
  }
});
