/* String-keyed chained hash map, hashed with SipHash under a per-map random key. */
#include "strmap.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "common.h"

_Static_assert(sizeof(((strmap_t *)0)->key) == crypto_shorthash_KEYBYTES,
               "strmap_t.key holds a SipHash key");

/*
 * SipHash-2-4 (crypto_shorthash) under the map's secret key: clients that choose
 * user ids and type names cannot aim them at one chain. A seeded FNV-1a could
 * not promise that: its low k bits, which pick the bucket, depend only on the
 * low k bits of the seed and of each byte.
 */
static uint32_t hash_str(const strmap_t *m, const char *s)
{
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, (const unsigned char *)s, strlen(s), m->key);
    uint32_t h;
    memcpy(&h, out, sizeof h);
    return h;
}

void strmap_init(strmap_t *m)
{
    memset(m, 0, sizeof *m);
    /* A map may be made before anything else started libsodium; sodium_init() is idempotent
     * and thread-safe. */
    if (sodium_init() < 0) {
        fprintf(stderr, "ssehub: libsodium cannot start (no source of randomness)\n");
        abort();
    }
    randombytes_buf(m->key, sizeof m->key);
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
