/* tlsconf.h - the tls section (certificate, key, ciphers) and the server context made of it */
#ifndef MX_TLS_TLSCONF_H
#define MX_TLS_TLSCONF_H

#include <stddef.h>

typedef struct ssl_ctx_st SSL_CTX;
struct config;
struct config_section;

extern const struct config_section tlsconf_section;

/* tlsconf_enabled - does cfg have a certificate and key (the server offers TLS) */
int tlsconf_enabled(const struct config *cfg);

/* tlsconf_server_ctx - the server context of cfg's tls section, the files loaded.
 * 0 with *ctx NULL when TLS is not configured; -1 with err when it cannot be made */
int tlsconf_server_ctx(const struct config *cfg, SSL_CTX **ctx, char *err, size_t errlen);

#endif
