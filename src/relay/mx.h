/*
 * mx.h - where mail for a domain goes on the Internet (RFC 5321 5.1): its
 * MX hosts by preference, equal preferences in random order, the AAAA and A
 * addresses of each, the domain itself when it has no MX (implicit MX). A
 * null MX (RFC 7505) or a domain that does not exist is a permanent failure,
 * a DNS error a temporary one. Everything runs on the c-ares resolver: no
 * call blocks the loop.
 */
#ifndef MX_RELAY_MX_H
#define MX_RELAY_MX_H

#include <stddef.h>
#include <sys/socket.h>

struct dns;
struct mx_lookup;

#define MX_MAX_HOSTS 10 /* MX hosts tried per domain (Postfix: smtp_mx_address_limit-ish) */
#define MX_MAX_ADDRS 20 /* addresses tried per domain */

enum mx_status {
    MX_OK,       /* addr[] holds at least one address */
    MX_NODOMAIN, /* the domain does not exist: permanent */
    MX_NULLMX,   /* "MX 0 .": the domain takes no mail (RFC 7505): permanent */
    MX_TEMP      /* a DNS error or no address for any host: try later */
};

struct mx_addr {
    struct sockaddr_storage addr; /* port set */
    socklen_t addrlen;
    char host[256];      /* the MX host name (lower case), for TLS names and logs */
    unsigned short pref; /* its MX preference (0 for an implicit MX) */
};

struct mx_result {
    enum mx_status status;
    char text[300]; /* the DSN diagnostic when not MX_OK: "5.1.10 ..." / "4.4.3 ..." */
    size_t naddr;
    struct mx_addr addr[MX_MAX_ADDRS];
};

typedef void (*mx_fn)(void *arg, const struct mx_result *res);

/* mx_lookup - the addresses of domain's mail servers, port given; done runs
 * later on the loop, exactly once unless cancelled; the result is valid only
 * during it. NULL when the query cannot start (no resolver): done will not run. */
struct mx_lookup *mx_lookup(struct dns *dns, const char *domain, int port, mx_fn done, void *arg);

/* mx_cancel - done will not run; NULL is ignored */
void mx_cancel(struct mx_lookup *q);

/* An MX host as answered: the unit of ordering. */
struct mx_host {
    char name[256];
    unsigned short pref;
};

/* mx_order - sort h by preference, each run of equal preferences shuffled
 * with rnd (returns 0..n-1 for n); the unit tests pass a fixed one */
void mx_order(struct mx_host *h, size_t n, size_t (*rnd)(size_t n));

/* mx_is_null - a null MX answer (RFC 7505): one record, exchange "." */
int mx_is_null(const char *const *names, size_t n);

/* mx_is_self - a is one of cfg's listen addresses (same port; the same address, or a
 * wildcard one and one of our own addresses): delivering there would loop back to ourselves */
struct config;
int mx_is_self(const struct config *cfg, const struct sockaddr_storage *a);

#endif
