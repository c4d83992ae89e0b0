/* resolve.c - next-hop addresses off the loop */
#include "relay/resolve.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "core/cidr.h"
#include "core/pool.h"
#include "core/xmalloc.h"

struct relay_resolve {
    const struct route_target *t;
    relay_resolve_fn done;
    void *arg;
    int cancelled;
    struct relay_addr ra;
};

/* relay_target_addr - see resolve.h */
int relay_target_addr(const struct route_target *t, struct relay_addr *ra)
{
    struct sockaddr_un *un = (struct sockaddr_un *)&ra->addr;

    memset(ra, 0, sizeof(*ra));
    if (t->kind == ROUTE_LMTP && t->path[0]) {
        un->sun_family = AF_UNIX;
        snprintf(un->sun_path, sizeof(un->sun_path), "%s", t->path);
        ra->addrlen = sizeof(*un);
        return 1;
    }
    if (!t->literal)
        return 0;
    if (sockaddr_parse(t->host, t->port, &ra->addr, &ra->addrlen) < 0) {
        ra->err = -1;
        snprintf(ra->text, sizeof(ra->text), "4.4.4 bad address literal [%s] in route", t->host);
    }
    return 1;
}

/* rs_work - in the pool: getaddrinfo (routes name hosts; no MX lookup) */
static void rs_work(void *arg)
{
    struct relay_resolve *q = arg;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    char port[8];
    int rc;

    if (relay_target_addr(q->t, &q->ra))
        return;
    snprintf(port, sizeof(port), "%d", q->t->port);
    rc = getaddrinfo(q->t->host, port, &hints, &ai);
    if (rc != 0) {
        q->ra.err = -1;
        snprintf(q->ra.text, sizeof(q->ra.text), "4.4.4 host %s not found: %s", q->t->host,
                 gai_strerror(rc));
        return;
    }
    if (ai->ai_addrlen <= sizeof(q->ra.addr)) {
        memcpy(&q->ra.addr, ai->ai_addr, ai->ai_addrlen);
        q->ra.addrlen = ai->ai_addrlen;
    } else {
        q->ra.err = -1;
        snprintf(q->ra.text, sizeof(q->ra.text), "4.4.4 host %s: address too long", q->t->host);
    }
    freeaddrinfo(ai);
}

/* rs_done - on the loop: the answer, unless nobody waits for it any more */
static void rs_done(void *arg)
{
    struct relay_resolve *q = arg;

    if (!q->cancelled)
        q->done(q->arg, &q->ra);
    free(q);
}

/* relay_resolve - see resolve.h */
struct relay_resolve *relay_resolve(struct pool *pool, const struct route_target *t,
                                    relay_resolve_fn done, void *arg)
{
    struct relay_resolve *q = xcalloc(1, sizeof(*q));

    q->t = t;
    q->done = done;
    q->arg = arg;
    pool_submit(pool, rs_work, rs_done, q);
    return q;
}

/* relay_resolve_cancel - see resolve.h */
void relay_resolve_cancel(struct relay_resolve *q)
{
    if (q)
        q->cancelled = 1;
}
