/* A small thread pool for slow work that must stay off the event loops (argon2id checks). */
#ifndef SSE_JOBS_H
#define SSE_JOBS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct jobs jobs_t;

/**
 * One piece of work. It runs once on a pool thread with cancelled false, or, for a
 * job still queued when the pool is freed, on the freeing thread with cancelled
 * true (it must then answer quickly and release arg).
 */
typedef void (*job_fn)(void *arg, bool cancelled);

/** Longer keys (jobs_submit_keyed) are counted by their first this many bytes. */
#define JOBS_MAX_KEY 63

/**
 * Starts nthreads threads with room for max_queued waiting jobs, of which one key
 * may hold at most max_per_key (queued or running; 0: no share). Returns NULL on
 * failure.
 */
jobs_t *jobs_new(int nthreads, size_t max_queued, size_t max_per_key);

/**
 * Queues fn(arg) from any thread. Returns 0, SSE_EFULL when max_queued jobs are
 * already waiting, or SSE_ERR when the pool is stopping; fn is not called then.
 */
int jobs_submit(jobs_t *j, job_fn fn, void *arg);

/**
 * jobs_submit() for a job of key (a client's address): also returns SSE_ESHARE,
 * calling nothing, when max_per_key jobs of key are already queued or running, so
 * one client cannot fill the queue and keep every other waiting.
 */
int jobs_submit_keyed(jobs_t *j, const char *key, job_fn fn, void *arg);

/**
 * Refuses new jobs (jobs_submit then returns SSE_ERR), cancels the jobs still
 * queued, and waits for the running ones and the threads. Idempotent; j stays
 * valid for jobs_submit() callers until jobs_free().
 */
void jobs_stop(jobs_t *j);

/** jobs_stop(), then frees j. */
void jobs_free(jobs_t *j);

#endif
