/* auth: goSSE token wrappers, JWT issue/verify and attacks, passwords, request auth order. */
#include <criterion/criterion.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "auth_request.h"
#include "b64.h"

/* A plain /login-style token: username, iat, exp. */
static char *issue_at(const config_t *c, const char *user, time_t iat, time_t exp)
{
    token_claims_t tc = {.username = user, .ntypes = -1, .iat = iat, .exp = exp};
    return auth_issue_token(c, &tc);
}

static config_t cfg;
static time_t now;

static void clear_env(void)
{
    static const char *const vars[] = {
        "SSE_HOST", "SSE_PORT", "SSE_APP_KEY", "SSE_CLIENT_USERNAME", "SSE_CLIENT_PASSWORD",
        "SSE_BROADCASTER_USERNAME", "SSE_BROADCASTER_PASSWORD", "SSE_ADMIN_USERNAME",
        "SSE_ADMIN_PASSWORD", "SSE_USERNAME", "SSE_PASSWORD", "ALLOWED_ORIGIN", "SSE_LOG_LEVEL"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
}

/* Loads a config from .env text into *c. */
static void load_into(config_t *c, const char *text)
{
    envfile_t ef;
    char err[SSE_ERR_LEN] = "";
    cr_assert_eq(envfile_parse(&ef, text, err), 0, "%s", err);
    cr_assert_eq(config_load(c, &ef, err), 0, "%s", err);
    envfile_free(&ef);
}

static void setup(void)
{
    clear_env();
    now = time(NULL);
    load_into(&cfg, "SSE_APP_KEY=the-app-key-0123456789abcdef012345\n"
                    "SSE_CLIENT_USERNAME=client\nSSE_CLIENT_PASSWORD=cpass\n"
                    "SSE_BROADCASTER_USERNAME=broadcaster\nSSE_BROADCASTER_PASSWORD=bpass\n"
                    "SSE_ADMIN_USERNAME=admin\nSSE_ADMIN_PASSWORD=apass\n");
}

static void teardown(void)
{
    config_free(&cfg);
}

TestSuite(auth, .init = setup, .fini = teardown);

/* ---- helpers ---- */

/* Base64url without padding of len bytes (as JWT segments are written). */
static char *b64url(const void *in, size_t len)
{
    char *e = b64_encode(in, len);
    size_t n = strlen(e);
    while (n && e[n - 1] == '=') e[--n] = '\0';
    for (size_t i = 0; i < n; i++) e[i] = e[i] == '+' ? '-' : e[i] == '/' ? '_' : e[i];
    return e;
}

/* A JWT from a header and payload JSON and a given signature segment. */
static char *make_jwt(const char *header, const char *payload, const char *sig)
{
    char *h = b64url(header, strlen(header)), *p = b64url(payload, strlen(payload));
    size_t n = strlen(h) + strlen(p) + strlen(sig) + 3;
    char *out = malloc(n);
    snprintf(out, n, "%s.%s.%s", h, p, sig);
    free(h);
    free(p);
    return out;
}

static char *issue(const char *user)
{
    char *t = issue_at(&cfg, user, now, now + 3600);
    cr_assert_not_null(t);
    return t;
}

static int verify(const char *tok, identity_t *id)
{
    memset(id, 0, sizeof *id);
    return auth_verify_token(&cfg, tok, now, id);
}

/* The standard base64 of {"token":tok,"id":<id>} where id is JSON text (or NULL = absent). */
static char *wrap(const char *tok, const char *id_json)
{
    char json[2048];
    if (id_json)
        snprintf(json, sizeof json, "{\"token\":\"%s\",\"id\":%s}", tok, id_json);
    else
        snprintf(json, sizeof json, "{\"token\":\"%s\"}", tok);
    return b64_encode(json, strlen(json));
}

/*
 * Finds a user id whose wrapper, in standard base64, holds '+', '/' and padding, so
 * every alphabet difference is exercised. Returns the id (static) and the wrapper.
 */
static const char *tricky_id(const char *tok, char **wrapped)
{
    static char id[64];
    for (int i = 0; i < 5000; i++) {
        char quoted[80];
        snprintf(id, sizeof id, "u??????~~~~~~%d%.*s", i, i % 3, "xx");
        snprintf(quoted, sizeof quoted, "\"%s\"", id);
        char *w = wrap(tok, quoted);
        size_t n = strlen(w);
        if (strchr(w, '+') && strchr(w, '/') && n && w[n - 1] == '=') {
            *wrapped = w;
            return id;
        }
        free(w);
    }
    cr_assert_fail("no id gives + / and =");
    return NULL;
}

static void expect_wrapper(const char *in, const char *want_jwt, const char *want_id)
{
    char *jwt = NULL, *uid = NULL;
    int rc = auth_decode_wrapper(in, strlen(in), &jwt, &uid);
    cr_assert_eq(rc, 0, "decode of %s", in);
    cr_assert_str_eq(jwt, want_jwt);
    cr_assert_str_eq(uid, want_id);
    free(jwt);
    free(uid);
}

static void expect_wrapper_invalid(const char *in)
{
    char *jwt = NULL, *uid = NULL;
    int rc = auth_decode_wrapper(in, strlen(in), &jwt, &uid);
    cr_assert_eq(rc, SSE_EINVAL, "%s should be invalid", in);
    cr_assert_null(jwt);
    cr_assert_null(uid);
}

/* ---- auth_decode_wrapper ---- */

Test(auth, wrapper_standard_urlsafe_unpadded)
{
    char *w;
    const char *id = tricky_id("a.b.c", &w);
    expect_wrapper(w, "a.b.c", id);

    /* URL-safe, still padded */
    for (char *p = w; *p; p++) *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    cr_assert_null(strchr(w, '+'));
    expect_wrapper(w, "a.b.c", id);

    /* URL-safe, unpadded */
    char *eq = strchr(w, '=');
    cr_assert_not_null(eq);
    *eq = '\0';
    expect_wrapper(w, "a.b.c", id);
    free(w);

    /* standard alphabet, unpadded */
    tricky_id("a.b.c", &w);
    *strchr(w, '=') = '\0';
    cr_assert_not_null(strchr(w, '/'));
    expect_wrapper(w, "a.b.c", id);
    free(w);
}

Test(auth, wrapper_id_null_or_absent)
{
    char *w = wrap("t.t.t", "null");
    expect_wrapper(w, "t.t.t", "");
    free(w);
    w = wrap("t.t.t", NULL);
    expect_wrapper(w, "t.t.t", "");
    free(w);
    w = wrap("t.t.t", "\"\"");
    expect_wrapper(w, "t.t.t", "");
    free(w);
}

Test(auth, wrapper_invalid)
{
    expect_wrapper_invalid("!!!notbase64");
    expect_wrapper_invalid("abcde");
    char *w = b64_encode("not json", 8);
    expect_wrapper_invalid(w);
    free(w);
    w = b64_encode("{\"id\":\"x\"}", 10);
    expect_wrapper_invalid(w);
    free(w);
    w = wrap("t", "5");
    expect_wrapper_invalid(w);
    free(w);
    w = wrap("t", "{}");
    expect_wrapper_invalid(w);
    free(w);
    w = wrap("t", "true");
    expect_wrapper_invalid(w);
    free(w);
    const char *tok_num = "{\"token\":12,\"id\":\"x\"}";
    w = b64_encode(tok_num, strlen(tok_num));
    expect_wrapper_invalid(w);
    free(w);
    w = b64_encode("[\"token\"]", 9);
    expect_wrapper_invalid(w);
    free(w);
    expect_wrapper_invalid("");
}

/* ---- tokens ---- */

Test(auth, issue_verify_round_trip_roles)
{
    const char *users[] = {"client", "broadcaster", "admin"};
    enum role roles[] = {ROLE_SUBSCRIBER, ROLE_PUBLISHER, ROLE_ADMIN};
    for (int i = 0; i < 3; i++) {
        char *t = issue(users[i]);
        cr_assert_eq(strchr(t, '.') != NULL, 1);
        identity_t id;
        cr_assert_eq(verify(t, &id), 0, "%s", users[i]);
        cr_assert_eq(id.role, roles[i]);
        cr_assert_str_eq(id.username, users[i]);
        cr_assert_null(id.user_id);
        free(t);
    }
}

Test(auth, token_header_is_hs256)
{
    char *t = issue("client");
    size_t n;
    unsigned char *h = b64_decode(t, (size_t)(strchr(t, '.') - t), &n);
    cr_assert_not_null(h);
    cr_assert(strstr((char *)h, "\"HS256\"") != NULL, "%s", h);
    free(h);
    free(t);
}

Test(auth, expired_token)
{
    char *t = issue_at(&cfg, "client", now - 7200, now - 1);
    identity_t id;
    cr_assert_eq(verify(t, &id), SSE_EAUTH);
    free(t);
    t = issue_at(&cfg, "client", now - 10, now);
    cr_assert_eq(verify(t, &id), SSE_EAUTH, "a token is expired at its exp");
    free(t);
    t = issue_at(&cfg, "client", now - 10, now + 1);
    cr_assert_eq(verify(t, &id), 0);
    free(t);
}

Test(auth, token_signed_with_other_key)
{
    config_t other;
    load_into(&other, "SSE_APP_KEY=another-key-0123456789abcdef012345\nSSE_CLIENT_USERNAME=client\nSSE_CLIENT_PASSWORD=x\n");
    char *t = issue_at(&other, "client", now, now + 3600);
    cr_assert_not_null(t);
    identity_t id;
    cr_assert_eq(verify(t, &id), SSE_EAUTH);
    cr_assert_eq(auth_verify_token(&other, t, now, &id), 0);
    free(t);
    config_free(&other);
}

Test(auth, alg_none_refused)
{
    char payload[128];
    snprintf(payload, sizeof payload, "{\"username\":\"admin\",\"exp\":%ld}", (long)now + 3600);
    identity_t id;
    char *t = make_jwt("{\"alg\":\"none\",\"typ\":\"JWT\"}", payload, "");
    cr_assert_eq(verify(t, &id), SSE_EAUTH);
    free(t);
    t = make_jwt("{\"alg\":\"NONE\"}", payload, "");
    cr_assert_eq(verify(t, &id), SSE_EAUTH);
    free(t);
    t = make_jwt("{\"typ\":\"JWT\"}", payload, "");
    cr_assert_eq(verify(t, &id), SSE_EAUTH);
    free(t);
}

Test(auth, other_hmac_alg_refused)
{
    jwt_t *j;
    cr_assert_eq(jwt_new(&j), 0);
    jwt_add_grant(j, "username", "admin");
    jwt_add_grant_int(j, "exp", (long)now + 3600);
    jwt_set_alg(j, JWT_ALG_HS512, (const unsigned char *)"the-app-key-0123456789abcdef012345", 34);
    char *t = jwt_encode_str(j);
    jwt_free(j);
    identity_t id;
    cr_assert_eq(verify(t, &id), SSE_EAUTH);
    free(t);
}

Test(auth, tampered_payload)
{
    char *t = issue("client");
    char *d1 = strchr(t, '.'), *d2 = strchr(d1 + 1, '.');
    char payload[128];
    snprintf(payload, sizeof payload, "{\"username\":\"admin\",\"iat\":%ld,\"exp\":%ld}",
             (long)now, (long)now + 3600);
    char *p = b64url(payload, strlen(payload));
    char forged[1024];
    snprintf(forged, sizeof forged, "%.*s.%s%s", (int)(d1 - t), t, p, d2);
    identity_t id;
    cr_assert_eq(verify(forged, &id), SSE_EAUTH);
    free(p);

    /* one flipped character in the signature */
    size_t n = strlen(t);
    t[n - 2] = t[n - 2] == 'A' ? 'B' : 'A';
    cr_assert_eq(verify(t, &id), SSE_EAUTH);
    free(t);
}

Test(auth, unknown_username_and_garbage)
{
    char *t = issue("ghost");
    identity_t id;
    cr_assert_eq(verify(t, &id), SSE_EAUTH);
    free(t);
    cr_assert_eq(verify("", &id), SSE_EAUTH);
    cr_assert_eq(verify("a.b.c", &id), SSE_EAUTH);
    cr_assert_eq(verify("nodots", &id), SSE_EAUTH);
    cr_assert_eq(auth_verify_token(&cfg, NULL, now, &id), SSE_EAUTH);
}

Test(auth, token_without_exp_refused)
{
    jwt_t *j;
    cr_assert_eq(jwt_new(&j), 0);
    jwt_add_grant(j, "username", "admin");
    jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)"the-app-key-0123456789abcdef012345", 34);
    char *t = jwt_encode_str(j);
    jwt_free(j);
    identity_t id;
    cr_assert_eq(verify(t, &id), SSE_EAUTH);
    free(t);
}

/* ---- passwords ---- */

Test(auth, check_password)
{
    const account_t *a = auth_check_password(&cfg, "client", "cpass");
    cr_assert_eq(a, &cfg.accounts[0]);
    cr_assert_eq(a->role, ROLE_SUBSCRIBER);
    cr_assert_eq(auth_check_password(&cfg, "admin", "apass"), &cfg.accounts[2]);
    cr_assert_null(auth_check_password(&cfg, "client", "wrong"));
    cr_assert_null(auth_check_password(&cfg, "client", "cpas"));
    cr_assert_null(auth_check_password(&cfg, "client", "cpass "));
    cr_assert_null(auth_check_password(&cfg, "client", "bpass")); /* another account's */
    cr_assert_null(auth_check_password(&cfg, "nobody", "cpass"));
    cr_assert_null(auth_check_password(&cfg, "", ""));
    cr_assert_null(auth_check_password(&cfg, "client", ""));
    cr_assert_null(auth_check_password(&cfg, "", "cpass"));
    cr_assert_null(auth_check_password(&cfg, NULL, "cpass"));
    cr_assert_null(auth_check_password(&cfg, "client", NULL));
}

Test(auth, role_names)
{
    cr_assert_str_eq(auth_role_name(ROLE_SUBSCRIBER), "subscriber");
    cr_assert_str_eq(auth_role_name(ROLE_PUBLISHER), "publisher");
    cr_assert_str_eq(auth_role_name(ROLE_ADMIN), "admin");
    cr_assert_str_eq(auth_role_name(ROLE_NONE), "none");
}

/* ---- auth_request ---- */

static char reqbuf[16384];
static http_request_t req;

/* Parses "GET <target> HTTP/1.1" with extra header lines (each ending in CRLF). */
static void make_request(const char *target, const char *headers)
{
    int n = snprintf(reqbuf, sizeof reqbuf, "GET %s HTTP/1.1\r\nHost: h\r\n%s\r\n", target,
                     headers ? headers : "");
    cr_assert_lt(n, (int)sizeof reqbuf);
    http_limits_t lim = {.max_header_bytes = sizeof reqbuf, .max_body_bytes = 0};
    int st;
    int rc = http_parse_request(reqbuf, (size_t)n, &lim, &req, &st);
    cr_assert_eq(rc, n, "parse failed: %d status %d", rc, st);
}

static int request_auth(int bearer_only, identity_t *id)
{
    return auth_request(&cfg, &req, now, bearer_only, id);
}

/* %-escapes +, / and = */
static char *pct_escape(const char *s)
{
    char *out = malloc(strlen(s) * 3 + 1), *o = out;
    for (; *s; s++) {
        if (*s == '+' || *s == '/' || *s == '=')
            o += sprintf(o, "%%%02X", (unsigned char)*s);
        else
            *o++ = *s;
    }
    *o = '\0';
    return out;
}

Test(auth, request_token_param_raw_and_escaped)
{
    char *t = issue("client"), *w;
    const char *uid = tricky_id(t, &w);
    char target[4096];
    identity_t id;

    snprintf(target, sizeof target, "/events?topic=x&token=%s", w);
    make_request(target, NULL);
    cr_assert_eq(request_auth(0, &id), 0);
    cr_assert_eq(id.role, ROLE_SUBSCRIBER);
    cr_assert_str_eq(id.username, "client");
    cr_assert_str_eq(id.user_id, uid);
    identity_free(&id);
    cr_assert_null(id.user_id);

    char *esc = pct_escape(w);
    cr_assert_null(strchr(esc, '+'));
    snprintf(target, sizeof target, "/events?token=%s", esc);
    make_request(target, NULL);
    cr_assert_eq(request_auth(0, &id), 0);
    cr_assert_str_eq(id.user_id, uid);
    identity_free(&id);

    free(esc);
    free(w);
    free(t);
}

Test(auth, request_cookie)
{
    char *t = issue("broadcaster"), *w = wrap(t, "\"user-7\"");
    char hdr[4096];
    identity_t id;
    snprintf(hdr, sizeof hdr, "Cookie: other=1; sse_token=%s; more=2\r\n", w);
    make_request("/events", hdr);
    cr_assert_eq(request_auth(0, &id), 0);
    cr_assert_eq(id.role, ROLE_PUBLISHER);
    cr_assert_str_eq(id.username, "broadcaster");
    cr_assert_str_eq(id.user_id, "user-7");
    identity_free(&id);

    snprintf(hdr, sizeof hdr, "Cookie: sse_token=\"%s\"\r\n", w);
    make_request("/events", hdr);
    cr_assert_eq(request_auth(0, &id), 0);
    cr_assert_str_eq(id.user_id, "user-7");
    identity_free(&id);
    free(w);
    free(t);
}

Test(auth, request_bearer)
{
    char *t = issue("admin");
    char hdr[4096];
    identity_t id;
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", t);
    make_request("/broadcast", hdr);
    cr_assert_eq(request_auth(0, &id), 0);
    cr_assert_eq(id.role, ROLE_ADMIN);
    cr_assert_str_eq(id.username, "admin");
    cr_assert_str_eq(id.user_id, "");
    identity_free(&id);
    cr_assert_eq(request_auth(1, &id), 0);
    cr_assert_eq(id.role, ROLE_ADMIN);
    identity_free(&id);

    snprintf(hdr, sizeof hdr, "authorization: bearer %s\r\n", t);
    make_request("/broadcast", hdr);
    cr_assert_eq(request_auth(1, &id), 0);
    identity_free(&id);

    snprintf(hdr, sizeof hdr, "Authorization: Basic %s\r\n", t);
    make_request("/broadcast", hdr);
    cr_assert_eq(request_auth(1, &id), SSE_EAUTH);
    identity_free(&id);

    make_request("/broadcast", "Authorization: Bearer\r\n");
    cr_assert_eq(request_auth(1, &id), SSE_EAUTH);
    make_request("/broadcast", "Authorization: Bearer \r\n");
    cr_assert_eq(request_auth(1, &id), SSE_EAUTH);
    make_request("/broadcast", NULL);
    cr_assert_eq(request_auth(1, &id), SSE_EAUTH);
    cr_assert_eq(request_auth(0, &id), SSE_EAUTH);
    free(t);
}

Test(auth, request_bearer_wrapper_is_not_a_jwt)
{
    char *t = issue("admin"), *w = wrap(t, "\"u\"");
    char hdr[4096];
    identity_t id;
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", w);
    make_request("/broadcast", hdr);
    cr_assert_eq(request_auth(1, &id), SSE_EAUTH);
    identity_free(&id);
    free(w);
    free(t);
}

Test(auth, request_first_match_wins)
{
    char *good = issue("client"), *bad = issue_at(&cfg, "client", now - 100, now - 1);
    char *wgood = wrap(good, "\"good\""), *wbad = wrap(bad, "\"bad\"");
    char target[4096], hdr[8192];
    identity_t id;

    /* bad param, good cookie and bearer: refused */
    snprintf(target, sizeof target, "/events?token=%s", wbad);
    snprintf(hdr, sizeof hdr, "Cookie: sse_token=%s\r\nAuthorization: Bearer %s\r\n", wgood, good);
    make_request(target, hdr);
    cr_assert_eq(request_auth(0, &id), SSE_EAUTH);
    identity_free(&id);

    /* an undecodable param is not rescued either */
    snprintf(hdr, sizeof hdr, "Cookie: sse_token=%s\r\n", wgood);
    make_request("/events?token=%25%25garbage", hdr);
    cr_assert_eq(request_auth(0, &id), SSE_EAUTH);
    identity_free(&id);

    /* bad cookie, good bearer: refused */
    snprintf(hdr, sizeof hdr, "Cookie: sse_token=%s\r\nAuthorization: Bearer %s\r\n", wbad, good);
    make_request("/events", hdr);
    cr_assert_eq(request_auth(0, &id), SSE_EAUTH);
    identity_free(&id);

    /* good param wins over a bad cookie */
    snprintf(target, sizeof target, "/events?token=%s", wgood);
    snprintf(hdr, sizeof hdr, "Cookie: sse_token=%s\r\n", wbad);
    make_request(target, hdr);
    cr_assert_eq(request_auth(0, &id), 0);
    cr_assert_str_eq(id.user_id, "good");
    identity_free(&id);

    /* good cookie wins over a bad bearer */
    snprintf(hdr, sizeof hdr, "Cookie: sse_token=%s\r\nAuthorization: Bearer %s\r\n", wgood, bad);
    make_request("/events", hdr);
    cr_assert_eq(request_auth(0, &id), 0);
    cr_assert_str_eq(id.user_id, "good");
    identity_free(&id);

    free(wgood);
    free(wbad);
    free(good);
    free(bad);
}

Test(auth, request_bearer_only_ignores_param_and_cookie)
{
    char *good = issue("broadcaster"), *wgood = wrap(good, "\"x\"");
    char target[4096], hdr[8192];
    identity_t id;

    snprintf(target, sizeof target, "/broadcast?token=%s", wgood);
    snprintf(hdr, sizeof hdr, "Cookie: sse_token=%s\r\n", wgood);
    make_request(target, hdr);
    cr_assert_eq(request_auth(1, &id), SSE_EAUTH);
    identity_free(&id);
    cr_assert_eq(request_auth(0, &id), 0);
    identity_free(&id);

    /* a bad param does not spoil a good bearer when only the bearer counts */
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", good);
    make_request("/broadcast?token=garbage", hdr);
    cr_assert_eq(request_auth(1, &id), 0);
    cr_assert_str_eq(id.username, "broadcaster");
    cr_assert_str_eq(id.user_id, "");
    identity_free(&id);

    free(wgood);
    free(good);
}

/* ---- SSE_JWT_PUBLIC_KEY ---- */

/* A new EC P-256 key: its public PEM and its private PEM (both malloc'd). */
static void ec_key_pems(char **pub, char **priv)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    cr_assert_not_null(pk);
    BIO *b = BIO_new(BIO_s_mem());
    char *p;
    cr_assert_eq(PEM_write_bio_PUBKEY(b, pk), 1);
    long n = BIO_get_mem_data(b, &p);
    *pub = strndup(p, (size_t)n);
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    cr_assert_eq(PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL), 1);
    n = BIO_get_mem_data(b, &p);
    *priv = strndup(p, (size_t)n);
    BIO_free(b);
    EVP_PKEY_free(pk);
}

/* Writes len bytes of data to a new temporary file and points SSE_JWT_PUBLIC_KEY at it. */
static void set_key_file(const char *data, size_t len)
{
    char path[] = "/tmp/ssehub-test-key-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "wb");
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
    free(cfg.jwt_public_key);
    cfg.jwt_public_key = strdup(path);
}

static void unlink_key_file(void)
{
    unlink(cfg.jwt_public_key);
}

/* An ES256 token for sub, signed with the private key PEM. */
static char *es256_token(const char *priv, const char *sub)
{
    jwt_t *j = NULL;
    cr_assert_eq(jwt_new(&j), 0);
    jwt_add_grant(j, "sub", sub);
    jwt_add_grant_int(j, "exp", now + 300);
    cr_assert_eq(jwt_set_alg(j, JWT_ALG_ES256, (const unsigned char *)priv, (int)strlen(priv)), 0);
    char *t = jwt_encode_str(j);
    jwt_free(j);
    cr_assert_not_null(t);
    return t;
}

/*
 * Text before the PEM block is allowed (RFC 7468 explanatory text); past 16 KB it
 * used to be cut, leaving the tokens' verifier without the key while start-up said
 * nothing. The whole file is kept.
 */
Test(auth, public_key_file_over_16k_read_whole)
{
    char *pub, *priv;
    ec_key_pems(&pub, &priv);
    size_t pre = 40000, plen = strlen(pub);
    char *file = malloc(pre + plen + 1);
    for (size_t i = 0; i < pre; i += 40)
        memcpy(file + i, "# explanatory text before the key block\n", 40);
    memcpy(file + pre, pub, plen + 1);
    set_key_file(file, pre + plen);
    char err[SSE_ERR_LEN] = "";
    int rc = auth_load_public_key(&cfg, err);
    unlink_key_file();
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_str_eq(cfg.jwt_public_alg, "ES256");
    cr_assert_eq(strlen(cfg.jwt_public_pem), pre + plen, "the key text was cut");

    char *t = es256_token(priv, "ext-user");
    identity_t id;
    cr_assert_eq(verify(t, &id), 0, "a token signed with the key is refused");
    cr_assert_eq(id.role, ROLE_SUBSCRIBER);
    identity_free(&id);
    free(t);
    free(file);
    free(pub);
    free(priv);
}

/* Past the bound (AUTH_MAX_KEY_FILE), or with a NUL byte, a key file is refused by name. */
Test(auth, public_key_file_too_big_or_binary_refused)
{
    char *pub, *priv;
    ec_key_pems(&pub, &priv);
    size_t plen = strlen(pub), len = AUTH_MAX_KEY_FILE + 1;
    char *file = malloc(len);
    memset(file, '\n', len);
    memcpy(file, pub, plen); /* a valid key first: PEM_read would still find it */
    set_key_file(file, len);
    char err[SSE_ERR_LEN] = "";
    int rc = auth_load_public_key(&cfg, err);
    unlink_key_file();
    cr_assert_eq(rc, SSE_EINVAL);
    cr_assert(strncmp(err, "SSE_JWT_PUBLIC_KEY:", 19) == 0, "%s", err);
    cr_assert_null(cfg.jwt_public_pem);

    /* exactly at the bound it is read */
    set_key_file(file, AUTH_MAX_KEY_FILE);
    rc = auth_load_public_key(&cfg, err);
    unlink_key_file();
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(strlen(cfg.jwt_public_pem), AUTH_MAX_KEY_FILE);
    free(cfg.jwt_public_pem);
    cfg.jwt_public_pem = NULL;

    /* a NUL would end the key text that the verifier is given */
    file[plen] = '\0';
    set_key_file(file, plen + 2);
    err[0] = '\0';
    rc = auth_load_public_key(&cfg, err);
    unlink_key_file();
    cr_assert_eq(rc, SSE_EINVAL);
    cr_assert(strncmp(err, "SSE_JWT_PUBLIC_KEY:", 19) == 0, "%s", err);
    cr_assert_null(cfg.jwt_public_pem);
    free(file);
    free(pub);
    free(priv);
}

/* An ES256 token with these claims (a JSON object), signed with the private key PEM. */
static char *es256_claims(const char *priv, const char *claims_json)
{
    jwt_t *j = NULL;
    cr_assert_eq(jwt_new(&j), 0);
    cr_assert_eq(jwt_add_grants_json(j, claims_json), 0, "%s", claims_json);
    cr_assert_eq(jwt_set_alg(j, JWT_ALG_ES256, (const unsigned char *)priv, (int)strlen(priv)), 0);
    char *t = jwt_encode_str(j);
    jwt_free(j);
    cr_assert_not_null(t);
    return t;
}

/* Loads a fresh EC key as SSE_JWT_PUBLIC_KEY; *priv gets its private PEM. */
static void use_ec_key(char **priv)
{
    char *pub;
    ec_key_pems(&pub, priv);
    set_key_file(pub, strlen(pub));
    char err[SSE_ERR_LEN] = "";
    int rc = auth_load_public_key(&cfg, err);
    unlink_key_file();
    cr_assert_eq(rc, 0, "%s", err);
    free(pub);
}

/* Verifies an ES256 token with claims_json (printf format, then sub and exp added). */
static int verify_claims(const char *priv, const char *fmt, ...)
{
    char extra[512], claims[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(extra, sizeof extra, fmt, ap);
    va_end(ap);
    snprintf(claims, sizeof claims, "{\"sub\":\"ext\",\"exp\":%ld%s%s}", (long)now + 300, *extra ? "," : "",
             extra);
    char *t = es256_claims(priv, claims);
    identity_t id;
    int rc = verify(t, &id);
    if (rc == 0) identity_free(&id);
    free(t);
    return rc;
}

Test(auth, nbf_honoured_with_leeway)
{
    char *priv;
    use_ec_key(&priv);
    cr_assert_eq(verify_claims(priv, ""), 0, "no nbf");
    cr_assert_eq(verify_claims(priv, "\"nbf\":%ld", (long)now - 100), 0, "nbf in the past");
    cr_assert_eq(verify_claims(priv, "\"nbf\":%ld.5", (long)now - 100), 0, "a fractional NumericDate");
    cr_assert_eq(verify_claims(priv, "\"nbf\":%ld", (long)now + AUTH_NBF_LEEWAY - 2), 0, "within the leeway");
    cr_assert_eq(verify_claims(priv, "\"nbf\":%ld", (long)now + AUTH_NBF_LEEWAY + 60), SSE_EAUTH, "not yet valid");
    cr_assert_eq(verify_claims(priv, "\"nbf\":%ld", (long)now + 86400), SSE_EAUTH, "a day ahead");
    cr_assert_eq(verify_claims(priv, "\"nbf\":\"%ld\"", (long)now - 100), SSE_EAUTH, "a string nbf");
    cr_assert_eq(verify_claims(priv, "\"nbf\":null"), SSE_EAUTH, "a null nbf");
    /* HS256 tokens too */
    jwt_t *j = NULL;
    cr_assert_eq(jwt_new(&j), 0);
    jwt_add_grant(j, "username", "client");
    jwt_add_grant_int(j, "exp", now + 300);
    jwt_add_grant_int(j, "nbf", now + 3600);
    jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)cfg.app_key, (int)strlen(cfg.app_key));
    char *t = jwt_encode_str(j);
    jwt_free(j);
    identity_t id;
    cr_assert_eq(verify(t, &id), SSE_EAUTH, "an HS256 token not yet valid");
    free(t);
    free(priv);
}

Test(auth, issuer_and_audience_when_set)
{
    char *priv;
    use_ec_key(&priv);
    /* unset: neither is checked */
    cr_assert_eq(verify_claims(priv, "\"iss\":\"anyone\",\"aud\":42"), 0);
    cr_assert_eq(verify_claims(priv, ""), 0);

    free(cfg.jwt_issuer);
    cfg.jwt_issuer = strdup("https://idp.example");
    cr_assert_eq(verify_claims(priv, "\"iss\":\"https://idp.example\""), 0);
    cr_assert_eq(verify_claims(priv, ""), SSE_EAUTH, "iss missing");
    cr_assert_eq(verify_claims(priv, "\"iss\":\"https://evil.example\""), SSE_EAUTH, "iss mismatch");
    cr_assert_eq(verify_claims(priv, "\"iss\":\"https://idp.example/\""), SSE_EAUTH, "iss longer");
    cr_assert_eq(verify_claims(priv, "\"iss\":\"HTTPS://IDP.EXAMPLE\""), SSE_EAUTH, "iss is case-sensitive");
    cr_assert_eq(verify_claims(priv, "\"iss\":[\"https://idp.example\"]"), SSE_EAUTH, "iss not a string");

    free(cfg.jwt_audience);
    cfg.jwt_audience = strdup("ssehub");
    const char *iss = "\"iss\":\"https://idp.example\"";
    cr_assert_eq(verify_claims(priv, "%s,\"aud\":\"ssehub\"", iss), 0, "aud string");
    cr_assert_eq(verify_claims(priv, "%s,\"aud\":[\"other\",\"ssehub\"]", iss), 0, "aud array");
    cr_assert_eq(verify_claims(priv, "%s", iss), SSE_EAUTH, "aud missing");
    cr_assert_eq(verify_claims(priv, "%s,\"aud\":\"other\"", iss), SSE_EAUTH, "aud string mismatch");
    cr_assert_eq(verify_claims(priv, "%s,\"aud\":[\"other\",\"ssehub2\"]", iss), SSE_EAUTH, "aud array mismatch");
    cr_assert_eq(verify_claims(priv, "%s,\"aud\":[]", iss), SSE_EAUTH, "aud empty array");
    cr_assert_eq(verify_claims(priv, "%s,\"aud\":[\"ssehub\",7]", iss), SSE_EAUTH, "aud array not of strings");
    cr_assert_eq(verify_claims(priv, "%s,\"aud\":\"ssehub,other\"", iss), SSE_EAUTH, "aud is not a list in a string");
    cr_assert_eq(verify_claims(priv, "\"aud\":\"ssehub\""), SSE_EAUTH, "right aud, iss missing");

    /* the server's own HS256 tokens carry neither and are not checked against them */
    char *t = issue("client");
    identity_t id;
    cr_assert_eq(verify(t, &id), 0);
    identity_free(&id);
    free(t);
    free(priv);
}
