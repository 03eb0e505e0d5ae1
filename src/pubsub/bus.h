/* The publish bus: event ids given in order, each event encoded once and posted to every loop. */
#ifndef SSE_BUS_H
#define SSE_BUS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

/**
 * Hands a reference to f to every loop (each takes its own and drops it when the
 * frame is fanned out; the caller keeps its reference). Safe on any thread.
 */
typedef void (*bus_post_fn)(void *arg, frame_t *f);

/**
 * Publishing: ids are given and frames posted to every loop under one lock, so
 * every loop sees events in id order. post reaches the loops (the server's workers).
 */
typedef struct bus {
    pthread_mutex_t mu;
    uint64_t last_id;
    bus_post_fn post;
    void *arg;
} bus_t;

/** Starts a bus whose frames reach the loops through post(arg, frame). */
void bus_init(bus_t *b, bus_post_fn post, void *arg);

void bus_free(bus_t *b);

/**
 * Posts a reference to an encoded event to every loop, which fans it out to its
 * own subscribers. Callers post in id order (under the bus lock, or from the
 * store's writer thread), so every loop sees events in that order.
 */
void bus_fanout(bus_t *b, frame_t *f);

/**
 * Publishes one event: gives it the next id, encodes it once and posts the frame
 * to every loop. type and user may be NULL or empty. Returns the id.
 */
uint64_t bus_publish(bus_t *b, const char *type, const char *user, const char *content,
                     size_t content_len);

#endif
