/* strmap: put/get/del, replacement, key copies, growth past many keys, removing all. */
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
