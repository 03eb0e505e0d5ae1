/* CORS headers: a listed origin is echoed with credentials; "*" lets any other in without them. */
#include "cors.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Whether o (n bytes) is one of the origins ALLOWED_ORIGIN names ("*" names none). */
static int origin_listed(const config_t *cfg, const char *o, size_t n)
{
    for (size_t i = 0; i < n; i++) /* never echo bytes that could split a header */
        if ((unsigned char)o[i] < 0x21 || o[i] == 0x7f) return 0;
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
    bool listed = origin && origin_len > 0 && origin_len <= CONFIG_MAX_ORIGIN_LEN &&
                  origin_listed(cfg, origin, origin_len);
    size_t n = 0;
    if (!listed && cfg->any_origin) {
        /* Any origin may read, but never with the cookie: credentials need a listed origin. */
        static const char any[] = "Access-Control-Allow-Origin: *\r\n";
        if (outsz - (sizeof fixed - 1) > sizeof any - 1) {
            memcpy(out, any, sizeof any - 1);
            n = sizeof any - 1;
        }
        memcpy(out + n, fixed, sizeof fixed);
        return n + sizeof fixed - 1;
    }
    if (!listed) {
        /* As goSSE: name the configured origin anyway; a browser elsewhere still refuses. */
        origin = cfg->norigins ? cfg->origins[0] : NULL;
        origin_len = origin ? strlen(origin) : 0;
    }
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
