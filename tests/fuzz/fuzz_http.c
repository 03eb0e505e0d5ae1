/* Fuzzes http_parse_request() on the input as a connection's bytes, request after request. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "http.h"

/* Small limits, so the 413 and 431 paths are reachable with short inputs. */
static const http_limits_t limits = {.max_header_bytes = 512, .max_body_bytes = 128};

/* True when [p, p+n) lies inside [lo, hi), or is one of the parser's short literals. */
static int inside(const char *p, size_t n, const char *lo, const char *hi)
{
    if (p >= lo && p <= hi) return n <= (size_t)(hi - p);
    return n <= 1; /* "", "/" */
}

static void use_helpers(const http_request_t *req)
{
    static const char *const headers[] = {"host", "content-length", "cookie", "authorization",
                                          "origin", "last-event-id", "", "x"};
    static const char *const params[] = {"token", "id", "type", "types", "lastEventId", "", "a"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        size_t n = 0;
        const char *v = http_header(req, headers[i], &n);
        FUZZ_CHECK(v || n == 0);
    }
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        for (int idx = 0; idx < 2; idx++) {
            char *v = http_query_param(req, params[i], idx);
            if (v) FUZZ_CHECK(strlen(v) <= req->query_len);
            free(v);
        }
    }
    char *c = http_cookie(req, "sse_token");
    free(c);
    c = http_cookie(req, "");
    free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    char *buf = malloc(size); /* exactly size bytes: chunked bodies are rewritten in place */
    memcpy(buf, data, size);
    size_t off = 0;
    while (off < size) {
        http_request_t req;
        int status = 0;
        int rc = http_parse_request(buf + off, size - off, &limits, &req, &status);
        if (rc == HTTP_NEED_MORE) break;
        if (rc == HTTP_ERROR) {
            FUZZ_CHECK(status == 400 || status == 413 || status == 431 || status == 501 ||
                       status == 505);
            FUZZ_CHECK(strcmp(http_reason(status), "Unknown") != 0);
            break;
        }
        FUZZ_CHECK(rc > 0 && (size_t)rc <= size - off);
        const char *lo = buf + off, *hi = buf + off + rc;
        FUZZ_CHECK(req.path && inside(req.path, req.path_len, lo, hi));
        FUZZ_CHECK(req.path_len > 0 && req.path[0] == '/');
        FUZZ_CHECK(req.query && inside(req.query, req.query_len, lo, hi));
        FUZZ_CHECK(req.body && inside(req.body, req.body_len, lo, hi));
        FUZZ_CHECK(req.body_len <= limits.max_body_bytes);
        FUZZ_CHECK(req.nheaders >= 0 && req.nheaders <= HTTP_MAX_HEADERS);
        for (int i = 0; i < req.nheaders; i++) {
            const http_header_t *h = &req.headers[i];
            FUZZ_CHECK(h->name && inside(h->name, h->name_len, lo, hi));
            FUZZ_CHECK(h->value && inside(h->value, h->value_len, lo, hi));
            /* Every header belongs to the head: nothing after the body (trailers) may pass for one.
             * An empty value may be the literal "" rather than a place in the buffer. */
            if (h->value_len == 0) continue;
            if (req.body_len) FUZZ_CHECK(h->value + h->value_len <= req.body);
            FUZZ_CHECK((size_t)(h->value + h->value_len - lo) <= limits.max_header_bytes);
        }
        use_helpers(&req);
        off += (size_t)rc;
    }
    free(buf);
    return 0;
}
