/* Authentication: accounts and roles, HS256 tokens on libjwt, goSSE's base64 token wrappers. */
#include "auth.h"

#include <jansson.h>
#include <jwt.h>
#include <stdbool.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <string.h>

#include "b64.h"
#include "common.h"

void identity_free(identity_t *id)
{
    free(id->user_id);
    free(id->sub);
    for (int i = 0; i < id->ntypes; i++) free(id->types[i]);
    id->user_id = id->sub = NULL;
    id->ntypes = -1;
}

bool auth_type_allowed(const identity_t *id, const char *type)
{
    if (id->ntypes < 0) return true;
    for (int i = 0; i < id->ntypes; i++)
        if (strcmp(id->types[i], type) == 0) return true;
    return false;
}

/*
 * Reads the whole of path into a new NUL-terminated buffer (*len bytes), or returns
 * NULL with one line in err: a file past AUTH_MAX_KEY_FILE is refused, never cut
 * (a cut PEM still names the key's type but no longer holds the key itself).
 */
static char *read_key_file(const char *path, size_t *len, char err[SSE_ERR_LEN])
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, SSE_ERR_LEN, "SSE_JWT_PUBLIC_KEY: cannot read \"%.100s\": %s", path,
                 strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0, r;
    char *buf = xmalloc(cap);
    while ((r = fread(buf + n, 1, cap - 1 - n, f)) > 0) {
        n += r;
        if (n > AUTH_MAX_KEY_FILE) break; /* one byte past the bound is enough to refuse */
        if (n == cap - 1) {
            cap = cap * 2 < AUTH_MAX_KEY_FILE + 2 ? cap * 2 : AUTH_MAX_KEY_FILE + 2;
            buf = xrealloc(buf, cap);
        }
    }
    int read_errno = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (read_errno)
        snprintf(err, SSE_ERR_LEN, "SSE_JWT_PUBLIC_KEY: cannot read \"%.100s\": %s", path,
                 strerror(read_errno));
    else if (n > AUTH_MAX_KEY_FILE)
        snprintf(err, SSE_ERR_LEN,
                 "SSE_JWT_PUBLIC_KEY: \"%.100s\" is larger than %d bytes: not a public key file", path,
                 AUTH_MAX_KEY_FILE);
    else if (memchr(buf, '\0', n)) /* the verifier takes the key as a C string */
        snprintf(err, SSE_ERR_LEN, "SSE_JWT_PUBLIC_KEY: \"%.100s\" holds a NUL byte: not a PEM text file",
                 path);
    else {
        buf[n] = '\0';
        *len = n;
        return buf;
    }
    free(buf);
    return NULL;
}

int auth_load_public_key(config_t *cfg, char err[SSE_ERR_LEN])
{
    if (!*cfg->jwt_public_key) return SSE_OK;
    size_t n;
    char *pem = read_key_file(cfg->jwt_public_key, &n, err);
    if (!pem) return SSE_EINVAL;
    /* The key's type is read from the very bytes the verifier will be given. */
    BIO *b = BIO_new_mem_buf(pem, (int)n);
    EVP_PKEY *pk = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    int type = pk ? EVP_PKEY_base_id(pk) : 0;
    int bits = pk ? EVP_PKEY_bits(pk) : 0;
    EVP_PKEY_free(pk);
    ERR_clear_error();
    if (type == EVP_PKEY_RSA && bits >= 2048) cfg->jwt_public_alg = "RS256";
    else if (type == EVP_PKEY_EC && bits == 256) cfg->jwt_public_alg = "ES256";
    else {
        free(pem);
        snprintf(err, SSE_ERR_LEN, "SSE_JWT_PUBLIC_KEY: \"%.100s\" is not a PEM RSA (2048 bits or more) "
                                   "or EC P-256 public key", cfg->jwt_public_key);
        return SSE_EINVAL;
    }
    cfg->jwt_public_pem = pem;
    return SSE_OK;
}

static enum role role_parse(const char *s)
{
    if (!s) return ROLE_NONE;
    if (strcmp(s, "subscriber") == 0) return ROLE_SUBSCRIBER;
    if (strcmp(s, "publisher") == 0) return ROLE_PUBLISHER;
    if (strcmp(s, "admin") == 0) return ROLE_ADMIN;
    return ROLE_NONE;
}

const char *auth_role_name(enum role r)
{
    switch (r) {
    case ROLE_SUBSCRIBER: return "subscriber";
    case ROLE_PUBLISHER: return "publisher";
    case ROLE_ADMIN: return "admin";
    default: return "none";
    }
}

/* Compares digests, not strings, so time depends on neither length nor content. */
static int secret_equal(const char *a, const char *b)
{
    unsigned char da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)a, strlen(a), da);
    SHA256((const unsigned char *)b, strlen(b), db);
    return CRYPTO_memcmp(da, db, sizeof da) == 0;
}

const account_t *auth_check_password(const config_t *cfg, const char *user, const char *pass)
{
    const account_t *found = NULL;
    if (!user || !pass || !*user || !*pass) return NULL;
    for (int i = 0; i < cfg->naccounts; i++) { /* no early exit: same work for every name */
        int u = secret_equal(cfg->accounts[i].username, user);
        int p = secret_equal(cfg->accounts[i].password, pass);
        if (u & p) found = &cfg->accounts[i];
    }
    return found;
}

char *auth_issue_token(const config_t *cfg, const token_claims_t *tc)
{
    jwt_t *jwt = NULL;
    char *out = NULL;
    if (jwt_new(&jwt)) return NULL;
    int rc = jwt_add_grant(jwt, "username", tc->username) ||
             jwt_add_grant_int(jwt, "iat", (long)tc->iat) ||
             jwt_add_grant_int(jwt, "exp", (long)tc->exp);
    if (!rc && tc->sub) rc = jwt_add_grant(jwt, "sub", tc->sub);
    if (!rc && tc->role != ROLE_NONE) rc = jwt_add_grant(jwt, "role", auth_role_name(tc->role));
    if (!rc && tc->ntypes >= 0) {
        json_t *o = json_object(), *a = json_array();
        for (int i = 0; i < tc->ntypes; i++) json_array_append_new(a, json_string(tc->types[i]));
        json_object_set_new(o, "types", a);
        char *js = json_dumps(o, JSON_COMPACT);
        rc = !js || jwt_add_grants_json(jwt, js);
        free(js);
        json_decref(o);
    }
    if (!rc && !jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)cfg->app_key,
                            (int)strlen(cfg->app_key)))
        out = jwt_encode_str(jwt);
    jwt_free(jwt);
    return out;
}

/*
 * The algorithm a token's header names, checked against what configuration accepts
 * before libjwt sees the token: the token never picks the algorithm.
 */
static jwt_alg_t header_alg(const config_t *cfg, const char *tok)
{
    const char *dot = strchr(tok, '.');
    if (!dot) return JWT_ALG_INVAL;
    size_t n;
    unsigned char *raw = b64_decode(tok, (size_t)(dot - tok), &n);
    if (!raw) return JWT_ALG_INVAL;
    json_t *h = json_loadb((const char *)raw, n, 0, NULL);
    free(raw);
    const char *alg = json_string_value(json_object_get(h, "alg"));
    jwt_alg_t a = JWT_ALG_INVAL;
    if (alg && strcmp(alg, "HS256") == 0) a = JWT_ALG_HS256;
    else if (alg && cfg->jwt_public_alg && strcmp(alg, cfg->jwt_public_alg) == 0)
        a = strcmp(alg, "RS256") == 0 ? JWT_ALG_RS256 : JWT_ALG_ES256;
    json_decref(h);
    return a;
}

/* Reads the "types" claim (an array of strings) into id; false when it is malformed. */
static bool read_types(jwt_t *jwt, identity_t *id)
{
    id->ntypes = -1;
    char *js = jwt_get_grants_json(jwt, "types");
    if (!js) return true;
    json_t *a = json_loads(js, 0, NULL);
    free(js);
    bool ok = json_is_array(a) && json_array_size(a) <= AUTH_MAX_TYPES;
    if (ok) {
        id->ntypes = 0;
        for (size_t i = 0; i < json_array_size(a); i++) {
            const char *t = json_string_value(json_array_get(a, i));
            if (!t) {
                ok = false;
                break;
            }
            id->types[id->ntypes++] = xstrdup(t);
        }
    }
    json_decref(a);
    return ok;
}

/*
 * Reads claim name as JSON of any type into *v (a new reference, NULL when the
 * claim is absent). False when it is present but cannot be read.
 */
static bool read_claim(jwt_t *jwt, const char *name, json_t **v)
{
    char *js = jwt_get_grants_json(jwt, name);
    *v = js ? json_loads(js, JSON_DECODE_ANY, NULL) : NULL;
    bool ok = !js || *v;
    free(js);
    return ok;
}

/* v is a JSON string of exactly want's bytes. */
static bool string_is(const json_t *v, const char *want)
{
    size_t n = strlen(want);
    return json_is_string(v) && json_string_length(v) == n && memcmp(json_string_value(v), want, n) == 0;
}

/* "nbf" (RFC 7519 4.1.5): absent, or a NumericDate no later than now plus the leeway. */
static bool nbf_ok(jwt_t *jwt, time_t now)
{
    json_t *v;
    bool ok = read_claim(jwt, "nbf", &v) &&
              (!v || (json_is_number(v) && json_number_value(v) <= (double)now + AUTH_NBF_LEEWAY));
    json_decref(v);
    return ok;
}

/*
 * SSE_JWT_ISSUER and SSE_JWT_AUDIENCE, each when set: "iss" equals the one, and
 * "aud" (RFC 7519 4.1.3: a string, or an array of strings) holds the other.
 */
static bool issuer_audience_ok(const config_t *cfg, jwt_t *jwt)
{
    json_t *v;
    bool ok = true;
    if (cfg->jwt_issuer && *cfg->jwt_issuer) {
        ok = read_claim(jwt, "iss", &v) && string_is(v, cfg->jwt_issuer);
        json_decref(v);
    }
    if (ok && cfg->jwt_audience && *cfg->jwt_audience) {
        ok = false;
        if (read_claim(jwt, "aud", &v) && json_is_array(v)) {
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e) {
                if (!json_is_string(e)) { /* not an array of strings: malformed */
                    ok = false;
                    break;
                }
                if (string_is(e, cfg->jwt_audience)) ok = true;
            }
        } else {
            ok = string_is(v, cfg->jwt_audience);
        }
        json_decref(v);
    }
    return ok;
}

int auth_verify_token(const config_t *cfg, const char *tok, time_t now, identity_t *id)
{
    memset(id, 0, sizeof *id);
    id->ntypes = -1;
    if (!tok || strlen(tok) > AUTH_MAX_TOKEN) return SSE_EAUTH;
    jwt_alg_t alg = header_alg(cfg, tok);
    if (alg == JWT_ALG_INVAL) return SSE_EAUTH;
    bool external = alg != JWT_ALG_HS256;
    const unsigned char *key = external ? (const unsigned char *)cfg->jwt_public_pem
                                        : (const unsigned char *)cfg->app_key;
    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, tok, key, (int)strlen((const char *)key)) || !jwt) return SSE_EAUTH;
    int rc = SSE_EAUTH;
    const char *user = jwt_get_grant(jwt, "username");
    const char *sub = jwt_get_grant(jwt, "sub");
    long exp = jwt_get_grant_int(jwt, "exp");
    if (jwt_get_alg(jwt) != alg || exp <= (long)now || !nbf_ok(jwt, now) || !read_types(jwt, id)) goto out;
    if (external) { /* an identity provider's token: a subscriber known by its sub */
        if (!sub || !*sub || !issuer_audience_ok(cfg, jwt)) goto out;
        id->role = ROLE_SUBSCRIBER;
        snprintf(id->username, sizeof id->username, "%s", "external");
        rc = SSE_OK;
    } else if (user) {
        for (int i = 0; i < cfg->naccounts; i++) {
            if (strcmp(cfg->accounts[i].username, user) != 0) continue;
            id->role = cfg->accounts[i].role;
            const char *claimed = jwt_get_grant(jwt, "role");
            if (claimed) { /* a minted token may carry less than its account, never more */
                enum role r = role_parse(claimed);
                if (r == ROLE_NONE) goto out;
                if (r < id->role) id->role = r;
            }
            snprintf(id->username, sizeof id->username, "%s", user);
            rc = SSE_OK;
            break;
        }
    }
    if (rc == SSE_OK) {
        id->sub = sub ? xstrdup(sub) : NULL;
        id->exp = exp;
    }
out:
    jwt_free(jwt);
    if (rc) identity_free(id);
    return rc;
}

int auth_decode_wrapper(const char *b64, size_t len, char **jwt, char **user_id)
{
    size_t n;
    if (len > 4 * AUTH_MAX_TOKEN) return SSE_EINVAL;
    unsigned char *raw = b64_decode(b64, len, &n);
    if (!raw) return SSE_EINVAL;
    json_t *o = json_loadb((const char *)raw, n, 0, NULL);
    free(raw);
    const char *t = json_string_value(json_object_get(o, "token"));
    json_t *idv = json_object_get(o, "id");
    if (!t || (idv && !json_is_string(idv) && !json_is_null(idv))) {
        json_decref(o);
        return SSE_EINVAL;
    }
    *jwt = xstrdup(t);
    *user_id = xstrdup(json_is_string(idv) ? json_string_value(idv) : "");
    json_decref(o);
    return SSE_OK;
}

/*
 * Settles the stream's user id: a signed sub wins and a different claimed id is
 * refused; without a sub, the client's id is taken only while it is trusted.
 */
static int bind_user(const config_t *cfg, identity_t *id, const char *claimed)
{
    if (id->sub) {
        if (*claimed && strcmp(claimed, id->sub) != 0) return SSE_EAUTH;
        id->user_id = xstrdup(id->sub);
        return SSE_OK;
    }
    if (*claimed && !cfg->trust_client_id) return SSE_EAUTH;
    id->user_id = xstrdup(claimed);
    return SSE_OK;
}

int auth_wrapper(const config_t *cfg, const char *wrapped, size_t len, time_t now, identity_t *id)
{
    memset(id, 0, sizeof *id);
    id->ntypes = -1;
    char *jwt = NULL, *user = NULL;
    int rc = SSE_EAUTH;
    if (auth_decode_wrapper(wrapped, len, &jwt, &user) == SSE_OK &&
        auth_verify_token(cfg, jwt, now, id) == SSE_OK) {
        rc = bind_user(cfg, id, user);
        if (rc) identity_free(id);
    }
    free(jwt);
    free(user);
    return rc;
}

int auth_bearer(const config_t *cfg, const char *jwt, time_t now, identity_t *id)
{
    if (auth_verify_token(cfg, jwt, now, id)) return SSE_EAUTH;
    if (bind_user(cfg, id, "")) {
        identity_free(id);
        return SSE_EAUTH;
    }
    return SSE_OK;
}
