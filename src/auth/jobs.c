/* The job pool: a bounded ring of waiting jobs under one mutex, threads sleep on a condvar. */
#include "jobs.h"

#include <pthread.h>

#include "common.h"

typedef struct job {
    job_fn fn;
    void *arg;
} job_t;

struct jobs {
    pthread_mutex_t mu;
    pthread_cond_t ready; /* a job was queued, or the pool is stopping */
    job_t *ring;
    size_t head, len, cap;
    bool stopping;
    int nthreads;
    pthread_t *threads;
};

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
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

jobs_t *jobs_new(int nthreads, size_t max_queued)
{
    jobs_t *j = xcalloc(1, sizeof *j);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->ready, NULL);
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

int jobs_submit(jobs_t *j, job_fn fn, void *arg)
{
    int rc = SSE_OK;
    pthread_mutex_lock(&j->mu);
    if (j->stopping) rc = SSE_ERR;
    else if (j->len == j->cap) rc = SSE_EFULL;
    else {
        j->ring[(j->head + j->len) % j->cap] = (job_t){fn, arg};
        j->len++;
        pthread_cond_signal(&j->ready);
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
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
    }
}

void jobs_free(jobs_t *j)
{
    if (!j) return;
    jobs_stop(j);
    pthread_cond_destroy(&j->ready);
    pthread_mutex_destroy(&j->mu);
    free(j->ring);
    free(j->threads);
    free(j);
}
