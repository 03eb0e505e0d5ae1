/* The publish bus: one lock orders the ids, and each event's bytes are shared by every loop. */
#include "bus.h"

#include "sse.h"

void bus_init(bus_t *b, bus_post_fn post, void *arg)
{
    pthread_mutex_init(&b->mu, NULL);
    b->last_id = 0;
    b->post = post;
    b->arg = arg;
}

void bus_free(bus_t *b)
{
    pthread_mutex_destroy(&b->mu);
}

void bus_fanout(bus_t *b, frame_t *f)
{
    b->post(b->arg, f);
}

uint64_t bus_publish(bus_t *b, const char *type, const char *user, const char *content,
                     size_t content_len)
{
    pthread_mutex_lock(&b->mu);
    uint64_t id = ++b->last_id;
    /* Encoded once under the lock that orders ids: every loop shares these bytes. */
    frame_t *f = sse_encode(id, type, user, content, content_len);
    bus_fanout(b, f);
    pthread_mutex_unlock(&b->mu);
    frame_unref(f);
    return id;
}
