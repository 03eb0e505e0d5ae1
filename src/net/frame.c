/* Immutable refcounted frames. */
#include "frame.h"

#include <string.h>

#include "common.h"

frame_t *frame_alloc(size_t len, const char *type, const char *user)
{
    size_t tl = type ? strlen(type) + 1 : 0, ul = user ? strlen(user) + 1 : 0;
    frame_t *f = xmalloc(sizeof *f + len + tl + ul);
    atomic_init(&f->refs, 1);
    f->len = (uint32_t)len;
    f->id = 0;
    char *p = f->data + len;
    f->type = type ? memcpy(p, type, tl) : NULL;
    f->user = user ? memcpy(p + tl, user, ul) : NULL;
    return f;
}

frame_t *frame_new(const void *bytes, size_t len)
{
    frame_t *f = frame_alloc(len, NULL, NULL);
    memcpy(f->data, bytes, len);
    return f;
}

void frame_unref(frame_t *f)
{
    /* Release pairs with the acquire below so the freeing thread sees every write. */
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_release) == 1) {
        atomic_thread_fence(memory_order_acquire);
        free(f);
    }
}
