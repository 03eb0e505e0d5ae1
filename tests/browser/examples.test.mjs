/*
 * examples.test.mjs: the safe flow of the README, end to end, with each
 * example backend (examples/node and examples/php).
 *
 * A real ssehub (SSE_TRUST_CLIENT_ID=0: only a token's signed user id
 * counts; ALLOWED_ORIGIN = the backend's origin), the real backend process
 * on its own loopback port with the broadcaster's password in its
 * environment, and Chromium opening the backend's page: the user signs in to
 * the app, the page gets its token from the backend (which calls ssehub's
 * POST /token), and an event published to that user arrives while one for
 * another user does not. The page never talks to ssehub's /login or /token,
 * and the broadcaster's password is nowhere in what it receives.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { startServer, broadcast, ACCOUNTS, REPO } from "./lib/server.mjs";
import { launchBrowser, newPage } from "./lib/browser.mjs";
import { nonce, withLog } from "./lib/page.mjs";

const T = { timeout: 60000 };
const PHP = process.env.PHP_BIN || "php";
let browser;

before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

/* A port free right now on 127.0.0.1 (the PHP server needs one given). */
async function freePort() {
  const srv = createServer();
  await new Promise((res, rej) => { srv.once("error", rej); srv.listen(0, "127.0.0.1", res); });
  const { port } = srv.address();
  await new Promise((res) => srv.close(res));
  return port;
}

/*
 * Starts a backend process and resolves once GET / answers. Resolves to
 * { url, log(), stop() }; stop() signals only this child.
 */
async function startBackend(cmd, args, env, port) {
  const child = spawn(cmd, args, {
    cwd: REPO,
    env: { PATH: process.env.PATH || "/usr/bin:/bin", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stdout.on("data", (d) => { log += d; });
  child.stderr.on("data", (d) => { log += d; });
  const exited = new Promise((res) => child.on("exit", res));
  let spawnError = null;
  child.on("error", (err) => { spawnError = err; });
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  const deadline = Date.now() + 10000;
  for (;;) {
    if (spawnError) throw new Error(`${cmd} could not start (${spawnError.message}); scripts/setup.sh test installs it`);
    if (child.exitCode !== null) throw new Error(`${cmd} exited with ${child.exitCode}:\n${log}`);
    try {
      const res = await fetch(`${url}/`, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${cmd} did not answer on ${url} within 10 s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, log: () => log, stop };
}

const BACKENDS = {
  node: {
    tokenPath: "/sse-token",
    start: (port, env) => startBackend(process.execPath, [join(REPO, "examples/node/server.mjs")],
      { ...env, HOST: "127.0.0.1", PORT: String(port) }, port),
  },
  php: {
    tokenPath: "/sse-token.php",
    start: (port, env) => startBackend(PHP, ["-S", `127.0.0.1:${port}`, "-t", join(REPO, "examples/php")], env, port),
  },
};

for (const [name, backend] of Object.entries(BACKENDS)) {
  test(`the safe flow with examples/${name}: the backend mints the user's token, events reach only that user`, T, async () => {
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const server = await startServer({ allowedOrigin: origin, env: { SSE_TRUST_CLIENT_ID: "0" } });
    let app;
    const { page, context, errors } = await newPage(browser);
    try {
      app = await backend.start(port, {
        SSEHUB_URL: server.url,
        SSE_BROADCASTER_USERNAME: ACCOUNTS.publisher.username,
        SSE_BROADCASTER_PASSWORD: ACCOUNTS.publisher.password,
      });
      const toSsehub = [];
      page.on("request", (r) => {
        if (r.url().startsWith(server.url)) toSsehub.push(new URL(r.url()).pathname);
      });
      const bodies = [];
      page.on("response", async (r) => {
        try { bodies.push(await r.text()); } catch { /* a stream, or gone */ }
      });
      const tokenAnswer = page.waitForResponse((r) => new URL(r.url()).pathname === backend.tokenPath);

      /* Signing in to the app (the wrong password first). */
      await page.goto(`${app.url}/`);
      await page.fill("input[name=user]", "alice");
      await page.fill("input[name=password]", "not-her-password");
      await page.click("button[type=submit]");
      await page.locator("#error").waitFor();
      await page.fill("input[name=user]", "alice");
      await page.fill("input[name=password]", "alice-password");
      await page.click("button[type=submit]");
      assert.equal(await page.textContent("#user"), "alice");
      const answer = await tokenAnswer;
      assert.equal(answer.status(), 200);
      const minted = await answer.json();
      assert.equal(minted.id, "alice");
      const claims = JSON.parse(Buffer.from(minted.token.split(".")[1], "base64url"));
      assert.equal(claims.sub, "alice", "the token is bound to the signed-in user");
      try {
        await page.waitForFunction(() => document.getElementById("status").textContent === "connected",
          null, { timeout: 10000, polling: 50 });
      } catch (err) {
        throw withLog(new Error(`status ${await page.textContent("#status")}; backend log:\n${app.log()}\n${err.message}`), server);
      }

      const forBob = nonce("for-bob");
      const forAlice = nonce("for-alice");
      const marker = nonce("marker");
      for (const body of [
        { content: forBob, type: "sse", user: "bob" },
        { content: forAlice, type: "sse", user: "alice" },
        { content: nonce("other-type"), type: "not-sse" },
        { content: marker, type: "sse", user: "alice" },
      ]) {
        const r = await broadcast(server.url, body);
        assert.equal(r.status, 201, r.text);
      }
      await page.locator("#events li", { hasText: marker }).waitFor({ timeout: 10000 });
      await page.waitForTimeout(200);
      assert.deepEqual(await page.locator("#events li").allTextContents(), [forAlice, marker]);

      /* The page only loaded the client and opened the stream. */
      assert.deepEqual([...new Set(toSsehub)].sort(), ["/client/sse-client.js", "/events"]);
      assert.ok(!bodies.some((b) => b.includes(ACCOUNTS.publisher.password)), "the broadcaster's password reached the page");
      assert.deepEqual(errors.filter((e) => !/status of 401/.test(e)), []);
    } finally {
      await context.close();
      await app?.stop();
      await server.stop();
    }
  });
}
