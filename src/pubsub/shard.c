/* A loop's pub/sub state: streams join its hub, events fanned out to the loop reach them. */
#include "shard.h"

#include "sse.h"

/* The hub's delivery: a stream's owner is its connection. */
static void deliver(void *owner, frame_t *f)
{
    conn_send(owner, f);
}

void shard_init(shard_t *sh, store_t *store, bus_t *bus, int retry_ms)
{
    hub_init(&sh->hub, deliver);
    sh->store = store;
    sh->bus = bus;
    sh->retry = sse_retry_frame(retry_ms);
    sh->last_seen_id = 0;
    sh->store_held = false;
}

void shard_free(shard_t *sh)
{
    hub_free(&sh->hub);
    frame_unref(sh->retry);
}

bool shard_begin_stream(shard_t *sh, conn_t *c, sub_t *sub)
{
    c->sub = sub; /* freed with the connection in any case */
    if (!conn_begin_stream(c, sh->retry)) return false;
    hub_add(&sh->hub, sub);
    return true;
}

void shard_publish(shard_t *sh, frame_t *f)
{
    sh->last_seen_id = f->id;
    hub_publish(&sh->hub, f);
}
