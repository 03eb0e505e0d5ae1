/* Who made a request: goSSE's three places for a credential, read from the HTTP request. */
#ifndef SSE_AUTH_REQUEST_H
#define SSE_AUTH_REQUEST_H

#include <time.h>

#include "auth.h"
#include "config.h"
#include "http.h"

/**
 * Authenticates a request as goSSE does, first match wins: the "token" query
 * parameter, the sse_token cookie (both goSSE's wrapper, see auth_wrapper), then
 * "Authorization: Bearer" (auth_bearer). Returns 0 with *id filled (free with
 * identity_free), SSE_EAUTH when no credential is usable. With bearer_only, only
 * the Authorization header counts (publishing, admin).
 */
int auth_request(const config_t *cfg, const http_request_t *req, time_t now, int bearer_only,
                 identity_t *id);

#endif
