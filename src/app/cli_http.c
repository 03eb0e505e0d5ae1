/* A small blocking HTTP/1.1 client: connect, one request, read to the close. Enough for the CLI verbs. */
#include "cli_http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int cli_url_parse(const char *s, cli_url_t *u)
{
    memset(u, 0, sizeof *u);
    if (strncmp(s, "http://", 7) == 0) s += 7;
    else if (strncmp(s, "https://", 8) == 0) s += 8, u->tls = true;
    else return SSE_EINVAL;
    const char *h = s, *he, *p;
    if (*h == '[') {
        he = strchr(h, ']');
        if (!he) return SSE_EINVAL;
        h++;
        p = he + 1;
    } else {
        he = h + strcspn(h, ":/?#");
        p = he;
    }
    size_t hn = (size_t)(he - h);
    if (hn == 0 || hn >= sizeof u->host) return SSE_EINVAL;
    for (const char *c = h; c < he; c++)
        if (!(isalnum((unsigned char)*c) || strchr(".-_:", *c))) return SSE_EINVAL;
    memcpy(u->host, h, hn);
    strcpy(u->port, u->tls ? "443" : "80");
    if (*p == ':') {
        size_t n = strcspn(++p, "/");
        long port = 0;
        for (size_t i = 0; i < n; i++) {
            if (!isdigit((unsigned char)p[i]) || (port = port * 10 + (p[i] - '0')) > 65535) return SSE_EINVAL;
        }
        if (n == 0 || port == 0) return SSE_EINVAL;
        snprintf(u->port, sizeof u->port, "%u", (unsigned)(port & 0xffff));
        p += n;
    }
    if (*p && *p != '/') return SSE_EINVAL;
    size_t n = strlen(p);
    while (n && p[n - 1] == '/') n--;
    if (n >= sizeof u->prefix || strpbrk(p, "?# \t\r\n")) return SSE_EINVAL;
    memcpy(u->prefix, p, n);
    return SSE_OK;
}

void cli_url_format(const cli_url_t *u, char *out, size_t outsz)
{
    bool v6 = strchr(u->host, ':') != NULL;
    snprintf(out, outsz, "%s://%s%s%s:%s%s", u->tls ? "https" : "http", v6 ? "[" : "", u->host, v6 ? "]" : "",
             u->port, u->prefix);
}

/* A connected socket to u, with CLI_HTTP_TIMEOUT on connect, reads and writes; -1 with err. */
static int dial(const cli_url_t *u, char err[SSE_ERR_LEN])
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int e = getaddrinfo(u->host, u->port, &hints, &res);
    if (e) {
        snprintf(err, SSE_ERR_LEN, "cannot resolve %.100s: %s", u->host, gai_strerror(e));
        return -1;
    }
    int fd = -1, last = 0;
    struct timeval tv = {.tv_sec = CLI_HTTP_TIMEOUT};
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        /* Linux bounds a blocking connect by the send timeout */
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            last = errno == EINPROGRESS ? ETIMEDOUT : errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) snprintf(err, SSE_ERR_LEN, "cannot connect to %.100s port %s: %s", u->host, u->port, strerror(last));
    return fd;
}

/* The TLS session over fd, with the peer checked against the authorities and u->host; NULL with err. */
static SSL *tls_open(SSL_CTX **ctxp, int fd, const cli_url_t *u, const char *ca_file, char err[SSE_ERR_LEN])
{
    SSL_CTX *ctx = *ctxp = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, SSE_ERR_LEN, "TLS: cannot create a context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_default_verify_paths(ctx);
    if (ca_file && *ca_file) SSL_CTX_load_verify_locations(ctx, ca_file, NULL); /* may be a CA-signed chain */
    ERR_clear_error();
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL *ssl = SSL_new(ctx);
    if (!ssl) {
        snprintf(err, SSE_ERR_LEN, "TLS: cannot create a session");
        return NULL;
    }
    unsigned char addr[16];
    bool ip = inet_pton(AF_INET, u->host, addr) == 1 || inet_pton(AF_INET6, u->host, addr) == 1;
    if (ip) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), u->host);
    else {
        SSL_set_tlsext_host_name(ssl, u->host);
        SSL_set1_host(ssl, u->host);
    }
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) {
        long v = SSL_get_verify_result(ssl);
        unsigned long e = ERR_get_error();
        char why[160];
        if (v != X509_V_OK) snprintf(why, sizeof why, "certificate: %s", X509_verify_cert_error_string(v));
        else if (e) ERR_error_string_n(e, why, sizeof why);
        else snprintf(why, sizeof why, "%s", errno ? strerror(errno) : "the server closed the connection");
        snprintf(err, SSE_ERR_LEN, "TLS handshake with %.60s failed: %.160s", u->host, why);
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

static bool send_all(int fd, SSL *ssl, const char *p, size_t n)
{
    while (n) {
        ssize_t w = ssl ? SSL_write(ssl, p, (int)n) : send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (!ssl && w < 0 && errno == EINTR) continue;
            return false;
        }
        p += w, n -= (size_t)w;
    }
    return true;
}

/* Reads to the close into a new buffer; false past CLI_HTTP_MAX_ANSWER or on an error. */
static bool read_all(int fd, SSL *ssl, char **out, size_t *outlen)
{
    size_t cap = 4096, len = 0;
    char *buf = xmalloc(cap + 1);
    for (;;) {
        if (len == cap) {
            if (cap >= CLI_HTTP_MAX_ANSWER) break;
            buf = xrealloc(buf, (cap *= 2) + 1);
        }
        ssize_t r = ssl ? SSL_read(ssl, buf + len, (int)(cap - len)) : recv(fd, buf + len, cap - len, 0);
        if (r > 0) {
            len += (size_t)r;
            continue;
        }
        if (!ssl && r < 0 && errno == EINTR) continue;
        if (r == 0 || (ssl && SSL_get_error(ssl, (int)r) == SSL_ERROR_ZERO_RETURN) || len > 0) {
            buf[len] = '\0';
            *out = buf, *outlen = len;
            return true; /* a peer that closes without close_notify still gave its answer */
        }
        break;
    }
    free(buf);
    return false;
}

/* Splits raw (a whole HTTP/1.x answer) into ans; false when it is not one. */
static bool parse_answer(char *raw, size_t len, cli_answer_t *ans)
{
    int status;
    if (len < 12 || strncmp(raw, "HTTP/1.", 7) != 0 || sscanf(raw + 9, "%3d", &status) != 1) return false;
    char *end = strstr(raw, "\r\n\r\n");
    if (!end) return false;
    char *body = end + 4;
    size_t blen = len - (size_t)(body - raw);
    for (char *h = strstr(raw, "\r\n") + 2; h < end; h = strstr(h, "\r\n") + 2) {
        if (strncasecmp(h, "Content-Length:", 15) == 0) {
            size_t n = strtoul(h + 15, NULL, 10);
            if (n < blen) blen = n;
        }
    }
    ans->status = status;
    ans->body = xstrndup(body, blen);
    ans->len = blen;
    return true;
}

int cli_http_post(const cli_url_t *u, const char *route, const char *bearer, const char *json,
                  const char *ca_file, cli_answer_t *ans, char err[SSE_ERR_LEN])
{
    int fd = dial(u, err);
    if (fd < 0) return SSE_ERR;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    int rc = SSE_ERR;
    if (u->tls && !(ssl = tls_open(&ctx, fd, u, ca_file, err))) goto out;
    bool v6 = strchr(u->host, ':') != NULL;
    size_t blen = strlen(json);
    size_t cap = 1024 + (bearer ? strlen(bearer) : 0) + blen;
    char *req = xmalloc(cap);
    int n = snprintf(req, cap,
                     "POST %s%s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: ssehub/%s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n"
                     "%s%s%s\r\n",
                     u->prefix, route, v6 ? "[" : "", u->host, v6 ? "]" : "", u->port, SSE_VERSION, blen,
                     bearer ? "Authorization: Bearer " : "", bearer ? bearer : "", bearer ? "\r\n" : "");
    memcpy(req + n, json, blen);
    bool sent = send_all(fd, ssl, req, (size_t)n + blen);
    free(req);
    char *raw = NULL;
    size_t rawlen = 0;
    if (!sent) snprintf(err, SSE_ERR_LEN, "sending to %.100s port %s failed: %s", u->host, u->port, strerror(errno));
    else if (!read_all(fd, ssl, &raw, &rawlen))
        snprintf(err, SSE_ERR_LEN, "no answer from %.100s port %s (%s)", u->host, u->port,
                 errno == EAGAIN ? "timed out" : "connection closed");
    else if (!parse_answer(raw, rawlen, ans))
        snprintf(err, SSE_ERR_LEN, "%.100s port %s did not answer HTTP", u->host, u->port);
    else rc = SSE_OK;
    free(raw);
out:
    if (ssl) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    SSL_CTX_free(ctx);
    close(fd);
    return rc;
}
