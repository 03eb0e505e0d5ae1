/* Publishing an event: through the history store when there is one, then to every loop. */
#ifndef SSE_PUBLISH_H
#define SSE_PUBLISH_H

#include <stddef.h>

#include "conn.h"
#include "http.h"
#include "shard.h"
#include "store.h"

/**
 * Publishes a validated event for the request req on c (whose loop's shard is sh)
 * and answers it: 201 with {"id": N} once the event is durable (with a store: after
 * its commit; live delivery happens then too, in id order), 503 when the store
 * cannot keep it. type and user may be "" for none. account names the publisher
 * in the log.
 */
void publish_submit(shard_t *sh, conn_t *c, const http_request_t *req, const char *type,
                    const char *user, const char *content, size_t content_len, const char *account);

/**
 * The store's feed (store_feed_fn, bus a bus_t): encodes ev once and posts the frame to
 * every loop through the bus. The store calls it in id order on one thread, so every
 * loop sees events in that order.
 */
void publish_feed(void *bus, const store_event_t *ev);

#endif
