/* Fuzzes the token path: goSSE's base64 wrapper, JWT verification, and base64 itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "b64.h"
#include "fuzz_check.h"

#define FUZZ_NOW 1700000000 /* fixed, so seeds with a later exp stay valid */

/* An EC P-256 public key, so ES256 tokens from an "identity provider" reach libjwt too. */
static const char ec_public_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEfunU7LnpwUDqeKItuIqbbeRD0PaS\n"
    "tynjVLmob7Ue//a4nbnHtzof4G9HJ+1b5B+cnXBrnATf8tB73mpDQiBXMQ==\n"
    "-----END PUBLIC KEY-----\n";

/*
 * Verifies tok with the app key only, then with the public key as well. Whatever the
 * token says, a success never gives more than the account's role (alice: publisher,
 * root: admin), and an external token is a subscriber with a sub.
 */
static void verify(const char *tok)
{
    account_t accounts[] = {
        {.username = (char *)"alice", .password = (char *)"secret", .role = ROLE_PUBLISHER},
        {.username = (char *)"root", .password = (char *)"toor", .role = ROLE_ADMIN},
    };
    config_t cfg = {.app_key = (char *)"fuzz-app-key", .accounts = accounts, .naccounts = 2};
    for (int pass = 0; pass < 3; pass++) {
        if (pass == 1) {
            cfg.jwt_public_pem = (char *)ec_public_pem;
            cfg.jwt_public_alg = "ES256";
        }
        if (pass == 2) { /* the same key, its tokens pinned to an issuer and an audience */
            cfg.jwt_issuer = (char *)"https://idp.example/";
            cfg.jwt_audience = (char *)"ssehub";
        }
        identity_t id;
        if (auth_verify_token(&cfg, tok, FUZZ_NOW, &id) == SSE_OK) {
            FUZZ_CHECK(id.exp > FUZZ_NOW && id.ntypes <= AUTH_MAX_TYPES);
            if (strcmp(id.username, "alice") == 0)
                FUZZ_CHECK(id.role == ROLE_SUBSCRIBER || id.role == ROLE_PUBLISHER);
            else if (strcmp(id.username, "root") == 0)
                FUZZ_CHECK(id.role >= ROLE_SUBSCRIBER && id.role <= ROLE_ADMIN);
            else
                FUZZ_CHECK(pass >= 1 && id.role == ROLE_SUBSCRIBER && id.sub && *id.sub);
            identity_free(&id);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;

    char *jwt = NULL, *user = NULL;
    if (auth_decode_wrapper(in, size, &jwt, &user) == SSE_OK) {
        FUZZ_CHECK(jwt && user);
        verify(jwt);
    }
    free(jwt);
    free(user);

    char *tok = strndup(in, size);
    verify(tok);
    free(tok);

    size_t n = 0;
    unsigned char *raw = b64_decode(in, size, &n);
    if (raw) { /* decode, encode, decode gives the same bytes */
        FUZZ_CHECK(n <= size / 4 * 3 + 2 && raw[n] == '\0');
        char *again = b64_encode(raw, n);
        size_t n2 = 0;
        unsigned char *raw2 = b64_decode(again, strlen(again), &n2);
        FUZZ_CHECK(raw2 && n2 == n && memcmp(raw, raw2, n) == 0);
        free(raw2);
        free(again);
        free(raw);
    }
    return 0;
}
