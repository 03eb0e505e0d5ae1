/* Request credentials: the query parameter, the cookie or the Bearer header, then auth's checks. */
#include "auth_request.h"

#include <string.h>
#include <strings.h>

int auth_request(const config_t *cfg, const http_request_t *req, time_t now, int bearer_only,
                 identity_t *id)
{
    memset(id, 0, sizeof *id);
    id->ntypes = -1;
    if (!bearer_only) {
        char *wrapped = http_query_param(req, "token", 0);
        if (!wrapped) wrapped = http_cookie(req, "sse_token");
        if (wrapped) {
            int rc = auth_wrapper(cfg, wrapped, strlen(wrapped), now, id);
            free(wrapped);
            return rc;
        }
    }
    size_t n;
    const char *h = http_header(req, "authorization", &n);
    if (!h || n < 7 || strncasecmp(h, "Bearer ", 7) != 0 || n - 7 > AUTH_MAX_TOKEN)
        return SSE_EAUTH;
    char tok[AUTH_MAX_TOKEN + 1];
    const char *t = h + 7;
    size_t tl = n - 7;
    while (tl && *t == ' ') t++, tl--;
    memcpy(tok, t, tl);
    tok[tl] = '\0';
    return auth_bearer(cfg, tok, now, id);
}
