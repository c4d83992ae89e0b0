/* test_address.c - unit tests for RFC 5321 path parsing */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mail/address.h"

/* parse - addr_parse on an exact-size heap copy so ASan sees any over-read */
static enum addr_err parse(const char *s, int utf8, struct addr *a)
{
    size_t n = strlen(s);
    char *copy = malloc(n + 1);
    enum addr_err e;

    assert_non_null(copy);
    memcpy(copy, s, n + 1);
    e = addr_parse(copy, utf8, a);
    free(copy);
    return e;
}

/* repeat - n copies of c followed by tail, in a static buffer */
static const char *repeat(char c, size_t n, const char *tail)
{
    static char b[1024];

    assert_true(n + strlen(tail) < sizeof b);
    memset(b, c, n);
    strcpy(b + n, tail);
    return b;
}

/* test_simple - a plain mailbox, domain lower-cased, local part kept as written */
static void test_simple(void **state)
{
    struct addr a;

    assert_int_equal(parse("Alice.Smith@Example.TEST", 0, &a), ADDR_OK);
    assert_string_equal(a.local, "Alice.Smith");
    assert_string_equal(a.domain, "example.test");
    assert_int_equal(a.quoted, 0);
    assert_int_equal(a.is_literal, 0);
    assert_int_equal(addr_is_relay_trick(&a), 0);
    assert_int_equal(parse("a!#$&'*+-/=?^_`{|}~z@x-1.y2", 0, &a), ADDR_OK);
    assert_string_equal(a.local, "a!#$&'*+-/=?^_`{|}~z");
    assert_int_equal(parse("u@localhost", 0, &a), ADDR_OK);
    assert_string_equal(a.domain, "localhost");
}

/* test_empty - the null path */
static void test_empty(void **state)
{
    struct addr a;

    memset(&a, 0x55, sizeof a);
    assert_int_equal(parse("", 0, &a), ADDR_EMPTY);
    assert_int_equal(a.local[0], '\0');
    assert_int_equal(a.domain[0], '\0');
    assert_int_equal(a.quoted, 0);
    assert_int_equal(addr_parse(NULL, 0, &a), ADDR_EMPTY);
}

/* test_postmaster - bare Postmaster is the one mailbox without a domain */
static void test_postmaster(void **state)
{
    struct addr a;
    char out[64];

    assert_int_equal(parse("Postmaster", 0, &a), ADDR_OK);
    assert_string_equal(a.local, "Postmaster");
    assert_string_equal(a.domain, "");
    assert_int_equal(addr_format(&a, out, sizeof out), 10);
    assert_string_equal(out, "Postmaster");
    assert_int_equal(parse("POSTMASTER", 0, &a), ADDR_OK);
    assert_int_equal(parse("postmaster@Example.Test", 0, &a), ADDR_OK);
    assert_string_equal(a.domain, "example.test");
    assert_int_equal(parse("\"postmaster\"", 0, &a), ADDR_NO_DOMAIN);
    assert_int_equal(parse("postmasters", 0, &a), ADDR_NO_DOMAIN);
    assert_int_equal(parse("alice", 0, &a), ADDR_NO_DOMAIN);
    assert_int_equal(a.local[0], '\0');
}

/* test_dot_string - leading, trailing and double dots; characters outside atext */
static void test_dot_string(void **state)
{
    static const char *bad[] = {".a@b",  "a.@b",  "a..b@b", "a b@b",  "a\"b@b",  "a(b)@b",
                                "a,b@b", "a<b@b", "a\\b@b", "a\tb@b", "a\x7f@b", "a;b@b",
                                "a[b@b", "@b",    ".@b",    "a:b@b",  "\"a\"b@c"};
    struct addr a;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(parse(bad[i], 0, &a), ADDR_SYNTAX);
    assert_int_equal(parse("a.b.c@d", 0, &a), ADDR_OK);
}

/* test_quoted - quoted-string local parts, quoted pairs, '>' and '@' inside */
static void test_quoted(void **state)
{
    struct addr a;

    assert_int_equal(parse("\"john doe\"@example.test", 0, &a), ADDR_OK);
    assert_int_equal(a.quoted, 1);
    assert_string_equal(a.local, "\"john doe\"");
    assert_int_equal(addr_is_relay_trick(&a), 0);
    assert_int_equal(parse("\"a>b\"@example.test", 0, &a), ADDR_OK);
    assert_string_equal(a.local, "\"a>b\"");
    assert_int_equal(parse("\"a\\\"b\\\\c\"@x", 0, &a), ADDR_OK);
    assert_string_equal(a.local, "\"a\\\"b\\\\c\"");
    assert_int_equal(parse("\"\"@x", 0, &a), ADDR_OK);
    assert_int_equal(parse("\"user@outside\"@gateway.example", 0, &a), ADDR_OK);
    assert_int_equal(a.has_at_in_local, 1);
    assert_int_equal(addr_is_relay_trick(&a), 1);
    assert_int_equal(parse("\"a\\@b\"@gw", 0, &a), ADDR_OK);
    assert_int_equal(a.has_at_in_local, 1);
    assert_int_equal(parse("\"abc@x", 0, &a), ADDR_SYNTAX);
    assert_int_equal(parse("\"abc\\\"@x", 0, &a), ADDR_SYNTAX);
    assert_int_equal(parse("\"a\tb\"@x", 0, &a), ADDR_SYNTAX);
    assert_int_equal(parse("\"a\\\tb\"@x", 0, &a), ADDR_SYNTAX);
    assert_int_equal(parse("\"a\\", 0, &a), ADDR_SYNTAX);
    assert_int_equal(parse("\"ab\"x@x", 0, &a), ADDR_SYNTAX);
    assert_int_equal(parse("\"ab\"", 0, &a), ADDR_NO_DOMAIN);
}

/* test_relay_tricks - percent hack, bang path, source route, second '@' */
static void test_relay_tricks(void **state)
{
    struct addr a;

    assert_int_equal(parse("user%other.example@gw.example", 0, &a), ADDR_OK);
    assert_int_equal(a.has_percent, 1);
    assert_int_equal(addr_is_relay_trick(&a), 1);
    assert_int_equal(parse("\"user%other\"@gw.example", 0, &a), ADDR_OK);
    assert_int_equal(a.has_percent, 1);
    assert_int_equal(parse("host!user@gw.example", 0, &a), ADDR_OK);
    assert_int_equal(a.has_bang, 1);
    assert_int_equal(a.has_percent, 0);
    assert_int_equal(addr_is_relay_trick(&a), 1);
    assert_int_equal(parse("\"host!user\"@gw.example", 0, &a), ADDR_OK);
    assert_int_equal(a.has_bang, 1);
    assert_int_equal(parse("user@outside@gateway", 0, &a), ADDR_SYNTAX);
    assert_int_equal(parse("user@outside.example@gateway.example", 0, &a), ADDR_SYNTAX);
    assert_int_equal(parse("\"a@b\"@c@d", 0, &a), ADDR_SYNTAX);
}

/* test_source_route - accepted, dropped and flagged */
static void test_source_route(void **state)
{
    struct addr a;
    char out[128];

    assert_int_equal(parse("@a.example,@b.example:user@Dom.example", 0, &a), ADDR_OK);
    assert_int_equal(a.had_route, 1);
    assert_string_equal(a.local, "user");
    assert_string_equal(a.domain, "dom.example");
    assert_int_equal(addr_is_relay_trick(&a), 1);
    assert_int_equal(addr_format(&a, out, sizeof out), 16);
    assert_string_equal(out, "user@dom.example");
    assert_int_equal(parse("@a.example:u@d", 0, &a), ADDR_OK);
    assert_int_equal(a.had_route, 1);
    assert_int_equal(parse("@a.example", 0, &a), ADDR_SYNTAX);
    assert_int_equal(parse("@a.example,u@d", 0, &a), ADDR_SYNTAX);
    assert_int_equal(parse("@a.example,b.example:u@d", 0, &a), ADDR_SYNTAX);
    assert_int_equal(parse("@:u@d", 0, &a), ADDR_SYNTAX);
    assert_int_equal(parse("@a..b:u@d", 0, &a), ADDR_SYNTAX);
    assert_int_equal(parse("@[1.2.3.4]:u@d", 0, &a), ADDR_SYNTAX);
    assert_int_equal(parse("@a.example:", 0, &a), ADDR_SYNTAX);
    assert_int_equal(parse("@a.example:@b", 0, &a), ADDR_SYNTAX);
    assert_int_equal(parse("@a.example:u", 0, &a), ADDR_NO_DOMAIN);
    assert_int_equal(parse("@r\xc3\xa9.example:u@d", 0, &a), ADDR_8BIT);
    assert_int_equal(parse("@r\xc3\xa9.example:u@d", 1, &a), ADDR_OK);
    assert_int_equal(a.had_route, 1);
}

/* test_domains - LDH labels, hyphens, label and name lengths, trailing dot */
static void test_domains(void **state)
{
    static const char *bad[] = {"u@",         "u@-a.example", "u@a-.example", "u@a..example",
                                "u@.example", "u@example.",   "u@exa_mple",   "u@exa mple",
                                "u@a.b-",     "u@exa%mple"};
    char buf[600];
    struct addr a;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(parse(bad[i], 0, &a), ADDR_BAD_DOMAIN);
    assert_int_equal(parse("u@a-b.c--d.EXAMPLE", 0, &a), ADDR_OK);
    assert_string_equal(a.domain, "a-b.c--d.example");
    assert_int_equal(parse("u@123.example", 0, &a), ADDR_OK);
    strcpy(buf, "u@");
    strcat(buf, repeat('l', 63, ".example"));
    assert_int_equal(parse(buf, 0, &a), ADDR_OK);
    strcpy(buf, "u@");
    strcat(buf, repeat('l', 64, ".example"));
    assert_int_equal(parse(buf, 0, &a), ADDR_BAD_DOMAIN);
}

/* test_literals - dotted quads, IPv6, general literals */
static void test_literals(void **state)
{
    static const char *bad[] = {
        "u@[300.1.1.1]", "u@[1.2.3]",    "u@[1.2.3.4.5]",    "u@[1.2.3.4",
        "u@[]",          "u@[",          "u@[1.2.3.a]",      "u@[1234.1.1.1]",
        "u@[1..2.3]",    "u@[IPv6:::g]", "u@[IPv6:1.2.3.4]", "u@[x400:abc]",
        "u@[ 1.2.3.4]",  "u@[IPv6:]",    "u@[1.2.3.4]x"};
    struct addr a;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(parse(bad[i], 0, &a), ADDR_BAD_DOMAIN);
    assert_int_equal(parse("u@[192.0.2.255]", 0, &a), ADDR_OK);
    assert_int_equal(a.is_literal, 1);
    assert_string_equal(a.domain, "[192.0.2.255]");
    assert_int_equal(parse("u@[0.0.0.0]", 0, &a), ADDR_OK);
    assert_int_equal(parse("u@[IPv6:::1]", 0, &a), ADDR_OK);
    assert_int_equal(a.is_literal, 1);
    assert_string_equal(a.domain, "[ipv6:::1]");
    assert_int_equal(parse("u@[ipv6:2001:DB8::A]", 0, &a), ADDR_OK);
    assert_string_equal(a.domain, "[ipv6:2001:db8::a]");
    assert_int_equal(parse("u@[IPv6:::ffff:192.0.2.1]", 0, &a), ADDR_OK);
    assert_int_equal(parse("u@[IPv6:0000:0000:0000:0000:0000:0000:0000:0000:0]", 0, &a),
                     ADDR_BAD_DOMAIN);
}

/* test_lengths - 64-octet local part, 254-octet path */
static void test_lengths(void **state)
{
    char buf[600];
    struct addr a;
    int i;

    assert_int_equal(parse(repeat('l', 64, "@example.test"), 0, &a), ADDR_OK);
    assert_int_equal(strlen(a.local), 64);
    assert_int_equal(parse(repeat('l', 65, "@example.test"), 0, &a), ADDR_TOO_LONG);
    assert_int_equal(parse(repeat('l', 65, ""), 0, &a), ADDR_TOO_LONG);
    /* 62 + '"' * 2 = 64 octets as written */
    strcpy(buf, "\"");
    strcat(buf, repeat('q', 62, "\"@x"));
    assert_int_equal(parse(buf, 0, &a), ADDR_OK);
    strcpy(buf, "\"");
    strcat(buf, repeat('q', 63, "\"@x"));
    assert_int_equal(parse(buf, 0, &a), ADDR_TOO_LONG);
    /* u@ + 4 labels of 63 separated by dots = 2 + 255 = 257 > 254 */
    strcpy(buf, "u@");
    for (i = 0; i < 4; i++) {
        strcat(buf, repeat('d', 63, i < 3 ? "." : ""));
    }
    assert_int_equal(parse(buf, 0, &a), ADDR_TOO_LONG);
    /* exactly 254: u@ + 63.63.63.60 */
    strcpy(buf, "u@");
    for (i = 0; i < 4; i++)
        strcat(buf, repeat('d', i < 3 ? 63 : 60, i < 3 ? "." : ""));
    assert_int_equal(strlen(buf), 254);
    assert_int_equal(parse(buf, 0, &a), ADDR_OK);
    assert_int_equal(strlen(a.domain), 252);
    assert_int_equal(parse(repeat('x', 900, ""), 0, &a), ADDR_TOO_LONG);
}

/* test_eight_bit - non-ASCII needs utf8 and must be well-formed UTF-8 */
static void test_eight_bit(void **state)
{
    static const char *malformed[] = {
        "j\xc3@x",             /* truncated */
        "j\xc0\xaf@x",         /* overlong '/' */
        "j\xe0\x80\xaf@x",     /* overlong, 3 octets */
        "j\xf0\x80\x80\xaf@x", /* overlong, 4 octets */
        "j\xed\xa0\x80@x",     /* surrogate U+D800 */
        "j\xf4\x90\x80\x80@x", /* U+110000 */
        "j\xf5\x80\x80\x80@x",
        "j\xff@x",
        "j\x80@x",
        "\"j\xc3\"@x",
        "u@d\xc3.x",
        "u@d\xed\xbf\xbf.x",
    };
    struct addr a;
    size_t i;

    assert_int_equal(parse("j\xc3\xb6rg@example.test", 0, &a), ADDR_8BIT);
    assert_int_equal(parse("\"j\xc3\xb6rg\"@example.test", 0, &a), ADDR_8BIT);
    assert_int_equal(parse("u@b\xc3\xbc\x63her.example", 0, &a), ADDR_8BIT);
    assert_int_equal(parse("j\xc3\xb6rg@example.test", 1, &a), ADDR_OK);
    assert_string_equal(a.local, "j\xc3\xb6rg");
    assert_int_equal(parse("\"j\xc3\xb6 rg\"@x", 1, &a), ADDR_OK);
    assert_int_equal(parse("\xe7\x94\xb0\xe4\xb8\xad@\xe4\xbe\x8b.JP", 1, &a), ADDR_OK);
    assert_string_equal(a.domain, "\xe4\xbe\x8b.jp");
    assert_int_equal(parse("u@B\xc3\x9c\x43HER.example", 1, &a), ADDR_OK);
    assert_string_equal(a.domain, "b\xc3\x9c\x63her.example");
    assert_int_equal(parse("\xf0\x9f\x98\x80@x", 1, &a), ADDR_OK);
    assert_int_equal(parse("\xf4\x8f\xbf\xbf@x", 1, &a), ADDR_OK);
    for (i = 0; i < sizeof malformed / sizeof malformed[0]; i++)
        assert_int_equal(parse(malformed[i], 1, &a), ADDR_8BIT);
    assert_int_equal(parse("u@[1.2.3.\xc3\xb6]", 1, &a), ADDR_BAD_DOMAIN);
}

/* test_format - output buffer sizes */
static void test_format(void **state)
{
    struct addr a;
    char out[32];

    assert_int_equal(parse("\"a b\"@Example.Test", 0, &a), ADDR_OK);
    assert_int_equal(addr_format(&a, out, sizeof out), 18);
    assert_string_equal(out, "\"a b\"@example.test");
    assert_int_equal(addr_format(&a, out, 19), 18);
    assert_int_equal(addr_format(&a, out, 18), -1);
    assert_string_equal(out, "");
    assert_int_equal(addr_format(&a, out, 0), -1);
}

/* test_domain_match - exact, subdomain and wildcard patterns */
static void test_domain_match(void **state)
{
    assert_true(addr_domain_match("example.test", "example.test"));
    assert_true(addr_domain_match("Example.TEST", "example.test"));
    assert_false(addr_domain_match("a.example.test", "example.test"));
    assert_false(addr_domain_match("xexample.test", "example.test"));
    assert_true(addr_domain_match("a.example.test", ".example.test"));
    assert_true(addr_domain_match("x.Y.Example.test", ".example.test"));
    assert_false(addr_domain_match("example.test", ".example.test"));
    assert_false(addr_domain_match("xexample.test", ".example.test"));
    assert_false(addr_domain_match("test", ".example.test"));
    assert_false(addr_domain_match(".example.test", ".example.test"));
    assert_true(addr_domain_match("anything.example", "*"));
    assert_true(addr_domain_match("", "*"));
    assert_false(addr_domain_match("example.test", ""));
    assert_false(addr_domain_match(NULL, "*"));
    assert_false(addr_domain_match("example.test", NULL));
}

/* test_strerror - every code has its own phrase */
static void test_strerror(void **state)
{
    int i, j;

    for (i = ADDR_OK; i <= ADDR_8BIT; i++) {
        assert_non_null(addr_strerror((enum addr_err)i));
        assert_true(strlen(addr_strerror((enum addr_err)i)) > 0);
        for (j = ADDR_OK; j < i; j++)
            assert_string_not_equal(addr_strerror((enum addr_err)i),
                                    addr_strerror((enum addr_err)j));
    }
    assert_string_equal(addr_strerror(ADDR_TOO_LONG), "address too long");
    assert_non_null(addr_strerror((enum addr_err)99));
}

/* test_every_byte - one octet in every position class never crashes and is classified */
static void test_every_byte(void **state)
{
    struct addr a;
    char buf[16];
    int b;

    for (b = 1; b < 256; b++) {
        enum addr_err e;
        snprintf(buf, sizeof buf, "a%cb@x.y", b);
        e = parse(buf, 1, &a);
        assert_true(e == ADDR_OK || e == ADDR_SYNTAX || e == ADDR_8BIT || e == ADDR_BAD_DOMAIN);
        snprintf(buf, sizeof buf, "ab@x%cz.y", b);
        e = parse(buf, 0, &a);
        assert_int_equal(e, (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
                                    (b >= '0' && b <= '9') || b == '-' || b == '.'
                                ? ADDR_OK
                            : b == '@'  ? ADDR_SYNTAX
                            : b >= 0x80 ? ADDR_8BIT
                                        : ADDR_BAD_DOMAIN);
    }
}

/* canon - addr_canon into a static buffer; "<error>" when it refuses */
static const char *canon(const char *in, unsigned flags)
{
    static char out[ADDR_CANON_MAX];

    return addr_canon(in, flags, out, sizeof out) < 0 ? "<error>" : out;
}

/* test_canon_local - quotes go where RFC 5321 lets them go; escapes are minimal */
static void test_canon_local(void **state)
{
    assert_string_equal(canon("\"ceo\"@example.test", 0), "ceo@example.test");
    assert_string_equal(canon("ceo@example.test", 0), "ceo@example.test");
    assert_string_equal(canon("\"c\\eo\"@example.test", 0), "ceo@example.test");
    assert_string_equal(canon("\"first.last\"@x.test", 0), "first.last@x.test");
    assert_string_equal(canon("\"a b\"@x.test", 0), "\"a b\"@x.test");
    assert_string_equal(canon("\"a\\ b\"@x.test", 0), "\"a b\"@x.test");
    assert_string_equal(canon("\"a\\\"b\"@x.test", 0), "\"a\\\"b\"@x.test");
    assert_string_equal(canon("\"a\\\\b\"@x.test", 0), "\"a\\\\b\"@x.test");
    assert_string_equal(canon("\".a\"@x.test", 0), "\".a\"@x.test");
    assert_string_equal(canon("\"a..b\"@x.test", 0), "\"a..b\"@x.test");
    assert_string_equal(canon("\"a.\"@x.test", 0), "\"a.\"@x.test");
    assert_string_equal(canon("\"\"@x.test", 0), "\"\"@x.test");
    assert_string_equal(canon("\"a@b\"@x.test", 0), "\"a@b\"@x.test");
    assert_string_equal(canon("\"j\xc3\xb6rg\"@x.test", 0), "j\xc3\xb6rg@x.test");
    /* the local part keeps its case unless the consumer folds it */
    assert_string_equal(canon("\"CEO\"@Example.TEST", 0), "CEO@example.test");
    assert_string_equal(canon("\"CEO\"@Example.TEST", ADDR_CANON_FOLD), "ceo@example.test");
    assert_string_equal(canon("\"A B\"@x.test", ADDR_CANON_FOLD), "\"a b\"@x.test");
    assert_string_equal(canon("Postmaster", ADDR_CANON_FOLD), "postmaster");
    assert_string_equal(canon("", 0), "");
    assert_string_equal(canon("not an address", 0), "<error>");
    assert_string_equal(canon("@a.test:\"u\"@b.test", 0), "u@b.test");
}

/* test_canon_domain - lower case, U-labels to A-labels, literals in one form */
static void test_canon_domain(void **state)
{
    char out[16];

    assert_string_equal(canon("user@b\xc3\xbc\x63her.example", 0), "user@xn--bcher-kva.example");
    assert_string_equal(canon("user@B\xc3\x9c\x43HER.Example", 0), "user@xn--bcher-kva.example");
    assert_string_equal(canon("user@XN--BCHER-KVA.example", 0), "user@xn--bcher-kva.example");
    /* NFD (u + combining diaeresis) is the same name */
    assert_string_equal(canon("user@bu\xcc\x88\x63her.example", 0), "user@xn--bcher-kva.example");
    /* full-width letters map to ASCII (UTS #46) */
    assert_string_equal(canon("ceo@\xef\xbd\x85xample.test", 0), "ceo@example.test");
    /* a name IDNA refuses stays as it was written: it can equal only itself */
    assert_string_equal(canon("u@\xf0\x9f\x98\x80.example", 0), "u@\xf0\x9f\x98\x80.example");
    assert_string_equal(canon("u@[192.0.2.001]", 0), "u@[192.0.2.1]");
    assert_string_equal(canon("u@[IPv6:2001:DB8:0::1]", 0), "u@[IPv6:2001:db8::1]");
    assert_string_equal(canon("u@[ipv6:::ffff:192.0.2.1]", 0), "u@[IPv6:::ffff:192.0.2.1]");
    assert_int_equal(addr_canon_domain("Example.TEST", out, 12), -1);
    assert_int_equal(addr_canon_domain("A.Test", out, 7), 6);
    assert_string_equal(out, "a.test");
    assert_int_equal(addr_canon("a@b.test", 0, out, 8), -1);
    assert_int_equal(addr_canon("a@b.test", 0, out, 9), 8);
}

/* test_canon_idempotent - the canonical form of a canonical form is itself */
static void test_canon_idempotent(void **state)
{
    static const char *in[] = {"\"ceo\"@example.test",       "\"a b\"@x",    "\"a\\\"b\"@x",
                               "u@b\xc3\xbc\x63her.example", "u@[IPv6:::1]", "\"\"@x"};
    char once[ADDR_CANON_MAX], twice[ADDR_CANON_MAX];

    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        assert_true(addr_canon(in[i], ADDR_CANON_FOLD, once, sizeof once) > 0);
        assert_true(addr_canon(once, ADDR_CANON_FOLD, twice, sizeof twice) > 0);
        assert_string_equal(once, twice);
    }
}

/* test_host_ok - what HELO/EHLO may name: a domain or an IPv4/IPv6 literal, ASCII only */
static void test_host_ok(void **state)
{
    static const char *const good[] = {
        "mail.example.org",     "localhost",          "x",          "a-b.c9",
        "[192.0.2.1]",          "[IPv6:2001:db8::1]", "[ipv6:::1]", "1.2.3.4",
        "exch_01.corp.example", /* '_' as Postfix's valid_hostname() takes it */
    };
    static const char *const bad[] = {
        "",
        "a b",
        "a(b)",
        "x) (evil [192.0.2.66]",
        "[192.0.2.1",
        "[x:y]",
        "[IPv6:nonsense]",
        "[300.1.1.1]",
        "-a.example",
        "a-.example",
        "a..b",
        "a.",
        ".a",
        "caf\xc3\xa9.example",
        "a\rb",
        "a\tb",
        "a[b]",
        "a;b",
        "a\\b",
        "\"q\"",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(addr_host_ok(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(addr_host_ok(bad[i]));
    assert_true(addr_host_ok(repeat('a', 63, ".example")));
    assert_false(addr_host_ok(repeat('a', 64, ".example")));
    assert_false(addr_host_ok(repeat('a', 505, "")));
}

/* main - run the address tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),       cmocka_unit_test(test_empty),
        cmocka_unit_test(test_postmaster),   cmocka_unit_test(test_dot_string),
        cmocka_unit_test(test_quoted),       cmocka_unit_test(test_relay_tricks),
        cmocka_unit_test(test_source_route), cmocka_unit_test(test_domains),
        cmocka_unit_test(test_literals),     cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_eight_bit),    cmocka_unit_test(test_format),
        cmocka_unit_test(test_domain_match), cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_every_byte),   cmocka_unit_test(test_canon_local),
        cmocka_unit_test(test_canon_domain), cmocka_unit_test(test_canon_idempotent),
        cmocka_unit_test(test_host_ok),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
