/* One subscription: who it belongs to, which types it asked for, and its places in the hub. */
#ifndef SSE_SUB_H
#define SSE_SUB_H

#include <stdbool.h>
#include <stdint.h>

#include "list.h"

struct sub;

/** A sub's membership of one hub list; the back pointer finds the sub from the node. */
typedef struct hub_node {
    list_node_t link;
    struct sub *sub;
} hub_node_t;

/**
 * A subscriber's filter and index nodes, in one allocation. The owner (a stream
 * connection) is an opaque pointer the hub hands back on delivery.
 */
typedef struct sub {
    void *owner;
    char *user;      /* NULL when the stream has no user id */
    char **types;    /* ntypes names; none means every type (unless strict) */
    uint8_t ntypes;  /* at most SUB_MAX_TYPES */
    bool strict;     /* the token limits types: events for its user outside them are not sent */
    bool replaying;  /* catching up from the history: live events come from there until done */
    uint32_t exp;    /* the token's expiry (unix time, until 2106); 0 = none */
    uint64_t floor;  /* live events with an id at or below this are not delivered (resume point) */
    hub_node_t all;  /* in the hub's list of every sub */
    hub_node_t user_node;
    hub_node_t nodes[]; /* one per type, or one in the unfiltered list */
} sub_t;

#define SUB_MAX_TYPES 32

/**
 * A new subscription for owner. user may be NULL or empty (no user); types holds
 * ntypes non-empty names (copied once each: a repeated name is kept once, so the
 * sub joins each hub list once). With strict, the types bind events
 * addressed to the user too, and zero types means no typed event at all. Not yet
 * in any hub.
 */
sub_t *sub_new(void *owner, const char *user, const char *const *types, uint32_t ntypes,
               bool strict);

/** True when the sub asked for type (or for every type). */
bool sub_wants_type(const sub_t *s, const char *type);

/** Frees a sub that is in no hub. */
void sub_free(sub_t *s);

#endif
