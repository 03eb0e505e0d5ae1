/* Fuzzes the JSON bodies of POST /login and POST /broadcast as their handlers read them. */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "auth.h"
#include "config.h"
#include "fuzz_check.h"
#include "sse.h"

#define MAX_NAME 256 /* as in api_broadcast.c */

/* api_login.c: a string member, "" when absent or null, NULL for any other JSON type. */
static const char *opt_string(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return "";
    return json_string_value(v);
}

/* api_broadcast.c: absent or null gives "", a string must be a safe name; else NULL. */
static const char *routing_field(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return "";
    if (!json_is_string(v)) return NULL;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    return sse_field_ok(s, n) && n <= MAX_NAME ? s : NULL;
}

static void login_body(json_t *body)
{
    account_t accounts[] = {
        {.username = (char *)"alice", .password = (char *)"secret", .role = ROLE_PUBLISHER},
    };
    config_t cfg = {.app_key = (char *)"fuzz-app-key", .accounts = accounts, .naccounts = 1};
    const char *user = json_is_object(body) ? opt_string(body, "username") : NULL;
    const char *pass = json_is_object(body) ? opt_string(body, "password") : NULL;
    const char *id = json_is_object(body) ? opt_string(body, "id") : NULL;
    if (!user || !pass || !id) return;
    const account_t *acct = auth_check_password(&cfg, user, pass);
    FUZZ_CHECK(!acct || (strcmp(user, "alice") == 0 && strcmp(pass, "secret") == 0));
}

static void broadcast_body(json_t *body)
{
    json_t *content = json_object_get(body, "content");
    if (!json_is_object(body) || !json_is_string(content)) return;
    const char *type = routing_field(body, "type");
    const char *user = routing_field(body, "user");
    if (!type || !user) return;
    FUZZ_CHECK(sse_field_ok(type, strlen(type)) && sse_field_ok(user, strlen(user)));
    const char *text = json_string_value(content);
    size_t len = json_string_length(content);
    uint64_t id = len * 2654435761u; /* varies the id width without more input */
    frame_t *f = sse_encode(id, type, user, text, len);
    fuzz_check_frame(f, id, type, user, text, len);
    frame_unref(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *body = json_loadb((const char *)data, size, 0, &jerr);
    login_body(body);
    broadcast_body(body);
    json_decref(body);
    return 0;
}
