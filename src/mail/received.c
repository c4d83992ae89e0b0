/* received.c - the Received: trace header */
#include "mail/received.h"

#include <stdio.h>
#include <string.h>

#include "mail/address.h"

/* received_date - "Wed, 25 Nov 2026 13:00:00 +0000" (we never call setlocale: C names) */
void received_date(time_t t, char *dst, size_t dstlen)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(dst, dstlen, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* received_name_ok - a DNS name as resolvers return them: letters, digits, '.', '-', '_' */
static int received_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    return n > 0 && n <= SMTP_DOMAIN_MAX &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == n;
}

/*
 * received_format - one line per clause, continuation lines start with a
 * TAB. What the client chose (the HELO name) and what its DNS chose (the
 * name) appear only when they are plain names: "(", ")", "[", spaces, CR or
 * 8-bit octets there would break the header or fake the "(name [address])"
 * that readers trust; "unknown" stands in for them.
 */
/* received_login_ok - a login fits a comment: printable ASCII without ( ) \\ */
static int received_login_ok(const char *l)
{
    if (!l || !*l || strlen(l) > 255)
        return 0;
    for (; *l; l++)
        if (*l <= 0x20 || *l >= 0x7f || strchr("()\\", *l))
            return 0;
    return 1;
}

int received_format(const struct received_info *ri, char *dst, size_t dstlen)
{
    const char *helo = ri->helo && addr_host_ok(ri->helo) ? ri->helo : "unknown";
    const char *name = received_name_ok(ri->client_name) ? ri->client_name : "unknown";
    int login = ri->auth && received_login_ok(ri->login);
    char date[64];
    int n;

    received_date(ri->when, date, sizeof(date));
    /* RFC 3848: ESMTPS for TLS, ESMTPA / ESMTPSA for SMTP AUTH */
    n = snprintf(dst, dstlen,
                 "Received: from %s (%s [%s])\r\n"
                 "%s%s%s"
                 "\tby %s (mxgate) with %s%s%s%s%s%s\r\n"
                 "\tid %s%s%s%s; %s\r\n",
                 helo, name, ri->client_ip, login ? "\t(Authenticated sender: " : "",
                 login ? ri->login : "", login ? ")\r\n" : "", ri->by, ri->esmtp ? "ESMTP" : "SMTP",
                 ri->tls ? "S" : "", ri->auth ? "A" : "", ri->tls ? " (using " : "",
                 ri->tls ? ri->tls : "", ri->tls ? ")" : "", ri->id, ri->rcpt ? " for <" : "",
                 ri->rcpt ? ri->rcpt : "", ri->rcpt ? ">" : "", date);
    return n < 0 || (size_t)n >= dstlen ? -1 : n;
}
