/*
 * serverconf.h - the SMTP server's sections (listen, limits, timeouts):
 * declared here, read into the server's typed settings.
 */
#ifndef MX_SMTP_SERVERCONF_H
#define MX_SMTP_SERVERCONF_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct config_section;
struct cidr;

struct serverconf_listen {
    char *name;
    char *address;    /* "127.0.0.1:2525" as written */
    int implicit_tls; /* tls = "implicit" (port 465 style) */
    int starttls;     /* tls = "starttls" (the default): offered when the tls section is set */
    int submission;   /* role = "submission": AUTH (after TLS) before MAIL; relay for users */
    int policy;       /* role = "policy": Postfix's policy delegation protocol (policysrv/) */
    /* proxy_protocol: PROXYPROTO_V1|V2 bits (smtp/proxyproto.h) a connection must start
     * with, 0 = none; accepted only from the networks of proxy_from, within proxy_timeout */
    unsigned proxy;
    struct cidr *proxy_from;
    size_t nproxy_from;
    unsigned proxy_timeout;
};

struct serverconf_limits {
    unsigned max_connections;        /* total, default 1000 */
    unsigned max_connections_per_ip; /* default 20 */
    unsigned ipv6_prefix;            /* IPv6 clients counted per /N for the above, default 64 */
    uint64_t max_message_size;       /* octets, default 10240000 (SIZE) */
    unsigned max_recipients;         /* per message, default 1000 */
    unsigned max_errors;             /* per session before 421, default 10 */
    unsigned max_commands;           /* per session, default 10000 */
};

struct serverconf_timeouts {
    unsigned command;        /* waiting for a command, RFC 5321 4.5.3.2.7: 300 s */
    unsigned data;           /* between data blocks: 180 s (client side 4.5.3.2.5) */
    unsigned greeting_delay; /* pause before the 220; 0 = none */
    unsigned session;        /* a whole session at most, default 3600 s; then 421 4.4.2 */
    unsigned shutdown;       /* SIGTERM: how long messages under way may take, default 30 s */
};

struct serverconf {
    struct serverconf_listen *listen;
    size_t nlisten;
    struct serverconf_limits limits;
    struct serverconf_timeouts timeouts;
};

extern const struct config_section serverconf_listen_section;
extern const struct config_section serverconf_limits_section;
extern const struct config_section serverconf_timeouts_section;

/* serverconf_load - the settings of cfg (validated by config_load) */
struct serverconf *serverconf_load(const struct config *cfg);
void serverconf_free(struct serverconf *sc);

#endif
