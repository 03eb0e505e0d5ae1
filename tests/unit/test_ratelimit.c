/* ratelimit: free failures, doubling waits and their cap, reset on success, the two keys, eviction. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "ratelimit.h"

#define S 1000 /* one second of the injected clock */

/* Fails n times at time t from addr for user. */
static void fail_n(ratelimit_t *rl, const char *addr, const char *user, int n, int64_t t)
{
    for (int i = 0; i < n; i++) ratelimit_fail(rl, addr, user, t);
}

Test(ratelimit, free_failures_then_doubling_waits)
{
    ratelimit_t *rl = ratelimit_new(5, 900, 100);
    int64_t t = 1000 * S;
    for (int i = 0; i < 4; i++) {
        ratelimit_fail(rl, "10.0.0.1", "alice", t);
        cr_assert_eq(ratelimit_check(rl, "10.0.0.1", "alice", t), 0, "failure %d is free", i + 1);
    }
    ratelimit_fail(rl, "10.0.0.1", "alice", t);
    cr_assert_eq(ratelimit_check(rl, "10.0.0.1", "alice", t), 1);
    cr_assert_eq(ratelimit_check(rl, "10.0.0.1", "bob", t), 1, "the address waits, whatever the name");
    cr_assert_eq(ratelimit_check(rl, "10.0.0.2", "alice", t), 0, "five failures do not block the name");
    /* Each failure once the wait is over doubles the next wait. */
    int expect[] = {2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        t += (int64_t)ratelimit_check(rl, "10.0.0.1", "x", t) * S;
        cr_assert_eq(ratelimit_check(rl, "10.0.0.1", "x", t), 0);
        ratelimit_fail(rl, "10.0.0.1", "x", t);
        cr_assert_eq(ratelimit_check(rl, "10.0.0.1", "x", t), expect[i], "step %zu", i);
    }
    ratelimit_free(rl);
}

Test(ratelimit, retry_after_rounds_up)
{
    ratelimit_t *rl = ratelimit_new(1, 900, 100);
    ratelimit_fail(rl, "a", "u", 0);
    ratelimit_fail(rl, "a", "u", 1 * S); /* second failure: 2 s */
    cr_assert_eq(ratelimit_check(rl, "a", NULL, 1 * S), 2);
    cr_assert_eq(ratelimit_check(rl, "a", NULL, 1 * S + 1), 2);
    cr_assert_eq(ratelimit_check(rl, "a", NULL, 2 * S + 1), 1);
    cr_assert_eq(ratelimit_check(rl, "a", NULL, 3 * S - 1), 1);
    cr_assert_eq(ratelimit_check(rl, "a", NULL, 3 * S), 0);
    ratelimit_free(rl);
}

Test(ratelimit, cap_is_max_block)
{
    ratelimit_t *rl = ratelimit_new(2, 60, 100);
    int64_t t = 0;
    for (int i = 0; i < 200; i++) { /* far past any shift width */
        t += (int64_t)ratelimit_check(rl, "a", NULL, t) * S;
        ratelimit_fail(rl, "a", NULL, t);
        int w = ratelimit_check(rl, "a", NULL, t);
        cr_assert(w <= 60, "wait %d at failure %d", w, i + 1);
    }
    cr_assert_eq(ratelimit_check(rl, "a", NULL, t), 60);
    ratelimit_free(rl);
}

Test(ratelimit, success_resets_address_and_name)
{
    ratelimit_t *rl = ratelimit_new(3, 900, 100);
    fail_n(rl, "a", "alice", 3, 0);
    cr_assert_gt(ratelimit_check(rl, "a", "alice", 0), 0);
    ratelimit_success(rl, "a", "alice");
    cr_assert_eq(ratelimit_check(rl, "a", "alice", 0), 0);
    size_t na, nu;
    ratelimit_counts(rl, &na, &nu);
    cr_assert_eq(na, 0);
    cr_assert_eq(nu, 0);
    /* Counting starts again from zero: two failures are free again. */
    fail_n(rl, "a", "alice", 2, 0);
    cr_assert_eq(ratelimit_check(rl, "a", "alice", 0), 0);
    ratelimit_free(rl);
}

Test(ratelimit, one_address_cannot_lock_a_user)
{
    ratelimit_t *rl = ratelimit_new(5, 900, 100);
    int64_t t = 0;
    for (int i = 0; i < 100; i++) { /* an attacker who always waits out its address's block */
        t += (int64_t)ratelimit_check(rl, "6.6.6.6", "alice", t) * S;
        ratelimit_fail(rl, "6.6.6.6", "alice", t);
    }
    cr_assert_gt(ratelimit_check(rl, "6.6.6.6", "alice", t), 0, "the attacker waits");
    cr_assert_eq(ratelimit_check(rl, "10.0.0.1", "alice", t), 0, "alice elsewhere does not");
    cr_assert_eq(ratelimit_check(rl, "10.0.0.2", "bob", t), 0, "nor does anyone else");
    ratelimit_free(rl);
}

Test(ratelimit, many_addresses_lock_a_user_for_a_while)
{
    ratelimit_t *rl = ratelimit_new(5, 900, 100);
    fail_n(rl, "1.1.1.1", "alice", 4, 0);
    fail_n(rl, "2.2.2.2", "alice", 4, 0);
    cr_assert_eq(ratelimit_check(rl, "3.3.3.3", "alice", 0), 0, "8 failures: still under 2 x 5");
    fail_n(rl, "3.3.3.3", "alice", 2, 0);
    cr_assert_eq(ratelimit_check(rl, "3.3.3.3", "alice", 0), 1, "10 failures: the name waits 1 s");
    cr_assert_eq(ratelimit_check(rl, "4.4.4.4", "alice", 0), 1, "from everywhere");
    cr_assert_eq(ratelimit_check(rl, "4.4.4.4", "bob", 0), 0, "other names are not affected");
    cr_assert_eq(ratelimit_check(rl, "4.4.4.4", "alice", 1 * S), 0, "and not for long");
    ratelimit_free(rl);
}

Test(ratelimit, forgets_after_a_quiet_time)
{
    ratelimit_t *rl = ratelimit_new(5, 10, 100);
    fail_n(rl, "a", "alice", 4, 0);
    fail_n(rl, "a", "alice", 4, 19 * S); /* still remembered at 19 s: 8 failures */
    cr_assert_gt(ratelimit_check(rl, "a", NULL, 19 * S), 0);
    cr_assert_eq(ratelimit_check(rl, "a", NULL, 39 * S), 0);
    ratelimit_fail(rl, "a", NULL, 39 * S); /* quiet for 2 x 10 s: counting restarts */
    cr_assert_eq(ratelimit_check(rl, "a", NULL, 39 * S), 0);
    ratelimit_free(rl);
}

Test(ratelimit, bounded_tables_evict_the_oldest)
{
    ratelimit_t *rl = ratelimit_new(1, 900, 3);
    ratelimit_fail(rl, "a1", "u1", 0);
    ratelimit_fail(rl, "a2", "u2", 1);
    ratelimit_fail(rl, "a3", "u3", 2);
    ratelimit_fail(rl, "a1", "u1", 3); /* a1 is now the newest */
    ratelimit_fail(rl, "a4", "u4", 4);
    size_t na, nu;
    ratelimit_counts(rl, &na, &nu);
    cr_assert_eq(na, 3);
    cr_assert_eq(nu, 3);
    cr_assert_eq(ratelimit_check(rl, "a2", NULL, 4), 0, "a2, the oldest, was forgotten");
    cr_assert_gt(ratelimit_check(rl, "a1", NULL, 4), 0);
    cr_assert_gt(ratelimit_check(rl, "a3", NULL, 4), 0);
    cr_assert_gt(ratelimit_check(rl, "a4", NULL, 4), 0);
    for (int i = 0; i < 1000; i++) {
        char k[32];
        snprintf(k, sizeof k, "flood-%d", i);
        ratelimit_fail(rl, k, k, 5 + i);
    }
    ratelimit_counts(rl, &na, &nu);
    cr_assert_eq(na, 3);
    cr_assert_eq(nu, 3);
    ratelimit_free(rl);
}

Test(ratelimit, long_names_share_one_bounded_key)
{
    ratelimit_t *rl = ratelimit_new(2, 900, 100);
    char a[300], b[300];
    memset(a, 'x', sizeof a - 1);
    a[sizeof a - 1] = '\0';
    memcpy(b, a, sizeof b);
    b[200] = 'y'; /* differs only past RATELIMIT_MAX_KEY */
    for (int i = 0; i < 4; i++) ratelimit_fail(rl, i % 2 ? "1" : "2", i % 2 ? a : b, 0);
    cr_assert_gt(ratelimit_check(rl, "3", a, 0), 0);
    ratelimit_free(rl);
}

Test(ratelimit, zero_turns_it_off)
{
    ratelimit_t *rl = ratelimit_new(0, 900, 100);
    fail_n(rl, "a", "alice", 100, 0);
    cr_assert_eq(ratelimit_check(rl, "a", "alice", 0), 0);
    ratelimit_free(rl);
    cr_assert_eq(ratelimit_check(NULL, "a", "alice", 0), 0, "no limiter: no limits");
    ratelimit_fail(NULL, "a", "alice", 0);
    ratelimit_success(NULL, "a", "alice");
}

/* Begins n attempts from addr for user at t; each must be admitted. */
static void begin_n(ratelimit_t *rl, const char *addr, const char *user, int n, int64_t t,
                    ratelimit_hold_t *holds)
{
    for (int i = 0; i < n; i++)
        cr_assert_eq(ratelimit_begin(rl, addr, user, t, &holds[i]), 0, "attempt %d admitted", i + 1);
}

Test(ratelimit, attempts_in_flight_are_failures_in_waiting)
{
    ratelimit_t *rl = ratelimit_new(5, 900, 100);
    ratelimit_hold_t h[8], extra;
    begin_n(rl, "10.0.0.1", "alice", 5, 0, h);
    /* The sixth concurrent attempt waits at once, as it would once the five had failed. */
    cr_assert_eq(ratelimit_begin(rl, "10.0.0.1", "bob", 0, &extra), 1);
    cr_assert(!extra.addr && !extra.user, "a refused attempt holds nothing");
    cr_assert_eq(ratelimit_check(rl, "10.0.0.1", NULL, 0), 1);
    cr_assert_eq(ratelimit_begin(rl, "10.0.0.2", "bob", 0, &h[5]), 0, "another address goes ahead");
    ratelimit_end(rl, "10.0.0.2", "bob", &h[5], RATELIMIT_SUCCEEDED, 0);
    /* One ends without a check: its place is free again. */
    ratelimit_end(rl, "10.0.0.1", "alice", &h[4], RATELIMIT_DROPPED, 0);
    cr_assert(!h[4].addr, "ending clears the hold");
    cr_assert_eq(ratelimit_begin(rl, "10.0.0.1", "alice", 0, &h[4]), 0);
    /* All five fail: the next attempt waits 1 s, as after five failures one by one. */
    for (int i = 0; i < 5; i++) ratelimit_end(rl, "10.0.0.1", "alice", &h[i], RATELIMIT_FAILED, 0);
    cr_assert_eq(ratelimit_check(rl, "10.0.0.1", "alice", 0), 1);
    cr_assert_eq(ratelimit_begin(rl, "10.0.0.1", "alice", 999, &extra), 1);
    /* Past the wait one attempt may run; while it does, the next waits as long as its failure would make it. */
    cr_assert_eq(ratelimit_begin(rl, "10.0.0.1", "alice", 1 * S, &h[0]), 0);
    cr_assert_eq(ratelimit_begin(rl, "10.0.0.1", "alice", 1 * S, &extra), 2);
    ratelimit_end(rl, "10.0.0.1", "alice", &h[0], RATELIMIT_FAILED, 1 * S);
    cr_assert_eq(ratelimit_check(rl, "10.0.0.1", "alice", 1 * S), 2);
    ratelimit_free(rl);
}

Test(ratelimit, a_success_in_flight_clears_but_keeps_the_others)
{
    ratelimit_t *rl = ratelimit_new(3, 900, 100);
    ratelimit_hold_t h[3];
    fail_n(rl, "a", NULL, 1, 0);
    begin_n(rl, "a", "alice", 2, 0, h);
    cr_assert_gt(ratelimit_check(rl, "a", NULL, 0), 0, "one failure and two in flight use up three");
    ratelimit_end(rl, "a", "alice", &h[0], RATELIMIT_SUCCEEDED, 0);
    /* The failure is forgotten; the attempt still in flight still counts. */
    cr_assert_eq(ratelimit_begin(rl, "a", "alice", 0, &h[0]), 0);
    cr_assert_eq(ratelimit_begin(rl, "a", "alice", 0, &h[2]), 0);
    ratelimit_hold_t extra;
    cr_assert_eq(ratelimit_begin(rl, "a", "alice", 0, &extra), 1, "three in flight");
    for (int i = 0; i < 3; i++) ratelimit_end(rl, "a", "alice", &h[i], RATELIMIT_SUCCEEDED, 0);
    size_t na, nu;
    ratelimit_counts(rl, &na, &nu);
    cr_assert_eq(na, 0, "nothing left once every attempt ended well");
    cr_assert_eq(nu, 0);
    ratelimit_free(rl);
}

Test(ratelimit, dropped_attempts_leave_nothing)
{
    ratelimit_t *rl = ratelimit_new(2, 900, 100);
    ratelimit_hold_t h;
    cr_assert_eq(ratelimit_begin(rl, "a", "alice", 0, &h), 0);
    cr_assert(h.addr && h.user);
    size_t na, nu;
    ratelimit_counts(rl, &na, &nu);
    cr_assert_eq(na, 1);
    cr_assert_eq(nu, 1);
    ratelimit_end(rl, "a", "alice", &h, RATELIMIT_DROPPED, 0);
    ratelimit_counts(rl, &na, &nu);
    cr_assert_eq(na, 0);
    cr_assert_eq(nu, 0);
    ratelimit_end(rl, "a", "alice", &h, RATELIMIT_FAILED, 0); /* an empty hold: nothing */
    ratelimit_counts(rl, &na, &nu);
    cr_assert_eq(na, 0);
    ratelimit_free(rl);
}

Test(ratelimit, a_name_counts_attempts_in_flight_from_many_addresses)
{
    ratelimit_t *rl = ratelimit_new(5, 900, 100);
    ratelimit_hold_t h[10], extra;
    for (int i = 0; i < 10; i++) {
        char a[32];
        snprintf(a, sizeof a, "10.0.0.%d", i);
        cr_assert_eq(ratelimit_begin(rl, a, "alice", 0, &h[i]), 0);
        cr_assert(h[i].user);
    }
    cr_assert_eq(ratelimit_begin(rl, "10.0.1.1", "alice", 0, &extra), 1, "ten in flight use up the name's ten");
    cr_assert_eq(ratelimit_begin(rl, "10.0.1.1", "bob", 0, &extra), 0, "other names go ahead");
    ratelimit_end(rl, "10.0.1.1", "bob", &extra, RATELIMIT_SUCCEEDED, 0);
    for (int i = 0; i < 10; i++) {
        char a[32];
        snprintf(a, sizeof a, "10.0.0.%d", i);
        ratelimit_end(rl, a, "alice", &h[i], RATELIMIT_DROPPED, 0);
    }
    cr_assert_eq(ratelimit_check(rl, "10.0.1.1", "alice", 0), 0);
    ratelimit_free(rl);
}

Test(ratelimit, an_address_past_its_limit_holds_no_name)
{
    ratelimit_t *rl = ratelimit_new(2, 900, 100);
    fail_n(rl, "6.6.6.6", "x", 2, 0);
    ratelimit_hold_t h;
    cr_assert_eq(ratelimit_begin(rl, "6.6.6.6", "alice", 1 * S, &h), 0, "its wait is over");
    cr_assert(h.addr && !h.user);
    ratelimit_end(rl, "6.6.6.6", "alice", &h, RATELIMIT_FAILED, 1 * S);
    size_t na, nu;
    ratelimit_counts(rl, &na, &nu);
    cr_assert_eq(nu, 1, "only the name x, of the two free failures");
    cr_assert_eq(ratelimit_check(rl, "7.7.7.7", "alice", 1 * S), 0);
    ratelimit_free(rl);
}

Test(ratelimit, in_flight_off_with_the_limits)
{
    ratelimit_t *rl = ratelimit_new(0, 900, 100);
    ratelimit_hold_t h;
    for (int i = 0; i < 100; i++) cr_assert_eq(ratelimit_begin(rl, "a", "alice", 0, &h), 0);
    cr_assert(!h.addr && !h.user);
    ratelimit_end(rl, "a", "alice", &h, RATELIMIT_FAILED, 0);
    ratelimit_free(rl);
    cr_assert_eq(ratelimit_begin(NULL, "a", "alice", 0, &h), 0);
    ratelimit_end(NULL, "a", "alice", &h, RATELIMIT_FAILED, 0);
}

Test(ratelimit, an_entry_in_flight_is_not_forgotten)
{
    ratelimit_t *rl = ratelimit_new(1, 10, 100);
    ratelimit_hold_t h, extra;
    cr_assert_eq(ratelimit_begin(rl, "a", NULL, 0, &h), 0);
    /* Long past the forgetting time, the attempt in flight still holds the address. */
    cr_assert_eq(ratelimit_begin(rl, "a", NULL, 100 * S, &extra), 1);
    ratelimit_end(rl, "a", NULL, &h, RATELIMIT_DROPPED, 100 * S);
    cr_assert_eq(ratelimit_begin(rl, "a", NULL, 100 * S, &h), 0);
    ratelimit_end(rl, "a", NULL, &h, RATELIMIT_DROPPED, 100 * S);
    ratelimit_free(rl);
}
