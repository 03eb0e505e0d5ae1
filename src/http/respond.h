/* Building HTTP responses: status line, CORS, keep-alive, JSON bodies. */
#ifndef SSE_RESPOND_H
#define SSE_RESPOND_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "conn.h"
#include "http.h"

/**
 * What a response to req must carry whatever its body: the CORS lines and whether
 * the connection stays open. Handlers that answer later (after a store commit or
 * read) take it with them; it holds no pointer into the request.
 */
typedef struct reply_meta {
    char cors[1024];
    bool keep_alive;
} reply_meta_t;

/** The reply_meta_t for req (NULL: a parse error, no CORS, close afterwards). */
void reply_meta_init(reply_meta_t *m, const config_t *cfg, const http_request_t *req);

/**
 * A whole response as one new frame (one reference): status line, m's CORS lines,
 * Content-Type when given, Content-Length, Connection: close when the connection
 * will close, extra header lines ("Name: v\r\n", or NULL), the blank line, the
 * body. Safe on any thread.
 */
frame_t *response_frame(const reply_meta_t *m, int status, const char *content_type,
                        const char *body, size_t body_len, const char *extra);

/** response_frame() for a JSON value (compact, ASCII, always valid JSON); takes the reference. */
frame_t *response_json_frame(const reply_meta_t *m, int status, json_t *value);

/**
 * Queues a whole response on c. req may be NULL (parse errors): then no CORS and
 * the connection closes after it. Statuses that end a request early (408, 413, 431)
 * and requests without keep-alive close the connection after the response.
 */
void respond(conn_t *c, const http_request_t *req, int status, const char *content_type,
             const char *body, size_t body_len, const char *extra);

/** Responds with a JSON value (compact, always valid JSON) and takes the reference. */
void respond_json(conn_t *c, const http_request_t *req, int status, json_t *value);

/** Responds {"error": msg}. */
void respond_error(conn_t *c, const http_request_t *req, int status, const char *msg);

#endif
