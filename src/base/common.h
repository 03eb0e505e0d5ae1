/* Small shared helpers: allocation that aborts on exhaustion, container_of, error codes. */
#ifndef SSE_COMMON_H
#define SSE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define SSE_VERSION "0.1.0"

/** Length of caller-supplied error message buffers filled at start-up. */
#define SSE_ERR_LEN 256

/** Return codes: 0 on success, a negative SSE_E* value otherwise. */
enum {
    SSE_OK = 0,
    SSE_ERR = -1,     /* generic failure, message elsewhere */
    SSE_EINVAL = -2,  /* bad input */
    SSE_EAUTH = -3,   /* missing or bad credentials */
    SSE_EFORBID = -4, /* authenticated, but not allowed */
    SSE_ENOMEM = -5,
    SSE_EFULL = -6, /* a bounded queue is full */
    SSE_ECANCELED = -7, /* the requester went away before the work ran */
    SSE_ESHARE = -8,    /* one client already holds its share of a bounded queue */
    SSE_EUNAVAIL = -9,  /* a service the work needs (Redis) cannot be reached now */
};

/** A short English description of an SSE_E* code. */
const char *sse_strerror(int code);

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/** malloc that aborts the process when memory runs out: bounds come from explicit caps. */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
