/* The server's shared, thread-safe context: configuration, workers, the event bus. */
#ifndef SSE_SERVER_H
#define SSE_SERVER_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "caps.h"
#include "log.h"

struct worker;

/** One file built into the binary (web/ pages and the JS client). */
typedef struct asset {
    const char *path;
    const char *content_type;
    const unsigned char *data;
    size_t len;
} asset_t;

/**
 * Publishing: ids are given and frames posted to every worker under one lock, so
 * every worker sees events in id order.
 */
typedef struct bus {
    pthread_mutex_t mu;
    uint64_t last_id;
} bus_t;

/**
 * Everything threads share. Created by main(), read-only once workers run except
 * for the atomics and the bus, which has its own lock.
 */
typedef struct server {
    const config_t *cfg;
    const log_t *log;
    struct worker **workers;
    int nworkers;
    bus_t bus;
    int max_conns;
    atomic_int nconns;
    atomic_int stopping;
    struct ev_loop *main_loop;
    ev_async *stop_request; /* wakes main() to begin a graceful stop */
    const asset_t *assets;  /* ends with a NULL path */
    struct store *store;    /* the history; NULL when SSE_DB=off */
    bool tls;               /* HTTPS is on; set before the workers start, never changed */
    pthread_mutex_t tls_mu; /* guards tls_ctx, which SIGHUP replaces */
    void *tls_ctx;          /* SSL_CTX * when HTTPS is on; read only under tls_mu */
    caps_t caps;            /* per-address and per-user caps */
    struct jobs *login_jobs;        /* argon2id checks, off the loops; NULL without hashed accounts */
    char *login_dummy_hash;         /* checked for unknown names, so they take as long as known ones */
    struct ratelimit *login_limit;  /* failed logins per address and username; has its own lock */
} server_t;

/** The steps of a graceful stop, in srv->stopping (see worker_wake). */
enum { STOP_DRAIN = 1, STOP_CLOSE = 2 };
/** Seconds a stopping worker lets its connections take their last bytes. */
#define STOP_GRACE 2.0

/** Asks main() to stop the server gracefully; callable from any thread. */
void server_request_stop(server_t *srv);

struct frame;

/**
 * Posts a reference to an encoded event to every worker, which fans it out to its
 * own subscribers. Callers post in id order (under the bus lock, or from the
 * store's writer thread), so every worker sees events in that order.
 */
void bus_fanout(server_t *srv, struct frame *f);

/**
 * Publishes one event: gives it the next id, encodes it once and posts the frame
 * to every worker. type and user may be NULL or empty. Returns the id.
 */
uint64_t bus_publish(server_t *srv, const char *type, const char *user, const char *content,
                     size_t content_len);

#endif
