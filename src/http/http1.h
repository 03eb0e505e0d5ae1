/* HTTP/1.1 on a connection: reading and parsing its requests in order, within the answers' bound. */
#ifndef SSE_HTTP1_H
#define SSE_HTTP1_H

#include <stdbool.h>

#include "conn.h"
#include "http.h"

/** Answers waiting on a request connection, in bytes, past which its requests are not read. */
#define HTTP1_ANSWER_BYTES (256 * 1024)
/** Answers in preparation on one connection at most; past it its requests are not read. */
#define HTTP1_MAX_SLOTS 64

/** Answers one parsed request on c (or turns c into a stream); the route table. */
typedef void (*http1_dispatch_fn)(conn_t *c, const http_request_t *req);

/**
 * The connection's on_readable: reads what the client sent into c's request buffer
 * (at most head + body limits + 4 KiB), parses it with lim's limits and hands each
 * complete request, in order, to dispatch, while the answers waiting on c stay
 * under their bound. A malformed request is answered (400, 413, 431, 501, 505) and
 * the connection closes after it. After a half-close (EOF) the complete requests
 * it sent are answered before it closes; nothing is read after a request without
 * keep-alive. Keeps c's request and idle deadlines.
 */
void http1_read(conn_t *c, const http_limits_t *lim, http1_dispatch_fn dispatch);

/**
 * The connection's on_output: pauses reading while the answers waiting on c are
 * over their bound (or a parked request waits), resumes it when they drain, with
 * the idle deadline while paused. Requests already buffered are parsed on the
 * next loop round, not here (the caller may be in the middle of a write or a fill).
 */
void http1_update_reading(conn_t *c);

/** The connection's on_head_timeout: a request that began gets 408 (true); else false. */
bool http1_head_timeout(conn_t *c);

#endif
