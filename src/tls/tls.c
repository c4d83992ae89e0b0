/* tls.c - OpenSSL contexts */
#include "tls/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>

/* tls_error - newest error, queue drained so later calls start clean */
const char *tls_error(char *dst, size_t dstlen)
{
    unsigned long e, last = 0;

    while ((e = ERR_get_error()) != 0)
        last = e;
    if (last)
        ERR_error_string_n(last, dst, dstlen);
    else
        snprintf(dst, dstlen, "unknown TLS error");
    return dst;
}

/* tls_server_ctx - load the certificate chain and key, refuse anything below TLS 1.2 */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, const char *ciphers, char *err,
                        size_t errlen)
{
    char e[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (!ctx) {
        snprintf(err, errlen, "SSL_CTX_new: %s", tls_error(e, sizeof(e)));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Mail clients reconnect often; tickets save them the full handshake. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(err, errlen, "certificate %s: %s", cert, tls_error(e, sizeof(e)));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "key %s: %s", key, tls_error(e, sizeof(e)));
        goto fail;
    }
    if (ciphers && SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
        snprintf(err, errlen, "ciphers \"%s\": %s", ciphers, tls_error(e, sizeof(e)));
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* tls_client_ctx - opportunistic: encrypt if the peer offers, never verify (RFC 7435) */
SSL_CTX *tls_client_ctx(char *err, size_t errlen)
{
    char e[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (!ctx) {
        snprintf(err, errlen, "SSL_CTX_new: %s", tls_error(e, sizeof(e)));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

/* tls_client_verify_ctx - see tls.h */
SSL_CTX *tls_client_verify_ctx(const char *ca_file, char *err, size_t errlen)
{
    char e[256];
    SSL_CTX *ctx = tls_client_ctx(err, errlen);

    if (!ctx)
        return NULL;
    if ((ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                 : SSL_CTX_set_default_verify_paths(ctx)) != 1) {
        snprintf(err, errlen, "CA file %s: %s", ca_file ? ca_file : "(system)",
                 tls_error(e, sizeof(e)));
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

/* tls_describe - protocol and cipher of an established session */
void tls_describe(const SSL *ssl, char *dst, size_t dstlen)
{
    snprintf(dst, dstlen, "%s with cipher %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}
