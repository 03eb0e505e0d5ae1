/* POST /token: a backend mints a subscriber token for one of its users. */
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "auth.h"
#include "auth_request.h"
#include "log.h"
#include "respond.h"
#include "sse.h"

#define TTL_DEFAULT 3600
#define TTL_MAX 86400
/* Checks the "types" member: absent gives -1; an array of up to 32 safe names gives its size. */
static int read_types(json_t *body, const char *types[AUTH_MAX_TYPES])
{
    json_t *a = json_object_get(body, "types");
    if (!a || json_is_null(a)) return -1;
    if (!json_is_array(a) || json_array_size(a) > AUTH_MAX_TYPES) return -2;
    int n = 0;
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *t = json_array_get(a, i);
        if (!json_is_string(t) || json_string_length(t) == 0 || json_string_length(t) > SSE_MAX_NAME ||
            !sse_field_ok(json_string_value(t), json_string_length(t)) ||
            strchr(json_string_value(t), ','))
            return -2;
        types[n++] = json_string_value(t);
    }
    return n;
}

void api_token(api_ctx_t *a, conn_t *c, const http_request_t *req)
{
    identity_t id;
    if (auth_request(a->cfg, req, time(NULL), 1, &id)) {
        respond_error(c, req, 401, "a valid Bearer token is required");
        return;
    }
    enum role role = id.role;
    char account[sizeof id.username];
    memcpy(account, id.username, sizeof account);
    identity_free(&id);
    if (role < ROLE_PUBLISHER) {
        respond_error(c, req, 403, "this account may not mint tokens");
        return;
    }
    json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
    json_t *user = json_object_get(body, "user"), *ttlv = json_object_get(body, "ttl");
    const char *types[AUTH_MAX_TYPES];
    int ntypes = json_is_object(body) ? read_types(body, types) : -2;
    json_int_t ttl = ttlv ? (json_is_integer(ttlv) ? json_integer_value(ttlv) : -1) : TTL_DEFAULT;
    if (!json_is_object(body) || !json_is_string(user) || json_string_length(user) == 0 ||
        json_string_length(user) > SSE_MAX_NAME ||
        !sse_field_ok(json_string_value(user), json_string_length(user)) || ntypes == -2 ||
        ttl < 1 || ttl > TTL_MAX) {
        json_decref(body);
        respond_error(c, req, 400, "body must be JSON {\"user\": non-empty string, \"types\": [names], "
                                   "\"ttl\": seconds from 1 to 86400}");
        return;
    }
    time_t now = time(NULL);
    token_claims_t tc = {.username = account, .sub = json_string_value(user), .types = types,
                         .ntypes = ntypes, .role = ROLE_SUBSCRIBER, .iat = now, .exp = now + ttl};
    char *jwt = auth_issue_token(a->cfg, &tc);
    if (!jwt) {
        json_decref(body);
        respond_error(c, req, 500, "could not sign a token");
        return;
    }
    char u[64];
    log_info(a->log, "token account=%s user=%s ttl=%lld", account,
             log_clean(json_string_value(user), u, sizeof u), (long long)ttl);
    respond_json(c, req, 201, json_pack("{s:s, s:I}", "token", jwt, "expires", (json_int_t)tc.exp));
    free(jwt);
    json_decref(body);
}
