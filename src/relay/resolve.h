/*
 * resolve.h - where a route's next hop is: an address literal, a UNIX
 * socket, or a host name looked up with getaddrinfo in the thread pool,
 * never on the event loop. The one resolver of delivery, the recipient
 * probe and the capability probe.
 */
#ifndef MX_RELAY_RESOLVE_H
#define MX_RELAY_RESOLVE_H

#include <stddef.h>
#include <sys/socket.h>

#include "relay/route.h"

struct pool;
struct relay_resolve;

/* A result: err 0 and the address, or err set with why in text. */
struct relay_addr {
    int err; /* 0, or -1 */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char text[300]; /* "4.4.4 host X not found: ..." when err */
};

typedef void (*relay_resolve_fn)(void *arg, const struct relay_addr *ra);

/*
 * relay_target_addr - the address of a target that needs no lookup (LMTP
 * socket, address literal). 1 with ra filled (err may be set: a bad
 * literal), 0 when t names a host to look up.
 */
int relay_target_addr(const struct route_target *t, struct relay_addr *ra);

/*
 * relay_resolve - look t up in pool (t must stay valid until done); done
 * runs later on the loop, exactly once unless cancelled. Targets that need
 * no lookup are answered from the loop too.
 */
struct relay_resolve *relay_resolve(struct pool *pool, const struct route_target *t,
                                    relay_resolve_fn done, void *arg);

/* relay_resolve_cancel - done will not be called; the lookup finishes unseen */
void relay_resolve_cancel(struct relay_resolve *q);

#endif
