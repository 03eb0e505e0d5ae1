/* Built-in files (the example page, the JS client) and the health check. */
#include <string.h>

#include "respond.h"
#include "router.h"
#include "worker.h"

void api_static(conn_t *c, const http_request_t *req)
{
    for (const asset_t *a = worker_of(c)->srv->assets; a && a->path; a++) {
        if (req->path_len == strlen(a->path) && memcmp(req->path, a->path, req->path_len) == 0) {
            respond(c, req, 200, a->content_type, (const char *)a->data, a->len, NULL);
            return;
        }
    }
    respond_error(c, req, 404, "not found");
}

void api_healthz(conn_t *c, const http_request_t *req)
{
    respond_json(c, req, 200, json_pack("{s:s}", "status", "ok"));
}
