/* A worker: one thread and its libev loop, owning its connections and its hub shard. */
#ifndef SSE_WORKER_H
#define SSE_WORKER_H

#include <ev.h>
#include <pthread.h>
#include <stdbool.h>

#include "api.h"
#include "common.h"
#include "conn.h"
#include "frame.h"
#include "http.h"
#include "list.h"
#include "server.h"
#include "shard.h"

/** A message for a worker from another thread: an event to fan out, or answers for a connection. */
typedef struct wmsg {
    enum { WMSG_FRAME, WMSG_FILL, WMSG_KICK } kind;
    int flags;      /* FILL: CONN_FILL_* and REPLAY_FILL_* bits (conn_slot_post) */
    uint32_t n;     /* FILL: number of frames */
    conn_slot_t *slot; /* FILL: the place the answers go */
    frame_t *frame;   /* FRAME: the event; FILL with n == 1: the answer */
    frame_t **frames; /* FILL with n > 1: the answers (array freed by the worker) */
    uint64_t arg;     /* FILL of a history page: the last id it covered */
    struct stream_ticket *ticket; /* KICK: the stream to close (the message holds a ref) */
} wmsg_t;

/**
 * The worker composes the layers for its loop, each seeing only its own part:
 * own is its connections' owner (their loop, lists and hooks: a connection points
 * to it, so worker_of() finds the worker), sh its shard of the pub/sub, api what
 * its endpoints use. All three are filled in worker_new.
 */
typedef struct worker {
    conn_owner_t own;
    server_t *srv;
    int index;
    pthread_t thread;
    int listen_fd;
    ev_io accept_w;
    ev_async wake;       /* inbox has frames, or the server is stopping */
    ev_prepare flush_w;  /* writes pending output just before the loop sleeps */
    ev_idle spin_w;      /* keeps the loop polling while output is left for fairness */
    ev_timer sweep_w;    /* request and idle timeouts, once a second */
    ev_timer heartbeat_w;
    pthread_mutex_t inbox_mu;
    wmsg_t *inbox; /* messages from other threads, in the order posted */
    size_t inbox_len, inbox_cap;
    shard_t sh;            /* its hub and what publishing and replay need */
    api_ctx_t api;         /* its endpoints' context; api.next_expiry drives the token sweep */
    http_limits_t lim;     /* request limits, from the configuration */
    frame_t *ping;
    ev_timer stop_w;       /* the last grace period of a stop */
    int stopped;           /* 0, or the step of a stop it has taken (STOP_*) */
} worker_t;

/** The worker that owns c. */
static inline worker_t *worker_of(const conn_t *c)
{
    return container_of(c->own, worker_t, own);
}

/**
 * Creates worker index with its own listening socket on host:port (SO_REUSEPORT,
 * so every worker accepts on the same port). Worker 0 first checks that no other
 * process listens there, unless SSE_REUSE_PORT asks to share the port. *port is
 * updated with the real port when it was 0. Returns NULL with a message in err on
 * failure.
 */
worker_t *worker_new(server_t *srv, int index, const char *host, int *port,
                     char err[SSE_ERR_LEN]);

/** Starts the worker's thread. Returns 0 or pthread_create()'s error number. */
int worker_start(worker_t *w);

/**
 * Wakes the worker for the stop step in srv->stopping: STOP_DRAIN stops accepting
 * and reading requests; STOP_CLOSE delivers what its inbox holds, ends every
 * connection after its output, and ends the thread once they are closed.
 */
void worker_wake(worker_t *w);

/** Asks w (from any thread) to close the stream t names, if still open; takes t's reference. */
void worker_kick(worker_t *w, struct stream_ticket *t);

/** Waits for the thread to end (after worker_wake() during a stop). */
void worker_join(worker_t *w);

/** Frees a joined worker, releasing messages still in its inbox and every connection. */
void worker_free(worker_t *w);

/** Hands a referenced event frame to the worker (from any thread); the worker drops the ref. */
void worker_post(worker_t *w, frame_t *f);

#endif
