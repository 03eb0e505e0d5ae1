/* TLS connections: OpenSSL on non-blocking sockets; WANT_READ/WANT_WRITE become EAGAIN. */
#include "conn_tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>


#define TLS_RECORD 16384 /* one TLS record: the most a single SSL_write frames at once */

/*
 * Maps an SSL_get_error() result to read(2)/write(2) conventions. Only a read may
 * return 0 (the peer's EOF): to conn_flush a write's 0 means "nothing written
 * yet", so a dead connection would be kept and retried. No errno the caller
 * retries on (EAGAIN, EINTR) leaves here unless OpenSSL asked for a retry.
 */
static ssize_t tls_result(conn_t *c, int r, int is_read)
{
    switch (SSL_get_error(c->tls, r)) {
    case SSL_ERROR_WANT_READ:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        if (is_read && !c->tls_want_write) { /* the handshake must send before it reads on */
            c->tls_want_write = true;
            ev_io_start(c->own->loop, &c->wio);
        }
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN: /* close_notify received; a write can fail after it too */
        if (is_read) return 0;
        errno = EPIPE;
        return -1;
    case SSL_ERROR_SYSCALL:
        /* A retryable errno would have been WANT_*: none, or a stale one, means the peer is gone. */
        if (errno == 0 || errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            if (is_read) return 0; /* EOF without close_notify */
            errno = EPIPE;
        } else if (is_read && r == 0) {
            return 0;
        }
        ERR_clear_error();
        return -1;
    default:
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
        /* OpenSSL 3 reports an EOF without close_notify (as most browsers close) this way. */
        if (is_read && ERR_GET_LIB(ERR_peek_error()) == ERR_LIB_SSL &&
            ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            ERR_clear_error();
            return 0;
        }
#endif
        ERR_clear_error();
        errno = EPROTO;
        return -1;
    }
}

static ssize_t tls_read(conn_t *c, void *buf, size_t n)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_read(c->tls, buf, n > INT32_MAX ? INT32_MAX : (int)n);
    return r > 0 ? r : tls_result(c, r, 1);
}

/*
 * SSL has no writev: gather into one record. A retry after WANT_WRITE passes the
 * same leading bytes (the queue only grows at its tail), which with
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER is what OpenSSL requires.
 */
static ssize_t tls_writev(conn_t *c, const struct iovec *iov, int n)
{
    char buf[TLS_RECORD];
    size_t len = 0;
    for (int i = 0; i < n && len < sizeof buf; i++) {
        size_t k = iov[i].iov_len < sizeof buf - len ? iov[i].iov_len : sizeof buf - len;
        memcpy(buf + len, iov[i].iov_base, k);
        len += k;
    }
    if (len == 0) return 0;
    ERR_clear_error();
    errno = 0;
    int r = SSL_write(c->tls, buf, (int)len);
    return r > 0 ? r : tls_result(c, r, 0);
}

static void tls_shutdown(conn_t *c)
{
    if (SSL_is_init_finished(c->tls)) SSL_shutdown(c->tls); /* close_notify, best effort */
    ERR_clear_error();
    shutdown(c->fd, SHUT_WR);
}

static size_t tls_pending(conn_t *c)
{
    int n = c->tls ? SSL_pending(c->tls) : 0;
    return n > 0 ? (size_t)n : 0;
}

static void tls_release(conn_t *c)
{
    SSL_free(c->tls);
    c->tls = NULL;
}

const transport_ops_t conn_tls_ops = {
    .read = tls_read,
    .writev = tls_writev,
    .shutdown = tls_shutdown,
    .release = tls_release,
    .pending = tls_pending,
};

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl, (void)arg;
    static const unsigned char h11[] = "\x08http/1.1";
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, h11, sizeof h11 - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static void ssl_error(char err[SSE_ERR_LEN], const char *what, const char *path)
{
    unsigned long e = ERR_get_error();
    char reason[160] = "unknown error";
    if (e) ERR_error_string_n(e, reason, sizeof reason);
    ERR_clear_error();
    snprintf(err, SSE_ERR_LEN, "%s \"%.80s\": %s", what, path, reason);
}

SSL_CTX *tls_ctx_load(const char *cert_path, const char *key_path, char err[SSE_ERR_LEN])
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        ssl_error(err, "cannot create a TLS context for", cert_path);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20");
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
        ssl_error(err, "SSE_TLS_CERT: cannot use", cert_path);
    } else if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1) {
        ssl_error(err, "SSE_TLS_KEY: cannot use", key_path);
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_error(err, "SSE_TLS_KEY: does not match the certificate in", cert_path);
    } else {
        return ctx;
    }
    SSL_CTX_free(ctx);
    return NULL;
}

SSL *tls_new(SSL_CTX *ctx, int fd)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl) return NULL;
    if (SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}
