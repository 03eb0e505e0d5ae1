/*
 * Fuzzes http_cookie() and http_query_param() on a well-formed request built around the
 * input: the bytes before the first LF become the query string, the rest (or, with no LF,
 * the whole input) the Cookie header's value; bytes a request cannot carry (controls; in the query
 * also space, '#' and non-ASCII) are %-escaped.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "http.h"

static const http_limits_t limits = {.max_header_bytes = 1 << 17, .max_body_bytes = 16};

/* Appends n bytes to out, %-escaping those in the unsafe set; returns the new end. */
static char *append(char *out, const uint8_t *s, size_t n, int query)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        int esc = (c < ' ' && c != '\t') || c == 0x7f ||
                  (query && (c <= ' ' || c == '#' || c >= 0x80));
        if (esc) {
            *out++ = '%';
            *out++ = hex[c >> 4];
            *out++ = hex[c & 15];
        } else {
            *out++ = (char)c;
        }
    }
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192) return 0;
    const uint8_t *lf = memchr(data, '\n', size);
    const uint8_t *q = data, *ck = lf ? lf + 1 : data;
    size_t qn = lf ? (size_t)(lf - data) : size, cn = lf ? size - qn - 1 : size;

    char *text = malloc(3 * (qn + cn) + 64), *p = text; /* 3 bytes per escaped byte */
    p += sprintf(p, "GET /events?");
    p = append(p, q, qn, 1);
    p += sprintf(p, " HTTP/1.1\r\nHost: fuzz\r\nCookie: ");
    p = append(p, ck, cn, 0);
    p += sprintf(p, "\r\n\r\n");
    size_t len = (size_t)(p - text);

    http_request_t req;
    int status = 0;
    int rc = http_parse_request(text, len, &limits, &req, &status);
    FUZZ_CHECK(rc >= 0 && (size_t)rc == len); /* what we built is always a valid request */

    size_t vlen = 0;
    const char *value = http_header(&req, "cookie", &vlen);
    FUZZ_CHECK(value != NULL);
    static const char *const names[] = {"sse_token", "token", "id", "a", ""};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *c = http_cookie(&req, names[i]);
        if (c) { /* a cookie value is a piece of the header, never across a ';' */
            size_t n = strlen(c);
            FUZZ_CHECK(n <= vlen && memchr(c, ';', n) == NULL);
            FUZZ_CHECK(n == 0 || memmem(value, vlen, c, n) != NULL);
        }
        free(c);
        for (int idx = 0; idx < 3; idx++) {
            char *v = http_query_param(&req, names[i], idx);
            if (v) FUZZ_CHECK(strlen(v) <= req.query_len);
            free(v);
        }
    }
    free(text);
    return 0;
}
