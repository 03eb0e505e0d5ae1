/* HTTP response heads: status, CORS, length and keep-alive, built into one frame with the body. */
#include "respond.h"

#include <stdio.h>
#include <string.h>

#include "cors.h"

void reply_meta_init(reply_meta_t *m, const config_t *cfg, const http_request_t *req)
{
    m->cors[0] = '\0';
    m->keep_alive = req && req->keep_alive;
    if (req) {
        size_t olen = 0;
        const char *origin = http_header(req, "origin", &olen);
        cors_headers(cfg, origin, olen, m->cors, sizeof m->cors);
    }
}

frame_t *response_frame(const reply_meta_t *m, int status, const char *content_type,
                        const char *body, size_t body_len, const char *extra)
{
    bool keep = m->keep_alive && status != 408 && status != 413 && status != 431;
    char head[2560];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\n%s", status, http_reason(status), m->cors);
    if (content_type)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Type: %s\r\n", content_type);
    n += snprintf(head + n, sizeof head - (size_t)n,
                  "Content-Length: %zu\r\nCache-Control: no-store\r\n"
                  "X-Content-Type-Options: nosniff\r\n%s",
                  body_len, keep ? "" : "Connection: close\r\n");
    size_t xl = extra ? strlen(extra) : 0;
    frame_t *f = frame_alloc((size_t)n + xl + 2 + body_len, NULL, NULL);
    char *p = f->data;
    memcpy(p, head, (size_t)n), p += n;
    if (xl) memcpy(p, extra, xl), p += xl;
    memcpy(p, "\r\n", 2), p += 2;
    if (body_len) memcpy(p, body, body_len);
    return f;
}

frame_t *response_json_frame(const reply_meta_t *m, int status, json_t *value)
{
    char *s = json_dumps(value, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(value);
    frame_t *f = response_frame(m, status, "application/json", s, s ? strlen(s) : 0, NULL);
    free(s);
    return f;
}

/* Queues a finished response; closes after it unless the connection stays open. */
static void send_reply(conn_t *c, const reply_meta_t *m, int status, frame_t *f)
{
    conn_send(c, f);
    frame_unref(f);
    if (!m->keep_alive || status == 408 || status == 413 || status == 431) conn_end(c);
}

void respond(conn_t *c, const http_request_t *req, int status, const char *content_type,
             const char *body, size_t body_len, const char *extra)
{
    reply_meta_t m;
    reply_meta_init(&m, c->own->cfg, req);
    send_reply(c, &m, status, response_frame(&m, status, content_type, body, body_len, extra));
}

void respond_json(conn_t *c, const http_request_t *req, int status, json_t *value)
{
    reply_meta_t m;
    reply_meta_init(&m, c->own->cfg, req);
    send_reply(c, &m, status, response_json_frame(&m, status, value));
}

void respond_error(conn_t *c, const http_request_t *req, int status, const char *msg)
{
    respond_json(c, req, status, json_pack("{s:s}", "error", msg));
}
