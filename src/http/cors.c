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

/*
 * Writes whole lines only: the origin lines go in when they fit together with the
 * fixed ones, the fixed ones when they fit at all. A cut header would be invalid,
 * and snprintf's results are not summed unchecked: n past outsz would wrap
 * outsz - n and overrun the caller's buffer.
 */
size_t cors_headers(const config_t *cfg, const char *origin, size_t origin_len, char *out,
                    size_t outsz)
{
    static const char fixed[] =
        "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
        "Access-Control-Allow-Headers: Content-Type, Authorization, Last-Event-ID\r\n"
        "Access-Control-Max-Age: 600\r\n"
        "Vary: Origin\r\n";
    if (outsz == 0) return 0;
    out[0] = '\0';
    if (outsz < sizeof fixed) return 0;
    if (!(origin && origin_len > 0 && origin_len <= CONFIG_MAX_ORIGIN_LEN &&
          origin_allowed(cfg, origin, origin_len))) {
        /* As goSSE: name the configured origin anyway; a browser elsewhere still refuses. */
        origin = cfg->norigins ? cfg->origins[0] : NULL;
        origin_len = origin ? strlen(origin) : 0;
    }
    size_t n = 0;
    if (origin && origin_len <= CONFIG_MAX_ORIGIN_LEN) {
        int w = snprintf(out, outsz - (sizeof fixed - 1),
                         "Access-Control-Allow-Origin: %.*s\r\n"
                         "Access-Control-Allow-Credentials: true\r\n",
                         (int)origin_len, origin);
        if (w > 0 && (size_t)w < outsz - (sizeof fixed - 1)) n = (size_t)w;
        else out[0] = '\0'; /* does not fit: no origin rather than half of one */
    }
    memcpy(out + n, fixed, sizeof fixed);
    return n + sizeof fixed - 1;
}
