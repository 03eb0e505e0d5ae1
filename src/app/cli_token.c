/* `ssehub token`: a subscriber token minted offline, with the claims POST /token gives. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "cli.h"
#include "sse.h"

#define TTL_DEFAULT 3600
#define TTL_MAX 86400 /* as POST /token */

static void usage(FILE *out)
{
    fprintf(out, "Usage: ssehub token --user USER [--types a,b] [--ttl SECONDS] [--env-file PATH]\n\n"
                 "Prints a subscriber token for USER, signed with SSE_APP_KEY, as POST /token would\n"
                 "give it: bound to USER (sub), limited to the listed event types when --types is\n"
                 "given, valid for --ttl seconds (1 to 86400, or with s/m/h/d; default 3600). It is\n"
                 "minted in the name of the first publisher or admin account, offline: no server\n"
                 "is asked. Use it as a Bearer token or in the JS client's withToken.\n");
}

/* The account POST /token would have been called by: the first publisher or admin. */
static const account_t *minting_account(const config_t *cfg)
{
    for (int i = 0; i < cfg->naccounts; i++)
        if (cfg->accounts[i].role >= ROLE_PUBLISHER) return &cfg->accounts[i];
    return NULL;
}

/* A name as POST /token accepts it: 1 to SSE_MAX_NAME bytes, no CR, LF, NUL or comma. */
static bool name_ok(const char *s, size_t n)
{
    return n > 0 && n <= SSE_MAX_NAME && sse_field_ok(s, n) && !memchr(s, ',', n);
}

/* Splits list on commas into types (pointing into list, which is changed). Returns the count or -1. */
static int split_types(char *list, const char *types[AUTH_MAX_TYPES])
{
    int n = 0;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == AUTH_MAX_TYPES || !name_ok(t, strlen(t))) return -1;
        types[n++] = t;
    }
    return n > 0 ? n : -1;
}

int cli_token_main(int argc, char **argv)
{
    cli_args_t a;
    cli_args_init(&a, argc, argv);
    const char *user = NULL, *types_arg = NULL, *ttl_arg = NULL;
    bool positional, bad = false;
    for (const char *arg; (arg = cli_args_next(&a, &positional));) {
        const char *v;
        if (!*arg) return CLI_USAGE;
        if (!positional && (v = cli_args_value(&a, arg, "--user", &bad))) user = v;
        else if (!positional && (v = cli_args_value(&a, arg, "--types", &bad))) types_arg = v;
        else if (!positional && (v = cli_args_value(&a, arg, "--ttl", &bad))) ttl_arg = v;
        else if (!bad) {
            fprintf(stderr, "ssehub token: unknown argument \"%s\" (see ssehub token --help)\n", arg);
            return CLI_USAGE;
        }
        if (bad) return CLI_USAGE;
    }
    if (a.help) {
        usage(stdout);
        return CLI_OK;
    }
    if (!user) {
        fprintf(stderr, "ssehub token: --user is required (see ssehub token --help)\n");
        return CLI_USAGE;
    }
    size_t ulen = strlen(user);
    if (ulen == 0 || ulen > SSE_MAX_NAME || !sse_field_ok(user, ulen)) /* as POST /token: commas allowed */
        return cli_fail("token", "--user: 1 to %d bytes without CR, LF or NUL", SSE_MAX_NAME);
    long ttl = TTL_DEFAULT;
    if (ttl_arg && (config_parse_duration(ttl_arg, TTL_MAX, &ttl) || ttl < 1))
        return cli_fail("token", "--ttl: must be 1 to %d seconds (or with s, m, h), got \"%.40s\"", TTL_MAX,
                        ttl_arg);
    const char *types[AUTH_MAX_TYPES];
    int ntypes = -1;
    char list[4096];
    if (types_arg) {
        if (strlen(types_arg) >= sizeof list ||
            (ntypes = split_types(strcpy(list, types_arg), types)) < 0)
            return cli_fail("token", "--types: a comma list of 1 to %d names, each 1 to %d bytes without "
                                     "CR, LF or NUL",
                            AUTH_MAX_TYPES, SSE_MAX_NAME);
    }
    config_t cfg;
    if (cli_load_settings(&a, &cfg, NULL)) return CLI_FAIL;
    int rc = CLI_OK;
    const account_t *acct = minting_account(&cfg);
    if (!acct) {
        rc = cli_fail("token", "no publisher or admin account is set (SSE_BROADCASTER_USERNAME, "
                               "SSE_ADMIN_USERNAME or SSE_USERS_FILE): tokens are minted in its name");
    } else {
        time_t now = time(NULL);
        token_claims_t tc = {.username = acct->username, .sub = user, .types = types, .ntypes = ntypes,
                             .role = ROLE_SUBSCRIBER, .iat = now, .exp = now + ttl};
        char *jwt = auth_issue_token(&cfg, &tc);
        if (!jwt) rc = cli_fail("token", "could not sign a token");
        else {
            printf("%s\n", jwt);
            free(jwt);
            if (fflush(stdout) != 0) rc = cli_fail("token", "cannot write the token");
        }
    }
    config_free(&cfg);
    return rc;
}
