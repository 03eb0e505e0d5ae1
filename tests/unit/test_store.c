/* SQLite history store: the cases of every store (store_cases.h), then group commit, query plans, size cap, bad files, the lock, the write probe. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The store itself, not only its header: the query-plan tests read its SQL. */
#include "store_sqlite.c"

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

#define STORE_OPTS(...) ((store_options_t){.path = dbpath, __VA_ARGS__})

static store_t *open_default(void)
{
    store_options_t o = {.path = dbpath};
    return open_opts(&o);
}

#define STORE_SUITE store
#include "store_cases.h"


/* ---- SQLite only ---- */

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

/* ---- typed reads: the index, and the merge against a brute force ---- */

/* The query plan SQLite picks for sql on the test's database, one detail per line. */
static void plan_of(const char *sql, char *out, size_t cap)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char q[512];
    snprintf(q, sizeof q, "EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    out[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW)
        snprintf(out + strlen(out), cap - strlen(out), "%s\n", sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Asserts each read statement searches its index by equality and id range, in id order
 * (no temporary b-tree: nothing sorted). */
static void expect_indexed_plans(void)
{
    for (int kind = JOB_REPLAY; kind <= JOB_LIST; kind++) {
        char plan[512];
        plan_of(SQL_BY_TYPE[kind], plan, sizeof plan);
        cr_log_info("%s\n  -> %s", SQL_BY_TYPE[kind], plan);
        cr_assert_not_null(
            strstr(plan, "USING INDEX events_user_type_id (user=? AND type=? AND id>? AND id<?)"),
            "by type: %s", plan);
        cr_assert_null(strstr(plan, "TEMP B-TREE"), "by type sorts: %s", plan);
        plan_of(SQL_BY_USER[kind], plan, sizeof plan);
        cr_log_info("%s\n  -> %s", SQL_BY_USER[kind], plan);
        cr_assert_not_null(strstr(plan, "USING INDEX events_user_id (user=? AND id>? AND id<?)"),
                           "by user: %s", plan);
        cr_assert_null(strstr(plan, "TEMP B-TREE"), "by user sorts: %s", plan);
    }
}

Test(store, typed_and_user_reads_search_an_index_in_id_order)
{
    store_t *st = seed();
    expect_indexed_plans();
    st->ops->close(st);
}

Test(store, an_old_database_gains_the_type_index_when_opened)
{
    /* The schema as the first release created it: no (user, type, id) index. */
    char data[160];
    snprintf(data, sizeof data, "%s/data", dir);
    cr_assert_eq(mkdir(data, 0755), 0);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(
        sqlite3_exec(
            db,
            "PRAGMA journal_mode=WAL;"
            "CREATE TABLE events ("
            " id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " time_ms INTEGER NOT NULL,"
            " type TEXT NOT NULL DEFAULT '',"
            " user TEXT NOT NULL DEFAULT '',"
            " content BLOB NOT NULL DEFAULT x'');"
            "CREATE INDEX events_user_id ON events(user, id);"
            "INSERT INTO events VALUES (1, 1, '', 'alice', '1'), (2, 2, 'news', '', '2'),"
            " (3, 3, 'sport', '', '3'), (4, 4, '', '', '4'), (5, 5, 'news', 'alice', '5');",
            NULL, NULL, NULL),
        SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);

    store_t *st = open_default();
    cr_assert_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q;
    cr_assert_eq(sqlite3_prepare_v2(db,
                                    "SELECT sql FROM sqlite_master WHERE type = 'index'"
                                    " AND name = 'events_user_type_id'",
                                    -1, &q, NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_step(q), SQLITE_ROW, "the index was not created");
    cr_log_info("%s", sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    sqlite3_close(db);
    expect_indexed_plans();

    rows_t r;
    do_replay(st, 0, 100, "alice", (const char *[]){"news"}, 1, 100, &r);
    expect_ids(&r, (uint64_t[]){1, 2, 4, 5, 0}, "old rows through the new index");
    do_replay(st, 0, 100, "", (const char *[]){"sport"}, 1, 100, &r);
    expect_ids(&r, (uint64_t[]){3, 4, 0}, "sport");
    cr_assert_eq(append_ok(st, "sport", "", "6"), 6, "ids continue");
    do_replay(st, 0, 100, "", (const char *[]){"sport"}, 1, 100, &r);
    expect_ids(&r, (uint64_t[]){3, 4, 6, 0}, "a new row in the new index");
    st->ops->close(st);

    st = open_default(); /* a second open finds the index there */
    do_list(st, "", (const char *[]){"sport"}, 1, 0, 100, &r);
    expect_ids(&r, (uint64_t[]){6, 4, 3, 0}, "after reopening");
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

/* ---- one server per database ---- */

Test(store, a_second_open_of_the_same_database_fails_until_the_first_closes)
{
    store_t *first = open_default();
    cr_assert_eq(append_ok(first, "", "", "kept"), 1);
    store_options_t o = {.path = dbpath};
    store_t *st = (store_t *)0x1;
    char err[SSE_ERR_LEN] = "";
    /* flock() locks belong to an open file, so a second open in this process is refused too. */
    cr_assert_eq(store_sqlite_open(&o, &st, err), SSE_ERR, "a second store opened %s", dbpath);
    cr_assert_null(st);
    cr_assert_not_null(strstr(err, dbpath), "message \"%s\" does not name %s", err, dbpath);
    cr_assert_not_null(strstr(err, "another process is using this database"), "%s", err);
    cr_assert_null(strchr(err, '\n'));
    first->ops->close(first);

    store_t *again = open_default();
    store_bounds_t b;
    again->ops->bounds(again, &b);
    cr_assert_eq(b.latest, 1, "the refused open changed nothing");
    again->ops->close(again);
}

/* ---- a database that cannot be written ---- */

/* Drops every capability of this test's process, so that file modes bind root too. */
static void drop_capabilities(void)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    cr_assert_eq(syscall(SYS_capset, &h, d), 0, "capset: %s", strerror(errno));
}

Test(store, a_read_only_database_fails_at_open_with_sqlites_message)
{
    store_t *st = open_default();
    cr_assert_eq(append_ok(st, "", "", "x"), 1);
    st->ops->close(st);
    cr_assert_eq(chmod(dbpath, 0444), 0);
    drop_capabilities();

    store_options_t o = {.path = dbpath};
    st = (store_t *)0x1;
    char err[SSE_ERR_LEN] = "";
    cr_assert_eq(store_sqlite_open(&o, &st, err), SSE_ERR, "a read-only %s opened", dbpath);
    cr_assert_null(st);
    cr_assert_not_null(strstr(err, dbpath), "%s", err);
    cr_assert_not_null(strstr(err, "attempt to write a readonly database"), "%s", err);
}

Test(store, an_over_full_database_still_opens)
{
    store_options_t o = {.path = dbpath, .max_bytes = 64 * 1024};
    store_t *st = open_opts(&o);
    char content[3000];
    memset(content, 'f', sizeof content - 1);
    content[sizeof content - 1] = '\0';
    uint64_t last = 0;
    /* Big events, then empty ones (the probe's size) into the last free bytes. */
    for (int k = 0; k < 2; k++) {
        int e = 0;
        for (int i = 0; i < 100000 && e == 0; i++) {
            uint64_t id = 0;
            e = append_full(st, "", "", content, k ? 0 : strlen(content), &id);
            if (e == 0) last = id;
        }
        cr_assert_eq(e, SSE_EFULL);
    }
    cr_assert_gt(last, 0);

    one_done_t d = {.w = WAITER_INIT};
    static char why[SSE_ERR_LEN];
    d.why = why;
    store_event_t ev = {.type = "", .user = "", .content = "", .content_len = 0};
    cr_assert_eq(st->ops->append(st, &ev, on_one, &d), 0);
    waiter_wait(&d.w, 1);
    cr_assert_eq(d.err, SSE_EFULL);
    cr_assert_str_eq(why, "database or disk is full", "a failed append says why");
    st->ops->close(st);

    /* The same cap, and one below the file's size: the probe's insert fails as full. */
    int64_t caps[] = {64 * 1024, 8 * 1024};
    for (int i = 0; i < 2; i++) {
        o.max_bytes = caps[i];
        st = open_opts(&o);
        store_bounds_t b;
        st->ops->bounds(st, &b);
        cr_assert_eq(b.latest, last, "no id taken by the probe");
        st->ops->close(st);
    }
}
