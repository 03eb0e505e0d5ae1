/* jobs: the bounded queue, one key's share of it, cancellation on stop. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "jobs.h"

/* A gate the first job waits at, so the others stay queued. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool open_gate, blocker_running;
static atomic_int ran, cancelled;

static void blocker(void *arg, bool was_cancelled)
{
    (void)arg;
    if (was_cancelled) {
        atomic_fetch_add(&cancelled, 1);
        return;
    }
    pthread_mutex_lock(&mu);
    blocker_running = true;
    pthread_cond_broadcast(&cv);
    while (!open_gate) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    atomic_fetch_add(&ran, 1);
}

static void count(void *arg, bool was_cancelled)
{
    (void)arg;
    atomic_fetch_add(was_cancelled ? &cancelled : &ran, 1);
}

/* A pool of one thread, held by the blocker job until release(). */
static jobs_t *held_pool(size_t max_queued, size_t max_per_key)
{
    open_gate = blocker_running = false;
    atomic_store(&ran, 0);
    atomic_store(&cancelled, 0);
    jobs_t *j = jobs_new(1, max_queued, max_per_key);
    cr_assert_not_null(j);
    cr_assert_eq(jobs_submit(j, blocker, NULL), SSE_OK);
    pthread_mutex_lock(&mu);
    while (!blocker_running) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return j;
}

static void release(void)
{
    pthread_mutex_lock(&mu);
    open_gate = true;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void wait_ran(int n)
{
    for (int i = 0; i < 2000 && atomic_load(&ran) < n; i++) usleep(1000);
    cr_assert_eq(atomic_load(&ran), n);
}

Test(jobs, a_key_holds_at_most_its_share)
{
    jobs_t *j = held_pool(8, 2);
    cr_assert_eq(jobs_submit_keyed(j, "203.0.113.7", count, NULL), SSE_OK);
    cr_assert_eq(jobs_submit_keyed(j, "203.0.113.7", count, NULL), SSE_OK);
    cr_assert_eq(jobs_submit_keyed(j, "203.0.113.7", count, NULL), SSE_ESHARE, "past its share");
    cr_assert_eq(jobs_submit_keyed(j, "203.0.113.8", count, NULL), SSE_OK, "another key has room");
    cr_assert_eq(jobs_submit(j, count, NULL), SSE_OK, "jobs without a key have no share");
    cr_assert_eq(jobs_submit_keyed(j, NULL, count, NULL), SSE_OK);
    release();
    wait_ran(6); /* the blocker and the five taken */
    /* Run jobs give their share back. */
    cr_assert_eq(jobs_submit_keyed(j, "203.0.113.7", count, NULL), SSE_OK);
    cr_assert_eq(jobs_submit_keyed(j, "203.0.113.7", count, NULL), SSE_OK);
    wait_ran(8);
    jobs_free(j);
}

Test(jobs, the_queue_bound_comes_first)
{
    jobs_t *j = held_pool(3, 2);
    cr_assert_eq(jobs_submit_keyed(j, "a", count, NULL), SSE_OK);
    cr_assert_eq(jobs_submit_keyed(j, "b", count, NULL), SSE_OK);
    cr_assert_eq(jobs_submit_keyed(j, "c", count, NULL), SSE_OK);
    cr_assert_eq(jobs_submit_keyed(j, "d", count, NULL), SSE_EFULL);
    cr_assert_eq(jobs_submit(j, count, NULL), SSE_EFULL);
    release();
    wait_ran(4);
    jobs_free(j);
}

Test(jobs, no_share_without_max_per_key)
{
    jobs_t *j = held_pool(8, 0);
    for (int i = 0; i < 8; i++) cr_assert_eq(jobs_submit_keyed(j, "a", count, NULL), SSE_OK);
    cr_assert_eq(jobs_submit_keyed(j, "a", count, NULL), SSE_EFULL);
    release();
    wait_ran(9);
    jobs_free(j);
}

Test(jobs, long_keys_share_their_first_bytes)
{
    jobs_t *j = held_pool(8, 1);
    char a[200], b[200];
    memset(a, 'k', sizeof a - 1);
    a[sizeof a - 1] = '\0';
    memcpy(b, a, sizeof b);
    b[150] = 'z';
    cr_assert_eq(jobs_submit_keyed(j, a, count, NULL), SSE_OK);
    cr_assert_eq(jobs_submit_keyed(j, b, count, NULL), SSE_ESHARE);
    release();
    wait_ran(2);
    jobs_free(j);
}

Test(jobs, stop_cancels_the_queued_and_frees_their_share)
{
    jobs_t *j = held_pool(8, 2);
    cr_assert_eq(jobs_submit_keyed(j, "a", count, NULL), SSE_OK);
    cr_assert_eq(jobs_submit_keyed(j, "a", count, NULL), SSE_OK);
    release();
    jobs_stop(j);
    cr_assert_eq(atomic_load(&ran) + atomic_load(&cancelled), 3);
    cr_assert_eq(jobs_submit_keyed(j, "a", count, NULL), SSE_ERR, "a stopped pool takes nothing");
    jobs_free(j);
}
