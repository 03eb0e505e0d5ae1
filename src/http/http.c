/* HTTP/1.1 request parsing on http-parser, plus the small header and query helpers handlers use. */
#include "http.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "common.h"

#define UNSET UINT32_MAX

/* Appends a piece of a token; pieces of one token must be adjacent in the buffer. */
static int extend(http_span_t *t, uint32_t at, size_t n)
{
    if (t->off == UNSET) {
        t->off = at;
        t->len = (uint32_t)n;
        return 0;
    }
    if (t->off + t->len != at) return -1;
    t->len += (uint32_t)n;
    return 0;
}

static uint32_t offset_of(const http_reader_t *r, const char *at)
{
    return (uint32_t)(at - r->base);
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    http_reader_t *r = p->data;
    r->head_end = offset_of(r, at) + (uint32_t)n;
    return extend(&r->url, offset_of(r, at), n);
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    http_reader_t *r = p->data;
    if (r->headers_done) { /* a trailer after a chunked body: it must not pass for a header */
        r->status = 400;
        return -1;
    }
    r->head_end = offset_of(r, at) + (uint32_t)n;
    if (r->in_value || r->nheaders == 0) {
        if (r->nheaders == HTTP_MAX_HEADERS) {
            r->status = 431;
            return -1;
        }
        r->nheaders++;
        r->in_value = false;
        r->name[r->nheaders - 1] = (http_span_t){UNSET, 0};
        r->value[r->nheaders - 1] = (http_span_t){0, 0};
    }
    return extend(&r->name[r->nheaders - 1], offset_of(r, at), n);
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    http_reader_t *r = p->data;
    http_span_t *v = &r->value[r->nheaders - 1];
    r->head_end = offset_of(r, at) + (uint32_t)n;
    if (!r->in_value) {
        r->in_value = true;
        v->off = UNSET;
    }
    if (extend(v, offset_of(r, at), n)) {
        r->status = 400; /* obsolete line folding */
        return -1;
    }
    return 0;
}

static bool name_is(const http_reader_t *r, int i, const char *name, size_t n)
{
    return r->name[i].len == n && strncasecmp(r->base + r->name[i].off, name, n) == 0;
}

static int on_headers_complete(http_parser *p)
{
    http_reader_t *r = p->data;
    if (p->http_major == 0) { /* HTTP/0.9 has no head to answer with: refuse, then close */
        r->status = 400;
        return -1;
    }
    if (p->http_major > 1) {
        r->status = 505;
        return -1;
    }
    /* Measured up to the last token, plus its CRLFs. */
    if ((size_t)(r->head_end - r->start) + 4 > r->lim->max_header_bytes) {
        r->status = 431;
        return -1;
    }
    bool has_cl = false, has_te = false;
    for (int i = 0; i < r->nheaders; i++) {
        if (name_is(r, i, "content-length", 14)) {
            if (has_cl) { /* repeated, even with equal values: a smuggling shape */
                r->status = 400;
                return -1;
            }
            has_cl = true;
        }
        if (name_is(r, i, "transfer-encoding", 17)) has_te = true;
    }
    if (has_cl && has_te) {
        r->status = 400;
        return -1;
    }
    if (has_cl && p->content_length > r->lim->max_body_bytes) {
        r->status = 413;
        return -1;
    }
    r->headers_done = true;
    http_parser_pause(p, 1); /* stop here so the caller learns where the body begins */
    return 0;
}

/* Body bytes are moved to the end of the body so far: a chunked body ends up joined. */
static int on_body(http_parser *p, const char *at, size_t n)
{
    http_reader_t *r = p->data;
    if ((size_t)r->body.len + n > r->lim->max_body_bytes) {
        r->status = 413;
        return -1;
    }
    char *end = r->base + r->body.off + r->body.len;
    if (end != at) memmove(end, at, n);
    r->body.len += (uint32_t)n;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_reader_t *r = p->data;
    r->complete = true;
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

/* Resets the per-request state for a request beginning at offset start. */
static void begin_request(http_reader_t *r, uint32_t start)
{
    const http_limits_t *lim = r->lim;
    memset(r, 0, offsetof(http_reader_t, url));
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
    r->lim = lim;
    r->start = r->parsed = r->head_end = start;
    r->url = (http_span_t){UNSET, 0};
    r->nheaders = 0;
    r->body = (http_span_t){0, 0};
    r->in_value = r->headers_done = r->body_started = r->complete = r->failed = false;
    r->status = 0;
}

void http_reader_init(http_reader_t *r, const http_limits_t *lim)
{
    r->lim = lim;
    begin_request(r, 0);
}

size_t http_reader_next(http_reader_t *r)
{
    begin_request(r, r->parsed);
    return r->parsed;
}

void http_reader_shift(http_reader_t *r, size_t delta)
{
    uint32_t d = (uint32_t)delta;
    r->start -= d;
    r->parsed -= d;
    r->head_end -= d;
    if (r->url.off != UNSET) r->url.off -= d;
    for (int i = 0; i < r->nheaders; i++) {
        if (r->name[i].off != UNSET) r->name[i].off -= d;
        if (r->value[i].off != UNSET) r->value[i].off -= d;
    }
    if (r->body_started) r->body.off -= d;
}

/* Splits the request target into path and query; absolute-form targets lose scheme and host. */
static int split_target(http_request_t *req, const char *u, size_t n)
{
    if (!u || n == 0) return -1;
    if (u[0] != '/') {
        const char *s = memmem(u, n, "://", 3);
        if (!s) return -1;
        const char *slash = memchr(s + 3, '/', n - (size_t)(s + 3 - u));
        if (!slash) {
            req->path = "/";
            req->path_len = 1;
            req->query = "";
            req->query_len = 0;
            return 0;
        }
        n -= (size_t)(slash - u);
        u = slash;
    }
    const char *hash = memchr(u, '#', n);
    if (hash) n = (size_t)(hash - u);
    const char *q = memchr(u, '?', n);
    req->path = u;
    req->path_len = q ? (size_t)(q - u) : n;
    req->query = q ? q + 1 : "";
    req->query_len = q ? n - req->path_len - 1 : 0;
    return 0;
}

/* Turns the offsets of a complete request into req's pointers into buf. */
static int fill_request(const http_reader_t *r, const char *buf, http_request_t *req)
{
    memset(req, 0, sizeof *req);
    if (r->url.off == UNSET || split_target(req, buf + r->url.off, r->url.len)) return -1;
    req->nheaders = r->nheaders;
    for (int i = 0; i < r->nheaders; i++) {
        http_header_t *h = &req->headers[i];
        h->name = buf + r->name[i].off;
        h->name_len = r->name[i].len;
        h->value = r->value[i].len ? buf + r->value[i].off : "";
        h->value_len = r->value[i].len;
        /* optional whitespace is not part of a value */
        while (h->value_len && (h->value[h->value_len - 1] == ' ' || h->value[h->value_len - 1] == '\t'))
            h->value_len--;
    }
    req->body = r->body.len ? buf + r->body.off : "";
    req->body_len = r->body.len;
    req->method = (int)r->parser.method;
    req->keep_alive = http_should_keep_alive(&r->parser);
    return 0;
}

void http_reader_request(const http_reader_t *r, const char *buf, http_request_t *req)
{
    fill_request(r, buf, req);
}

static int fail(http_reader_t *r, int status, int *out)
{
    r->failed = true;
    *out = status;
    return HTTP_ERROR;
}

int http_reader_parse(http_reader_t *r, char *buf, size_t *len, http_request_t *req, int *status)
{
    *status = 400;
    if (r->failed) return HTTP_ERROR;
    r->base = buf;
    while (!r->complete && r->parsed < *len) {
        size_t got = http_parser_execute(&r->parser, &parser_settings, buf + r->parsed,
                                         *len - r->parsed);
        r->parsed += (uint32_t)got;
        enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&r->parser, 0);
            if (r->headers_done && !r->body_started) {
                /* Paused on the head's last LF, which the parser takes again on resume. */
                r->body_started = true;
                r->body.off = r->parsed + 1;
            }
            continue;
        }
        if (e != HPE_OK)
            return fail(r, r->status ? r->status : e == HPE_HEADER_OVERFLOW ? 431 : 400, status);
        if (got == 0) break;
    }
    r->base = NULL;
    /* http-parser takes a request line without a version as HTTP/0.9 and waits for a head. */
    if (!r->headers_done && r->url.off != UNSET && r->parser.http_major == 0 && r->parser.http_minor == 9)
        return fail(r, 400, status);
    if (!r->complete) {
        if (r->parser.upgrade && r->headers_done) return fail(r, 400, status); /* CONNECT and the like */
        if (!r->headers_done && (size_t)(r->parsed - r->start) > r->lim->max_header_bytes)
            return fail(r, 431, status);
        /* Framing already parsed is of no more use: keep only the head and the body so far. */
        if (r->body_started && r->body.off + r->body.len < r->parsed) {
            r->parsed = r->body.off + r->body.len;
            *len = r->parsed;
        }
        return HTTP_NEED_MORE;
    }
    if (fill_request(r, buf, req)) return fail(r, 400, status);
    return HTTP_COMPLETE;
}

int http_parse_request(char *buf, size_t len, const http_limits_t *lim, http_request_t *req,
                       int *status)
{
    /* A copy: chunk joining must not touch buf unless the request is complete. */
    char *tmp = xmalloc(len ? len : 1);
    memcpy(tmp, buf, len);
    http_reader_t r;
    http_reader_init(&r, lim);
    size_t n = len;
    int rc = http_reader_parse(&r, tmp, &n, req, status);
    if (rc == HTTP_COMPLETE) {
        memcpy(buf, tmp, r.parsed);
        fill_request(&r, buf, req);
        rc = (int)r.parsed;
    }
    free(tmp);
    return rc;
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

bool http_content_type_is(const http_request_t *req, const char *type)
{
    size_t n;
    const char *v = http_header(req, "content-type", &n);
    if (!v) return false;
    const char *end = memchr(v, ';', n); /* the parameters do not change the type */
    if (!end) end = v + n;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
    size_t tl = strlen(type);
    return (size_t)(end - v) == tl && strncasecmp(v, type, tl) == 0;
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
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}
