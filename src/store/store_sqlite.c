/* SQLite history (WAL): a writer thread group-commits appends, a reader thread serves reads. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "store_filter.h"

enum {
    TRIM_BATCH = 5000,      /* rows deleted per transaction, so appends are not stalled */
    BUSY_TIMEOUT_MS = 5000, /* another process holding the file (a backup, the sqlite3 shell) */
    READ_TYPES_MAX = 32,    /* type statements per read (SUB_MAX_TYPES); past it, C filters */
};

/* One queued append. The strings of ev point into the same allocation. */
typedef struct pending {
    struct pending *next;
    store_event_t ev;
    store_commit_fn done;
    void *arg;
} pending_t;

typedef enum { JOB_REPLAY, JOB_LIST } job_kind_t;

/* One queued read, with its own copy of the filter (store_filter.h) in the same allocation. */
typedef struct job {
    struct job *next;
    job_kind_t kind;
    int64_t lo, hi; /* lo < id <= hi (a list's hi is before - 1), newest first for a list */
    size_t max_rows, max_bytes;
    const atomic_int *cancelled;
    store_match_t m;
    store_rows_fn done;
    void *arg;
} job_t;

typedef struct store_sqlite {
    struct store base;
    char *path;
    int lock_fd; /* <path>.lock, flock()ed for the life of the store; -1 before */
    int64_t max_age_ms;
    uint64_t max_events;
    int trim_interval_ms;
    store_feed_fn feed; /* called on the writer before each committed event's done */
    void *feed_arg;

    /* The write connection is shared by the writer thread and trim() callers: db_mu
     * makes each transaction, and next_id, belong to one of them at a time. */
    pthread_mutex_t db_mu;
    sqlite3 *wdb;
    sqlite3_stmt *ins, *trim_age, *trim_del, *sel_min;
    uint64_t next_id;

    /* Appends waiting for the writer. */
    pthread_mutex_t q_mu;
    pthread_cond_t q_cv;
    pending_t *q_head, **q_tail;
    bool q_closing;
    pthread_t writer;

    /* Bounds as seen by bounds(): updated under db_mu after each commit or trim. */
    pthread_mutex_t b_mu;
    store_bounds_t bounds;

    /* Reads waiting for the reader (at most STORE_MAX_READS), which owns rdb and its
     * statements: per kind of read, two by user (the user's own events, the broadcasts)
     * and a pool by user and type, one per type stream of a read, prepared on first use
     * (a statement steps through one query at a time). */
    pthread_mutex_t j_mu;
    pthread_cond_t j_cv;
    job_t *j_head, **j_tail;
    size_t j_len; /* waiting, not counting the read that runs */
    bool j_closing;
    pthread_t reader;
    sqlite3 *rdb;
    sqlite3_stmt *sel_bounds;
    sqlite3_stmt *sel_user[2][2];                  /* [JOB_REPLAY or JOB_LIST][own, broadcasts] */
    sqlite3_stmt *sel_type[2][READ_TYPES_MAX + 1]; /* [kind][untyped, then each type] */

    bool threads_started;
    bool drained; /* drain() has run: the threads are joined (only its caller touches it) */
} store_sqlite_t;

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS events ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " time_ms INTEGER NOT NULL,"
    " type TEXT NOT NULL DEFAULT '',"
    " user TEXT NOT NULL DEFAULT '',"
    " content BLOB NOT NULL DEFAULT x'');"
    "CREATE INDEX IF NOT EXISTS events_user_id ON events(user, id);"
    /* Added after the first release: an older file gains it when it is opened. */
    "CREATE INDEX IF NOT EXISTS events_user_type_id ON events(user, type, id);";

/*
 * An event reaches a reader in one of two disjoint ways (store.h): addressed to its user,
 * or a broadcast its types accept. A read merges in C, in id order, a few statements that
 * each walk an index in id order, so its cost follows the rows it returns, not the id range,
 * and nothing is sorted (a UNION ALL ... ORDER BY measured 5x slower on 10,000 rows):
 *  - the user's own events, by (user, id); a strict filter's types are checked in C, as a
 *    user's own events are few;
 *  - without a type filter, every broadcast, by (user, id) with user '';
 *  - with one, the untyped broadcasts and those of each wanted type, one statement each by
 *    (user, type, id): a rare type costs its own rows, not a walk over every broadcast.
 * ?1 user ('' for broadcasts), ?2 and ?3 the ids (lo < id <= hi), ?4 the type.
 */
#define SEL_FROM "SELECT id, time_ms, type, user, content FROM events WHERE "
#define SEL_RANGE " AND id > ?2 AND id <= ?3 ORDER BY id"

static const char *const SQL_BY_USER[2] = {
    [JOB_REPLAY] = SEL_FROM "user = ?1" SEL_RANGE,
    [JOB_LIST] = SEL_FROM "user = ?1" SEL_RANGE " DESC",
};

static const char *const SQL_BY_TYPE[2] = {
    [JOB_REPLAY] = SEL_FROM "user = ?1 AND type = ?4" SEL_RANGE,
    [JOB_LIST] = SEL_FROM "user = ?1 AND type = ?4" SEL_RANGE " DESC",
};

/* sqlite_sequence holds the last id ever committed, even after every row is trimmed. */
static const char SQL_BOUNDS[] =
    "SELECT coalesce((SELECT min(id) FROM events), 0),"
    " max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),"
    "     coalesce((SELECT max(id) FROM events), 0))";

static int64_t clock_ms(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t clamp_id(uint64_t v)
{
    return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

static void set_err(char err[SSE_ERR_LEN], const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes "store <path>: <reason>" into err, as one line. */
static void set_err(char err[SSE_ERR_LEN], const char *path, const char *fmt, ...)
{
    if (!err) return;
    int n = snprintf(err, SSE_ERR_LEN, "store %s: ", path);
    if (n < 0 || n >= SSE_ERR_LEN) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, SSE_ERR_LEN - (size_t)n, fmt, ap);
    va_end(ap);
    for (char *p = err; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
}

static int err_of(int rc)
{
    return (rc & 0xff) == SQLITE_FULL ? SSE_EFULL : SSE_ERR;
}

/* Runs a statement that returns no rows we need; returns the SQLite result code. */
static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* ---- writer ---------------------------------------------------------------------------- */

/* Detaches everything queued; called with q_mu held. */
static pending_t *take_queue(store_sqlite_t *s)
{
    pending_t *batch = s->q_head;
    s->q_head = NULL;
    s->q_tail = &s->q_head;
    return batch;
}

/*
 * Writes a whole batch in one transaction, ids given in queue order, then reports each
 * event to its done callback in that order, and frees the batch. On failure nothing of
 * the batch is kept and next_id stays where it was, so no id is ever skipped or reused.
 */
static void commit_batch(store_sqlite_t *s, pending_t *batch)
{
    pthread_mutex_lock(&s->db_mu);
    uint64_t first = s->next_id, id = first;
    int rc = exec(s->wdb, "BEGIN IMMEDIATE");
    for (pending_t *p = batch; rc == SQLITE_OK && p; p = p->next) {
        const store_event_t *ev = &p->ev;
        sqlite3_bind_int64(s->ins, 1, (int64_t)id);
        sqlite3_bind_int64(s->ins, 2, ev->time_ms);
        sqlite3_bind_text(s->ins, 3, ev->type, -1, SQLITE_STATIC);
        sqlite3_bind_text(s->ins, 4, ev->user, -1, SQLITE_STATIC);
        sqlite3_bind_blob64(s->ins, 5, ev->content, ev->content_len, SQLITE_STATIC);
        rc = sqlite3_step(s->ins);
        if (rc == SQLITE_DONE) rc = SQLITE_OK;
        sqlite3_reset(s->ins);
        id++;
    }
    sqlite3_clear_bindings(s->ins);
    if (rc == SQLITE_OK) rc = exec(s->wdb, "COMMIT");
    int err = SSE_OK;
    char why[160] = "";
    if (rc != SQLITE_OK) {
        err = err_of(rc);
        snprintf(why, sizeof why, "%s", sqlite3_errmsg(s->wdb)); /* before ROLLBACK resets it */
        for (char *c = why; *c; c++)
            if ((unsigned char)*c < 0x20) *c = ' ';
        /* SQLite may already have rolled back on its own (a full disk often does). */
        if (!sqlite3_get_autocommit(s->wdb)) exec(s->wdb, "ROLLBACK");
    } else {
        s->next_id = id;
        pthread_mutex_lock(&s->b_mu);
        s->bounds.latest = id - 1;
        if (s->bounds.oldest == 0) s->bounds.oldest = first;
        pthread_mutex_unlock(&s->b_mu);
    }
    pthread_mutex_unlock(&s->db_mu);

    /* Callbacks run outside db_mu: they may append, read or trim. The feed comes first, so
     * an event is on its way to every loop before its publisher hears of it. */
    id = first;
    while (batch) {
        pending_t *next = batch->next;
        batch->ev.id = err ? 0 : id++;
        batch->ev.error = err ? why : NULL;
        if (!err && s->feed) s->feed(s->feed_arg, &batch->ev);
        if (batch->done) batch->done(batch->arg, &batch->ev, err);
        free(batch);
        batch = next;
    }
}

/* Commits whatever is queued right now; the writer thread's way to let appends through
 * between trim batches. */
static void writer_flush(store_sqlite_t *s)
{
    pthread_mutex_lock(&s->q_mu);
    pending_t *batch = take_queue(s);
    pthread_mutex_unlock(&s->q_mu);
    if (batch) commit_batch(s, batch);
}

/*
 * Deletes events older than now_ms - max_age_ms and the oldest beyond max_events, at
 * most TRIM_BATCH per transaction, taking db_mu per batch only. On the writer thread
 * (flush) queued appends are committed between batches. Returns rows removed or SSE_ERR.
 *
 * Ids are given in time order and trims remove from the oldest end, so the retained ids
 * form one range: the count limit becomes an id cut without counting rows, and the age
 * limit is the first id young enough, found by walking from the oldest (a clock stepped
 * back can only make a few rows live a little longer).
 */
static long trim_run(store_sqlite_t *s, int64_t now_ms, bool flush)
{
    if (s->max_age_ms <= 0 && s->max_events == 0) return 0;
    pthread_mutex_lock(&s->db_mu);
    int64_t cut = 0; /* rows with id < cut go */
    int rc = SQLITE_OK;
    if (s->max_age_ms > 0) {
        sqlite3_bind_int64(s->trim_age, 1, now_ms - s->max_age_ms);
        rc = sqlite3_step(s->trim_age);
        if (rc == SQLITE_ROW) {
            cut = sqlite3_column_int64(s->trim_age, 0);
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            cut = (int64_t)s->next_id; /* everything is old */
            rc = SQLITE_OK;
        }
        sqlite3_reset(s->trim_age);
    }
    if (s->max_events > 0 && s->next_id - 1 > s->max_events) {
        int64_t c = (int64_t)(s->next_id - s->max_events);
        if (c > cut) cut = c;
    }
    pthread_mutex_unlock(&s->db_mu);
    if (rc != SQLITE_OK) return SSE_ERR;

    long removed = 0;
    for (int changes = TRIM_BATCH; cut > 0 && changes == TRIM_BATCH;) {
        if (flush) writer_flush(s);
        pthread_mutex_lock(&s->db_mu);
        sqlite3_bind_int64(s->trim_del, 1, cut);
        sqlite3_bind_int(s->trim_del, 2, TRIM_BATCH);
        rc = sqlite3_step(s->trim_del);
        sqlite3_reset(s->trim_del);
        changes = rc == SQLITE_DONE ? sqlite3_changes(s->wdb) : 0;
        if (rc == SQLITE_DONE && changes > 0) {
            removed += changes;
            rc = sqlite3_step(s->sel_min);
            if (rc == SQLITE_ROW) {
                pthread_mutex_lock(&s->b_mu);
                s->bounds.oldest = (uint64_t)sqlite3_column_int64(s->sel_min, 0);
                pthread_mutex_unlock(&s->b_mu);
                rc = SQLITE_DONE;
            }
            sqlite3_reset(s->sel_min);
        }
        pthread_mutex_unlock(&s->db_mu);
        if (rc != SQLITE_DONE) return SSE_ERR;
    }
    return removed;
}

static struct timespec mono_after(int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static bool mono_passed(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* The writer: takes everything queued, commits it as one transaction, repeats; trims
 * between batches when the interval has passed. Exits once closing and drained. */
static void *writer_main(void *p)
{
    store_sqlite_t *s = p;
    bool timed = s->trim_interval_ms > 0;
    struct timespec next_trim = mono_after(timed ? s->trim_interval_ms : 0);
    for (;;) {
        pthread_mutex_lock(&s->q_mu);
        while (!s->q_head && !s->q_closing) {
            if (!timed) {
                pthread_cond_wait(&s->q_cv, &s->q_mu);
            } else if (mono_passed(&next_trim)) {
                break;
            } else {
                pthread_cond_timedwait(&s->q_cv, &s->q_mu, &next_trim);
            }
        }
        pending_t *batch = take_queue(s);
        bool closing = s->q_closing;
        pthread_mutex_unlock(&s->q_mu);
        if (batch) {
            commit_batch(s, batch);
        } else if (closing) {
            break;
        }
        if (timed && !closing && mono_passed(&next_trim)) {
            trim_run(s, clock_ms(CLOCK_REALTIME), true);
            next_trim = mono_after(s->trim_interval_ms);
        }
    }
    return NULL;
}

/* ---- reader ---------------------------------------------------------------------------- */

/* Removes the first waiting read; called with j_mu held. */
static job_t *take_job(store_sqlite_t *s)
{
    job_t *j = s->j_head;
    if (j) {
        s->j_head = j->next;
        if (!s->j_head) s->j_tail = &s->j_head;
        s->j_len--;
    }
    return j;
}

/* Answers a read that will not run: no rows, SSE_ECANCELED. */
static void job_cancel(job_t *j)
{
    store_page_t page = {0};
    if (j->done) j->done(j->arg, &page, SSE_ECANCELED);
}

static const char *col_text(sqlite3_stmt *st, int col, size_t *len)
{
    const char *t = (const char *)sqlite3_column_blob(st, col);
    *len = (size_t)sqlite3_column_bytes(st, col);
    return t ? t : "";
}

/* What the current row of st counts against a read's max_bytes: type, user and content. */
static size_t row_bytes(sqlite3_stmt *st)
{
    return (size_t)sqlite3_column_bytes(st, 2) + (size_t)sqlite3_column_bytes(st, 3) +
           (size_t)sqlite3_column_bytes(st, 4);
}

/* Copies the current row of st into a self-contained event: one allocation, holding
 * NUL-terminated type, user and content (SQLite's buffers die at the next step). */
static store_event_t copy_row(sqlite3_stmt *st)
{
    size_t tl, ul, cl;
    const char *t = col_text(st, 2, &tl), *u = col_text(st, 3, &ul), *c = col_text(st, 4, &cl);
    char *buf = xmalloc(tl + ul + cl + 3);
    memcpy(buf, t, tl);
    buf[tl] = '\0';
    memcpy(buf + tl + 1, u, ul);
    buf[tl + 1 + ul] = '\0';
    memcpy(buf + tl + ul + 2, c, cl);
    buf[tl + ul + 2 + cl] = '\0';
    return (store_event_t){
        .id = (uint64_t)sqlite3_column_int64(st, 0),
        .time_ms = sqlite3_column_int64(st, 1),
        .type = buf,
        .user = buf + tl + 1,
        .content = buf + tl + ul + 2,
        .content_len = cl,
    };
}

/* One input of a read's merge: a statement's rows in id order, and the one it is on. */
typedef struct stream {
    sqlite3_stmt *st;
    int rc;        /* SQLITE_ROW while on a row, then SQLITE_DONE or the error */
    int64_t id;    /* the current row's id */
    bool filtered; /* rows pass only with a wanted type (store_match_type) */
} stream_t;

/* Moves s to its next row that passes the job's filter, or to its end. */
static void stream_next(stream_t *s, const job_t *j)
{
    while ((s->rc = sqlite3_step(s->st)) == SQLITE_ROW) {
        if (!s->filtered || store_match_type(&j->m, (const char *)sqlite3_column_text(s->st, 2))) {
            s->id = sqlite3_column_int64(s->st, 0);
            return;
        }
    }
}

static stream_t stream_bind(sqlite3_stmt *st, const job_t *j, const char *user, const char *type,
                            bool filtered)
{
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, j->lo);
    sqlite3_bind_int64(st, 3, j->hi);
    if (type) sqlite3_bind_text(st, 4, type, -1, SQLITE_STATIC);
    return (stream_t){.st = st, .rc = SQLITE_DONE, .filtered = filtered};
}

/* The k-th type statement of a kind of read, prepared on first use; NULL if it cannot be. */
static sqlite3_stmt *type_stmt(store_sqlite_t *s, job_kind_t kind, uint32_t k)
{
    sqlite3_stmt **st = &s->sel_type[kind][k];
    if (!*st)
        sqlite3_prepare_v3(s->rdb, SQL_BY_TYPE[kind], -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    return *st;
}

/*
 * Binds in out[] the statements whose rows, merged, are exactly the job's (see
 * SQL_BY_USER), setting *n to how many. More distinct types than there are type
 * statements read every broadcast and check the types in C: still right, only slower.
 * Returns 0, or SSE_ERR when a statement cannot be prepared (*n are bound still).
 */
static int plan_streams(store_sqlite_t *s, const job_t *j, stream_t out[READ_TYPES_MAX + 2], int *n)
{
    *n = 0;
    const store_match_t *m = &j->m;
    if (m->user[0]) out[(*n)++] = stream_bind(s->sel_user[j->kind][0], j, m->user, NULL, m->strict);
    if (m->all_types || m->ntypes > READ_TYPES_MAX) {
        out[(*n)++] = stream_bind(s->sel_user[j->kind][1], j, "", NULL, !m->all_types);
        return SSE_OK;
    }
    for (uint32_t k = 0; k <= m->ntypes; k++) {
        sqlite3_stmt *st = type_stmt(s, j->kind, k);
        if (!st) return SSE_ERR;
        out[(*n)++] = stream_bind(st, j, "", k == 0 ? "" : m->types[k - 1], false);
    }
    return SSE_OK;
}

/*
 * Runs one read inside a single read transaction, so the rows and the bounds passed to
 * done describe the same snapshot, then calls done outside it (a slow callback must not
 * hold back WAL checkpoints). A read whose requester has gone is not run at all.
 *
 * The merge takes the stream whose current row comes first (a linear look at k <= 34
 * cached ids costs nothing next to a step). It stops before the row that would break
 * max_rows or max_bytes: that row, already stepped to, is the peek that sets more.
 */
static void run_job(store_sqlite_t *s, job_t *j)
{
    if (j->cancelled && atomic_load_explicit(j->cancelled, memory_order_acquire)) {
        job_cancel(j);
        return;
    }
    stream_t streams[READ_TYPES_MAX + 2];
    int nstreams = 0;
    bool desc = j->kind == JOB_LIST;
    store_page_t page = {0};
    store_event_t *rows = NULL;
    size_t n = 0, cap = 0, bytes = 0;
    int err = SSE_ERR;

    if (exec(s->rdb, "BEGIN") != SQLITE_OK) goto out;
    if (sqlite3_step(s->sel_bounds) != SQLITE_ROW) goto end;
    page.bounds.oldest = (uint64_t)sqlite3_column_int64(s->sel_bounds, 0);
    page.bounds.latest = (uint64_t)sqlite3_column_int64(s->sel_bounds, 1);
    if (plan_streams(s, j, streams, &nstreams)) goto end;
    for (int i = 0; i < nstreams; i++) stream_next(&streams[i], j);
    for (;;) {
        stream_t *next = NULL;
        for (int i = 0; i < nstreams; i++) {
            stream_t *c = &streams[i];
            if (c->rc == SQLITE_ROW && (!next || (desc ? c->id > next->id : c->id < next->id)))
                next = c;
        }
        if (!next) break;
        size_t size = row_bytes(next->st);
        if (n == j->max_rows ||
            (n > 0 && j->max_bytes > 0 && (bytes > j->max_bytes || size > j->max_bytes - bytes))) {
            page.more = true;
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            rows = xrealloc(rows, cap * sizeof *rows);
        }
        rows[n++] = copy_row(next->st);
        bytes += size;
        stream_next(next, j);
    }
    err = SSE_OK;
    for (int i = 0; i < nstreams; i++)
        if (streams[i].rc != SQLITE_ROW && streams[i].rc != SQLITE_DONE) err = SSE_ERR;
end:
    for (int i = 0; i < nstreams; i++) {
        sqlite3_reset(streams[i].st);
        sqlite3_clear_bindings(streams[i].st);
    }
    sqlite3_reset(s->sel_bounds);
    exec(s->rdb, "COMMIT");
out:
    if (err) {
        for (size_t i = 0; i < n; i++) free((char *)rows[i].type);
        n = 0;
        page = (store_page_t){0};
    }
    page.rows = rows;
    page.n = n;
    if (j->done) j->done(j->arg, &page, err);
    for (size_t i = 0; i < n; i++) free((char *)rows[i].type);
    free(rows);
}

/* The reader: runs queued reads in order; exits once closing, leaving the ones still
 * waiting to drain(). */
static void *reader_main(void *p)
{
    store_sqlite_t *s = p;
    for (;;) {
        pthread_mutex_lock(&s->j_mu);
        while (!s->j_head && !s->j_closing) pthread_cond_wait(&s->j_cv, &s->j_mu);
        job_t *j = s->j_closing ? NULL : take_job(s);
        pthread_mutex_unlock(&s->j_mu);
        if (!j) break;
        run_job(s, j);
        free(j);
    }
    return NULL;
}

/* ---- ops ------------------------------------------------------------------------------- */

/* Queues a copy of ev for the writer; wakes it unless the caller will (sqlite_wake). */
static int enqueue(store_t *st, const store_event_t *ev, store_commit_fn done, void *arg, bool wake)
{
    store_sqlite_t *s = (store_sqlite_t *)st;
    if (!ev || (!ev->content && ev->content_len)) return SSE_ERR;
    const char *type = ev->type ? ev->type : "", *user = ev->user ? ev->user : "";
    size_t tl = strlen(type), ul = strlen(user), cl = ev->content_len;
    pending_t *p = xmalloc(sizeof *p + tl + ul + cl + 3);
    char *buf = (char *)(p + 1);
    memcpy(buf, type, tl + 1);
    memcpy(buf + tl + 1, user, ul + 1);
    if (cl) memcpy(buf + tl + ul + 2, ev->content, cl);
    buf[tl + ul + 2 + cl] = '\0';
    *p = (pending_t){
        .ev = {.type = buf, .user = buf + tl + 1, .content = buf + tl + ul + 2, .content_len = cl},
        .done = done,
        .arg = arg,
    };

    pthread_mutex_lock(&s->q_mu);
    if (s->q_closing) {
        pthread_mutex_unlock(&s->q_mu);
        free(p);
        return SSE_ERR;
    }
    /* Stamped under the lock so that queue order, hence id order, is time order. */
    p->ev.time_ms = clock_ms(CLOCK_REALTIME);
    *s->q_tail = p;
    s->q_tail = &p->next;
    if (wake) pthread_cond_signal(&s->q_cv);
    pthread_mutex_unlock(&s->q_mu);
    return SSE_OK;
}

static int sqlite_append(store_t *st, const store_event_t *ev, store_commit_fn done, void *arg)
{
    return enqueue(st, ev, done, arg, true);
}

static int sqlite_append_held(store_t *st, const store_event_t *ev, store_commit_fn done, void *arg)
{
    return enqueue(st, ev, done, arg, false);
}

static void sqlite_wake(store_t *st)
{
    store_sqlite_t *s = (store_sqlite_t *)st;
    pthread_mutex_lock(&s->q_mu);
    if (s->q_head) pthread_cond_signal(&s->q_cv);
    pthread_mutex_unlock(&s->q_mu);
}

/* Queues j for the reader, or frees it and says why not. */
static int enqueue_job(store_sqlite_t *s, job_t *j)
{
    pthread_mutex_lock(&s->j_mu);
    int rc = s->j_closing ? SSE_ERR : s->j_len >= STORE_MAX_READS ? SSE_EFULL : SSE_OK;
    if (rc == SSE_OK) {
        *s->j_tail = j;
        s->j_tail = &j->next;
        s->j_len++;
        pthread_cond_signal(&s->j_cv);
    }
    pthread_mutex_unlock(&s->j_mu);
    if (rc) free(j);
    return rc;
}

/* A read with its own copy of f (one allocation, freed with free()). */
static job_t *job_new(job_kind_t kind, const store_filter_t *f, const store_read_opts_t *o,
                      store_rows_fn done, void *arg)
{
    job_t *j = xcalloc(1, sizeof *j + store_match_size(f));
    store_match_copy(&j->m, f, j + 1);
    j->kind = kind;
    j->max_rows = o->max_rows;
    j->max_bytes = o->max_bytes;
    j->cancelled = o->cancelled;
    j->done = done;
    j->arg = arg;
    return j;
}

static int sqlite_replay(store_t *st, uint64_t after, uint64_t upto, const store_filter_t *f,
                         const store_read_opts_t *o, store_rows_fn done, void *arg)
{
    if (!o || o->max_rows == 0) return SSE_ERR;
    job_t *j = job_new(JOB_REPLAY, f, o, done, arg);
    j->lo = clamp_id(after);
    j->hi = clamp_id(upto);
    return enqueue_job((store_sqlite_t *)st, j);
}

static int sqlite_list(store_t *st, const store_filter_t *f, uint64_t before,
                       const store_read_opts_t *o, store_rows_fn done, void *arg)
{
    if (!o || o->max_rows == 0) return SSE_ERR;
    job_t *j = job_new(JOB_LIST, f, o, done, arg);
    j->lo = 0;
    j->hi = before == 0 ? INT64_MAX : clamp_id(before - 1);
    return enqueue_job((store_sqlite_t *)st, j);
}

static void sqlite_bounds(store_t *st, store_bounds_t *out)
{
    store_sqlite_t *s = (store_sqlite_t *)st;
    pthread_mutex_lock(&s->b_mu);
    *out = s->bounds;
    pthread_mutex_unlock(&s->b_mu);
}

static long sqlite_trim(store_t *st, int64_t now_ms)
{
    return trim_run((store_sqlite_t *)st, now_ms, false);
}

/* Frees a store in any state of construction; threads, if any, have been joined. */
static void destroy(store_sqlite_t *s)
{
    sqlite3_finalize(s->ins);
    sqlite3_finalize(s->trim_age);
    sqlite3_finalize(s->trim_del);
    sqlite3_finalize(s->sel_min);
    sqlite3_finalize(s->sel_bounds);
    for (int k = 0; k < 2; k++) {
        for (int w = 0; w < 2; w++) sqlite3_finalize(s->sel_user[k][w]);
        for (int t = 0; t <= READ_TYPES_MAX; t++) sqlite3_finalize(s->sel_type[k][t]);
    }
    sqlite3_close(s->rdb);
    sqlite3_close(s->wdb);
    if (s->lock_fd >= 0) close(s->lock_fd); /* releases the lock */
    pthread_mutex_destroy(&s->db_mu);
    pthread_mutex_destroy(&s->q_mu);
    pthread_cond_destroy(&s->q_cv);
    pthread_mutex_destroy(&s->b_mu);
    pthread_mutex_destroy(&s->j_mu);
    pthread_cond_destroy(&s->j_cv);
    free(s->path);
    free(s);
}

/*
 * Refuses new work, lets the writer commit what is queued (every done is called) and the
 * reader finish the read it is running, joins both, and answers the reads still waiting
 * with SSE_ECANCELED here. Runs once; st stays usable for bounds() and close(). Must not be
 * called from a store callback: those run on the threads it joins.
 */
static void sqlite_drain(store_t *st)
{
    store_sqlite_t *s = (store_sqlite_t *)st;
    if (!s || s->drained) return;
    s->drained = true;
    pthread_mutex_lock(&s->q_mu);
    s->q_closing = true;
    pthread_cond_signal(&s->q_cv);
    pthread_mutex_unlock(&s->q_mu);
    pthread_mutex_lock(&s->j_mu);
    s->j_closing = true;
    pthread_cond_signal(&s->j_cv);
    pthread_mutex_unlock(&s->j_mu);
    if (s->threads_started) {
        pthread_join(s->writer, NULL);
        pthread_join(s->reader, NULL);
    }
    pthread_mutex_lock(&s->j_mu);
    job_t *j = s->j_head;
    s->j_head = NULL;
    s->j_tail = &s->j_head;
    s->j_len = 0;
    pthread_mutex_unlock(&s->j_mu);
    while (j) {
        job_t *next = j->next;
        job_cancel(j);
        free(j);
        j = next;
    }
}

static const char *sqlite_unready(store_t *st)
{
    store_sqlite_t *s = (store_sqlite_t *)st;
    pthread_mutex_lock(&s->q_mu);
    bool closing = s->q_closing;
    pthread_mutex_unlock(&s->q_mu);
    return closing ? "stopping" : NULL;
}

static void sqlite_start_feed(store_t *st, uint64_t after)
{
    (void)st, (void)after; /* the feed is called by each commit */
}

static void sqlite_close(store_t *st)
{
    if (!st) return;
    sqlite_drain(st);
    destroy((store_sqlite_t *)st);
}

const store_ops_t store_sqlite_ops = {
    .name = "sqlite",
    .append = sqlite_append,
    .append_held = sqlite_append_held,
    .wake = sqlite_wake,
    .replay = sqlite_replay,
    .list = sqlite_list,
    .bounds = sqlite_bounds,
    .trim = sqlite_trim,
    .drain = sqlite_drain,
    .close = sqlite_close,
    .unready = sqlite_unready,
    .start_feed = sqlite_start_feed,
};

/* ---- open ------------------------------------------------------------------------------ */

/* Creates the directory holding path when it is missing (one level, like ./data). */
static int make_parent(const char *path, char err[SSE_ERR_LEN])
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) return 0;
    char *dir = xstrndup(path, (size_t)(slash - path));
    int rc = 0;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        set_err(err, path, "cannot create directory %s: %s", dir, strerror(errno));
        rc = -1;
    }
    free(dir);
    return rc;
}

/*
 * Makes this process the database's only server: an exclusive flock() on "<path>.lock",
 * held until destroy() closes it (the kernel drops it when the process ends, however it
 * ends). SQLite's own exclusive locking mode would do it too, but it holds the file
 * against every other connection: our reader's, and the sqlite3 shell's that reads or
 * backs up the history while the server runs. A lock on a file beside it leaves SQLite's
 * locking as it is. The file stays after a stop: removing it could let two processes
 * lock two different files of that name. Returns 0, or -1 with one line in err.
 */
static int lock_db(store_sqlite_t *s, char err[SSE_ERR_LEN])
{
    struct stat sb;
    if (stat(s->path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        set_err(err, s->path, "cannot open database: is a directory");
        return -1;
    }
    size_t n = strlen(s->path);
    char *lock_path = xmalloc(n + sizeof ".lock");
    memcpy(lock_path, s->path, n);
    memcpy(lock_path + n, ".lock", sizeof ".lock");
    int rc = 0;
    s->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
    if (s->lock_fd < 0) {
        set_err(err, s->path, "cannot open lock file %s: %s", lock_path, strerror(errno));
        rc = -1;
    } else if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            set_err(err, s->path, "another process is using this database (it holds %s)",
                    lock_path);
        else
            set_err(err, s->path, "cannot lock %s: %s", lock_path, strerror(errno));
        rc = -1;
    }
    free(lock_path);
    return rc;
}

/* Opens one connection with the busy timeout set; on failure says why, naming the path. */
static int open_db(const char *path, sqlite3 **db, char err[SSE_ERR_LEN])
{
    /* NOMUTEX: each connection is used by one thread at a time (db_mu, the reader). */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, db, flags, NULL);
    if (rc != SQLITE_OK) {
        struct stat sb;
        int sys = *db ? sqlite3_system_errno(*db) : 0;
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
            set_err(err, path, "cannot open database: is a directory");
        else if (sys)
            set_err(err, path, "cannot open database: %s", strerror(sys));
        else
            set_err(err, path, "cannot open database: %s",
                    *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
        return -1;
    }
    sqlite3_busy_timeout(*db, BUSY_TIMEOUT_MS);
    return 0;
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, const char *path,
                   char err[SSE_ERR_LEN])
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK) return 0;
    set_err(err, path, "unusable database: %s", sqlite3_errmsg(db));
    return -1;
}

/*
 * Proves that an event can be stored before the server says it is up: SQLite opens a
 * file it may not write (its permissions, a read-only mount) read-only without a word,
 * and once the tables exist the schema step writes nothing, so only an insert shows it.
 * The row goes in with the next id, as an append would, and is rolled back. A full
 * database passes: it must open so that trimming can make room. Returns 0, or -1 with
 * SQLite's message in err.
 */
static int probe_write(store_sqlite_t *s, char err[SSE_ERR_LEN])
{
    char msg[160] = "";
    int rc = exec(s->wdb, "BEGIN IMMEDIATE");
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(s->ins, 1, clamp_id(s->next_id));
        sqlite3_bind_int64(s->ins, 2, clock_ms(CLOCK_REALTIME)); /* the size of a real row */
        sqlite3_bind_text(s->ins, 3, "", 0, SQLITE_STATIC);
        sqlite3_bind_text(s->ins, 4, "", 0, SQLITE_STATIC);
        sqlite3_bind_blob(s->ins, 5, "", 0, SQLITE_STATIC);
        rc = sqlite3_step(s->ins);
        if (rc == SQLITE_DONE) rc = SQLITE_OK;
    }
    if (rc != SQLITE_OK) snprintf(msg, sizeof msg, "%s", sqlite3_errmsg(s->wdb));
    sqlite3_reset(s->ins);
    sqlite3_clear_bindings(s->ins);
    if (!sqlite3_get_autocommit(s->wdb)) exec(s->wdb, "ROLLBACK");
    if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_FULL) {
        set_err(err, s->path, "cannot write the database: %s", msg);
        return -1;
    }
    return 0;
}

/*
 * Sets up the write connection: WAL, sync level, an integrity check (a corrupt file must
 * stop start-up, not fail later), the schema, the size cap, the ids to continue from, and
 * a rolled-back insert (probe_write).
 */
static int setup_writer(store_sqlite_t *s, const store_options_t *opt, char err[SSE_ERR_LEN])
{
    sqlite3 *db = s->wdb;
    sqlite3_stmt *st = NULL;
    const char *path = s->path;

    /* The first statement that reads the file: where a non-database shows up. */
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        set_err(err, path, "not a usable database: %s", sqlite3_errmsg(db));
        goto fail;
    }
    const char *mode = (const char *)sqlite3_column_text(st, 0);
    if (!mode || strcmp(mode, "wal") != 0) {
        set_err(err, path, "cannot switch to WAL mode (journal mode is %s)", mode ? mode : "?");
        goto fail;
    }
    sqlite3_finalize(st);
    st = NULL;

    if (exec(db, opt->sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL") !=
        SQLITE_OK) {
        set_err(err, path, "cannot set synchronous: %s", sqlite3_errmsg(db));
        goto fail;
    }

    if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        set_err(err, path, "integrity check failed: %s", sqlite3_errmsg(db));
        goto fail;
    }
    const char *ok = (const char *)sqlite3_column_text(st, 0);
    if (!ok || strcmp(ok, "ok") != 0) {
        /* Only the first problem: the report can run to thousands of lines. */
        const char *what = ok ? ok : "?";
        const char *hdr = "*** in database main ***\n";
        if (strncmp(what, hdr, strlen(hdr)) == 0) what += strlen(hdr);
        set_err(err, path, "database is corrupt (quick_check: %.*s)", (int)strcspn(what, "\n"),
                what);
        goto fail;
    }
    sqlite3_finalize(st);
    st = NULL;

    if (exec(db, "BEGIN IMMEDIATE") != SQLITE_OK || exec(db, SCHEMA) != SQLITE_OK ||
        exec(db, "COMMIT") != SQLITE_OK) {
        set_err(err, path, "cannot create schema: %s", sqlite3_errmsg(db));
        goto fail;
    }

    if (opt->max_bytes > 0) {
        /* SQLite then fails inserts with SQLITE_FULL at the cap; it never goes below the
         * current size, so an over-full file still opens and can be trimmed. */
        int page = 4096;
        if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            page = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        st = NULL;
        int64_t pages = opt->max_bytes / (page > 0 ? page : 4096);
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA max_page_count=%" PRId64, pages > 1 ? pages : 1);
        if (exec(db, sql) != SQLITE_OK) {
            set_err(err, path, "cannot set size cap: %s", sqlite3_errmsg(db));
            goto fail;
        }
    }

    if (sqlite3_prepare_v2(db, SQL_BOUNDS, -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        set_err(err, path, "cannot read ids: %s", sqlite3_errmsg(db));
        goto fail;
    }
    s->bounds.oldest = (uint64_t)sqlite3_column_int64(st, 0);
    s->bounds.latest = (uint64_t)sqlite3_column_int64(st, 1);
    s->next_id = s->bounds.latest + 1;
    sqlite3_finalize(st);
    st = NULL;

    if (prepare(db,
                "INSERT INTO events (id, time_ms, type, user, content) VALUES (?1, ?2, ?3, ?4, ?5)",
                &s->ins, path, err) ||
        prepare(db, "SELECT id FROM events WHERE time_ms >= ?1 ORDER BY id LIMIT 1", &s->trim_age,
                path, err) ||
        prepare(db,
                "DELETE FROM events WHERE id IN"
                " (SELECT id FROM events WHERE id < ?1 ORDER BY id LIMIT ?2)",
                &s->trim_del, path, err) ||
        prepare(db, "SELECT coalesce(min(id), 0) FROM events", &s->sel_min, path, err))
        return -1;
    return probe_write(s, err);

fail:
    sqlite3_finalize(st);
    return -1;
}

int store_sqlite_open(const store_options_t *opt, store_t **out, char err[SSE_ERR_LEN])
{
    *out = NULL;
    if (err) err[0] = '\0';
    if (!opt || !opt->path || !opt->path[0]) {
        if (err) snprintf(err, SSE_ERR_LEN, "store: no database path given");
        return SSE_ERR;
    }

    store_sqlite_t *s = xcalloc(1, sizeof *s);
    s->base.ops = &store_sqlite_ops;
    s->path = xstrdup(opt->path);
    s->max_age_ms = opt->max_age_ms;
    s->max_events = opt->max_events;
    s->trim_interval_ms = opt->trim_interval_ms;
    s->feed = opt->feed;
    s->feed_arg = opt->feed_arg;
    pthread_mutex_init(&s->db_mu, NULL);
    pthread_mutex_init(&s->q_mu, NULL);
    pthread_mutex_init(&s->b_mu, NULL);
    pthread_mutex_init(&s->j_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* trim timing must ignore clock steps */
    pthread_cond_init(&s->q_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&s->j_cv, NULL);
    s->q_tail = &s->q_head;
    s->j_tail = &s->j_head;
    s->lock_fd = -1;

    if (make_parent(s->path, err) || lock_db(s, err) || open_db(s->path, &s->wdb, err) ||
        setup_writer(s, opt, err) || open_db(s->path, &s->rdb, err))
        goto fail;
    /* The reader never writes; query_only makes a mistake here an error, not a lock. */
    if (exec(s->rdb, "PRAGMA query_only=1") != SQLITE_OK ||
        prepare(s->rdb, SQL_BOUNDS, &s->sel_bounds, s->path, err) ||
        prepare(s->rdb, SQL_BY_USER[JOB_REPLAY], &s->sel_user[JOB_REPLAY][0], s->path, err) ||
        prepare(s->rdb, SQL_BY_USER[JOB_REPLAY], &s->sel_user[JOB_REPLAY][1], s->path, err) ||
        prepare(s->rdb, SQL_BY_USER[JOB_LIST], &s->sel_user[JOB_LIST][0], s->path, err) ||
        prepare(s->rdb, SQL_BY_USER[JOB_LIST], &s->sel_user[JOB_LIST][1], s->path, err) ||
        prepare(s->rdb, SQL_BY_TYPE[JOB_REPLAY], &s->sel_type[JOB_REPLAY][0], s->path, err) ||
        prepare(s->rdb, SQL_BY_TYPE[JOB_LIST], &s->sel_type[JOB_LIST][0], s->path, err)) {
        if (err && !err[0])
            set_err(err, s->path, "cannot set up reader: %s", sqlite3_errmsg(s->rdb));
        goto fail;
    }

    int e = pthread_create(&s->writer, NULL, writer_main, s);
    if (e == 0) {
        e = pthread_create(&s->reader, NULL, reader_main, s);
        if (e != 0) {
            pthread_mutex_lock(&s->q_mu);
            s->q_closing = true;
            pthread_cond_signal(&s->q_cv);
            pthread_mutex_unlock(&s->q_mu);
            pthread_join(s->writer, NULL);
        }
    }
    if (e != 0) {
        set_err(err, s->path, "cannot start store threads: %s", strerror(e));
        goto fail;
    }
    s->threads_started = true;
    *out = &s->base;
    return SSE_OK;

fail:
    destroy(s);
    return SSE_ERR;
}
