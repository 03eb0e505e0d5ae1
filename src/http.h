/* HTTP/1.1 requests on the http-parser library: stateless, zero-copy, bounded. */
#ifndef SSE_HTTP_H
#define SSE_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_MAX_HEADERS 64

enum { HTTP_NEED_MORE = -2, HTTP_ERROR = -1 };

typedef struct http_header {
    const char *name, *value;
    size_t name_len, value_len;
} http_header_t;

/** A parsed request; every pointer points into the caller's buffer. */
typedef struct http_request {
    int method; /* enum http_method from http_parser.h */
    const char *path, *query;
    size_t path_len, query_len;
    http_header_t headers[HTTP_MAX_HEADERS];
    int nheaders;
    const char *body;
    size_t body_len;
    bool keep_alive;
} http_request_t;

typedef struct http_limits {
    size_t max_header_bytes;
    size_t max_body_bytes;
} http_limits_t;

/**
 * Parses one request from the start of buf (len bytes). Returns the bytes it
 * used (the next pipelined request starts there), HTTP_NEED_MORE when the request
 * is not complete yet, or HTTP_ERROR with *status set to the answer to give before
 * closing (400 malformed, 413 body too large, 431 head too large, 501 unknown
 * method). buf may be rewritten in place when the body is chunked, and only then.
 */
int http_parse_request(char *buf, size_t len, const http_limits_t *lim, http_request_t *req,
                       int *status);

/** The value of the first header named name (any case), or NULL; *len gets its length. */
const char *http_header(const http_request_t *req, const char *name, size_t *len);

/**
 * Finds the idx-th (from 0) query parameter called name and %-decodes its value
 * into a new NUL-terminated string. '+' stays '+': tokens in query strings are
 * base64, where '+' is data. Returns NULL when absent or when the value decodes to
 * a NUL byte.
 */
char *http_query_param(const http_request_t *req, const char *name, int idx);

/** The value of cookie name from the Cookie headers as a new string, or NULL. */
char *http_cookie(const http_request_t *req, const char *name);

/** The reason phrase for a status code. */
const char *http_reason(int status);

#endif
