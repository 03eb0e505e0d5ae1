/* Brute-force limits on failed logins: one counter per client address, one per username. */
#ifndef SSE_RATELIMIT_H
#define SSE_RATELIMIT_H

#include <stdbool.h>
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
 * more than max_block. Attempts still being checked count as failures in waiting
 * (ratelimit_begin), so a burst of concurrent guesses is held to the same limits.
 * Counters are forgotten after 2 * max_block seconds without failures and with
 * nothing in flight. max_failures 0 turns the limits off. Each table keeps at most
 * max_keys (when full, the least recently failed key is forgotten, in flight or
 * not). The functions below accept a NULL limiter: no limits.
 */
ratelimit_t *ratelimit_new(int max_failures, int max_block, size_t max_keys);

void ratelimit_free(ratelimit_t *rl);

/** What ratelimit_begin() counted for one attempt in flight, for ratelimit_end(). */
typedef struct ratelimit_hold {
    bool addr; /* the address counts it */
    bool user; /* the username counts it too */
} ratelimit_hold_t;

/** How an attempt held by ratelimit_begin() ended. */
enum ratelimit_outcome {
    RATELIMIT_FAILED,    /* a wrong password: counted as a failure */
    RATELIMIT_SUCCEEDED, /* the right one: the failures of the address and of the name are forgotten */
    RATELIMIT_DROPPED,   /* never checked (the server refused or dropped it): not counted */
};

/**
 * Admits a login from addr for user, or not. Returns the seconds it must wait
 * (rounded up; *hold is then empty), or 0: the attempt is then counted in flight,
 * as a failure in waiting, until ratelimit_end(rl, addr, user, hold, ...) says how
 * it ended. So with max_failures free failures, max_failures attempts may be in
 * flight at once from one address and the next one waits, as it would once they
 * had all failed; the username counts its attempts in flight the same way (those
 * of an address already past its own limit excepted). now_ms: a monotonic clock
 * in milliseconds.
 */
int ratelimit_begin(ratelimit_t *rl, const char *addr, const char *user, int64_t now_ms,
                    ratelimit_hold_t *hold);

/** Ends an attempt admitted by ratelimit_begin() (same addr and user): see ratelimit_outcome. */
void ratelimit_end(ratelimit_t *rl, const char *addr, const char *user, ratelimit_hold_t *hold,
                   enum ratelimit_outcome outcome, int64_t now_ms);

/**
 * Seconds a login from addr for user must still wait (rounded up), or 0 when it
 * may go ahead, counting nothing. now_ms: a monotonic clock in milliseconds.
 */
int ratelimit_check(ratelimit_t *rl, const char *addr, const char *user, int64_t now_ms);

/** Counts a failed login from addr for user (user may be NULL or ""), none in flight. */
void ratelimit_fail(ratelimit_t *rl, const char *addr, const char *user, int64_t now_ms);

/** A correct login: forgets the failures of addr and of user. */
void ratelimit_success(ratelimit_t *rl, const char *addr, const char *user);

/** Keys remembered: addresses and usernames (for tests). */
void ratelimit_counts(ratelimit_t *rl, size_t *addrs, size_t *users);

/** The monotonic clock in milliseconds, for now_ms. */
int64_t ratelimit_now_ms(void);

#endif
