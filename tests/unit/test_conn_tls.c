/* conn_tls: SSL results as read(2)/writev(2) results, after a real handshake on a socketpair. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conn.h"
#include "conn_tls.h"

static SSL_CTX *sctx, *cctx;
static SSL *client;
static conn_t c; /* the server side, as conn.c holds it */
static int cfd = -1;

/* Writes a new self-signed EC certificate and its key to temporary files. */
static void make_cert(char *cert_path, char *key_path)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    cr_assert(pk && x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pk);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    cr_assert(X509_sign(x, pk, EVP_sha256()) > 0);
    int fd = mkstemp(cert_path);
    FILE *f = fdopen(fd, "w");
    PEM_write_X509(f, x);
    fclose(f);
    fd = mkstemp(key_path);
    f = fdopen(fd, "w");
    PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(pk);
}

/* A finished handshake: a tls_new() server on one end of a socketpair, a client on the other. */
static void setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* as main.c does: writes to a closed peer fail with EPIPE */
    char cert[] = "/tmp/ssehub-test-cert-XXXXXX", key[] = "/tmp/ssehub-test-key-XXXXXX";
    make_cert(cert, key);
    char err[SSE_ERR_LEN] = "";
    sctx = tls_ctx_load(cert, key, err);
    unlink(cert);
    unlink(key);
    cr_assert_not_null(sctx, "%s", err);
    cctx = SSL_CTX_new(TLS_client_method());
    cr_assert_not_null(cctx);

    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    for (int i = 0; i < 2; i++) fcntl(sv[i], F_SETFL, fcntl(sv[i], F_GETFL) | O_NONBLOCK);
    memset(&c, 0, sizeof c);
    c.fd = sv[0];
    c.tx = &conn_tls_ops;
    c.tls = tls_new(sctx, sv[0]);
    cr_assert_not_null(c.tls);
    cfd = sv[1];
    client = SSL_new(cctx);
    SSL_set_fd(client, cfd);
    SSL_set_connect_state(client);
    int sdone = 0, cdone = 0;
    for (int i = 0; i < 100 && !(sdone && cdone); i++) {
        if (!cdone) cdone = SSL_do_handshake(client) == 1;
        if (!sdone) sdone = SSL_do_handshake(c.tls) == 1;
    }
    cr_assert(sdone && cdone, "handshake did not finish");
    /* the client takes the TLS 1.3 session tickets, so later reads see only what a test sends */
    char b[64];
    cr_assert_leq(SSL_read(client, b, sizeof b), 0);
}

static void teardown(void)
{
    if (client) SSL_free(client);
    if (c.tls) conn_tls_ops.release(&c);
    if (cfd >= 0) close(cfd);
    close(c.fd);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    client = NULL;
    cfd = -1;
}

TestSuite(conn_tls, .init = setup, .fini = teardown);

/* A BIO whose writes fail without a retry flag and without errno: SSL_ERROR_SYSCALL, errno 0. */
static int dead_write(BIO *b, const char *d, int n)
{
    (void)d, (void)n;
    BIO_clear_retry_flags(b);
    return -1;
}

static long dead_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int dead_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void use_dead_wbio(void)
{
    static BIO_METHOD *m;
    if (!m) {
        m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "dead");
        BIO_meth_set_write(m, dead_write);
        BIO_meth_set_ctrl(m, dead_ctrl);
        BIO_meth_set_create(m, dead_create);
    }
    SSL_set0_wbio(c.tls, BIO_new(m));
}

static ssize_t write_str(const char *s)
{
    struct iovec iov = {.iov_base = (void *)s, .iov_len = strlen(s)};
    return conn_tls_ops.writev(&c, &iov, 1);
}

static ssize_t read_some(void)
{
    char buf[256];
    return conn_tls_ops.read(&c, buf, sizeof buf);
}

Test(conn_tls, write_and_read_pass_bytes)
{
    cr_assert_eq(write_str("hello"), 5);
    char b[16];
    cr_assert_eq(SSL_read(client, b, sizeof b), 5);
    cr_assert_eq(SSL_write(client, "ping", 4), 4);
    errno = 0;
    char buf[16];
    cr_assert_eq(conn_tls_ops.read(&c, buf, sizeof buf), 4);
    cr_assert_eq(read_some(), -1);
    cr_assert_eq(errno, EAGAIN, "no data yet: %s", strerror(errno));
}

/*
 * A write that fails with SSL_ERROR_SYSCALL and no errno used to return 0: to
 * conn_flush that is "nothing written yet", so it kept the connection and retried.
 */
Test(conn_tls, write_syscall_without_errno_is_an_error)
{
    use_dead_wbio();
    for (int i = 0; i < 3; i++) { /* and stays one when retried */
        errno = 0;
        ssize_t r = write_str("data");
        cr_assert_eq(r, -1, "try %d: returned %zd", i, r);
        cr_assert_eq(errno, EPIPE, "try %d: %s", i, strerror(errno));
    }
}

/* After the peer's close_notify a failed write was SSL_ERROR_ZERO_RETURN, also read as 0. */
Test(conn_tls, write_after_close_notify_is_an_error)
{
    SSL_shutdown(client);
    cr_assert_eq(read_some(), 0, "close_notify reads as EOF");
    use_dead_wbio();
    errno = 0;
    ssize_t r = write_str("data");
    cr_assert_eq(r, -1, "returned %zd", r);
    cr_assert_eq(errno, EPIPE, "%s", strerror(errno));
}

Test(conn_tls, write_to_closed_peer_is_an_error)
{
    SSL_free(client);
    client = NULL;
    close(cfd);
    cfd = -1;
    ssize_t r = 0;
    for (int i = 0; i < 4 && r >= 0; i++) /* the first writes may still be buffered */
        r = write_str("data");
    cr_assert_eq(r, -1);
    cr_assert(errno != EAGAIN && errno != EINTR && errno != 0, "%s", strerror(errno));
}

Test(conn_tls, read_close_notify_is_eof)
{
    SSL_shutdown(client);
    cr_assert_eq(read_some(), 0);
}

/* A peer that just closes its socket (most browsers) is EOF too, not a protocol error. */
Test(conn_tls, read_eof_without_close_notify_is_eof)
{
    SSL_free(client);
    client = NULL;
    close(cfd);
    cfd = -1;
    errno = 0;
    cr_assert_eq(read_some(), 0, "errno %s", strerror(errno));
}

/* Garbage from the peer is an error, not EOF. */
Test(conn_tls, read_garbage_is_an_error)
{
    cr_assert_eq(write(cfd, "\x17\x03\x03\x00\x05hello", 10), 10);
    errno = 0;
    cr_assert_eq(read_some(), -1);
    cr_assert_eq(errno, EPROTO, "%s", strerror(errno));
}
