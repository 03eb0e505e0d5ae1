/* Allocation wrappers and error strings shared by every module. */
#include "common.h"

#include <stdio.h>
#include <string.h>

const char *sse_strerror(int code)
{
    switch (code) {
    case SSE_OK: return "ok";
    case SSE_EINVAL: return "invalid input";
    case SSE_EAUTH: return "authentication required";
    case SSE_EFORBID: return "forbidden";
    case SSE_ENOMEM: return "out of memory";
    case SSE_EFULL: return "queue full";
    case SSE_ECANCELED: return "cancelled";
    case SSE_ESHARE: return "share of the queue used up";
    case SSE_EUNAVAIL: return "unavailable";
    default: return "error";
    }
}

static void oom(size_t n)
{
    fprintf(stderr, "ssehub: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p) oom(count * n);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *xstrndup(const char *s, size_t n)
{
    char *d = xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}
