/* POST /login: checks an account, answers a JWT and sets goSSE's sse_token cookie. */
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "answer.h"
#include "api.h"
#include "auth.h"
#include "b64.h"
#include "jobs.h"
#include "log.h"
#include "netaddr.h"
#include "ratelimit.h"
#include "respond.h"
#include "users.h"

/** One login attempt, with copies of all it needs: it may be checked on another thread. */
typedef struct login_req {
    const api_ctx_t *api; /* read-only: safe on a checker thread */
    answer_t ans;
    bool tls; /* the cookie gets Secure and SameSite=None */
    char ip[NETADDR_STR_LEN];  /* the client, for the logs */
    char key[NETADDR_KEY_LEN]; /* the client's key for the limits (an IPv6 client's /64) */
    ratelimit_hold_t hold;     /* the attempt, in flight for the limiter until it is checked */
    char *user, *pass, *id;
} login_req_t;

/* A string member, or "" when absent or null; NULL when it is some other JSON type. */
static const char *opt_string(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return "";
    return json_string_value(v);
}

static void login_req_free(login_req_t *rq)
{
    if (!rq) return;
    free(rq->user);
    if (rq->pass) {
        memset(rq->pass, 0, strlen(rq->pass));
        free(rq->pass);
    }
    free(rq->id);
    free(rq);
}

/* {"error": msg} with extra header lines ("Name: v\r\n", or NULL). */
static frame_t *error_frame(const reply_meta_t *m, int status, const char *msg, const char *extra)
{
    json_t *body = json_pack("{s:s}", "error", msg);
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(body);
    frame_t *f = response_frame(m, status, "application/json", text, strlen(text), extra);
    free(text);
    return f;
}

/* 429 with Retry-After: too many failed logins from this address or for this name. */
static frame_t *blocked_frame(const api_ctx_t *a, const login_req_t *rq, int wait)
{
    char clean[64], extra[64], msg[96];
    log_warn(a->log, "login-blocked ip=%s user=%s retry=%ds", rq->ip,
             log_clean(rq->user, clean, sizeof clean), wait);
    snprintf(extra, sizeof extra, "Retry-After: %d\r\n", wait);
    snprintf(msg, sizeof msg, "too many failed logins; retry in %d seconds", wait);
    return error_frame(&rq->ans.meta, 429, msg, extra);
}

/*
 * 200 with the token, and the cookie holding the body itself (goSSE's format); or
 * 403 when a subscriber account names an id that is not trusted: with
 * SSE_TRUST_CLIENT_ID=0 a user id comes only from a backend (POST /token).
 */
static frame_t *success_frame(const api_ctx_t *a, const login_req_t *rq, const account_t *acct)
{
    const config_t *cfg = a->cfg;
    if (!cfg->trust_client_id && acct->role == ROLE_SUBSCRIBER && *rq->id) {
        char clean[64];
        log_info(a->log, "login-refused ip=%s user=%s reason=client-id", rq->ip,
                 log_clean(acct->username, clean, sizeof clean));
        return error_frame(&rq->ans.meta, 403,
                           "a subscriber account may not choose its user id (SSE_TRUST_CLIENT_ID=0): "
                           "mint per-user tokens with POST /token from the application backend", NULL);
    }
    time_t now = time(NULL), exp = now + cfg->token_ttl;
    /* The id is signed into the token as "sub", so a stream cannot later claim another. */
    token_claims_t tc = {.username = acct->username, .sub = *rq->id ? rq->id : NULL, .ntypes = -1,
                         .iat = now, .exp = exp};
    char *jwt = auth_issue_token(cfg, &tc);
    if (!jwt) return error_frame(&rq->ans.meta, 500, "could not sign a token", NULL);
    json_t *answer = json_pack("{s:s, s:s}", "token", jwt, "id", rq->id);
    char *text = json_dumps(answer, JSON_COMPACT | JSON_ENSURE_ASCII);
    char *cookie = b64_encode(text, strlen(text)); /* goSSE's cookie: base64 of the body itself */
    char date[64];
    struct tm tm;
    gmtime_r(&exp, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    /* With TLS the cookie must cross sites (pages elsewhere use withCreds): Secure, SameSite=None. */
    const char *samesite = *cfg->cookie_samesite ? cfg->cookie_samesite : rq->tls ? "None" : "Lax";
    size_t hlen = strlen(cookie) + strlen(cfg->cookie_domain) + 256;
    char *extra = xmalloc(hlen);
    snprintf(extra, hlen, "Set-Cookie: sse_token=%s; Path=/; Expires=%s; Max-Age=%d%s%s; HttpOnly%s; "
                          "SameSite=%s\r\n",
             cookie, date, cfg->token_ttl, *cfg->cookie_domain ? "; Domain=" : "", cfg->cookie_domain,
             rq->tls ? "; Secure" : "", samesite);
    char clean[64];
    log_info(a->log, "login ip=%s user=%s role=%s", rq->ip, log_clean(acct->username, clean, sizeof clean),
             auth_role_name(acct->role));
    frame_t *f = response_frame(&rq->ans.meta, 200, "application/json", text, strlen(text), extra);
    free(extra);
    free(cookie);
    free(text);
    free(jwt);
    json_decref(answer);
    return f;
}

/*
 * The password check of an attempt the limiter admitted (ratelimit_begin), then
 * the counters: its hold ends as a failure or a success. Returns the response
 * frame. With hashed accounts this is slow and runs on a checker thread.
 */
static frame_t *login_answer(const api_ctx_t *a, login_req_t *rq)
{
    const account_t *acct;
    char clean[64];
    if (a->login_jobs) {
        int64_t t0 = ratelimit_now_ms();
        acct = users_check_password(a->cfg, a->login_dummy_hash, rq->user, rq->pass);
        log_debug(a->log, "login-verify ip=%s user=%s check=argon2id ms=%lld", rq->ip,
                  log_clean(rq->user, clean, sizeof clean), (long long)(ratelimit_now_ms() - t0));
    } else {
        acct = auth_check_password(a->cfg, rq->user, rq->pass);
    }
    if (!acct) {
        ratelimit_end(a->login_limit, rq->key, rq->user, &rq->hold, RATELIMIT_FAILED, ratelimit_now_ms());
        log_info(a->log, "login-failed ip=%s user=%s", rq->ip, log_clean(rq->user, clean, sizeof clean));
        return error_frame(&rq->ans.meta, 401, "invalid credentials", NULL);
    }
    ratelimit_end(a->login_limit, rq->key, rq->user, &rq->hold, RATELIMIT_SUCCEEDED, ratelimit_now_ms());
    return success_frame(a, rq, acct);
}

/* Runs on a checker thread (or, cancelled, on main() during a stop): answers through the hole. */
static void login_job(void *arg, bool cancelled)
{
    login_req_t *rq = arg;
    if (cancelled)
        ratelimit_end(rq->api->login_limit, rq->key, rq->user, &rq->hold, RATELIMIT_DROPPED,
                      ratelimit_now_ms());
    answer_send(&rq->ans, cancelled ? error_frame(&rq->ans.meta, 503, "the server is stopping", NULL)
                                    : login_answer(rq->api, rq));
    login_req_free(rq);
}

/* Queues a finished response on c; closes after it unless the connection stays open. */
static void send_now(conn_t *c, const reply_meta_t *m, frame_t *f)
{
    conn_send(c, f);
    frame_unref(f);
    if (!m->keep_alive) conn_end(c);
}

/* Room for a login answer: the token, the cookie holding it again, CORS lines. */
#define LOGIN_ANSWER_BYTES 8192

void api_login(api_ctx_t *a, conn_t *c, const http_request_t *req)
{
    /* A cross-site HTML form cannot send this type without a CORS preflight, so it
     * cannot log a browser in as someone else (login CSRF). Not a guess: not counted. */
    if (!http_content_type_is(req, "application/json")) {
        respond_error(c, req, 415, "send the login as JSON with Content-Type: application/json");
        return;
    }
    json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
    const char *user = json_is_object(body) ? opt_string(body, "username") : NULL;
    const char *pass = json_is_object(body) ? opt_string(body, "password") : NULL;
    const char *id = json_is_object(body) ? opt_string(body, "id") : NULL;
    if (!user || !pass || !id) {
        json_decref(body);
        respond_error(c, req, 400, "body must be JSON {\"username\", \"password\", \"id\"} with string values");
        return;
    }
    if (!*user || !*pass) { /* not a guess: no check, not counted */
        char clean[64];
        log_info(a->log, "login-failed ip=%s user=%s", c->ip, log_clean(user, clean, sizeof clean));
        json_decref(body);
        respond_error(c, req, 401, "invalid credentials");
        return;
    }
    login_req_t *rq = xcalloc(1, sizeof *rq);
    rq->api = a;
    reply_meta_init(&rq->ans.meta, a->cfg, req);
    rq->tls = a->tls;
    snprintf(rq->ip, sizeof rq->ip, "%s", c->ip);
    netaddr_key_of(c->ip, rq->key);
    rq->user = xstrdup(user);
    rq->pass = xstrdup(pass);
    rq->id = xstrdup(id);
    json_decref(body);
    /* Admitted attempts count as failures in waiting until checked: a burst is limited at once. */
    int wait = ratelimit_begin(a->login_limit, rq->key, rq->user, ratelimit_now_ms(), &rq->hold);
    if (wait > 0 || !a->login_jobs) { /* no argon2id to run: answer on the loop, as before */
        send_now(c, &rq->ans.meta, wait > 0 ? blocked_frame(a, rq, wait) : login_answer(a, rq));
        login_req_free(rq);
        return;
    }
    answer_open(&rq->ans, c, req, LOGIN_ANSWER_BYTES);
    /* One address may hold only a share of the queue, so the others still get through. */
    int rc = jobs_submit_keyed(a->login_jobs, rq->key, login_job, rq);
    if (rc) {
        ratelimit_end(a->login_limit, rq->key, rq->user, &rq->hold, RATELIMIT_DROPPED, ratelimit_now_ms());
        if (rc == SSE_ESHARE) {
            log_warn(a->log, "login-blocked ip=%s reason=checks-in-progress limit=%d", rq->ip,
                     USERS_CHECK_PER_ADDRESS);
            answer_fail(&rq->ans, 429, "too many logins in progress from this address; retry shortly",
                        "Retry-After: 1\r\n");
        } else {
            answer_fail(&rq->ans, 503,
                        rc == SSE_EFULL ? "too many logins in progress; retry shortly" : "the server is stopping",
                        "Retry-After: 1\r\n");
        }
        login_req_free(rq);
    }
}
