/* Base64 as goSSE's tokens and cookies use it, tolerant of the forms that arrive in URLs. */
#ifndef SSE_B64_H
#define SSE_B64_H

#include <stddef.h>

/** Standard padded base64 of len bytes, as a new NUL-terminated string. */
char *b64_encode(const void *in, size_t len);

/**
 * Decodes standard or URL-safe base64, padded or not. Returns a new NUL-terminated
 * buffer and its length in *outlen, or NULL when the input is not base64.
 */
unsigned char *b64_decode(const char *in, size_t len, size_t *outlen);

#endif
