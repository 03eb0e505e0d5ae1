/* HTTP/1.1 request parsing on http-parser, plus the small header and query helpers handlers use. */
#include "http.h"

#include <http_parser.h>
#include <string.h>
#include <strings.h>

#include "common.h"

/** State of one parse; lives on the stack of http_parse_request(). */
typedef struct parse_ctx {
    http_request_t *req;
    const http_limits_t *lim;
    const char *url;
    size_t url_len;
    bool in_value;     /* the last header callback was a value */
    bool headers_done; /* the head is complete */
    bool complete;     /* the whole message is complete */
    bool split_body;   /* the body arrived in pieces (chunked) */
    bool compact;      /* second pass: move chunk data together */
    char *body_end;    /* where the next body byte goes when compacting */
    size_t body_total;
    const char *buf;      /* start of the request, to measure the head */
    const char *head_end; /* end of the last token of the head seen so far */
    int status;           /* error status chosen by a callback */
} parse_ctx_t;

/* Appends a piece of a token; pieces of one token must be adjacent in the buffer. */
static int extend(const char **start, size_t *len, const char *at, size_t n)
{
    if (!*start) {
        *start = at;
        *len = n;
        return 0;
    }
    if (*start + *len != at) return -1;
    *len += n;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    parse_ctx_t *c = p->data;
    c->head_end = at + n;
    return extend(&c->url, &c->url_len, at, n);
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    parse_ctx_t *c = p->data;
    http_request_t *r = c->req;
    if (c->headers_done) { /* a trailer after a chunked body: it must not pass for a header */
        c->status = 400;
        return -1;
    }
    c->head_end = at + n;
    if (c->in_value || r->nheaders == 0) {
        if (r->nheaders == HTTP_MAX_HEADERS) {
            c->status = 431;
            return -1;
        }
        r->nheaders++;
        c->in_value = false;
        http_header_t *h = &r->headers[r->nheaders - 1];
        h->name = NULL;
        h->value = "";
        h->value_len = 0;
    }
    http_header_t *h = &r->headers[r->nheaders - 1];
    return extend(&h->name, &h->name_len, at, n);
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    parse_ctx_t *c = p->data;
    http_header_t *h = &c->req->headers[c->req->nheaders - 1];
    c->head_end = at + n;
    if (!c->in_value) {
        c->in_value = true;
        h->value = NULL;
    }
    if (extend(&h->value, &h->value_len, at, n)) {
        c->status = 400; /* obsolete line folding */
        return -1;
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    parse_ctx_t *c = p->data;
    http_request_t *r = c->req;
    /* The parser's own counter is reset by now: measure up to the last token, plus its CRLFs. */
    if ((size_t)(c->head_end - c->buf) + 4 > c->lim->max_header_bytes) {
        c->status = 431;
        return -1;
    }
    bool has_cl = false, has_te = false;
    for (int i = 0; i < r->nheaders; i++) {
        if (r->headers[i].name_len == 14 && strncasecmp(r->headers[i].name, "content-length", 14) == 0) {
            if (has_cl) { /* repeated, even with equal values: a smuggling shape */
                c->status = 400;
                return -1;
            }
            has_cl = true;
        }
        if (r->headers[i].name_len == 17 && strncasecmp(r->headers[i].name, "transfer-encoding", 17) == 0)
            has_te = true;
    }
    if (has_cl && has_te) {
        c->status = 400;
        return -1;
    }
    if (has_cl && p->content_length > c->lim->max_body_bytes) {
        c->status = 413;
        return -1;
    }
    c->headers_done = true;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    parse_ctx_t *c = p->data;
    http_request_t *r = c->req;
    c->body_total += n;
    if (c->body_total > c->lim->max_body_bytes) {
        c->status = 413;
        return -1;
    }
    if (c->compact) {
        if (!c->body_end) c->body_end = (char *)at;
        memmove(c->body_end, at, n);
        c->body_end += n;
        r->body_len = c->body_total;
        return 0;
    }
    if (extend(&r->body, &r->body_len, at, n)) c->split_body = true;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    parse_ctx_t *c = p->data;
    c->complete = true;
    http_parser_pause(p, 1); /* stop here: the next pipelined request is parsed later */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static size_t run(char *buf, size_t len, parse_ctx_t *c, http_parser *p)
{
    c->buf = c->head_end = buf;
    http_parser_init(p, HTTP_REQUEST);
    p->data = c;
    return http_parser_execute(p, &parser_settings, buf, len);
}

/* Splits the request target into path and query; absolute-form targets lose scheme and host. */
static int split_target(parse_ctx_t *c)
{
    http_request_t *r = c->req;
    const char *u = c->url;
    size_t n = c->url_len;
    if (!u || n == 0) return -1;
    if (u[0] != '/') {
        const char *s = memmem(u, n, "://", 3);
        if (!s) return -1;
        const char *slash = memchr(s + 3, '/', n - (size_t)(s + 3 - u));
        if (!slash) {
            r->path = "/";
            r->path_len = 1;
            r->query = "";
            r->query_len = 0;
            return 0;
        }
        n -= (size_t)(slash - u);
        u = slash;
    }
    const char *hash = memchr(u, '#', n);
    if (hash) n = (size_t)(hash - u);
    const char *q = memchr(u, '?', n);
    r->path = u;
    r->path_len = q ? (size_t)(q - u) : n;
    r->query = q ? q + 1 : "";
    r->query_len = q ? n - r->path_len - 1 : 0;
    return 0;
}

int http_parse_request(char *buf, size_t len, const http_limits_t *lim, http_request_t *req,
                       int *status)
{
    parse_ctx_t c = {.req = req, .lim = lim};
    http_parser p;
    memset(req, 0, sizeof *req);
    *status = 400;
    size_t used = run(buf, len, &c, &p);
    enum http_errno e = HTTP_PARSER_ERRNO(&p);
    if (e != HPE_OK && e != HPE_PAUSED) {
        *status = c.status ? c.status : e == HPE_HEADER_OVERFLOW ? 431 : 400;
        return HTTP_ERROR;
    }
    if (!c.complete) {
        if (p.upgrade && c.headers_done) {
            *status = 400; /* CONNECT and the like */
            return HTTP_ERROR;
        }
        if (!c.headers_done && len > lim->max_header_bytes) {
            *status = 431;
            return HTTP_ERROR;
        }
        return HTTP_NEED_MORE;
    }
    if (c.split_body) { /* a chunked body: second pass joins the chunks in place */
        parse_ctx_t c2 = {.req = req, .lim = lim, .compact = true};
        memset(req, 0, sizeof *req);
        used = run(buf, used, &c2, &p);
        req->body = c2.body_end ? c2.body_end - c2.body_total : "";
        c = c2;
    }
    if (split_target(&c)) return HTTP_ERROR;
    for (int i = 0; i < req->nheaders; i++) { /* optional whitespace is not part of a value */
        http_header_t *h = &req->headers[i];
        while (h->value_len && (h->value[h->value_len - 1] == ' ' || h->value[h->value_len - 1] == '\t'))
            h->value_len--;
    }
    req->method = (int)p.method;
    req->keep_alive = http_should_keep_alive(&p);
    if (!req->body) req->body = "";
    return (int)used;
}

const char *http_header(const http_request_t *req, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (int i = 0; i < req->nheaders; i++) {
        const http_header_t *h = &req->headers[i];
        if (h->name_len == nl && strncasecmp(h->name, name, nl) == 0) {
            if (len) *len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* %-decodes n bytes into a new string; NULL if the result holds a NUL byte. */
static char *pct_decode(const char *s, size_t n)
{
    char *out = xmalloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 &&
            (lo = hexval(s[i + 2])) >= 0) {
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    if ((size_t)(o - out) != strlen(out)) {
        free(out);
        return NULL;
    }
    return out;
}

char *http_query_param(const http_request_t *req, const char *name, int idx)
{
    size_t nl = strlen(name);
    const char *p = req->query, *end = req->query + req->query_len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        const char *ne = eq ? eq : e;
        if ((size_t)(ne - p) == nl && memcmp(p, name, nl) == 0 && idx-- == 0)
            return eq ? pct_decode(eq + 1, (size_t)(e - eq - 1)) : xstrdup("");
        p = e + 1;
    }
    return NULL;
}

char *http_cookie(const http_request_t *req, const char *name)
{
    size_t nl = strlen(name);
    for (int i = 0; i < req->nheaders; i++) {
        const http_header_t *h = &req->headers[i];
        if (h->name_len != 6 || strncasecmp(h->name, "cookie", 6) != 0) continue;
        const char *p = h->value, *end = h->value + h->value_len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ';')) p++;
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *e = semi ? semi : end;
            const char *eq = memchr(p, '=', (size_t)(e - p));
            if (eq && (size_t)(eq - p) == nl && memcmp(p, name, nl) == 0) {
                const char *v = eq + 1, *ve = e;
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
                if (ve - v >= 2 && *v == '"' && ve[-1] == '"') v++, ve--;
                return xstrndup(v, (size_t)(ve - v));
            }
            p = e;
        }
    }
    return NULL;
}

const char *http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}
