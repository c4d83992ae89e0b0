/* tls.h - OpenSSL contexts for the server (STARTTLS, implicit TLS) and the delivery client */
#ifndef MX_TLS_H
#define MX_TLS_H

#include <stddef.h>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

/* tls_server_ctx - TLS 1.2+ server context from PEM files; NULL with err filled */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, const char *ciphers, char *err,
                        size_t errlen);

/* tls_client_ctx - TLS 1.2+ client context for opportunistic STARTTLS (no verification) */
SSL_CTX *tls_client_ctx(char *err, size_t errlen);
/* tls_client_verify_ctx - a client context that verifies the peer's chain against
 * ca_file (PEM), or the system's CAs when ca_file is NULL; the name is checked per
 * connection (SSL_set1_host). NULL with a message in err */
SSL_CTX *tls_client_verify_ctx(const char *ca_file, char *err, size_t errlen);

/* tls_describe - "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384" */
void tls_describe(const SSL *ssl, char *dst, size_t dstlen);

/* tls_error - the newest OpenSSL error as text (drains the queue) */
const char *tls_error(char *dst, size_t dstlen);

#endif
