/*
 * accept.h - "the next hop can take it": the delivery agents' own
 * acceptance tests, run while the client still waits for our reply, so
 * that mxgate never accepts what it would later have to bounce to a
 * (possibly forged) sender. The session calls accept_offer at EHLO,
 * accept_rcpt at RCPT and accept_message at the end of DATA; each looks
 * at the recipients' routes (a Maildir's mailbox, an SMTP/LMTP next hop's
 * EHLO as relay/nexthop.h knows it). Where a next hop's capabilities are
 * unknown nothing is refused: the message is queued.
 */
#ifndef MX_QUEUE_ACCEPT_H
#define MX_QUEUE_ACCEPT_H

#include <stddef.h>
#include <stdint.h>

struct routes;
struct nexthops;
struct eightbit_scan;

/* What the EHLO reply announces. */
struct accept_offer {
    int smtputf8;
    int eightbitmime;
    uint64_t size; /* the SIZE parameter */
};

/* A refusal: "<code> <status> <text>". */
struct accept_reply {
    int code;
    char status[8];
    char text[256];
    const char *reason; /* for the log: what the route cannot take */
};

/*
 * accept_offer - what the gateway can take for some route: an extension
 * is announced when at least one route takes it (or is unknown), SIZE is
 * max_message_size (the gateway's own limit) or, when every route has a smaller known limit, the
 * largest of those. Which recipient goes where is only known at RCPT,
 * where accept_rcpt refuses what its own route cannot take.
 */
void accept_offer(const struct routes *rt, struct nexthops *nh, uint64_t max_message_size,
                  struct accept_offer *o);

/*
 * accept_rcpt - can rcpt ("local@domain", routed) get mail from sender
 * with MAIL SIZE= mail_size (0: none given)? 0 yes; -1 with r filled:
 * 550 5.1.3 a local part no Maildir can hold, 550 5.1.1 an unknown
 * mailbox (a route without create), 550 5.2.1 a mailbox that is a
 * symlink, 451 4.3.0 a Maildir root that cannot be read, 553 5.6.7 a
 * non-ASCII address for a next hop without SMTPUTF8, 552 5.3.4 a SIZE
 * above the next hop's.
 */
int accept_rcpt(const struct routes *rt, struct nexthops *nh, const char *sender, const char *rcpt,
                uint64_t mail_size, struct accept_reply *r);

/*
 * accept_message - the final dot: can every recipient's route take this
 * message of size octets (as stored, our Received header included)?
 * smtputf8: MAIL had SMTPUTF8; sc: what the text held. 0 yes; -1 with r:
 * 550 5.6.9 a UTF-8 header for a next hop without SMTPUTF8, 554 5.6.3 8-bit
 * text for one without 8BITMIME, 552 5.3.4 over a next hop's SIZE.
 */
int accept_message(const struct routes *rt, struct nexthops *nh, char *const *rcpts, size_t n,
                   int smtputf8, const struct eightbit_scan *sc, uint64_t size,
                   struct accept_reply *r);

#endif
