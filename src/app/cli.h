/* The command-line verbs beside the server: publish, token and check (passwd lives with the accounts). */
#ifndef SSE_CLI_H
#define SSE_CLI_H

#include <stdbool.h>

#include "config.h"

/* Exit codes of every verb: done, a failure (one line on stderr), a usage mistake. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/** `ssehub publish`: logs in as the broadcaster, POSTs /broadcast, prints the event id. */
int cli_publish_main(int argc, char **argv);

/** `ssehub token`: mints a subscriber token offline with SSE_APP_KEY and prints it. */
int cli_token_main(int argc, char **argv);

/** `ssehub check`: validates the settings as the server does and prints them, secrets masked. */
int cli_check_main(int argc, char **argv);

/** What a verb's arguments hold once cli_args_next() has taken the common ones. */
typedef struct cli_args {
    int argc, i;
    char **argv;
    const char *verb;
    const char *env_path; /* --env-file, else ".env" */
    int env_optional;     /* 0 once --env-file is given: the file must exist */
    bool help;            /* --help or -h was given */
} cli_args_t;

/** Starts reading argv (argv[0] is the verb). */
void cli_args_init(cli_args_t *a, int argc, char **argv);

/**
 * The next argument the verb must handle itself, or NULL at the end. --env-file PATH and
 * --help are taken here. A "--" ends the options: what follows comes back with *positional
 * set. Returns "" after printing a one-line usage error (the verb then exits CLI_USAGE).
 */
const char *cli_args_next(cli_args_t *a, bool *positional);

/**
 * The value of option opt when arg names it ("--opt VALUE" or "--opt=VALUE"), or NULL
 * when arg is another option. A missing value prints one line and sets *bad.
 */
const char *cli_args_value(cli_args_t *a, const char *arg, const char *opt, bool *bad);

/** Prints "ssehub VERB: message" as one line on stderr and returns CLI_FAIL. */
int cli_fail(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/**
 * Loads the settings as the server does (settings_load(), warnings on stderr). Returns 0,
 * or prints the one-line error and returns CLI_FAIL. keep may be NULL (see settings_load).
 */
int cli_load_settings(const cli_args_t *a, config_t *cfg, envfile_t *keep);

#endif
