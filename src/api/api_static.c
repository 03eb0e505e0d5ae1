/* Built-in files (the example page, the JS client), the health check and the readiness check. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "respond.h"

void api_static(api_ctx_t *a, conn_t *c, const http_request_t *req)
{
    for (const asset_t *f = a->assets; f && f->path; f++) {
        if (req->path_len == strlen(f->path) && memcmp(req->path, f->path, req->path_len) == 0) {
            respond(c, req, 200, f->content_type, (const char *)f->data, f->len, NULL);
            return;
        }
    }
    respond_error(c, req, 404, "not found");
}

void api_healthz(api_ctx_t *a, conn_t *c, const http_request_t *req)
{
    (void)a;
    respond_json(c, req, 200, json_pack("{s:s}", "status", "ok"));
}

void api_readyz(api_ctx_t *a, conn_t *c, const http_request_t *req)
{
    store_t *st = a->sh->store;
    const char *why = st ? st->ops->unready(st) : NULL;
    if (why) { /* a load balancer sends publishes elsewhere until this clears */
        json_t *body = json_pack("{s:s,s:s}", "status", "unready", "reason", why);
        char *text = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII);
        json_decref(body);
        respond(c, req, 503, "application/json", text, strlen(text), "Retry-After: 1\r\n");
        free(text);
        return;
    }
    respond_json(c, req, 200, json_pack("{s:s}", "status", "ready"));
}
