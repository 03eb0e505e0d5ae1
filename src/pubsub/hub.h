/* The subscription index of one loop and the fan-out of frames to matching subs. */
#ifndef SSE_HUB_H
#define SSE_HUB_H

#include <stddef.h>

#include "frame.h"
#include "strmap.h"
#include "sub.h"

/** Called for each sub that a published frame must reach. */
typedef void (*hub_deliver_fn)(void *owner, frame_t *frame);

/**
 * The index: every sub, subs without a type filter, subs by type, subs by user.
 * Routing (as goSSE): a frame with a user reaches that user's subs whatever their
 * types; else a frame with a type reaches subs of that type and unfiltered subs;
 * else every sub. Publishing walks only the lists that can match.
 */
typedef struct hub {
    list_node_t all;
    list_node_t unfiltered;
    strmap_t by_type; /* type -> hub_list_t */
    strmap_t by_user; /* user -> hub_list_t */
    size_t nsubs;
    hub_deliver_fn deliver;
    void *walking; /* the keyed list hub_publish() is walking: not freed under the walk */
} hub_t;

void hub_init(hub_t *h, hub_deliver_fn deliver);

/** Frees the index; subs still in it are not freed (their owners do that). */
void hub_free(hub_t *h);

/** Adds a sub to every list it belongs in. */
void hub_add(hub_t *h, sub_t *s);

/** Removes a sub from every list; safe to call during hub_publish() on any sub. */
void hub_remove(hub_t *h, sub_t *s);

/**
 * Calls deliver for every matching sub, in index order. The callback may remove
 * the sub it is given (for example to drop a slow subscriber). Returns the number
 * of deliveries.
 */
size_t hub_publish(hub_t *h, frame_t *f);

/** Calls fn for every sub (fn may remove the sub it is given). */
void hub_for_each(hub_t *h, void (*fn)(sub_t *s, void *arg), void *arg);

#endif
