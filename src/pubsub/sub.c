/* Subscription filters: one allocation holds the struct, its index nodes and its strings. */
#include "sub.h"

#include <string.h>

#include "common.h"

/* True when types[i] already appears before i. */
static bool seen_before(const char *const *types, uint32_t i)
{
    for (uint32_t k = 0; k < i; k++)
        if (strcmp(types[k], types[i]) == 0) return true;
    return false;
}

sub_t *sub_new(void *owner, const char *user, const char *const *all_types, uint32_t nall,
               bool strict)
{
    const char *types[SUB_MAX_TYPES];
    uint32_t ntypes = 0;
    for (uint32_t i = 0; i < nall && ntypes < SUB_MAX_TYPES; i++)
        if (!seen_before(all_types, i)) types[ntypes++] = all_types[i];
    uint32_t nnodes = ntypes ? ntypes : 1;
    size_t strbytes = user && *user ? strlen(user) + 1 : 0;
    for (uint32_t i = 0; i < ntypes; i++) strbytes += strlen(types[i]) + 1;
    size_t head = sizeof(sub_t) + nnodes * sizeof(hub_node_t);
    size_t ptrs = ntypes * sizeof(char *);
    sub_t *s = xcalloc(1, head + ptrs + strbytes);
    s->owner = owner;
    s->ntypes = (uint8_t)ntypes;
    s->strict = strict;
    s->types = ntypes ? (char **)((char *)s + head) : NULL;
    char *p = (char *)s + head + ptrs;
    if (user && *user) {
        size_t n = strlen(user) + 1;
        s->user = memcpy(p, user, n);
        p += n;
    }
    for (uint32_t i = 0; i < ntypes; i++) {
        size_t n = strlen(types[i]) + 1;
        s->types[i] = memcpy(p, types[i], n);
        p += n;
    }
    s->all.sub = s->user_node.sub = s;
    for (uint32_t i = 0; i < nnodes; i++) s->nodes[i].sub = s;
    return s;
}

bool sub_wants_type(const sub_t *s, const char *type)
{
    if (s->ntypes == 0) return !s->strict;
    for (uint32_t i = 0; i < s->ntypes; i++)
        if (strcmp(s->types[i], type) == 0) return true;
    return false;
}

void sub_free(sub_t *s)
{
    free(s);
}
