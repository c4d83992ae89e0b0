/* route.h - where mail for a domain goes: "smtp:[host]:port", "lmtp:unix:/path", "maildir:/path",
 * or "mx": the recipient domain's own mail servers (relay/mx.h) */
#ifndef MX_RELAY_ROUTE_H
#define MX_RELAY_ROUTE_H

#include <limits.h>
#include <stddef.h>

enum route_kind { ROUTE_SMTP, ROUTE_LMTP, ROUTE_MAILDIR, ROUTE_MX };

struct route_target {
    enum route_kind kind;
    char host[256];      /* SMTP/LMTP over TCP: name or IP literal, without brackets */
    int literal;         /* "[host]": an address, no MX lookup */
    int port;            /* 25 for smtp, 24 for lmtp unless given */
    char path[PATH_MAX]; /* lmtp:unix: socket path, or maildir root (absolute) */
};

/*
 * route_target_parse - parse s; relative paths are made absolute against
 * the current directory. Returns 0, or -1 with a message in err.
 */
int route_target_parse(const char *s, struct route_target *t, char *err, size_t errlen);

/* route_target_format - back to the configuration form, for logs */
void route_target_format(const struct route_target *t, char *dst, size_t dstlen);

#endif
