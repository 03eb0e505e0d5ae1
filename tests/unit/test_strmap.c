/* strmap: put/get/del, replacement, key copies, growth, removing all, keyed hashing. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "strmap.h"

static int vals[5000];

Test(strmap, empty_map)
{
    strmap_t m;
    strmap_init(&m);
    cr_assert_null(strmap_get(&m, "a"));
    cr_assert_null(strmap_del(&m, "a"));
    cr_assert_eq(m.count, 0);
    strmap_free(&m);
}

Test(strmap, put_get_del)
{
    strmap_t m;
    strmap_init(&m);
    strmap_put(&m, "a", &vals[1]);
    strmap_put(&m, "b", &vals[2]);
    strmap_put(&m, "", &vals[3]);
    cr_assert_eq(m.count, 3);
    cr_assert_eq(strmap_get(&m, "a"), &vals[1]);
    cr_assert_eq(strmap_get(&m, "b"), &vals[2]);
    cr_assert_eq(strmap_get(&m, ""), &vals[3]);
    cr_assert_null(strmap_get(&m, "c"));
    cr_assert_null(strmap_get(&m, "ab"));

    cr_assert_eq(strmap_del(&m, "a"), &vals[1]);
    cr_assert_eq(m.count, 2);
    cr_assert_null(strmap_get(&m, "a"));
    cr_assert_null(strmap_del(&m, "a"));
    cr_assert_eq(strmap_get(&m, "b"), &vals[2]);
    strmap_free(&m);
    cr_assert_eq(m.count, 0);
    cr_assert_null(strmap_get(&m, "b"));
}

Test(strmap, replace_keeps_count)
{
    strmap_t m;
    strmap_init(&m);
    strmap_put(&m, "k", &vals[1]);
    strmap_put(&m, "k", &vals[2]);
    cr_assert_eq(m.count, 1);
    cr_assert_eq(strmap_get(&m, "k"), &vals[2]);
    cr_assert_eq(strmap_del(&m, "k"), &vals[2]);
    cr_assert_null(strmap_get(&m, "k"));
    cr_assert_eq(m.count, 0);
    strmap_free(&m);
}

Test(strmap, key_is_copied)
{
    strmap_t m;
    strmap_init(&m);
    char key[8] = "user";
    strmap_put(&m, key, &vals[1]);
    strcpy(key, "xxxx");
    cr_assert_eq(strmap_get(&m, "user"), &vals[1]);
    cr_assert_null(strmap_get(&m, "xxxx"));
    strmap_free(&m);
}

Test(strmap, growth_many_keys_and_remove_all)
{
    strmap_t m;
    strmap_init(&m);
    char key[32];
    const int n = 5000;
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        strmap_put(&m, key, &vals[i]);
    }
    cr_assert_eq(m.count, (size_t)n);
    cr_assert_geq(m.nbuckets, (size_t)n, "chains should stay short: %zu buckets", m.nbuckets);
    cr_assert_eq(m.nbuckets & (m.nbuckets - 1), 0, "buckets must be a power of two");
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        cr_assert_eq(strmap_get(&m, key), &vals[i], "%s", key);
    }
    /* replace every other one after growth */
    for (int i = 0; i < n; i += 2) {
        snprintf(key, sizeof key, "key-%d", i);
        strmap_put(&m, key, &vals[n - 1 - i]);
    }
    cr_assert_eq(m.count, (size_t)n);
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        cr_assert_eq(strmap_get(&m, key), i % 2 ? &vals[i] : &vals[n - 1 - i], "%s", key);
    }
    /* remove every key, in a different order than inserted */
    for (int i = n - 1; i >= 0; i--) {
        snprintf(key, sizeof key, "key-%d", i);
        void *want = i % 2 ? &vals[i] : &vals[n - 1 - i];
        cr_assert_eq(strmap_del(&m, key), want, "%s", key);
        cr_assert_null(strmap_get(&m, key));
    }
    cr_assert_eq(m.count, 0);
    for (size_t b = 0; b < m.nbuckets; b++) cr_assert_null(m.buckets[b]);
    /* reusable after removing everything */
    strmap_put(&m, "again", &vals[7]);
    cr_assert_eq(strmap_get(&m, "again"), &vals[7]);
    cr_assert_eq(m.count, 1);
    strmap_free(&m);
}

Test(strmap, null_values_are_stored)
{
    strmap_t m;
    strmap_init(&m);
    strmap_put(&m, "n", NULL);
    cr_assert_eq(m.count, 1);
    cr_assert_null(strmap_get(&m, "n"));
    cr_assert_null(strmap_del(&m, "n"));
    cr_assert_eq(m.count, 0);
    strmap_free(&m);
}

/* The longest chain in m. */
static size_t longest_chain(const strmap_t *m)
{
    size_t most = 0;
    for (size_t b = 0; b < m->nbuckets; b++) {
        size_t n = 0;
        for (const strmap_entry_t *e = m->buckets[b]; e; e = e->next) n++;
        if (n > most) most = n;
    }
    return most;
}

/* The bucket key is in, or -1. */
static long bucket_of(const strmap_t *m, const char *key)
{
    for (size_t b = 0; b < m->nbuckets; b++)
        for (const strmap_entry_t *e = m->buckets[b]; e; e = e->next)
            if (strcmp(e->key, key) == 0) return (long)b;
    return -1;
}

/* Each map draws its own hash key, so the same keys are spread differently in two maps. */
Test(strmap, each_map_has_its_own_hash_key)
{
    strmap_t a, b;
    strmap_init(&a);
    strmap_init(&b);
    cr_assert_neq(memcmp(a.key, b.key, sizeof a.key), 0, "two maps share a hash key");
    char key[32];
    for (int i = 0; i < 64; i++) {
        snprintf(key, sizeof key, "user-%d", i);
        strmap_put(&a, key, &vals[i]);
        strmap_put(&b, key, &vals[i]);
    }
    cr_assert_eq(a.nbuckets, b.nbuckets);
    int same = 0;
    for (int i = 0; i < 64; i++) {
        snprintf(key, sizeof key, "user-%d", i);
        same += bucket_of(&a, key) == bucket_of(&b, key);
    }
    cr_assert_lt(same, 64, "every key is in the same bucket in both maps");
    strmap_free(&a);
    strmap_free(&b);
}

/*
 * Keys that differ only in the top bit of their bytes. Under the former hash
 * (FNV-1a from a seed) the low 7 bits of the hash depend only on the low 7 bits
 * of the seed and of each byte, so these 128 keys shared one chain in a map of
 * 128 buckets whatever the seed: a user choosing ids could make every lookup a
 * scan. A keyed hash spreads them like any others.
 */
Test(strmap, keys_colliding_under_seeded_fnv_are_spread)
{
    strmap_t m;
    strmap_init(&m);
    char key[8];
    for (int i = 0; i < 128; i++) {
        for (int j = 0; j < 7; j++) key[j] = (char)(i >> j & 1 ? 0xe1 : 0x61);
        key[7] = '\0';
        strmap_put(&m, key, &vals[i]);
    }
    cr_assert_eq(m.count, 128);
    cr_assert_eq(m.nbuckets, 128);
    size_t most = longest_chain(&m);
    cr_assert_leq(most, 12, "a chain of %zu keys out of 128", most);
    for (int i = 0; i < 128; i++) {
        for (int j = 0; j < 7; j++) key[j] = (char)(i >> j & 1 ? 0xe1 : 0x61);
        cr_assert_eq(strmap_get(&m, key), &vals[i], "key %d", i);
    }
    for (int i = 0; i < 128; i += 2) {
        for (int j = 0; j < 7; j++) key[j] = (char)(i >> j & 1 ? 0xe1 : 0x61);
        cr_assert_eq(strmap_del(&m, key), &vals[i], "key %d", i);
    }
    for (int i = 0; i < 128; i++) {
        for (int j = 0; j < 7; j++) key[j] = (char)(i >> j & 1 ? 0xe1 : 0x61);
        cr_assert_eq(strmap_get(&m, key), i % 2 ? &vals[i] : NULL, "key %d", i);
    }
    cr_assert_eq(m.count, 64);
    strmap_free(&m);
}

/* Many ordinary keys (ids that share a long prefix) keep chains short. */
Test(strmap, many_keys_short_chains)
{
    strmap_t m;
    strmap_init(&m);
    char key[64];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "tenant-42/user-%08d", i);
        strmap_put(&m, key, &vals[i]);
    }
    size_t most = longest_chain(&m);
    cr_assert_leq(most, 16, "a chain of %zu keys out of 5000 in %zu buckets", most, m.nbuckets);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "tenant-42/user-%08d", i);
        cr_assert_eq(strmap_get(&m, key), &vals[i], "%s", key);
    }
    strmap_free(&m);
}
