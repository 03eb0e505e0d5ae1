/* GET /notifications: a user's history, newest first, paged with "before". */
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "answer.h"
#include "api.h"
#include "auth.h"
#include "auth_request.h"
#include "log.h"
#include "replay.h"
#include "respond.h"
#include "sse.h"
#include "store.h"

#define LIST_DEFAULT 50
#define LIST_MAX 500

/* An answer's body at most, so a page of big events cannot make one answer huge. */
#define LIST_ANSWER_BYTES (256 * 1024)

/* What the store read needs to answer; freed by on_rows. */
typedef struct list_req {
    answer_t ans;
} list_req_t;

/* "2026-11-27T21:00:00.123Z" */
static void iso_time(int64_t ms, char out[32])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

/* A growing byte string. */
typedef struct text {
    char *p;
    size_t len, cap;
} text_t;

static void text_add(text_t *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        while (t->len + n + 1 > t->cap) t->cap = t->cap ? t->cap * 2 : 4096;
        t->p = xrealloc(t->p, t->cap);
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

/*
 * Runs on the store's reader thread: the rows become the JSON answer, item by item,
 * until the next one would pass LIST_ANSWER_BYTES (the first always goes). "next"
 * names the oldest id shown when older items remain, so the client pages on.
 */
static void on_rows(void *arg, const store_page_t *pg, int err)
{
    list_req_t *rq = arg;
    if (err) {
        answer_json(&rq->ans, 503, json_pack("{s:s}", "error", "the history could not be read"));
        free(rq);
        return;
    }
    text_t body = {0};
    text_add(&body, "{\"items\":[", 10);
    size_t shown = 0;
    for (; shown < pg->n; shown++) {
        const store_event_t *ev = &pg->rows[shown];
        char t[32];
        iso_time(ev->time_ms, t);
        json_t *item = json_pack("{s:I, s:s, s:s, s:s, s:s%}", "id", (json_int_t)ev->id, "time", t,
                                 "type", ev->type, "user", ev->user, "content", ev->content,
                                 ev->content_len);
        char *one = json_dumps(item, JSON_COMPACT | JSON_ENSURE_ASCII);
        json_decref(item);
        size_t n = one ? strlen(one) : 0;
        if (shown > 0 && body.len + n + 1 > LIST_ANSWER_BYTES) {
            free(one);
            break;
        }
        if (shown > 0) text_add(&body, ",", 1);
        text_add(&body, one ? one : "null", one ? n : 4);
        free(one);
    }
    char next[40] = "null";
    if (shown > 0 && (shown < pg->n || pg->more))
        snprintf(next, sizeof next, "%llu", (unsigned long long)pg->rows[shown - 1].id);
    text_add(&body, "],\"next\":", 9);
    text_add(&body, next, strlen(next));
    text_add(&body, "}", 1);
    answer_send(&rq->ans, response_frame(&rq->ans.meta, 200, "application/json", body.p, body.len, NULL));
    free(body.p);
    free(rq);
}

/* Reads a whole-number query parameter in [min, max]; absent gives def. Returns false when bad. */
static bool number_param(const http_request_t *req, const char *name, uint64_t min, uint64_t max,
                         uint64_t def, uint64_t *out)
{
    char *v = http_query_param(req, name, 0);
    if (!v) {
        *out = def;
        return true;
    }
    bool ok = replay_parse_id(v, strlen(v), out) && *out >= min && *out <= max;
    free(v);
    return ok;
}

void api_notifications(api_ctx_t *a, conn_t *c, const http_request_t *req)
{
    identity_t id;
    if (auth_request(a->cfg, req, time(NULL), 0, &id)) {
        respond_error(c, req, 401, "a valid token is required");
        return;
    }
    uint64_t limit, before;
    char *types[SUB_MAX_TYPES];
    int ntypes;
    bool strict = false;
    if (!number_param(req, "limit", 1, LIST_MAX, LIST_DEFAULT, &limit)) {
        respond_error(c, req, 400, "limit must be a whole number from 1 to 500");
    } else if (!number_param(req, "before", 1, UINT64_MAX, 0, &before)) {
        respond_error(c, req, 400, "before must be an event id");
    } else if ((ntypes = events_collect_types(req, types)) < 0) {
        respond_error(c, req, 400, "bad type: at most 32 names of up to 256 bytes, without CR or LF");
    } else if (events_apply_claims(&id, types, &ntypes, &strict)) {
        for (int i = 0; i < ntypes; i++) free(types[i]);
        respond_error(c, req, 403, "this token may not read that type");
    } else if (!a->sh->store) {
        for (int i = 0; i < ntypes; i++) free(types[i]);
        respond_error(c, req, 503, "the history is off (SSE_DB=off)");
    } else {
        list_req_t *rq = xmalloc(sizeof *rq);
        answer_open(&rq->ans, c, req, LIST_ANSWER_BYTES);
        store_filter_t f = {.user = id.user_id, .types = (const char *const *)types,
                            .ntypes = (uint32_t)ntypes, .strict = strict};
        store_read_opts_t o = {.max_rows = (size_t)limit, .max_bytes = LIST_ANSWER_BYTES,
                               .cancelled = answer_cancelled(&rq->ans)};
        int rc = a->sh->store->ops->list(a->sh->store, &f, before, &o, on_rows, rq);
        if (rc) {
            answer_fail(&rq->ans, 503,
                        rc == SSE_EFULL ? "the history is busy; retry shortly" : "the server is stopping",
                        "Retry-After: 1\r\n");
            free(rq);
        }
        for (int i = 0; i < ntypes; i++) free(types[i]);
    }
    identity_free(&id);
}
