/* Building HTTP responses: status line, CORS, keep-alive, JSON bodies. */
#ifndef SSE_RESPOND_H
#define SSE_RESPOND_H

#include <jansson.h>
#include <stddef.h>

#include "conn.h"
#include "http.h"

/**
 * Queues a whole response on c. req may be NULL (parse errors): then no CORS and
 * the connection closes after it. extra holds whole header lines ("Name: v\r\n")
 * or is NULL. Error statuses from the parser close the connection; others follow
 * the request's keep-alive.
 */
void respond(conn_t *c, const http_request_t *req, int status, const char *content_type,
             const char *body, size_t body_len, const char *extra);

/** Responds with a JSON value (compact, always valid JSON) and takes the reference. */
void respond_json(conn_t *c, const http_request_t *req, int status, json_t *value);

/** Responds {"error": msg}. */
void respond_error(conn_t *c, const http_request_t *req, int status, const char *msg);

#endif
