/* session_log.c - what the queued line tells of a message: its Message-ID and its recipients */
#include "smtp/session_internal.h"

#include <stdio.h>
#include <string.h>

#include "core/xmalloc.h"
#include "mail/header.h"

#define SESSION_LOG_MSGID_MAX 256 /* longer ones are cut: the log line stays readable */
#define SESSION_LOG_RCPTS_MAX 900 /* then ",..." (nrcpt= has the count) */

/* session_log_msgid - the first Message-ID of the header section the session kept,
 * unfolded; NULL when there is none */
char *session_log_msgid(const struct session *s)
{
    struct hdr_field f;
    char v[SESSION_LOG_MSGID_MAX];
    size_t off = 0;

    while (s->cl.header && hdr_next(s->cl.header, s->cl.header_len, &off, &f)) {
        if (!hdr_is(&f, "Message-ID"))
            continue;
        if (hdr_unfold(&f, v, sizeof(v)) < 0) {
            size_t n = f.value_len < sizeof(v) - 4 ? f.value_len : sizeof(v) - 4;
            memcpy(v, f.value, n);
            memcpy(v + n, "...", 4);
        }
        return xstrdup(v);
    }
    return NULL;
}

/* session_log_rcpts - "<a@x>,<b@y>", cut with ",..." past SESSION_LOG_RCPTS_MAX octets */
char *session_log_rcpts(const struct smtp_tx *tx)
{
    char *out = xcalloc(1, SESSION_LOG_RCPTS_MAX + 8);
    size_t len = 0;

    for (size_t i = 0; i < tx->nrcpt; i++) {
        size_t n = strlen(tx->rcpt[i]) + 2 + (i > 0);
        if (len + n > SESSION_LOG_RCPTS_MAX) {
            memcpy(out + len, ",...", 5);
            break;
        }
        len += (size_t)snprintf(out + len, n + 1, "%s<%s>", i > 0 ? "," : "", tx->rcpt[i]);
    }
    return out;
}
