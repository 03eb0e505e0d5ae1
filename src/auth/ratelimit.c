/* Failed-login counters and attempts in flight in two bounded tables (LRU), doubling waits, one lock. */
#include "ratelimit.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "list.h"
#include "strmap.h"

/** The failures of one address or username. */
typedef struct rl_entry {
    list_node_t lru;  /* the table's list, least recently failed first */
    int failures;
    int pending;      /* attempts in flight (ratelimit_begin), each a failure in waiting */
    int64_t last_ms;  /* the latest failure, or when the entry was made */
    int64_t until_ms; /* logins wait until then */
    char key[];
} rl_entry_t;

/** One table: entries by key, and their age order for eviction. */
typedef struct rl_table {
    strmap_t map;
    list_node_t lru;
    int free_failures; /* failures allowed before waits start */
} rl_table_t;

struct ratelimit {
    pthread_mutex_t mu;
    rl_table_t addrs, users;
    size_t max_keys;
    int max_failures;
    int64_t max_block_ms, forget_ms;
};

static void table_init(rl_table_t *t, int free_failures)
{
    strmap_init(&t->map);
    list_init(&t->lru);
    t->free_failures = free_failures;
}

static void table_drop(rl_table_t *t, rl_entry_t *e)
{
    strmap_del(&t->map, e->key);
    list_remove(&e->lru);
    free(e);
}

static void table_free(rl_table_t *t)
{
    while (!list_empty(&t->lru)) table_drop(t, container_of(t->lru.next, rl_entry_t, lru));
    strmap_free(&t->map);
}

/* Keys are cut to RATELIMIT_MAX_KEY bytes so memory stays bounded whatever clients send. */
static void make_key(const char *s, char out[RATELIMIT_MAX_KEY + 1])
{
    size_t n = strnlen(s, RATELIMIT_MAX_KEY);
    memcpy(out, s, n);
    out[n] = '\0';
}

/* The live entry for key, or NULL; an entry quiet for forget_ms (not blocking, none in flight) is dropped. */
static rl_entry_t *table_get(ratelimit_t *rl, rl_table_t *t, const char *key, int64_t now)
{
    rl_entry_t *e = strmap_get(&t->map, key);
    if (e && e->pending == 0 && now - e->last_ms >= rl->forget_ms && now >= e->until_ms) {
        table_drop(t, e);
        e = NULL;
    }
    return e;
}

/* A new entry for key, newest in the age order; the oldest is forgotten when the table is full. */
static rl_entry_t *table_add(ratelimit_t *rl, rl_table_t *t, const char *key, int64_t now)
{
    if (t->map.count >= rl->max_keys) table_drop(t, container_of(t->lru.next, rl_entry_t, lru));
    size_t n = strlen(key);
    rl_entry_t *e = xcalloc(1, sizeof *e + n + 1);
    memcpy(e->key, key, n + 1);
    e->last_ms = now;
    strmap_put(&t->map, e->key, e);
    list_push_back(&t->lru, &e->lru);
    return e;
}

/* The wait after the over-th failure past the free ones: 1 s, doubling, up to max_block. */
static int64_t block_ms(const ratelimit_t *rl, int over)
{
    int64_t block = over >= 40 ? rl->max_block_ms : (int64_t)1000 << over;
    return block > rl->max_block_ms ? rl->max_block_ms : block;
}

/*
 * Until when a new attempt against e must wait: its block, or, while attempts are
 * in flight, the block that would follow if they all failed (when they would use
 * up the free failures).
 */
static int64_t entry_until(const ratelimit_t *rl, const rl_table_t *t, const rl_entry_t *e, int64_t now)
{
    if (!e) return 0;
    int64_t until = e->until_ms;
    int over = e->failures + e->pending - t->free_failures;
    if (e->pending > 0 && over >= 0 && now + block_ms(rl, over) > until) until = now + block_ms(rl, over);
    return until;
}

/* Counts one failure for key, making room by forgetting the oldest entry when full. */
static void table_fail(ratelimit_t *rl, rl_table_t *t, const char *key, int64_t now)
{
    rl_entry_t *e = table_get(rl, t, key, now);
    if (!e) {
        e = table_add(rl, t, key, now);
    } else {
        list_remove(&e->lru);
        list_push_back(&t->lru, &e->lru);
    }
    e->failures++;
    e->last_ms = now;
    int over = e->failures - t->free_failures;
    if (over >= 0) e->until_ms = now + block_ms(rl, over);
}

/* After a success: forgets e's failures; e goes once nothing of it is in flight either. */
static void table_clear(rl_table_t *t, rl_entry_t *e)
{
    if (!e) return;
    e->failures = 0;
    e->until_ms = 0;
    if (e->pending == 0) table_drop(t, e);
}

/* Ends one attempt in flight on e (NULL: forgotten meanwhile, nothing to end). */
static void table_release(rl_entry_t *e)
{
    if (e && e->pending > 0) e->pending--;
}

ratelimit_t *ratelimit_new(int max_failures, int max_block, size_t max_keys)
{
    ratelimit_t *rl = xcalloc(1, sizeof *rl);
    pthread_mutex_init(&rl->mu, NULL);
    table_init(&rl->addrs, max_failures);
    table_init(&rl->users, 2 * max_failures);
    rl->max_keys = max_keys ? max_keys : 1;
    rl->max_failures = max_failures;
    rl->max_block_ms = (int64_t)max_block * 1000;
    rl->forget_ms = 2 * rl->max_block_ms;
    return rl;
}

void ratelimit_free(ratelimit_t *rl)
{
    if (!rl) return;
    table_free(&rl->addrs);
    table_free(&rl->users);
    pthread_mutex_destroy(&rl->mu);
    free(rl);
}

/* Seconds from now to until, rounded up; 0 when until has passed. */
static int wait_s(int64_t until, int64_t now)
{
    return until > now ? (int)((until - now + 999) / 1000) : 0;
}

int ratelimit_begin(ratelimit_t *rl, const char *addr, const char *user, int64_t now_ms,
                    ratelimit_hold_t *hold)
{
    *hold = (ratelimit_hold_t){false, false};
    if (!rl || rl->max_failures == 0) return 0;
    char ka[RATELIMIT_MAX_KEY + 1], ku[RATELIMIT_MAX_KEY + 1];
    make_key(addr, ka);
    make_key(user ? user : "", ku);
    pthread_mutex_lock(&rl->mu);
    rl_entry_t *a = table_get(rl, &rl->addrs, ka, now_ms);
    rl_entry_t *u = *ku ? table_get(rl, &rl->users, ku, now_ms) : NULL;
    int64_t until = entry_until(rl, &rl->addrs, a, now_ms);
    int64_t uu = entry_until(rl, &rl->users, u, now_ms);
    if (uu > until) until = uu;
    int wait = wait_s(until, now_ms);
    if (wait == 0) {
        /* As with failures: an address already past its own limit does not count for the name. */
        hold->user = *ku && (!a || a->failures + a->pending < rl->addrs.free_failures);
        if (!a) a = table_add(rl, &rl->addrs, ka, now_ms);
        a->pending++;
        hold->addr = true;
        if (hold->user) {
            if (!u) u = table_add(rl, &rl->users, ku, now_ms);
            u->pending++;
        }
    }
    pthread_mutex_unlock(&rl->mu);
    return wait;
}

void ratelimit_end(ratelimit_t *rl, const char *addr, const char *user, ratelimit_hold_t *hold,
                   enum ratelimit_outcome outcome, int64_t now_ms)
{
    if (!rl || !hold->addr) return;
    char ka[RATELIMIT_MAX_KEY + 1], ku[RATELIMIT_MAX_KEY + 1];
    make_key(addr, ka);
    make_key(user ? user : "", ku);
    pthread_mutex_lock(&rl->mu);
    rl_entry_t *a = strmap_get(&rl->addrs.map, ka);
    rl_entry_t *u = *ku ? strmap_get(&rl->users.map, ku) : NULL;
    table_release(a);
    if (hold->user) table_release(u);
    if (outcome == RATELIMIT_FAILED) {
        table_fail(rl, &rl->addrs, ka, now_ms);
        if (hold->user) table_fail(rl, &rl->users, ku, now_ms);
    } else if (outcome == RATELIMIT_SUCCEEDED) {
        table_clear(&rl->addrs, a);
        table_clear(&rl->users, u);
    } else { /* dropped: an entry made only to hold it goes with it */
        if (a && a->pending == 0 && a->failures == 0) table_drop(&rl->addrs, a);
        if (u && u->pending == 0 && u->failures == 0) table_drop(&rl->users, u);
    }
    pthread_mutex_unlock(&rl->mu);
    *hold = (ratelimit_hold_t){false, false};
}

int ratelimit_check(ratelimit_t *rl, const char *addr, const char *user, int64_t now_ms)
{
    if (!rl || rl->max_failures == 0) return 0;
    char ka[RATELIMIT_MAX_KEY + 1], ku[RATELIMIT_MAX_KEY + 1];
    make_key(addr, ka);
    make_key(user ? user : "", ku);
    pthread_mutex_lock(&rl->mu);
    rl_entry_t *a = table_get(rl, &rl->addrs, ka, now_ms);
    rl_entry_t *u = *ku ? table_get(rl, &rl->users, ku, now_ms) : NULL;
    int64_t until = entry_until(rl, &rl->addrs, a, now_ms);
    int64_t uu = entry_until(rl, &rl->users, u, now_ms);
    pthread_mutex_unlock(&rl->mu);
    return wait_s(uu > until ? uu : until, now_ms);
}

void ratelimit_fail(ratelimit_t *rl, const char *addr, const char *user, int64_t now_ms)
{
    if (!rl || rl->max_failures == 0) return;
    char ka[RATELIMIT_MAX_KEY + 1], ku[RATELIMIT_MAX_KEY + 1];
    make_key(addr, ka);
    make_key(user ? user : "", ku);
    pthread_mutex_lock(&rl->mu);
    rl_entry_t *a = table_get(rl, &rl->addrs, ka, now_ms);
    /* An address past its own limit is already slowed down: its guesses don't lock the user. */
    bool counts_for_user = *ku && (!a || a->failures < rl->addrs.free_failures);
    table_fail(rl, &rl->addrs, ka, now_ms);
    if (counts_for_user) table_fail(rl, &rl->users, ku, now_ms);
    pthread_mutex_unlock(&rl->mu);
}

void ratelimit_success(ratelimit_t *rl, const char *addr, const char *user)
{
    if (!rl) return;
    char ka[RATELIMIT_MAX_KEY + 1], ku[RATELIMIT_MAX_KEY + 1];
    make_key(addr, ka);
    make_key(user ? user : "", ku);
    pthread_mutex_lock(&rl->mu);
    table_clear(&rl->addrs, strmap_get(&rl->addrs.map, ka));
    table_clear(&rl->users, strmap_get(&rl->users.map, ku));
    pthread_mutex_unlock(&rl->mu);
}

void ratelimit_counts(ratelimit_t *rl, size_t *addrs, size_t *users)
{
    pthread_mutex_lock(&rl->mu);
    *addrs = rl->addrs.map.count;
    *users = rl->users.map.count;
    pthread_mutex_unlock(&rl->mu);
}

int64_t ratelimit_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
