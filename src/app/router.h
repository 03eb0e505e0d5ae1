/* Routing: method and path to a handler; CORS preflight; 404 and 405. */
#ifndef SSE_ROUTER_H
#define SSE_ROUTER_H

#include "conn.h"
#include "http.h"

/**
 * Answers req on c (an http1_dispatch_fn) with its worker's endpoint context:
 * OPTIONS on any path gets 204, unknown paths 404, wrong methods 405.
 */
void router_dispatch(conn_t *c, const http_request_t *req);

#endif
