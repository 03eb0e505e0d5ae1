/* Base64 on OpenSSL's block coder, with the URL-safe alphabet and missing padding mapped first. */
#include "b64.h"

#include <openssl/evp.h>
#include <string.h>

#include "common.h"

char *b64_encode(const void *in, size_t len)
{
    char *out = xmalloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

unsigned char *b64_decode(const char *in, size_t len, size_t *outlen)
{
    if (len > (1u << 24)) return NULL;
    while (len > 0 && in[len - 1] == '=') len--; /* padding is re-added below */
    if (len % 4 == 1) return NULL;
    size_t padded = (len + 3) / 4 * 4;
    char *norm = xmalloc(padded + 1);
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '-') c = '+';
        else if (c == '_') c = '/';
        else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '+' || c == '/')) {
            free(norm);
            return NULL;
        }
        norm[i] = c;
    }
    size_t pad = padded - len;
    memset(norm + len, '=', pad);
    unsigned char *out = xmalloc(padded / 4 * 3 + 1);
    int n = padded ? EVP_DecodeBlock(out, (unsigned char *)norm, (int)padded) : 0;
    free(norm);
    if (n < 0) {
        free(out);
        return NULL;
    }
    *outlen = (size_t)n - pad; /* EVP_DecodeBlock counts the padding as zero bytes */
    out[*outlen] = '\0';
    return out;
}
