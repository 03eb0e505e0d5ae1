/* `ssehub check`: the server's own validation of the settings, then the effective values and their sources. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "conn_tls.h"

#define MASK "********"

static void usage(FILE *out)
{
    fprintf(out, "Usage: ssehub check [--env-file PATH]\n\n"
                 "Checks the settings (environment, then ./.env or PATH) exactly as the server does at\n"
                 "start-up, without listening or opening the history, then prints every setting as\n"
                 "NAME=value followed by its source (env, .env or default). Secrets (SSE_APP_KEY and\n"
                 "the passwords) are masked. A bad setting: one line on stderr, exit 1.\n");
}

/* One line per setting; control characters become '?' so a value cannot forge lines. */
static void print_setting(void *arg, const char *name, const char *value, const char *source, bool secret)
{
    FILE *out = arg;
    fprintf(out, "%s=", name);
    if (secret) fputs(*value ? MASK : "", out);
    else
        for (const char *p = value; *p; p++) fputc((unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p, out);
    fprintf(out, "  # %s\n", source);
}

int cli_check_main(int argc, char **argv)
{
    cli_args_t a;
    cli_args_init(&a, argc, argv);
    bool positional;
    const char *arg = cli_args_next(&a, &positional);
    if (arg) {
        if (*arg) fprintf(stderr, "ssehub check: unknown argument \"%s\" (see ssehub check --help)\n", arg);
        return CLI_USAGE;
    }
    if (a.help) {
        usage(stdout);
        return CLI_OK;
    }
    config_t cfg;
    envfile_t ef;
    if (cli_load_settings(&a, &cfg, &ef)) return CLI_FAIL;
    int rc = CLI_OK;
    if (*cfg.tls_cert) { /* the server refuses to start on a certificate it cannot use */
        char err[SSE_ERR_LEN];
        SSL_CTX *ctx = tls_ctx_load(cfg.tls_cert, cfg.tls_key, err);
        if (ctx) SSL_CTX_free(ctx);
        else rc = cli_fail("check", "%s", err);
    }
    if (rc == CLI_OK) {
        config_each(&cfg, &ef, print_setting, stdout);
        if (fflush(stdout) != 0) rc = cli_fail("check", "cannot write the settings");
    }
    envfile_free(&ef);
    config_free(&cfg);
    return rc;
}
