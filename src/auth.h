/* Accounts, roles and tokens: login checks, JWT issue and verify, goSSE's token wrappers. */
#ifndef SSE_AUTH_H
#define SSE_AUTH_H

#include <stddef.h>
#include <time.h>

#include "config.h"
#include "http.h"

#define AUTH_MAX_TOKEN 8192

/** Who made a request: the account's role and name, and the stream's user id. */
typedef struct identity {
    enum role role;
    char username[128];
    char *user_id; /* new string; "" when the request named none */
} identity_t;

void identity_free(identity_t *id);

/**
 * Checks a username and password against every account, taking the same time
 * whether or not the name exists. Returns the account or NULL.
 */
const account_t *auth_check_password(const config_t *cfg, const char *user, const char *pass);

/** A new HS256 JWT for username that expires at exp (unix time), or NULL on failure. */
char *auth_issue_token(const config_t *cfg, const char *username, time_t now, time_t exp);

/**
 * Verifies a JWT: signature with SSE_APP_KEY, algorithm fixed to HS256 (never what
 * the token says, never "none"), not expired at now, username naming an account.
 * On success fills id->role and id->username and returns 0; else SSE_EAUTH.
 */
int auth_verify_token(const config_t *cfg, const char *jwt, time_t now, identity_t *id);

/**
 * Decodes goSSE's wrapper: base64 (standard or URL-safe, padded or not) of JSON
 * {"token": "<JWT>", "id": "<user id>"}. Returns 0 and new strings in *jwt and
 * *user_id ("" when id is absent or null), or SSE_EINVAL.
 */
int auth_decode_wrapper(const char *b64, size_t len, char **jwt, char **user_id);

/**
 * Authenticates a request as goSSE does, first match wins: the "token" query
 * parameter, the sse_token cookie, then "Authorization: Bearer". Returns 0 with
 * *id filled (free with identity_free), SSE_EAUTH when no credential is usable.
 * With bearer_only, only the Authorization header counts (publishing, admin).
 */
int auth_request(const config_t *cfg, const http_request_t *req, time_t now, int bearer_only,
                 identity_t *id);

/** The name of a role for logs and JSON: "subscriber", "publisher" or "admin". */
const char *auth_role_name(enum role r);

#endif
