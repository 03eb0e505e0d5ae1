/*
 * server.mjs: start and stop the real ssehub binary for the browser tests.
 *
 * Each server runs in a fresh temporary directory (so no stray .env is read)
 * with a clean environment: loopback only, SSE_PORT=0 unless a port is given,
 * three accounts (subscriber, publisher, admin) and the page's origin in
 * ALLOWED_ORIGIN. The port is read from the "listening on HOST:PORT" line the
 * binary prints on stderr. Only the child processes started here are ever
 * signalled.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const BIN = process.env.SSEHUB_BIN
  ? resolve(process.env.SSEHUB_BIN)
  : join(REPO, "build/ssehub");

export const ACCOUNTS = {
  subscriber: { username: "reader", password: "reader-pass-1" },
  publisher: { username: "writer", password: "writer-pass-2" },
  admin: { username: "boss", password: "boss-pass-3" },
};

export const APP_KEY = "browser-tests-app-key-0123456789abcdef";

const START_TIMEOUT_MS = 10000;
const STOP_TIMEOUT_MS = 5000;

/* Every live child, so a crashed test run still kills what it started. */
const children = new Set();
process.on("exit", () => {
  for (const child of children) {
    try { child.kill("SIGKILL"); } catch { /* already gone */ }
  }
});

/*
 * Starts ssehub and resolves once it listens. Options: allowedOrigin (string),
 * port (default 0: any free port), env (extra variables, override defaults),
 * cwd (reuse a directory, e.g. for a restart). Resolves to
 * { proc, host, port, url, cwd, stderr(), stop(signal) }; rejects with the
 * captured stderr when the binary exits or stays silent too long.
 */
export async function startServer({ allowedOrigin = "", port = 0, env = {}, cwd } = {}) {
  if (!existsSync(BIN)) {
    throw new Error(`ssehub binary not found at ${BIN} (build it, or set SSEHUB_BIN)`);
  }
  const ownDir = !cwd;
  const dir = cwd || mkdtempSync(join(tmpdir(), "ssehub-browser-"));
  const childEnv = {
    PATH: process.env.PATH || "/usr/bin:/bin",
    SSE_HOST: "127.0.0.1",
    SSE_PORT: String(port),
    SSE_APP_KEY: APP_KEY,
    SSE_CLIENT_USERNAME: ACCOUNTS.subscriber.username,
    SSE_CLIENT_PASSWORD: ACCOUNTS.subscriber.password,
    SSE_BROADCASTER_USERNAME: ACCOUNTS.publisher.username,
    SSE_BROADCASTER_PASSWORD: ACCOUNTS.publisher.password,
    SSE_ADMIN_USERNAME: ACCOUNTS.admin.username,
    SSE_ADMIN_PASSWORD: ACCOUNTS.admin.password,
    ALLOWED_ORIGIN: allowedOrigin,
    SSE_RETRY: "500",
    SSE_LOG_LEVEL: "debug",
    /* `make test` runs the suites with several worker counts. */
    ...(process.env.SSEHUB_WORKERS ? { SSE_WORKERS: process.env.SSEHUB_WORKERS } : {}),
    ...env,
  };
  /* Sanitizer settings pass through so SSEHUB_BIN may name an ASan build. */
  for (const name of ["ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"]) {
    if (process.env[name] && !(name in env)) childEnv[name] = process.env[name];
  }

  const proc = spawn(BIN, [], { cwd: dir, env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
  children.add(proc);
  let log = "";
  proc.stdout.on("data", (d) => { log += d; });
  proc.stderr.on("data", (d) => { log += d; });
  const exited = new Promise((res) => {
    proc.on("exit", (code, signal) => {
      children.delete(proc);
      res({ code, signal });
    });
  });

  const listening = await new Promise((res, rej) => {
    const timer = setTimeout(() => {
      rej(new Error(`ssehub printed no "listening on" line within ${START_TIMEOUT_MS} ms:\n${log}`));
    }, START_TIMEOUT_MS);
    const check = () => {
      const m = /listening on (\S+):(\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        proc.stderr.off("data", check);
        res({ host: m[1].replace(/^\[|\]$/g, ""), port: Number(m[2]) });
      }
    };
    proc.stderr.on("data", check);
    check();
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      rej(new Error(`ssehub exited (code ${code}, signal ${signal}) before listening:\n${log}`));
    });
  }).catch((err) => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    if (ownDir) rmSync(dir, { recursive: true, force: true });
    throw err;
  });

  let stopped = null;
  return {
    proc,
    host: listening.host,
    port: listening.port,
    url: `http://127.0.0.1:${listening.port}`,
    cwd: dir,
    stderr: () => log,
    /*
     * Sends `signal` (SIGTERM by default) and waits for the exit. Resolves to
     * { code, signal, timedOut }; past STOP_TIMEOUT_MS the process is killed
     * with SIGKILL and timedOut is true. Safe to call twice.
     */
    stop(sig = "SIGTERM", { removeDir = ownDir } = {}) {
      if (!stopped) {
        stopped = (async () => {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill(sig);
          let timer;
          const timeout = new Promise((res) => {
            timer = setTimeout(() => res(null), STOP_TIMEOUT_MS);
          });
          let result = await Promise.race([exited, timeout]);
          clearTimeout(timer);
          let timedOut = false;
          if (!result) {
            timedOut = true;
            proc.kill("SIGKILL");
            result = await exited;
          }
          if (removeDir) rmSync(dir, { recursive: true, force: true });
          return { ...result, timedOut };
        })();
      }
      return stopped;
    },
  };
}

/* POST /login from node. Resolves to { status, text, json, setCookie }. */
export async function login(baseUrl, { username, password }, id) {
  const body = { username, password };
  if (id !== undefined) body.id = id;
  const res = await fetch(`${baseUrl}/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* left null */ }
  return { status: res.status, text, json, setCookie: res.headers.get("set-cookie") };
}

/* Logs `account` in and returns its JWT, failing loudly otherwise. */
export async function tokenFor(baseUrl, account, id) {
  const r = await login(baseUrl, account, id);
  if (r.status !== 200 || !r.json || typeof r.json.token !== "string") {
    throw new Error(`login as ${account.username} gave ${r.status}: ${r.text}`);
  }
  return r.json.token;
}

/* POST /broadcast as the publisher. Resolves to { status, text }. */
export async function broadcast(baseUrl, body, token) {
  const jwt = token || (await tokenFor(baseUrl, ACCOUNTS.publisher));
  const res = await fetch(`${baseUrl}/broadcast`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${jwt}` },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, text: await res.text() };
}

/*
 * POST /token as the publisher: a subscriber token bound to `user` (its
 * `sub`), as an application's backend mints it. Options: ttl (seconds),
 * types. Resolves to { token, expires }, failing loudly otherwise.
 */
export async function mintToken(baseUrl, user, { ttl, types } = {}) {
  const jwt = await tokenFor(baseUrl, ACCOUNTS.publisher);
  const body = { user };
  if (ttl !== undefined) body.ttl = ttl;
  if (types !== undefined) body.types = types;
  const res = await fetch(`${baseUrl}/token`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${jwt}` },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`POST /token for ${user} gave ${res.status}: ${text}`);
  return JSON.parse(text);
}
