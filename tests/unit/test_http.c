/* http: parsing, keep-alive, pipelining, limits, chunked bodies, query and cookie helpers. */
#include <criterion/criterion.h>
#include <http_parser.h>
#include <stdio.h>
#include <string.h>

#include "http.h"

static const http_limits_t lim = {.max_header_bytes = 1024, .max_body_bytes = 64};
static char buf[8192];
static http_request_t req;

/* Copies text into buf and parses it; returns the parser result, *status gets the status. */
static int parse_lim(const char *text, const http_limits_t *l, int *status)
{
    size_t n = strlen(text);
    cr_assert_lt(n, sizeof buf);
    memcpy(buf, text, n + 1);
    *status = 0;
    return http_parse_request(buf, n, l, &req, status);
}

static int parse(const char *text, int *status)
{
    return parse_lim(text, &lim, status);
}

static void expect_error(const char *text, int want_status)
{
    int st;
    int rc = parse(text, &st);
    cr_assert_eq(rc, HTTP_ERROR, "rc %d for [%s]", rc, text);
    cr_assert_eq(st, want_status, "status %d, want %d for [%s]", st, want_status, text);
}

/* Parses a complete request that must succeed and use every byte. */
static void ok(const char *text)
{
    int st;
    int rc = parse(text, &st);
    cr_assert_eq(rc, (int)strlen(text), "rc %d (status %d) for [%s]", rc, st, text);
}

#define MEMEQ(p, n, lit) (n == sizeof(lit) - 1 && memcmp(p, lit, n) == 0)

Test(http, simple_get)
{
    ok("GET /events?x=1 HTTP/1.1\r\nHost: a\r\nX-Two:  v w\r\n\r\n");
    cr_assert_eq(req.method, HTTP_GET);
    cr_assert(MEMEQ(req.path, req.path_len, "/events"));
    cr_assert(MEMEQ(req.query, req.query_len, "x=1"));
    cr_assert_eq(req.nheaders, 2);
    cr_assert(MEMEQ(req.headers[0].name, req.headers[0].name_len, "Host"));
    cr_assert(MEMEQ(req.headers[0].value, req.headers[0].value_len, "a"));
    cr_assert(MEMEQ(req.headers[1].name, req.headers[1].name_len, "X-Two"));
    cr_assert(MEMEQ(req.headers[1].value, req.headers[1].value_len, "v w"),
              "[%.*s]", (int)req.headers[1].value_len, req.headers[1].value);
    cr_assert_eq(req.body_len, 0);
    cr_assert_not_null(req.body);
    cr_assert(req.keep_alive);
    /* pointers point into the caller's buffer */
    cr_assert(req.path >= buf && req.path < buf + sizeof buf);
}

Test(http, header_value_trailing_whitespace_excluded)
{
    /* RFC 9110 5.5: a field value does not include trailing whitespace */
    ok("GET / HTTP/1.1\r\nX-Two: v w \t\r\n\r\n");
    size_t n = 0;
    const char *v = http_header(&req, "x-two", &n);
    cr_assert_not_null(v);
    cr_assert(MEMEQ(v, n, "v w"), "[%.*s]", (int)n, v);
}

Test(http, no_query)
{
    ok("GET / HTTP/1.1\r\n\r\n");
    cr_assert(MEMEQ(req.path, req.path_len, "/"));
    cr_assert_eq(req.query_len, 0);
    cr_assert_str_eq(req.query, "");
    cr_assert_eq(req.nheaders, 0);
}

Test(http, absolute_form_target)
{
    ok("GET http://h.example:8080/a/b?q=1 HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert(MEMEQ(req.path, req.path_len, "/a/b"));
    cr_assert(MEMEQ(req.query, req.query_len, "q=1"));
}

Test(http, post_with_body)
{
    ok("POST /broadcast HTTP/1.1\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello world");
    cr_assert_eq(req.method, HTTP_POST);
    cr_assert(MEMEQ(req.path, req.path_len, "/broadcast"));
    cr_assert(MEMEQ(req.body, req.body_len, "hello world"));
}

Test(http, keep_alive_flags)
{
    ok("GET / HTTP/1.1\r\n\r\n");
    cr_assert(req.keep_alive);
    ok("GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    cr_assert_not(req.keep_alive);
    ok("GET / HTTP/1.0\r\n\r\n");
    cr_assert_not(req.keep_alive);
    ok("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    cr_assert(req.keep_alive);
}

Test(http, pipelined_returns_first_length)
{
    const char *first = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n";
    const char *second = "POST /two HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
    char text[256];
    snprintf(text, sizeof text, "%s%s", first, second);
    int st;
    int rc = parse(text, &st);
    cr_assert_eq(rc, (int)strlen(first));
    cr_assert(MEMEQ(req.path, req.path_len, "/one"));

    /* the second starts at the returned offset */
    size_t rest = strlen(text) - (size_t)rc;
    rc = http_parse_request(buf + rc, rest, &lim, &req, &st);
    cr_assert_eq(rc, (int)strlen(second));
    cr_assert(MEMEQ(req.path, req.path_len, "/two"));
    cr_assert(MEMEQ(req.body, req.body_len, "abc"));
}

Test(http, pipelined_with_body_first)
{
    const char *first = "POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nxy";
    char text[256];
    snprintf(text, sizeof text, "%sGET /b HTTP/1.1\r\n\r\n", first);
    int st;
    cr_assert_eq(parse(text, &st), (int)strlen(first));
    cr_assert(MEMEQ(req.body, req.body_len, "xy"));
}

Test(http, incomplete_needs_more)
{
    int st;
    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: a\r\n", &st), HTTP_NEED_MORE);
    cr_assert_eq(parse("GE", &st), HTTP_NEED_MORE);
    cr_assert_eq(parse("", &st), HTTP_NEED_MORE);
    cr_assert_eq(parse("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", &st), HTTP_NEED_MORE);
    cr_assert_eq(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", &st),
                 HTTP_NEED_MORE);
}

Test(http, head_too_large_431)
{
    char text[4096];
    int n = snprintf(text, sizeof text, "GET / HTTP/1.1\r\nX-Big: ");
    memset(text + n, 'a', 2000);
    text[n + 2000] = '\0';
    /* incomplete, but already bigger than the limit */
    expect_error(text, 431);
    /* complete */
    strcat(text, "\r\n\r\n");
    expect_error(text, 431);
}

/* Writes a complete GET request head of exactly total bytes into out. */
static void make_head(char *out, size_t total)
{
    const char *pre = "GET / HTTP/1.1\r\nX: ";
    size_t n = strlen(pre), fill = total - n - 4;
    memcpy(out, pre, n);
    memset(out + n, 'b', fill);
    memcpy(out + n + fill, "\r\n\r\n", 5);
}

Test(http, head_at_limit_accepted)
{
    char text[2048];
    make_head(text, lim.max_header_bytes);
    cr_assert_eq(strlen(text), lim.max_header_bytes);
    ok(text);
    make_head(text, lim.max_header_bytes + 1);
    expect_error(text, 431);
}

Test(http, too_many_headers_431)
{
    char text[4096];
    size_t n = (size_t)snprintf(text, sizeof text, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < HTTP_MAX_HEADERS + 1; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "H%d: v\r\n", i);
    snprintf(text + n, sizeof text - n, "\r\n");
    http_limits_t big = {.max_header_bytes = 4096, .max_body_bytes = 64};
    int st;
    cr_assert_eq(parse_lim(text, &big, &st), HTTP_ERROR);
    cr_assert_eq(st, 431);
}

Test(http, body_over_max_413)
{
    expect_error("POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n", 413);
    /* chunked body that grows past the limit */
    char text[512];
    char data[41];
    memset(data, 'd', 40);
    data[40] = '\0';
    snprintf(text, sizeof text,
             "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n28\r\n%s\r\n28\r\n%s\r\n0\r\n\r\n",
             data, data);
    expect_error(text, 413);
}

Test(http, body_at_max_accepted)
{
    char text[512];
    char data[65];
    memset(data, 'd', 64);
    data[64] = '\0';
    snprintf(text, sizeof text, "POST / HTTP/1.1\r\nContent-Length: 64\r\n\r\n%s", data);
    ok(text);
    cr_assert_eq(req.body_len, 64);
}

Test(http, garbage_400)
{
    expect_error("\x01\x02garbage\r\n\r\n", 400);
    expect_error("GET / FOO/1.1\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400);
    expect_error("GET nopath HTTP/1.1\r\n\r\n", 400);
}

Test(http, content_length_and_transfer_encoding_400)
{
    expect_error("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "3\r\nabc\r\n0\r\n\r\n",
                 400);
    expect_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
                 "3\r\nabc\r\n0\r\n\r\n",
                 400);
}

/* Trailers would otherwise land among the headers: a forged Authorization after the body. */
Test(http, chunked_trailers_refused_400)
{
    expect_error("POST /broadcast HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "3\r\nabc\r\n0\r\nAuthorization: Bearer injected\r\nContent-Length: 5\r\n\r\n",
                 400);
    expect_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nCookie: sse_token=z\r\n\r\n", 400);
}

Test(http, duplicate_content_length_400)
{
    expect_error("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400);
    expect_error("POST / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 4\r\n\r\nabcd", 400);
}

Test(http, chunked_body_joined_in_place)
{
    const char *text = "POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX-After: 1\r\n\r\n"
                       "5\r\nhello\r\n1\r\n \r\n5;ext=1\r\nworld\r\n0\r\n\r\n";
    ok(text);
    cr_assert(MEMEQ(req.body, req.body_len, "hello world"), "[%.*s]", (int)req.body_len,
              req.body);
    cr_assert(req.body >= buf && req.body < buf + sizeof buf);
    cr_assert(MEMEQ(req.path, req.path_len, "/b"));
    const char *v = http_header(&req, "x-after", NULL);
    cr_assert_not_null(v);
    cr_assert_eq(*v, '1');
}

Test(http, chunked_single_chunk_and_empty)
{
    ok("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    cr_assert(MEMEQ(req.body, req.body_len, "abc"));
    ok("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    cr_assert_eq(req.body_len, 0);
    cr_assert_not_null(req.body);
}

Test(http, chunked_pipelined)
{
    const char *first = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n";
    char text[256];
    snprintf(text, sizeof text, "%sGET /next HTTP/1.1\r\n\r\n", first);
    int st;
    int rc = parse(text, &st);
    cr_assert_eq(rc, (int)strlen(first));
    cr_assert(MEMEQ(req.body, req.body_len, "abcd"));
    /* the next request is untouched */
    cr_assert(memcmp(buf + rc, "GET /next HTTP/1.1\r\n\r\n", 22) == 0);
}

Test(http, header_lookup_case_insensitive)
{
    ok("GET / HTTP/1.1\r\nContent-Type: a/b\r\nX-Dup: 1\r\nx-dup: 2\r\nEmpty:\r\n\r\n");
    size_t n = 0;
    const char *v = http_header(&req, "content-type", &n);
    cr_assert_not_null(v);
    cr_assert(MEMEQ(v, n, "a/b"));
    v = http_header(&req, "CONTENT-TYPE", &n);
    cr_assert(MEMEQ(v, n, "a/b"));
    v = http_header(&req, "X-DUP", &n);
    cr_assert(MEMEQ(v, n, "1"));
    v = http_header(&req, "empty", &n);
    cr_assert_not_null(v);
    cr_assert_eq(n, 0);
    cr_assert_null(http_header(&req, "content", &n));
    cr_assert_null(http_header(&req, "content-type-x", &n));
    cr_assert_null(http_header(&req, "missing", NULL));
}

Test(http, content_type_media_type_case_insensitive_parameters_allowed)
{
    static const char *const yes[] = {
        "application/json", "Application/JSON", "application/json; charset=utf-8",
        "application/json;charset=UTF-8", "application/json ;charset=utf-8", "APPLICATION/JSON  ",
    };
    static const char *const no[] = {
        "", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
        "application/json5", "application/jsonx; charset=utf-8", "text/plain; application/json",
        "application/json, text/plain", "xapplication/json",
    };
    char text[256];
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        snprintf(text, sizeof text, "POST / HTTP/1.1\r\nContent-Type: %s\r\n\r\n", yes[i]);
        ok(text);
        cr_assert(http_content_type_is(&req, "application/json"), "[%s]", yes[i]);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        snprintf(text, sizeof text, "POST / HTTP/1.1\r\nContent-Type: %s\r\n\r\n", no[i]);
        ok(text);
        cr_assert(!http_content_type_is(&req, "application/json"), "[%s]", no[i]);
    }
    ok("POST / HTTP/1.1\r\nX-Content-Type: application/json\r\n\r\n");
    cr_assert(!http_content_type_is(&req, "application/json"), "no Content-Type header");
}

Test(http, query_params)
{
    ok("GET /e?a=1&b=x%20y&a=2&c&d=&p=a+b%2Bc%2f%3D&t=%41%4 HTTP/1.1\r\n\r\n");
    char *v;
    v = http_query_param(&req, "a", 0);
    cr_assert_str_eq(v, "1");
    free(v);
    v = http_query_param(&req, "a", 1);
    cr_assert_str_eq(v, "2");
    free(v);
    cr_assert_null(http_query_param(&req, "a", 2));
    v = http_query_param(&req, "b", 0);
    cr_assert_str_eq(v, "x y");
    free(v);
    v = http_query_param(&req, "c", 0);
    cr_assert_str_eq(v, "");
    free(v);
    v = http_query_param(&req, "d", 0);
    cr_assert_str_eq(v, "");
    free(v);
    v = http_query_param(&req, "p", 0);
    cr_assert_str_eq(v, "a+b+c/=");
    free(v);
    v = http_query_param(&req, "t", 0); /* an incomplete escape stays as it is */
    cr_assert_str_eq(v, "A%4");
    free(v);
    cr_assert_null(http_query_param(&req, "missing", 0));
    cr_assert_null(http_query_param(&req, "", 0));
}

Test(http, query_param_name_must_match_exactly)
{
    ok("GET /?token2=x&xtoken=y&tok=z&token=right HTTP/1.1\r\n\r\n");
    char *v = http_query_param(&req, "token", 0);
    cr_assert_str_eq(v, "right");
    free(v);
}

Test(http, query_param_nul_rejected)
{
    ok("GET /?a=x%00y&b=%zz HTTP/1.1\r\n\r\n");
    cr_assert_null(http_query_param(&req, "a", 0));
    char *v = http_query_param(&req, "b", 0);
    cr_assert_str_eq(v, "%zz");
    free(v);
}

Test(http, query_fragment_dropped)
{
    ok("GET /p?a=1#frag HTTP/1.1\r\n\r\n");
    cr_assert(MEMEQ(req.path, req.path_len, "/p"));
    cr_assert(MEMEQ(req.query, req.query_len, "a=1"));
}

Test(http, cookies)
{
    ok("GET / HTTP/1.1\r\nCookie: a=1; sse_token=abc==; b=\"quoted v\"\r\n"
       "X: y\r\ncookie: late=yes;c=3\r\n\r\n");
    char *v;
    v = http_cookie(&req, "a");
    cr_assert_str_eq(v, "1");
    free(v);
    v = http_cookie(&req, "sse_token");
    cr_assert_str_eq(v, "abc==");
    free(v);
    v = http_cookie(&req, "b");
    cr_assert_str_eq(v, "quoted v");
    free(v);
    v = http_cookie(&req, "late");
    cr_assert_str_eq(v, "yes");
    free(v);
    v = http_cookie(&req, "c");
    cr_assert_str_eq(v, "3");
    free(v);
    cr_assert_null(http_cookie(&req, "sse"));
    cr_assert_null(http_cookie(&req, "token"));
    cr_assert_null(http_cookie(&req, "missing"));
}

Test(http, cookie_first_wins_and_empty)
{
    ok("GET / HTTP/1.1\r\nCookie: x=; y=1; y=2\r\nCookie: y=3\r\n\r\n");
    char *v = http_cookie(&req, "x");
    cr_assert_str_eq(v, "");
    free(v);
    v = http_cookie(&req, "y");
    cr_assert_str_eq(v, "1");
    free(v);
}

Test(http, no_cookie_header)
{
    ok("GET / HTTP/1.1\r\n\r\n");
    cr_assert_null(http_cookie(&req, "a"));
}

Test(http, reasons)
{
    cr_assert_str_eq(http_reason(200), "OK");
    cr_assert_str_eq(http_reason(400), "Bad Request");
    cr_assert_str_eq(http_reason(413), "Content Too Large");
    cr_assert_str_eq(http_reason(431), "Request Header Fields Too Large");
    cr_assert_str_eq(http_reason(999), "Unknown");
}

/* Feeds text to one reader in pieces of step bytes, as reads from a socket would. */
static int feed(http_reader_t *r, char *b, size_t *len, const char *text, size_t step, int *st)
{
    size_t n = strlen(text), at = 0;
    int rc = HTTP_NEED_MORE;
    while (at < n && rc == HTTP_NEED_MORE) {
        size_t k = n - at < step ? n - at : step;
        memcpy(b + *len, text + at, k);
        *len += k;
        at += k;
        uint32_t before = r->parsed;
        rc = http_reader_parse(r, b, len, &req, st);
        /* Each byte is parsed once: the parser never goes back over what it took. */
        if (rc == HTTP_NEED_MORE) cr_assert_geq(r->parsed, before);
    }
    return rc;
}

Test(http_reader, byte_by_byte_head_parses_each_byte_once)
{
    static char head[9000];
    int n = snprintf(head, sizeof head, "GET /events?type=a HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; n < 8000; i++) n += snprintf(head + n, sizeof head - (size_t)n, "X-H%d: %0200d\r\n", i, i);
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    http_limits_t big = {.max_header_bytes = 8192, .max_body_bytes = 64};
    http_reader_t r;
    http_reader_init(&r, &big);
    size_t len = 0;
    int st;
    cr_assert_eq(feed(&r, buf, &len, head, 1, &st), HTTP_COMPLETE);
    cr_assert_eq(r.parsed, (uint32_t)n, "the parser took %u of %d bytes", r.parsed, n);
    cr_assert(MEMEQ(req.path, req.path_len, "/events"));
    cr_assert_gt(req.nheaders, 30);
}

Test(http_reader, chunked_body_one_byte_at_a_time_is_joined_and_framing_dropped)
{
    const char *text = "POST /broadcast HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n";
    http_reader_t r;
    http_reader_init(&r, &lim);
    size_t len = 0, most = 0;
    int st, rc = HTTP_NEED_MORE;
    for (size_t at = 0; text[at] && rc == HTTP_NEED_MORE; at++) {
        buf[len++] = text[at];
        rc = http_reader_parse(&r, buf, &len, &req, &st);
        if (len > most) most = len;
    }
    cr_assert_eq(rc, HTTP_COMPLETE);
    cr_assert(MEMEQ(req.body, req.body_len, "hello world"));
    /* The buffer held the head and the body, never the chunk framing as well. */
    size_t head = strlen("POST /broadcast HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    cr_assert_leq(most, head + strlen("hello world") + 8, "buffer reached %zu bytes", most);
}

Test(http_reader, pipelined_requests_follow_each_other_without_moving)
{
    const char *text = "GET /a HTTP/1.1\r\n\r\nGET /bb HTTP/1.1\r\n\r\nGET /ccc HTTP/1.1\r\n\r\n";
    size_t len = strlen(text);
    memcpy(buf, text, len);
    http_reader_t r;
    http_reader_init(&r, &lim);
    int st;
    const char *want[] = {"/a", "/bb", "/ccc"};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(http_reader_parse(&r, buf, &len, &req, &st), HTTP_COMPLETE);
        cr_assert_eq(req.path_len, strlen(want[i]));
        cr_assert(memcmp(req.path, want[i], req.path_len) == 0);
        http_reader_next(&r);
    }
    cr_assert_eq(http_reader_parse(&r, buf, &len, &req, &st), HTTP_NEED_MORE);
    cr_assert_eq(r.start, (uint32_t)len);
}

Test(http_reader, shift_keeps_a_request_in_progress)
{
    const char *first = "GET /a HTTP/1.1\r\n\r\nGET /second?x=1 HTTP/1.1\r\nHo";
    size_t len = strlen(first);
    memcpy(buf, first, len);
    http_reader_t r;
    http_reader_init(&r, &lim);
    int st;
    cr_assert_eq(http_reader_parse(&r, buf, &len, &req, &st), HTTP_COMPLETE);
    size_t next = http_reader_next(&r);
    cr_assert_eq(http_reader_parse(&r, buf, &len, &req, &st), HTTP_NEED_MORE);
    memmove(buf, buf + next, len - next); /* what a connection does when it needs room */
    len -= next;
    http_reader_shift(&r, next);
    const char *rest = "st: y\r\n\r\n";
    memcpy(buf + len, rest, strlen(rest));
    len += strlen(rest);
    cr_assert_eq(http_reader_parse(&r, buf, &len, &req, &st), HTTP_COMPLETE);
    cr_assert(MEMEQ(req.path, req.path_len, "/second"));
    cr_assert(MEMEQ(req.query, req.query_len, "x=1"));
    cr_assert(MEMEQ(req.headers[0].value, req.headers[0].value_len, "y"));
}

Test(http, http09_request_line_400)
{
    expect_error("GET /login\r\n\r\n", 400);
}

Test(http, http2_request_line_505)
{
    expect_error("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
}

Test(http, http09_request_line_alone_400_at_once)
{
    expect_error("GET /healthz\r\n", 400);
}
