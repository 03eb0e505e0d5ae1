/* TLS transport on OpenSSL: server contexts, and the transport ops for a TLS connection. */
#ifndef SSE_CONN_TLS_H
#define SSE_CONN_TLS_H

#include <openssl/ssl.h>

#include "common.h"
#include "conn.h"

extern const transport_ops_t conn_tls_ops;

/**
 * A server context from PEM files: TLS 1.2 and 1.3 only, forward-secret AEAD
 * ciphers, no renegotiation, no compression, ALPN "http/1.1". Checks that the
 * key matches the certificate. Returns NULL with one line in err on failure.
 */
SSL_CTX *tls_ctx_load(const char *cert_path, const char *key_path, char err[SSE_ERR_LEN]);

/** A new server-side SSL for fd from ctx, or NULL. */
SSL *tls_new(SSL_CTX *ctx, int fd);

#endif
