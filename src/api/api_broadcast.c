/* POST /broadcast: a publisher's event, validated, then published to every loop. */
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "auth.h"
#include "auth_request.h"
#include "log.h"
#include "publish.h"
#include "respond.h"
#include "sse.h"

/* A routing field: absent or null gives "", a string must be a safe name; else NULL. */
static const char *routing_field(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return "";
    if (!json_is_string(v)) return NULL;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    return sse_field_ok(s, n) && n <= SSE_MAX_NAME ? s : NULL;
}

void api_broadcast(api_ctx_t *a, conn_t *c, const http_request_t *req)
{
    identity_t id;
    if (auth_request(a->cfg, req, time(NULL), 1, &id)) {
        respond_error(c, req, 401, "a valid Bearer token is required");
        return;
    }
    identity_free(&id);
    if (id.role < ROLE_PUBLISHER) {
        respond_error(c, req, 403, "this account may not publish");
        return;
    }
    json_error_t jerr;
    json_t *body = json_loadb(req->body, req->body_len, 0, &jerr);
    json_t *content = json_object_get(body, "content");
    if (!json_is_object(body) || !json_is_string(content)) {
        json_decref(body);
        respond_error(c, req, 400, "body must be JSON with a string \"content\"");
        return;
    }
    const char *type = routing_field(body, "type");
    const char *user = routing_field(body, "user");
    if (!type || !user) {
        json_decref(body);
        respond_error(c, req, 400, "\"type\" and \"user\" must be strings of at most 256 bytes without CR, LF or NUL");
        return;
    }
    publish_submit(a->sh, c, req, type, user, json_string_value(content), json_string_length(content),
                   id.username);
    json_decref(body);
}
