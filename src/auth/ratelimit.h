/* Brute-force limits on failed logins: one counter per client address, one per username. */
#ifndef SSE_RATELIMIT_H
#define SSE_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

/** Most keys each table (addresses, usernames) remembers; the oldest is forgotten first. */
#define RATELIMIT_MAX_KEYS 10000

/** Longer usernames are counted by their first this many bytes (no account is that long). */
#define RATELIMIT_MAX_KEY 128

typedef struct ratelimit ratelimit_t;

/**
 * A limiter, safe to share between threads (it has its own lock). An address gets
 * max_failures free failed logins, a username twice that; each failure after them
 * makes it wait, 1 s, then 2 s, 4 s... up to max_block seconds. Failures from an
 * address already past its own limit do not count against usernames, so one
 * address alone can never lock an account: only many addresses can, and never for
 * more than max_block. Counters are forgotten after 2 * max_block seconds without
 * failures. max_failures 0 turns the limits off. Each table keeps at most max_keys.
 * The functions below accept a NULL limiter: no limits.
 */
ratelimit_t *ratelimit_new(int max_failures, int max_block, size_t max_keys);

void ratelimit_free(ratelimit_t *rl);

/**
 * Seconds a login from addr for user must still wait (rounded up), or 0 when it
 * may go ahead. now_ms: a monotonic clock in milliseconds.
 */
int ratelimit_check(ratelimit_t *rl, const char *addr, const char *user, int64_t now_ms);

/** Counts a failed login from addr for user (user may be NULL or ""). */
void ratelimit_fail(ratelimit_t *rl, const char *addr, const char *user, int64_t now_ms);

/** A correct login: forgets the failures of addr and of user. */
void ratelimit_success(ratelimit_t *rl, const char *addr, const char *user);

/** Keys remembered: addresses and usernames (for tests). */
void ratelimit_counts(ratelimit_t *rl, size_t *addrs, size_t *users);

/** The monotonic clock in milliseconds, for now_ms. */
int64_t ratelimit_now_ms(void);

#endif
