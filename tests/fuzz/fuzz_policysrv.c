/*
 * fuzz_policysrv.c - libFuzzer harness for the policy delegation request
 * parser (policysrv/request.c): the input is split at LF into attribute
 * lines, as the connection does, until an empty line or an error. Properties:
 * an error is a short printable string; a kept value holds no control
 * octet and came from a line within the bound; after the empty line a
 * complete request has its required attributes and a known state; clearing
 * leaves the request empty.
 */
#include <arpa/inet.h>
#include <string.h>

#include "fuzz.h"
#include "policysrv/request.h"

/* check_printable - an error message: short, printable */
static void check_printable(const char *s)
{
    FUZZ_ASSERT(s != NULL && s[0] != '\0' && strlen(s) < 128);
    for (; *s; s++)
        FUZZ_ASSERT(*s >= 0x20 && *s < 0x7f);
}

/* check_value - a kept attribute value */
static void check_value(const char *v)
{
    if (!v)
        return;
    FUZZ_ASSERT(strlen(v) < POLICYSRV_LINE_MAX);
    for (; *v; v++)
        FUZZ_ASSERT((unsigned char)*v >= 0x20 && *v != 0x7f);
}

/* check_complete - what policysrv_req_complete promises */
static void check_complete(const struct policysrv_req *r)
{
    unsigned char a[16];

    FUZZ_ASSERT(r->request && strcmp(r->request, "smtpd_access_policy") == 0);
    FUZZ_ASSERT(r->protocol_state && r->client_address);
    FUZZ_ASSERT(inet_pton(AF_INET, r->client_address, a) == 1 ||
                inet_pton(AF_INET6, r->client_address, a) == 1);
    FUZZ_ASSERT(strcmp(r->protocol_state, "RCPT") != 0 || (r->recipient && r->recipient[0]));
}

/* LLVMFuzzerTestOneInput - lines until the empty one, then the request as a whole */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct policysrv_req r;
    const char *p = (const char *)data, *end = p + size, *err = NULL;
    int failed = 0;

    memset(&r, 0, sizeof(r));
    while (p < end) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        size_t len = lf ? (size_t)(lf - p) : (size_t)(end - p);
        if (len == 0)
            break;
        if (policysrv_req_line(&r, p, len, &err) < 0) {
            check_printable(err);
            failed = 1;
            break;
        }
        p += len + (lf ? 1 : 0);
    }
    check_value(r.request);
    check_value(r.protocol_state);
    check_value(r.client_address);
    check_value(r.client_name);
    check_value(r.reverse_client_name);
    check_value(r.helo_name);
    check_value(r.sender);
    check_value(r.recipient);
    check_value(r.sasl_username);
    check_value(r.instance);
    FUZZ_ASSERT(r.nattrs <= POLICYSRV_ATTRS_MAX + 1);
    if (!failed) {
        if (policysrv_req_complete(&r, &err) == 0)
            check_complete(&r);
        else
            check_printable(err);
    }
    policysrv_req_clear(&r);
    FUZZ_ASSERT(r.request == NULL && r.nattrs == 0);
    return 0;
}
