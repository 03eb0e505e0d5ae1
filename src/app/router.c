/* The route table: one row per endpoint. */
#include "router.h"

#include <http_parser.h>
#include <string.h>

#include "api.h"
#include "respond.h"
#include "worker.h"

typedef struct route {
    int method;
    const char *path;
    handler_fn handler;
} route_t;

static const route_t routes[] = {
    {HTTP_POST, "/login", api_login},
    {HTTP_GET, "/events", api_events},
    {HTTP_POST, "/broadcast", api_broadcast},
    {HTTP_POST, "/admin/stop", api_admin_stop},
    {HTTP_GET, "/healthz", api_healthz},
    {HTTP_GET, "/readyz", api_readyz},
    {HTTP_GET, "/notifications", api_notifications},
    {HTTP_POST, "/token", api_token},
};

static bool path_is(const http_request_t *req, const char *path)
{
    size_t n = strlen(path);
    return req->path_len == n && memcmp(req->path, path, n) == 0;
}

static bool is_asset(const api_ctx_t *api, const http_request_t *req)
{
    for (const asset_t *a = api->assets; a && a->path; a++)
        if (path_is(req, a->path)) return true;
    return false;
}

void router_dispatch(conn_t *c, const http_request_t *req)
{
    api_ctx_t *a = &worker_of(c)->api;
    if (req->method == HTTP_OPTIONS) {
        respond(c, req, 204, NULL, NULL, 0, NULL);
        return;
    }
    bool path_known = false;
    for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
        if (!path_is(req, routes[i].path)) continue;
        path_known = true;
        if (routes[i].method == req->method) {
            routes[i].handler(a, c, req);
            return;
        }
    }
    if (!path_known && is_asset(a, req)) {
        if (req->method == HTTP_GET) {
            api_static(a, c, req);
            return;
        }
        path_known = true;
    }
    if (path_known) {
        const char *allow = "Allow: GET, OPTIONS\r\n";
        for (size_t i = 0; i < ARRAY_LEN(routes); i++)
            if (path_is(req, routes[i].path) && routes[i].method == HTTP_POST)
                allow = "Allow: POST, OPTIONS\r\n";
        const char *body = "{\"error\":\"method not allowed\"}";
        respond(c, req, 405, "application/json", body, strlen(body), allow);
        return;
    }
    respond_error(c, req, 404, "not found");
}
