/* The read filter shared by the store backends: store_filter_t's rules, in one place. */
#include "store_filter.h"

#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

size_t store_match_size(const store_filter_t *f)
{
    const char *user = f && f->user ? f->user : "";
    uint32_t nt = f ? f->ntypes : 0;
    size_t len = nt * sizeof(char *) + strlen(user) + 1;
    for (uint32_t i = 0; i < nt; i++) len += f->types[i] ? strlen(f->types[i]) + 1 : 0;
    return len;
}

void store_match_copy(store_match_t *m, const store_filter_t *f, void *buf)
{
    const char *user = f && f->user ? f->user : "";
    uint32_t nt = f ? f->ntypes : 0;
    const char **types = buf;
    char *p = (char *)(types + nt);
    m->user = memcpy(p, user, strlen(user) + 1);
    p += strlen(user) + 1;
    uint32_t n = 0;
    for (uint32_t i = 0; i < nt; i++) {
        const char *t = f->types[i];
        if (!t || !t[0]) continue;
        types[n++] = memcpy(p, t, strlen(t) + 1);
        p += strlen(t) + 1;
    }
    qsort(types, n, sizeof *types, cmp_str);
    uint32_t d = 0;
    for (uint32_t i = 0; i < n; i++)
        if (d == 0 || strcmp(types[d - 1], types[i]) != 0) types[d++] = types[i];
    m->types = types;
    m->ntypes = d;
    m->strict = f && f->strict;
    m->all_types = !m->strict && nt == 0;
}

bool store_match_type(const store_match_t *m, const char *t)
{
    return !t || !t[0] || bsearch(&t, m->types, m->ntypes, sizeof *m->types, cmp_str);
}

bool store_match_event(const store_match_t *m, const char *type, const char *user)
{
    if (user && user[0]) /* addressed: to this user only, its type bound only when strict */
        return m->user[0] && strcmp(user, m->user) == 0 && (!m->strict || store_match_type(m, type));
    return m->all_types || store_match_type(m, type);
}
