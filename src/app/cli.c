/* What the command-line verbs share: the common options, one-line errors, the settings. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "settings.h"

void cli_args_init(cli_args_t *a, int argc, char **argv)
{
    *a = (cli_args_t){.argc = argc, .argv = argv, .i = 1, .verb = argv[0], .env_path = ".env",
                      .env_optional = 1};
}

const char *cli_args_value(cli_args_t *a, const char *arg, const char *opt, bool *bad)
{
    size_t n = strlen(opt);
    if (strncmp(arg, opt, n) != 0) return NULL;
    if (arg[n] == '=') return arg + n + 1;
    if (arg[n] != '\0') return NULL;
    if (a->i >= a->argc) {
        fprintf(stderr, "ssehub %s: %s needs a value (see ssehub %s --help)\n", a->verb, opt, a->verb);
        *bad = true;
        return NULL;
    }
    return a->argv[a->i++];
}

const char *cli_args_next(cli_args_t *a, bool *positional)
{
    static const char *const dashdash = "--";
    *positional = false;
    while (a->i < a->argc) {
        const char *arg = a->argv[a->i++];
        if (strcmp(arg, dashdash) == 0) {
            if (a->i >= a->argc) return NULL;
            *positional = true;
            return a->argv[a->i++];
        }
        if (arg[0] != '-' || arg[1] == '\0') {
            *positional = true;
            return arg;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            a->help = true;
            continue;
        }
        bool bad = false;
        const char *v = cli_args_value(a, arg, "--env-file", &bad);
        if (bad) return "";
        if (v) {
            a->env_path = v;
            a->env_optional = 0;
            continue;
        }
        return arg;
    }
    return NULL;
}

int cli_fail(const char *verb, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* one line, whatever the message holds */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    fprintf(stderr, "ssehub %s: %s\n", verb, msg);
    return CLI_FAIL;
}

int cli_load_settings(const cli_args_t *a, config_t *cfg, envfile_t *keep)
{
    char err[SSE_ERR_LEN];
    log_t lg = {.level = LOG_WARN, .fd = STDERR_FILENO};
    if (settings_load(a->env_path, a->env_optional, cfg, keep, &lg, err)) return cli_fail(a->verb, "%s", err);
    return CLI_OK;
}
