/* CORS: which origin a response names, and the headers that go with it. */
#ifndef SSE_CORS_H
#define SSE_CORS_H

#include <stddef.h>

#include "config.h"

/**
 * Writes the CORS header lines for a request whose Origin header is origin
 * (origin_len bytes; NULL when absent) into out, NUL-terminated; returns their
 * length. An origin ALLOWED_ORIGIN lists is echoed with credentials allowed. Any
 * other, with "*" in ALLOWED_ORIGIN, gets "Access-Control-Allow-Origin: *" and no
 * credentials (browsers then send no cookie and may not read a credentialed
 * answer: the cookie flow needs its origin listed). Otherwise the first configured
 * origin is named (as goSSE always does), which a browser on any other origin
 * refuses; with none configured, no origin. Always adds Vary: Origin and the
 * allowed methods and headers.
 * Never writes more than outsz bytes and returns less than outsz: lines that do
 * not fit are left out whole (first the origin ones; with outsz too small even
 * for the fixed ones, out is "" and 0 is returned).
 */
size_t cors_headers(const config_t *cfg, const char *origin, size_t origin_len, char *out,
                    size_t outsz);

#endif
