/* GET /notifications: a user's history, newest first, paged with "before". */
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "log.h"
#include "replay.h"
#include "respond.h"
#include "router.h"
#include "sse.h"
#include "store.h"
#include "worker.h"

#define LIST_DEFAULT 50
#define LIST_MAX 500

/* What the store read needs to answer; freed by on_rows. */
typedef struct list_req {
    worker_t *w;
    conn_t *c;
    reply_meta_t meta;
    size_t limit;
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

/* Runs on the store's reader thread: the rows become the whole JSON answer. */
static void on_rows(void *arg, const store_event_t *rows, size_t n, const store_bounds_t *b, int err)
{
    (void)b;
    list_req_t *rq = arg;
    frame_t *reply;
    if (err) {
        reply = response_json_frame(&rq->meta, 503, json_pack("{s:s}", "error", "the history could not be read"));
    } else {
        json_t *items = json_array();
        size_t shown = n > rq->limit ? rq->limit : n;
        for (size_t i = 0; i < shown; i++) {
            char t[32];
            iso_time(rows[i].time_ms, t);
            json_array_append_new(items, json_pack("{s:I, s:s, s:s, s:s, s:s%}", "id",
                                                   (json_int_t)rows[i].id, "time", t, "type",
                                                   rows[i].type, "user", rows[i].user, "content",
                                                   rows[i].content, rows[i].content_len));
        }
        /* One row more than asked for tells that an older page exists. */
        json_t *next = n > rq->limit ? json_integer((json_int_t)rows[shown - 1].id) : json_null();
        reply = response_json_frame(&rq->meta, 200, json_pack("{s:o, s:o}", "items", items, "next", next));
    }
    worker_post_fill(rq->w, rq->c, &reply, 1, rq->meta.keep_alive ? 0 : FILL_END, 0);
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

void api_notifications(conn_t *c, const http_request_t *req)
{
    server_t *srv = c->w->srv;
    identity_t id;
    if (auth_request(srv->cfg, req, time(NULL), 0, &id)) {
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
    } else if (!srv->store) {
        for (int i = 0; i < ntypes; i++) free(types[i]);
        respond_error(c, req, 503, "the history is off (SSE_DB=off)");
    } else {
        list_req_t *rq = xmalloc(sizeof *rq);
        rq->w = c->w;
        rq->c = c;
        rq->limit = (size_t)limit;
        reply_meta_init(&rq->meta, srv->cfg, req);
        store_filter_t f = {.user = id.user_id, .types = (const char *const *)types,
                            .ntypes = (uint32_t)ntypes, .strict = strict};
        conn_hold(c);
        if (srv->store->ops->list(srv->store, &f, before, (size_t)limit + 1, on_rows, rq)) {
            frame_t *reply = response_json_frame(&rq->meta, 503, json_pack("{s:s}", "error", "the server is stopping"));
            conn_fill(c, &reply, 1, false, !rq->meta.keep_alive);
            free(rq);
        }
        for (int i = 0; i < ntypes; i++) free(types[i]);
    }
    identity_free(&id);
}
