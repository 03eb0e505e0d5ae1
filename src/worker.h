/* A worker: one thread and its libev loop, owning its connections and its hub shard. */
#ifndef SSE_WORKER_H
#define SSE_WORKER_H

#include <ev.h>
#include <pthread.h>

#include "frame.h"
#include "hub.h"
#include "list.h"
#include "server.h"

typedef struct worker {
    server_t *srv;
    int index;
    struct ev_loop *loop;
    pthread_t thread;
    int listen_fd;
    ev_io accept_w;
    ev_async wake;       /* inbox has frames, or the server is stopping */
    ev_prepare flush_w;  /* writes pending output just before the loop sleeps */
    ev_idle spin_w;      /* keeps the loop polling while output is left for fairness */
    ev_timer sweep_w;    /* request and idle timeouts, once a second */
    ev_timer heartbeat_w;
    pthread_mutex_t inbox_mu;
    frame_t **inbox; /* frames posted by bus_publish(), in id order */
    size_t inbox_len, inbox_cap;
    hub_t hub;
    list_node_t conns;     /* every open connection */
    list_node_t pending;   /* connections with output to write */
    list_node_t closing;   /* closed connections, freed before the loop sleeps */
    list_node_t head_wait; /* reading a request, oldest first */
    list_node_t idle_wait; /* idle keep-alive, oldest first */
    list_node_t linger;    /* answered and half-closed, draining input */
    frame_t *ping;
    frame_t *retry;
    int stopped;
} worker_t;

/**
 * Creates worker index with its own listening socket on host:port (SO_REUSEPORT,
 * so every worker accepts on the same port). *port is updated with the real port
 * when it was 0. Returns NULL with a message in err on failure.
 */
worker_t *worker_new(server_t *srv, int index, const char *host, int *port,
                     char err[SSE_ERR_LEN]);

/** Starts the worker's thread. Returns 0 or SSE_ERR. */
int worker_start(worker_t *w);

/** Wakes the worker to stop: it closes every connection and its thread ends. */
void worker_wake(worker_t *w);

/** Waits for the thread and frees the worker. */
void worker_join_free(worker_t *w);

/** Hands a referenced frame to the worker (from any thread); the worker drops the ref. */
void worker_post(worker_t *w, frame_t *f);

#endif
