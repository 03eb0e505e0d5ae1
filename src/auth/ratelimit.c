/* Failed-login counters in two bounded tables (LRU by last failure), doubling waits, one lock. */
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
    int64_t last_ms;  /* the latest failure */
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

/* The live entry for key, or NULL; an entry quiet for forget_ms (and not blocking) is dropped. */
static rl_entry_t *table_get(ratelimit_t *rl, rl_table_t *t, const char *key, int64_t now)
{
    rl_entry_t *e = strmap_get(&t->map, key);
    if (e && now - e->last_ms >= rl->forget_ms && now >= e->until_ms) {
        table_drop(t, e);
        e = NULL;
    }
    return e;
}

/* Counts one failure for key, making room by forgetting the oldest entry when full. */
static void table_fail(ratelimit_t *rl, rl_table_t *t, const char *key, int64_t now)
{
    rl_entry_t *e = table_get(rl, t, key, now);
    if (!e) {
        if (t->map.count >= rl->max_keys) table_drop(t, container_of(t->lru.next, rl_entry_t, lru));
        size_t n = strlen(key);
        e = xcalloc(1, sizeof *e + n + 1);
        memcpy(e->key, key, n + 1);
        strmap_put(&t->map, e->key, e);
    } else {
        list_remove(&e->lru);
    }
    list_push_back(&t->lru, &e->lru);
    e->failures++;
    e->last_ms = now;
    int over = e->failures - t->free_failures;
    if (over >= 0) {
        int64_t block = over >= 40 ? rl->max_block_ms : (int64_t)1000 << over;
        if (block > rl->max_block_ms) block = rl->max_block_ms;
        e->until_ms = now + block;
    }
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

int ratelimit_check(ratelimit_t *rl, const char *addr, const char *user, int64_t now_ms)
{
    if (!rl || rl->max_failures == 0) return 0;
    char ka[RATELIMIT_MAX_KEY + 1], ku[RATELIMIT_MAX_KEY + 1];
    make_key(addr, ka);
    make_key(user ? user : "", ku);
    int64_t until = 0;
    pthread_mutex_lock(&rl->mu);
    rl_entry_t *a = table_get(rl, &rl->addrs, ka, now_ms);
    rl_entry_t *u = *ku ? table_get(rl, &rl->users, ku, now_ms) : NULL;
    if (a && a->until_ms > until) until = a->until_ms;
    if (u && u->until_ms > until) until = u->until_ms;
    pthread_mutex_unlock(&rl->mu);
    return until > now_ms ? (int)((until - now_ms + 999) / 1000) : 0;
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
    rl_entry_t *e = strmap_get(&rl->addrs.map, ka);
    if (e) table_drop(&rl->addrs, e);
    if ((e = strmap_get(&rl->users.map, ku))) table_drop(&rl->users, e);
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
