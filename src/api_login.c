/* POST /login: checks an account, answers a JWT and sets goSSE's sse_token cookie. */
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "b64.h"
#include "log.h"
#include "respond.h"
#include "router.h"
#include "worker.h"

/* A string member, or "" when absent or null; NULL when it is some other JSON type. */
static const char *opt_string(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return "";
    return json_string_value(v);
}

void api_login(conn_t *c, const http_request_t *req)
{
    const server_t *srv = c->w->srv;
    json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
    const char *user = json_is_object(body) ? opt_string(body, "username") : NULL;
    const char *pass = json_is_object(body) ? opt_string(body, "password") : NULL;
    const char *id = json_is_object(body) ? opt_string(body, "id") : NULL;
    if (!user || !pass || !id) {
        json_decref(body);
        respond_error(c, req, 400, "body must be JSON {\"username\", \"password\", \"id\"} with string values");
        return;
    }
    const account_t *acct = auth_check_password(srv->cfg, user, pass);
    char clean[64];
    if (!acct) {
        log_info(srv->log, "login-failed ip=%s user=%s", c->ip, log_clean(user, clean, sizeof clean));
        json_decref(body);
        respond_error(c, req, 401, "invalid credentials");
        return;
    }
    time_t now = time(NULL), exp = now + srv->cfg->token_ttl;
    /* The id is signed into the token as "sub", so a stream cannot later claim another. */
    token_claims_t tc = {.username = acct->username, .sub = *id ? id : NULL, .ntypes = -1,
                         .iat = now, .exp = exp};
    char *jwt = auth_issue_token(srv->cfg, &tc);
    if (!jwt) {
        json_decref(body);
        respond_error(c, req, 500, "could not sign a token");
        return;
    }
    json_t *answer = json_pack("{s:s, s:s}", "token", jwt, "id", id);
    char *text = json_dumps(answer, JSON_COMPACT | JSON_ENSURE_ASCII);
    char *cookie = b64_encode(text, strlen(text)); /* goSSE's cookie: base64 of the body itself */
    char date[64];
    struct tm tm;
    gmtime_r(&exp, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    /* With TLS the cookie must cross sites (pages elsewhere use withCreds): Secure, SameSite=None. */
    const config_t *cfg = srv->cfg;
    bool tls = srv->tls_ctx != NULL;
    const char *samesite = *cfg->cookie_samesite ? cfg->cookie_samesite : tls ? "None" : "Lax";
    size_t hlen = strlen(cookie) + strlen(cfg->cookie_domain) + 256;
    char *extra = xmalloc(hlen);
    snprintf(extra, hlen, "Set-Cookie: sse_token=%s; Path=/; Expires=%s; Max-Age=%d%s%s; HttpOnly%s; "
                          "SameSite=%s\r\n",
             cookie, date, cfg->token_ttl, *cfg->cookie_domain ? "; Domain=" : "", cfg->cookie_domain,
             tls ? "; Secure" : "", samesite);
    log_info(srv->log, "login ip=%s user=%s role=%s", c->ip, log_clean(acct->username, clean, sizeof clean),
             auth_role_name(acct->role));
    respond(c, req, 200, "application/json", text, strlen(text), extra);
    free(extra);
    free(cookie);
    free(text);
    free(jwt);
    json_decref(answer);
    json_decref(body);
}
