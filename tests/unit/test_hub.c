/* hub/sub: event routing by type and user, removal during delivery, hub_remove and hub_for_each. */
#include <criterion/criterion.h>
#include <string.h>

#include "hub.h"
#include "sse.h"

/* The owner of a test sub: counts deliveries; may remove its sub when it receives a frame. */
typedef struct owner {
    int hits;
    int remove_on_delivery;
    sub_t *sub;
} owner_t;

static hub_t hub;
static owner_t owners[16];
static int order[64], norder;

static void deliver(void *o, frame_t *f)
{
    (void)f;
    owner_t *ow = o;
    ow->hits++;
    if (norder < 64) order[norder++] = (int)(ow - owners);
    if (ow->remove_on_delivery) hub_remove(&hub, ow->sub);
}

static void setup(void)
{
    memset(owners, 0, sizeof owners);
    norder = 0;
    hub_init(&hub, deliver);
}

static void teardown(void)
{
    for (int i = 0; i < 16; i++) {
        if (owners[i].sub) {
            hub_remove(&hub, owners[i].sub);
            sub_free(owners[i].sub);
        }
    }
    hub_free(&hub);
}

/* Adds sub i with user (may be NULL) and a NULL-terminated list of types. */
static sub_t *add(int i, const char *user, const char *t0, const char *t1, const char *t2)
{
    const char *types[3] = {NULL, NULL, NULL};
    uint32_t n = 0;
    if (t0) types[n++] = t0;
    if (t1) types[n++] = t1;
    if (t2) types[n++] = t2;
    owners[i].sub = sub_new(&owners[i], user, types, n, false);
    hub_add(&hub, owners[i].sub);
    return owners[i].sub;
}

static size_t publish(const char *type, const char *user)
{
    frame_t *f = sse_encode(1, type, user, "x", 1);
    size_t n = hub_publish(&hub, f);
    frame_unref(f);
    return n;
}

static void reset_hits(void)
{
    for (int i = 0; i < 16; i++) owners[i].hits = 0;
    norder = 0;
}

/* hits must equal want[0..n) for owners 0..n-1. */
static void expect_hits(const int *want, int n)
{
    for (int i = 0; i < n; i++)
        cr_assert_eq(owners[i].hits, want[i], "owner %d: %d hits, want %d", i, owners[i].hits,
                     want[i]);
}

/* 0: no filter, no user; 1: type a; 2: types a,b; 3: type b; 4: user u1, no filter;
 * 5: user u1, type c; 6: user u2, type a */
static void standard_subs(void)
{
    add(0, NULL, NULL, NULL, NULL);
    add(1, NULL, "a", NULL, NULL);
    add(2, NULL, "a", "b", NULL);
    add(3, "", "b", NULL, NULL);
    add(4, "u1", NULL, NULL, NULL);
    add(5, "u1", "c", NULL, NULL);
    add(6, "u2", "a", NULL, NULL);
}

TestSuite(hub, .init = setup, .fini = teardown);

Test(hub, sub_new_copies_filter)
{
    char user[] = "alice", t1[] = "x", t2[] = "yy";
    const char *types[] = {t1, t2};
    sub_t *s = sub_new(&owners[0], user, types, 2, false);
    user[0] = t1[0] = t2[0] = 'Z';
    cr_assert_str_eq(s->user, "alice");
    cr_assert_eq(s->ntypes, 2);
    cr_assert_str_eq(s->types[0], "x");
    cr_assert_str_eq(s->types[1], "yy");
    cr_assert_eq(s->owner, &owners[0]);
    sub_free(s);

    s = sub_new(&owners[0], "", NULL, 0, false);
    cr_assert_null(s->user);
    cr_assert_eq(s->ntypes, 0);
    sub_free(s);
}

Test(hub, untyped_event_reaches_every_sub)
{
    standard_subs();
    cr_assert_eq(hub.nsubs, 7);
    cr_assert_eq(publish(NULL, NULL), 7);
    int want[] = {1, 1, 1, 1, 1, 1, 1};
    expect_hits(want, 7);
    /* in index (insertion) order */
    for (int i = 0; i < 7; i++) cr_assert_eq(order[i], i);
}

Test(hub, typed_event_reaches_type_and_unfiltered)
{
    standard_subs();
    cr_assert_eq(publish("a", NULL), 5);
    int want_a[] = {1, 1, 1, 0, 1, 0, 1};
    expect_hits(want_a, 7);

    reset_hits();
    cr_assert_eq(publish("b", NULL), 4);
    int want_b[] = {1, 0, 1, 1, 1, 0, 0};
    expect_hits(want_b, 7);

    reset_hits();
    cr_assert_eq(publish("c", NULL), 3);
    int want_c[] = {1, 0, 0, 0, 1, 1, 0};
    expect_hits(want_c, 7);

    reset_hits();
    cr_assert_eq(publish("nobody", NULL), 2);
    int want_n[] = {1, 0, 0, 0, 1, 0, 0};
    expect_hits(want_n, 7);
}

Test(hub, sub_with_several_types_gets_event_once)
{
    add(0, NULL, "a", "b", "c");
    cr_assert_eq(publish("b", NULL), 1);
    cr_assert_eq(owners[0].hits, 1);
    cr_assert_eq(publish("c", NULL), 1);
    cr_assert_eq(owners[0].hits, 2);
    cr_assert_eq(publish(NULL, NULL), 1);
    cr_assert_eq(owners[0].hits, 3);
}

Test(hub, user_event_reaches_only_that_user_whatever_types)
{
    standard_subs();
    cr_assert_eq(publish(NULL, "u1"), 2);
    int want[] = {0, 0, 0, 0, 1, 1, 0};
    expect_hits(want, 7);

    reset_hits();
    /* a type on a user event does not narrow it to that type */
    cr_assert_eq(publish("a", "u1"), 2);
    expect_hits(want, 7);

    reset_hits();
    cr_assert_eq(publish("zzz", "u2"), 1);
    int want2[] = {0, 0, 0, 0, 0, 0, 1};
    expect_hits(want2, 7);

    reset_hits();
    cr_assert_eq(publish(NULL, "nobody"), 0);
    int none[] = {0, 0, 0, 0, 0, 0, 0};
    expect_hits(none, 7);
}

Test(hub, remove_then_publish_not_delivered)
{
    standard_subs();
    hub_remove(&hub, owners[0].sub);
    hub_remove(&hub, owners[2].sub);
    hub_remove(&hub, owners[5].sub);
    hub_remove(&hub, owners[5].sub); /* twice is harmless */
    cr_assert_eq(hub.nsubs, 4);
    cr_assert_eq(publish(NULL, NULL), 4);
    int want[] = {0, 1, 0, 1, 1, 0, 1};
    expect_hits(want, 7);
    reset_hits();
    cr_assert_eq(publish("a", NULL), 3);
    int want_a[] = {0, 1, 0, 0, 1, 0, 1};
    expect_hits(want_a, 7);
    reset_hits();
    cr_assert_eq(publish("c", NULL), 1); /* only unfiltered sub 4 is left for c */
    cr_assert_eq(owners[4].hits, 1);
    reset_hits();
    cr_assert_eq(publish(NULL, "u1"), 1);
    cr_assert_eq(owners[4].hits, 1);
    cr_assert_eq(owners[5].hits, 0);
}

Test(hub, removing_last_sub_of_keyed_lists_frees_them)
{
    add(0, "u", "t", NULL, NULL);
    cr_assert_eq(hub.by_user.count, 1);
    cr_assert_eq(hub.by_type.count, 1);
    hub_remove(&hub, owners[0].sub);
    cr_assert_eq(hub.by_user.count, 0);
    cr_assert_eq(hub.by_type.count, 0);
    cr_assert_eq(hub.nsubs, 0);
    cr_assert_eq(publish("t", NULL), 0);
    cr_assert_eq(publish(NULL, "u"), 0);
    /* re-adding works */
    hub_add(&hub, owners[0].sub);
    cr_assert_eq(publish("t", NULL), 1);
    cr_assert_eq(publish(NULL, "u"), 1);
    cr_assert_eq(owners[0].hits, 2);
}

Test(hub, deliver_removes_its_sub_untyped)
{
    standard_subs();
    for (int i = 0; i < 7; i++) owners[i].remove_on_delivery = i % 2 == 0;
    cr_assert_eq(publish(NULL, NULL), 7);
    cr_assert_eq(hub.nsubs, 3);
    reset_hits();
    cr_assert_eq(publish(NULL, NULL), 3);
    int want[] = {0, 1, 0, 1, 0, 1, 0};
    expect_hits(want, 7);
}

Test(hub, deliver_removes_every_sub)
{
    standard_subs();
    for (int i = 0; i < 7; i++) owners[i].remove_on_delivery = 1;
    cr_assert_eq(publish(NULL, NULL), 7);
    cr_assert_eq(hub.nsubs, 0);
    cr_assert_eq(hub.by_user.count, 0);
    cr_assert_eq(hub.by_type.count, 0);
    cr_assert(list_empty(&hub.all));
    cr_assert(list_empty(&hub.unfiltered));
    reset_hits();
    cr_assert_eq(publish(NULL, NULL), 0);
    cr_assert_eq(publish("a", NULL), 0);
}

Test(hub, deliver_removes_last_sub_of_type_list)
{
    add(0, NULL, "a", "b", NULL);
    add(1, NULL, NULL, NULL, NULL);
    owners[0].remove_on_delivery = 1;
    owners[1].remove_on_delivery = 1;
    cr_assert_eq(publish("a", NULL), 2);
    cr_assert_eq(hub.nsubs, 0);
    cr_assert_eq(hub.by_type.count, 0, "empty type lists must be freed after the walk");
    cr_assert_null(hub.walking);
    reset_hits();
    cr_assert_eq(publish("a", NULL), 0);
    cr_assert_eq(publish("b", NULL), 0);
    /* a new sub of the same type after the list was freed */
    owners[0].remove_on_delivery = 0;
    hub_add(&hub, owners[0].sub);
    cr_assert_eq(publish("a", NULL), 1);
    cr_assert_eq(owners[0].hits, 1);
}

Test(hub, deliver_removes_last_sub_of_user_list)
{
    add(0, "u1", "x", NULL, NULL);
    add(1, "u1", NULL, NULL, NULL);
    add(2, "u2", NULL, NULL, NULL);
    owners[0].remove_on_delivery = 1;
    owners[1].remove_on_delivery = 1;
    cr_assert_eq(publish(NULL, "u1"), 2);
    cr_assert_eq(hub.nsubs, 1);
    cr_assert_eq(hub.by_user.count, 1);
    cr_assert_null(strmap_get(&hub.by_user, "u1"));
    cr_assert_eq(hub.by_type.count, 0);
    reset_hits();
    cr_assert_eq(publish(NULL, "u1"), 0);
    cr_assert_eq(publish(NULL, NULL), 1);
    cr_assert_eq(owners[2].hits, 1);
}

Test(hub, deliver_removes_some_of_user_list)
{
    add(0, "u", NULL, NULL, NULL);
    add(1, "u", NULL, NULL, NULL);
    add(2, "u", NULL, NULL, NULL);
    owners[1].remove_on_delivery = 1;
    cr_assert_eq(publish(NULL, "u"), 3);
    reset_hits();
    cr_assert_eq(publish(NULL, "u"), 2);
    int want[] = {1, 0, 1};
    expect_hits(want, 3);
}

static void count_and_maybe_remove(sub_t *s, void *arg)
{
    int *n = arg;
    (*n)++;
    owner_t *o = s->owner;
    o->hits++;
    if (o->remove_on_delivery) hub_remove(&hub, s);
}

Test(hub, for_each_visits_every_sub_and_allows_removal)
{
    standard_subs();
    int n = 0;
    hub_for_each(&hub, count_and_maybe_remove, &n);
    cr_assert_eq(n, 7);
    int want[] = {1, 1, 1, 1, 1, 1, 1};
    expect_hits(want, 7);

    for (int i = 0; i < 7; i++) owners[i].remove_on_delivery = i >= 3;
    n = 0;
    hub_for_each(&hub, count_and_maybe_remove, &n);
    cr_assert_eq(n, 7);
    cr_assert_eq(hub.nsubs, 3);
    n = 0;
    hub_for_each(&hub, count_and_maybe_remove, &n);
    cr_assert_eq(n, 3);
}

Test(hub, for_each_on_empty_hub)
{
    int n = 0;
    hub_for_each(&hub, count_and_maybe_remove, &n);
    cr_assert_eq(n, 0);
}

Test(hub, repeated_type_joins_once_and_delivers_once)
{
    const char *types[] = {"a", "a", "b", "a"};
    owners[0].sub = sub_new(&owners[0], NULL, types, 4, false);
    cr_assert_eq(owners[0].sub->ntypes, 2);
    hub_add(&hub, owners[0].sub);
    cr_assert_eq(publish("a", NULL), 1);
    cr_assert_eq(owners[0].hits, 1);
}

Test(hub, repeated_type_with_removal_on_delivery)
{
    const char *types[] = {"a", "a"};
    owners[0].sub = sub_new(&owners[0], NULL, types, 2, false);
    owners[0].remove_on_delivery = 1;
    hub_add(&hub, owners[0].sub);
    add(1, NULL, "a", NULL, NULL);
    cr_assert_eq(publish("a", NULL), 2);
    cr_assert_eq(owners[0].hits, 1);
    cr_assert_eq(owners[1].hits, 1);
}

Test(hub, ids_at_or_below_the_floor_are_skipped)
{
    sub_t *s = add(0, NULL, NULL, NULL, NULL);
    s->floor = 5;
    for (uint64_t id = 4; id <= 7; id++) {
        frame_t *f = sse_encode(id, NULL, NULL, "x", 1);
        hub_publish(&hub, f);
        frame_unref(f);
    }
    cr_assert_eq(owners[0].hits, 2, "ids 6 and 7 only");
}
