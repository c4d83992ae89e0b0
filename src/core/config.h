/* config.h - the configuration file (libconfuse), validated into plain structs */
#ifndef MX_CORE_CONFIG_H
#define MX_CORE_CONFIG_H

#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cidr.h"
#include "relay/route.h"

struct config_listen {
    char *name;
    char **checks; /* policy checks in order */
    size_t nchecks;
    char *address;    /* "127.0.0.1:2525" as written */
    int implicit_tls; /* tls = "implicit" (port 465 style) */
    int starttls;     /* offer STARTTLS (default when a tls section exists) */
};

struct config_route {
    char *domain; /* "example.test", ".example.test" (subdomains) or "*" */
    struct route_target target;
    int create; /* maildir: create unknown mailboxes (default: refuse them at RCPT) */
};

struct config_limits {
    unsigned max_connections;        /* total, default 1000 */
    unsigned max_connections_per_ip; /* default 20 */
    uint64_t max_message_size;       /* octets, default 10240000 (SIZE) */
    unsigned max_recipients;         /* per message, default 1000 */
    unsigned max_errors;             /* per session before 421, default 10 */
    unsigned max_commands;           /* per session, default 10000 */
};

struct config_timeouts {
    unsigned command;        /* waiting for a command, RFC 5321 4.5.3.2.7: 300 s */
    unsigned data;           /* between data blocks: 180 s (client side 4.5.3.2.5) */
    unsigned greeting_delay; /* pause before the 220; 0 = none */
};

struct config_queue {
    unsigned retry_min;      /* first retry after, default 60 s */
    unsigned retry_max;      /* backoff cap, default 3600 s */
    unsigned lifetime;       /* give up after, default 432000 s (5 days) */
    unsigned fsync_threads;  /* workers doing fsync and file I/O, default 16 */
    unsigned recycle;        /* delivered queue files kept for new messages, default 1024 */
    unsigned max_deliveries; /* concurrent deliveries, default 100 */
    unsigned bounce_limit;   /* DSNs per destination address per bounce_window, default 5 */
    unsigned bounce_window;  /* default 3600 s */
    int sync_filesystem;     /* commit by syncfs group commit (default), not fsync per file */
    /* DSNs per destination domain per bounce_window, default 100 */
    unsigned bounce_domain_limit;
};

struct config_delivery {
    unsigned connect_timeout; /* default 30 s */
    unsigned command_timeout; /* default 300 s */
    unsigned data_timeout;    /* default 600 s */
    int starttls;             /* opportunistic STARTTLS to the next hop, default true */
};

typedef struct cfg_t cfg_t;

struct config {
    char *path;
    cfg_t *raw; /* the parsed libconfuse tree: policy checks read their own sections */
    char *hostname;
    char *user;      /* NULL: do not change user */
    char *spool_dir; /* absolute */
    char *state_dir; /* absolute */
    char *log_level; /* "info" or "debug" */
    char **domains;
    size_t ndomains;
    struct cidr *relay_networks;
    size_t nrelay_networks;
    struct config_listen *listen;
    size_t nlisten;
    struct config_route *routes;
    size_t nroutes;
    char *tls_certificate; /* NULL: no TLS */
    char *tls_key;
    char *tls_ciphers; /* NULL: OpenSSL defaults */
    struct config_limits limits;
    struct config_timeouts timeouts;
    struct config_queue queue;
    struct config_delivery delivery;
};

/*
 * config_load - parse and validate path. Each error is printed to errout
 * as "path:line: message" (line 0 when the error is not tied to a line).
 * Returns NULL if there was any error.
 */
struct config *config_load(const char *path, FILE *errout);
void config_free(struct config *cfg);

/* config_is_local_domain - is domain one of `domains` (case-insensitive) */
int config_is_local_domain(const struct config *cfg, const char *domain);
/* config_route_for - the route of domain: exact, then ".parent" patterns, then "*"; NULL if none */
const struct config_route *config_route_for(const struct config *cfg, const char *domain);
/* config_control_socket - "<state_dir>/control.sock" into dst */
void config_control_socket(const struct config *cfg, char *dst, size_t dstlen);

/* config_store_uri - the state store: store { uri } or lmdb:<state_dir>/db */
void config_store_uri(const struct config *cfg, char *dst, size_t dstlen);

#endif
