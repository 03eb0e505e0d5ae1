/* History replay for Last-Event-ID: pages read on the store's reader thread fill the stream's hole. */
#include "replay.h"

#include <stdio.h>
#include <string.h>

#include "common.h"
#include "conn.h"
#include "log.h"
#include "sse.h"
#include "store.h"
#include "worker.h"

struct replay {
    uint64_t after; /* the next page starts after this id */
    uint64_t upto;  /* the live feed delivers every id above this one */
    bool want_next; /* a page is due once the client has read the one before */
};

/* What a store read needs to answer on the right worker; one per page, freed by on_rows. */
typedef struct page_req {
    worker_t *w;
    conn_t *c;
    uint64_t after, upto;
    bool first;
} page_req_t;

bool replay_parse_id(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* The reset event: the client's id is outside the history, so it must catch up by listing. */
static frame_t *reset_frame(const store_bounds_t *b)
{
    char data[96];
    int n = snprintf(data, sizeof data, "{\"oldest\":%llu,\"latest\":%llu}",
                     (unsigned long long)b->oldest, (unsigned long long)b->latest);
    /* Carrying the newest id, a reconnect after the reset resumes from here, not from the start. */
    return sse_encode(b->latest, "reset", NULL, data, (size_t)n);
}

/* Runs on the store's reader thread. */
static void on_rows(void *arg, const store_event_t *rows, size_t n, const store_bounds_t *b, int err)
{
    page_req_t *rq = arg;
    if (err) { /* the client reconnects and tries again */
        log_error(rq->w->srv->log, "replay failed ip=%s", rq->c->ip);
        worker_post_fill(rq->w, rq->c, NULL, 0, FILL_END | FILL_REPLAY, rq->upto);
        free(rq);
        return;
    }
    uint64_t oldest = b->oldest ? b->oldest : b->latest + 1; /* empty: history starts after latest */
    if (rq->first && rq->after != 0 && (rq->after + 1 < oldest || rq->after > b->latest)) {
        frame_t *f = reset_frame(b);
        worker_post_fill(rq->w, rq->c, &f, 1, FILL_REPLAY, rq->upto);
        free(rq);
        return;
    }
    frame_t **frames = n ? xmalloc(n * sizeof *frames) : NULL;
    for (size_t i = 0; i < n; i++)
        frames[i] = sse_encode(rows[i].id, rows[i].type, rows[i].user, rows[i].content,
                               rows[i].content_len);
    uint64_t last = n ? rows[n - 1].id : rq->upto;
    bool more = n == REPLAY_PAGE && last < rq->upto;
    worker_post_fill(rq->w, rq->c, frames, (uint32_t)n, FILL_REPLAY | (more ? FILL_KEEP_HOLE : 0), last);
    free(frames);
    free(rq);
}

static void read_page(conn_t *c, bool first)
{
    replay_t *r = c->replay;
    store_t *st = c->w->srv->store;
    sub_t *s = c->sub;
    page_req_t *rq = xmalloc(sizeof *rq);
    *rq = (page_req_t){.w = c->w, .c = c, .after = r->after, .upto = r->upto, .first = first};
    store_filter_t f = {.user = s->user ? s->user : "", .types = (const char *const *)s->types,
                        .ntypes = s->ntypes, .strict = s->strict};
    if (st->ops->replay(st, r->after, r->upto, &f, REPLAY_PAGE, on_rows, rq)) {
        free(rq);
        conn_fill(c, NULL, 0, false, true); /* the store is closing: end the stream */
    }
}

void replay_begin(conn_t *c, uint64_t last_id)
{
    replay_t *r = xcalloc(1, sizeof *r);
    r->after = last_id;
    r->upto = c->w->last_seen_id;
    c->replay = r;
    conn_hold(c);
    read_page(c, true);
}

void replay_next(conn_t *c)
{
    replay_t *r = c->replay;
    if (!r->want_next) return;
    r->want_next = false;
    c->async++; /* the hole is already queued; a request is in flight again */
    read_page(c, false);
}

void replay_page_done(conn_t *c, bool more, uint64_t after)
{
    replay_t *r = c->replay;
    if (more) {
        r->after = after;
        r->want_next = true;
        return;
    }
    replay_free(r);
    c->replay = NULL;
}

void replay_free(replay_t *r)
{
    free(r);
}
