/* Shared by the fuzz drivers: a check that aborts (libFuzzer keeps the input) and the SSE frame checks. */
#ifndef SSE_FUZZ_CHECK_H
#define SSE_FUZZ_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "sse.h"

/* A broken invariant is a finding: say which, then abort so libFuzzer saves the input. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* True when the n bytes at p start with the NUL-terminated prefix. */
static inline int fuzz_starts(const char *p, size_t n, const char *prefix)
{
    size_t pl = strlen(prefix);
    return n >= pl && memcmp(p, prefix, pl) == 0;
}

/*
 * Checks a frame from sse_encode(id, type, user, content, len): its length is what
 * sse_encoded_len() promised, it holds no CR, every line is "id: ", "event: " or
 * "data: ", it ends with the blank line, the routing fields match, there is one
 * "data:" line per content line (CRLF, LF and CR each end one), and the data lines
 * joined with LF give back the content with its line breaks normalised to LF.
 */
static inline void fuzz_check_frame(const frame_t *f, uint64_t id, const char *type,
                                    const char *user, const char *content, size_t len)
{
    int has_type = type && *type, has_user = user && *user;
    FUZZ_CHECK(f->len == sse_encoded_len(id, has_type ? type : NULL, content, len));
    FUZZ_CHECK(f->id == id);
    FUZZ_CHECK(has_type ? f->type && strcmp(f->type, type) == 0 : f->type == NULL);
    FUZZ_CHECK(has_user ? f->user && strcmp(f->user, user) == 0 : f->user == NULL);
    FUZZ_CHECK(memchr(f->data, '\r', f->len) == NULL);
    FUZZ_CHECK(f->len >= 2 && f->data[f->len - 1] == '\n' && f->data[f->len - 2] == '\n');

    size_t breaks = 0; /* line breaks in content, CRLF counted once */
    for (size_t i = 0; i < len; i++) {
        if (content[i] == '\n') breaks++;
        else if (content[i] == '\r') {
            breaks++;
            if (i + 1 < len && content[i + 1] == '\n') i++;
        }
    }

    /* Walk the lines before the final blank one; content is compared as we go. */
    const char *p = f->data, *end = f->data + f->len - 1;
    size_t lineno = 0, ndata = 0, ci = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        FUZZ_CHECK(nl != NULL);
        size_t n = (size_t)(nl - p);
        if (lineno == 0) {
            char want[32];
            int wn = snprintf(want, sizeof want, "id: %llu", (unsigned long long)id);
            FUZZ_CHECK(n == (size_t)wn && memcmp(p, want, n) == 0);
        } else if (lineno == 1 && has_type) {
            FUZZ_CHECK(fuzz_starts(p, n, "event: "));
            FUZZ_CHECK(n == 7 + strlen(type) && memcmp(p + 7, type, n - 7) == 0);
        } else {
            FUZZ_CHECK(fuzz_starts(p, n, "data: "));
            if (ndata > 0) { /* the break that ended the previous line */
                FUZZ_CHECK(ci < len && (content[ci] == '\n' || content[ci] == '\r'));
                if (content[ci] == '\r' && ci + 1 < len && content[ci + 1] == '\n') ci++;
                ci++;
            }
            FUZZ_CHECK(n - 6 <= len - ci && memcmp(p + 6, content + ci, n - 6) == 0);
            ci += n - 6;
            ndata++;
        }
        lineno++;
        p = nl + 1;
    }
    FUZZ_CHECK(ci == len);
    FUZZ_CHECK(ndata == breaks + 1);
    FUZZ_CHECK(lineno == ndata + 1 + (has_type ? 1 : 0));
}

#endif
