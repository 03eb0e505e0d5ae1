/* The job pool: a bounded ring of waiting jobs under one mutex, threads sleep on a condvar. */
#include "jobs.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "common.h"
#include "strmap.h"

typedef struct job {
    job_fn fn;
    void *arg;
    char key[JOBS_MAX_KEY + 1]; /* "" for jobs_submit() */
} job_t;

struct jobs {
    pthread_mutex_t mu;
    pthread_cond_t ready; /* a job was queued, or the pool is stopping */
    job_t *ring;
    size_t head, len, cap;
    bool stopping;
    int nthreads;
    pthread_t *threads;
    size_t max_per_key; /* 0 = no share */
    strmap_t per_key;   /* key -> jobs of it queued or running, in the value pointer */
};

/* One job of key is over (run or cancelled); under j->mu. */
static void key_done(jobs_t *j, const char *key)
{
    if (!*key) return;
    uintptr_t n = (uintptr_t)strmap_get(&j->per_key, key);
    if (n <= 1) strmap_del(&j->per_key, key);
    else strmap_put(&j->per_key, key, (void *)(n - 1));
}

static void *run(void *arg)
{
    jobs_t *j = arg;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        while (j->len == 0 && !j->stopping) pthread_cond_wait(&j->ready, &j->mu);
        if (j->stopping) break; /* what is still queued is cancelled by jobs_free() */
        job_t job = j->ring[j->head];
        j->head = (j->head + 1) % j->cap;
        j->len--;
        pthread_mutex_unlock(&j->mu);
        job.fn(job.arg, false);
        pthread_mutex_lock(&j->mu);
        key_done(j, job.key);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

jobs_t *jobs_new(int nthreads, size_t max_queued, size_t max_per_key)
{
    jobs_t *j = xcalloc(1, sizeof *j);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->ready, NULL);
    strmap_init(&j->per_key);
    j->max_per_key = max_per_key;
    j->cap = max_queued ? max_queued : 1;
    j->ring = xmalloc(j->cap * sizeof *j->ring);
    j->threads = xcalloc((size_t)nthreads, sizeof *j->threads);
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&j->threads[i], NULL, run, j)) {
            jobs_free(j);
            return NULL;
        }
        j->nthreads = i + 1;
    }
    return j;
}

int jobs_submit_keyed(jobs_t *j, const char *key, job_fn fn, void *arg)
{
    int rc = SSE_OK;
    job_t job = {fn, arg, ""};
    if (key) {
        size_t n = strnlen(key, JOBS_MAX_KEY);
        memcpy(job.key, key, n);
        job.key[n] = '\0';
    }
    pthread_mutex_lock(&j->mu);
    uintptr_t held = *job.key && !j->stopping ? (uintptr_t)strmap_get(&j->per_key, job.key) : 0;
    if (j->stopping) rc = SSE_ERR;
    else if (j->len == j->cap) rc = SSE_EFULL;
    else if (*job.key && j->max_per_key && held >= j->max_per_key) rc = SSE_ESHARE;
    else {
        j->ring[(j->head + j->len) % j->cap] = job;
        j->len++;
        if (*job.key) strmap_put(&j->per_key, job.key, (void *)(held + 1));
        pthread_cond_signal(&j->ready);
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

int jobs_submit(jobs_t *j, job_fn fn, void *arg)
{
    return jobs_submit_keyed(j, NULL, fn, arg);
}

void jobs_stop(jobs_t *j)
{
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    bool first = !j->stopping;
    j->stopping = true;
    pthread_cond_broadcast(&j->ready);
    pthread_mutex_unlock(&j->mu);
    if (!first) return;
    for (int i = 0; i < j->nthreads; i++) pthread_join(j->threads[i], NULL);
    /* The threads are gone and submits are refused: nobody else touches the ring now. */
    while (j->len) {
        job_t job = j->ring[j->head];
        j->head = (j->head + 1) % j->cap;
        j->len--;
        job.fn(job.arg, true);
        pthread_mutex_lock(&j->mu);
        key_done(j, job.key);
        pthread_mutex_unlock(&j->mu);
    }
}

void jobs_free(jobs_t *j)
{
    if (!j) return;
    jobs_stop(j);
    pthread_cond_destroy(&j->ready);
    pthread_mutex_destroy(&j->mu);
    strmap_free(&j->per_key);
    free(j->ring);
    free(j->threads);
    free(j);
}
