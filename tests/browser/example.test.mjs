/*
 * example.test.mjs: the demo page at GET /example, and the client files the
 * server publishes at /client/.
 *
 * The page plays the safe flow's backend (broadcaster login, POST /token for
 * a user id) and its page (withToken, getToken), on a server with
 * SSE_TRUST_CLIENT_ID=0 as new installs have. Its replay (disconnect,
 * publish, reconnect) must bring each missed event once, marked replayed. A
 * screenshot of the page is kept as build/browser/example.png.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { startServer, ACCOUNTS, REPO } from "./lib/server.mjs";
import { startOrigin } from "./lib/origin.mjs";
import { launchBrowser, newPage, screenshot } from "./lib/browser.mjs";
import { nonce, withLog } from "./lib/page.mjs";

const T = { timeout: 30000 };
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

async function waitStatus(page, text) {
  try {
    await page.waitForFunction((t) => document.getElementById("sub-status").textContent === t,
      text, { timeout: 10000, polling: 50 });
  } catch (err) {
    throw withLog(new Error(`status: ${await page.textContent("#sub-status")}: ${err.message}`), server);
  }
}

/* Sends `content` from the page's Publish form; the status must say 201. */
async function publishFromPage(page, content, extra) {
  await page.fill("#pub-content", content);
  await page.click("#pub-send");
  await page.waitForFunction(() => document.getElementById("pub-status").textContent !== "sending...",
    null, { timeout: 10000, polling: 50 });
  const status = await page.textContent("#pub-status");
  assert.match(status, /^sent \(201\), id \d+/);
  if (extra) assert.match(status, extra);
}

test("GET /example loads without console errors", T, async () => {
  const { page, context, errors } = await newPage(browser);
  try {
    const res = await page.goto(`${server.url}/example`, { waitUntil: "load" });
    assert.equal(res.status(), 200);
    assert.match(res.headers()["content-type"] || "", /^text\/html/);
    assert.equal(await page.evaluate(() => typeof window.SSEClient), "function",
      "/client/sse-client.js did not load as a script");
    assert.ok(await page.locator("#sub-connect").isVisible());
    await page.waitForTimeout(500);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test("the example page: mint a token as the backend, connect, receive, then replay what was missed", { timeout: 60000 }, async () => {
  const { page, context, errors } = await newPage(browser);
  try {
    await page.goto(`${server.url}/example`);
    const user = nonce("example");
    /* The snippet a developer copies: the safe flow, with this server's address. */
    const snippet = await page.textContent("#snippet");
    assert.match(snippet, new RegExp(`new SSEClient\\("${server.url}", "sse"\\)`));
    assert.match(snippet, /client\.getToken = function/);
    assert.match(snippet, /client\.withToken\(\)/);
    assert.match(await page.textContent("section.backend"), /in production this part lives in your backend/);
    assert.match(await page.textContent("section.backend"), /\.env/);

    await page.fill("#be-user", ACCOUNTS.publisher.username);
    await page.fill("#be-pass", ACCOUNTS.publisher.password);
    await page.fill("#tok-user", user);
    await page.fill("#pub-to", user);
    const streamRequest = page.waitForRequest((r) => new URL(r.url()).pathname === "/events");
    await page.click("#sub-connect");
    await waitStatus(page, "connected");
    /* Authenticated by a minted token bound to the user (SSE_TRUST_CLIENT_ID=0). */
    const token = new URL((await streamRequest).url()).searchParams.get("token");
    const jwt = JSON.parse(Buffer.from(token, "base64").toString()).token;
    assert.equal(JSON.parse(Buffer.from(jwt.split(".")[1], "base64url")).sub, user);
    assert.match(await page.textContent("#tok-status"), new RegExp(`Token for ${user}, valid until`));

    const tag = nonce("hello");
    const content = `${tag}\nsecond line`;
    await publishFromPage(page, content);
    const item = page.locator("#events li.event", { hasText: tag });
    await item.waitFor({ timeout: 10000 });
    assert.equal(await item.getAttribute("data-type"), "sse");
    assert.notEqual(await item.getAttribute("data-id"), "");
    assert.equal(await item.locator(".data").textContent(), content);

    /* The replay: disconnect, publish twice, reconnect. */
    await page.click("#sub-close");
    assert.match(await page.textContent("#sub-status"), /^disconnected after id \d+$/);
    const missed = [nonce("missed-1"), nonce("missed-2")];
    for (const m of missed) await publishFromPage(page, m, /while disconnected/);
    await page.waitForTimeout(300);
    assert.equal(await page.locator("#events li.event").count(), 1, "an event arrived while disconnected");
    const resumeRequest = page.waitForRequest((r) => new URL(r.url()).pathname === "/events");
    await page.click("#sub-resume");
    assert.match((await resumeRequest).url(), /&lastEventId=\d+$/);
    await waitStatus(page, "connected");
    await page.locator("#events li.replayed", { hasText: missed[1] }).waitFor({ timeout: 10000 });
    const live = nonce("live");
    await publishFromPage(page, live);
    await page.locator("#events li.event", { hasText: live }).waitFor({ timeout: 10000 });
    /* Newest first: live, then both missed ones (replayed, once each), then the first. */
    const rows = await page.locator("#events li.event").evaluateAll((lis) =>
      lis.map((li) => [li.querySelector(".data").textContent, li.classList.contains("replayed")]));
    assert.deepEqual(rows, [[live, false], [missed[1], true], [missed[0], true], [content, false]]);

    const png = await screenshot(page, "example");
    assert.ok(statSync(png).size > 10000, `${png} is suspiciously small`);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test("the example page says why when the broadcaster password is wrong, and stops", T, async () => {
  const { page, context, errors } = await newPage(browser);
  try {
    await page.goto(`${server.url}/example`);
    await page.fill("#be-pass", "not-the-password");
    await page.click("#sub-connect");
    await page.waitForFunction(() => /^stopped:/.test(document.getElementById("sub-status").textContent),
      null, { timeout: 10000, polling: 50 });
    assert.match(await page.textContent("#tok-status"), /No token: .*\(401\)/);
    assert.equal(await page.isDisabled("#sub-close"), true);
    assert.deepEqual(errors.filter((e) => !/status of 401/.test(e)), []);
  } finally {
    await context.close();
  }
});

test("/client/sse-client.js and .mjs are the web/ files, served as JavaScript", T, async () => {
  for (const name of ["sse-client.js", "sse-client.mjs"]) {
    const res = await fetch(`${server.url}/client/${name}`, { signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 200, name);
    assert.match(res.headers.get("content-type") || "", /^(text|application)\/javascript/, name);
    assert.equal(await res.text(), readFileSync(join(REPO, "web", name), "utf8"), name);
  }
});
