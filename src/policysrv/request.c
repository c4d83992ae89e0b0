/* request.c - Postfix policy delegation requests, parsed strictly */
#include "policysrv/request.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"

/* The attributes kept, and where. */
static const struct {
    const char *name;
    size_t off;
} policysrv_attrs[] = {
    {"request", offsetof(struct policysrv_req, request)},
    {"protocol_state", offsetof(struct policysrv_req, protocol_state)},
    {"client_address", offsetof(struct policysrv_req, client_address)},
    {"client_name", offsetof(struct policysrv_req, client_name)},
    {"reverse_client_name", offsetof(struct policysrv_req, reverse_client_name)},
    {"helo_name", offsetof(struct policysrv_req, helo_name)},
    {"sender", offsetof(struct policysrv_req, sender)},
    {"recipient", offsetof(struct policysrv_req, recipient)},
    {"sasl_username", offsetof(struct policysrv_req, sasl_username)},
    {"instance", offsetof(struct policysrv_req, instance)},
};

/* policysrv_name_ok - an attribute name: lower-case letters, digits and '_' */
static int policysrv_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > POLICYSRV_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

/* policysrv_value_ok - no control octet (CR, NUL, ...) in a value; UTF-8 passes */
static int policysrv_value_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* policysrv_req_line - see request.h */
int policysrv_req_line(struct policysrv_req *r, const char *line, size_t len, const char **err)
{
    const char *eq = memchr(line, '=', len);
    size_t nl;

    if (len > POLICYSRV_LINE_MAX) {
        *err = "attribute line too long";
        return -1;
    }
    if (++r->nattrs > POLICYSRV_ATTRS_MAX) {
        *err = "too many attributes";
        return -1;
    }
    if (!eq || !policysrv_name_ok(line, (size_t)(eq - line))) {
        *err = "not a name=value line";
        return -1;
    }
    nl = (size_t)(eq - line);
    if (!policysrv_value_ok(eq + 1, len - nl - 1)) {
        *err = "control character in a value";
        return -1;
    }
    for (size_t i = 0; i < sizeof(policysrv_attrs) / sizeof(policysrv_attrs[0]); i++) {
        char **slot = (char **)((char *)r + policysrv_attrs[i].off);
        if (strlen(policysrv_attrs[i].name) != nl || memcmp(policysrv_attrs[i].name, line, nl))
            continue;
        if (*slot) {
            *err = "attribute given twice";
            return -1;
        }
        *slot = xmalloc(len - nl);
        memcpy(*slot, eq + 1, len - nl - 1);
        (*slot)[len - nl - 1] = '\0';
        return 0;
    }
    return 0; /* an attribute we do not use (Postfix adds new ones over time) */
}

/* policysrv_state_ok - a protocol_state Postfix sends */
static int policysrv_state_ok(const char *s)
{
    static const char *const states[] = {"CONNECT", "EHLO", "HELO", "MAIL",           "RCPT",
                                         "DATA",    "BDAT", "VRFY", "END-OF-MESSAGE", "ETRN"};

    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
        if (strcmp(s, states[i]) == 0)
            return 1;
    return 0;
}

/* policysrv_req_complete - see request.h */
int policysrv_req_complete(const struct policysrv_req *r, const char **err)
{
    unsigned char a[16];

    if (r->nattrs == 0)
        *err = "empty request";
    else if (!r->request || strcmp(r->request, "smtpd_access_policy") != 0)
        *err = "request is not smtpd_access_policy";
    else if (!r->protocol_state || !policysrv_state_ok(r->protocol_state))
        *err = "missing or unknown protocol_state";
    else if (!r->client_address || (inet_pton(AF_INET, r->client_address, a) != 1 &&
                                    inet_pton(AF_INET6, r->client_address, a) != 1))
        *err = "missing or bad client_address";
    else if (strcmp(r->protocol_state, "RCPT") == 0 && (!r->recipient || !r->recipient[0]))
        *err = "RCPT without recipient";
    else
        return 0;
    return -1;
}

/* policysrv_req_clear - see request.h */
void policysrv_req_clear(struct policysrv_req *r)
{
    for (size_t i = 0; i < sizeof(policysrv_attrs) / sizeof(policysrv_attrs[0]); i++)
        free(*(char **)((char *)r + policysrv_attrs[i].off));
    memset(r, 0, sizeof(*r));
}
