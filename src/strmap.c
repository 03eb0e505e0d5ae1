/* String-keyed chained hash map. */
#include "strmap.h"

#include <string.h>

#include "common.h"

/* FNV-1a from a per-map random seed, so clients that choose user ids cannot aim at one chain. */
static uint32_t hash_str(const strmap_t *m, const char *s)
{
    uint32_t h = 2166136261u ^ m->seed;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

void strmap_init(strmap_t *m)
{
    memset(m, 0, sizeof *m);
    m->seed = arc4random();
}

void strmap_free(strmap_t *m)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        strmap_entry_t *e = m->buckets[i];
        while (e) {
            strmap_entry_t *n = e->next;
            free(e);
            e = n;
        }
    }
    free(m->buckets);
    m->buckets = NULL;
    m->nbuckets = m->count = 0;
}

static strmap_entry_t **find(const strmap_t *m, const char *key, uint32_t h)
{
    if (!m->nbuckets) return NULL;
    strmap_entry_t **pp = &m->buckets[h & (m->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0) return pp;
    return pp;
}

void *strmap_get(const strmap_t *m, const char *key)
{
    strmap_entry_t **pp = find(m, key, hash_str(m, key));
    return pp && *pp ? (*pp)->value : NULL;
}

static void grow(strmap_t *m)
{
    size_t nb = m->nbuckets ? m->nbuckets * 2 : 16;
    strmap_entry_t **b = xcalloc(nb, sizeof *b);
    for (size_t i = 0; i < m->nbuckets; i++) {
        strmap_entry_t *e = m->buckets[i];
        while (e) {
            strmap_entry_t *n = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = n;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
}

void strmap_put(strmap_t *m, const char *key, void *value)
{
    uint32_t h = hash_str(m, key);
    strmap_entry_t **pp = find(m, key, h);
    if (pp && *pp) {
        (*pp)->value = value;
        return;
    }
    if (m->count + 1 > m->nbuckets) {
        grow(m);
        pp = find(m, key, h);
    }
    size_t kl = strlen(key) + 1;
    strmap_entry_t *e = xmalloc(sizeof *e + kl);
    memcpy(e->key, key, kl);
    e->hash = h;
    e->value = value;
    e->next = NULL;
    *pp = e;
    m->count++;
}

void *strmap_del(strmap_t *m, const char *key)
{
    strmap_entry_t **pp = find(m, key, hash_str(m, key));
    if (!pp || !*pp) return NULL;
    strmap_entry_t *e = *pp;
    void *v = e->value;
    *pp = e->next;
    free(e);
    m->count--;
    return v;
}
