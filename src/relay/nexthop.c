/* nexthop.c - per route target: what its EHLO announced, and when */
#include "relay/nexthop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "relay/client.h"
#include "relay/resolve.h"

#define NH_KEY_MAX 320

struct nh_entry {
    struct nexthops *nh;
    struct route_target t; /* a copy: the route tables of reloads come and go */
    char key[NH_KEY_MAX];  /* route_target_format: equal targets are one entry */
    struct nexthop_caps caps;
    time_t answered;  /* last EHLO answer (0: never) */
    time_t attempted; /* last probe started (0: never) */
    struct relay_resolve *resolving;
    struct smtp_client *client;
    int unreachable_logged; /* the failure was logged; quiet until it changes */
};

struct nexthops {
    struct event_base *base;
    struct pool *pool;
    struct nexthop_opts o;
    char helo[256]; /* o.helo's copy: it outlives the configuration it came from */
    struct nh_entry **e;
    size_t n, cap;
};

static const char *const nh_probe_rcpt[] = {"postmaster"}; /* never sent: EHLO only */

/* nexthops_new - see nexthop.h */
struct nexthops *nexthops_new(struct event_base *base, struct pool *pool,
                              const struct nexthop_opts *o)
{
    struct nexthops *nh = xcalloc(1, sizeof(*nh));

    nh->base = base;
    nh->pool = pool;
    nh->o = *o;
    snprintf(nh->helo, sizeof(nh->helo), "%s", o->helo ? o->helo : "localhost");
    nh->o.helo = nh->helo;
    return nh;
}

/* nh_find - the entry of t, or NULL */
static struct nh_entry *nh_find(struct nexthops *nh, const struct route_target *t)
{
    char key[NH_KEY_MAX];

    if (!nh)
        return NULL;
    route_target_format(t, key, sizeof(key));
    for (size_t i = 0; i < nh->n; i++)
        if (strcmp(nh->e[i]->key, key) == 0)
            return nh->e[i];
    return NULL;
}

/* nexthops_add - see nexthop.h */
void nexthops_add(struct nexthops *nh, const struct route_target *t)
{
    struct nh_entry *e;

    if (t->kind == ROUTE_MAILDIR || t->kind == ROUTE_MX || nh_find(nh, t))
        return;
    if (nh->n == nh->cap) {
        size_t cap = nh->cap ? nh->cap * 2 : 8;
        struct nh_entry **ne = xrealloc(nh->e, cap * sizeof(*ne));
        nh->e = ne;
        nh->cap = cap;
    }
    e = xcalloc(1, sizeof(*e));
    e->nh = nh;
    e->t = *t;
    route_target_format(t, e->key, sizeof(e->key));
    nh->e[nh->n++] = e;
}

/* nh_keep - an EHLO answer: note it, log it when it differs from the last */
static void nh_keep(struct nh_entry *e, unsigned ext, uint64_t size)
{
    struct nexthop_caps c = {
        .known = 1,
        .smtputf8 = (ext & SMTP_EXT_SMTPUTF8) != 0,
        .eightbitmime = (ext & SMTP_EXT_8BITMIME) != 0,
        .size = (ext & SMTP_EXT_SIZE) ? size : 0,
    };

    if (!e->caps.known || c.smtputf8 != e->caps.smtputf8 ||
        c.eightbitmime != e->caps.eightbitmime || c.size != e->caps.size)
        log_info("event=nexthop relay=%s status=known smtputf8=%s eightbitmime=%s size=%llu",
                 log_q(e->key), c.smtputf8 ? "yes" : "no", c.eightbitmime ? "yes" : "no",
                 (unsigned long long)c.size);
    e->caps = c;
    e->answered = clock_now();
    e->unreachable_logged = 0;
}

/* nh_probe_done - the probe's EHLO answer, or why there was none */
static void nh_probe_done(void *arg, const struct smtp_client_result *res)
{
    struct nh_entry *e = arg;

    e->client = NULL;
    if (res->ehlo_ok) {
        nh_keep(e, res->ext, res->size_max);
        return;
    }
    if (!e->unreachable_logged)
        log_info("event=nexthop relay=%s status=%s reason=%s", log_q(e->key),
                 e->caps.known ? "stale" : "unknown",
                 log_q(res->nrcpt ? res->rcpt[0].text : "no answer"));
    e->unreachable_logged = 1;
}

/* nh_connect - ask the next hop at addr */
static void nh_connect(struct nh_entry *e, const struct relay_addr *ra)
{
    const struct nexthop_opts *o = &e->nh->o;
    struct smtp_client_req req = {
        .lmtp = e->t.kind == ROUTE_LMTP,
        .addrlen = ra->addrlen,
        .helo = o->helo,
        .sender = "",
        .rcpts = nh_probe_rcpt,
        .nrcpt = 1,
        .body_fd = -1,
        .tls = o->tls,
        .connect_timeout = (int)o->connect_timeout,
        .command_timeout = (int)o->command_timeout,
        .ehlo_only = 1,
        .done = nh_probe_done,
        .arg = e,
    };

    memcpy(&req.addr, &ra->addr, sizeof(req.addr));
    e->client = smtp_client_start(e->nh->base, &req);
}

/* nh_resolved - the name's address, or why there is none */
static void nh_resolved(void *arg, const struct relay_addr *ra)
{
    struct nh_entry *e = arg;

    e->resolving = NULL;
    if (ra->err == 0) {
        nh_connect(e, ra);
        return;
    }
    if (!e->unreachable_logged)
        log_info("event=nexthop relay=%s status=%s reason=%s", log_q(e->key),
                 e->caps.known ? "stale" : "unknown", log_q(ra->text));
    e->unreachable_logged = 1;
}

/* nh_probe - start asking, unless a probe is under way */
static void nh_probe(struct nh_entry *e)
{
    struct relay_addr ra;

    if (e->client || e->resolving)
        return;
    e->attempted = clock_now();
    if (relay_target_addr(&e->t, &ra)) {
        if (ra.err == 0)
            nh_connect(e, &ra);
        return;
    }
    if (e->nh->pool)
        e->resolving = relay_resolve(e->nh->pool, &e->t, nh_resolved, e);
}

/* nexthops_start - see nexthop.h */
void nexthops_start(struct nexthops *nh)
{
    for (size_t i = 0; nh && i < nh->n; i++)
        nh_probe(nh->e[i]);
}

/* nexthops_get - see nexthop.h */
void nexthops_get(struct nexthops *nh, const struct route_target *t, struct nexthop_caps *caps)
{
    struct nh_entry *e;
    time_t now = clock_now();

    memset(caps, 0, sizeof(*caps));
    if (t->kind == ROUTE_MAILDIR) { /* the file system takes any octet and any size */
        *caps = (struct nexthop_caps){.known = 1, .smtputf8 = 1, .eightbitmime = 1};
        return;
    }
    if (!(e = nh_find(nh, t)))
        return;
    if (e->caps.known && now - e->answered >= (time_t)nh->o.forget)
        e->caps.known = 0; /* too old to refuse mail on */
    if (now - e->attempted >= (time_t)(e->caps.known ? nh->o.refresh : nh->o.retry) &&
        now - e->answered >= (time_t)nh->o.refresh)
        nh_probe(e);
    *caps = e->caps;
}

/* nexthops_learn - see nexthop.h */
void nexthops_learn(struct nexthops *nh, const struct route_target *t,
                    const struct smtp_client_result *res)
{
    struct nh_entry *e = nh_find(nh, t);

    if (e && res->ehlo_ok)
        nh_keep(e, res->ext, res->size_max);
}

/* nexthops_free - see nexthop.h */
void nexthops_free(struct nexthops *nh)
{
    if (!nh)
        return;
    for (size_t i = 0; i < nh->n; i++) {
        if (nh->e[i]->client)
            smtp_client_cancel(nh->e[i]->client);
        relay_resolve_cancel(nh->e[i]->resolving);
        free(nh->e[i]);
    }
    free(nh->e);
    free(nh);
}
