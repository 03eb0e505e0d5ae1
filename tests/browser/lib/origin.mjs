/*
 * origin.mjs: a tiny static HTTP server on another loopback port, so the
 * test page runs on a different origin from ssehub (cross-origin XHR,
 * cookies and EventSource, as in a real deployment).
 *
 * Serves /page.html (a blank page that loads the client as a classic
 * script), and web/sse-client.js and web/sse-client.mjs at the root.
 */
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "./server.mjs";

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>ssehub browser test</title>
<link rel="icon" href="data:,">
<script src="/sse-client.js"></script>
</head><body><p>ssehub browser test page</p></body></html>
`;

/* Resolves to { origin, port, close() } once listening on 127.0.0.1. */
export async function startOrigin() {
  const server = createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    const send = (status, type, body) => {
      res.writeHead(status, { "Content-Type": type, "Cache-Control": "no-store" });
      res.end(body);
    };
    if (path === "/page.html") {
      send(200, "text/html; charset=utf-8", PAGE);
    } else if (path === "/sse-client.js" || path === "/sse-client.mjs") {
      /* Read on each request, so the test always sees the current file. */
      send(200, "text/javascript; charset=utf-8", readFileSync(join(REPO, "web", path.slice(1))));
    } else {
      send(404, "text/plain", "not found");
    }
  });
  await new Promise((res, rej) => {
    server.once("error", rej);
    server.listen(0, "127.0.0.1", res);
  });
  const { port } = server.address();
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    close: () => new Promise((res) => {
      server.closeAllConnections();
      server.close(() => res());
    }),
  };
}
