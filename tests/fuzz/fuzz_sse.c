/* Fuzzes sse_encode(): input = type length, user length, id selector, then type, user, content. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "sse.h"

/* Ids around the digit-count boundaries, where "id: N" sizing could go wrong. */
static const uint64_t ids[] = {0, 1, 9, 10, 99, 100, 999999999, 1000000000, UINT64_MAX - 1,
                               UINT64_MAX, 10000000000000000000ull, 9999999999999999999ull};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    size_t rest = size - 3;
    size_t tlen = data[0] < rest ? data[0] : rest;
    size_t ulen = data[1] < rest - tlen ? data[1] : rest - tlen;
    uint64_t id = ids[data[2] % (sizeof ids / sizeof ids[0])];
    const char *t = (const char *)data + 3, *u = t + tlen, *content = u + ulen;
    size_t clen = rest - tlen - ulen;

    char *type = strndup(t, tlen), *user = strndup(u, ulen);
    char *body = malloc(clen ? clen : 1); /* exactly clen bytes, so ASan sees any overread */
    memcpy(body, content, clen);
    /* The contract asks the caller to vet type (api_broadcast does); user is routing only. */
    if (sse_field_ok(t, tlen)) {
        frame_t *f = sse_encode(id, type, user, body, clen);
        fuzz_check_frame(f, id, type, user, body, clen);
        frame_unref(f);
    }
    free(body);
    free(type);
    free(user);
    return 0;
}
