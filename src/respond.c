/* HTTP response heads: status, CORS, length and keep-alive, built into one frame with the body. */
#include "respond.h"

#include <stdio.h>
#include <string.h>

#include "cors.h"
#include "worker.h"

void respond(conn_t *c, const http_request_t *req, int status, const char *content_type,
             const char *body, size_t body_len, const char *extra)
{
    const config_t *cfg = c->w->srv->cfg;
    bool keep = req && req->keep_alive && status != 408 && status != 413 && status != 431;
    char head[2048];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\n", status, http_reason(status));
    if (req) {
        size_t olen = 0;
        const char *origin = http_header(req, "origin", &olen);
        n += (int)cors_headers(cfg, origin, olen, head + n, sizeof head - (size_t)n);
    }
    if (content_type)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Type: %s\r\n", content_type);
    n += snprintf(head + n, sizeof head - (size_t)n,
                  "Content-Length: %zu\r\nCache-Control: no-store\r\n"
                  "X-Content-Type-Options: nosniff\r\n%s%s\r\n",
                  body_len, keep ? "" : "Connection: close\r\n", extra ? extra : "");
    frame_t *f = frame_alloc((size_t)n + body_len, NULL, NULL);
    memcpy(f->data, head, (size_t)n);
    if (body_len) memcpy(f->data + n, body, body_len);
    conn_send(c, f);
    frame_unref(f);
    if (!keep) conn_end(c);
}

void respond_json(conn_t *c, const http_request_t *req, int status, json_t *value)
{
    char *s = json_dumps(value, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(value);
    respond(c, req, status, "application/json", s, s ? strlen(s) : 0, NULL);
    free(s);
}

void respond_error(conn_t *c, const http_request_t *req, int status, const char *msg)
{
    respond_json(c, req, status, json_pack("{s:s}", "error", msg));
}
