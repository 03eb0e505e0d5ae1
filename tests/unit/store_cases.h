/*
 * The store cases every backend must pass, as store.h defines them: ids, filters, paging,
 * bounds, trim, the reader's queue, drain and close. Included by test_store.c (SQLite) and
 * test_store_redis.c (Redis), which define before it STORE_SUITE (the suite name),
 * STORE_OPTS(...) (a store_options_t for a fresh store, with the fields given), and
 * open_opts() and open_default(). Each test starts from an empty store.
 */
#ifndef SSE_TEST_STORE_CASES_H
#define SSE_TEST_STORE_CASES_H

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

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
    char *why; /* when set: ev->error is copied here (SSE_ERR_LEN), "" for none */
} one_done_t;

static void on_one(void *arg, const store_event_t *ev, int err)
{
    one_done_t *d = arg;
    d->id = ev->id;
    d->time_ms = ev->time_ms;
    d->err = err;
    if (d->why) snprintf(d->why, SSE_ERR_LEN, "%s", ev->error ? ev->error : "");
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

enum { ROWS_CAP = 1024 };

typedef struct rows {
    waiter_t w;
    int err, calls;
    size_t n;
    bool more;
    bool rows_null; /* page->rows was NULL */
    uint64_t ids[ROWS_CAP];
    char *type[ROWS_CAP], *user[ROWS_CAP], *content[ROWS_CAP];
    size_t clen[ROWS_CAP];
    store_bounds_t b;
} rows_t;

static void on_rows(void *arg, const store_page_t *page, int err)
{
    rows_t *out = arg;
    out->err = err;
    out->n = page->n;
    out->more = page->more;
    out->rows_null = page->rows == NULL;
    out->b = page->bounds;
    for (size_t i = 0; i < page->n && i < ROWS_CAP; i++) {
        const store_event_t *r = &page->rows[i];
        out->ids[i] = r->id;
        out->type[i] = strdup(r->type);
        out->user[i] = strdup(r->user);
        out->content[i] = malloc(r->content_len + 1);
        memcpy(out->content[i], r->content, r->content_len + 1);
        out->clen[i] = r->content_len;
    }
    out->calls++;
    waiter_bump(&out->w);
}

static void rows_free(rows_t *r)
{
    for (size_t i = 0; i < r->n && i < ROWS_CAP; i++) {
        free(r->type[i]);
        free(r->user[i]);
        free(r->content[i]);
    }
    r->n = 0;
}

/* A replay (list when is_list, before = upto) run to its end; asserts it succeeded. */
static void read_rows(store_t *st, bool is_list, uint64_t after, uint64_t upto,
                      const store_filter_t *f, const store_read_opts_t *o, rows_t *out)
{
    *out = (rows_t){.w = WAITER_INIT};
    int rc = is_list ? st->ops->list(st, f, upto, o, on_rows, out)
                     : st->ops->replay(st, after, upto, f, o, on_rows, out);
    cr_assert_eq(rc, 0);
    waiter_wait(&out->w, 1);
    cr_assert_eq(out->err, 0);
}

static void do_replay(store_t *st, uint64_t after, uint64_t upto, const char *user,
                      const char *const *types, uint32_t ntypes, size_t max, rows_t *out)
{
    store_filter_t f = {.user = user, .types = types, .ntypes = ntypes};
    read_rows(st, false, after, upto, &f, &(store_read_opts_t){.max_rows = max}, out);
}

static void do_list(store_t *st, const char *user, const char *const *types, uint32_t ntypes,
                    uint64_t before, size_t limit, rows_t *out)
{
    store_filter_t f = {.user = user, .types = types, .ntypes = ntypes};
    read_rows(st, true, 0, before, &f, &(store_read_opts_t){.max_rows = limit}, out);
}

/* Asserts the rows' ids are exactly want (0-terminated), in that order. */
static void expect_ids(rows_t *r, const uint64_t *want, const char *what)
{
    size_t n = 0;
    while (want[n]) n++;
    char got[256] = "";
    for (size_t i = 0; i < r->n && i < 40; i++)
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

Test(STORE_SUITE, concurrent_appends_get_unique_contiguous_ids_in_order)
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
Test(STORE_SUITE, ids_continue_after_reopen_even_when_all_trimmed)
{
    store_options_t o = STORE_OPTS(.max_age_ms = 1000);
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

Test(STORE_SUITE, replay_filters_like_live_routing)
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

Test(STORE_SUITE, list_is_newest_first_with_before_and_limit)
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

Test(STORE_SUITE, content_round_trips_byte_exact)
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

/* ---- bounded reads: max_rows, max_bytes, more ---- */

/* Asserts ids as expect_ids() does, and that more is want_more. */
static void expect_page(rows_t *r, const uint64_t *want, bool want_more, const char *what)
{
    cr_assert_eq(r->more, want_more, "%s: more is %d", what, r->more);
    expect_ids(r, want, what);
}

Test(STORE_SUITE, max_rows_sets_more_exactly_when_a_further_row_matches)
{
    store_t *st = seed();
    const store_filter_t all = {.user = ""};
    const store_filter_t alice = {.user = "alice"};
    const store_filter_t news = {.user = "alice", .types = (const char *[]){"news"}, .ntypes = 1};
    const store_filter_t strict_news = {
        .user = "alice", .types = (const char *[]){"news", "weather"}, .ntypes = 2, .strict = 1};
    const store_filter_t untyped_only = {.user = "alice", .strict = 1};
    const struct {
        bool list;
        uint64_t after, upto; /* a list's upto is its before */
        const store_filter_t *f;
        size_t max;
        uint64_t want[8];
        bool more;
        const char *what;
    } cases[] = {
        {false, 0, 100, &all, 4, {3, 4, 5, 7}, false, "every broadcast: the exact end"},
        {false, 0, 100, &all, 3, {3, 4, 5}, true, "one broadcast left"},
        {false, 0, 5, &all, 3, {3, 4, 5}, false, "upto ends the range"},
        {false, 0, 6, &all, 3, {3, 4, 5}, false, "6 is alice's: no further match"},
        {false, 0, 100, &news, 4, {1, 3, 4, 6}, false, "alice+news, exact"},
        {false, 0, 100, &news, 3, {1, 3, 4}, true, "alice+news, one left"},
        {false, 0, 100, &news, 1, {1}, true, "alice+news, first only"},
        {false, 4, 100, &news, 1, {6}, false, "alice+news after 4"},
        {false, 0, 100, &strict_news, 4, {1, 3, 4, 6}, false, "strict news, exact"},
        {false, 0, 100, &strict_news, 3, {1, 3, 4}, true, "strict news, one left"},
        {false, 0, 100, &untyped_only, 2, {1, 3}, false, "strict, no types: untyped only"},
        {false, 0, 100, &untyped_only, 1, {1}, true, "strict, no types, one left"},
        {true, 0, 0, &alice, 6, {7, 6, 5, 4, 3, 1}, false, "list alice, exact"},
        {true, 0, 0, &alice, 5, {7, 6, 5, 4, 3}, true, "list alice, one left"},
        {true, 0, 3, &alice, 1, {1}, false, "list before 3"},
        {true, 0, 4, &alice, 1, {3}, true, "list before 4"},
        {true, 0, 0, &news, 3, {6, 4, 3}, true, "list alice+news"},
        {true, 0, 0, &news, 4, {6, 4, 3, 1}, false, "list alice+news, exact"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rows_t r;
        read_rows(st, cases[i].list, cases[i].after, cases[i].upto, cases[i].f,
                  &(store_read_opts_t){.max_rows = cases[i].max}, &r);
        expect_page(&r, cases[i].want, cases[i].more, cases[i].what);
    }
    st->ops->close(st);
}

Test(STORE_SUITE, max_bytes_stops_before_the_row_that_would_pass_it)
{
    store_t *st = open_default();
    /* 1-5: type "t", 9 bytes of content: 10 bytes each. 6: alice's, "t" + "alice" + 4: 10. */
    for (int i = 0; i < 5; i++) append_ok(st, "t", "", "123456789");
    append_ok(st, "t", "alice", "1234");
    const store_filter_t alice = {.user = "alice"};
    const struct {
        bool list;
        size_t max_rows, max_bytes;
        uint64_t want[8];
        bool more;
        const char *what;
    } cases[] = {
        {false, 100, 30, {1, 2, 3}, true, "30 bytes: three rows exactly"},
        {false, 100, 29, {1, 2}, true, "29 bytes: the third would pass it"},
        {false, 100, 60, {1, 2, 3, 4, 5, 6}, false, "60 bytes: everything, user's row counted"},
        {false, 100, 59, {1, 2, 3, 4, 5}, true, "59 bytes: the user's row would pass it"},
        {false, 100, 0, {1, 2, 3, 4, 5, 6}, false, "0: no byte bound"},
        {false, 100, 1, {1}, true, "smaller than any row: the first still comes"},
        {false, 2, 1000, {1, 2}, true, "max_rows binds first"},
        {true, 100, 25, {6, 5}, true, "list: newest first"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rows_t r;
        store_read_opts_t o = {.max_rows = cases[i].max_rows, .max_bytes = cases[i].max_bytes};
        read_rows(st, cases[i].list, 0, cases[i].list ? 0 : 100, &alice, &o, &r);
        expect_page(&r, cases[i].want, cases[i].more, cases[i].what);
    }

    /* A row larger than the bound alone is returned alone, and whole. */
    enum { BIG = 100000 };
    char *big = malloc(BIG);
    memset(big, 'b', BIG);
    cr_assert_eq(append_full(st, "t", "", big, BIG, NULL), 0);
    free(big);
    rows_t r;
    read_rows(st, false, 6, 100, &alice, &(store_read_opts_t){.max_rows = 10, .max_bytes = 10}, &r);
    cr_assert_eq(r.n, 1);
    cr_assert_eq(r.clen[0], BIG);
    expect_page(&r, (uint64_t[]){7, 0}, false, "a big first row");
    read_rows(st, false, 5, 100, &alice, &(store_read_opts_t){.max_rows = 10, .max_bytes = 10}, &r);
    expect_page(&r, (uint64_t[]){6, 0}, true, "a big row after a full page waits");
    read_rows(st, true, 0, 0, &alice, &(store_read_opts_t){.max_rows = 10, .max_bytes = 10}, &r);
    expect_page(&r, (uint64_t[]){7, 0}, true, "list: a big first row");

    /* An empty row (no type, user or content) takes nothing: it fits a full page, but not
     * one already past the bound. */
    append_ok(st, "", "", "");
    read_rows(st, false, 6, 100, &alice, &(store_read_opts_t){.max_rows = 10, .max_bytes = BIG + 1},
              &r);
    expect_page(&r, (uint64_t[]){7, 8, 0}, false, "an empty row at the exact bound");
    read_rows(st, false, 6, 100, &alice, &(store_read_opts_t){.max_rows = 10, .max_bytes = 10}, &r);
    expect_page(&r, (uint64_t[]){7, 0}, true, "an empty row after a big first row");
    st->ops->close(st);
}

static void on_never(void *arg, const store_page_t *page, int err)
{
    (void)page, (void)err;
    (*(int *)arg)++;
}

Test(STORE_SUITE, a_read_without_a_row_bound_is_refused)
{
    store_t *st = seed();
    int calls = 0;
    store_filter_t f = {.user = "alice"};
    cr_assert_eq(st->ops->replay(st, 0, 10, &f, NULL, on_never, &calls), SSE_ERR);
    cr_assert_eq(st->ops->replay(st, 0, 10, &f, &(store_read_opts_t){0}, on_never, &calls),
                 SSE_ERR);
    cr_assert_eq(st->ops->list(st, &f, 0, NULL, on_never, &calls), SSE_ERR);
    cr_assert_eq(st->ops->list(st, &f, 0, &(store_read_opts_t){.max_bytes = 10}, on_never, &calls),
                 SSE_ERR);
    st->ops->close(st);
    cr_assert_eq(calls, 0, "done is not called for a refused read");
}

/* What store.h says a filter lets through, written out plainly. */
static bool filter_passes(const store_filter_t *f, const char *type, const char *user)
{
    bool listed = false;
    for (uint32_t i = 0; i < f->ntypes; i++) listed |= strcmp(f->types[i], type) == 0;
    if (user[0]) {
        if (!f->user || strcmp(f->user, user) != 0) return false;
        return !f->strict || !type[0] || listed;
    }
    return !type[0] || (f->ntypes == 0 && !f->strict) || listed;
}

enum { MIX_N = 900, MIX_TYPES = 40 };

/* The mixed history: per id, its type, user and size (type + user + content). */
static char mix_type[MIX_N + 1][16];
static const char *mix_user[MIX_N + 1];
static size_t mix_size[MIX_N + 1];
static char mix_names[MIX_TYPES][16];

/* The ids a read of f over lo < id <= hi must return, in its order; returns how many. */
static size_t brute(const store_filter_t *f, bool list, uint64_t lo, uint64_t hi, uint64_t *out)
{
    size_t n = 0;
    for (uint64_t k = 1; k <= MIX_N; k++) {
        uint64_t id = list ? MIX_N + 1 - k : k;
        if (id > lo && id <= hi && filter_passes(f, mix_type[id], mix_user[id])) out[n++] = id;
    }
    return n;
}

/*
 * Reads f over the range page by page, each page within o, and asserts the pages join up
 * to exactly want: more set on every page but the last, and each page cut exactly where
 * the next row would break o's bounds. A list's range is ids below before (0 = none).
 */
static void expect_paged(store_t *st, const store_filter_t *f, bool list, uint64_t after,
                         uint64_t upto, store_read_opts_t o, const uint64_t *want, size_t nwant,
                         const char *what)
{
    size_t got = 0;
    for (int pages = 0;; pages++) {
        cr_assert_lt(pages, MIX_N + 2, "%s: does not end", what);
        rows_t r;
        read_rows(st, list, after, upto, f, &o, &r);
        size_t bytes = 0;
        for (size_t i = 0; i < r.n; i++) {
            cr_assert_lt(got, nwant, "%s: row %llu beyond the expected %zu", what,
                         (unsigned long long)r.ids[i], nwant);
            cr_assert_eq(r.ids[i], want[got], "%s: row %zu is %llu, want %llu", what, got,
                         (unsigned long long)r.ids[i], (unsigned long long)want[got]);
            cr_assert_str_eq(r.type[i], mix_type[r.ids[i]]);
            cr_assert_str_eq(r.user[i], mix_user[r.ids[i]]);
            bytes += mix_size[r.ids[i]];
            got++;
        }
        cr_assert_eq(r.more, got < nwant, "%s: more is %d after %zu of %zu", what, r.more, got,
                     nwant);
        cr_assert(r.n > 0 || got == nwant, "%s: an empty page before the end", what);
        if (r.n > 0) {
            cr_assert(r.n <= o.max_rows, "%s: %zu rows", what, r.n);
            if (o.max_bytes && r.n > 1) cr_assert_leq(bytes, o.max_bytes, "%s: bytes", what);
            if (r.more && r.n < o.max_rows) /* then only the byte bound can have stopped it */
                cr_assert_gt(bytes + mix_size[want[got]], o.max_bytes,
                             "%s: the page stopped although row %llu fits", what,
                             (unsigned long long)want[got]);
        }
        uint64_t last = r.n ? r.ids[r.n - 1] : 0;
        bool more = r.more;
        rows_free(&r);
        if (!more) break;
        if (list)
            upto = last;
        else
            after = last;
    }
    cr_assert_eq(got, nwant, "%s: %zu rows, want %zu", what, got, nwant);
}

Test(STORE_SUITE, typed_reads_merge_to_exactly_what_the_filter_defines)
{
    store_t *st = open_default();
    for (int t = 0; t < MIX_TYPES; t++) snprintf(mix_names[t], sizeof mix_names[t], "t%02d", t);
    static const char *const users[] = {"", "", "", "", "alice", "bob"};
    uint32_t rnd = 12345;
    char content[32];
    memset(content, 'c', sizeof content);
    for (uint64_t id = 1; id <= MIX_N; id++) {
        rnd = rnd * 1103515245u + 12345u;
        uint32_t x = rnd >> 8;
        const char *type = x % 4 == 0    ? ""
                           : x % 97 == 1 ? "rare"
                           : x % 3 == 0  ? "a"
                           : x % 5 == 0  ? "b"
                                         : mix_names[(x >> 4) % MIX_TYPES];
        snprintf(mix_type[id], sizeof mix_type[id], "%s", type);
        mix_user[id] = users[(x >> 10) % 6];
        size_t clen = (x >> 14) % 20;
        mix_size[id] = strlen(type) + strlen(mix_user[id]) + clen;
        store_event_t ev = {
            .type = type, .user = mix_user[id], .content = content, .content_len = clen};
        cr_assert_eq(st->ops->append(st, &ev, NULL, NULL), 0);
    }
    cr_assert_eq(append_ok(st, "", "nobody", "sync"), MIX_N + 1);

    const char *many[MIX_TYPES + 2];
    for (int t = 0; t < MIX_TYPES; t++) many[t] = mix_names[t];
    many[MIX_TYPES] = "rare";
    many[MIX_TYPES + 1] = "t03"; /* a duplicate */
    const char *some[] = {"a", "t07", "a", "", "t31"};
    const char *rare[] = {"rare"};
    const char *absent[] = {"zzz"};
    const char *untyped[] = {""};
    const struct {
        store_filter_t f;
        const char *what;
    } filters[] = {
        {{.user = ""}, "anonymous, every type"},
        {{.user = "", .strict = 1}, "anonymous, strict, no types"},
        {{.user = "alice"}, "alice, every type"},
        {{.user = "alice", .strict = 1}, "alice, strict, no types"},
        {{.user = "", .types = rare, .ntypes = 1}, "anonymous, rare"},
        {{.user = "alice", .types = rare, .ntypes = 1}, "alice, rare"},
        {{.user = "alice", .types = rare, .ntypes = 1, .strict = 1}, "alice, rare, strict"},
        {{.user = "bob", .types = some, .ntypes = 5}, "bob, several with a duplicate and \"\""},
        {{.user = "bob", .types = some, .ntypes = 5, .strict = 1}, "bob, several, strict"},
        {{.user = "carol", .types = some, .ntypes = 5}, "carol (no events of her own)"},
        {{.user = "alice", .types = absent, .ntypes = 1, .strict = 1}, "a type never sent"},
        {{.user = "alice", .types = untyped, .ntypes = 1}, "only \"\" listed"},
        {{.user = "alice", .types = many, .ntypes = MIX_TYPES + 2}, "more types than streams"},
        {{.user = "bob", .types = many, .ntypes = MIX_TYPES + 2, .strict = 1},
         "more types than streams, strict"},
        {{.user = "alice", .types = many, .ntypes = 32}, "exactly 32 types"},
    };
    static uint64_t want[MIX_N];
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
        const store_filter_t *f = &filters[i].f;
        char what[160];
        const uint64_t ranges[][2] = {{0, UINT64_MAX}, {MIX_N / 3, 2 * MIX_N / 3}, {MIX_N, MIX_N}};
        for (size_t k = 0; k < 3; k++) {
            uint64_t lo = ranges[k][0], hi = ranges[k][1];
            size_t n = brute(f, false, lo, hi, want);
            snprintf(what, sizeof what, "%s, replay %llu-%llu", filters[i].what,
                     (unsigned long long)lo, (unsigned long long)hi);
            expect_paged(st, f, false, lo, hi, (store_read_opts_t){.max_rows = SIZE_MAX}, want, n,
                         what);
            if (k == 2) continue;
            expect_paged(st, f, false, lo, hi, (store_read_opts_t){.max_rows = 7}, want, n, what);
            expect_paged(st, f, false, lo, hi, (store_read_opts_t){.max_rows = 50, .max_bytes = 40},
                         want, n, what);
        }
        size_t n = brute(f, true, 0, UINT64_MAX, want);
        snprintf(what, sizeof what, "%s, list", filters[i].what);
        expect_paged(st, f, true, 0, 0, (store_read_opts_t){.max_rows = SIZE_MAX}, want, n, what);
        expect_paged(st, f, true, 0, 0, (store_read_opts_t){.max_rows = 9, .max_bytes = 60}, want,
                     n, what);
        n = brute(f, true, 0, MIX_N / 2 - 1, want);
        snprintf(what, sizeof what, "%s, list before %d", filters[i].what, MIX_N / 2);
        expect_paged(st, f, true, 0, MIX_N / 2, (store_read_opts_t){.max_rows = 11}, want, n, what);
    }
    st->ops->close(st);
}

/* ---- bounds and trim ---- */

Test(STORE_SUITE, bounds_track_appends_and_trims)
{
    store_options_t o = STORE_OPTS(.max_events = 4);
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

Test(STORE_SUITE, trim_by_age)
{
    store_options_t o = STORE_OPTS(.max_age_ms = 60000);
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

Test(STORE_SUITE, trim_many_in_batches_and_keep_appending)
{
    store_options_t o = STORE_OPTS(.max_events = 1000);
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

Test(STORE_SUITE, writer_trims_on_its_own)
{
    store_options_t o = STORE_OPTS(.max_events = 2, .trim_interval_ms = 20);
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

static void on_count_rows(void *arg, const store_page_t *page, int err)
{
    (void)page, (void)err;
    (*(int *)arg)++;
}

Test(STORE_SUITE, close_commits_queued_appends_and_calls_every_done)
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
    cr_assert_eq(st->ops->replay(st, 0, 10, &(store_filter_t){0},
                                 &(store_read_opts_t){.max_rows = 10}, on_count_rows, &replays),
                 0);
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

/* ---- the reader's queue: its bound, cancellation, close ---- */

typedef struct blocker {
    store_t *st;
    waiter_t entered, release;
    int err;
    bool until_close; /* hold until close() has begun instead of until release */
    int extra;        /* reads queued while holding until close */
} blocker_t;

/* One read's answer: how often done ran, and with what. */
typedef struct answer {
    int calls, err;
    size_t n;
    bool rows_null;
} answer_t;

typedef struct tally {
    pthread_mutex_t mu;
    waiter_t w;
    int ok, cancelled, other;
    size_t rows;
} tally_t;

static void on_tally(void *arg, const store_page_t *page, int err)
{
    tally_t *t = arg;
    pthread_mutex_lock(&t->mu);
    if (err == 0)
        t->ok++;
    else if (err == SSE_ECANCELED && page->n == 0)
        t->cancelled++;
    else
        t->other++;
    t->rows += page->n;
    pthread_mutex_unlock(&t->mu);
    waiter_bump(&t->w);
}

static void on_answer(void *arg, const store_page_t *page, int err)
{
    answer_t *a = arg;
    a->calls++;
    a->err = err;
    a->n = page->n;
    a->rows_null = page->rows == NULL;
}

static tally_t extra_tally = {.mu = PTHREAD_MUTEX_INITIALIZER, .w = WAITER_INIT};

/* Holds the reader inside this read's done, so reads queued meanwhile wait: until the test
 * releases it, or until close() has begun (reads are then refused with SSE_ERR, not
 * SSE_EFULL), queueing more reads on the way. */
static void on_block(void *arg, const store_page_t *page, int err)
{
    blocker_t *b = arg;
    (void)page;
    b->err = err;
    waiter_bump(&b->entered);
    if (!b->until_close) {
        waiter_wait(&b->release, 1);
        return;
    }
    store_read_opts_t o = {.max_rows = 1};
    int rc;
    while ((rc = b->st->ops->replay(b->st, 0, 10, &(store_filter_t){0}, &o, on_tally,
                                    &extra_tally)) != SSE_ERR) {
        if (rc == 0) b->extra++;
        usleep(1000);
    }
}

static void block_reader(store_t *st, blocker_t *b, bool until_close)
{
    *b = (blocker_t){
        .st = st, .entered = WAITER_INIT, .release = WAITER_INIT, .until_close = until_close};
    store_read_opts_t o = {.max_rows = 1};
    cr_assert_eq(st->ops->replay(st, 0, 10, &(store_filter_t){0}, &o, on_block, b), 0);
    waiter_wait(&b->entered, 1);
}

Test(STORE_SUITE, reads_past_the_queue_bound_fail_with_efull)
{
    store_t *st = seed();
    static blocker_t b;
    static tally_t t = {.mu = PTHREAD_MUTEX_INITIALIZER, .w = WAITER_INIT};
    block_reader(st, &b, false);

    store_filter_t f = {.user = "alice"};
    store_read_opts_t o = {.max_rows = 10};
    for (int i = 0; i < STORE_MAX_READS; i++) {
        int rc = i % 2 ? st->ops->list(st, &f, 0, &o, on_tally, &t)
                       : st->ops->replay(st, 0, 100, &f, &o, on_tally, &t);
        cr_assert_eq(rc, 0, "read %d of %d refused: %d", i + 1, STORE_MAX_READS, rc);
    }
    cr_assert_eq(st->ops->replay(st, 0, 100, &f, &o, on_tally, &t), SSE_EFULL);
    cr_assert_eq(st->ops->list(st, &f, 0, &o, on_tally, &t), SSE_EFULL);

    waiter_bump(&b.release);
    waiter_wait(&t.w, STORE_MAX_READS);
    rows_t r;
    do_replay(st, 0, 100, "alice", NULL, 0, 100, &r);
    expect_ids(&r, (uint64_t[]){1, 3, 4, 5, 6, 7, 0}, "the queue has room again");
    cr_assert_eq(t.ok, STORE_MAX_READS, "the refused reads were not answered");
    cr_assert_eq(t.cancelled + t.other, 0);
    cr_assert_eq(t.rows, (size_t)STORE_MAX_READS * 6);
    st->ops->close(st);
}

Test(STORE_SUITE, a_cancelled_read_is_skipped_with_ecanceled)
{
    store_t *st = seed();
    store_filter_t f = {.user = "alice"};
    atomic_int gone = 1;
    answer_t a = {0}, l = {0};
    tally_t sync = {.mu = PTHREAD_MUTEX_INITIALIZER, .w = WAITER_INIT};
    store_read_opts_t o = {.max_rows = 10, .cancelled = &gone};
    cr_assert_eq(st->ops->replay(st, 0, 100, &f, &o, on_answer, &a), 0);
    cr_assert_eq(st->ops->list(st, &f, 0, &o, on_answer, &l), 0);
    cr_assert_eq(
        st->ops->replay(st, 0, 100, &f, &(store_read_opts_t){.max_rows = 1}, on_tally, &sync), 0);
    waiter_wait(&sync.w, 1); /* reads run in order: the two before have been answered */
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(a.err, SSE_ECANCELED);
    cr_assert_eq(a.n, 0);
    cr_assert(a.rows_null);
    cr_assert_eq(l.calls, 1);
    cr_assert_eq(l.err, SSE_ECANCELED);
    cr_assert_eq(l.n, 0);

    /* The flag is read when the read is about to run, not when it is queued. */
    static blocker_t b;
    block_reader(st, &b, false);
    atomic_int later = 0, stays = 0;
    answer_t c = {0}, d = {0};
    cr_assert_eq(st->ops->replay(st, 0, 100, &f,
                                 &(store_read_opts_t){.max_rows = 10, .cancelled = &later},
                                 on_answer, &c),
                 0);
    cr_assert_eq(st->ops->replay(st, 0, 100, &f,
                                 &(store_read_opts_t){.max_rows = 10, .cancelled = &stays},
                                 on_answer, &d),
                 0);
    atomic_store(&later, 1);
    waiter_bump(&b.release);
    tally_t sync2 = {.mu = PTHREAD_MUTEX_INITIALIZER, .w = WAITER_INIT};
    cr_assert_eq(
        st->ops->replay(st, 0, 1, &f, &(store_read_opts_t){.max_rows = 1}, on_tally, &sync2), 0);
    waiter_wait(&sync2.w, 1);
    cr_assert_eq(c.calls, 1);
    cr_assert_eq(c.err, SSE_ECANCELED);
    cr_assert_eq(c.n, 0);
    cr_assert_eq(d.calls, 1);
    cr_assert_eq(d.err, 0);
    cr_assert_eq(d.n, 6, "a flag left at 0 reads normally");
    st->ops->close(st);
}

/* Holds the reader in a read while N more wait, then ends the store: by close() alone, or
 * by drain() (checked to refuse new work, twice over) and then close(). Every waiting read,
 * and each one queued while it ended, must be answered once, with SSE_ECANCELED. */
static void end_with_reads_waiting(bool drain_first)
{
    store_t *st = seed();
    static blocker_t b;
    enum { N = 300 };
    static answer_t a[N];
    memset(a, 0, sizeof a);
    extra_tally = (tally_t){.mu = PTHREAD_MUTEX_INITIALIZER, .w = WAITER_INIT};
    block_reader(st, &b, true);
    store_filter_t f = {.user = "alice"};
    store_read_opts_t o = {.max_rows = 10};
    for (int i = 0; i < N; i++) {
        int rc = i % 2 ? st->ops->list(st, &f, 0, &o, on_answer, &a[i])
                       : st->ops->replay(st, 0, 100, &f, &o, on_answer, &a[i]);
        cr_assert_eq(rc, 0);
    }
    if (drain_first) {
        st->ops->drain(st);
        answer_t late = {0};
        cr_assert_eq(st->ops->replay(st, 0, 100, &f, &o, on_answer, &late), SSE_ERR);
        cr_assert_eq(st->ops->list(st, &f, 0, &o, on_answer, &late), SSE_ERR);
        store_event_t ev = {.type = "", .user = "", .content = "x", .content_len = 1};
        cr_assert_eq(st->ops->append(st, &ev, NULL, NULL), SSE_ERR);
        st->ops->drain(st);
        cr_assert_eq(late.calls, 0);
        store_bounds_t bd;
        st->ops->bounds(st, &bd);
        cr_assert_eq(bd.latest, 7, "bounds() still answers after drain()");
    }
    st->ops->close(st);

    cr_assert_eq(b.err, 0, "the read that was running finished normally");
    for (int i = 0; i < N; i++) {
        cr_assert_eq(a[i].calls, 1, "read %d answered %d times", i, a[i].calls);
        cr_assert_eq(a[i].err, SSE_ECANCELED, "read %d: %d", i, a[i].err);
        cr_assert_eq(a[i].n, 0);
    }
    cr_assert_eq(extra_tally.cancelled, b.extra, "%d of the %d queued while closing",
                 extra_tally.cancelled, b.extra);
    cr_assert_eq(extra_tally.ok + extra_tally.other, 0);
}

Test(STORE_SUITE, close_answers_every_waiting_read_once_with_ecanceled)
{
    end_with_reads_waiting(false);
}

Test(STORE_SUITE, drain_answers_every_waiting_read_once_and_refuses_new_work)
{
    end_with_reads_waiting(true);
}

#endif
