/* Connection and stream caps: one lock for the whole process; entered once per connect and close. */
#include "caps.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

void caps_init(caps_t *l, int max_per_ip, int max_per_user)
{
    pthread_mutex_init(&l->mu, NULL);
    l->max_per_ip = max_per_ip;
    l->max_per_user = max_per_user;
    strmap_init(&l->per_ip);
    strmap_init(&l->per_user);
}

void caps_free(caps_t *l)
{
    strmap_free(&l->per_ip);
    strmap_free(&l->per_user); /* tickets are freed by their streams */
    pthread_mutex_destroy(&l->mu);
}

bool caps_ip_enter(caps_t *l, const char *ip)
{
    if (l->max_per_ip <= 0) return true;
    pthread_mutex_lock(&l->mu);
    uintptr_t n = (uintptr_t)strmap_get(&l->per_ip, ip);
    bool ok = n < (uintptr_t)l->max_per_ip;
    if (ok) strmap_put(&l->per_ip, ip, (void *)(n + 1));
    pthread_mutex_unlock(&l->mu);
    return ok;
}

void caps_ip_leave(caps_t *l, const char *ip)
{
    if (l->max_per_ip <= 0) return;
    pthread_mutex_lock(&l->mu);
    uintptr_t n = (uintptr_t)strmap_get(&l->per_ip, ip);
    if (n <= 1) strmap_del(&l->per_ip, ip);
    else strmap_put(&l->per_ip, ip, (void *)(n - 1));
    pthread_mutex_unlock(&l->mu);
}

stream_ticket_t *caps_stream_open(caps_t *l, const char *user, void *c, void *owner,
                                  stream_ticket_t **evict)
{
    *evict = NULL;
    if (l->max_per_user <= 0 || !user || !*user) return NULL;
    stream_ticket_t *t = xcalloc(1, sizeof *t);
    atomic_init(&t->refs, 1);
    t->conn = c;
    t->owner = owner;
    t->user = xstrdup(user);
    pthread_mutex_lock(&l->mu);
    stream_ticket_t *head = strmap_get(&l->per_user, user);
    int n = 1;
    stream_ticket_t **pp = &head;
    for (; *pp; pp = &(*pp)->next) n++;
    *pp = t;
    if (n > l->max_per_user) { /* the oldest leaves the list now; its owner closes it */
        stream_ticket_t *old = head;
        head = old->next;
        old->next = NULL;
        atomic_fetch_add(&old->refs, 1);
        *evict = old;
    }
    strmap_put(&l->per_user, user, head);
    pthread_mutex_unlock(&l->mu);
    return t;
}

void caps_stream_close(caps_t *l, stream_ticket_t *t)
{
    if (!t) return;
    pthread_mutex_lock(&l->mu);
    t->conn = NULL;
    stream_ticket_t *head = strmap_get(&l->per_user, t->user);
    stream_ticket_t **pp = &head;
    while (*pp && *pp != t) pp = &(*pp)->next;
    if (*pp) { /* still listed (an evicted ticket is not) */
        *pp = t->next;
        if (head) strmap_put(&l->per_user, t->user, head);
        else strmap_del(&l->per_user, t->user);
    }
    pthread_mutex_unlock(&l->mu);
    caps_ticket_unref(t);
}

void *caps_ticket_conn(caps_t *l, stream_ticket_t *t)
{
    pthread_mutex_lock(&l->mu);
    void *c = t->conn;
    pthread_mutex_unlock(&l->mu);
    return c;
}

void caps_ticket_unref(stream_ticket_t *t)
{
    if (atomic_fetch_sub(&t->refs, 1) == 1) {
        free(t->user);
        free(t);
    }
}
