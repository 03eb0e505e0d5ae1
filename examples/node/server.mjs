/*
 * server.mjs: an application backend that gives its signed-in users a live
 * notification stream from ssehub, the safe way. Node's standard library only.
 *
 *   SSE_BROADCASTER_PASSWORD=... node examples/node/server.mjs
 *
 * The app signs its users in itself (a demo form and two demo users). For
 * the signed-in user, POST /sse-token logs in to ssehub as the broadcaster
 * (the password never leaves this process), asks ssehub's POST /token for a
 * token bound to that user id and answers {token, id}. The page passes it to
 * the JS client's withToken, and its getToken hook asks /sse-token again
 * whenever the token runs out. A page can only ever get a token for the user
 * its session belongs to.
 *
 * Environment:
 *   SSEHUB_URL                ssehub's address as the browser reaches it (http://127.0.0.1:8080)
 *   SSEHUB_INTERNAL_URL       the same as this process reaches it, when it differs (SSEHUB_URL)
 *   SSE_BROADCASTER_USERNAME  ssehub's publisher account (broadcaster)
 *   SSE_BROADCASTER_PASSWORD  its password, from ssehub's .env (required)
 *   SSE_USER_TOKEN_TTL        lifetime of a user's token in seconds, 1 to 86400 (3600)
 *   HOST, PORT                where this app listens (127.0.0.1, 3000; PORT=0 picks a free one)
 * ssehub must list this app's origin (http://127.0.0.1:3000) in ALLOWED_ORIGIN.
 */
import { createServer } from "node:http";
import { randomBytes } from "node:crypto";

const SSEHUB_URL = (process.env.SSEHUB_URL || "http://127.0.0.1:8080").replace(/\/+$/, "");
const SSEHUB_INTERNAL = (process.env.SSEHUB_INTERNAL_URL || SSEHUB_URL).replace(/\/+$/, "");
const BROADCASTER = process.env.SSE_BROADCASTER_USERNAME || "broadcaster";
const BROADCASTER_PASSWORD = process.env.SSE_BROADCASTER_PASSWORD || "";
const USER_TOKEN_TTL = Number(process.env.SSE_USER_TOKEN_TTL || 3600);
const HOST = process.env.HOST || "127.0.0.1";
const PORT = Number(process.env.PORT ?? 3000);

if (!BROADCASTER_PASSWORD) {
  console.error("SSE_BROADCASTER_PASSWORD is not set: copy it from ssehub's .env");
  process.exit(1);
}

/* The app's own users and sessions; a real app has its database here. */
const USERS = { alice: "alice-password", bob: "bob-password" };
const sessions = new Map(); /* session id -> user id */

/* The broadcaster's ssehub token, kept until a minute before it expires. */
let broadcaster = null;

async function ssehubPost(path, body, bearer) {
  const headers = { "Content-Type": "application/json" };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const res = await fetch(SSEHUB_INTERNAL + path, {
    method: "POST", headers, body: JSON.stringify(body), signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

async function broadcasterToken() {
  if (broadcaster && broadcaster.until > Date.now()) return broadcaster.token;
  const r = await ssehubPost("/login", { username: BROADCASTER, password: BROADCASTER_PASSWORD });
  if (r.status !== 200) throw new Error(`ssehub /login as ${BROADCASTER} answered ${r.status}`);
  const { exp } = JSON.parse(Buffer.from(r.json.token.split(".")[1], "base64url"));
  broadcaster = { token: r.json.token, until: exp * 1000 - 60000 };
  return broadcaster.token;
}

/* A subscriber token bound to `user`, from ssehub's POST /token. */
async function userToken(user) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const r = await ssehubPost("/token", { user, ttl: USER_TOKEN_TTL }, await broadcasterToken());
    if (r.status === 201) return r.json.token;
    if (r.status !== 401) throw new Error(`ssehub /token answered ${r.status}`);
    broadcaster = null; /* ssehub restarted with another key, say: log in again */
  }
  throw new Error("ssehub refused the broadcaster's token");
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const js = (v) => JSON.stringify(v).replace(/</g, "\\u003c");

function loginPage(error) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>My app: sign in</title>
<link rel="icon" href="data:,"></head><body>
<h1>My app</h1>
${error ? `<p id="error">${esc(error)}</p>` : ""}
<form method="post" action="/login">
  <label>User <input name="user" autocomplete="username"></label>
  <label>Password <input name="password" type="password" autocomplete="current-password"></label>
  <button type="submit">Sign in</button>
</form>
<p>Demo users: alice / alice-password, bob / bob-password.</p>
</body></html>`;
}

function appPage(user) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>My app</title>
<link rel="icon" href="data:,"></head><body>
<h1>My app</h1>
<p>Signed in as <b id="user">${esc(user)}</b>.</p>
<form method="post" action="/logout"><button type="submit">Sign out</button></form>
<p>Notifications: <span id="status">connecting</span></p>
<ul id="events"></ul>
<script src="${esc(SSEHUB_URL)}/client/sse-client.js"></script>
<script>
  var client = new SSEClient(${js(SSEHUB_URL)}, "sse");
  /* Asked first and whenever the token runs out: this app's backend mints it. */
  client.getToken = function () {
    return fetch("/sse-token", { method: "POST" }).then(function (res) {
      if (res.status === 401) { return null; } /* signed out: no token, the client stops */
      if (!res.ok) { throw new Error("/sse-token answered " + res.status); } /* tried again later */
      return res.json(); /* {token, id} */
    });
  };
  client.setCallback(function (e) {
    var li = document.createElement("li");
    li.dataset.id = e.lastEventId;
    li.dataset.type = e.type;
    li.textContent = e.data;
    document.getElementById("events").appendChild(li);
  });
  client.onOpen = function () { document.getElementById("status").textContent = "connected"; };
  client.onError = function (err) {
    document.getElementById("status").textContent = err.willRetry ? "reconnecting" : "stopped: " + err.message;
  };
  client.withToken();
</script>
</body></html>`;
}

function sessionUser(req) {
  const m = /(?:^|;\s*)app_session=([0-9a-f]+)/.exec(req.headers.cookie || "");
  return m ? sessions.get(m[1]) : undefined;
}

async function readForm(req) {
  let body = "";
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10000) throw new Error("body too large");
  }
  return new URLSearchParams(body);
}

const server = createServer(async (req, res) => {
  const send = (status, type, body, headers = {}) => {
    res.writeHead(status, { "Content-Type": type, "Cache-Control": "no-store", ...headers });
    res.end(body);
  };
  const path = new URL(req.url, "http://app").pathname;
  const user = sessionUser(req);
  try {
    if (req.method === "GET" && path === "/") {
      send(200, "text/html; charset=utf-8", user ? appPage(user) : loginPage());
    } else if (req.method === "POST" && path === "/login") {
      const form = await readForm(req);
      const name = form.get("user") || "";
      if (!Object.hasOwn(USERS, name) || USERS[name] !== form.get("password")) {
        send(401, "text/html; charset=utf-8", loginPage("Wrong user or password."));
        return;
      }
      const sid = randomBytes(16).toString("hex");
      sessions.set(sid, name);
      send(303, "text/plain", "", { Location: "/", "Set-Cookie": `app_session=${sid}; Path=/; HttpOnly; SameSite=Lax` });
    } else if (req.method === "POST" && path === "/logout") {
      const m = /(?:^|;\s*)app_session=([0-9a-f]+)/.exec(req.headers.cookie || "");
      if (m) sessions.delete(m[1]);
      send(303, "text/plain", "", { Location: "/", "Set-Cookie": "app_session=; Path=/; Max-Age=0" });
    } else if (req.method === "POST" && path === "/sse-token") {
      if (!user) {
        send(401, "application/json", JSON.stringify({ error: "sign in first" }));
        return;
      }
      const token = await userToken(user);
      send(200, "application/json", JSON.stringify({ token, id: user }));
    } else {
      send(404, "text/plain", "not found");
    }
  } catch (err) {
    console.error(`${req.method} ${path}: ${err.message}`);
    send(502, "application/json", JSON.stringify({ error: "ssehub is not available" }));
  }
});

server.listen(PORT, HOST, () => {
  console.log(`listening on http://${HOST}:${server.address().port} (ssehub at ${SSEHUB_URL})`);
});
