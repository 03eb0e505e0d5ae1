/* Authentication: accounts and roles, HS256 tokens on libjwt, goSSE's base64 token wrappers. */
#include "auth.h"

#include <jansson.h>
#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>
#include <strings.h>

#include "b64.h"
#include "common.h"

void identity_free(identity_t *id)
{
    free(id->user_id);
    id->user_id = NULL;
}

const char *auth_role_name(enum role r)
{
    switch (r) {
    case ROLE_SUBSCRIBER: return "subscriber";
    case ROLE_PUBLISHER: return "publisher";
    case ROLE_ADMIN: return "admin";
    default: return "none";
    }
}

/* Compares digests, not strings, so time depends on neither length nor content. */
static int secret_equal(const char *a, const char *b)
{
    unsigned char da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)a, strlen(a), da);
    SHA256((const unsigned char *)b, strlen(b), db);
    return CRYPTO_memcmp(da, db, sizeof da) == 0;
}

const account_t *auth_check_password(const config_t *cfg, const char *user, const char *pass)
{
    const account_t *found = NULL;
    if (!user || !pass || !*user || !*pass) return NULL;
    for (int i = 0; i < cfg->naccounts; i++) { /* no early exit: same work for every name */
        int u = secret_equal(cfg->accounts[i].username, user);
        int p = secret_equal(cfg->accounts[i].password, pass);
        if (u & p) found = &cfg->accounts[i];
    }
    return found;
}

char *auth_issue_token(const config_t *cfg, const char *username, time_t now, time_t exp)
{
    jwt_t *jwt = NULL;
    char *out = NULL;
    if (jwt_new(&jwt)) return NULL;
    if (!jwt_add_grant(jwt, "username", username) && !jwt_add_grant_int(jwt, "iat", (long)now) &&
        !jwt_add_grant_int(jwt, "exp", (long)exp) &&
        !jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)cfg->app_key,
                     (int)strlen(cfg->app_key)))
        out = jwt_encode_str(jwt);
    jwt_free(jwt);
    return out;
}

/* The token's own header must say HS256 before libjwt sees it: the token never picks the alg. */
static int header_is_hs256(const char *tok)
{
    const char *dot = strchr(tok, '.');
    if (!dot) return 0;
    size_t n;
    unsigned char *raw = b64_decode(tok, (size_t)(dot - tok), &n);
    if (!raw) return 0;
    json_t *h = json_loadb((const char *)raw, n, 0, NULL);
    free(raw);
    const char *alg = json_string_value(json_object_get(h, "alg"));
    int ok = alg && strcmp(alg, "HS256") == 0;
    json_decref(h);
    return ok;
}

int auth_verify_token(const config_t *cfg, const char *tok, time_t now, identity_t *id)
{
    if (!tok || strlen(tok) > AUTH_MAX_TOKEN || !header_is_hs256(tok)) return SSE_EAUTH;
    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, tok, (const unsigned char *)cfg->app_key, (int)strlen(cfg->app_key)) ||
        !jwt)
        return SSE_EAUTH;
    int rc = SSE_EAUTH;
    const char *user = jwt_get_grant(jwt, "username");
    long exp = jwt_get_grant_int(jwt, "exp");
    if (jwt_get_alg(jwt) == JWT_ALG_HS256 && user && exp > (long)now) {
        for (int i = 0; i < cfg->naccounts; i++) {
            if (strcmp(cfg->accounts[i].username, user) == 0) {
                id->role = cfg->accounts[i].role;
                snprintf(id->username, sizeof id->username, "%s", user);
                rc = SSE_OK;
                break;
            }
        }
    }
    jwt_free(jwt);
    return rc;
}

int auth_decode_wrapper(const char *b64, size_t len, char **jwt, char **user_id)
{
    size_t n;
    if (len > 4 * AUTH_MAX_TOKEN) return SSE_EINVAL;
    unsigned char *raw = b64_decode(b64, len, &n);
    if (!raw) return SSE_EINVAL;
    json_t *o = json_loadb((const char *)raw, n, 0, NULL);
    free(raw);
    const char *t = json_string_value(json_object_get(o, "token"));
    json_t *idv = json_object_get(o, "id");
    if (!t || (idv && !json_is_string(idv) && !json_is_null(idv))) {
        json_decref(o);
        return SSE_EINVAL;
    }
    *jwt = xstrdup(t);
    *user_id = xstrdup(json_is_string(idv) ? json_string_value(idv) : "");
    json_decref(o);
    return SSE_OK;
}

static int from_wrapper(const config_t *cfg, char *wrapped, time_t now, identity_t *id)
{
    char *jwt = NULL, *user = NULL;
    int rc = SSE_EAUTH;
    if (wrapped && auth_decode_wrapper(wrapped, strlen(wrapped), &jwt, &user) == SSE_OK &&
        auth_verify_token(cfg, jwt, now, id) == SSE_OK) {
        id->user_id = user;
        user = NULL;
        rc = SSE_OK;
    }
    free(jwt);
    free(user);
    free(wrapped);
    return rc;
}

int auth_request(const config_t *cfg, const http_request_t *req, time_t now, int bearer_only,
                 identity_t *id)
{
    memset(id, 0, sizeof *id);
    if (!bearer_only) {
        char *param = http_query_param(req, "token", 0);
        if (param) return from_wrapper(cfg, param, now, id);
        char *cookie = http_cookie(req, "sse_token");
        if (cookie) return from_wrapper(cfg, cookie, now, id);
    }
    size_t n;
    const char *h = http_header(req, "authorization", &n);
    if (!h || n < 7 || strncasecmp(h, "Bearer ", 7) != 0 || n - 7 > AUTH_MAX_TOKEN)
        return SSE_EAUTH;
    char tok[AUTH_MAX_TOKEN + 1];
    const char *t = h + 7;
    size_t tl = n - 7;
    while (tl && *t == ' ') t++, tl--;
    memcpy(tok, t, tl);
    tok[tl] = '\0';
    if (auth_verify_token(cfg, tok, now, id)) return SSE_EAUTH;
    id->user_id = xstrdup("");
    return SSE_OK;
}
