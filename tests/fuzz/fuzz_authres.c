/*
 * fuzz_authres.c - libFuzzer harness for the Authentication-Results field
 * (authres_format, authres_claims) and the DMARC record parser. The input,
 * split at NUL octets, gives the authserv-id, the SPF identity and result,
 * a DKIM signature's domain, selector, b= and reason (repeated up to eight
 * times), the DMARC result, policy and From: domain, and a DMARC record.
 * Properties: the value always fits AUTHRES_MAX; its only line breaks are
 * folds ("\r\n\t"), no line reaches 998 octets, no other control octet
 * appears; every ';' separates one resinfo (nothing from outside adds one);
 * a plain authserv-id is claimed by our own field; a parsed record's values
 * are in range.
 */
#include <string.h>

#include "fuzz.h"
#include "policy/authres.h"
#include "policy/dmarc.h"
#include "policy/policy.h"

#define NFIELDS 11

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

/* split - the input's NUL-separated fields, each NUL-terminated in buf */
static void split(const uint8_t *data, size_t size, char *buf, const char *f[NFIELDS])
{
    size_t n = 0;

    memcpy(buf, data, size);
    buf[size] = '\0';
    f[n++] = buf;
    for (size_t i = 0; i < size && n < NFIELDS; i++)
        if (buf[i] == '\0')
            f[n++] = buf + i + 1;
    while (n < NFIELDS)
        f[n++] = "";
}

/* fill - the results a session could hold */
static void fill(struct policy_client *cl, const char *f[NFIELDS], unsigned ndkim)
{
    static struct policy_auth auth; /* the session allocates it at MAIL */
    struct policy_auth *a = &auth;

    memset(cl, 0, sizeof(*cl));
    memset(a, 0, sizeof(*a));
    cl->auth = a;
    snprintf(a->spf_identity, sizeof(a->spf_identity), "%s", f[1]);
    snprintf(a->spf, sizeof(a->spf), "%s", f[2]);
    a->spf_helo = ndkim & 1;
    for (unsigned i = 0; i < ndkim && i < POLICY_DKIM_MAX; i++) {
        snprintf(a->dkim[i].domain, sizeof(a->dkim[i].domain), "%s", f[3]);
        snprintf(a->dkim[i].selector, sizeof(a->dkim[i].selector), "%s", f[4]);
        snprintf(a->dkim[i].b, sizeof(a->dkim[i].b), "%s", f[5]);
        snprintf(a->dkim[i].reason, sizeof(a->dkim[i].reason), "%s", f[6]);
        snprintf(a->dkim[i].result, sizeof(a->dkim[i].result), "%s", i % 2 ? "fail" : "pass");
    }
    a->ndkim = ndkim;
    snprintf(a->dmarc, sizeof(a->dmarc), "%s", f[7]);
    snprintf(a->dmarc_policy, sizeof(a->dmarc_policy), "%s", f[8]);
    snprintf(a->from_domain, sizeof(a->from_domain), "%s", f[9]);
}

/* check_lines - folds only, lines under 998, no control octet; the number of ';' */
static size_t check_lines(const char *v)
{
    size_t col = 24, semis = 0;

    for (const char *p = v; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\r') {
            FUZZ_ASSERT(p[1] == '\n' && p[2] == '\t');
            p += 2;
            col = 1;
            continue;
        }
        FUZZ_ASSERT(c >= 0x20 && c != 0x7f);
        semis += c == ';';
        FUZZ_ASSERT(++col < 998);
    }
    return semis;
}

/* plain_id - an id that must come back from our own field: printable, no ';' */
static int plain_id(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n > 200)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)id[i] < 0x21 || (unsigned char)id[i] >= 0x7f || id[i] == ';')
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char buf[65536], out[AUTHRES_MAX];
    const char *f[NFIELDS];
    struct policy_client cl;
    struct dmarc_record r;
    unsigned ndkim = size ? data[0] % (POLICY_DKIM_MAX + 1) : 0;
    size_t resinfo;

    if (size >= sizeof(buf))
        return 0;
    split(data, size, buf, f);
    fill(&cl, f, ndkim);
    FUZZ_ASSERT(authres_format(&cl, f[0], out, sizeof(out)) == 0);
    resinfo = (cl.auth->spf[0] != 0) + ndkim + (cl.auth->dmarc[0] != 0);
    FUZZ_ASSERT(check_lines(out) == (resinfo ? resinfo : 1));
    if (plain_id(f[0]))
        FUZZ_ASSERT(authres_claims(out, strlen(out), f[0]) == 1);
    (void)authres_claims((const char *)data, size, f[0]);
    if (dmarc_record_parse(f[10], strlen(f[10]), &r) == DMARC_REC_OK) {
        FUZZ_ASSERT(r.p >= DMARC_P_NONE && r.p <= DMARC_P_REJECT);
        FUZZ_ASSERT(r.pct >= 0 && r.pct <= 100);
    }
    (void)dmarc_record_parse((const char *)data, size, &r);
    return 0;
}
