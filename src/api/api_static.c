/* Built-in files (the example page, the JS client) and the health check. */
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
