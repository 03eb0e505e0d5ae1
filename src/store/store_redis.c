/* Redis history for a cluster: a writer pipelines appends, a reader serves reads, a feed reads the stream. */
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "store.h"
#include "store_filter.h"

/*
 * What Redis holds, shared by every node of one hub:
 *   ssehub:seq     the last id ever given (INCR), kept when every event is trimmed
 *   ssehub:events  a stream whose entry id "N-0" is event N, fields type, user, content, time
 *   ssehub:done:<node>:<n>  for a minute, the id the append n of a node got: a resent
 *                  append (its reply lost with the link) answers that id instead of
 *                  storing the event twice
 * APPEND_LUA gives the id and adds the entry in one script, so the stream holds its ids
 * in id order at any moment: a reader of the stream sees ids in order and none is added
 * behind it. Each append also carries the newest id its node has seen (the floor): after
 * a failover to a replica that missed the last events (never acknowledged with
 * SSE_REDIS_MIN_REPLICAS, but fed), the counter jumps past them instead of giving their
 * ids again to other events, which the nodes that fed the first ones would skip.
 */
#define KEY_SEQ "ssehub:seq"
#define KEY_EVENTS "ssehub:events"
#define KEY_DONE "ssehub:done:"

static const char APPEND_LUA[] =
    "local done = redis.call('GET', KEYS[3])\n"
    "if done then return tonumber(done) end\n"
    "local id = redis.call('INCR', KEYS[1])\n"
    "local floor = tonumber(ARGV[5])\n"
    "if id <= floor then id = floor + 1 redis.call('SET', KEYS[1], id) end\n"
    "redis.call('XADD', KEYS[2], id .. '-0', 'type', ARGV[1], 'user', ARGV[2],"
    " 'content', ARGV[3], 'time', ARGV[4])\n"
    "redis.call('SET', KEYS[3], id, 'EX', 60)\n"
    "return id\n";

/* A stream whose newest entry is past the counter (the counter was deleted by hand): the
 * counter moves up to it, so the next XADD id is above every entry. */
static const char SEQ_FIX_LUA[] =
    "local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1]\n"
    "local seq = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if last then\n"
    "  local n = tonumber(string.match(last[1], '^(%d+)'))\n"
    "  if n > seq then redis.call('SET', KEYS[1], n) seq = n end\n"
    "end\n"
    "return seq\n";

enum {
    CONNECT_TIMEOUT_MS = 500,
    COMMAND_TIMEOUT_MS = 2000, /* a Redis that stops answering fails a batch after this */
    FEED_BLOCK_MS = 250,       /* XREAD BLOCK: how soon the feed notices a stop or a dead link */
    FEED_COUNT = 1000,         /* entries per XREAD */
    FEED_RETRY_MS = 100,       /* between reconnects of the feed */
    DRAIN_FEED_MS = 2000,      /* how long a stop waits for the feed to reach this node's commits */
    WAIT_TIMEOUT_MS = 1000,    /* WAIT: how long a batch waits for SSE_REDIS_MIN_REPLICAS replicas */
    READ_CHUNK = 1000,         /* entries per XRANGE of a read */
    TRIM_CHUNK = 1000,         /* entries looked at per step of an age trim */
};

typedef struct pending {
    struct pending *next;
    store_event_t ev;
    store_commit_fn done;
    void *arg;
    uint64_t token; /* this node's append number: the key of its ssehub:done entry */
    int err;        /* 1 while unanswered, then 0 (ev.id set) or an SSE_E* code */
    char *why;      /* Redis's error reply to this event's append (SSE_ERR, SSE_EFULL); or NULL */
} pending_t;

typedef enum { JOB_REPLAY, JOB_LIST } job_kind_t;

typedef struct job {
    struct job *next;
    job_kind_t kind;
    uint64_t lo, hi; /* lo < id <= hi, newest first for a list */
    size_t max_rows, max_bytes;
    const atomic_int *cancelled;
    store_match_t m;
    store_rows_fn done;
    void *arg;
} job_t;

typedef struct store_redis {
    struct store base;
    /* Where Redis is: fixed, or the primary the sentinels named last (under a_mu). */
    pthread_mutex_t a_mu;
    char host[256];
    int port, db;
    char **sn_host; /* the sentinels, tried in turn; nsent = 0: no sentinels */
    int *sn_port;
    int nsent;
    char *master; /* the master name they monitor */
    int min_replicas; /* WAIT for this many replicas before a batch is acknowledged */
    int64_t max_age_ms;
    uint64_t max_events;
    int trim_interval_ms;
    store_feed_fn feed;
    void *feed_arg;
    char node[33]; /* random hex naming this process's appends */

    /* Appends waiting for the writer. */
    pthread_mutex_t q_mu;
    pthread_cond_t q_cv;
    pending_t *q_head, **q_tail;
    bool q_closing;
    pthread_t writer;

    /* The write connection, shared by the writer and trim() callers under w_mu. */
    pthread_mutex_t w_mu;
    redisContext *wc;
    char sha[41]; /* APPEND_LUA loaded on wc */
    uint64_t next_token;

    /* What bounds() answers, and the newest id this node's writer was given. */
    pthread_mutex_t b_mu;
    store_bounds_t bounds;
    uint64_t committed;

    /* Reads waiting for the reader, which owns rc. */
    pthread_mutex_t j_mu;
    pthread_cond_t j_cv;
    job_t *j_head, **j_tail;
    size_t j_len;
    bool j_closing;
    pthread_t reader;
    redisContext *rc;

    /* The feed: its own connection, the last id it delivered, when to stop. */
    pthread_t feeder;
    redisContext *fc;
    uint64_t fed;
    atomic_int f_stop;      /* 1: stop once fed reaches f_until or the deadline passes */
    uint64_t f_until;       /* set before f_stop */
    struct timespec f_deadline;
    bool feed_started;

    atomic_int up;       /* the last contact with Redis succeeded */
    atomic_int stopping; /* drain() began */
    bool threads_started;
    bool drained;
} store_redis_t;

/* ---- helpers --------------------------------------------------------------------------- */

static int64_t clock_ms(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

static void set_err(char err[SSE_ERR_LEN], store_redis_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes "redis HOST:PORT: <reason>" into err, as one line ("redis master NAME: ..." while
 * the sentinels have named no primary yet). */
static void set_err(char err[SSE_ERR_LEN], store_redis_t *s, const char *fmt, ...)
{
    if (!err) return;
    pthread_mutex_lock(&s->a_mu);
    int n = s->host[0] ? snprintf(err, SSE_ERR_LEN, "redis %s:%d: ", s->host, s->port)
                       : snprintf(err, SSE_ERR_LEN, "redis master %s: ", s->master);
    pthread_mutex_unlock(&s->a_mu);
    if (n < 0 || n >= SSE_ERR_LEN) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, SSE_ERR_LEN - (size_t)n, fmt, ap);
    va_end(ap);
    for (char *p = err; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
}

/* Parses a stream entry id "N-0" (or "N"), returning N, or 0 when it is not one. */
static uint64_t parse_entry_id(const char *s, size_t len)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        if (v > (UINT64_MAX - 9) / 10) return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return i > 0 && (i == len || s[i] == '-') ? v : 0;
}

/*
 * One stream entry as an event: its strings point into the reply, which must outlive it.
 * Returns false for an entry that is not one of ours.
 */
static bool parse_entry(const redisReply *e, store_event_t *ev, size_t *bytes)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
        return false;
    *ev = (store_event_t){.id = parse_entry_id(e->element[0]->str, e->element[0]->len),
                          .type = "", .user = "", .content = ""};
    if (ev->id == 0) return false;
    const redisReply *f = e->element[1];
    size_t b = 0;
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        if (strcmp(k->str, "type") == 0) ev->type = v->str, b += v->len;
        else if (strcmp(k->str, "user") == 0) ev->user = v->str, b += v->len;
        else if (strcmp(k->str, "content") == 0) ev->content = v->str, ev->content_len = v->len, b += v->len;
        else if (strcmp(k->str, "time") == 0) ev->time_ms = strtoll(v->str, NULL, 10);
    }
    if (bytes) *bytes = b;
    return true;
}

/* A self-contained copy of ev: one allocation holding its three strings. */
static store_event_t copy_event(const store_event_t *ev)
{
    size_t tl = strlen(ev->type), ul = strlen(ev->user), cl = ev->content_len;
    char *buf = xmalloc(tl + ul + cl + 3);
    memcpy(buf, ev->type, tl + 1);
    memcpy(buf + tl + 1, ev->user, ul + 1);
    memcpy(buf + tl + ul + 2, ev->content, cl);
    buf[tl + ul + 2 + cl] = '\0';
    return (store_event_t){.id = ev->id, .time_ms = ev->time_ms, .type = buf, .user = buf + tl + 1,
                           .content = buf + tl + ul + 2, .content_len = cl};
}

/* Notes that ids lo..hi are held: latest grows, and an empty history starts at lo. */
static void note_held(store_redis_t *s, uint64_t lo, uint64_t hi)
{
    pthread_mutex_lock(&s->b_mu);
    if (hi > s->bounds.latest) s->bounds.latest = hi;
    if (s->bounds.oldest == 0 && lo) s->bounds.oldest = lo;
    pthread_mutex_unlock(&s->b_mu);
}

static redisReply *cmd(redisContext *c, int argc, const char **argv, const size_t *lens)
{
    return redisCommandArgv(c, argc, argv, lens);
}

/* A command of plain NUL-terminated words. */
static redisReply *cmdv(redisContext *c, const char *const *words)
{
    const char *argv[16];
    int n = 0;
    while (words[n] && n < 16) {
        argv[n] = words[n];
        n++;
    }
    return cmd(c, n, argv, NULL);
}

/* A connection to host:port with timeouts on connect and on every command, or NULL with
 * why saying so. */
static redisContext *open_link(const char *host, int port, char *why, size_t whylen)
{
    struct timeval tv = {CONNECT_TIMEOUT_MS / 1000, (CONNECT_TIMEOUT_MS % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (!c || c->err) {
        if (why) snprintf(why, whylen, "cannot connect: %s", c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return NULL;
    }
    struct timeval ct = {COMMAND_TIMEOUT_MS / 1000, (COMMAND_TIMEOUT_MS % 1000) * 1000};
    redisSetTimeout(c, ct);
    redisEnableKeepAlive(c);
    return c;
}

/*
 * Asks each sentinel in turn for the address of the master, and connects to the first
 * one named. Records the address (for error texts) and returns the connection, or NULL
 * with why naming the last sentinel's failure.
 */
static redisContext *connect_master(store_redis_t *s, char *why, size_t whylen)
{
    char last[200] = "no sentinel";
    for (int i = 0; i < s->nsent; i++) {
        char e[160] = "";
        redisContext *sc = open_link(s->sn_host[i], s->sn_port[i], e, sizeof e);
        if (!sc) {
            snprintf(last, sizeof last, "sentinel %s:%d: %s", s->sn_host[i], s->sn_port[i], e);
            continue;
        }
        redisReply *r = cmdv(sc, (const char *[]){"SENTINEL", "get-master-addr-by-name", s->master, NULL});
        char host[256] = "";
        int port = 0;
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
            r->element[1]->type == REDIS_REPLY_STRING && r->element[0]->len < sizeof host) {
            memcpy(host, r->element[0]->str, r->element[0]->len + 1);
            port = atoi(r->element[1]->str);
        } else {
            snprintf(last, sizeof last, "sentinel %s:%d: %s", s->sn_host[i], s->sn_port[i],
                     !r                             ? (*sc->errstr ? sc->errstr : "no reply")
                     : r->type == REDIS_REPLY_ERROR ? r->str
                                                    : "it knows no master of that name");
        }
        freeReplyObject(r);
        redisFree(sc);
        if (!port) continue;
        pthread_mutex_lock(&s->a_mu);
        snprintf(s->host, sizeof s->host, "%s", host);
        s->port = port;
        pthread_mutex_unlock(&s->a_mu);
        return open_link(host, port, why, whylen);
    }
    if (why) snprintf(why, whylen, "%s", last);
    return NULL;
}

/* Whether the node on c says it is a master (ROLE); why says what it is otherwise. */
static bool is_master(redisContext *c, char *why, size_t whylen)
{
    redisReply *r = cmdv(c, (const char *[]){"ROLE", NULL});
    bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->type == REDIS_REPLY_STRING &&
              strcmp(r->element[0]->str, "master") == 0;
    if (!ok && why)
        snprintf(why, whylen, "the node the sentinels named is not the master (ROLE: %s)",
                 r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->type == REDIS_REPLY_STRING
                     ? r->element[0]->str
                     : "no answer");
    freeReplyObject(r);
    return ok;
}

/*
 * A new connection to Redis, its database selected, with timeouts on connect and on
 * every command: to the fixed address, or to the primary the sentinels name now (checked
 * with ROLE), so every reconnect follows a failover. Returns NULL and says why in why
 * (when not NULL).
 */
static redisContext *connect_redis(store_redis_t *s, char *why, size_t whylen)
{
    redisContext *c;
    if (s->nsent) {
        c = connect_master(s, why, whylen);
        if (c && !is_master(c, why, whylen)) {
            redisFree(c);
            return NULL;
        }
    } else {
        c = open_link(s->host, s->port, why, whylen);
    }
    if (!c) return NULL;
    if (s->db) {
        char db[16];
        snprintf(db, sizeof db, "%d", s->db);
        redisReply *r = cmdv(c, (const char *[]){"SELECT", db, NULL});
        bool ok = r && r->type == REDIS_REPLY_STATUS;
        if (!ok && why)
            snprintf(why, whylen, "SELECT %s failed: %s", db,
                     r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
        freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

/* ---- writer ---------------------------------------------------------------------------- */

/* Connects the writer and loads the append script; called with w_mu held. */
static int writer_connect(store_redis_t *s, char *why, size_t whylen)
{
    if (s->wc) return 0;
    redisContext *c = connect_redis(s, why, whylen);
    if (!c) return SSE_EUNAVAIL;
    redisReply *r = cmdv(c, (const char *[]){"SCRIPT", "LOAD", APPEND_LUA, NULL});
    if (!r || r->type != REDIS_REPLY_STRING || r->len != 40) {
        if (why)
            snprintf(why, whylen, "cannot load the append script: %s",
                     r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
        freeReplyObject(r);
        redisFree(c);
        return SSE_EUNAVAIL;
    }
    memcpy(s->sha, r->str, 40);
    s->sha[40] = '\0';
    freeReplyObject(r);
    s->wc = c;
    return 0;
}

static void writer_drop(store_redis_t *s)
{
    if (s->wc) redisFree(s->wc);
    s->wc = NULL;
    atomic_store(&s->up, 0);
}

/* Queues one append script call on wc for p (not sent until a reply is asked for). */
static void append_call(store_redis_t *s, const pending_t *p, uint64_t floor)
{
    char done_key[80], time_s[24], floor_s[24];
    snprintf(done_key, sizeof done_key, KEY_DONE "%s:%" PRIu64, s->node, p->token);
    snprintf(time_s, sizeof time_s, "%" PRId64, p->ev.time_ms);
    snprintf(floor_s, sizeof floor_s, "%" PRIu64, floor);
    const char *argv[] = {"EVALSHA", s->sha, "3", KEY_SEQ, KEY_EVENTS, done_key,
                          p->ev.type, p->ev.user, p->ev.content, time_s, floor_s};
    size_t lens[11];
    for (int i = 0; i < 11; i++) lens[i] = strlen(argv[i]);
    lens[8] = p->ev.content_len;
    redisAppendCommandArgv(s->wc, 11, argv, lens);
}

/* A copy of a Redis error text on one line (control bytes as spaces), at most 159 bytes. */
static char *one_line(const char *msg)
{
    char buf[160];
    snprintf(buf, sizeof buf, "%s", msg && *msg ? msg : "unexpected reply");
    for (char *c = buf; *c; c++)
        if ((unsigned char)*c < 0x20) *c = ' ';
    return xstrdup(buf);
}

/*
 * Sends every unanswered append of the batch as one pipeline and reads their replies in
 * order. Returns true when the link held to the end (each event then has its answer),
 * false when it broke or the script was missing, with why saying so: the events still
 * unanswered may or may not be in Redis, and a resend of them is safe (ssehub:done).
 * Called with w_mu held.
 */
static bool send_batch(store_redis_t *s, pending_t *batch, char *why, size_t whylen)
{
    pthread_mutex_lock(&s->b_mu);
    uint64_t floor = s->bounds.latest; /* the newest id this node has seen */
    pthread_mutex_unlock(&s->b_mu);
    for (pending_t *p = batch; p; p = p->next)
        if (p->err == 1) append_call(s, p, floor);
    for (pending_t *p = batch; p; p = p->next) {
        if (p->err != 1) continue;
        redisReply *r = NULL;
        if (redisGetReply(s->wc, (void **)&r) != REDIS_OK || !r) {
            snprintf(why, whylen, "lost the link: %s",
                     *s->wc->errstr ? s->wc->errstr : "no reply");
            writer_drop(s);
            return false;
        }
        if (r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
            p->ev.id = (uint64_t)r->integer;
            p->err = 0;
        } else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
            /* the script cache was flushed: reconnecting loads it again */
            snprintf(why, whylen, "the append script was flushed from Redis");
            freeReplyObject(r);
            writer_drop(s);
            return false;
        } else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "READONLY", 8) == 0) {
            /* a failover made this node a replica: reconnecting asks the sentinels again */
            snprintf(why, whylen, "lost the master: it is a replica now (READONLY)");
            freeReplyObject(r);
            writer_drop(s);
            return false;
        } else {
            p->err = r->type == REDIS_REPLY_ERROR && strncmp(r->str, "OOM", 3) == 0 ? SSE_EFULL : SSE_ERR;
            free(p->why);
            p->why = one_line(r->type == REDIS_REPLY_ERROR ? r->str : NULL);
        }
        freeReplyObject(r);
    }
    atomic_store(&s->up, 1);
    return true;
}

/*
 * Waits until min_replicas replicas hold everything this connection wrote (WAIT), at most
 * WAIT_TIMEOUT_MS. Returns true when enough acknowledged; otherwise false with why saying
 * how many did (or that the link broke, which drops it). Called with w_mu held.
 */
static bool wait_replicas(store_redis_t *s, char *why, size_t whylen)
{
    char n[16], ms[16];
    snprintf(n, sizeof n, "%d", s->min_replicas);
    snprintf(ms, sizeof ms, "%d", WAIT_TIMEOUT_MS);
    redisReply *r = cmdv(s->wc, (const char *[]){"WAIT", n, ms, NULL});
    bool ok = false;
    if (!r) {
        snprintf(why, whylen, "lost the link waiting for replicas: %s",
                 *s->wc->errstr ? s->wc->errstr : "no reply");
        writer_drop(s);
    } else if (r->type != REDIS_REPLY_INTEGER) {
        snprintf(why, whylen, "WAIT failed: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    } else if (r->integer < s->min_replicas) {
        snprintf(why, whylen, "only %lld of %d replicas acknowledged within %d ms (SSE_REDIS_MIN_REPLICAS)",
                 (long long)r->integer, s->min_replicas, WAIT_TIMEOUT_MS);
    } else {
        ok = true;
    }
    freeReplyObject(r);
    return ok;
}

/*
 * Appends a batch: one pipeline, resent once on a new connection when the link broke
 * (an event Redis already took answers its first id), then each event's done in order.
 * An event still unanswered fails with SSE_EUNAVAIL: no 201 for what Redis may not hold.
 * A failed event's ev.error says why (the broken link, or Redis's error reply).
 * With min_replicas, a batch whose WAIT finds too few replicas fails the same way, its
 * events kept in Redis: a 503 then means "not known to survive a failover".
 * Events are given to done, not to the feed: the feed reads them back from the stream.
 */
static void commit_batch(store_redis_t *s, pending_t *batch)
{
    char raw[200] = "", why[SSE_ERR_LEN] = "";
    pthread_mutex_lock(&s->w_mu);
    for (pending_t *p = batch; p; p = p->next) {
        p->err = 1;
        p->token = ++s->next_token;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        if (writer_connect(s, raw, sizeof raw) != 0) {
            atomic_store(&s->up, 0);
            break;
        }
        if (send_batch(s, batch, raw, sizeof raw)) {
            bool stored = false;
            for (pending_t *p = batch; p; p = p->next) stored |= p->err == 0;
            /* Not yet on enough replicas: the events stay in Redis (and are delivered),
             * but no publisher is told they are safe. */
            if (stored && s->min_replicas > 0 && !wait_replicas(s, raw, sizeof raw))
                for (pending_t *p = batch; p; p = p->next)
                    if (p->err == 0) p->err = 1;
            break;
        }
    }
    if (*raw) {
        set_err(why, s, "%s", raw); /* "redis HOST:PORT: cannot connect: ..." */
        for (char *c = why; *c; c++)
            if ((unsigned char)*c < 0x20) *c = ' ';
    }
    uint64_t lowest = 0, newest = 0;
    for (pending_t *p = batch; p; p = p->next) {
        if (p->err == 1) p->err = SSE_EUNAVAIL;
        if (p->err == 0 && p->ev.id > newest) newest = p->ev.id;
        if (p->err == 0 && (!lowest || p->ev.id < lowest)) lowest = p->ev.id;
    }
    pthread_mutex_unlock(&s->w_mu);
    if (newest) {
        note_held(s, lowest, newest);
        pthread_mutex_lock(&s->b_mu);
        if (newest > s->committed) s->committed = newest;
        pthread_mutex_unlock(&s->b_mu);
    }
    while (batch) {
        pending_t *next = batch->next;
        if (batch->err) batch->ev.id = 0;
        batch->ev.error = !batch->err                  ? NULL
                          : batch->why                 ? batch->why
                          : batch->err == SSE_EUNAVAIL ? (*why ? why : "redis unreachable")
                                                       : "redis error";
        if (batch->done) batch->done(batch->arg, &batch->ev, batch->err);
        free(batch->why);
        free(batch);
        batch = next;
    }
}

static pending_t *take_queue(store_redis_t *s)
{
    pending_t *batch = s->q_head;
    s->q_head = NULL;
    s->q_tail = &s->q_head;
    return batch;
}

static void writer_flush(store_redis_t *s)
{
    pthread_mutex_lock(&s->q_mu);
    pending_t *batch = take_queue(s);
    pthread_mutex_unlock(&s->q_mu);
    if (batch) commit_batch(s, batch);
}

/* The smallest id still in the stream (0 when it is empty), or -1 when Redis fails. */
static int64_t read_oldest(redisContext *c)
{
    redisReply *r = cmdv(c, (const char *[]){"XRANGE", KEY_EVENTS, "-", "+", "COUNT", "1", NULL});
    int64_t v = -1;
    if (r && r->type == REDIS_REPLY_ARRAY) {
        v = 0;
        if (r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
            r->element[0]->elements == 2 && r->element[0]->element[0]->type == REDIS_REPLY_STRING)
            v = (int64_t)parse_entry_id(r->element[0]->element[0]->str, r->element[0]->element[0]->len);
    }
    freeReplyObject(r);
    return v;
}

/* XTRIM with one rule; returns the entries removed, or -1. */
static long xtrim(redisContext *c, const char *rule, uint64_t arg)
{
    char a[24];
    snprintf(a, sizeof a, "%" PRIu64, arg);
    redisReply *r = cmdv(c, (const char *[]){"XTRIM", KEY_EVENTS, rule, a, NULL});
    long n = r && r->type == REDIS_REPLY_INTEGER ? (long)r->integer : -1;
    freeReplyObject(r);
    return n;
}

/*
 * Removes events older than now_ms - max_age_ms and beyond max_events. Ages are found by
 * walking from the oldest entry (ids follow time, as in the SQLite store, so the walk
 * stops at the first young one), TRIM_CHUNK entries per step, queued appends committed
 * between steps on the writer (flush). Every node may trim: the rules are idempotent.
 * Returns the number removed, or SSE_ERR.
 */
static long trim_run(store_redis_t *s, int64_t now_ms, bool flush)
{
    if (s->max_age_ms <= 0 && s->max_events == 0) return 0;
    long removed = 0;
    bool failed = false;
    for (int step = 0; step < 1000 && !failed; step++) {
        if (flush) writer_flush(s);
        pthread_mutex_lock(&s->w_mu);
        if (writer_connect(s, NULL, 0) != 0) {
            pthread_mutex_unlock(&s->w_mu);
            return SSE_ERR;
        }
        uint64_t cut = 0; /* entries below this id go */
        bool more = false;
        if (s->max_age_ms > 0) {
            char count[16];
            snprintf(count, sizeof count, "%d", TRIM_CHUNK);
            redisReply *r = cmdv(s->wc, (const char *[]){"XRANGE", KEY_EVENTS, "-", "+", "COUNT", count, NULL});
            if (!r || r->type != REDIS_REPLY_ARRAY) {
                failed = true;
            } else {
                int64_t old = now_ms - s->max_age_ms;
                size_t i = 0;
                store_event_t ev;
                for (; i < r->elements; i++) {
                    if (!parse_entry(r->element[i], &ev, NULL)) continue;
                    if (ev.time_ms >= old) break;
                    cut = ev.id + 1;
                }
                more = i == r->elements && r->elements == TRIM_CHUNK; /* all old: look further */
            }
            freeReplyObject(r);
        }
        long n = failed ? -1 : cut ? xtrim(s->wc, "MINID", cut) : 0;
        if (n >= 0 && s->max_events > 0 && !more) {
            long m = xtrim(s->wc, "MAXLEN", s->max_events);
            n = m < 0 ? -1 : n + m;
        }
        int64_t oldest = n >= 0 ? read_oldest(s->wc) : -1;
        if (n < 0 || oldest < 0) {
            failed = true;
            writer_drop(s);
        } else {
            removed += n;
            pthread_mutex_lock(&s->b_mu);
            s->bounds.oldest = (uint64_t)oldest;
            pthread_mutex_unlock(&s->b_mu);
        }
        pthread_mutex_unlock(&s->w_mu);
        if (!more) break;
    }
    return failed ? SSE_ERR : removed;
}

static void *writer_main(void *p)
{
    store_redis_t *s = p;
    bool timed = s->trim_interval_ms > 0;
    struct timespec next_trim = mono_after(timed ? s->trim_interval_ms : 0);
    for (;;) {
        pthread_mutex_lock(&s->q_mu);
        while (!s->q_head && !s->q_closing) {
            if (!timed) pthread_cond_wait(&s->q_cv, &s->q_mu);
            else if (mono_passed(&next_trim)) break;
            else pthread_cond_timedwait(&s->q_cv, &s->q_mu, &next_trim);
        }
        pending_t *batch = take_queue(s);
        bool closing = s->q_closing;
        pthread_mutex_unlock(&s->q_mu);
        if (batch) commit_batch(s, batch);
        else if (closing) break;
        if (timed && !closing && mono_passed(&next_trim)) {
            trim_run(s, clock_ms(CLOCK_REALTIME), true);
            next_trim = mono_after(s->trim_interval_ms);
        }
    }
    return NULL;
}

/* ---- reader ---------------------------------------------------------------------------- */

static job_t *take_job(store_redis_t *s)
{
    job_t *j = s->j_head;
    if (j) {
        s->j_head = j->next;
        if (!s->j_head) s->j_tail = &s->j_head;
        s->j_len--;
    }
    return j;
}

static void job_cancel(job_t *j)
{
    store_page_t page = {0};
    if (j->done) j->done(j->arg, &page, SSE_ECANCELED);
}

/* The range command of a read's next chunk: after is the last id seen (0: none yet). */
static redisReply *range_call(redisContext *c, const job_t *j, uint64_t after, bool append)
{
    char a[32], b[32], count[16];
    bool desc = j->kind == JOB_LIST;
    snprintf(count, sizeof count, "%d", READ_CHUNK);
    if (!desc) {
        if (after) snprintf(a, sizeof a, "(%" PRIu64 "-0", after);
        else snprintf(a, sizeof a, "%" PRIu64 "-0", j->lo + 1);
        snprintf(b, sizeof b, "%" PRIu64, j->hi);
    } else {
        if (after) snprintf(a, sizeof a, "(%" PRIu64 "-0", after);
        else if (j->hi == UINT64_MAX) snprintf(a, sizeof a, "+");
        else snprintf(a, sizeof a, "%" PRIu64, j->hi);
        snprintf(b, sizeof b, "%" PRIu64 "-0", j->lo + 1);
    }
    const char *argv[] = {desc ? "XREVRANGE" : "XRANGE", KEY_EVENTS, a, b, "COUNT", count};
    if (append) {
        redisAppendCommandArgv(c, 6, argv, NULL);
        return NULL;
    }
    return cmd(c, 6, argv, NULL);
}

/*
 * Runs one read: the bounds and the first chunk in one MULTI, so they describe the same
 * moment (a trim between them would hide a gap from the reset check), then further chunks
 * while rows are wanted. Rows are filtered here with the shared filter (store_filter.h);
 * the read stops before the row that would break max_rows or max_bytes, which sets more.
 */
static void run_job(store_redis_t *s, job_t *j)
{
    if (j->cancelled && atomic_load_explicit(j->cancelled, memory_order_acquire)) {
        job_cancel(j);
        return;
    }
    store_page_t page = {0};
    store_event_t *rows = NULL;
    size_t n = 0, cap = 0, bytes = 0;
    int err = SSE_ERR;
    redisReply *exec = NULL, *chunk = NULL;

    if (!s->rc && !(s->rc = connect_redis(s, NULL, 0))) goto out;
    redisAppendCommand(s->rc, "MULTI");
    redisAppendCommand(s->rc, "GET " KEY_SEQ);
    redisAppendCommand(s->rc, "XRANGE " KEY_EVENTS " - + COUNT 1");
    range_call(s->rc, j, 0, true);
    redisAppendCommand(s->rc, "EXEC");
    for (int i = 0; i < 5; i++) {
        redisReply *r = NULL;
        if (redisGetReply(s->rc, (void **)&r) != REDIS_OK || !r) {
            redisFree(s->rc);
            s->rc = NULL;
            goto out;
        }
        if (i < 4) freeReplyObject(r);
        else exec = r;
    }
    if (exec->type != REDIS_REPLY_ARRAY || exec->elements != 3) goto out;
    const redisReply *seq = exec->element[0], *first = exec->element[1];
    page.bounds.latest = seq->type == REDIS_REPLY_STRING ? strtoull(seq->str, NULL, 10) : 0;
    if (first->type == REDIS_REPLY_ARRAY && first->elements == 1) {
        store_event_t ev;
        if (parse_entry(first->element[0], &ev, NULL)) page.bounds.oldest = ev.id;
    }
    note_held(s, 0, page.bounds.latest);

    const redisReply *cur = exec->element[2];
    bool done = false;
    while (!done) {
        if (cur->type != REDIS_REPLY_ARRAY) goto out;
        uint64_t last = 0;
        for (size_t i = 0; i < cur->elements && !done; i++) {
            store_event_t ev;
            size_t size;
            if (!parse_entry(cur->element[i], &ev, &size)) continue;
            last = ev.id;
            if (ev.id <= j->lo || ev.id > j->hi) continue;
            if (!store_match_event(&j->m, ev.type, ev.user)) continue;
            if (n == j->max_rows ||
                (n > 0 && j->max_bytes > 0 && (bytes > j->max_bytes || size > j->max_bytes - bytes))) {
                page.more = true;
                done = true;
                break;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                rows = xrealloc(rows, cap * sizeof *rows);
            }
            rows[n++] = copy_event(&ev);
            bytes += size;
        }
        if (done || cur->elements < READ_CHUNK || last == 0) break;
        freeReplyObject(chunk);
        chunk = range_call(s->rc, j, last, false);
        if (!chunk) {
            redisFree(s->rc);
            s->rc = NULL;
            goto out;
        }
        cur = chunk;
    }
    err = SSE_OK;
out:
    freeReplyObject(exec);
    freeReplyObject(chunk);
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

static void *reader_main(void *p)
{
    store_redis_t *s = p;
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

/* ---- feed ------------------------------------------------------------------------------ */

/* Whether the feed should end now: a stop was asked and it has delivered this node's
 * commits, or the stop's deadline passed. */
static bool feed_done(store_redis_t *s)
{
    if (!atomic_load(&s->f_stop)) return false;
    return s->fed >= s->f_until || mono_passed(&s->f_deadline);
}

/*
 * The feed: reads the stream after the last id it delivered with a blocking XREAD on its
 * own connection and hands each event to the feed callback, in id order. A broken link is
 * retried every FEED_RETRY_MS, resuming after the same id, so nothing Redis held is missed.
 * Its XREAD doubles as the probe behind unready().
 */
static void *feed_main(void *p)
{
    store_redis_t *s = p;
    char block[16], count[16];
    snprintf(block, sizeof block, "%d", FEED_BLOCK_MS);
    snprintf(count, sizeof count, "%d", FEED_COUNT);
    while (!feed_done(s)) {
        if (!s->fc && !(s->fc = connect_redis(s, NULL, 0))) {
            atomic_store(&s->up, 0);
            struct timespec ts = {0, FEED_RETRY_MS * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        char from[32];
        snprintf(from, sizeof from, "%" PRIu64 "-0", s->fed);
        redisReply *r = cmdv(s->fc, (const char *[]){"XREAD", "COUNT", count, "BLOCK", block,
                                                     "STREAMS", KEY_EVENTS, from, NULL});
        if (!r || r->type == REDIS_REPLY_ERROR) {
            freeReplyObject(r);
            redisFree(s->fc);
            s->fc = NULL;
            atomic_store(&s->up, 0);
            continue;
        }
        atomic_store(&s->up, 1);
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
            r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2) {
            const redisReply *entries = r->element[0]->element[1];
            for (size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
                store_event_t ev;
                if (!parse_entry(entries->element[i], &ev, NULL) || ev.id <= s->fed) continue;
                s->fed = ev.id;
                note_held(s, ev.id, ev.id); /* latest grows before any fan-out */
                if (s->feed) s->feed(s->feed_arg, &ev);
            }
        }
        freeReplyObject(r);
    }
    return NULL;
}

/* ---- ops ------------------------------------------------------------------------------- */

static int enqueue(store_t *st, const store_event_t *ev, store_commit_fn done, void *arg, bool wake)
{
    store_redis_t *s = (store_redis_t *)st;
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
    p->ev.time_ms = clock_ms(CLOCK_REALTIME);
    *s->q_tail = p;
    s->q_tail = &p->next;
    if (wake) pthread_cond_signal(&s->q_cv);
    pthread_mutex_unlock(&s->q_mu);
    return SSE_OK;
}

static int redis_append(store_t *st, const store_event_t *ev, store_commit_fn done, void *arg)
{
    return enqueue(st, ev, done, arg, true);
}

static int redis_append_held(store_t *st, const store_event_t *ev, store_commit_fn done, void *arg)
{
    return enqueue(st, ev, done, arg, false);
}

static void redis_wake(store_t *st)
{
    store_redis_t *s = (store_redis_t *)st;
    pthread_mutex_lock(&s->q_mu);
    if (s->q_head) pthread_cond_signal(&s->q_cv);
    pthread_mutex_unlock(&s->q_mu);
}

static int enqueue_job(store_redis_t *s, job_t *j)
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

static int redis_replay(store_t *st, uint64_t after, uint64_t upto, const store_filter_t *f,
                        const store_read_opts_t *o, store_rows_fn done, void *arg)
{
    if (!o || o->max_rows == 0) return SSE_ERR;
    job_t *j = job_new(JOB_REPLAY, f, o, done, arg);
    j->lo = after;
    j->hi = upto < after ? after : upto;
    return enqueue_job((store_redis_t *)st, j);
}

static int redis_list(store_t *st, const store_filter_t *f, uint64_t before,
                      const store_read_opts_t *o, store_rows_fn done, void *arg)
{
    if (!o || o->max_rows == 0) return SSE_ERR;
    job_t *j = job_new(JOB_LIST, f, o, done, arg);
    j->lo = 0;
    j->hi = before == 0 ? UINT64_MAX : before - 1;
    return enqueue_job((store_redis_t *)st, j);
}

static void redis_bounds(store_t *st, store_bounds_t *out)
{
    store_redis_t *s = (store_redis_t *)st;
    pthread_mutex_lock(&s->b_mu);
    *out = s->bounds;
    pthread_mutex_unlock(&s->b_mu);
}

static long redis_trim(store_t *st, int64_t now_ms)
{
    return trim_run((store_redis_t *)st, now_ms, false);
}

static void redis_start_feed(store_t *st, uint64_t after)
{
    store_redis_t *s = (store_redis_t *)st;
    if (s->feed_started || s->drained) return;
    s->fed = after;
    if (pthread_create(&s->feeder, NULL, feed_main, s) == 0) s->feed_started = true;
}

static const char *redis_unready(store_t *st)
{
    store_redis_t *s = (store_redis_t *)st;
    if (atomic_load(&s->stopping)) return "stopping";
    return atomic_load(&s->up) ? NULL : "redis unreachable";
}

static void destroy(store_redis_t *s)
{
    if (s->wc) redisFree(s->wc);
    if (s->rc) redisFree(s->rc);
    if (s->fc) redisFree(s->fc);
    pthread_mutex_destroy(&s->q_mu);
    pthread_cond_destroy(&s->q_cv);
    pthread_mutex_destroy(&s->w_mu);
    pthread_mutex_destroy(&s->b_mu);
    pthread_mutex_destroy(&s->j_mu);
    pthread_cond_destroy(&s->j_cv);
    pthread_mutex_destroy(&s->a_mu);
    for (int i = 0; i < s->nsent; i++) free(s->sn_host[i]);
    free(s->sn_host);
    free(s->sn_port);
    free(s->master);
    free(s);
}

/*
 * Refuses new work, lets the writer send what is queued (every done is called), lets the
 * feed run until it has delivered what this node committed (at most DRAIN_FEED_MS), lets
 * the reader finish its read, joins the threads and cancels the reads still waiting.
 */
static void redis_drain(store_t *st)
{
    store_redis_t *s = (store_redis_t *)st;
    if (!s || s->drained) return;
    s->drained = true;
    atomic_store(&s->stopping, 1);
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
    if (s->feed_started) {
        pthread_mutex_lock(&s->b_mu);
        s->f_until = s->committed;
        pthread_mutex_unlock(&s->b_mu);
        s->f_deadline = mono_after(DRAIN_FEED_MS);
        atomic_store(&s->f_stop, 1);
        pthread_join(s->feeder, NULL);
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

static void redis_close(store_t *st)
{
    if (!st) return;
    redis_drain(st);
    destroy((store_redis_t *)st);
}

const store_ops_t store_redis_ops = {
    .name = "redis",
    .append = redis_append,
    .append_held = redis_append_held,
    .wake = redis_wake,
    .replay = redis_replay,
    .list = redis_list,
    .bounds = redis_bounds,
    .trim = redis_trim,
    .drain = redis_drain,
    .close = redis_close,
    .unready = redis_unready,
    .start_feed = redis_start_feed,
};

/* ---- open ------------------------------------------------------------------------------ */

int store_redis_open(const store_options_t *opt, store_t **out, char err[SSE_ERR_LEN])
{
    *out = NULL;
    if (err) err[0] = '\0';
    bool sentinels = opt && opt->redis_nsentinels > 0 && opt->redis_master && opt->redis_master[0];
    if (!opt || (!sentinels && (!opt->redis_host || !opt->redis_host[0]))) {
        if (err) snprintf(err, SSE_ERR_LEN, "redis: no host given");
        return SSE_ERR;
    }
    if (!sentinels && strlen(opt->redis_host) >= sizeof ((store_redis_t *)0)->host) {
        if (err) snprintf(err, SSE_ERR_LEN, "redis: host name too long");
        return SSE_ERR;
    }
    store_redis_t *s = xcalloc(1, sizeof *s);
    s->base.ops = &store_redis_ops;
    pthread_mutex_init(&s->a_mu, NULL);
    if (sentinels) {
        s->nsent = opt->redis_nsentinels;
        s->sn_host = xcalloc((size_t)s->nsent, sizeof *s->sn_host);
        s->sn_port = xcalloc((size_t)s->nsent, sizeof *s->sn_port);
        for (int i = 0; i < s->nsent; i++) {
            s->sn_host[i] = xstrdup(opt->redis_sentinel_hosts[i]);
            s->sn_port[i] = opt->redis_sentinel_ports[i];
        }
        s->master = xstrdup(opt->redis_master);
    } else {
        snprintf(s->host, sizeof s->host, "%s", opt->redis_host);
        s->port = opt->redis_port ? opt->redis_port : 6379;
    }
    s->db = opt->redis_db;
    s->min_replicas = opt->redis_min_replicas;
    s->max_age_ms = opt->max_age_ms;
    s->max_events = opt->max_events;
    s->trim_interval_ms = opt->trim_interval_ms;
    s->feed = opt->feed;
    s->feed_arg = opt->feed_arg;
    pthread_mutex_init(&s->q_mu, NULL);
    pthread_mutex_init(&s->w_mu, NULL);
    pthread_mutex_init(&s->b_mu, NULL);
    pthread_mutex_init(&s->j_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->q_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&s->j_cv, NULL);
    s->q_tail = &s->q_head;
    s->j_tail = &s->j_head;

    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        set_err(err, s, "cannot read random bytes for the node name");
        goto fail;
    }
    for (int i = 0; i < 16; i++) snprintf(s->node + 2 * i, 3, "%02x", rnd[i]);

    char why[200] = "";
    if (writer_connect(s, why, sizeof why) != 0) {
        set_err(err, s, "%s", why);
        goto fail;
    }
    /* XTRIM MINID came with Redis 6.2; exclusive ranges too. */
    long t = xtrim(s->wc, "MINID", 0);
    if (t < 0) {
        set_err(err, s, "this Redis cannot trim by id (XTRIM MINID needs Redis 6.2 or later)");
        goto fail;
    }
    redisReply *r = cmdv(s->wc, (const char *[]){"EVAL", SEQ_FIX_LUA, "2", KEY_SEQ, KEY_EVENTS, NULL});
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        set_err(err, s, "cannot read the id counter %s: %s", KEY_SEQ,
                r && r->type == REDIS_REPLY_ERROR ? r->str : s->wc->errstr);
        freeReplyObject(r);
        goto fail;
    }
    s->bounds.latest = (uint64_t)r->integer;
    freeReplyObject(r);
    int64_t oldest = read_oldest(s->wc);
    if (oldest < 0) {
        set_err(err, s, "cannot read the history stream %s", KEY_EVENTS);
        goto fail;
    }
    s->bounds.oldest = (uint64_t)oldest;
    s->committed = s->bounds.latest;
    atomic_store(&s->up, 1);

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
        set_err(err, s, "cannot start store threads: %s", strerror(e));
        goto fail;
    }
    s->threads_started = true;
    *out = &s->base;
    return SSE_OK;

fail:
    destroy(s);
    return SSE_ERR;
}
