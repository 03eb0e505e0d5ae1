/*
 * example.test.mjs: the demo page at GET /example, and the client files the
 * server publishes at /client/.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startServer, ACCOUNTS, REPO } from "./lib/server.mjs";
import { startOrigin } from "./lib/origin.mjs";
import { launchBrowser, newPage } from "./lib/browser.mjs";
import { nonce, withLog } from "./lib/page.mjs";

const T = { timeout: 30000 };
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

test("GET /example loads without console errors", T, async () => {
  const { page, context, errors } = await newPage(browser);
  try {
    const res = await page.goto(`${server.url}/example`, { waitUntil: "load" });
    assert.equal(res.status(), 200);
    assert.match(res.headers()["content-type"] || "", /^text\/html/);
    assert.equal(await page.evaluate(() => typeof window.SSEClient), "function",
      "/client/sse-client.js did not load as a script");
    assert.ok(await page.locator("#sub-form").isVisible());
    await page.waitForTimeout(500);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test("the example page subscribes and lists an event sent from its own form", T, async () => {
  const { page, context, errors } = await newPage(browser);
  try {
    await page.goto(`${server.url}/example`);
    const id = nonce("example");
    await page.fill("#sub-user", ACCOUNTS.subscriber.username);
    await page.fill("#sub-pass", ACCOUNTS.subscriber.password);
    await page.fill("#sub-id", id);
    await page.fill("#sub-types", "sse");
    await page.click("#sub-connect");
    try {
      await page.waitForFunction(() => document.getElementById("sub-status").textContent === "connected",
        null, { timeout: 10000, polling: 50 });
    } catch (err) {
      throw withLog(new Error(`status: ${await page.textContent("#sub-status")}: ${err.message}`), server);
    }

    const tag = nonce("hello");
    const content = `${tag}\nsecond line`;
    await page.fill("#pub-user", ACCOUNTS.publisher.username);
    await page.fill("#pub-pass", ACCOUNTS.publisher.password);
    await page.fill("#pub-content", content);
    await page.fill("#pub-type", "sse");
    await page.fill("#pub-to", id);
    await page.click("#pub-send");
    await page.waitForFunction(() => document.getElementById("pub-status").textContent !== "sending...",
      null, { timeout: 10000, polling: 50 });
    assert.equal(await page.textContent("#pub-status"), "sent (201)");

    const item = page.locator("#events li.event", { hasText: tag });
    await item.waitFor({ timeout: 10000 });
    assert.equal(await item.getAttribute("data-type"), "sse");
    assert.notEqual(await item.getAttribute("data-id"), "");
    assert.equal(await item.locator(".data").textContent(), content);
    /* Logging the publisher in did not replace the subscriber's cookie. */
    const cookie = (await context.cookies(server.url)).find((c) => c.name === "sse_token");
    assert.equal(JSON.parse(Buffer.from(cookie.value, "base64").toString()).id, id);
    assert.deepEqual(errors, []);
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
