/*
 * fuzz_proxyproto.c - libFuzzer harness for proxyproto_parse: the first
 * octet picks the versions a listener takes, the rest is what a balancer
 * sends. Properties: an error is a short printable string; "more" means
 * every octet so far is the header's and the bound is not reached; a
 * complete header is within its version's bound, ends as its version says,
 * parses the same without the octets after it, and not at all one octet
 * shorter; a prefix refused means the whole refused (reading more never
 * rescues a bad header); a client address has a known family and length.
 */
#include <netinet/in.h>
#include <string.h>

#include "fuzz.h"
#include "smtp/proxyproto.h"

/* check_error - BAD says why in a few printable words */
static void check_error(const struct proxyproto_result *r)
{
    FUZZ_ASSERT(r->error != NULL && r->error[0] != '\0' && strlen(r->error) < 128);
    for (const char *c = r->error; *c; c++)
        FUZZ_ASSERT(*c >= 0x20 && *c < 0x7f);
}

/* check_done - a complete header of p[0..n) */
static void check_done(const uint8_t *p, size_t n, unsigned versions,
                       const struct proxyproto_result *r)
{
    struct proxyproto_result again;

    FUZZ_ASSERT(r->len >= 15 && r->len <= n);
    if (r->version == 1)
        FUZZ_ASSERT(r->len <= PROXYPROTO_V1_MAX && p[r->len - 2] == '\r' && p[r->len - 1] == '\n');
    else
        FUZZ_ASSERT(r->version == 2 && r->len >= 16 && r->len <= PROXYPROTO_V2_MAX);
    if (!r->local) {
        FUZZ_ASSERT((r->src.ss_family == AF_INET && r->srclen == sizeof(struct sockaddr_in)) ||
                    (r->src.ss_family == AF_INET6 && r->srclen == sizeof(struct sockaddr_in6)));
        FUZZ_ASSERT(r->dst.ss_family == r->src.ss_family && r->dstlen == r->srclen);
    }
    FUZZ_ASSERT(proxyproto_parse(p, r->len, versions, &again) == PROXYPROTO_DONE);
    FUZZ_ASSERT(again.len == r->len && again.local == r->local && again.version == r->version);
    FUZZ_ASSERT(again.local || memcmp(&again.src, &r->src, sizeof(r->src)) == 0);
    FUZZ_ASSERT(proxyproto_parse(p, r->len - 1, versions, &again) == PROXYPROTO_MORE);
}

/* LLVMFuzzerTestOneInput - one input: parse it whole and cut, check the properties */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proxyproto_result r, half;
    enum proxyproto_status st, st_half;
    unsigned versions;

    if (size < 1)
        return 0;
    versions = (data[0] % 3) + 1;
    data++;
    size--;
    st = proxyproto_parse(data, size, versions, &r);
    if (st == PROXYPROTO_BAD)
        check_error(&r);
    else if (st == PROXYPROTO_MORE)
        FUZZ_ASSERT(r.len == size && size < PROXYPROTO_V2_MAX);
    else
        check_done(data, size, versions, &r);
    st_half = proxyproto_parse(data, size / 2, versions, &half);
    if (st_half == PROXYPROTO_BAD)
        FUZZ_ASSERT(st == PROXYPROTO_BAD);
    if (st_half == PROXYPROTO_DONE)
        FUZZ_ASSERT(st == PROXYPROTO_DONE && r.len == half.len);
    return 0;
}
