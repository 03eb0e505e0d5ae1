/* The publish bus and the stop request: the only paths where threads meet. */
#include <string.h>

#include "server.h"
#include "sse.h"
#include "worker.h"

void server_request_stop(server_t *srv)
{
    ev_async_send(srv->main_loop, srv->stop_request);
}

void bus_fanout(server_t *srv, frame_t *f)
{
    for (int i = 0; i < srv->nworkers; i++) worker_post(srv->workers[i], frame_ref(f));
}

uint64_t bus_publish(server_t *srv, const char *type, const char *user, const char *content,
                     size_t content_len)
{
    pthread_mutex_lock(&srv->bus.mu);
    uint64_t id = ++srv->bus.last_id;
    /* Encoded once under the lock that orders ids: every worker shares these bytes. */
    frame_t *f = sse_encode(id, type, user, content, content_len);
    bus_fanout(srv, f);
    pthread_mutex_unlock(&srv->bus.mu);
    frame_unref(f);
    return id;
}
