/* A small blocking HTTP/1.1 client for the CLI verbs: one request per connection, TLS with OpenSSL. */
#ifndef SSE_CLI_HTTP_H
#define SSE_CLI_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "common.h"

/** Largest answer read; more is an error (ssehub's JSON answers are far smaller). */
#define CLI_HTTP_MAX_ANSWER (1024 * 1024)
/** Seconds for connecting, and for each read or write. */
#define CLI_HTTP_TIMEOUT 10

/** Where the server is: http[s]://HOST[:PORT][/PREFIX]. */
typedef struct cli_url {
    bool tls;
    char host[256];  /* without the brackets of an IPv6 address */
    char port[8];
    char prefix[512]; /* "" or "/path" without a trailing slash: put before every route */
} cli_url_t;

/** Parses s into u. Returns 0, or SSE_EINVAL for anything but http:// or https:// with a host. */
int cli_url_parse(const char *s, cli_url_t *u);

/** Writes u back as text ("https://[::1]:8443/prefix") into out. */
void cli_url_format(const cli_url_t *u, char *out, size_t outsz);

/** One answer: its status and its body, a new NUL-terminated string. */
typedef struct cli_answer {
    int status;
    char *body;
    size_t len;
} cli_answer_t;

/**
 * POSTs json to u's prefix + route, with "Authorization: Bearer <bearer>" when bearer is
 * non-NULL, and reads the whole answer (the request says Connection: close). Over TLS
 * the server's certificate must chain to the system's authorities or to ca_file (may be
 * NULL: the server's own SSE_TLS_CERT is passed, so a self-signed one is trusted) and
 * name u->host. Returns 0 with *ans filled (free ans->body), or SSE_ERR with one line in err.
 */
int cli_http_post(const cli_url_t *u, const char *route, const char *bearer, const char *json,
                  const char *ca_file, cli_answer_t *ans, char err[SSE_ERR_LEN]);

#endif
