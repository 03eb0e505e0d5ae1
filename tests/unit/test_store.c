/* SQLite history store: ids, group commit, filters, bounds, trim, size cap, bad files, close. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

/* ---- fixture: a fresh directory per test, removed afterwards ---- */

static char dir[64];
static char dbpath[128];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void setup(void)
{
    strcpy(dir, "/tmp/ssehub-store-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(dbpath, sizeof dbpath, "%s/data/h.db", dir);
}

static void teardown(void)
{
    chmod(dir, 0700);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(store, .init = setup, .fini = teardown, .timeout = 60);

static store_t *open_opts(const store_options_t *o)
{
    store_t *st = NULL;
    char err[SSE_ERR_LEN] = "";
    int rc = store_sqlite_open(o, &st, err);
    cr_assert_eq(rc, 0, "open failed: %s", err);
    cr_assert_not_null(st);
    return st;
}

static store_t *open_default(void)
{
    store_options_t o = {.path = dbpath};
    return open_opts(&o);
}

/* ---- a waiter: the store calls back on its own threads ---- */

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int count, want;
} waiter_t;

#define WAITER_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0}

static void waiter_bump(waiter_t *w)
{
    pthread_mutex_lock(&w->mu);
    w->count++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void waiter_wait(waiter_t *w, int n)
{
    pthread_mutex_lock(&w->mu);
    while (w->count < n) pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

/* ---- synchronous append ---- */

typedef struct one_done {
    waiter_t w;
    uint64_t id;
    int64_t time_ms;
    int err;
} one_done_t;

static void on_one(void *arg, const store_event_t *ev, int err)
{
    one_done_t *d = arg;
    d->id = ev->id;
    d->time_ms = ev->time_ms;
    d->err = err;
    waiter_bump(&d->w);
}

static int append_full(store_t *st, const char *type, const char *user, const char *content,
                       size_t len, uint64_t *id)
{
    one_done_t d = {.w = WAITER_INIT};
    store_event_t ev = {.type = type, .user = user, .content = content, .content_len = len};
    cr_assert_eq(st->ops->append(st, &ev, on_one, &d), 0);
    waiter_wait(&d.w, 1);
    if (id) *id = d.id;
    return d.err;
}

static uint64_t append_ok(store_t *st, const char *type, const char *user, const char *content)
{
    uint64_t id = 0;
    int err = append_full(st, type, user, content, strlen(content), &id);
    cr_assert_eq(err, 0, "append failed: %d", err);
    return id;
}

/* ---- synchronous reads: rows copied out of the callback ---- */

typedef struct rows {
    waiter_t w;
    int err;
    size_t n;
    uint64_t ids[64];
    char *type[64], *user[64], *content[64];
    size_t clen[64];
    store_bounds_t b;
} rows_t;

static void on_rows(void *arg, const store_event_t *r, size_t n, const store_bounds_t *b, int err)
{
    rows_t *out = arg;
    out->err = err;
    out->n = n;
    out->b = *b;
    for (size_t i = 0; i < n && i < 64; i++) {
        out->ids[i] = r[i].id;
        out->type[i] = strdup(r[i].type);
        out->user[i] = strdup(r[i].user);
        out->content[i] = malloc(r[i].content_len + 1);
        memcpy(out->content[i], r[i].content, r[i].content_len + 1);
        out->clen[i] = r[i].content_len;
    }
    waiter_bump(&out->w);
}

static void rows_free(rows_t *r)
{
    for (size_t i = 0; i < r->n && i < 64; i++) {
        free(r->type[i]);
        free(r->user[i]);
        free(r->content[i]);
    }
    r->n = 0;
}

static void do_replay(store_t *st, uint64_t after, uint64_t upto, const char *user,
                      const char *const *types, uint32_t ntypes, size_t max, rows_t *out)
{
    *out = (rows_t){.w = WAITER_INIT};
    store_filter_t f = {.user = user, .types = types, .ntypes = ntypes};
    cr_assert_eq(st->ops->replay(st, after, upto, &f, max, on_rows, out), 0);
    waiter_wait(&out->w, 1);
    cr_assert_eq(out->err, 0);
}

static void do_list(store_t *st, const char *user, const char *const *types, uint32_t ntypes,
                    uint64_t before, size_t limit, rows_t *out)
{
    *out = (rows_t){.w = WAITER_INIT};
    store_filter_t f = {.user = user, .types = types, .ntypes = ntypes};
    cr_assert_eq(st->ops->list(st, &f, before, limit, on_rows, out), 0);
    waiter_wait(&out->w, 1);
    cr_assert_eq(out->err, 0);
}

/* Asserts the rows' ids are exactly want (0-terminated), in that order. */
static void expect_ids(rows_t *r, const uint64_t *want, const char *what)
{
    size_t n = 0;
    while (want[n]) n++;
    char got[256] = "";
    for (size_t i = 0; i < r->n && i < 64; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%llu ",
                 (unsigned long long)r->ids[i]);
    cr_assert_eq(r->n, n, "%s: got %zu rows (%s), want %zu", what, r->n, got, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(r->ids[i], want[i], "%s: row %zu is %llu (%s)", what, i,
                     (unsigned long long)r->ids[i], got);
    rows_free(r);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- ids and group commit ---- */

enum { NTHREADS = 8, PER_THREAD = 2000, TOTAL = NTHREADS * PER_THREAD };

typedef struct conc {
    store_t *st;
    pthread_mutex_t mu; /* done runs on the writer thread only, but be strict */
    uint64_t order[TOTAL]; /* ids in callback order */
    int ncalls;
    int calls[TOTAL]; /* per event (thread * PER_THREAD + seq): times done ran */
    uint64_t id_of[TOTAL];
    int errors;
    waiter_t w;
} conc_t;

typedef struct conc_arg {
    conc_t *c;
    int t;
} conc_arg_t;

/* Each event's callback argument: its owner and its key, stable for the test's life. */
typedef struct conc_slot {
    conc_t *c;
    int key;
} conc_slot_t;

static conc_slot_t slots[TOTAL];

static void on_slot(void *arg, const store_event_t *ev, int err)
{
    conc_slot_t *sl = arg;
    conc_t *c = sl->c;
    pthread_mutex_lock(&c->mu);
    if (err) c->errors++;
    if (c->ncalls < TOTAL) c->order[c->ncalls] = ev->id;
    c->ncalls++;
    c->calls[sl->key]++;
    c->id_of[sl->key] = ev->id;
    /* The content says who sent it: the committed copy must be that event's. */
    char want[32];
    snprintf(want, sizeof want, "k%d", sl->key);
    if (ev->content_len != strlen(want) || memcmp(ev->content, want, ev->content_len) != 0)
        c->errors++;
    pthread_mutex_unlock(&c->mu);
    waiter_bump(&c->w);
}

static void *conc_thread(void *p)
{
    conc_arg_t *a = p;
    for (int i = 0; i < PER_THREAD; i++) {
        int key = a->t * PER_THREAD + i;
        char content[32];
        snprintf(content, sizeof content, "k%d", key);
        store_event_t ev = {.type = "t", .content = content, .content_len = strlen(content)};
        if (a->c->st->ops->append(a->c->st, &ev, on_slot, &slots[key]) != 0) a->c->errors++;
    }
    return NULL;
}

Test(store, concurrent_appends_get_unique_contiguous_ids_in_order)
{
    static conc_t c;
    memset(&c, 0, sizeof c);
    pthread_mutex_init(&c.mu, NULL);
    c.w = (waiter_t)WAITER_INIT;
    c.st = open_default();
    for (int k = 0; k < TOTAL; k++) slots[k] = (conc_slot_t){&c, k};

    pthread_t th[NTHREADS];
    conc_arg_t args[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) {
        args[t] = (conc_arg_t){&c, t};
        pthread_create(&th[t], NULL, conc_thread, &args[t]);
    }
    for (int t = 0; t < NTHREADS; t++) pthread_join(th[t], NULL);
    waiter_wait(&c.w, TOTAL);

    cr_assert_eq(c.errors, 0);
    cr_assert_eq(c.ncalls, TOTAL);
    for (int i = 0; i < TOTAL; i++)
        cr_assert_eq(c.order[i], (uint64_t)i + 1, "callback %d got id %llu", i,
                     (unsigned long long)c.order[i]);
    for (int k = 0; k < TOTAL; k++)
        cr_assert_eq(c.calls[k], 1, "event %d done %d times", k, c.calls[k]);
    /* One thread's appends keep their order. */
    for (int t = 0; t < NTHREADS; t++)
        for (int i = 1; i < PER_THREAD; i++)
            cr_assert_gt(c.id_of[t * PER_THREAD + i], c.id_of[t * PER_THREAD + i - 1]);

    store_bounds_t b;
    c.st->ops->bounds(c.st, &b);
    cr_assert_eq(b.oldest, 1);
    cr_assert_eq(b.latest, TOTAL);
    c.st->ops->close(c.st);
    pthread_mutex_destroy(&c.mu);
}

/*
 * Group commit, without timing: the first event's callback holds the writer while the
 * test queues more; each callback records max(id) seen by a separate connection, which
 * is the last id of the transaction that holds the event. Distinct values = transactions.
 */
typedef struct batch_probe {
    sqlite3 *db;
    waiter_t entered, release;
    uint64_t seen[2048];
    int n;
} batch_probe_t;

static void on_probe(void *arg, const store_event_t *ev, int err)
{
    batch_probe_t *p = arg;
    (void)err;
    sqlite3_stmt *q;
    uint64_t max = 0;
    if (sqlite3_prepare_v2(p->db, "SELECT max(id) FROM events", -1, &q, NULL) == SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW) max = (uint64_t)sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    if (p->n < 2048) p->seen[p->n++] = max;
    if (ev->id == 1) {
        waiter_bump(&p->entered);
        waiter_wait(&p->release, 1);
    }
}

Test(store, appends_queued_during_a_commit_share_one_transaction)
{
    static batch_probe_t p;
    memset(&p, 0, sizeof p);
    p.entered = (waiter_t)WAITER_INIT;
    p.release = (waiter_t)WAITER_INIT;
    store_t *st = open_default();
    cr_assert_eq(sqlite3_open_v2(dbpath, &p.db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);

    store_event_t ev = {.type = "", .user = "", .content = "x", .content_len = 1};
    cr_assert_eq(st->ops->append(st, &ev, on_probe, &p), 0);
    waiter_wait(&p.entered, 1);
    for (int i = 0; i < 1000; i++) cr_assert_eq(st->ops->append(st, &ev, on_probe, &p), 0);
    waiter_bump(&p.release);
    st->ops->close(st);

    cr_assert_eq(p.n, 1001);
    cr_assert_eq(p.seen[0], 1);
    for (int i = 1; i < 1001; i++)
        cr_assert_eq(p.seen[i], 1001, "event %d committed in a transaction ending at %llu", i + 1,
                     (unsigned long long)p.seen[i]);
    sqlite3_close(p.db);
}

Test(store, ids_continue_after_reopen_even_when_all_trimmed)
{
    store_options_t o = {.path = dbpath, .max_age_ms = 1000};
    store_t *st = open_opts(&o);
    for (int i = 0; i < 5; i++) cr_assert_eq(append_ok(st, "", "", "a"), (uint64_t)i + 1);
    st->ops->close(st);

    st = open_opts(&o);
    store_bounds_t b;
    st->ops->bounds(st, &b);
    cr_assert_eq(b.oldest, 1);
    cr_assert_eq(b.latest, 5);
    cr_assert_eq(append_ok(st, "", "", "b"), 6);
    cr_assert_eq(st->ops->trim(st, now_ms() + 10000), 6);
    st->ops->bounds(st, &b);
    cr_assert_eq(b.oldest, 0);
    cr_assert_eq(b.latest, 6);
    st->ops->close(st);

    st = open_opts(&o);
    st->ops->bounds(st, &b);
    cr_assert_eq(b.oldest, 0);
    cr_assert_eq(b.latest, 6);
    cr_assert_eq(append_ok(st, "", "", "c"), 7);
    st->ops->bounds(st, &b);
    cr_assert_eq(b.oldest, 7, "oldest after appending to an empty store");
    cr_assert_eq(b.latest, 7);
    st->ops->close(st);
}

/* ---- reads ---- */

/* 1 alice/- 2 bob/- 3 -/- 4 -/news 5 -/sport 6 alice/news 7 -/a"b\ (a type needing escapes) */
static store_t *seed(void)
{
    store_t *st = open_default();
    append_ok(st, "", "alice", "1");
    append_ok(st, "", "bob", "2");
    append_ok(st, "", "", "3");
    append_ok(st, "news", "", "4");
    append_ok(st, "sport", "", "5");
    append_ok(st, "news", "alice", "6");
    append_ok(st, "a\"b\\", "", "7");
    return st;
}

Test(store, replay_filters_like_live_routing)
{
    store_t *st = seed();
    rows_t r;
    const char *news[] = {"news"};
    const char *sport_w[] = {"sport", "weather"};
    const char *odd[] = {"a\"b\\"};
    const char *inj[] = {"x') OR 1=1 --", "\"]"};

    do_replay(st, 0, 100, "alice", news, 1, 100, &r);
    expect_ids(&r, (uint64_t[]){1, 3, 4, 6, 0}, "alice+news");
    do_replay(st, 0, 100, "alice", NULL, 0, 100, &r);
    expect_ids(&r, (uint64_t[]){1, 3, 4, 5, 6, 7, 0}, "alice, all types");
    do_replay(st, 0, 100, "", NULL, 0, 100, &r);
    expect_ids(&r, (uint64_t[]){3, 4, 5, 7, 0}, "anonymous, all types");
    do_replay(st, 0, 100, NULL, NULL, 0, 100, &r);
    expect_ids(&r, (uint64_t[]){3, 4, 5, 7, 0}, "NULL user");
    do_replay(st, 0, 100, "bob", sport_w, 2, 100, &r);
    expect_ids(&r, (uint64_t[]){2, 3, 5, 0}, "bob+sport,weather");
    do_replay(st, 0, 100, "carol", (const char *[]){"weather"}, 1, 100, &r);
    expect_ids(&r, (uint64_t[]){3, 0}, "carol+weather: untyped broadcasts only");
    do_replay(st, 0, 100, "", odd, 1, 100, &r);
    expect_ids(&r, (uint64_t[]){3, 7, 0}, "type with quote and backslash");
    do_replay(st, 0, 100, "x' OR '1'='1", inj, 2, 100, &r);
    expect_ids(&r, (uint64_t[]){3, 0}, "hostile strings stay data");

    /* after < id <= upto, at most max, oldest first */
    do_replay(st, 2, 5, "", NULL, 0, 100, &r);
    expect_ids(&r, (uint64_t[]){3, 4, 5, 0}, "after 2 upto 5");
    do_replay(st, 2, 5, "", NULL, 0, 2, &r);
    expect_ids(&r, (uint64_t[]){3, 4, 0}, "max 2");
    do_replay(st, 0, 100, "alice", NULL, 0, 3, &r);
    expect_ids(&r, (uint64_t[]){1, 3, 4, 0}, "max across both kinds");
    do_replay(st, 7, 100, "alice", NULL, 0, 100, &r);
    expect_ids(&r, (uint64_t[]){0}, "nothing after the latest");
    do_replay(st, 0, UINT64_MAX, "alice", news, 1, SIZE_MAX, &r);
    expect_ids(&r, (uint64_t[]){1, 3, 4, 6, 0}, "unbounded upto and max");
    cr_assert_eq(r.b.oldest, 1);
    cr_assert_eq(r.b.latest, 7);

    /* The rows carry everything. */
    do_replay(st, 5, 6, "alice", NULL, 0, 10, &r);
    cr_assert_eq(r.n, 1);
    cr_assert_str_eq(r.type[0], "news");
    cr_assert_str_eq(r.user[0], "alice");
    cr_assert_str_eq(r.content[0], "6");
    rows_free(&r);
    st->ops->close(st);
}

Test(store, list_is_newest_first_with_before_and_limit)
{
    store_t *st = seed();
    rows_t r;
    do_list(st, "alice", NULL, 0, 0, 50, &r);
    expect_ids(&r, (uint64_t[]){7, 6, 5, 4, 3, 1, 0}, "alice, all");
    do_list(st, "alice", (const char *[]){"news"}, 1, 0, 50, &r);
    expect_ids(&r, (uint64_t[]){6, 4, 3, 1, 0}, "alice, news");
    do_list(st, "alice", NULL, 0, 5, 2, &r);
    expect_ids(&r, (uint64_t[]){4, 3, 0}, "before 5, limit 2");
    do_list(st, "alice", NULL, 0, 3, 50, &r);
    expect_ids(&r, (uint64_t[]){1, 0}, "before 3");
    do_list(st, "bob", (const char *[]){"none"}, 1, 0, 1, &r);
    expect_ids(&r, (uint64_t[]){3, 0}, "bob, limit 1");
    do_list(st, "bob", NULL, 0, 1, 50, &r);
    expect_ids(&r, (uint64_t[]){0}, "before 1: nothing");
    st->ops->close(st);
}

Test(store, content_round_trips_byte_exact)
{
    store_t *st = open_default();
    char bin[300];
    for (int i = 0; i < 256; i++) bin[i] = (char)i;
    static const char text[] = "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80\0\0end";
    memcpy(bin + 256, text, sizeof text - 1);
    size_t binlen = 256 + sizeof text - 1;
    uint64_t id;
    cr_assert_eq(append_full(st, "caf\xc3\xa9", "\xe7\x94\xa8\xe6\x88\xb7", bin, binlen, &id), 0);
    cr_assert_eq(append_full(st, "", "", NULL, 0, NULL), 0, "empty content");

    rows_t r;
    do_replay(st, 0, 10, "\xe7\x94\xa8\xe6\x88\xb7", (const char *[]){"caf\xc3\xa9"}, 1, 10, &r);
    cr_assert_eq(r.n, 2);
    cr_assert_eq(r.clen[0], binlen);
    cr_assert(memcmp(r.content[0], bin, binlen) == 0, "content bytes differ");
    cr_assert_eq(r.content[0][binlen], '\0', "content is NUL-terminated for convenience");
    cr_assert_str_eq(r.type[0], "caf\xc3\xa9");
    cr_assert_str_eq(r.user[0], "\xe7\x94\xa8\xe6\x88\xb7");
    cr_assert_eq(r.clen[1], 0);
    cr_assert_str_eq(r.content[1], "");
    cr_assert_str_eq(r.type[1], "");
    cr_assert_str_eq(r.user[1], "");
    rows_free(&r);
    st->ops->close(st);
}

/* ---- bounds and trim ---- */

Test(store, bounds_track_appends_and_trims)
{
    store_options_t o = {.path = dbpath, .max_events = 4};
    store_t *st = open_opts(&o);
    store_bounds_t b;
    st->ops->bounds(st, &b);
    cr_assert_eq(b.oldest, 0);
    cr_assert_eq(b.latest, 0);
    append_ok(st, "", "", "1");
    st->ops->bounds(st, &b);
    cr_assert_eq(b.oldest, 1);
    cr_assert_eq(b.latest, 1);
    for (int i = 0; i < 9; i++) append_ok(st, "", "", "x");
    st->ops->bounds(st, &b);
    cr_assert_eq(b.oldest, 1);
    cr_assert_eq(b.latest, 10);

    cr_assert_eq(st->ops->trim(st, now_ms()), 6);
    st->ops->bounds(st, &b);
    cr_assert_eq(b.oldest, 7);
    cr_assert_eq(b.latest, 10);
    cr_assert_eq(st->ops->trim(st, now_ms()), 0, "nothing more to trim");

    rows_t r;
    do_replay(st, 0, 100, "", NULL, 0, 100, &r);
    expect_ids(&r, (uint64_t[]){7, 8, 9, 10, 0}, "kept the newest four");
    cr_assert_eq(r.b.oldest, 7);
    cr_assert_eq(r.b.latest, 10);
    st->ops->close(st);
}

Test(store, trim_by_age)
{
    store_options_t o = {.path = dbpath, .max_age_ms = 60000};
    store_t *st = open_opts(&o);
    for (int i = 0; i < 3; i++) append_ok(st, "", "", "old");
    usleep(20000);
    one_done_t d = {.w = WAITER_INIT};
    store_event_t ev = {.type = "", .user = "", .content = "new", .content_len = 3};
    st->ops->append(st, &ev, on_one, &d);
    waiter_wait(&d.w, 1);
    cr_assert_eq(d.id, 4);
    append_ok(st, "", "", "new");

    /* Cutoff exactly at the first new event's time: it stays, the older ones go. */
    cr_assert_eq(st->ops->trim(st, d.time_ms + o.max_age_ms), 3);
    store_bounds_t b;
    st->ops->bounds(st, &b);
    cr_assert_eq(b.oldest, 4);
    cr_assert_eq(b.latest, 5);
    cr_assert_eq(st->ops->trim(st, now_ms()), 0);
    st->ops->close(st);
}

Test(store, trim_many_in_batches_and_keep_appending)
{
    store_options_t o = {.path = dbpath, .max_events = 1000};
    store_t *st = open_opts(&o);
    enum { N = 12345 };
    store_event_t ev = {.type = "", .user = "", .content = "x", .content_len = 1};
    for (int i = 0; i < N; i++) cr_assert_eq(st->ops->append(st, &ev, NULL, NULL), 0);
    uint64_t last = append_ok(st, "", "", "last");
    cr_assert_eq(last, N + 1);
    cr_assert_eq(st->ops->trim(st, now_ms()), N + 1 - 1000);
    store_bounds_t b;
    st->ops->bounds(st, &b);
    cr_assert_eq(b.oldest, N + 1 - 999);
    cr_assert_eq(b.latest, N + 1);
    st->ops->close(st);
}

Test(store, writer_trims_on_its_own)
{
    store_options_t o = {.path = dbpath, .max_events = 2, .trim_interval_ms = 20};
    store_t *st = open_opts(&o);
    for (int i = 0; i < 5; i++) append_ok(st, "", "", "x");
    store_bounds_t b;
    for (int i = 0; i < 500; i++) {
        st->ops->bounds(st, &b);
        if (b.oldest == 4) break;
        usleep(10000);
    }
    cr_assert_eq(b.oldest, 4);
    cr_assert_eq(b.latest, 5);
    st->ops->close(st);
}

/* ---- size cap ---- */

typedef struct gate {
    waiter_t entered, release, done;
    int errs[8];
    uint64_t ids[8];
    int n;
} gate_t;

/* Holds the writer inside the first callback until released, so the test can decide
 * which events share the next transaction. */
static void on_gate(void *arg, const store_event_t *ev, int err)
{
    gate_t *g = arg;
    int i = g->n++;
    g->errs[i] = err;
    g->ids[i] = ev->id;
    if (i == 0) {
        waiter_bump(&g->entered);
        waiter_wait(&g->release, 1);
    }
    waiter_bump(&g->done);
}

Test(store, size_cap_fails_the_whole_batch_with_efull)
{
    store_options_t o = {.path = dbpath, .max_bytes = 64 * 1024};
    store_t *st = open_opts(&o);
    for (int i = 0; i < 3; i++) append_ok(st, "", "", "early");

    static gate_t g;
    memset(&g, 0, sizeof g);
    g.entered = (waiter_t)WAITER_INIT;
    g.release = (waiter_t)WAITER_INIT;
    g.done = (waiter_t)WAITER_INIT;
    size_t big = 200 * 1024;
    char *huge = malloc(big);
    memset(huge, 'z', big);
    store_event_t small = {.type = "", .user = "", .content = "s", .content_len = 1};
    store_event_t large = {.type = "", .user = "", .content = huge, .content_len = big};
    cr_assert_eq(st->ops->append(st, &small, on_gate, &g), 0);
    waiter_wait(&g.entered, 1);
    cr_assert_eq(st->ops->append(st, &small, on_gate, &g), 0);
    cr_assert_eq(st->ops->append(st, &large, on_gate, &g), 0);
    cr_assert_eq(st->ops->append(st, &small, on_gate, &g), 0);
    waiter_bump(&g.release);
    waiter_wait(&g.done, 4);
    free(huge);

    cr_assert_eq(g.errs[0], 0);
    cr_assert_eq(g.ids[0], 4);
    for (int i = 1; i < 4; i++) {
        cr_assert_eq(g.errs[i], SSE_EFULL, "event %d: err %d", i, g.errs[i]);
        cr_assert_eq(g.ids[i], 0);
    }

    store_bounds_t b;
    st->ops->bounds(st, &b);
    cr_assert_eq(b.latest, 4, "failed events took no id");
    rows_t r;
    do_replay(st, 0, 100, "", NULL, 0, 100, &r);
    expect_ids(&r, (uint64_t[]){1, 2, 3, 4, 0}, "earlier events intact, nothing of the batch");
    cr_assert_eq(append_ok(st, "", "", "after"), 5, "ids continue without a gap");
    st->ops->close(st);
}

/* ---- bad files ---- */

static void expect_open_fails(const char *path)
{
    store_options_t o = {.path = path};
    store_t *st = (store_t *)0x1;
    char err[SSE_ERR_LEN] = "";
    cr_assert_eq(store_sqlite_open(&o, &st, err), SSE_ERR, "%s opened", path);
    cr_assert_null(st);
    cr_assert_not_null(strstr(err, path), "message \"%s\" does not name %s", err, path);
    cr_assert_null(strchr(err, '\n'));
    cr_log_info("%s", err);
}

Test(store, open_on_a_directory_fails_naming_it)
{
    expect_open_fails(dir);
}

Test(store, open_in_an_unwritable_place_fails_naming_it)
{
    char p[256];
    snprintf(p, sizeof p, "%s/file", dir);
    FILE *f = fopen(p, "w");
    fputs("not a dir", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/file/h.db", dir);
    expect_open_fails(p); /* parent is a regular file */
    snprintf(p, sizeof p, "%s/a/b/h.db", dir);
    expect_open_fails(p); /* two missing levels */
    expect_open_fails("/proc/ssehub-test.db");
}

Test(store, open_on_garbage_fails_naming_it)
{
    char p[256];
    snprintf(p, sizeof p, "%s/garbage.db", dir);
    FILE *f = fopen(p, "w");
    srand(42);
    for (int i = 0; i < 16384; i++) fputc(rand() & 0xff, f);
    fclose(f);
    expect_open_fails(p);
}

Test(store, open_on_a_corrupt_database_fails_naming_it)
{
    store_t *st = open_default();
    char content[2000];
    memset(content, 'c', sizeof content);
    content[sizeof content - 1] = '\0';
    for (int i = 0; i < 200; i++) append_ok(st, "t", "u", content);
    st->ops->close(st);

    /* Keep the header valid, smash pages in the middle of the table. */
    FILE *f = fopen(dbpath, "r+b");
    cr_assert_not_null(f);
    fseek(f, 4096 * 40, SEEK_SET);
    for (int i = 0; i < 4096 * 4; i++) fputc(0xa5 ^ (i * 7), f);
    fclose(f);
    expect_open_fails(dbpath);
}

/* ---- close ---- */

typedef struct close_probe {
    store_t *st;
    waiter_t entered;
    int calls, errs, late_append_rc, extra;
} close_probe_t;

static void on_close_probe(void *arg, const store_event_t *ev, int err)
{
    close_probe_t *p = arg;
    (void)ev;
    if (err) p->errs++;
    if (p->calls++ == 0) {
        /* Hold the writer until close() has begun, which is when appends start failing:
         * everything the test queued meanwhile is then drained by close itself. */
        waiter_bump(&p->entered);
        store_event_t e = {.type = "", .user = "", .content = "more", .content_len = 4};
        while (p->st->ops->append(p->st, &e, on_close_probe, p) == 0) {
            p->extra++;
            usleep(1000);
        }
        p->late_append_rc = SSE_ERR;
    }
}

static void on_count_rows(void *arg, const store_event_t *r, size_t n, const store_bounds_t *b,
                          int err)
{
    (void)r, (void)n, (void)b, (void)err;
    (*(int *)arg)++;
}

Test(store, close_commits_queued_appends_and_calls_every_done)
{
    store_t *st = open_default();
    enum { N = 5000 };
    static close_probe_t p;
    p = (close_probe_t){.st = st, .entered = WAITER_INIT};

    store_event_t ev = {.type = "", .user = "", .content = "q", .content_len = 1};
    cr_assert_eq(st->ops->append(st, &ev, on_close_probe, &p), 0);
    waiter_wait(&p.entered, 1);
    for (int i = 0; i < N; i++) cr_assert_eq(st->ops->append(st, &ev, on_close_probe, &p), 0);
    int replays = 0;
    cr_assert_eq(st->ops->replay(st, 0, 10, &(store_filter_t){0}, 10, on_count_rows, &replays), 0);
    st->ops->close(st);

    cr_assert_eq(p.late_append_rc, SSE_ERR);
    cr_assert_eq(p.calls, 1 + N + p.extra);
    cr_assert_eq(p.errs, 0);
    cr_assert_eq(replays, 1, "a queued read still answers");

    st = open_default();
    store_bounds_t b;
    st->ops->bounds(st, &b);
    cr_assert_eq(b.latest, (uint64_t)(1 + N + p.extra));
    st->ops->close(st);
}
