/* Accounts, roles and tokens: login checks, JWT issue and verify, goSSE's token wrappers. */
#ifndef SSE_AUTH_H
#define SSE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config.h"

#define AUTH_MAX_TOKEN 8192
/** Largest SSE_JWT_PUBLIC_KEY file read; a larger one is refused at start-up. */
#define AUTH_MAX_KEY_FILE (1024 * 1024)

#define AUTH_MAX_TYPES 32
/**
 * Seconds a token's "nbf" may lie in the future and still be accepted: the clocks
 * of an identity provider and of this server are never quite the same.
 */
#define AUTH_NBF_LEEWAY 30

/**
 * Who made a request: the role, the account (or the external issuer's subject),
 * the stream's user id, and what the token itself restricts.
 */
typedef struct identity {
    enum role role;
    char username[128];
    char *user_id;  /* new string; "" when the request named none */
    char *sub;      /* the token's signed user id, or NULL (old goSSE tokens) */
    char *types[AUTH_MAX_TYPES]; /* the token's "types" claim: the only types it may ask for */
    int ntypes;     /* -1: no such claim */
    long exp;       /* the token's expiry, unix time */
} identity_t;

/** What a new token says: the account, its signed user id and its limits. */
typedef struct token_claims {
    const char *username;
    const char *sub;            /* NULL: no user id is signed in (goSSE's tokens) */
    const char *const *types;   /* with ntypes >= 0: a "types" claim */
    int ntypes;                 /* -1: no "types" claim */
    enum role role;             /* ROLE_NONE: the account's own role */
    time_t iat, exp;
} token_claims_t;

void identity_free(identity_t *id);

/**
 * Reads SSE_JWT_PUBLIC_KEY (when set) into cfg->jwt_public_pem and picks the one
 * algorithm its tokens may use: RS256 for an RSA key, ES256 for an EC P-256 key.
 * The file is read whole; one over AUTH_MAX_KEY_FILE bytes or holding a NUL byte
 * is refused. Returns 0, or SSE_EINVAL with one line naming the variable in err.
 */
int auth_load_public_key(config_t *cfg, char err[SSE_ERR_LEN]);

/**
 * Checks a username and password against every account, taking the same time
 * whether or not the name exists. Returns the account or NULL.
 */
const account_t *auth_check_password(const config_t *cfg, const char *user, const char *pass);

/** A new HS256 JWT with these claims, or NULL on failure. */
char *auth_issue_token(const config_t *cfg, const token_claims_t *claims);

/**
 * Verifies a JWT. HS256 tokens: signed with SSE_APP_KEY, "username" naming an
 * account; their role is the account's, lowered by a "role" claim. With
 * SSE_JWT_PUBLIC_KEY, tokens of that key's algorithm (RS256 or ES256) signed by it
 * are also accepted: subscribers, with a required "sub". The algorithm is fixed
 * by configuration, never by the token; "none" is always refused. "exp" is
 * required and must be after now; "nbf", when present, must be a number at most
 * now + AUTH_NBF_LEEWAY. Tokens of the public key must also carry "iss" equal to
 * SSE_JWT_ISSUER and an "aud" (a string, or an array of strings) holding
 * SSE_JWT_AUDIENCE, each when set. On success fills role, username, sub, types and
 * exp (user_id stays NULL) and returns 0; else SSE_EAUTH. Free with identity_free.
 */
int auth_verify_token(const config_t *cfg, const char *jwt, time_t now, identity_t *id);

/** True when the identity's token allows subscribing to type. */
bool auth_type_allowed(const identity_t *id, const char *type);

/**
 * Decodes goSSE's wrapper: base64 (standard or URL-safe, padded or not) of JSON
 * {"token": "<JWT>", "id": "<user id>"}. Returns 0 and new strings in *jwt and
 * *user_id ("" when id is absent or null), or SSE_EINVAL.
 */
int auth_decode_wrapper(const char *b64, size_t len, char **jwt, char **user_id);

/**
 * Authenticates goSSE's wrapper (the "token" query parameter or the sse_token
 * cookie; see auth_decode_wrapper) of len bytes: verifies its JWT and settles the
 * user id. A token with a "sub" is bound to it: the user id is the sub, and a
 * different id in the wrapper is refused. A token without one takes the wrapper's
 * id only while SSE_TRUST_CLIENT_ID is on (else a non-empty id is refused).
 * Returns 0 with *id filled (free with identity_free), or SSE_EAUTH.
 */
int auth_wrapper(const config_t *cfg, const char *wrapped, size_t len, time_t now, identity_t *id);

/**
 * auth_wrapper() for a bare JWT (an Authorization: Bearer header), which names no
 * user id: the user id is the token's sub, or "".
 */
int auth_bearer(const config_t *cfg, const char *jwt, time_t now, identity_t *id);

/** The name of a role for logs and JSON: "subscriber", "publisher" or "admin". */
const char *auth_role_name(enum role r);

#endif
