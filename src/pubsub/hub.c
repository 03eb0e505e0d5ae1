/* Subscription index and fan-out: the product's core. */
#include "hub.h"

#include <string.h>

#include "common.h"

/** A keyed list (one user's subs, or one type's subs), owned by its map entry. */
typedef struct hub_list {
    list_node_t head;
    size_t count;
    char key[]; /* kept so an empty list can remove itself from its map */
} hub_list_t;

void hub_init(hub_t *h, hub_deliver_fn deliver)
{
    memset(h, 0, sizeof *h);
    list_init(&h->all);
    list_init(&h->unfiltered);
    strmap_init(&h->by_type);
    strmap_init(&h->by_user);
    h->deliver = deliver;
}

static void free_lists(strmap_t *m)
{
    for (size_t i = 0; i < m->nbuckets; i++)
        for (strmap_entry_t *e = m->buckets[i]; e; e = e->next) free(e->value);
    strmap_free(m);
}

void hub_free(hub_t *h)
{
    free_lists(&h->by_type);
    free_lists(&h->by_user);
}

static void join(strmap_t *m, const char *key, hub_node_t *n)
{
    hub_list_t *l = strmap_get(m, key);
    if (!l) {
        size_t kl = strlen(key) + 1;
        l = xmalloc(sizeof *l + kl);
        list_init(&l->head);
        l->count = 0;
        memcpy(l->key, key, kl);
        strmap_put(m, key, l);
    }
    list_push_back(&l->head, &n->link);
    l->count++;
}

static void leave(hub_t *h, strmap_t *m, const char *key, hub_node_t *n)
{
    hub_list_t *l = strmap_get(m, key);
    list_unlink(&n->link);
    if (l && --l->count == 0 && l != h->walking) {
        strmap_del(m, key);
        free(l);
    }
}

void hub_add(hub_t *h, sub_t *s)
{
    list_push_back(&h->all, &s->all.link);
    if (s->user) join(&h->by_user, s->user, &s->user_node);
    if (s->ntypes == 0 && !s->strict) list_push_back(&h->unfiltered, &s->nodes[0].link);
    for (uint32_t i = 0; i < s->ntypes; i++) join(&h->by_type, s->types[i], &s->nodes[i]);
    h->nsubs++;
}

void hub_remove(hub_t *h, sub_t *s)
{
    if (!list_linked(&s->all.link)) return;
    list_remove(&s->all.link);
    if (s->user) leave(h, &h->by_user, s->user, &s->user_node);
    if (s->ntypes == 0) list_unlink(&s->nodes[0].link); /* no-op when strict kept it out */
    for (uint32_t i = 0; i < s->ntypes; i++) leave(h, &h->by_type, s->types[i], &s->nodes[i]);
    h->nsubs--;
}

/*
 * Delivers f to every node of one list; the callback may unlink the node it is
 * given. Only a user's list holds subs that may refuse a type (strict tokens).
 */
static size_t walk(hub_t *h, list_node_t *head, frame_t *f, bool check_type)
{
    size_t n = 0;
    list_node_t *pos, *tmp;
    list_for_each_safe(pos, tmp, head)
    {
        sub_t *s = container_of(pos, hub_node_t, link)->sub;
        if (s->replaying || (s->floor && f->id <= s->floor)) continue; /* replayed, or already had */
        if (check_type && s->strict && f->type && !sub_wants_type(s, f->type)) continue;
        h->deliver(s->owner, f);
        n++;
    }
    return n;
}

static size_t walk_keyed(hub_t *h, strmap_t *m, const char *key, frame_t *f)
{
    hub_list_t *l = strmap_get(m, key);
    if (!l) return 0;
    h->walking = l;
    size_t n = walk(h, &l->head, f, m == &h->by_user);
    h->walking = NULL;
    if (l->count == 0) {
        strmap_del(m, key);
        free(l);
    }
    return n;
}

size_t hub_publish(hub_t *h, frame_t *f)
{
    if (f->user) return walk_keyed(h, &h->by_user, f->user, f);
    if (f->type) return walk_keyed(h, &h->by_type, f->type, f) + walk(h, &h->unfiltered, f, false);
    return walk(h, &h->all, f, false);
}

void hub_for_each(hub_t *h, void (*fn)(sub_t *s, void *arg), void *arg)
{
    list_node_t *pos, *tmp;
    list_for_each_safe(pos, tmp, &h->all) fn(container_of(pos, hub_node_t, link)->sub, arg);
}
