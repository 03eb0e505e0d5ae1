/* Immutable, reference-counted byte frames: an event is encoded once and shared by every reader. */
#ifndef SSE_FRAME_H
#define SSE_FRAME_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/**
 * A frame's bytes never change after frame_new*(). The count is atomic because a
 * published frame is handed to every worker thread. Routing metadata (event id,
 * type and user) travels with the bytes so workers need nothing else.
 */
typedef struct frame {
    atomic_uint refs;
    uint32_t len;      /* bytes in data */
    uint64_t id;       /* event id, 0 for responses and comments */
    const char *type;  /* routing: NULL or a string inside this allocation */
    const char *user;  /* routing: NULL or a string inside this allocation */
    char data[];
} frame_t;

/** A new frame holding a copy of len bytes, with one reference. */
frame_t *frame_new(const void *bytes, size_t len);

/**
 * A frame with room for len bytes (filled by the caller before sharing it) and
 * copies of type and user (either may be NULL) for routing. One reference.
 */
frame_t *frame_alloc(size_t len, const char *type, const char *user);

static inline frame_t *frame_ref(frame_t *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

/** Drops one reference; the frame is freed with the last one. */
void frame_unref(frame_t *f);

#endif
