/* accept.c - refuse at SMTP time what a route's delivery agent cannot take */
#include "queue/accept.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "mail/eightbit.h"
#include "queue/maildir.h"
#include "relay/nexthop.h"
#include "relay/routes.h"

/* ac_refuse - fill r; always -1 */
static int ac_refuse(struct accept_reply *r, int code, const char *status, const char *reason,
                     const char *fmt, const char *addr)
{
    r->code = code;
    snprintf(r->status, sizeof(r->status), "%s", status);
    snprintf(r->text, sizeof(r->text), fmt, addr);
    r->reason = reason;
    return -1;
}

/* ac_route - the route of "local@domain" */
static const struct routes_entry *ac_route(const struct routes *rt, const char *addr)
{
    const char *at = strrchr(addr, '@');

    return routes_find(rt, at ? at + 1 : "");
}

/* accept_offer - see accept.h */
void accept_offer(const struct routes *rt, struct nexthops *nh, uint64_t max_message_size,
                  struct accept_offer *o)
{
    uint64_t max = max_message_size, largest = 0;
    size_t n = routes_count(rt);
    int limited = n > 0;

    o->smtputf8 = o->eightbitmime = n == 0;
    for (size_t i = 0; i < n; i++) {
        struct nexthop_caps c;
        nexthops_get(nh, &routes_at(rt, i)->target, &c);
        o->smtputf8 |= !c.known || c.smtputf8;
        o->eightbitmime |= !c.known || c.eightbitmime;
        if (!c.known || c.size == 0)
            limited = 0;
        else if (c.size > largest)
            largest = c.size;
    }
    o->size = limited && largest < max ? largest : max;
}

/* ac_maildir - the Maildir's own test of the mailbox */
static int ac_maildir(const struct routes_entry *rt, const char *rcpt, struct accept_reply *r)
{
    char mailbox[NAME_MAX + 1];

    switch (maildir_accept(rt->target.path, rcpt, rt->create, mailbox, sizeof(mailbox))) {
    case MAILDIR_OK:
        return 0;
    case MAILDIR_BAD_NAME:
        return ac_refuse(r, 550, "5.1.3", "maildir bad-local-part",
                         "<%s>: Recipient address rejected: not a valid mailbox name", rcpt);
    case MAILDIR_UNKNOWN:
        return ac_refuse(r, 550, "5.1.1", "maildir unknown-mailbox",
                         "<%s>: Recipient address rejected: User unknown", rcpt);
    case MAILDIR_REFUSED:
        return ac_refuse(r, 550, "5.2.1", "maildir not-a-directory",
                         "<%s>: Recipient address rejected: mailbox unavailable", rcpt);
    default:
        return ac_refuse(r, 451, "4.3.0", "maildir root-unreadable",
                         "<%s>: Recipient address rejected: mailbox temporarily unavailable", rcpt);
    }
}

/* accept_rcpt - see accept.h */
int accept_rcpt(const struct routes *routes, struct nexthops *nh, const char *sender,
                const char *rcpt, uint64_t mail_size, struct accept_reply *r)
{
    const struct routes_entry *rt = ac_route(routes, rcpt);
    struct nexthop_caps c;

    if (!rt)
        return 0; /* the session refuses unrouted recipients itself */
    if (rt->target.kind == ROUTE_MAILDIR)
        return ac_maildir(rt, rcpt, r);
    nexthops_get(nh, &rt->target, &c);
    if (!c.known)
        return 0; /* unknown is no reason to refuse: the queue will try */
    if (!c.smtputf8 && eightbit_str(rcpt))
        return ac_refuse(r, 553, "5.6.7", "nexthop no-smtputf8",
                         "<%s>: Non-ASCII addresses not permitted for that recipient", rcpt);
    if (!c.smtputf8 && eightbit_str(sender))
        return ac_refuse(r, 553, "5.6.7", "nexthop no-smtputf8",
                         "<%s>: Non-ASCII addresses not permitted for that sender", sender);
    if (c.size && mail_size > c.size)
        return ac_refuse(r, 552, "5.3.4", "nexthop size",
                         "<%s>: Message size exceeds the limit for that recipient", rcpt);
    return 0;
}

/* ac_message_one - one recipient's route against the message */
static int ac_message_one(struct nexthops *nh, const struct routes_entry *rt, const char *rcpt,
                          int smtputf8, const struct eightbit_scan *sc, uint64_t size,
                          struct accept_reply *r)
{
    struct nexthop_caps c;

    nexthops_get(nh, &rt->target, &c);
    if (!c.known)
        return 0;
    if (smtputf8 && sc->header_8bit && !c.smtputf8)
        return ac_refuse(r, 550, "5.6.9", "nexthop no-smtputf8",
                         "UTF-8 header message cannot be transferred to <%s>", rcpt);
    if ((sc->header_8bit || sc->body_8bit) && !c.eightbitmime && !c.smtputf8)
        return ac_refuse(r, 554, "5.6.3", "nexthop no-8bitmime",
                         "8-bit message cannot be transferred to <%s>: conversion required", rcpt);
    if (c.size && size > c.size)
        return ac_refuse(r, 552, "5.3.4", "nexthop size", "Message size exceeds the limit for <%s>",
                         rcpt);
    return 0;
}

/* accept_message - see accept.h */
int accept_message(const struct routes *routes, struct nexthops *nh, char *const *rcpts, size_t n,
                   int smtputf8, const struct eightbit_scan *sc, uint64_t size,
                   struct accept_reply *r)
{
    for (size_t i = 0; i < n; i++) {
        const struct routes_entry *rt = ac_route(routes, rcpts[i]);
        if (rt && ac_message_one(nh, rt, rcpts[i], smtputf8, sc, size, r) < 0)
            return -1;
    }
    return 0;
}
