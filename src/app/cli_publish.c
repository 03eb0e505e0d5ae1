/* `ssehub publish`: logs in with the broadcaster account, POSTs /broadcast, prints the event's id. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_http.h"

static void usage(FILE *out)
{
    fprintf(out, "Usage: ssehub publish [--url URL] [--type TYPE] [--user USER] [--env-file PATH] CONTENT\n\n"
                 "Publishes CONTENT through a running server and prints the new event's id. It logs in\n"
                 "with SSE_BROADCASTER_USERNAME and SSE_BROADCASTER_PASSWORD, read like the server reads\n"
                 "them (environment, then ./.env or PATH). The URL defaults to the server's own address:\n"
                 "SSE_HOST (0.0.0.0 and :: become loopback) and SSE_PORT, https when SSE_TLS_CERT is set\n"
                 "(that certificate is then trusted too).\n\n"
                 "  --url URL    http[s]://HOST[:PORT][/PREFIX] of the server\n"
                 "  --type TYPE  the event's type (the event: line)\n"
                 "  --user USER  deliver only to that user's streams\n"
                 "  --           what follows is CONTENT, even when it starts with '-'\n");
}

/* The server's own address from its settings; an error message when it has none to give. */
static const char *default_url(const config_t *cfg, cli_url_t *u)
{
    memset(u, 0, sizeof *u);
    if (cfg->port == 0) return "SSE_PORT is 0 (a port picked at start): give --url";
    const char *h = cfg->host;
    if (strcmp(h, "0.0.0.0") == 0) h = "127.0.0.1";
    else if (strcmp(h, "::") == 0 || strcmp(h, "[::]") == 0) h = "::1";
    size_t n = strlen(h);
    if (n > 1 && h[0] == '[' && h[n - 1] == ']') h++, n -= 2;
    if (n >= sizeof u->host) return "SSE_HOST is too long: give --url";
    memcpy(u->host, h, n);
    snprintf(u->port, sizeof u->port, "%d", cfg->port);
    u->tls = *cfg->tls_cert != '\0';
    return NULL;
}

/* The "error" member of a JSON answer, or its first line; for one-line messages. */
static const char *answer_error(const cli_answer_t *ans, json_t **doc)
{
    *doc = json_loadb(ans->body, ans->len, 0, NULL);
    const char *e = json_string_value(json_object_get(*doc, "error"));
    if (e) return e;
    return ans->len ? ans->body : "no body";
}

/* POSTs body (stolen) to route; on an answer other than want prints the one-line error. */
static int post(const char *what, const cli_url_t *u, const char *route, const char *bearer, json_t *body,
                const char *ca, int want, json_t **out)
{
    if (!body) return cli_fail("publish", "%s: the values must be UTF-8 text", what);
    char *js = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    char err[SSE_ERR_LEN], url[1024];
    cli_url_format(u, url, sizeof url);
    cli_answer_t ans = {0};
    int rc = cli_http_post(u, route, bearer, js, ca, &ans, err);
    free(js);
    if (rc) return cli_fail("publish", "%s at %s: %s", what, url, err);
    json_t *doc = NULL;
    if (ans.status != want) {
        const char *e = answer_error(&ans, &doc);
        rc = cli_fail("publish", "%s at %s: %d %.200s", what, url, ans.status, e);
        json_decref(doc);
    } else if (!(*out = json_loadb(ans.body, ans.len, 0, NULL))) {
        rc = cli_fail("publish", "%s at %s: the answer is not JSON", what, url);
    }
    free(ans.body);
    return rc;
}

int cli_publish_main(int argc, char **argv)
{
    cli_args_t a;
    cli_args_init(&a, argc, argv);
    const char *url_arg = NULL, *type = NULL, *user = NULL, *content = NULL;
    bool positional, bad = false;
    for (const char *arg; (arg = cli_args_next(&a, &positional));) {
        const char *v;
        if (!*arg) return CLI_USAGE;
        if (positional && !content) content = arg;
        else if (!positional && (v = cli_args_value(&a, arg, "--url", &bad))) url_arg = v;
        else if (!positional && (v = cli_args_value(&a, arg, "--type", &bad))) type = v;
        else if (!positional && (v = cli_args_value(&a, arg, "--user", &bad))) user = v;
        else if (!bad) {
            fprintf(stderr, "ssehub publish: %s \"%s\" (see ssehub publish --help)\n",
                    positional ? "one CONTENT only, got another" : "unknown argument", arg);
            return CLI_USAGE;
        }
        if (bad) return CLI_USAGE;
    }
    if (a.help) {
        usage(stdout);
        return CLI_OK;
    }
    if (!content) {
        fprintf(stderr, "ssehub publish: CONTENT is required (see ssehub publish --help)\n");
        return CLI_USAGE;
    }
    cli_url_t u;
    if (url_arg && cli_url_parse(url_arg, &u)) {
        fprintf(stderr, "ssehub publish: --url must be http[s]://HOST[:PORT][/PREFIX] (got \"%.100s\")\n", url_arg);
        return CLI_USAGE;
    }
    config_t cfg;
    if (cli_load_settings(&a, &cfg, NULL)) return CLI_FAIL;
    int rc = CLI_OK;
    const char *why = url_arg ? NULL : default_url(&cfg, &u);
    if (!cfg.broadcaster_username || !*cfg.broadcaster_username)
        rc = cli_fail("publish", "SSE_BROADCASTER_USERNAME and SSE_BROADCASTER_PASSWORD are not set: "
                                 "publish logs in with that account");
    else if (why) rc = cli_fail("publish", "%s", why);
    json_t *got = NULL;
    if (!rc)
        rc = post("login", &u, "/login", NULL,
                  json_pack("{s:s, s:s}", "username", cfg.broadcaster_username, "password",
                            cfg.broadcaster_password),
                  cfg.tls_cert, 200, &got);
    const char *jwt = json_string_value(json_object_get(got, "token"));
    if (!rc && !jwt) rc = cli_fail("publish", "login: the answer holds no token");
    json_t *ev = NULL;
    if (!rc) {
        json_t *body = json_pack("{s:s}", "content", content);
        if (!body) rc = cli_fail("publish", "CONTENT must be UTF-8 text");
        if (!rc && type) json_object_set_new(body, "type", json_string(type));
        if (!rc && user) json_object_set_new(body, "user", json_string(user));
        if (!rc && ((type && !json_object_get(body, "type")) || (user && !json_object_get(body, "user")))) {
            json_decref(body);
            rc = cli_fail("publish", "--type and --user must be UTF-8 text");
        }
        if (!rc) rc = post("POST /broadcast", &u, "/broadcast", jwt, body, cfg.tls_cert, 201, &ev);
    }
    json_t *id = json_object_get(ev, "id");
    if (!rc && !json_is_integer(id)) rc = cli_fail("publish", "POST /broadcast: the answer holds no id");
    if (!rc) {
        printf("%" JSON_INTEGER_FORMAT "\n", json_integer_value(id));
        if (fflush(stdout) != 0) rc = cli_fail("publish", "cannot write the id");
    }
    json_decref(got);
    json_decref(ev);
    config_free(&cfg);
    return rc;
}
