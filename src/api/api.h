/* The endpoints, one file each: what they use of their loop and of the process, and their helpers. */
#ifndef SSE_API_H
#define SSE_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "caps.h"
#include "config.h"
#include "conn.h"
#include "http.h"
#include "log.h"
#include "shard.h"
#include "sub.h"

struct api_ctx;
struct identity;
struct jobs;
struct ratelimit;

/** One file built into the binary (web/ pages and the JS client). */
typedef struct asset {
    const char *path;
    const char *content_type;
    const unsigned char *data;
    size_t len;
} asset_t;

/** What only the process can do for an endpoint; filled by the loop's owner. */
typedef struct api_ops {
    /**
     * From any thread: asks the loop whose context is owner (a stream ticket's
     * owner) to close the stream t names, if it is still open; takes t's reference.
     */
    void (*kick)(struct api_ctx *owner, stream_ticket_t *t);
    /** Asks the process to stop gracefully. */
    void (*request_stop)(struct api_ctx *a);
} api_ops_t;

/**
 * What the endpoints of one loop use: the settings and log, the loop's shard, the
 * process's caps, login checks and built-in files, and the process's own calls.
 * Filled by the loop's owner before it serves; read-only afterwards, but for
 * next_expiry, which only the loop touches.
 */
typedef struct api_ctx {
    const config_t *cfg;
    const log_t *log;
    shard_t *sh;                   /* the loop's hub, store and bus */
    const api_ops_t *ops;
    caps_t *caps;                  /* per-address and per-user caps */
    bool tls;                      /* HTTPS is on: the login cookie is Secure, SameSite=None */
    struct jobs *login_jobs;       /* argon2id checks, off the loops; NULL without hashed accounts */
    const char *login_dummy_hash;  /* checked for unknown names, so they take as long as known ones */
    struct ratelimit *login_limit; /* failed logins per address and username; has its own lock */
    const asset_t *assets;         /* ends with a NULL path */
    int64_t next_expiry;           /* earliest token expiry among the loop's streams (0 = none) */
} api_ctx_t;

/** A handler answers one request on c (or turns c into a stream); a is c's loop's context. */
typedef void (*handler_fn)(api_ctx_t *a, conn_t *c, const http_request_t *req);

/* The endpoints, one file each. */
void api_login(api_ctx_t *a, conn_t *c, const http_request_t *req);
void api_events(api_ctx_t *a, conn_t *c, const http_request_t *req);
void api_broadcast(api_ctx_t *a, conn_t *c, const http_request_t *req);
void api_admin_stop(api_ctx_t *a, conn_t *c, const http_request_t *req);
void api_healthz(api_ctx_t *a, conn_t *c, const http_request_t *req);
/** GET /readyz: 200 when this node can take a publish now, else 503 with the reason. */
void api_readyz(api_ctx_t *a, conn_t *c, const http_request_t *req);
void api_static(api_ctx_t *a, conn_t *c, const http_request_t *req);
void api_notifications(api_ctx_t *a, conn_t *c, const http_request_t *req);
void api_token(api_ctx_t *a, conn_t *c, const http_request_t *req);

/**
 * Collects the distinct names of every "type" query parameter (each may be a comma
 * list) as new strings. Returns how many, or -1 when a name holds CR, LF or NUL, is
 * over 256 bytes, or there are more than SUB_MAX_TYPES.
 */
int events_collect_types(const http_request_t *req, char *types[SUB_MAX_TYPES]);

/**
 * Applies a token's "types" claim to the types a request asked for: 403 when one
 * is not allowed; none asked becomes all the token allows. *strict tells whether
 * the claim exists (then it binds events addressed to the user too). Returns 0 or 403.
 */
int events_apply_claims(const struct identity *id, char *types[SUB_MAX_TYPES], int *ntypes,
                        bool *strict);

#endif
