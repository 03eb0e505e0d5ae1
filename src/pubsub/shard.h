/* One loop's part of the pub/sub: its hub, the newest id it has fanned out, its hold on the store. */
#ifndef SSE_SHARD_H
#define SSE_SHARD_H

#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "conn.h"
#include "frame.h"
#include "hub.h"
#include "store.h"
#include "sub.h"

/**
 * What publishing, replay and the streams of one loop share. Used on that loop
 * only, but for store and bus, which are the process's.
 */
typedef struct shard {
    hub_t hub;             /* this loop's streams, delivered to with conn_send */
    store_t *store;        /* the history; NULL when SSE_DB=off */
    bus_t *bus;            /* ids and fan-out when there is no store; fan-out after a commit */
    frame_t *retry;        /* "retry: ms", the first bytes of every stream */
    uint64_t last_seen_id; /* the newest event this loop has fanned out */
    bool store_held;       /* publishes were queued on the store this round: wake its writer */
} shard_t;

/** Starts a shard: an empty hub, store and bus shared, streams told to retry after retry_ms. */
void shard_init(shard_t *sh, store_t *store, bus_t *bus, int retry_ms);

/** Frees the hub (its streams are freed by their connections) and the retry frame. */
void shard_free(shard_t *sh);

/**
 * Turns c into an event stream for sub (called by the events handler): its output
 * goes on with the retry line, and sub joins the hub. Returns false when the
 * connection is already ending (sub is then not in the hub). Either way sub is
 * c's from now on and freed with it.
 */
bool shard_begin_stream(shard_t *sh, conn_t *c, sub_t *sub);

/** On the shard's loop: delivers a fanned-out event to every matching stream and notes its id. */
void shard_publish(shard_t *sh, frame_t *f);

#endif
