/* received.h - the Received: trace header (RFC 5321 4.4) */
#ifndef MX_MAIL_RECEIVED_H
#define MX_MAIL_RECEIVED_H

#include <stddef.h>
#include <time.h>

struct received_info {
    const char *helo;        /* as the client gave it; shown only when a domain or literal */
    const char *client_name; /* confirmed rDNS name or "unknown"; shown only when plain */
    const char *client_ip;
    const char *by;    /* our hostname */
    int esmtp;         /* EHLO was used */
    const char *tls;   /* "TLSv1.3 with cipher ..." or NULL */
    int auth;          /* SMTP AUTH was used: ESMTPA / ESMTPSA (RFC 3848) */
    const char *login; /* shown as "(Authenticated sender: ...)" when not NULL */
    const char *id;    /* queue id */
    const char *rcpt;  /* the recipient when there is exactly one, else NULL */
    time_t when;
};

/* received_format - the folded header with CRLF line ends into dst; length or -1 if it does not fit
 */
int received_format(const struct received_info *ri, char *dst, size_t dstlen);

/* received_date - RFC 5322 date-time in UTC */
void received_date(time_t t, char *dst, size_t dstlen);

#endif
