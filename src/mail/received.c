/* received.c - the Received: trace header */
#include "mail/received.h"

#include <stdio.h>

/* received_date - "Wed, 25 Nov 2026 13:00:00 +0000" (we never call setlocale: C names) */
void received_date(time_t t, char *dst, size_t dstlen)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(dst, dstlen, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* received_format - one line per clause, continuation lines start with a TAB */
int received_format(const struct received_info *ri, char *dst, size_t dstlen)
{
    char date[64];
    int n;

    received_date(ri->when, date, sizeof(date));
    n = snprintf(dst, dstlen,
                 "Received: from %s (%s [%s])\r\n"
                 "\tby %s (mxgate) with %s%s%s%s\r\n"
                 "\tid %s%s%s%s; %s\r\n",
                 ri->helo, ri->client_name, ri->client_ip, ri->by, ri->esmtp ? "ESMTP" : "SMTP",
                 ri->tls ? "S (using " : "", ri->tls ? ri->tls : "", ri->tls ? ")" : "", ri->id,
                 ri->rcpt ? " for <" : "", ri->rcpt ? ri->rcpt : "", ri->rcpt ? ">" : "", date);
    return n < 0 || (size_t)n >= dstlen ? -1 : n;
}
