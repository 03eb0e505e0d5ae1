/* GET /events: authenticates, builds the type filter and turns the connection into a stream. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "auth.h"
#include "auth_request.h"
#include "cors.h"
#include "log.h"
#include "replay.h"
#include "respond.h"
#include "sse.h"

/*
 * Collects the distinct types of every "type" parameter, each of which may be a
 * comma list. Returns the count, or -1 when a name is bad or there are too many.
 */
int events_collect_types(const http_request_t *req, char *types[SUB_MAX_TYPES])
{
    int n = 0;
    char *v;
    for (int i = 0; (v = http_query_param(req, "type", i)) != NULL; i++) {
        char *save = NULL;
        for (char *t = strtok_r(v, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            size_t len = strlen(t);
            if (!sse_field_ok(t, len) || len > SSE_MAX_NAME) goto bad;
            int dup = 0;
            for (int k = 0; k < n; k++) dup |= strcmp(types[k], t) == 0;
            if (dup) continue;
            if (n == SUB_MAX_TYPES) goto bad;
            types[n++] = xstrdup(t);
        }
        free(v);
        continue;
    bad:
        free(v);
        for (int k = 0; k < n; k++) free(types[k]);
        return -1;
    }
    return n;
}

/*
 * The id a reconnecting client saw last: the Last-Event-ID header (browsers send
 * it), else the lastEventId query parameter. A value that is not a decimal number
 * is ignored, so the stream starts live.
 */
static bool last_event_id(const http_request_t *req, uint64_t *out)
{
    size_t n;
    const char *h = http_header(req, "last-event-id", &n);
    if (h) return replay_parse_resume_id(h, n, out);
    char *q = http_query_param(req, "lastEventId", 0);
    bool ok = q && replay_parse_resume_id(q, strlen(q), out);
    free(q);
    return ok;
}

int events_apply_claims(const identity_t *id, char *types[SUB_MAX_TYPES], int *ntypes, bool *strict)
{
    *strict = id->ntypes >= 0;
    if (!*strict) return 0;
    for (int i = 0; i < *ntypes; i++)
        if (!auth_type_allowed(id, types[i])) return 403;
    if (*ntypes == 0) { /* nothing asked: everything the token allows, each name once */
        for (int i = 0; i < id->ntypes && *ntypes < SUB_MAX_TYPES; i++) {
            bool dup = false;
            for (int k = 0; k < *ntypes && !dup; k++) dup = strcmp(types[k], id->types[i]) == 0;
            if (!dup) types[(*ntypes)++] = xstrdup(id->types[i]);
        }
    }
    return 0;
}

/* Notes a stream's token expiry, so the loop's once-a-second sweep ends it in time (0: none). */
static void watch_expiry(api_ctx_t *a, int64_t exp)
{
    if (exp > 0 && (a->next_expiry == 0 || exp < a->next_expiry)) a->next_expiry = exp;
}

void api_events(api_ctx_t *a, conn_t *c, const http_request_t *req)
{
    if (c->qlen > 0) { /* answers to earlier requests go first; the stream's cap is its own */
        conn_park(c);
        return;
    }
    identity_t id;
    if (auth_request(a->cfg, req, time(NULL), 0, &id)) {
        respond_error(c, req, 401, "a valid token is required");
        return;
    }
    if (!sse_field_ok(id.user_id, strlen(id.user_id)) || strlen(id.user_id) > SSE_MAX_NAME) {
        identity_free(&id);
        respond_error(c, req, 400, "the user id may not hold CR, LF or NUL and has at most 256 bytes");
        return;
    }
    char *types[SUB_MAX_TYPES];
    int ntypes = events_collect_types(req, types);
    if (ntypes < 0) {
        identity_free(&id);
        respond_error(c, req, 400, "bad type: at most 32 names of up to 256 bytes, without CR or LF");
        return;
    }
    bool strict;
    if (events_apply_claims(&id, types, &ntypes, &strict)) {
        for (int i = 0; i < ntypes; i++) free(types[i]);
        identity_free(&id);
        respond_error(c, req, 403, "this token may not subscribe to that type");
        return;
    }
    sub_t *sub = sub_new(c, id.user_id, (const char *const *)types, (uint32_t)ntypes, strict);
    /* Unix time in 32 bits lasts until 2106; a later expiry is as good as none here. */
    sub->exp = id.exp <= 0 ? 0 : id.exp > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)id.exp;

    char head[2048];
    size_t olen = 0;
    const char *origin = http_header(req, "origin", &olen);
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
    n += (int)cors_headers(a->cfg, origin, olen, head + n, sizeof head - (size_t)n);
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    frame_t *f = frame_new(head, (size_t)n);
    bool sent = conn_send(c, f);
    frame_unref(f);
    if (!sent) { /* the connection is ending (its earlier answers overflowed): no stream */
        sub_free(sub);
        for (int i = 0; i < ntypes; i++) free(types[i]);
        identity_free(&id);
        return;
    }

    char u[64], t[128] = "*";
    size_t tl = 0;
    for (int i = 0; i < ntypes && tl + 1 < sizeof t; i++) {
        char one[64];
        tl += (size_t)snprintf(t + tl, sizeof t - tl, "%s%s", i ? "," : "", log_clean(types[i], one, sizeof one));
        if (tl >= sizeof t) tl = sizeof t - 1;
    }
    log_info(a->log, "connect ip=%s account=%s user=%s types=%s", c->ip, id.username,
             log_clean(id.user_id, u, sizeof u), t);
    for (int i = 0; i < ntypes; i++) free(types[i]);
    identity_free(&id);
    uint64_t last_id;
    bool resume = a->sh->store && last_event_id(req, &last_id);
    if (!shard_begin_stream(a->sh, c, sub)) return;
    watch_expiry(a, sub->exp);
    stream_ticket_t *evict;
    c->ticket = caps_stream_open(a->caps, sub->user, c, a, &evict);
    if (evict) a->ops->kick(evict->owner, evict); /* the user's oldest stream gives way */
    if (resume) replay_begin(a->sh, c, last_id);
}
