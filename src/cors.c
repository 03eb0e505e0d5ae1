/* CORS headers for credentialed requests: the request's origin is echoed only when allowed. */
#include "cors.h"

#include <stdio.h>
#include <string.h>

static int origin_allowed(const config_t *cfg, const char *o, size_t n)
{
    for (size_t i = 0; i < n; i++) /* never echo bytes that could split a header */
        if ((unsigned char)o[i] < 0x21 || o[i] == 0x7f) return 0;
    if (cfg->any_origin) return 1;
    for (int i = 0; i < cfg->norigins; i++)
        if (strlen(cfg->origins[i]) == n && memcmp(cfg->origins[i], o, n) == 0) return 1;
    return 0;
}

size_t cors_headers(const config_t *cfg, const char *origin, size_t origin_len, char *out,
                    size_t outsz)
{
    int n = 0;
    if (!(origin && origin_len > 0 && origin_len < 512 && origin_allowed(cfg, origin, origin_len))) {
        /* As goSSE: name the configured origin anyway; a browser elsewhere still refuses. */
        origin = cfg->norigins ? cfg->origins[0] : NULL;
        origin_len = origin ? strlen(origin) : 0;
    }
    if (origin)
        n = snprintf(out, outsz,
                     "Access-Control-Allow-Origin: %.*s\r\n"
                     "Access-Control-Allow-Credentials: true\r\n",
                     (int)origin_len, origin);
    n += snprintf(out + n, outsz - (size_t)n,
                  "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
                  "Access-Control-Allow-Headers: Content-Type, Authorization, Last-Event-ID\r\n"
                  "Access-Control-Max-Age: 600\r\n"
                  "Vary: Origin\r\n");
    return (size_t)n;
}
