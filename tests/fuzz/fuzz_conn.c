/*
 * Stateful fuzzing of one worker: the connection, HTTP, router, hub, replay and
 * caps state machines driven together, the way clients and other threads drive them.
 *
 * Each input is a program. Its first byte picks the history mode (SSE_DB=off, or a
 * fake store in this file); the rest is a list of operations: open a client over a
 * socketpair (conn_new, as on_accept() would), write raw bytes or a canned request
 * (possibly split), read, half-close or close a client, publish events, commit the
 * store's held appends, run a store read (in two steps, so commits can land between a
 * read's snapshot and its answer, as with the real reader and writer threads), let
 * time pass (conn_sweep with a later "now"), fire a heartbeat, expire a stream's
 * token, trim the history, stop the server gracefully, or run the loop. The worker is
 * made with worker_new() but never started: its loop runs here with EVRUN_NOWAIT and
 * its timers are fired by the program, so an input always takes the same path.
 *
 * After every loop iteration and every operation the driver checks the server's own
 * bookkeeping: every queue's byte, slot and reservation counts match its entries and
 * stay within their bounds; the timeout lists are sorted and match each connection's
 * wait; an open request connection under its bound reads and has a deadline; the
 * worker's lists, the hub's counts and the per-address and per-user caps agree with
 * the connections that are open. It also parses everything each client reads: whole
 * HTTP/1.1 responses, nothing after one that says Connection: close, and on a stream
 * only SSE lines, with strictly increasing ids, each event routed to the stream's
 * filter with the bytes it was published with. At the end every healthy stream must
 * have received every event meant for it (exactly once), then every client closes and
 * every connection must close and be freed, so LeakSanitizer sees each input's leaks.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

extern char **environ;

#include "auth.h"
#include "b64.h"
#include "bus.h"
#include "caps.h"
#include "common.h"
#include "config.h"
#include "conn.h"
#include "fuzz_check.h"
#include "http1.h"
#include "hub.h"
#include "log.h"
#include "netaddr.h"
#include "publish.h"
#include "ratelimit.h"
#include "replay.h"
#include "server.h"
#include "shard.h"
#include "sse.h"
#include "store.h"
#include "sub.h"
#include "worker.h"

#define MAX_INPUT 8192        /* longer inputs are cut: every run stays short */
#define MAX_CLIENTS 16
#define NIPS 4
#define OUTBOX (64 * 1024)    /* bytes a client has yet to write */
#define HEAD_MAX (16 * 1024)  /* longest response head the server may send */
#define SSE_LINE_MAX (8 * 1024)
#define MAX_IDS 8192          /* event ids one input can reach (publishes are capped below) */
#define MAX_KNOWN 2048        /* events recorded per input; later publishes are skipped */
#define FAKE_MAX_READS 3      /* store reads waiting at most; more get SSE_EFULL */
#define DRAIN_ROUNDS 600      /* loop rounds the final drain may take before it is a hang */

/* The settings every input runs with: small bounds so that 413, 431, slow subscribers,
 * per-address and per-user caps are all reachable with short programs. */
static const char env_text[] =
    "SSE_APP_KEY=fuzz-app-key-0123456789abcdef0123\n"
    "SSE_HOST=127.0.0.1\n"
    "SSE_PORT=0\n"
    "SSE_DB=off\n"
    "SSE_WORKERS=1\n"
    "SSE_CLIENT_USERNAME=client\n"
    "SSE_CLIENT_PASSWORD=client-pw\n"
    "SSE_BROADCASTER_USERNAME=pub\n"
    "SSE_BROADCASTER_PASSWORD=pub-pw\n"
    "SSE_ADMIN_USERNAME=admin\n"
    "SSE_ADMIN_PASSWORD=admin-pw\n"
    "ALLOWED_ORIGIN=https://app.example,https://other.example\n"
    "SSE_MAX_QUEUE_BYTES=4096\n"
    "SSE_STREAM_SNDBUF=4096\n"
    "SSE_MAX_HEADER_BYTES=2048\n"
    "SSE_MAX_BODY_BYTES=1024\n"
    "SSE_MAX_CONNS_PER_IP=6\n"
    "SSE_MAX_STREAMS_PER_USER=2\n"
    "SSE_LOGIN_MAX_FAILURES=3\n"
    "SSE_LOGIN_MAX_BLOCK=2\n"
    "SSE_LOG_LEVEL=debug\n";

/* FUZZ_CONN_TRACE=1: what each input reached (ids streams got, statuses, slots), to see the
 * driver does what it means to. */
static bool trace;
static struct {
    size_t statuses[600];
    size_t events, resets, expired, streams, slots_seen;
} seen_stats;

static config_t cfg;
static log_t lg;
static server_t srv;
static worker_t *workers[1];
static worker_t *w;
static struct ev_loop *main_loop; /* only receives server_request_stop() */
static ev_async stop_request;
static bool stop_asked;

/* Built-in files of the driver's own: a small one and one big enough that a dozen
 * pipelined requests for it pass HTTP1_ANSWER_BYTES. */
static unsigned char small_asset[64];
static unsigned char big_asset[24 * 1024];
static const asset_t assets[] = {
    {"/client/small.js", "text/javascript", small_asset, sizeof small_asset},
    {"/client/big.js", "text/javascript", big_asset, sizeof big_asset},
    {NULL, NULL, NULL, 0},
};

/* ---- tokens, minted once ---- */

enum { T_PLAIN, T_ALICE, T_BOB, T_CAROL, T_DAVE, T_PUB, T_ADMIN, T_EXPIRED, T_PUB_SUB, NTOK };
static const char *const wrap_ids[] = {"", "alice", "bob", "mallory"};
#define NWRAP 4
static char *jwts[NTOK];
static char *wrapped[NTOK][NWRAP]; /* goSSE's base64 wrapper, %-encoded for a query string */
static char *wrapped_raw[NTOK][NWRAP]; /* the same, as a cookie carries it */

static char *mint(const char *account, const char *sub, const char *const *types, int ntypes,
                  enum role role, long ttl)
{
    time_t now = time(NULL);
    token_claims_t tc = {.username = account, .sub = sub, .types = types, .ntypes = ntypes,
                         .role = role, .iat = now - 10, .exp = now + ttl};
    char *t = auth_issue_token(&cfg, &tc);
    if (!t) {
        fprintf(stderr, "fuzz_conn: cannot mint a token\n");
        abort();
    }
    return t;
}

static char *pct_encode(const char *s)
{
    char *out = xmalloc(strlen(s) * 3 + 1), *p = out;
    for (; *s; s++) {
        if (*s == '+' || *s == '/' || *s == '=') p += sprintf(p, "%%%02X", (unsigned char)*s);
        else *p++ = *s;
    }
    *p = '\0';
    return out;
}

static void mint_tokens(void)
{
    static const char *const bob_types[] = {"news", "alerts"};
    static const char *const carol_types[] = {"news", "news", "chat"};
    const long year10 = 10L * 365 * 86400;
    jwts[T_PLAIN] = mint("client", NULL, NULL, -1, ROLE_NONE, year10);
    jwts[T_ALICE] = mint("client", "alice", NULL, -1, ROLE_NONE, year10);
    jwts[T_BOB] = mint("client", "bob", bob_types, 2, ROLE_NONE, year10);
    jwts[T_CAROL] = mint("client", "carol", carol_types, 3, ROLE_NONE, year10);
    jwts[T_DAVE] = mint("client", "dave", NULL, 0, ROLE_NONE, year10);
    jwts[T_PUB] = mint("pub", NULL, NULL, -1, ROLE_NONE, year10);
    jwts[T_ADMIN] = mint("admin", NULL, NULL, -1, ROLE_NONE, year10);
    jwts[T_EXPIRED] = mint("client", "alice", NULL, -1, ROLE_NONE, -5);
    jwts[T_PUB_SUB] = mint("pub", "alice", NULL, -1, ROLE_SUBSCRIBER, year10);
    for (int t = 0; t < NTOK; t++) {
        for (int i = 0; i < NWRAP; i++) {
            char json[2048];
            int n = snprintf(json, sizeof json, "{\"token\":\"%s\",\"id\":\"%s\"}", jwts[t], wrap_ids[i]);
            wrapped_raw[t][i] = b64_encode(json, (size_t)n);
            wrapped[t][i] = pct_encode(wrapped_raw[t][i]);
        }
    }
}

/* ---- what the driver knows of every event of this input ---- */

typedef struct known_event {
    bool known;
    char *type, *user; /* "" when none */
    char *content;
    size_t len;
} known_event_t;

static known_event_t evs[MAX_IDS + 1];
static size_t nknown;
static bool gaps_allowed; /* the history was trimmed: a replay may skip what is gone */

static void record_event(uint64_t id, const char *type, const char *user, const char *content,
                         size_t len)
{
    FUZZ_CHECK(id >= 1 && id <= MAX_IDS);
    FUZZ_CHECK(!evs[id].known); /* every id is given once */
    known_event_t *e = &evs[id];
    e->known = true;
    e->type = xstrdup(type ? type : "");
    e->user = xstrdup(user ? user : "");
    e->content = xmalloc(len + 1);
    memcpy(e->content, content, len);
    e->len = len;
    nknown++;
}

/* The content as a stream shows it: data lines joined with LF (CRLF and CR become LF). */
static size_t normalise(const char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r') {
            out[k++] = '\n';
            if (i + 1 < n && s[i + 1] == '\n') i++;
        } else {
            out[k++] = s[i];
        }
    }
    return k;
}

/* A stream's filter as the hub applies it (sub.h): the same rule the store's reads follow. */
typedef struct filter {
    char *user; /* "" when the stream has no user */
    char *types[SUB_MAX_TYPES];
    uint32_t ntypes;
    bool strict;
} filter_t;

static bool filter_wants_type(const filter_t *f, const char *type)
{
    if (f->ntypes == 0) return !f->strict;
    for (uint32_t i = 0; i < f->ntypes; i++)
        if (strcmp(f->types[i], type) == 0) return true;
    return false;
}

static bool route_match(const filter_t *f, const char *type, const char *user)
{
    if (*user) return *f->user && strcmp(f->user, user) == 0 && (!f->strict || !*type || filter_wants_type(f, type));
    if (*type) return filter_wants_type(f, type);
    return true;
}

static void filter_free(filter_t *f)
{
    free(f->user);
    for (uint32_t i = 0; i < f->ntypes; i++) free(f->types[i]);
    memset(f, 0, sizeof *f);
}

/* ---- the fake history store: appends and reads complete only when the program says ---- */

typedef struct pending_append {
    char *type, *user, *content;
    size_t len;
    store_commit_fn done;
    void *arg;
} pending_append_t;

typedef struct pending_read {
    bool list;
    uint64_t after, upto, before;
    filter_t f;
    size_t max_rows, max_bytes;
    const atomic_int *cancelled;
    store_rows_fn done;
    void *arg;
    bool snapped; /* the read ran: its rows are taken, the answer is not posted yet */
    int err;
    store_page_t page;
    store_event_t *rows;
} pending_read_t;

static struct fake_store {
    store_t base;
    pending_append_t *apps;
    size_t napps, capps;
    pending_read_t *reads;
    size_t nreads, creads;
    uint64_t oldest; /* the first id still kept (ids below were trimmed) */
    uint64_t latest;
    bool closing;
} fs;

static void fs_bounds(store_t *st, store_bounds_t *out)
{
    (void)st;
    uint64_t first = fs.oldest ? fs.oldest : 1; /* nothing trimmed yet: the history starts at 1 */
    out->latest = fs.latest;
    out->oldest = first <= fs.latest ? first : 0;
}

static int fs_append(store_t *st, const store_event_t *ev, store_commit_fn done, void *arg)
{
    (void)st;
    if (fs.closing) return SSE_ERR;
    if (fs.napps == fs.capps) {
        fs.capps = fs.capps ? fs.capps * 2 : 16;
        fs.apps = xrealloc(fs.apps, fs.capps * sizeof *fs.apps);
    }
    pending_append_t *a = &fs.apps[fs.napps++];
    a->type = xstrdup(ev->type ? ev->type : "");
    a->user = xstrdup(ev->user ? ev->user : "");
    a->content = xmalloc(ev->content_len + 1);
    memcpy(a->content, ev->content, ev->content_len);
    a->len = ev->content_len;
    a->done = done;
    a->arg = arg;
    return 0;
}

static void fs_wake(store_t *st)
{
    (void)st; /* commits happen when the program says */
}

static int fs_queue_read(pending_read_t *r, const store_filter_t *f, const store_read_opts_t *o,
                         store_rows_fn done, void *arg)
{
    if (fs.closing || !o || o->max_rows == 0) return SSE_ERR;
    if (fs.nreads >= FAKE_MAX_READS) return SSE_EFULL;
    r->f.user = xstrdup(f->user ? f->user : "");
    r->f.ntypes = f->ntypes;
    for (uint32_t i = 0; i < f->ntypes; i++) r->f.types[i] = xstrdup(f->types[i]);
    r->f.strict = f->strict;
    r->max_rows = o->max_rows;
    r->max_bytes = o->max_bytes;
    r->cancelled = o->cancelled;
    r->done = done;
    r->arg = arg;
    if (fs.nreads == fs.creads) {
        fs.creads = fs.creads ? fs.creads * 2 : 4;
        fs.reads = xrealloc(fs.reads, fs.creads * sizeof *fs.reads);
    }
    fs.reads[fs.nreads++] = *r;
    return 0;
}

static int fs_replay(store_t *st, uint64_t after, uint64_t upto, const store_filter_t *f,
                     const store_read_opts_t *o, store_rows_fn done, void *arg)
{
    (void)st;
    pending_read_t r = {.list = false, .after = after, .upto = upto};
    return fs_queue_read(&r, f, o, done, arg);
}

static int fs_list(store_t *st, const store_filter_t *f, uint64_t before, const store_read_opts_t *o,
                   store_rows_fn done, void *arg)
{
    (void)st;
    pending_read_t r = {.list = true, .before = before};
    return fs_queue_read(&r, f, o, done, arg);
}

static long fs_trim(store_t *st, int64_t now_ms)
{
    (void)st, (void)now_ms;
    return 0;
}

static void fs_commit(int err);
static void fs_read_step(bool finish, int err);

static void fs_drain(store_t *st)
{
    (void)st;
    fs.closing = true;
    while (fs.napps) fs_commit(0);
    /* The read that is running (snapped) finishes; those still waiting are cancelled. */
    if (fs.nreads && fs.reads[0].snapped) fs_read_step(true, 0);
    while (fs.nreads) fs_read_step(true, SSE_ECANCELED);
}

static void fs_close(store_t *st)
{
    fs_drain(st);
}

static const store_ops_t fake_store_ops = {
    .name = "fuzz",
    .append = fs_append,
    .append_held = fs_append,
    .wake = fs_wake,
    .replay = fs_replay,
    .list = fs_list,
    .bounds = fs_bounds,
    .trim = fs_trim,
    .drain = fs_drain,
    .close = fs_close,
};

/* Commits the oldest held append (err != 0: it fails), calling its done like the writer. */
static void fs_commit(int err)
{
    pending_append_t a = fs.apps[0];
    memmove(fs.apps, fs.apps + 1, --fs.napps * sizeof *fs.apps);
    store_event_t ev = {.type = a.type, .user = a.user, .content = a.content, .content_len = a.len};
    if (!err && (nknown >= MAX_KNOWN || fs.latest >= MAX_IDS)) err = SSE_EFULL;
    if (!err) {
        ev.id = ++fs.latest;
        ev.time_ms = 1700000000000LL + (int64_t)ev.id;
        record_event(ev.id, a.type, a.user, a.content, a.len);
        publish_feed(&srv.bus, &ev); /* live delivery, as the SQLite writer feeds it before done */
    }
    a.done(a.arg, &ev, err);
    free(a.type);
    free(a.user);
    free(a.content);
}

static void fs_snapshot(pending_read_t *r, int err)
{
    r->snapped = true;
    fs_bounds(NULL, &r->page.bounds);
    if (!err && r->cancelled && atomic_load(r->cancelled)) err = SSE_ECANCELED;
    r->err = err;
    if (err) return;
    size_t cap = 16, n = 0, bytes = 0;
    r->rows = xmalloc(cap * sizeof *r->rows);
    uint64_t lo = fs.oldest ? fs.oldest : 1, hi, id;
    if (r->list) { /* newest first, below before */
        hi = r->before && r->before - 1 < fs.latest ? r->before - 1 : fs.latest;
        id = hi;
    } else { /* oldest first, in (after, upto] */
        hi = r->upto < fs.latest ? r->upto : fs.latest;
        id = r->after >= hi ? hi + 1 : (r->after + 1 > lo ? r->after + 1 : lo);
    }
    while (id >= lo && id <= hi && id >= 1) {
        const known_event_t *e = &evs[id];
        if (e->known && route_match(&r->f, e->type, e->user)) {
            size_t b = strlen(e->type) + strlen(e->user) + e->len;
            if (n == r->max_rows || (n > 0 && r->max_bytes && bytes + b > r->max_bytes)) {
                r->page.more = true;
                break;
            }
            if (n == cap) r->rows = xrealloc(r->rows, (cap *= 2) * sizeof *r->rows);
            r->rows[n++] = (store_event_t){.id = id, .time_ms = 1700000000000LL + (int64_t)id,
                                           .type = e->type, .user = e->user, .content = e->content,
                                           .content_len = e->len};
            bytes += b;
        }
        if (r->list) {
            if (id == lo) break;
            id--;
        } else {
            id++;
        }
    }
    r->page.rows = r->rows;
    r->page.n = n;
}

/*
 * Runs the oldest read: takes its snapshot (rows and bounds) if it has none yet, and
 * with finish posts its answer. Between the two steps commits may land, as they do
 * while the real reader thread works. err fails the read (SSE_ERR, SSE_ECANCELED).
 */
static void fs_read_step(bool finish, int err)
{
    pending_read_t *r = &fs.reads[0];
    if (!r->snapped) fs_snapshot(r, err);
    else if (err) r->err = err;
    if (!finish) return;
    pending_read_t done = *r;
    memmove(fs.reads, fs.reads + 1, --fs.nreads * sizeof *fs.reads);
    if (done.err) done.page = (store_page_t){.bounds = done.page.bounds};
    done.done(done.arg, &done.page, done.err);
    free(done.rows);
    filter_free(&done.f);
}

/* ---- clients ---- */

enum rx_state { RX_HEAD, RX_BODY, RX_SSE, RX_DONE };

typedef struct client {
    int fd;    /* our end of the socketpair, -1 once closed */
    conn_t *c; /* the server's end while it exists (checked against the worker's lists) */
    int ip;
    bool shut, eof;
    char *out; /* bytes still to write */
    size_t outlen;
    /* the response parser */
    enum rx_state rx;
    char head[HEAD_MAX];
    size_t headlen;
    size_t body_left;
    bool closing_response; /* the response being read says Connection: close */
    /* the event stream */
    char line[SSE_LINE_MAX];
    size_t linelen;
    bool blk_id, blk_type, blk_retry, blk_ping;
    uint64_t blk_idv;
    char blk_typev[SSE_MAX_NAME + 1];
    char data[4096];
    size_t datalen, ndata;
    bool saw_retry, saw_expired, saw_reset;
    uint64_t last_id, reset_id;
    size_t nevents;
    uint8_t seen[MAX_IDS / 8 + 1];
    /* the stream's filter, copied from its sub when the server made it a stream */
    bool stream, resumed; /* resumed: it catches up from the history (a replay) */
    filter_t f;
    uint64_t floor;   /* its Last-Event-ID when it resumed */
    uint64_t join_hi; /* the newest event the worker had fanned out when it joined */
} client_t;

static client_t clients[MAX_CLIENTS];
static const char *const ips[NIPS] = {"127.0.1.1", "127.0.1.2", "127.0.1.3", "::ffff:127.0.1.4"};

static uint64_t highest_given(void)
{
    return srv.store ? fs.latest : srv.bus.last_id;
}

/* One complete block of stream lines (up to its blank line). */
static void sse_dispatch(client_t *cl)
{
    bool any = cl->blk_id || cl->blk_type || cl->blk_retry || cl->blk_ping || cl->ndata;
    if (!any) return; /* a blank line alone dispatches nothing */
    FUZZ_CHECK(!cl->saw_expired); /* token-expired is the last thing a stream sends */
    if (cl->blk_ping || cl->blk_retry) {
        FUZZ_CHECK(!cl->blk_id && !cl->blk_type && cl->ndata == 0);
        if (cl->blk_retry) { /* sent once, right after the head, before any event */
            FUZZ_CHECK(!cl->saw_retry && cl->nevents == 0 && !cl->saw_reset);
            cl->saw_retry = true;
        }
    } else if (!cl->blk_id) {
        FUZZ_CHECK(cl->blk_type && strcmp(cl->blk_typev, "token-expired") == 0 && cl->ndata == 1);
        cl->saw_expired = true;
        seen_stats.expired++;
    } else {
        uint64_t id = cl->blk_idv;
        bool reset = cl->blk_type && strcmp(cl->blk_typev, "reset") == 0;
        FUZZ_CHECK(cl->ndata >= 1);
        /* Only a reset on an empty history may say 0: then a reconnect replays from the start. */
        FUZZ_CHECK((id >= 1 || reset) && id <= highest_given() && id <= MAX_IDS);
        FUZZ_CHECK(cl->saw_retry);
        if (reset) {
            /* A resume point outside the history: one reset, first. Its id is the newest
             * event the live feed after it does not carry (docs/api.md), so no later than
             * the newest id the data names; every event after it must come. */
            unsigned long long oldest, latest;
            char tail;
            char text[sizeof cl->data + 1];
            memcpy(text, cl->data, cl->datalen);
            text[cl->datalen] = '\0';
            FUZZ_CHECK(sscanf(text, "{\"oldest\":%llu,\"latest\":%llu%c", &oldest, &latest, &tail) == 3);
            FUZZ_CHECK(tail == '}' && strchr(text, '}') == text + cl->datalen - 1);
            FUZZ_CHECK(id <= latest && latest <= highest_given() && oldest <= latest + 1);
            FUZZ_CHECK(srv.store != NULL); /* only a history can say the resume point is outside it */
            FUZZ_CHECK(cl->nevents == 0 && !cl->saw_reset);
            cl->saw_reset = true;
            seen_stats.resets++;
            cl->reset_id = cl->last_id = id;
        } else {
            if (trace) fprintf(stderr, "fuzz_conn: client %d got id %llu\n", (int)(cl - clients), (unsigned long long)id);
            /* Strictly increasing: no event comes twice, none out of order. */
            if (cl->last_id >= id)
                fprintf(stderr, "fuzz_conn: stream got id %llu after %llu\n", (unsigned long long)id,
                        (unsigned long long)cl->last_id);
            FUZZ_CHECK(id > cl->last_id);
            FUZZ_CHECK(!(cl->seen[id / 8] & (1u << (id % 8))));
            /* Nothing at or below the resume point: the client had it. */
            if (cl->resumed && !cl->saw_reset) FUZZ_CHECK(id > cl->floor);
            const known_event_t *e = &evs[id];
            if (e->known) {
                FUZZ_CHECK(cl->blk_type == (*e->type != '\0'));
                if (cl->blk_type) FUZZ_CHECK(strcmp(cl->blk_typev, e->type) == 0);
                char norm[2048];
                FUZZ_CHECK(e->len <= sizeof norm);
                size_t nl = normalise(e->content, e->len, norm);
                FUZZ_CHECK(cl->datalen == nl && memcmp(cl->data, norm, nl) == 0);
                if (cl->stream && !route_match(&cl->f, e->type, e->user))
                    fprintf(stderr, "fuzz_conn: event %llu (type \"%s\" user \"%s\") reached stream user=\"%s\"\n",
                            (unsigned long long)id, e->type, e->user, cl->f.user);
                if (cl->stream) FUZZ_CHECK(route_match(&cl->f, e->type, e->user));
            }
            cl->seen[id / 8] |= (uint8_t)(1u << (id % 8));
            cl->last_id = id;
            cl->nevents++;
            seen_stats.events++;
        }
    }
    cl->blk_id = cl->blk_type = cl->blk_retry = cl->blk_ping = false;
    cl->datalen = cl->ndata = 0;
}

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    return replay_parse_id(s, n, out);
}

/* One stream line: only id, event, data, retry and the ping comment exist. */
static void sse_line(client_t *cl, const char *s, size_t n)
{
    if (n == 0) {
        sse_dispatch(cl);
    } else if (fuzz_starts(s, n, "id: ")) {
        FUZZ_CHECK(!cl->blk_id && !cl->blk_type && cl->ndata == 0); /* the first line of an event */
        FUZZ_CHECK(parse_u64(s + 4, n - 4, &cl->blk_idv));
        cl->blk_id = true;
    } else if (fuzz_starts(s, n, "event: ")) {
        FUZZ_CHECK(!cl->blk_type && cl->ndata == 0 && n - 7 <= SSE_MAX_NAME && n > 7);
        memcpy(cl->blk_typev, s + 7, n - 7);
        cl->blk_typev[n - 7] = '\0';
        FUZZ_CHECK(strlen(cl->blk_typev) == n - 7);
        cl->blk_type = true;
    } else if (fuzz_starts(s, n, "data: ")) {
        size_t add = n - 6 + (cl->ndata ? 1 : 0);
        FUZZ_CHECK(cl->datalen + add <= sizeof cl->data);
        if (cl->ndata) cl->data[cl->datalen++] = '\n';
        memcpy(cl->data + cl->datalen, s + 6, n - 6);
        cl->datalen += n - 6;
        cl->ndata++;
    } else if (fuzz_starts(s, n, "retry: ")) {
        uint64_t v;
        FUZZ_CHECK(!cl->blk_retry && parse_u64(s + 7, n - 7, &v) && v == (uint64_t)cfg.retry_ms);
        cl->blk_retry = true;
    } else {
        FUZZ_CHECK(n == 6 && memcmp(s, ": ping", 6) == 0);
        FUZZ_CHECK(!cl->blk_ping);
        cl->blk_ping = true;
    }
}

/* The value of header name in a head (NULL if absent); *n gets its length. */
static const char *head_value(const char *head, size_t len, const char *name, size_t *n)
{
    size_t nl = strlen(name);
    const char *p = memchr(head, '\n', len) + 1, *end = head + len - 2; /* past the status line */
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        if (!eol) break;
        if ((size_t)(eol - p) > nl + 2 && strncasecmp(p, name, nl) == 0 && p[nl] == ':' && p[nl + 1] == ' ') {
            *n = (size_t)(eol - p) - nl - 2;
            return p + nl + 2;
        }
        p = eol + 2;
    }
    return NULL;
}

/* A whole response head: a status the server gives, header lines, and how the body ends. */
static void parse_head(client_t *cl)
{
    const char *h = cl->head;
    size_t len = cl->headlen;
    FUZZ_CHECK(len >= 17 && memcmp(h, "HTTP/1.1 ", 9) == 0 && h[12] == ' ');
    int status = (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
    if (status >= 0 && status < 600) seen_stats.statuses[status]++;
    static const int known[] = {200, 201, 204, 400, 401, 403, 404, 405, 408,
                                413, 429, 431, 500, 501, 503, 505};
    bool ok = false;
    for (size_t i = 0; i < ARRAY_LEN(known); i++) ok |= status == known[i];
    FUZZ_CHECK(ok);
    /* Every line ends with CRLF, holds no other CR or LF, and each header has "Name: ". */
    const char *p = h, *end = h + len - 2;
    bool first = true;
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        FUZZ_CHECK(eol && eol[1] == '\n');
        FUZZ_CHECK(memchr(p, '\n', (size_t)(eol - p)) == NULL);
        if (!first) {
            const char *colon = memchr(p, ':', (size_t)(eol - p));
            FUZZ_CHECK(colon && colon > p && colon + 1 < eol && colon[1] == ' ');
        }
        first = false;
        p = eol + 2;
    }
    size_t n;
    const char *ct = head_value(h, len, "Content-Type", &n);
    bool stream = ct && n == 17 && memcmp(ct, "text/event-stream", 17) == 0;
    size_t cln = 0, connn = 0;
    const char *cl_v = head_value(h, len, "Content-Length", &cln);
    const char *conn = head_value(h, len, "Connection", &connn);
    cl->closing_response = conn && connn == 5 && memcmp(conn, "close", 5) == 0;
    if (stream) {
        FUZZ_CHECK(status == 200 && !cl_v && !cl->closing_response);
        cl->rx = RX_SSE;
        return;
    }
    uint64_t v;
    FUZZ_CHECK(cl_v && parse_u64(cl_v, cln, &v));
    cl->body_left = (size_t)v;
    /* Statuses that end a request early close the connection after them. */
    if (status == 408 || status == 413 || status == 431) FUZZ_CHECK(cl->closing_response);
    cl->rx = v ? RX_BODY : cl->closing_response ? RX_DONE : RX_HEAD;
}

/* Everything a client reads goes through here, in order. */
static void client_feed(client_t *cl, const char *p, size_t n)
{
    while (n > 0) {
        switch (cl->rx) {
        case RX_HEAD:
            FUZZ_CHECK(cl->headlen < HEAD_MAX);
            cl->head[cl->headlen++] = *p++, n--;
            if (cl->headlen >= 4 && memcmp(cl->head + cl->headlen - 4, "\r\n\r\n", 4) == 0) {
                parse_head(cl);
                cl->headlen = 0;
            }
            break;
        case RX_BODY: {
            size_t k = n < cl->body_left ? n : cl->body_left;
            cl->body_left -= k, p += k, n -= k;
            if (cl->body_left == 0) cl->rx = cl->closing_response ? RX_DONE : RX_HEAD;
            break;
        }
        case RX_SSE:
            if (*p == '\n') {
                sse_line(cl, cl->line, cl->linelen);
                cl->linelen = 0;
            } else {
                FUZZ_CHECK(*p != '\r'); /* streams are written with LF only */
                FUZZ_CHECK(cl->linelen < SSE_LINE_MAX);
                cl->line[cl->linelen++] = *p;
            }
            p++, n--;
            break;
        case RX_DONE:
            /* The server said Connection: close: nothing may follow that response. */
            fprintf(stderr, "fuzz_conn: %zu bytes after a Connection: close response: %.60s\n", n, p);
            FUZZ_CHECK(cl->rx != RX_DONE);
            break;
        }
    }
}

/* ---- the worker's side: which connections exist, and the checks of their state ---- */

static bool conn_exists(const conn_t *c)
{
    list_node_t *lists[2] = {&w->own.conns, &w->own.closing};
    for (int l = 0; l < 2; l++)
        for (list_node_t *p = lists[l]->next; p != lists[l]; p = p->next)
            if (container_of(p, conn_t, link) == c) return true;
    return false;
}

static bool is_slot_entry(const frame_t *e)
{
    return ((uintptr_t)e & 1u) != 0;
}

static conn_slot_t *slot_of(frame_t *e)
{
    return (conn_slot_t *)((uintptr_t)e & ~(uintptr_t)1u);
}

/* The same test as http1.c's answers_over() (keep them in step): past it, nothing is read. */
static bool answers_over(const conn_t *c)
{
    return c->parked || c->last_request || c->qbytes + c->reserved > HTTP1_ANSWER_BYTES ||
           c->holes >= HTTP1_MAX_SLOTS;
}

/*
 * One connection's output queue: qbytes is the bytes of its frames less what was
 * written of the first, holes its slot entries, reserved their reservations; and
 * what it holds stays within its bound (a stream: SSE_MAX_QUEUE_BYTES, over which by
 * one frame at most; a request connection: HTTP1_ANSWER_BYTES, over which by one answer
 * or reservation, since requests are not read past it).
 */
static void check_queue(const conn_t *c, bool open)
{
    size_t bytes = 0, reserved = 0, largest = 0, largest_reserve = 0;
    uint32_t holes = 0;
    FUZZ_CHECK(c->qlen <= c->qcap);
    for (uint32_t i = 0; i < c->qlen; i++) {
        frame_t *e = c->q[(c->qhead + i) % c->qcap];
        if (is_slot_entry(e)) {
            conn_slot_t *s = slot_of(e);
            FUZZ_CHECK(s->c == c);
            holes++;
            seen_stats.slots_seen++;
            reserved += s->reserve;
            if (s->reserve > largest_reserve) largest_reserve = s->reserve;
        } else {
            FUZZ_CHECK(e->len > 0 && atomic_load(&e->refs) >= 1);
            bytes += e->len;
            if (e->len > largest) largest = e->len;
        }
    }
    if (c->qlen > 0 && !is_slot_entry(c->q[c->qhead])) FUZZ_CHECK(c->qoff < c->q[c->qhead]->len);
    else FUZZ_CHECK(c->qoff == 0);
    FUZZ_CHECK(c->qbytes == bytes - c->qoff);
    FUZZ_CHECK(c->holes == holes);
    FUZZ_CHECK(c->async <= c->holes); /* a fill nobody owes would wrap it: never freed */
    if (!open) return;
    FUZZ_CHECK(c->reserved == reserved);
    size_t held = c->qbytes + c->reserved;
    if (c->state == CONN_STREAM) {
        if (held > (size_t)cfg.max_queue_bytes + largest)
            fprintf(stderr, "fuzz_conn: stream holds %zu bytes (largest frame %zu)\n", held, largest);
        FUZZ_CHECK(held <= (size_t)cfg.max_queue_bytes + largest);
    } else if (c->state == CONN_REQUEST) {
        size_t one = largest > largest_reserve ? largest : largest_reserve;
        if (held > HTTP1_ANSWER_BYTES + one + 8192)
            fprintf(stderr, "fuzz_conn: request connection holds %zu bytes (largest %zu)\n", held, one);
        FUZZ_CHECK(held <= HTTP1_ANSWER_BYTES + one + 8192);
    } else if (c->state == CONN_LINGER) {
        FUZZ_CHECK(c->qlen == 0); /* it lingers only once everything is written */
    }
}

/* One timeout list: sorted by deadline, each member waiting for that kind. */
static size_t check_timer_list(list_node_t *head, enum conn_wait kind)
{
    size_t n = 0;
    ev_tstamp last = 0;
    for (list_node_t *p = head->next; p != head; p = p->next, n++) {
        conn_t *c = container_of(p, conn_t, timer);
        FUZZ_CHECK(c->wait == kind && c->state != CONN_CLOSED);
        FUZZ_CHECK(c->deadline >= last); /* a sweep stops at the first deadline not yet due */
        last = c->deadline;
        FUZZ_CHECK(n < 1000);
    }
    return n;
}

static size_t list_len(const list_node_t *head)
{
    size_t n = 0;
    for (const list_node_t *p = head->next; p != head; p = p->next) {
        n++;
        FUZZ_CHECK(n < 100000);
    }
    return n;
}

static void check_worker(void)
{
    size_t nopen = 0, nstreams = 0, nunfiltered = 0, nwaiting = 0;
    size_t per_ip[NIPS] = {0};
    const char *users[MAX_CLIENTS];
    size_t nusers = 0;
    const char *types[MAX_CLIENTS * SUB_MAX_TYPES];
    size_t ntypes = 0;
    for (list_node_t *p = w->own.conns.next; p != &w->own.conns; p = p->next) {
        conn_t *c = container_of(p, conn_t, link);
        int owner = -1;
        for (int k = 0; k < MAX_CLIENTS; k++)
            if (clients[k].c == c) owner = k;
        FUZZ_CHECK(owner >= 0); /* only the driver opens connections */
        FUZZ_CHECK(c->state != CONN_CLOSED && c->own == &w->own && c->fd >= 0);
        FUZZ_CHECK(nopen < MAX_CLIENTS);
        nopen++;
        per_ip[clients[owner].ip]++;
        if (c->doomed) FUZZ_CHECK(list_linked(&c->pending));
        check_queue(c, true);
        if (c->wait != WAIT_NONE) nwaiting++;
        if (c->state == CONN_STREAM) {
            /* A stream reads nothing but the client's goodbye and waits for no deadline. */
            FUZZ_CHECK(c->sub && c->sub->owner == c && list_linked(&c->sub->all.link));
            FUZZ_CHECK(c->rbuf == NULL && c->hr == NULL && c->wait == WAIT_NONE);
        }
        /* The hub holds open streams, and ended ones (lingering) until they close. */
        if (c->sub && list_linked(&c->sub->all.link)) {
            FUZZ_CHECK(c->state == CONN_STREAM || c->state == CONN_LINGER);
            nstreams++;
            const sub_t *s = c->sub;
            if (s->ntypes == 0 && !s->strict) nunfiltered++;
            if (s->user) {
                bool dup = false;
                for (size_t i = 0; i < nusers; i++) dup |= strcmp(users[i], s->user) == 0;
                if (!dup) users[nusers++] = s->user;
            }
            for (uint32_t t = 0; t < s->ntypes; t++) {
                for (uint32_t u = 0; u < t; u++) FUZZ_CHECK(strcmp(s->types[u], s->types[t]) != 0);
                bool dup = false;
                for (size_t i = 0; i < ntypes; i++) dup |= strcmp(types[i], s->types[t]) == 0;
                if (!dup) types[ntypes++] = s->types[t];
            }
        }
        if (c->state == CONN_REQUEST && conn_alive(c) && !w->stopped) {
            /* Under its bound it reads requests; over it, it waits for the client to read. */
            if (ev_is_active(&c->rio) == answers_over(c)) {
                fprintf(stderr, "fuzz_conn: request connection reading=%d over=%d parked=%d qbytes=%zu "
                                "reserved=%zu holes=%u read_paused=%d\n",
                        ev_is_active(&c->rio), answers_over(c), c->parked, c->qbytes, (size_t)c->reserved,
                        c->holes, c->read_paused);
                FUZZ_CHECK(ev_is_active(&c->rio) != answers_over(c));
            }
            /* Whatever it waits for, a deadline ends it if the client goes silent. */
            FUZZ_CHECK(c->wait != WAIT_NONE);
        }
    }
    for (list_node_t *p = w->own.closing.next; p != &w->own.closing; p = p->next) {
        conn_t *c = container_of(p, conn_t, link);
        FUZZ_CHECK(c->state == CONN_CLOSED && c->fd == -1 && !list_linked(&c->timer));
        FUZZ_CHECK(!c->sub || !list_linked(&c->sub->all.link));
        check_queue(c, false);
    }
    size_t timed = check_timer_list(&w->own.head_wait, WAIT_HEAD) + check_timer_list(&w->own.idle_wait, WAIT_IDLE) +
                   check_timer_list(&w->own.linger, WAIT_LINGER);
    FUZZ_CHECK(timed == nwaiting);
    FUZZ_CHECK((size_t)atomic_load(&srv.nconns) == nopen);
    /* The hub holds exactly the open streams, each list once per user and per type. */
    FUZZ_CHECK(w->sh.hub.nsubs == nstreams);
    FUZZ_CHECK(list_len(&w->sh.hub.all) == nstreams);
    FUZZ_CHECK(list_len(&w->sh.hub.unfiltered) == nunfiltered);
    FUZZ_CHECK(w->sh.hub.by_user.count == nusers);
    FUZZ_CHECK(w->sh.hub.by_type.count == ntypes);
    FUZZ_CHECK(w->sh.hub.walking == NULL);
    /* The per-address counts match the open connections (a lost count would refuse clients). */
    size_t nips = 0;
    for (int i = 0; i < NIPS; i++) {
        char key[NETADDR_KEY_LEN];
        netaddr_key_of(ips[i], key); /* the caps count an address by its key */
        uintptr_t n = (uintptr_t)strmap_get(&srv.caps.per_ip, key);
        FUZZ_CHECK(n == per_ip[i]);
        nips += per_ip[i] > 0;
    }
    FUZZ_CHECK(srv.caps.per_ip.count == nips);
    /* Each user's tickets name open streams of that user, at most the cap of them. */
    for (size_t b = 0; b < srv.caps.per_user.nbuckets; b++) {
        for (strmap_entry_t *e = srv.caps.per_user.buckets[b]; e; e = e->next) {
            int n = 0;
            for (stream_ticket_t *t = e->value; t; t = t->next, n++) {
                conn_t *c = t->conn;
                FUZZ_CHECK(c && t->owner == &w->api && strcmp(t->user, e->key) == 0);
                FUZZ_CHECK(conn_exists(c) && c->ticket == t && c->sub);
                FUZZ_CHECK(c->state == CONN_STREAM || c->state == CONN_LINGER);
            }
            FUZZ_CHECK(n >= 1 && n <= srv.caps.max_per_user);
        }
    }
}

/*
 * After each loop iteration: forgets server connections that were freed, and copies
 * the filter of each new stream before it can write a byte (a stream made in one
 * iteration writes in the next one's flush), so every event it delivers is checked.
 */
static void observe(void)
{
    for (int k = 0; k < MAX_CLIENTS; k++) {
        client_t *cl = &clients[k];
        if (cl->c && !conn_exists(cl->c)) cl->c = NULL;
        conn_t *c = cl->c;
        if (!c || cl->stream || c->state != CONN_STREAM) continue;
        cl->stream = true;
        seen_stats.streams++;
        cl->f.user = xstrdup(c->sub->user ? c->sub->user : "");
        cl->f.ntypes = c->sub->ntypes;
        for (uint32_t i = 0; i < c->sub->ntypes; i++) cl->f.types[i] = xstrdup(c->sub->types[i]);
        cl->f.strict = c->sub->strict;
        cl->resumed = c->replay != NULL;
        cl->floor = c->sub->floor;
        cl->join_hi = w->sh.last_seen_id;
    }
    check_worker();
}

static void on_stop_request(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)loop, (void)a, (void)revents;
    stop_asked = true;
}

static void run_loop(int n)
{
    for (int i = 0; i < n; i++) {
        ev_run(w->own.loop, EVRUN_NOWAIT);
        observe();
    }
    ev_run(main_loop, EVRUN_NOWAIT); /* POST /admin/stop asks main() through this loop */
}

/* main()'s graceful stop: drain (no new requests), the store drained, then close. */
static void graceful_stop(void)
{
    if (w->stopped) return;
    atomic_store(&srv.stopping, STOP_DRAIN);
    worker_wake(w);
    run_loop(2);
    if (srv.store) srv.store->ops->drain(srv.store);
    atomic_store(&srv.stopping, STOP_CLOSE);
    worker_wake(w);
    run_loop(2);
    /* Its grace period ends when the program says (a tick), not after two real seconds. */
    if (w->stopped == STOP_CLOSE) ev_timer_stop(w->own.loop, &w->stop_w);
}

/* ---- client operations ---- */

static void client_write(client_t *cl, size_t max)
{
    if (cl->fd < 0 || cl->shut) {
        cl->outlen = 0;
        return;
    }
    size_t n = cl->outlen < max ? cl->outlen : max;
    if (n == 0) return;
    ssize_t r = write(cl->fd, cl->out, n);
    if (r < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) cl->outlen = 0; /* the server has gone */
        return;
    }
    memmove(cl->out, cl->out + r, cl->outlen - (size_t)r);
    cl->outlen -= (size_t)r;
}

static void client_queue(client_t *cl, const void *p, size_t n)
{
    if (cl->fd < 0 || cl->shut) return;
    if (n > OUTBOX - cl->outlen) n = OUTBOX - cl->outlen;
    memcpy(cl->out + cl->outlen, p, n);
    cl->outlen += n;
}

/* Reads up to max bytes (a few calls at most); returns how many. */
static size_t client_read(client_t *cl, size_t max)
{
    if (cl->fd < 0 || cl->eof) return 0;
    static char buf[64 * 1024];
    size_t got = 0;
    while (got < max) {
        size_t want = max - got < sizeof buf ? max - got : sizeof buf;
        ssize_t r = read(cl->fd, buf, want);
        if (r == 0) {
            cl->eof = true;
            break;
        }
        if (r < 0) {
            if (errno == ECONNRESET) cl->eof = true;
            break;
        }
        client_feed(cl, buf, (size_t)r);
        got += (size_t)r;
    }
    return got;
}

static void client_close(client_t *cl)
{
    if (cl->fd >= 0) close(cl->fd);
    cl->fd = -1;
    cl->outlen = 0;
}

static void client_reset(client_t *cl)
{
    filter_free(&cl->f);
    char *out = cl->out;
    memset(cl, 0, sizeof *cl);
    cl->out = out;
    cl->fd = -1;
}

static void op_open(uint8_t a, uint8_t b)
{
    if (w->stopped) return; /* a stopping worker accepts nothing */
    int k = -1;
    for (int i = 0; i < MAX_CLIENTS && k < 0; i++)
        if (clients[i].fd < 0 && clients[i].c == NULL) k = i;
    if (k < 0) return;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv)) return;
    client_t *cl = &clients[k];
    client_reset(cl);
    cl->ip = a % NIPS;
    if (b & 1) { /* a slow network: small kernel buffers, so writes stall early */
        int sz = 4096;
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    }
    /* As on_accept(): count the connection, then its address's key, refusing past either cap. */
    char key[NETADDR_KEY_LEN];
    netaddr_key_of(ips[cl->ip], key);
    if (atomic_fetch_add(&srv.nconns, 1) >= srv.max_conns || !caps_ip_enter(&srv.caps, key)) {
        atomic_fetch_sub(&srv.nconns, 1);
        close(sv[0]);
        close(sv[1]);
        return;
    }
    cl->c = conn_new(&w->own, sv[0], ips[cl->ip], NULL);
    cl->c->ip_counted = true;
    cl->fd = sv[1];
}

/* ---- canned requests ---- */

static const char *const sub_types[] = {
    "", "news", "alerts", "news,news", "chat&type=news", "a%0Ab", "", "other",
};
static const char *const pub_types[] = {"", "news", "alerts", "chat", "other"};
static const char *const pub_users[] = {"", "alice", "bob", "carol", "dave", "mallory"};

static size_t put(char *out, size_t cap, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static size_t put(char *out, size_t cap, size_t n, const char *fmt, ...)
{
    if (n >= cap) return n;
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(out + n, cap - n, fmt, ap);
    va_end(ap);
    if (r < 0) return n;
    return n + (size_t)r < cap ? n + (size_t)r : cap - 1;
}

/* The query part asking for types: the choice's names, or 33 (one too many). */
static size_t put_types(char *out, size_t cap, size_t n, int choice)
{
    if (choice == 6) {
        for (int i = 0; i < SUB_MAX_TYPES + 1; i++) n = put(out, cap, n, "&type=t%d", i);
        return n;
    }
    if (*sub_types[choice]) n = put(out, cap, n, "&type=%s", sub_types[choice]);
    return n;
}

static const char *const resume_values[] = {NULL, "0", "1", "3", "1000", "-1", "abc", NULL,
                                            "99999999999999999999999", "5"};

static size_t req_events(char *out, size_t cap, int how, uint8_t p1, uint8_t p2)
{
    int tok = p1 % NTOK, wid = (p1 / NTOK) % NWRAP, types = p2 % 8, resume = (p2 / 8) % 10;
    bool origin = p2 & 0x80, bad = (p1 / (NTOK * NWRAP)) % 7 == 6;
    size_t n = put(out, cap, 0, "GET /events?x=1");
    if (how == 0) n = put(out, cap, n, "&token=%s", bad ? "bm90LWEtdG9rZW4" : wrapped[tok][wid]);
    n = put_types(out, cap, n, types);
    if (resume == 7) n = put(out, cap, n, "&lastEventId=2");
    n = put(out, cap, n, " HTTP/1.1\r\nHost: hub\r\n");
    if (how == 1) n = put(out, cap, n, "Authorization: Bearer %s\r\n", bad ? "x.y.z" : jwts[tok]);
    if (how == 2) n = put(out, cap, n, "Cookie: a=b; sse_token=%s\r\n", wrapped_raw[tok][wid]);
    if (resume_values[resume]) n = put(out, cap, n, "Last-Event-ID: %s\r\n", resume_values[resume]);
    if (origin) n = put(out, cap, n, "Origin: https://other.example\r\n");
    return put(out, cap, n, "\r\n");
}

static size_t req_simple(char *out, size_t cap, size_t n, const char *path, uint8_t variant, bool last)
{
    static const char *const versions[] = {"HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/1.0"};
    int v = variant % 4;
    n = put(out, cap, n, "GET %s %s\r\nHost: hub\r\n", path, versions[v]);
    if (v == 1 && last) n = put(out, cap, n, "Connection: close\r\n");
    if (v == 3) n = put(out, cap, n, "Connection: keep-alive\r\n");
    if (variant & 4) n = put(out, cap, n, "Origin: https://app.example\r\n");
    return put(out, cap, n, "\r\n");
}

static size_t req_post(char *out, size_t cap, const char *path, const char *auth, const char *body,
                       bool close_after)
{
    size_t n = put(out, cap, 0, "POST %s HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n", path);
    if (auth) n = put(out, cap, n, "Authorization: Bearer %s\r\n", auth);
    if (close_after) n = put(out, cap, n, "Connection: close\r\n");
    return put(out, cap, n, "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
}

static size_t req_broadcast(char *out, size_t cap, uint8_t p1, uint8_t p2)
{
    static const char *const bodies[] = {
        "{\"content\":\"hi\"}",
        "{\"content\":\"typed\",\"type\":\"news\"}",
        "{\"content\":\"for alice\",\"user\":\"alice\"}",
        "{\"content\":\"bob alerts\",\"type\":\"alerts\",\"user\":\"bob\"}",
        "{\"content\":\"a\\nb\\r\\nc\\rd\",\"type\":\"chat\"}",
        "{\"content\":",
        "{\"content\":5}",
        "{\"content\":\"x\",\"type\":\"a\\nb\"}",
        "{\"content\":\"dave\",\"type\":\"news\",\"user\":\"dave\"}",
        "{\"content\":\"carol\",\"user\":\"carol\",\"type\":null}",
    };
    const char *auth[] = {jwts[T_PUB], jwts[T_ADMIN], jwts[T_ALICE], NULL};
    int b = p2 % (ARRAY_LEN(bodies) + 1);
    char big[1100];
    const char *body;
    if (b == (int)ARRAY_LEN(bodies)) { /* near the body limit, many lines */
        size_t k = (size_t)snprintf(big, sizeof big, "{\"content\":\"");
        while (k < 980) k += (size_t)snprintf(big + k, sizeof big - k, "line\\n");
        snprintf(big + k, sizeof big - k, "\"}");
        body = big;
    } else {
        body = bodies[b];
    }
    return req_post(out, cap, "/broadcast", auth[p1 % 4], body, p1 & 0x80);
}

static size_t req_login(char *out, size_t cap, uint8_t p1)
{
    static const char *const bodies[] = {
        "{\"username\":\"client\",\"password\":\"client-pw\",\"id\":\"alice\"}",
        "{\"username\":\"pub\",\"password\":\"pub-pw\"}",
        "{\"username\":\"client\",\"password\":\"wrong\",\"id\":\"x\"}",
        "{\"username\":\"\",\"password\":\"\"}",
        "{\"username\":5}",
        "[1,2",
    };
    return req_post(out, cap, "/login", NULL, bodies[p1 % ARRAY_LEN(bodies)], p1 & 0x80);
}

static size_t req_notifications(char *out, size_t cap, uint8_t p1, uint8_t p2)
{
    static const char *const extra[] = {"", "&limit=1", "&limit=2&before=3", "&limit=0",
                                        "&before=abc", "&type=news", "&limit=500&type=alerts"};
    int tok = p1 % NTOK, wid = (p1 / NTOK) % NWRAP;
    return put(out, cap, 0, "GET /notifications?token=%s%s HTTP/1.1\r\nHost: hub\r\n\r\n",
               wrapped[tok][wid], extra[p2 % ARRAY_LEN(extra)]);
}

static size_t req_malformed(char *out, size_t cap, uint8_t p1)
{
    size_t n = 0;
    switch (p1 % 12) {
    case 0: return put(out, cap, 0, "GET /\r\n\r\n");
    case 1: /* a head over SSE_MAX_HEADER_BYTES: 431 */
        n = put(out, cap, 0, "GET /healthz HTTP/1.1\r\nX-Long: ");
        for (int i = 0; i < 2200; i++) n = put(out, cap, n, "a");
        return put(out, cap, n, "\r\n\r\n");
    case 2: return put(out, cap, 0, "POST /broadcast HTTP/1.1\r\nContent-Length: 5000\r\n\r\nabc");
    case 3:
        return put(out, cap, 0,
                   "POST /broadcast HTTP/1.1\r\nAuthorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5\r\n{\"con\r\n9\r\ntent\":\"c\"\r\n1\r\n}\r\n0\r\n\r\n",
                   jwts[T_PUB]);
    case 4: return put(out, cap, 0, "BREW /pot HTTP/1.1\r\n\r\n");
    case 5: return put(out, cap, 0, "GET /healthz HTTP/2.0\r\n\r\n");
    case 6: { /* a TLS ClientHello on the plain port */
        static const char hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
        memcpy(out, hello, sizeof hello - 1);
        return sizeof hello - 1;
    }
    case 7: return put(out, cap, 0, "OPTIONS /events HTTP/1.1\r\nOrigin: https://app.example\r\n\r\n");
    case 8: return put(out, cap, 0, "GET /nope HTTP/1.1\r\n\r\n");
    case 9: return put(out, cap, 0, "GET /broadcast HTTP/1.1\r\n\r\n");
    case 10: return put(out, cap, 0, "POST /client/big.js HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    default: return put(out, cap, 0, "GET /healthz HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n");
    }
}

/* Builds canned request t with parameters p1, p2 into out; returns its length. */
static size_t build_request(char *out, size_t cap, uint8_t t, uint8_t p1, uint8_t p2)
{
    size_t n = 0;
    switch (t % 13) {
    case 0: return req_events(out, cap, 0, p1, p2);
    case 1: return req_events(out, cap, 1, p1, p2);
    case 2: return req_events(out, cap, 2, p1, p2);
    case 3:
        for (int i = 0, r = 1 + p1 % 16; i < r; i++) n = req_simple(out, cap, n, "/healthz", p2, i == r - 1);
        return n;
    case 4: return req_broadcast(out, cap, p1, p2);
    case 5:
        for (int i = 0, r = 1 + p1 % 16; i < r; i++)
            n = req_simple(out, cap, n, (p1 & 0x80) ? "/client/small.js" : "/client/big.js", p2, i == r - 1);
        return n;
    case 6: return req_login(out, cap, p1);
    case 7: return req_notifications(out, cap, p1, p2);
    case 8:
        return req_post(out, cap, "/token", p1 & 1 ? jwts[T_PUB] : jwts[T_ALICE],
                        p2 & 1 ? "{\"user\":\"alice\",\"types\":[\"news\"],\"ttl\":60}" : "{\"user\":\"\"}", false);
    case 9: return req_post(out, cap, "/admin/stop", p1 & 1 ? jwts[T_ADMIN] : jwts[T_PUB], "", false);
    case 10: return req_malformed(out, cap, p1);
    case 11: /* an answer queued before a stream: the stream waits for it (conn_park) */
        n = req_simple(out, cap, 0, "/healthz", 0, false);
        return n + req_events(out + n, cap - n, 0, p1, p2);
    default: /* a stream request followed by more requests in the same bytes */
        n = req_events(out, cap, 1, p1, p2);
        return n + req_simple(out + n, cap - n, 0, "/healthz", 0, false);
    }
}

/* ---- events published by the program ---- */

static void op_publish(uint8_t a, uint8_t b, uint8_t cbyte, uint8_t count)
{
    const char *type = pub_types[a % ARRAY_LEN(pub_types)];
    const char *user = pub_users[b % ARRAY_LEN(pub_users)];
    char content[1024];
    size_t len;
    switch (cbyte % 5) {
    case 0: len = (size_t)snprintf(content, sizeof content, "hello %u", cbyte); break;
    case 1: len = (size_t)snprintf(content, sizeof content, "a\nb\r\nc\rd\n"); break;
    case 2: len = 0; break;
    case 3: len = 300, memset(content, 'x', len); break;
    default:
        len = 1000;
        for (size_t i = 0; i < len; i++) content[i] = i % 7 == 6 ? '\n' : 'y';
    }
    for (int i = 0, n = 1 + count % 16; i < n; i++) {
        if (nknown >= MAX_KNOWN || highest_given() >= MAX_IDS - 64) return;
        if (srv.store) { /* as the store's writer: kept first, then fanned out */
            uint64_t id = ++fs.latest;
            record_event(id, type, user, content, len);
            frame_t *f = sse_encode(id, type, user, content, len);
            bus_fanout(&srv.bus, f);
            frame_unref(f);
        } else {
            uint64_t id = bus_publish(&srv.bus, type, user, content, len);
            record_event(id, type, user, content, len);
        }
    }
}

/* ---- the program ---- */

typedef struct program {
    const uint8_t *p;
    size_t n, at;
} program_t;

static uint8_t next(program_t *pg)
{
    return pg->at < pg->n ? pg->p[pg->at++] : 0;
}

enum {
    OP_OPEN, OP_RAW, OP_REQUEST, OP_FLUSH, OP_READ, OP_READ_ALL, OP_SHUT, OP_CLOSE, OP_PUBLISH,
    OP_COMMIT, OP_STORE_READ, OP_TICK, OP_HEARTBEAT, OP_EXPIRE, OP_RUN, OP_TRIM, OP_STOP, NOPS
};

static client_t *pick(program_t *pg)
{
    return &clients[next(pg) % MAX_CLIENTS];
}

static void run_op(program_t *pg)
{
    uint8_t code = next(pg);
    int rounds = (code & 0x80) ? 0 : 2; /* two rounds: one reads a request, the next flushes */
    switch (code % 0x80 % NOPS) {
    case OP_OPEN: {
        uint8_t a = next(pg), b = next(pg);
        op_open(a, b);
        break;
    }
    case OP_RAW: {
        client_t *cl = pick(pg);
        size_t n = (size_t)next(pg) + 1;
        if (n > pg->n - pg->at) n = pg->n - pg->at;
        client_queue(cl, pg->p + pg->at, n);
        pg->at += n;
        client_write(cl, SIZE_MAX);
        break;
    }
    case OP_REQUEST: {
        client_t *cl = pick(pg);
        uint8_t t = next(pg), p1 = next(pg), p2 = next(pg), split = next(pg);
        static char req[OUTBOX];
        size_t n = build_request(req, sizeof req, t, p1, p2);
        size_t before = cl->outlen;
        client_queue(cl, req, n);
        /* split 0 writes it whole; else only its first split bytes go now, the rest later. */
        client_write(cl, split ? before + split : SIZE_MAX);
        break;
    }
    case OP_FLUSH: client_write(pick(pg), SIZE_MAX); break;
    case OP_READ: {
        client_t *cl = pick(pg);
        client_read(cl, ((size_t)next(pg) + 1) * 16);
        break;
    }
    case OP_READ_ALL: client_read(pick(pg), SIZE_MAX); break;
    case OP_SHUT: {
        client_t *cl = pick(pg);
        if (cl->fd >= 0 && !cl->shut) shutdown(cl->fd, SHUT_WR);
        cl->shut = true;
        cl->outlen = 0;
        break;
    }
    case OP_CLOSE: client_close(pick(pg)); break;
    case OP_PUBLISH: {
        uint8_t a = next(pg), b = next(pg), c = next(pg), n = next(pg);
        op_publish(a, b, c, n);
        break;
    }
    case OP_COMMIT: {
        uint8_t a = next(pg);
        int err = a & 0x40 ? (a & 0x20 ? SSE_EFULL : SSE_ERR) : 0;
        for (int i = 0, n = a % 8 ? a % 8 : 64; i < n && fs.napps; i++) fs_commit(err);
        break;
    }
    case OP_STORE_READ: {
        uint8_t a = next(pg);
        int err = (a & 0x30) == 0x30 ? SSE_ERR : 0;
        for (int i = 0, n = 1 + a % 4; i < n && fs.nreads; i++) fs_read_step(!(a & 0x40), err);
        break;
    }
    case OP_TICK: {
        /* Past STOP_CLOSE the worker sweeps no more: only its grace period ends. */
        static const double later[] = {0.5, 2.5, 11, 61, 1e6};
        double by = later[next(pg) % 5];
        if (w->stopped != STOP_CLOSE) conn_sweep(&w->own, ev_now(w->own.loop) + by);
        else if (by > STOP_GRACE) ev_invoke(w->own.loop, &w->stop_w, EV_TIMER);
        break;
    }
    case OP_HEARTBEAT:
        if (w->stopped != STOP_CLOSE) ev_invoke(w->own.loop, &w->heartbeat_w, EV_TIMER);
        break;
    case OP_EXPIRE: {
        /* The token of this stream has expired: the next sweep must end the stream. */
        client_t *cl = pick(pg);
        if (cl->c && cl->c->state == CONN_STREAM && cl->c->sub) {
            cl->c->sub->exp = 1;
            w->api.next_expiry = 1; /* as api_events() notes a stream's expiry */
        }
        if (w->stopped != STOP_CLOSE) ev_invoke(w->own.loop, &w->sweep_w, EV_TIMER);
        break;
    }
    case OP_RUN: rounds = 1 + next(pg) % 8; break;
    case OP_TRIM: {
        uint8_t a = next(pg);
        if (!srv.store) break;
        if (fs.oldest == 0) fs.oldest = 1;
        fs.oldest += 1 + a % 8;
        if (fs.oldest > fs.latest + 1) fs.oldest = fs.latest + 1;
        gaps_allowed = true;
        break;
    }
    case OP_STOP: graceful_stop(); break;
    }
    observe();
    run_loop(rounds);
    if (stop_asked) {
        stop_asked = false;
        graceful_stop();
    }
}

/* True when nothing is left to move: no store work, no message, no output, no bytes read. */
static bool settle_round(void)
{
    bool moved = false;
    while (fs.napps) fs_commit(0), moved = true;
    while (fs.nreads) fs_read_step(true, 0), moved = true;
    run_loop(2);
    if (stop_asked) {
        stop_asked = false;
        graceful_stop();
        moved = true;
    }
    for (int k = 0; k < MAX_CLIENTS; k++) moved |= client_read(&clients[k], SIZE_MAX) > 0;
    pthread_mutex_lock(&w->inbox_mu);
    moved |= w->inbox_len > 0 && ev_is_active(&w->wake);
    pthread_mutex_unlock(&w->inbox_mu);
    moved |= !list_empty(&w->own.pending) || !list_empty(&w->own.doomed);
    return !moved;
}

/*
 * Every healthy stream (still open, every byte written and read, no replay left) has
 * every event meant for it: those after its resume point, or after the newest event
 * the worker had fanned out when it joined.
 */
static void check_complete(void)
{
    for (int k = 0; k < MAX_CLIENTS; k++) {
        client_t *cl = &clients[k];
        conn_t *c = cl->c;
        if (!cl->stream || !c || c->state != CONN_STREAM || !conn_alive(c) || c->qlen || c->replay)
            continue;
        if (cl->fd < 0 || cl->eof || cl->rx != RX_SSE || cl->linelen || w->stopped) continue;
        if (cl->resumed && gaps_allowed) continue;
        uint64_t from = cl->saw_reset ? cl->reset_id : cl->resumed ? cl->floor : cl->join_hi;
        for (uint64_t id = from + 1; id <= highest_given() && id <= MAX_IDS; id++) {
            const known_event_t *e = &evs[id];
            if (!e->known || !route_match(&cl->f, e->type, e->user)) continue;
            if (!(cl->seen[id / 8] & (1u << (id % 8))))
                fprintf(stderr, "fuzz_conn: stream %d (user \"%s\", resumed %d from %llu) missed event %llu "
                                "(type \"%s\" user \"%s\")\n",
                        k, cl->f.user, cl->resumed, (unsigned long long)from, (unsigned long long)id,
                        e->type, e->user);
            FUZZ_CHECK(cl->seen[id / 8] & (1u << (id % 8)));
        }
    }
}

/* Ends the input: settles, checks delivery, closes every client, and waits for every
 * connection to be closed and freed; then the worker must be as it was at the start. */
static void finish_input(void)
{
    int r = 0;
    while (!settle_round()) FUZZ_CHECK(++r < DRAIN_ROUNDS); /* the server must come to rest */
    check_complete();
    for (int k = 0; k < MAX_CLIENTS; k++) client_close(&clients[k]);
    for (r = 0; r < 50 && !(list_empty(&w->own.conns) && list_empty(&w->own.closing)); r++) {
        settle_round();
        if (r == 20 && w->stopped != STOP_CLOSE) conn_sweep(&w->own, ev_now(w->own.loop) + 1e6); /* every deadline passes */
        if (r == 30 && w->stopped == STOP_CLOSE) ev_invoke(w->own.loop, &w->stop_w, EV_TIMER);
    }
    if (!list_empty(&w->own.conns) || !list_empty(&w->own.closing)) {
        for (list_node_t *p = w->own.conns.next; p != &w->own.conns; p = p->next) {
            conn_t *c = container_of(p, conn_t, link);
            fprintf(stderr, "fuzz_conn: open after its client closed: state=%d doomed=%d qlen=%u holes=%u "
                            "async=%u wait=%d reading=%d\n",
                    c->state, c->doomed != 0, c->qlen, c->holes, c->async, c->wait,
                    ev_is_active(&c->rio));
        }
        for (list_node_t *p = w->own.closing.next; p != &w->own.closing; p = p->next) {
            conn_t *c = container_of(p, conn_t, link);
            fprintf(stderr, "fuzz_conn: closed but not freed: holes=%u async=%u\n", c->holes, c->async);
        }
    }
    FUZZ_CHECK(list_empty(&w->own.conns));   /* a connection outlives its client */
    FUZZ_CHECK(list_empty(&w->own.closing)); /* a closed connection is never freed */
    FUZZ_CHECK(list_empty(&w->own.pending) && list_empty(&w->own.doomed));
    FUZZ_CHECK(list_empty(&w->own.head_wait) && list_empty(&w->own.idle_wait) && list_empty(&w->own.linger));
    FUZZ_CHECK(w->sh.hub.nsubs == 0 && w->sh.hub.by_user.count == 0 && w->sh.hub.by_type.count == 0);
    FUZZ_CHECK(atomic_load(&srv.nconns) == 0);
    FUZZ_CHECK(srv.caps.per_ip.count == 0 && srv.caps.per_user.count == 0);
    FUZZ_CHECK(fs.napps == 0 && fs.nreads == 0);
    FUZZ_CHECK(w->stopped || w->inbox_len == 0);
    for (int k = 0; k < MAX_CLIENTS; k++) client_reset(&clients[k]);
    for (uint64_t id = 0; id <= MAX_IDS; id++) {
        if (!evs[id].known) continue;
        free(evs[id].type);
        free(evs[id].user);
        free(evs[id].content);
        evs[id] = (known_event_t){0};
    }
    nknown = 0;
    gaps_allowed = false;
}

static worker_t *new_worker(void)
{
    char err[SSE_ERR_LEN];
    int port = 0;
    worker_t *nw = worker_new(&srv, 0, "127.0.0.1", &port, err);
    if (!nw) {
        fprintf(stderr, "fuzz_conn: %s\n", err);
        abort();
    }
    /* The program fires the timers itself: nothing depends on the wall clock. */
    ev_timer_stop(nw->own.loop, &nw->sweep_w);
    ev_timer_stop(nw->own.loop, &nw->heartbeat_w);
    return nw;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    signal(SIGPIPE, SIG_IGN);
    trace = getenv("FUZZ_CONN_TRACE") != NULL;
    /* The settings are env_text's alone: config_load() would let the environment win. */
    for (bool again = true; again;) {
        again = false;
        for (char **e = environ; *e && !again; e++) {
            if (strncmp(*e, "SSE_", 4) != 0 && strncmp(*e, "ALLOWED_ORIGIN=", 15) != 0) continue;
            char name[128];
            size_t n = strcspn(*e, "=");
            snprintf(name, sizeof name, "%.*s", (int)n, *e);
            unsetenv(name);
            again = true;
        }
    }
    envfile_t ef;
    char err[SSE_ERR_LEN];
    if (envfile_parse(&ef, env_text, err) || config_load(&cfg, &ef, err)) {
        fprintf(stderr, "fuzz_conn: %s\n", err);
        abort();
    }
    envfile_free(&ef);
    lg.level = LOG_DEBUG; /* every log line is built (log_clean on client bytes), then dropped */
    lg.fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    memset(small_asset, 's', sizeof small_asset);
    for (size_t i = 0; i < sizeof big_asset; i++) big_asset[i] = (unsigned char)('a' + i % 26);
    srv.cfg = &cfg;
    srv.log = &lg;
    srv.assets = assets;
    srv.max_conns = 1000;
    bus_init(&srv.bus, server_post_all, &srv);
    pthread_mutex_init(&srv.tls_mu, NULL);
    caps_init(&srv.caps, cfg.max_conns_per_ip, cfg.max_streams_per_user);
    main_loop = ev_loop_new(EVFLAG_AUTO);
    ev_async_init(&stop_request, on_stop_request);
    ev_async_start(main_loop, &stop_request);
    srv.main_loop = main_loop;
    srv.stop_request = &stop_request;
    fs.base.ops = &fake_store_ops;
    w = workers[0] = new_worker();
    srv.workers = workers;
    srv.nworkers = 1;
    mint_tokens();
    for (int k = 0; k < MAX_CLIENTS; k++) {
        clients[k].out = xmalloc(OUTBOX);
        clients[k].fd = -1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    if (size > MAX_INPUT) size = MAX_INPUT;
    /* Every input starts from the same state: no ids given, no failed logins counted. */
    srv.bus.last_id = 0;
    w->sh.last_seen_id = 0;
    w->api.next_expiry = 0;
    fs.latest = 0;
    fs.oldest = 0;
    fs.closing = false;
    srv.store = w->sh.store = (data[0] & 1) ? &fs.base : NULL;
    srv.login_limit = w->api.login_limit =
        ratelimit_new(cfg.login_max_failures, cfg.login_max_block, RATELIMIT_MAX_KEYS);
    program_t pg = {.p = data, .n = size, .at = 1};
    for (int ops = 0; pg.at < pg.n && ops < 2000; ops++) run_op(&pg);
    finish_input();
    if (trace) {
        fprintf(stderr, "fuzz_conn: store=%d streams=%zu events=%zu resets=%zu expired=%zu slots=%zu statuses:",
                srv.store != NULL, seen_stats.streams, seen_stats.events, seen_stats.resets, seen_stats.expired,
                seen_stats.slots_seen);
        for (int i = 0; i < 600; i++)
            if (seen_stats.statuses[i]) fprintf(stderr, " %d:%zu", i, seen_stats.statuses[i]);
        fprintf(stderr, "\n");
    }
    memset(&seen_stats, 0, sizeof seen_stats);
    ratelimit_free(srv.login_limit);
    srv.login_limit = w->api.login_limit = NULL;
    if (w->stopped) { /* a stopped worker is done: the next input gets a new one */
        worker_free(w);
        atomic_store(&srv.stopping, 0);
        w = workers[0] = new_worker();
    }
    return 0;
}
