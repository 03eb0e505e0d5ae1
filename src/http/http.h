/* HTTP/1.1 requests on the http-parser library: incremental, zero-copy, bounded. */
#ifndef SSE_HTTP_H
#define SSE_HTTP_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 64

enum { HTTP_NEED_MORE = -2, HTTP_ERROR = -1, HTTP_COMPLETE = 1 };

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

/** A token of the request: an offset into the connection's buffer and a length. */
typedef struct http_span {
    uint32_t off, len;
} http_span_t;

/**
 * The state of one connection's request parsing, kept between reads so that each
 * byte is parsed once (cost linear in the bytes received, however they are split).
 * Positions are offsets into the caller's buffer, which may move (realloc) between
 * calls. Allocate it only while a connection reads requests: it is about 1 KiB.
 */
typedef struct http_reader {
    http_parser parser;
    const http_limits_t *lim;
    char *base;        /* the buffer, during one http_reader_parse() call */
    uint32_t start;    /* where the current request begins */
    uint32_t parsed;   /* bytes the parser has taken */
    uint32_t head_end; /* end of the last token of the head seen so far */
    http_span_t url;
    http_span_t name[HTTP_MAX_HEADERS], value[HTTP_MAX_HEADERS];
    uint16_t nheaders;
    http_span_t body;   /* starts right after the head; a chunked body is joined here in place */
    bool in_value;      /* the last header callback was a value */
    bool headers_done;  /* the head is complete */
    bool body_started;  /* body.off is known (set when the head ends) */
    bool complete;      /* the whole message is complete */
    bool failed;        /* an error was returned: nothing more is parsed */
    int status;         /* error status chosen by a callback */
} http_reader_t;

/** Starts a reader whose first request begins at offset 0 of the buffer. */
void http_reader_init(http_reader_t *r, const http_limits_t *lim);

/**
 * Parses the bytes buf[r->parsed, *len) that arrived since the last call (buf holds
 * every byte from the current request's start on). Returns HTTP_COMPLETE with req
 * filled (pointers into buf, valid until buf changes), HTTP_NEED_MORE, or
 * HTTP_ERROR with *status set to the answer to give before closing (400 malformed
 * or HTTP/0.9, 413 body too large, 431 head too large, 501 unknown method, 505
 * version). While a chunked body arrives, its framing is dropped as it is parsed:
 * *len may shrink (the chunks are joined in place), so the buffer never holds more
 * than the head and the body. After HTTP_COMPLETE, call http_reader_next() before
 * parsing again.
 */
int http_reader_parse(http_reader_t *r, char *buf, size_t *len, http_request_t *req, int *status);

/** After HTTP_COMPLETE: fills req again for the same request (buf may have moved). */
void http_reader_request(const http_reader_t *r, const char *buf, http_request_t *req);

/** Moves on to the next pipelined request; returns the offset where it begins. */
size_t http_reader_next(http_reader_t *r);

/**
 * The caller dropped the first delta bytes of its buffer (all before the current
 * request's start): shifts every offset by delta.
 */
void http_reader_shift(http_reader_t *r, size_t delta);

/**
 * Parses one request from the start of buf (len bytes) in one go, for callers that
 * hold a whole input. Returns the bytes it used (the next pipelined request starts
 * there), HTTP_NEED_MORE or HTTP_ERROR as http_reader_parse() does. buf is
 * rewritten in place when the body is chunked, and only when the request is complete.
 */
int http_parse_request(char *buf, size_t len, const http_limits_t *lim, http_request_t *req,
                       int *status);

/** The value of the first header named name (any case), or NULL; *len gets its length. */
const char *http_header(const http_request_t *req, const char *name, size_t *len);

/**
 * True when the request's Content-Type names the media type type ("application/json"),
 * compared without regard to case, with or without parameters ("; charset=utf-8").
 * False when the header is absent or names another type.
 */
bool http_content_type_is(const http_request_t *req, const char *type);

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
