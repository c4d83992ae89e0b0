/*
 * fuzz_parse.c - libFuzzer harness for smtp_parse_command: any octets as
 * one command line (without its CRLF). Besides "no crash", it checks what
 * the session relies on: every returned string lies inside the line and is
 * terminated there, refused octets are always refused, paths fit their
 * limit, and the verb's case does not change the outcome.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mail/address.h"
#include "smtp/parse.h"

/* inside - s is NULL, or a string that starts and ends within buf[0..len] */
static int inside(const char *s, const char *buf, size_t len)
{
    if (s == NULL)
        return 1;
    if (s < buf || s > buf + len)
        return 0;
    return memchr(s, '\0', (size_t)(buf + len - s) + 1) != NULL;
}

/* expected_octet_error - what check_octets must answer for these octets (OK if none) */
static enum smtp_parse_err expected_octet_error(const uint8_t *data, size_t size)
{
    if (memchr(data, '\0', size) != NULL)
        return SMTP_PARSE_NUL;
    for (size_t i = 0; i < size; i++)
        if (data[i] < 0x20 && data[i] != '\t')
            return SMTP_PARSE_BAD_CHAR;
    return SMTP_PARSE_OK;
}

/* check_strings - every string member points into the line buffer */
static void check_strings(const struct smtp_cmd *c, const char *buf, size_t len)
{
    FUZZ_ASSERT(inside(c->arg, buf, len));
    FUZZ_ASSERT(inside(c->path, buf, len));
    FUZZ_ASSERT(inside(c->ret, buf, len));
    FUZZ_ASSERT(inside(c->envid, buf, len));
    FUZZ_ASSERT(inside(c->notify, buf, len));
    FUZZ_ASSERT(inside(c->orcpt, buf, len));
    FUZZ_ASSERT(inside(c->auth, buf, len));
}

/* is_blank - SP or TAB */
static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* check_ok - the per-verb promises of a successful parse */
static void check_ok(const struct smtp_cmd *c)
{
    struct addr a;

    FUZZ_ASSERT(c->verb != SMTP_VERB_UNKNOWN);
    FUZZ_ASSERT(c->has_size || c->size == 0);
    FUZZ_ASSERT(c->ret == NULL || strcmp(c->ret, "FULL") == 0 || strcmp(c->ret, "HDRS") == 0);
    FUZZ_ASSERT(c->envid == NULL || (strlen(c->envid) >= 1 && strlen(c->envid) <= 100));
    switch (c->verb) {
    case SMTP_VERB_MAIL:
    case SMTP_VERB_RCPT:
        FUZZ_ASSERT(c->path != NULL && strlen(c->path) <= SMTP_PATH_MAX - 2);
        (void)addr_parse(c->path, c->smtputf8, &a); /* what the session does next */
        break;
    case SMTP_VERB_HELO:
    case SMTP_VERB_EHLO:
    case SMTP_VERB_LHLO:
    case SMTP_VERB_VRFY:
    case SMTP_VERB_EXPN:
    case SMTP_VERB_AUTH:
    case SMTP_VERB_BDAT:
        FUZZ_ASSERT(c->arg != NULL && c->arg[0] != '\0');
        FUZZ_ASSERT(!is_blank(c->arg[0]) && !is_blank(c->arg[strlen(c->arg) - 1]));
        break;
    case SMTP_VERB_DATA:
    case SMTP_VERB_RSET:
    case SMTP_VERB_QUIT:
    case SMTP_VERB_STARTTLS:
        FUZZ_ASSERT(c->arg == NULL && c->path == NULL);
        break;
    default:
        break;
    }
    if (c->verb != SMTP_VERB_MAIL && c->verb != SMTP_VERB_RCPT)
        FUZZ_ASSERT(c->path == NULL && !c->has_size && c->body == SMTP_BODY_UNSPEC && !c->smtputf8);
}

/* parse_copy - parse a private len + 1 copy of line (the parser writes line[len]) */
static enum smtp_parse_err parse_copy(const uint8_t *line, size_t len, char **bufp,
                                      struct smtp_cmd *c)
{
    char *buf = malloc(len + 1);

    if (buf == NULL)
        abort();
    memcpy(buf, line, len);
    *bufp = buf;
    return smtp_parse_command(buf, len, c);
}

/* flip_verb_case - the first word with its ASCII letters' case swapped */
static void flip_verb_case(uint8_t *s, size_t len)
{
    for (size_t i = 0; i < len && s[i] != ' '; i++) {
        if (s[i] >= 'a' && s[i] <= 'z')
            s[i] = (uint8_t)(s[i] - 'a' + 'A');
        else if (s[i] >= 'A' && s[i] <= 'Z')
            s[i] = (uint8_t)(s[i] - 'A' + 'a');
    }
}

/* LLVMFuzzerTestOneInput - one input: run it, check the properties */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_cmd c, c2;
    enum smtp_parse_err e, e2, oe = expected_octet_error(data, size);
    char *buf, *buf2;
    uint8_t *flipped;

    if (size > 4 * SMTP_CMD_LINE_MAX)
        return -1; /* the session never hands over longer lines */
    e = parse_copy(data, size, &buf, &c);
    if (oe != SMTP_PARSE_OK)
        FUZZ_ASSERT(e == oe);
    check_strings(&c, buf, size);
    if (e == SMTP_PARSE_OK)
        check_ok(&c);
    FUZZ_ASSERT(smtp_verb_name(c.verb) != NULL);

    /* Verbs are case-insensitive: swapping their case changes nothing. */
    flipped = malloc(size + 1);
    if (flipped == NULL)
        abort();
    memcpy(flipped, data, size);
    flip_verb_case(flipped, size);
    e2 = parse_copy(flipped, size, &buf2, &c2);
    FUZZ_ASSERT(e2 == e && c2.verb == c.verb);
    FUZZ_ASSERT((c.path == NULL) == (c2.path == NULL));
    FUZZ_ASSERT(c.path == NULL || strcmp(c.path, c2.path) == 0);
    free(flipped);
    free(buf2);
    free(buf);
    return 0;
}
