/* The server's shared, thread-safe context: configuration, workers, the event bus. */
#ifndef SSE_SERVER_H
#define SSE_SERVER_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "api.h"
#include "bus.h"
#include "config.h"
#include "caps.h"
#include "frame.h"
#include "log.h"

struct worker;

/**
 * Everything threads share. Created by main(), read-only once workers run except
 * for the atomics and the bus, which has its own lock.
 */
typedef struct server {
    const config_t *cfg;
    const log_t *log;
    struct worker **workers;
    int nworkers;
    bus_t bus;              /* started with server_post_all: it reaches every worker */
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

/**
 * The bus's post (bus_post_fn, arg the server_t): hands a reference to the event
 * frame f to every worker, which fans it out to its own subscribers.
 */
void server_post_all(void *srv, frame_t *f);

#endif
