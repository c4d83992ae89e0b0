/* test_parse.c - unit tests for the SMTP command-line parser */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/parse.h"

/* Each line is parsed from an exact-size heap copy (len + 1 for the NUL the
 * parser writes), so ASan sees any read or write past the line. */
static char *buf;

/* parse_n - parse n octets of s; the copy stays alive in buf until the next call */
static enum smtp_parse_err parse_n(const char *s, size_t n, struct smtp_cmd *cmd)
{
    free(buf);
    buf = malloc(n + 1);
    assert_non_null(buf);
    memcpy(buf, s, n);
    return smtp_parse_command(buf, n, cmd);
}

/* parse - parse a C string */
static enum smtp_parse_err parse(const char *s, struct smtp_cmd *cmd)
{
    return parse_n(s, strlen(s), cmd);
}

/* teardown - free the last line copy */
static int teardown(void **state)
{
    free(buf);
    buf = NULL;
    return 0;
}

/* test_nul - a NUL anywhere wins over everything else */
static void test_nul(void **state)
{
    struct smtp_cmd c;

    assert_int_equal(parse_n("HELO a\0b", 8, &c), SMTP_PARSE_NUL);
    assert_int_equal(parse_n("\0", 1, &c), SMTP_PARSE_NUL);
    assert_int_equal(parse_n("XXXX\r\0", 6, &c), SMTP_PARSE_NUL);
    assert_int_equal(parse_n("MAIL FROM:<a@b\0>", 16, &c), SMTP_PARSE_NUL);
}

/* test_bad_char - bare CR, bare LF and other C0 controls; TAB is allowed */
static void test_bad_char(void **state)
{
    struct smtp_cmd c;

    assert_int_equal(parse("HELO a\rb", &c), SMTP_PARSE_BAD_CHAR);
    assert_int_equal(parse("HELO a\nb", &c), SMTP_PARSE_BAD_CHAR);
    assert_int_equal(parse("NOOP\r", &c), SMTP_PARSE_BAD_CHAR);
    assert_int_equal(parse("RSET\x1b", &c), SMTP_PARSE_BAD_CHAR);
    assert_int_equal(parse("\x01QUIT", &c), SMTP_PARSE_BAD_CHAR);
    assert_int_equal(parse("MAIL FROM:<a@b>\x7f", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(parse("HELO a\tb", &c), SMTP_PARSE_OK);
    assert_string_equal(c.arg, "a\tb");
}

/* test_verbs_case - verbs are case-insensitive and need SP or end after them */
static void test_verbs_case(void **state)
{
    struct smtp_cmd c;

    assert_int_equal(parse("quit", &c), SMTP_PARSE_OK);
    assert_int_equal(c.verb, SMTP_VERB_QUIT);
    assert_int_equal(parse("StartTls", &c), SMTP_PARSE_OK);
    assert_int_equal(c.verb, SMTP_VERB_STARTTLS);
    assert_int_equal(parse("ehlo   client.example", &c), SMTP_PARSE_OK);
    assert_int_equal(c.verb, SMTP_VERB_EHLO);
    assert_string_equal(c.arg, "client.example");
    assert_int_equal(parse("HELO\tx", &c), SMTP_PARSE_UNKNOWN_VERB);
    assert_int_equal(c.verb, SMTP_VERB_UNKNOWN);
    assert_int_equal(parse("QUITX", &c), SMTP_PARSE_UNKNOWN_VERB);
    assert_int_equal(parse("QUI", &c), SMTP_PARSE_UNKNOWN_VERB);
    assert_int_equal(parse("", &c), SMTP_PARSE_UNKNOWN_VERB);
    assert_int_equal(parse(" QUIT", &c), SMTP_PARSE_UNKNOWN_VERB);
    assert_int_equal(parse("GET / HTTP/1.0", &c), SMTP_PARSE_UNKNOWN_VERB);
    assert_int_equal(parse("MAILFROM:<a@b>", &c), SMTP_PARSE_UNKNOWN_VERB);
}

/* test_helo - HELO/EHLO/LHLO need an argument; it is trimmed */
static void test_helo(void **state)
{
    struct smtp_cmd c;

    assert_int_equal(parse("HELO", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(c.verb, SMTP_VERB_HELO);
    assert_int_equal(parse("EHLO    ", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(parse("LHLO", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(parse("LHLO lmtp.example ", &c), SMTP_PARSE_OK);
    assert_int_equal(c.verb, SMTP_VERB_LHLO);
    assert_string_equal(c.arg, "lmtp.example");
    assert_int_equal(parse("HELO [192.0.2.1]", &c), SMTP_PARSE_OK);
    assert_string_equal(c.arg, "[192.0.2.1]");
    assert_null(c.path);
}

/* test_no_arg_verbs - DATA, RSET, QUIT, STARTTLS refuse arguments */
static void test_no_arg_verbs(void **state)
{
    static const char *ok[] = {"DATA", "RSET", "QUIT", "STARTTLS", "data  "};
    static const char *bad[] = {"DATA x", "RSET now", "QUIT bye", "STARTTLS 1"};
    struct smtp_cmd c;
    size_t i;

    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(parse(ok[i], &c), SMTP_PARSE_OK);
        assert_null(c.arg);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse(bad[i], &c), SMTP_PARSE_SYNTAX);
        assert_int_not_equal(c.verb, SMTP_VERB_UNKNOWN);
    }
}

/* test_optional_arg_verbs - NOOP and HELP with and without an argument */
static void test_optional_arg_verbs(void **state)
{
    struct smtp_cmd c;

    assert_int_equal(parse("NOOP", &c), SMTP_PARSE_OK);
    assert_null(c.arg);
    assert_int_equal(parse("NOOP whatever you like", &c), SMTP_PARSE_OK);
    assert_int_equal(c.verb, SMTP_VERB_NOOP);
    assert_int_equal(parse("HELP", &c), SMTP_PARSE_OK);
    assert_null(c.arg);
    assert_int_equal(parse("help  MAIL ", &c), SMTP_PARSE_OK);
    assert_int_equal(c.verb, SMTP_VERB_HELP);
    assert_string_equal(c.arg, "MAIL");
}

/* test_required_arg_verbs - VRFY, EXPN and AUTH need an argument */
static void test_required_arg_verbs(void **state)
{
    struct smtp_cmd c;

    assert_int_equal(parse("VRFY", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(parse("EXPN ", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(parse("AUTH", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(c.verb, SMTP_VERB_AUTH);
    assert_int_equal(parse("VRFY postmaster", &c), SMTP_PARSE_OK);
    assert_string_equal(c.arg, "postmaster");
    assert_int_equal(parse("EXPN staff", &c), SMTP_PARSE_OK);
    assert_int_equal(c.verb, SMTP_VERB_EXPN);
    assert_int_equal(parse("AUTH PLAIN AGJvYgBzZWNyZXQ=", &c), SMTP_PARSE_OK);
    assert_string_equal(c.arg, "PLAIN AGJvYgBzZWNyZXQ=");
}

/* test_bdat - "size [LAST]" with a 64-bit size */
static void test_bdat(void **state)
{
    struct smtp_cmd c;

    assert_int_equal(parse("BDAT 1000", &c), SMTP_PARSE_OK);
    assert_int_equal(c.verb, SMTP_VERB_BDAT);
    assert_string_equal(c.arg, "1000");
    assert_int_equal(parse("BDAT 0 last", &c), SMTP_PARSE_OK);
    assert_string_equal(c.arg, "0 last");
    assert_int_equal(parse("BDAT 18446744073709551615 LAST", &c), SMTP_PARSE_OK);
    assert_int_equal(parse("BDAT 18446744073709551616", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(parse("BDAT", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(parse("BDAT LAST", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(parse("BDAT 10 FIRST", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(parse("BDAT 10 LAST x", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(parse("BDAT -1", &c), SMTP_PARSE_SYNTAX);
}

/* test_mail_basic - MAIL FROM forms, the null path and spaces after the colon */
static void test_mail_basic(void **state)
{
    struct smtp_cmd c;

    assert_int_equal(parse("MAIL FROM:<alice@example.test>", &c), SMTP_PARSE_OK);
    assert_int_equal(c.verb, SMTP_VERB_MAIL);
    assert_string_equal(c.path, "alice@example.test");
    assert_int_equal(c.has_size, 0);
    assert_int_equal(c.body, SMTP_BODY_UNSPEC);
    assert_int_equal(parse("mail from:<>", &c), SMTP_PARSE_OK);
    assert_string_equal(c.path, "");
    assert_int_equal(parse("MAIL FROM: <bob@example.test>", &c), SMTP_PARSE_OK);
    assert_string_equal(c.path, "bob@example.test");
    assert_int_equal(parse("MAIL   From:   <x@y>   ", &c), SMTP_PARSE_OK);
    assert_string_equal(c.path, "x@y");
}

/* test_mail_errors - missing FROM:, missing or unterminated brackets, junk after '>' */
static void test_mail_errors(void **state)
{
    struct smtp_cmd c;

    assert_int_equal(parse("MAIL", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(c.verb, SMTP_VERB_MAIL);
    assert_int_equal(parse("MAIL TO:<a@b>", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(parse("MAIL FROM :<a@b>", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(parse("MAIL FROM:a@b", &c), SMTP_PARSE_BAD_PATH);
    assert_int_equal(parse("MAIL FROM:", &c), SMTP_PARSE_BAD_PATH);
    assert_int_equal(parse("MAIL FROM:<a@b", &c), SMTP_PARSE_BAD_PATH);
    assert_int_equal(parse("MAIL FROM:<\"a>b@c>", &c), SMTP_PARSE_BAD_PATH);
    assert_int_equal(parse("MAIL FROM:<a@b>x", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(parse("MAIL FROM:<a@b>\tSIZE=1", &c), SMTP_PARSE_SYNTAX);
    assert_null(c.path);
}

/* test_rcpt - RCPT TO forms; <> and <Postmaster> parse, the caller judges */
static void test_rcpt(void **state)
{
    struct smtp_cmd c;

    assert_int_equal(parse("RCPT TO:<bob@example.test>", &c), SMTP_PARSE_OK);
    assert_int_equal(c.verb, SMTP_VERB_RCPT);
    assert_string_equal(c.path, "bob@example.test");
    assert_int_equal(parse("rcpt to:<Postmaster>", &c), SMTP_PARSE_OK);
    assert_string_equal(c.path, "Postmaster");
    assert_int_equal(parse("RCPT TO:<>", &c), SMTP_PARSE_OK);
    assert_string_equal(c.path, "");
    assert_int_equal(parse("RCPT FROM:<a@b>", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(parse("RCPT TO:bob@example.test", &c), SMTP_PARSE_BAD_PATH);
    assert_int_equal(parse("RCPT TO:<@a.example,@b.example:u@c.example>", &c), SMTP_PARSE_OK);
    assert_string_equal(c.path, "@a.example,@b.example:u@c.example");
}

/* test_quoted_path - '>' inside a quoted local part, escaped quotes, '@' in quotes */
static void test_quoted_path(void **state)
{
    struct smtp_cmd c;

    assert_int_equal(parse("RCPT TO:<\"a>b\"@example.test>", &c), SMTP_PARSE_OK);
    assert_string_equal(c.path, "\"a>b\"@example.test");
    assert_int_equal(parse("RCPT TO:<\"a\\\">b\"@example.test> NOTIFY=NEVER", &c), SMTP_PARSE_OK);
    assert_string_equal(c.path, "\"a\\\">b\"@example.test");
    assert_string_equal(c.notify, "NEVER");
    assert_int_equal(parse("RCPT TO:<\"x@y\"@gw.example>", &c), SMTP_PARSE_OK);
    assert_string_equal(c.path, "\"x@y\"@gw.example");
    assert_int_equal(parse("RCPT TO:<a\\>b@c>", &c), SMTP_PARSE_SYNTAX);
}

/* test_path_length - 256 octets including <> is the limit */
static void test_path_length(void **state)
{
    char line[600];
    struct smtp_cmd c;
    size_t n;

    n = (size_t)snprintf(line, sizeof line, "MAIL FROM:<");
    memset(line + n, 'a', 254);
    strcpy(line + n + 254, ">");
    assert_int_equal(parse(line, &c), SMTP_PARSE_OK);
    assert_int_equal(strlen(c.path), 254);
    memset(line + n, 'a', 255);
    strcpy(line + n + 255, ">");
    assert_int_equal(parse(line, &c), SMTP_PARSE_BAD_PATH);
}

/* test_long_lines - lines past 512 octets are handled safely (the session limits them) */
static void test_long_lines(void **state)
{
    char line[4096];
    struct smtp_cmd c;

    strcpy(line, "EHLO ");
    memset(line + 5, 'h', 600);
    line[605] = '\0';
    assert_int_equal(parse(line, &c), SMTP_PARSE_OK);
    assert_int_equal(strlen(c.arg), 600);
    memset(line, 'X', 512);
    line[512] = '\0';
    assert_int_equal(parse(line, &c), SMTP_PARSE_UNKNOWN_VERB);
    strcpy(line, "MAIL FROM:<a@b>");
    memset(line + 15, ' ', 3000);
    line[3015] = '\0';
    assert_int_equal(parse(line, &c), SMTP_PARSE_OK);
    strcpy(line, "MAIL FROM:<");
    memset(line + 11, '"', 3000);
    line[3011] = '\0';
    assert_int_equal(parse(line, &c), SMTP_PARSE_BAD_PATH);
    strcpy(line, "MAIL FROM:<a@b> ENVID=");
    memset(line + 22, 'e', 1000);
    line[1022] = '\0';
    assert_int_equal(parse(line, &c), SMTP_PARSE_BAD_PARAM);
}

/* test_size - SIZE digits, 64-bit range, 20 digits maximum */
static void test_size(void **state)
{
    struct smtp_cmd c;

    assert_int_equal(parse("MAIL FROM:<a@b> SIZE=12345", &c), SMTP_PARSE_OK);
    assert_int_equal(c.has_size, 1);
    assert_true(c.size == 12345);
    assert_int_equal(parse("MAIL FROM:<a@b> size=0", &c), SMTP_PARSE_OK);
    assert_int_equal(c.has_size, 1);
    assert_true(c.size == 0);
    assert_int_equal(parse("MAIL FROM:<a@b> SIZE=18446744073709551615", &c), SMTP_PARSE_OK);
    assert_true(c.size == UINT64_MAX);
    assert_int_equal(parse("MAIL FROM:<a@b> SIZE=18446744073709551616", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("MAIL FROM:<a@b> SIZE=99999999999999999999", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("MAIL FROM:<a@b> SIZE=000000000000000000001", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("MAIL FROM:<a@b> SIZE=00000000000000000001", &c), SMTP_PARSE_OK);
    assert_int_equal(parse("MAIL FROM:<a@b> SIZE", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("MAIL FROM:<a@b> SIZE=", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("MAIL FROM:<a@b> SIZE=12k", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("MAIL FROM:<a@b> SIZE=-1", &c), SMTP_PARSE_BAD_PARAM);
}

/* test_body - BODY values, case-insensitive */
static void test_body(void **state)
{
    struct smtp_cmd c;

    assert_int_equal(parse("MAIL FROM:<a@b> BODY=7BIT", &c), SMTP_PARSE_OK);
    assert_int_equal(c.body, SMTP_BODY_7BIT);
    assert_int_equal(parse("MAIL FROM:<a@b> body=8bitmime", &c), SMTP_PARSE_OK);
    assert_int_equal(c.body, SMTP_BODY_8BITMIME);
    assert_int_equal(parse("MAIL FROM:<a@b> BODY=BINARYMIME", &c), SMTP_PARSE_OK);
    assert_int_equal(c.body, SMTP_BODY_BINARY);
    assert_int_equal(parse("MAIL FROM:<a@b> BODY=8BIT", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("MAIL FROM:<a@b> BODY", &c), SMTP_PARSE_BAD_PARAM);
}

/* test_dsn_params - SMTPUTF8, RET, ENVID, AUTH on MAIL; NOTIFY, ORCPT on RCPT */
static void test_dsn_params(void **state)
{
    struct smtp_cmd c;

    assert_int_equal(parse("MAIL FROM:<a@b> SMTPUTF8 RET=hdrs ENVID=QQ+2B1 AUTH=<>", &c),
                     SMTP_PARSE_OK);
    assert_int_equal(c.smtputf8, 1);
    assert_string_equal(c.ret, "HDRS");
    assert_string_equal(c.envid, "QQ+2B1");
    assert_string_equal(c.auth, "<>");
    assert_null(c.notify);
    assert_int_equal(parse("MAIL FROM:<a@b> RET=Full AUTH=bob+40example.test", &c), SMTP_PARSE_OK);
    assert_string_equal(c.ret, "FULL");
    assert_string_equal(c.auth, "bob+40example.test");
    assert_int_equal(parse("MAIL FROM:<a@b> SMTPUTF8=yes", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("MAIL FROM:<a@b> RET=BODY", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("MAIL FROM:<a@b> ENVID=a+2", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("MAIL FROM:<a@b> ENVID=a+2g", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("MAIL FROM:<a@b> ENVID=a+", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("MAIL FROM:<a@b> ENVID=a=b", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("MAIL FROM:<a@b> AUTH=", &c), SMTP_PARSE_BAD_PARAM);
}

/* test_rcpt_params - NOTIFY lists and ORCPT syntax */
static void test_rcpt_params(void **state)
{
    struct smtp_cmd c;

    assert_int_equal(parse("RCPT TO:<u@d> NOTIFY=SUCCESS,failure,DELAY ORCPT=rfc822;u+40d", &c),
                     SMTP_PARSE_OK);
    assert_string_equal(c.notify, "SUCCESS,failure,DELAY");
    assert_string_equal(c.orcpt, "rfc822;u+40d");
    assert_int_equal(parse("RCPT TO:<u@d> NOTIFY=NEVER,SUCCESS", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("RCPT TO:<u@d> NOTIFY=FAILURE,FAILURE", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("RCPT TO:<u@d> NOTIFY=SOMETIMES", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("RCPT TO:<u@d> NOTIFY=FAILURE,", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("RCPT TO:<u@d> NOTIFY", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("RCPT TO:<u@d> ORCPT=u@d", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("RCPT TO:<u@d> ORCPT=;u@d", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("RCPT TO:<u@d> ORCPT=rfc822;", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("RCPT TO:<u@d> ORCPT=rf.c;u", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("RCPT TO:<u@d> SIZE=10", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("RCPT TO:<u@d> BODY=8BITMIME", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("MAIL FROM:<u@d> NOTIFY=NEVER", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("MAIL FROM:<u@d> ORCPT=rfc822;x", &c), SMTP_PARSE_BAD_PARAM);
}

/* test_param_errors - unknown keywords, repeats, malformed keyword or value */
static void test_param_errors(void **state)
{
    struct smtp_cmd c;

    assert_int_equal(parse("MAIL FROM:<a@b> XFOO=1", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("MAIL FROM:<a@b> SIZE=1 size=2", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("MAIL FROM:<a@b> SMTPUTF8 SMTPUTF8", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("RCPT TO:<a@b> NOTIFY=NEVER NOTIFY=NEVER", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("MAIL FROM:<a@b> =1", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("MAIL FROM:<a@b> SIZE=1=2", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("MAIL FROM:<a@b> BODY=8BITMIME\t", &c), SMTP_PARSE_OK);
    assert_int_equal(parse("MAIL FROM:<a@b> BODY=8BIT\tMIME", &c), SMTP_PARSE_BAD_PARAM);
    assert_int_equal(parse("MAIL FROM:<a@b>   SIZE=5    BODY=7BIT  ", &c), SMTP_PARSE_OK);
    assert_true(c.size == 5);
    assert_int_equal(c.body, SMTP_BODY_7BIT);
}

/* test_eight_bit_path - octets >= 0x80 pass the parser; address.c judges them */
static void test_eight_bit_path(void **state)
{
    struct smtp_cmd c;

    assert_int_equal(parse("MAIL FROM:<j\xc3\xb6rg@example.test> SMTPUTF8", &c), SMTP_PARSE_OK);
    assert_string_equal(c.path, "j\xc3\xb6rg@example.test");
    assert_int_equal(parse("RCPT TO:<\xff@x> ORCPT=rfc822;\xff", &c), SMTP_PARSE_BAD_PARAM);
}

/* test_verb_name - upper-case names, UNKNOWN for the rest */
static void test_verb_name(void **state)
{
    assert_string_equal(smtp_verb_name(SMTP_VERB_MAIL), "MAIL");
    assert_string_equal(smtp_verb_name(SMTP_VERB_STARTTLS), "STARTTLS");
    assert_string_equal(smtp_verb_name(SMTP_VERB_LHLO), "LHLO");
    assert_string_equal(smtp_verb_name(SMTP_VERB_AUTH), "AUTH");
    assert_string_equal(smtp_verb_name(SMTP_VERB_UNKNOWN), "UNKNOWN");
    assert_string_equal(smtp_verb_name((enum smtp_verb)999), "UNKNOWN");
}

/* test_every_byte - every single octet and every octet after a verb is handled */
static void test_every_byte(void **state)
{
    struct smtp_cmd c;
    char line[32];
    int b;

    for (b = 0; b < 256; b++) {
        enum smtp_parse_err e;
        line[0] = (char)b;
        e = parse_n(line, 1, &c);
        assert_true(e == SMTP_PARSE_UNKNOWN_VERB || e == SMTP_PARSE_NUL ||
                    e == SMTP_PARSE_BAD_CHAR);
        memcpy(line, "MAIL FROM:<a@b> ", 16);
        line[16] = (char)b;
        e = parse_n(line, 17, &c);
        assert_int_equal(e, b == 0                    ? SMTP_PARSE_NUL
                            : (b < 0x20 && b != '\t') ? SMTP_PARSE_BAD_CHAR
                            : (b == ' ' || b == '\t') ? SMTP_PARSE_OK
                                                      : SMTP_PARSE_BAD_PARAM);
    }
}

/* main - run the parser tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_nul, teardown),
        cmocka_unit_test_teardown(test_bad_char, teardown),
        cmocka_unit_test_teardown(test_verbs_case, teardown),
        cmocka_unit_test_teardown(test_helo, teardown),
        cmocka_unit_test_teardown(test_no_arg_verbs, teardown),
        cmocka_unit_test_teardown(test_optional_arg_verbs, teardown),
        cmocka_unit_test_teardown(test_required_arg_verbs, teardown),
        cmocka_unit_test_teardown(test_bdat, teardown),
        cmocka_unit_test_teardown(test_mail_basic, teardown),
        cmocka_unit_test_teardown(test_mail_errors, teardown),
        cmocka_unit_test_teardown(test_rcpt, teardown),
        cmocka_unit_test_teardown(test_quoted_path, teardown),
        cmocka_unit_test_teardown(test_path_length, teardown),
        cmocka_unit_test_teardown(test_long_lines, teardown),
        cmocka_unit_test_teardown(test_size, teardown),
        cmocka_unit_test_teardown(test_body, teardown),
        cmocka_unit_test_teardown(test_dsn_params, teardown),
        cmocka_unit_test_teardown(test_rcpt_params, teardown),
        cmocka_unit_test_teardown(test_param_errors, teardown),
        cmocka_unit_test_teardown(test_eight_bit_path, teardown),
        cmocka_unit_test_teardown(test_verb_name, teardown),
        cmocka_unit_test_teardown(test_every_byte, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
