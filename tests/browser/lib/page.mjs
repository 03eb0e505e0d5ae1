/*
 * page.mjs: drive web/sse-client.js inside a test page.
 *
 * The page keeps what the client's callback received in window.__events
 * ({type, data, id}) and counts the EventSource's open and error events in
 * window.__opens / window.__errors.
 */
import { randomBytes } from "node:crypto";

export const WAIT_MS = 10000;

export function nonce(prefix = "n") {
  return `${prefix}-${randomBytes(6).toString("hex")}`;
}

/*
 * Creates window.client and starts it. mode is "creds" (withCreds), "legacy"
 * (five-argument constructor + run()), "token" (withToken) or "module" (the
 * ES module imported from moduleUrl, then withToken). Resolves once the
 * client's EventSource is open; the error says how far it got otherwise.
 */
export async function connectClient(page, opts, server) {
  await page.evaluate(async (o) => {
    window.__events = [];
    window.__opens = 0;
    window.__errors = 0;
    let Client = window.SSEClient;
    if (o.mode === "module") Client = (await import(o.moduleUrl)).default;
    const c = o.mode === "legacy"
      ? new Client(o.url, o.event, o.user, o.pass, o.id)
      : new Client(o.url, o.event);
    c.setCallback((e) => window.__events.push({ type: e.type, data: e.data, id: e.lastEventId }));
    window.client = c;
    if (o.mode === "creds") c.withCreds(o.user, o.pass, o.id);
    else if (o.mode === "legacy") c.run();
    else c.withToken(o.jwt, o.id);
    /* Count opens/errors from the moment the EventSource exists. withCreds
     * makes it only after the login answers, and it may already be open by
     * the time we look (readyState and the open event change together). */
    await new Promise((resolve) => {
      const tick = () => {
        if (!c.es) return setTimeout(tick, 10);
        if (c.es.readyState === 1) window.__opens++;
        c.es.addEventListener("open", () => { window.__opens++; });
        c.es.addEventListener("error", () => { window.__errors++; });
        resolve();
      };
      tick();
    });
  }, opts).catch((err) => { throw withLog(err, server); });
  try {
    await page.waitForFunction(() => window.__opens >= 1, null, { timeout: WAIT_MS, polling: 50 });
  } catch (err) {
    const state = await page.evaluate(() => ({
      readyState: window.client.es && window.client.es.readyState,
      errors: window.__errors,
    }));
    throw withLog(new Error(`EventSource never opened (${JSON.stringify(state)}): ${err.message}`), server);
  }
}

/* Resolves to the received events once one carries `data`. */
export async function waitForData(page, data, server, timeout = WAIT_MS) {
  try {
    await page.waitForFunction((d) => window.__events.some((e) => e.data === d), data,
      { timeout, polling: 50 });
  } catch (err) {
    const got = await page.evaluate(() => window.__events);
    throw withLog(new Error(`no event with data ${JSON.stringify(data)}; got ${JSON.stringify(got)}: ${err.message}`), server);
  }
  return page.evaluate(() => window.__events);
}

/* Adds the tail of the server's log to an error, for diagnosis. */
export function withLog(err, server) {
  if (server && typeof server.stderr === "function") {
    err.message += `\n--- ssehub log (tail) ---\n${server.stderr().split("\n").slice(-25).join("\n")}`;
  }
  return err;
}
