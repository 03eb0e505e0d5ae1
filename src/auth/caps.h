/* Caps shared by every worker: connections per client address, streams per user. */
#ifndef SSE_CAPS_H
#define SSE_CAPS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "strmap.h"

/**
 * A stream's place in its user's list. The registry and the stream's loop both
 * hold it; conn is cleared (under the registry lock) when the stream closes, so a
 * loop told to close it finds out whether it is still open. conn and owner are
 * the caller's (the stream's connection and the loop that holds it), opaque here.
 */
typedef struct stream_ticket {
    atomic_int refs;
    void *conn; /* guarded by the registry lock */
    void *owner;
    struct stream_ticket *next; /* in its user's list, oldest first */
    char *user;
} stream_ticket_t;

typedef struct caps {
    pthread_mutex_t mu;
    int max_per_ip;       /* 0 = off */
    int max_per_user;     /* 0 = off */
    strmap_t per_ip;      /* ip -> count, stored in the value pointer */
    strmap_t per_user;    /* user -> oldest stream_ticket_t */
} caps_t;

void caps_init(caps_t *l, int max_per_ip, int max_per_user);
void caps_free(caps_t *l);

/** Counts a new connection from ip; false (nothing counted) when ip is at its cap. */
bool caps_ip_enter(caps_t *l, const char *ip);

/** Uncounts a connection counted by caps_ip_enter(). */
void caps_ip_leave(caps_t *l, const char *ip);

/**
 * Registers a new stream of user (non-empty), its connection c held by owner, and
 * returns its ticket (NULL when the cap is off). When the user now has more streams
 * than the cap, *evict gets the ticket of the oldest one (with a reference for the
 * caller) for its owner to close.
 */
stream_ticket_t *caps_stream_open(caps_t *l, const char *user, void *c, void *owner,
                                  stream_ticket_t **evict);

/** Unregisters a closing stream and drops the stream's reference on t. */
void caps_stream_close(caps_t *l, stream_ticket_t *t);

/** The stream's connection if it is still open (NULL otherwise); call on its owner's loop. */
void *caps_ticket_conn(caps_t *l, stream_ticket_t *t);

void caps_ticket_unref(stream_ticket_t *t);

#endif
