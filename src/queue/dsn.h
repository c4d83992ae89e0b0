/* dsn.h - RFC 3464 delivery status notifications (bounces) */
#ifndef MX_QUEUE_DSN_H
#define MX_QUEUE_DSN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct spool_envelope;

struct dsn_failure {
    const char *rcpt;       /* the failed recipient, "local@domain" */
    int code;               /* the SMTP reply code that decided it (0 if none) */
    const char *text;       /* the diagnostic, e.g. "5.1.1 unknown user" or "lifetime expired" */
    const char *remote_mta; /* name of the host that said so, or NULL */
};

/*
 * dsn_build - a multipart/report; report-type=delivery-status message from
 * MAILER-DAEMON@reporting_mta to env->sender telling which recipients
 * failed: a human-readable part, a message/delivery-status part (RFC 3464:
 * Reporting-MTA, Arrival-Date, per recipient Final-Recipient, Action:
 * failed, Status, Diagnostic-Code: smtp; ...) and a text/rfc822-headers
 * part with the original header (read from body_fd, which is dot-stuffed
 * CRLF; the result must be too). Returns a malloc'd, dot-stuffed CRLF
 * message body with *outlen set (a NUL follows the last octet, not counted
 * in *outlen), or NULL on error with errno set (EINVAL for bad arguments,
 * the read error for body_fd). When env->smtputf8 is set the report uses
 * the RFC 6533 global types and may carry UTF-8 (8bit) addresses.
 */
char *dsn_build(const char *reporting_mta, const struct spool_envelope *env, int body_fd,
                off_t body_off, uint64_t body_len, const struct dsn_failure *f, size_t nf,
                time_t now, size_t *outlen);

#endif
