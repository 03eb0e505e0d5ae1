/* A string-keyed hash map with owned keys, used by the hub's user and type indexes. */
#ifndef SSE_STRMAP_H
#define SSE_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct strmap_entry {
    struct strmap_entry *next;
    void *value;
    uint32_t hash;
    char key[];
} strmap_entry_t;

/** Open hashing with chains; grows to keep chains short. Not thread-safe. */
typedef struct strmap {
    strmap_entry_t **buckets;
    size_t nbuckets; /* power of two, or 0 before the first insert */
    size_t count;
    unsigned char key[16]; /* SipHash key, random per map */
} strmap_t;

/** An empty map with a fresh random hash key (users choose the keys: ids and type names). */
void strmap_init(strmap_t *m);

/** Frees the entries (not the values). */
void strmap_free(strmap_t *m);

/** The value stored for key, or NULL. */
void *strmap_get(const strmap_t *m, const char *key);

/** Stores value for key (a copy of key is kept); replaces any earlier value. */
void strmap_put(strmap_t *m, const char *key, void *value);

/** Removes key; returns its value or NULL. */
void *strmap_del(strmap_t *m, const char *key);

#endif
