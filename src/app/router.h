/* Routing: method and path to a handler; CORS preflight; 404 and 405. */
#ifndef SSE_ROUTER_H
#define SSE_ROUTER_H

#include "conn.h"
#include "http.h"
#include "sub.h"
#include <stdbool.h>

/** A handler answers one request on c (or turns c into a stream). */
typedef void (*handler_fn)(conn_t *c, const http_request_t *req);

/** Answers req: OPTIONS on any path gets 204, unknown paths 404, wrong methods 405. */
void router_dispatch(conn_t *c, const http_request_t *req);

/* The endpoints, one file each. */
void api_login(conn_t *c, const http_request_t *req);
void api_events(conn_t *c, const http_request_t *req);
void api_broadcast(conn_t *c, const http_request_t *req);
void api_admin_stop(conn_t *c, const http_request_t *req);
void api_healthz(conn_t *c, const http_request_t *req);
void api_static(conn_t *c, const http_request_t *req);
void api_notifications(conn_t *c, const http_request_t *req);
void api_token(conn_t *c, const http_request_t *req);

/**
 * Collects the distinct names of every "type" query parameter (each may be a comma
 * list) as new strings. Returns how many, or -1 when a name holds CR, LF or NUL, is
 * over 256 bytes, or there are more than SUB_MAX_TYPES.
 */
int events_collect_types(const http_request_t *req, char *types[SUB_MAX_TYPES]);

struct identity;

/**
 * Applies a token's "types" claim to the types a request asked for: 403 when one
 * is not allowed; none asked becomes all the token allows. *strict tells whether
 * the claim exists (then it binds events addressed to the user too). Returns 0 or 403.
 */
int events_apply_claims(const struct identity *id, char *types[SUB_MAX_TYPES], int *ntypes,
                        bool *strict);

#endif
