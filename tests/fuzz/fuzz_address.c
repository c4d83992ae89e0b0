/*
 * fuzz_address.c - libFuzzer harness for addr_parse and addr_format: any
 * string as the inside of a path, with and without SMTPUTF8. Properties:
 * a refused path leaves the struct zeroed; an accepted one obeys the
 * RFC 5321 limits; SMTPUTF8 only ever allows more; and the round trip
 * holds: the formatted address parses again to the same address, and
 * formats to the same text; the canonical form is a fixed point.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "mail/address.h"

/* is_zero - every octet of a is 0 */
static int is_zero(const struct addr *a)
{
    static const struct addr zero;

    return memcmp(a, &zero, sizeof(zero)) == 0;
}

/* has_8bit - any octet >= 0x80 */
static int has_8bit(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s >= 0x80)
            return 1;
    return 0;
}

/* has_upper - any ASCII capital (domains are stored lower-cased) */
static int has_upper(const char *s)
{
    for (; *s != '\0'; s++)
        if (*s >= 'A' && *s <= 'Z')
            return 1;
    return 0;
}

/* same_addr - equal in everything but the dropped source route */
static int same_addr(const struct addr *a, const struct addr *b)
{
    return strcmp(a->local, b->local) == 0 && strcmp(a->domain, b->domain) == 0 &&
           a->quoted == b->quoted && a->has_percent == b->has_percent &&
           a->has_bang == b->has_bang && a->has_at_in_local == b->has_at_in_local &&
           a->is_literal == b->is_literal;
}

/* check_fields - the limits and flags of an accepted address */
static void check_fields(const struct addr *a, int utf8)
{
    FUZZ_ASSERT(a->local[0] != '\0' && strlen(a->local) <= SMTP_LOCAL_MAX);
    FUZZ_ASSERT(strlen(a->domain) <= SMTP_DOMAIN_MAX && !has_upper(a->domain));
    FUZZ_ASSERT(a->domain[0] != '\0' || strcasecmp(a->local, "postmaster") == 0);
    FUZZ_ASSERT(a->is_literal == (a->domain[0] == '['));
    FUZZ_ASSERT(a->quoted == (a->local[0] == '"'));
    FUZZ_ASSERT(!a->has_percent || strchr(a->local, '%') != NULL);
    FUZZ_ASSERT(!a->has_bang || strchr(a->local, '!') != NULL);
    FUZZ_ASSERT(!a->has_at_in_local || (a->quoted && strchr(a->local, '@') != NULL));
    FUZZ_ASSERT(utf8 || (!has_8bit(a->local) && !has_8bit(a->domain)));
    FUZZ_ASSERT(addr_is_relay_trick(a) ==
                (a->has_percent || a->has_bang || a->had_route || a->has_at_in_local));
    if (a->domain[0] != '\0') {
        FUZZ_ASSERT(addr_domain_match(a->domain, a->domain));
        FUZZ_ASSERT(addr_domain_match(a->domain, "*"));
    }
}

/* check_round_trip - format, parse the text again, format again: nothing changes */
static void check_round_trip(const struct addr *a, int utf8)
{
    char text[SMTP_PATH_MAX * 2], again[SMTP_PATH_MAX * 2];
    struct addr b;
    int n = addr_format(a, text, sizeof(text));

    FUZZ_ASSERT(n > 0 && (size_t)n == strlen(text));
    FUZZ_ASSERT(addr_format(a, again, (size_t)n) == -1 && again[0] == '\0');
    FUZZ_ASSERT(addr_parse(text, utf8, &b) == ADDR_OK);
    FUZZ_ASSERT(same_addr(a, &b) && !b.had_route);
    FUZZ_ASSERT(addr_format(&b, again, (size_t)n + 1) == n);
    FUZZ_ASSERT(strcmp(text, again) == 0);
}

/* check_canon - the canonical form always exists and is its own canonical form
 * (unless the A-labels made it longer than a path may be) */
static void check_canon(const struct addr *a)
{
    char once[ADDR_CANON_MAX], twice[ADDR_CANON_MAX], folded[ADDR_CANON_MAX];
    int n = addr_canon_parsed(a, 0, once, sizeof(once));

    FUZZ_ASSERT(n > 0 && (size_t)n == strlen(once));
    FUZZ_ASSERT(addr_canon_parsed(a, ADDR_CANON_FOLD, folded, sizeof(folded)) == n);
    FUZZ_ASSERT(strcasecmp(once, folded) == 0);
    if (addr_canon(once, 0, twice, sizeof(twice)) >= 0)
        FUZZ_ASSERT(strcmp(once, twice) == 0);
}

/* check_one - parse with utf8 given or not; returns the result for comparison */
static enum addr_err check_one(const char *path, int utf8, struct addr *a)
{
    enum addr_err e = addr_parse(path, utf8, a);

    FUZZ_ASSERT(addr_strerror(e) != NULL);
    if (e != ADDR_OK) {
        FUZZ_ASSERT(is_zero(a));
        return e;
    }
    check_fields(a, utf8);
    check_round_trip(a, utf8);
    check_canon(a);
    return e;
}

/* LLVMFuzzerTestOneInput - one input: run it, check the properties */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct addr a7, a8;
    enum addr_err e7, e8;
    char *path;

    if (size > 4 * SMTP_PATH_MAX)
        return -1;                            /* the command parser never hands over longer paths */
    path = strndup((const char *)data, size); /* a path never holds a NUL */
    if (path == NULL)
        abort();
    e7 = check_one(path, 0, &a7);
    e8 = check_one(path, 1, &a8);
    /* SMTPUTF8 allows more, never less, and changes nothing in an ASCII address. */
    if (e7 == ADDR_OK)
        FUZZ_ASSERT(e8 == ADDR_OK && same_addr(&a7, &a8) && a7.had_route == a8.had_route);
    if (!has_8bit(path))
        FUZZ_ASSERT(e7 == e8);
    free(path);
    return 0;
}
