/* History replay for Last-Event-ID: pages read on the store's reader thread fill the stream's slot. */
#include "replay.h"

#include <stdio.h>
#include <string.h>

#include "common.h"
#include "conn.h"
#include "log.h"
#include "sse.h"
#include "store.h"
#include "sub.h"

struct replay {
    const shard_t *sh; /* its loop's: how far the live feed has gone */
    store_t *store;    /* where the pages come from */
    conn_slot_t *slot; /* the place of the pages, before the live feed */
    uint64_t after;    /* the next page starts after this id */
    uint64_t upto;     /* the live feed delivers every id above this one */
    bool want_next;    /* a page is due once the client has read the one before */
};

/* What a store read needs to answer on the right loop; one per page, freed by on_rows. */
typedef struct page_req {
    const log_t *log;
    conn_slot_t *slot;
    const char *ip; /* the connection's, which outlives the read */
    uint64_t after, upto;
    size_t budget; /* encoded bytes the page may hold (its first event always fits) */
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

bool replay_parse_resume_id(const char *s, size_t len, uint64_t *out)
{
    size_t digits = len && s[0] == '-' ? 1 : 0;
    if (digits == len) return false;
    for (size_t i = digits; i < len; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    /* A decimal number this server cannot have given: below 0 or past 64 bits. */
    if (digits || !replay_parse_id(s, len, out)) *out = REPLAY_NEVER_ISSUED;
    return true;
}

/*
 * The reset event: the client's id is outside the history, so it must catch up by
 * listing. Its id is where the live feed of this stream takes over (upto), so ids
 * keep growing after it and a reconnect resumes from there, not from the start.
 */
static frame_t *reset_frame(const store_bounds_t *b, uint64_t upto)
{
    char data[96];
    int n = snprintf(data, sizeof data, "{\"oldest\":%llu,\"latest\":%llu}",
                     (unsigned long long)b->oldest, (unsigned long long)b->latest);
    return sse_encode(upto, "reset", NULL, data, (size_t)n);
}

/*
 * Runs on the store's reader thread. Rows are encoded until the next would pass the
 * page's budget, so the page fits the room left in the client's queue; what is left
 * comes with the next page, read once the client has taken this one.
 */
static void on_rows(void *arg, const store_page_t *pg, int err)
{
    page_req_t *rq = arg;
    if (err) { /* gone (cancelled), or the client reconnects and tries again */
        if (err != SSE_ECANCELED) log_error(rq->log, "replay failed ip=%s", rq->ip);
        conn_slot_post(rq->slot, NULL, 0, CONN_FILL_END | REPLAY_FILL_PAGE, rq->upto);
        free(rq);
        return;
    }
    const store_bounds_t *b = &pg->bounds;
    uint64_t oldest = b->oldest ? b->oldest : b->latest + 1; /* empty: history starts after latest */
    if (rq->first && rq->after != 0 && (rq->after + 1 < oldest || rq->after > b->latest)) {
        frame_t *f = reset_frame(b, rq->upto);
        conn_slot_post(rq->slot, &f, 1, REPLAY_FILL_PAGE | REPLAY_FILL_RESET, rq->upto);
        free(rq);
        return;
    }
    frame_t **frames = pg->n ? xmalloc(pg->n * sizeof *frames) : NULL;
    size_t k = 0, bytes = 0;
    for (; k < pg->n; k++) {
        const store_event_t *ev = &pg->rows[k];
        frame_t *f = sse_encode(ev->id, ev->type, ev->user, ev->content, ev->content_len);
        if (k > 0 && bytes + f->len > rq->budget) {
            frame_unref(f);
            break;
        }
        bytes += f->len;
        frames[k] = f;
    }
    bool more = k > 0 && (k < pg->n || pg->more);
    uint64_t last = more ? pg->rows[k - 1].id : rq->upto;
    conn_slot_post(rq->slot, frames, (uint32_t)k, REPLAY_FILL_PAGE | (more ? CONN_FILL_KEEP : 0),
                   last);
    free(frames);
    free(rq);
}

void replay_stop(conn_t *c)
{
    if (!c->replay) return;
    replay_free(c->replay);
    c->replay = NULL;
    c->sub->replaying = false;
}

/* Ends the catch-up: the slot takes what it has, the stream goes live (or is ending). */
static void finish(conn_t *c)
{
    replay_free(c->replay);
    c->replay = NULL;
    c->sub->replaying = false;
}

/* Reads the next page, sized by the room left in the client's queue. */
static void read_page(conn_t *c, bool first)
{
    replay_t *r = c->replay;
    store_t *st = r->store;
    sub_t *s = c->sub;
    /* Live events wait in the store while the stream catches up, so a page may take
     * all the room left in the client's queue. */
    size_t cap = c->own->max_queue_bytes, held = c->qbytes + c->reserved;
    size_t budget = held < cap ? cap - held : 0;
    if (budget > REPLAY_PAGE_BYTES) budget = REPLAY_PAGE_BYTES;
    page_req_t *rq = xmalloc(sizeof *rq);
    *rq = (page_req_t){.log = c->own->log, .slot = r->slot, .ip = c->ip, .after = r->after,
                       .upto = r->upto, .budget = budget, .first = first};
    if (first) r->slot = rq->slot = conn_slot_open(c, budget);
    else conn_slot_rearm(r->slot, budget);
    store_filter_t f = {.user = s->user ? s->user : "", .types = (const char *const *)s->types,
                        .ntypes = s->ntypes, .strict = s->strict};
    store_read_opts_t o = {.max_rows = REPLAY_PAGE, .max_bytes = budget ? budget : 1,
                           .cancelled = &r->slot->cancelled};
    int rc = st->ops->replay(st, r->after, r->upto, &f, &o, on_rows, rq);
    if (rc) {
        log_warn(c->own->log, "replay refused ip=%s reason=%s", c->ip,
                 rc == SSE_EFULL ? "store-busy" : "stopping");
        free(rq);
        conn_slot_t *slot = r->slot;
        finish(c);
        conn_slot_fill(slot, NULL, 0, CONN_FILL_END); /* the client reconnects and resumes */
    }
}

void replay_begin(shard_t *sh, conn_t *c, uint64_t last_id)
{
    store_t *st = sh->store;
    store_bounds_t b;
    st->ops->bounds(st, &b);
    if (last_id > b.latest) {
        /* Never given: latest grows before any fan-out, so this holds for every loop.
         * The reset names where this loop's live feed takes over; nothing is skipped. */
        frame_t *f = reset_frame(&b, sh->last_seen_id);
        bool sent = conn_send(c, f);
        frame_unref(f);
        if (sent) c->sub->floor = sh->last_seen_id;
        return;
    }
    replay_t *r = xcalloc(1, sizeof *r);
    r->sh = sh;
    r->store = st;
    r->after = last_id;
    r->upto = sh->last_seen_id;
    /* Ids at or below the resume point may still come live on this loop, when the
     * client saw them on another that was ahead of this one: they must not come twice. */
    c->sub->floor = last_id;
    /* Live events are not queued while the stream catches up: pages reach them instead. */
    c->sub->replaying = true;
    c->replay = r;
    read_page(c, true);
}

void replay_next(conn_t *c, const conn_slot_t *at)
{
    replay_t *r = c->replay;
    if (!r->want_next || at != r->slot) return;
    r->want_next = false;
    if (!conn_alive(c)) { /* ending (evicted, token expired): let the queue run out */
        conn_slot_t *slot = r->slot;
        finish(c);
        conn_slot_rearm(slot, 0); /* a kept slot is owed no fill: arm it, then fill it empty */
        conn_slot_fill(slot, NULL, 0, 0);
        return;
    }
    read_page(c, false);
}

bool replay_page_done(conn_t *c, bool more, bool reset, uint64_t after)
{
    replay_t *r = c->replay;
    if (!conn_alive(c)) { /* ending: no more pages, the slot is freed with this one */
        finish(c);
        return false;
    }
    if (reset) { /* the reset stands for everything up to here */
        c->sub->floor = after;
        r->after = after;
    } else if (more) {
        r->after = after;
        r->want_next = true;
        return true;
    } else if (r->upto > r->after) { /* never back: the resume point may be ahead of this loop */
        r->after = r->upto;
    }
    /* The range is done; events fanned out meanwhile were held back: read them too. */
    uint64_t newest = r->sh->last_seen_id;
    if (newest > r->upto && newest > r->after) {
        r->upto = newest;
        r->want_next = true;
        return true;
    }
    finish(c);
    return false;
}

void replay_free(replay_t *r)
{
    free(r);
}
