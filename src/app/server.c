/* The stop request, and the bus's way to every worker: the only paths where threads meet. */
#include "server.h"

#include "worker.h"

void server_request_stop(server_t *srv)
{
    ev_async_send(srv->main_loop, srv->stop_request);
}

void server_post_all(void *arg, frame_t *f)
{
    server_t *srv = arg;
    for (int i = 0; i < srv->nworkers; i++) worker_post(srv->workers[i], frame_ref(f));
}
