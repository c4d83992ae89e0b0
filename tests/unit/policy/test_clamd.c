/* test_clamd.c - the clamd check's pure parts: its reply parser and socket addresses */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "policy/clamd.h"

static enum clamd_result parse(const char *reply, char *sig, size_t len)
{
    return clamd_reply_parse(reply, strlen(reply), sig, len);
}

static void test_clean(void **st)
{
    char sig[CLAMD_SIG_MAX];

    assert_int_equal(parse("stream: OK", sig, sizeof(sig)), CLAMD_CLEAN);
    assert_int_equal(parse("stream: OK\n", sig, sizeof(sig)), CLAMD_CLEAN);
    assert_int_equal(parse("1: stream: OK", sig, sizeof(sig)), CLAMD_CLEAN);
}

static void test_found(void **st)
{
    char sig[CLAMD_SIG_MAX];

    assert_int_equal(parse("stream: Win.Test.EICAR_HDB-1 FOUND", sig, sizeof(sig)), CLAMD_FOUND);
    assert_string_equal(sig, "Win.Test.EICAR_HDB-1");
    /* what a hostile or broken reply could put in a reply line or a log is made harmless */
    assert_int_equal(parse("stream: Bad\"Na\\me\x01 x FOUND", sig, sizeof(sig)), CLAMD_FOUND);
    assert_string_equal(sig, "Bad?Na?me??x");
    /* bounded */
    char longsig[300] = "stream: ";
    memset(longsig + 8, 'A', 200);
    strcpy(longsig + 208, " FOUND");
    assert_int_equal(parse(longsig, sig, sizeof(sig)), CLAMD_FOUND);
    assert_int_equal(strlen(sig), sizeof(sig) - 1);
    /* " FOUND" alone names nothing */
    assert_int_equal(parse("stream:  FOUND", sig, sizeof(sig)), CLAMD_ERROR);
}

static void test_error(void **st)
{
    char sig[CLAMD_REPLY_MAX];

    assert_int_equal(parse("INSTREAM size limit exceeded. ERROR", sig, sizeof(sig)), CLAMD_ERROR);
    assert_string_equal(sig, "INSTREAM size limit exceeded. ERROR");
    assert_int_equal(parse("stream: Can't allocate memory ERROR", sig, sizeof(sig)), CLAMD_ERROR);
    assert_int_equal(parse("UNKNOWN COMMAND", sig, sizeof(sig)), CLAMD_ERROR);
    assert_int_equal(parse("", sig, sizeof(sig)), CLAMD_ERROR);
    assert_string_equal(sig, "empty reply");
    assert_int_equal(parse("stream: OKAY", sig, sizeof(sig)), CLAMD_ERROR);
}

static void test_addr(void **st)
{
    struct sockaddr_storage sa;
    socklen_t len;

    assert_int_equal(clamd_addr_parse("/run/clamav/clamd.ctl", &sa, &len), 0);
    assert_int_equal(sa.ss_family, AF_UNIX);
    assert_string_equal(((struct sockaddr_un *)&sa)->sun_path, "/run/clamav/clamd.ctl");
    assert_int_equal(clamd_addr_parse("127.0.0.1:3310", &sa, &len), 0);
    assert_int_equal(sa.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&sa)->sin_port), 3310);
    assert_int_equal(clamd_addr_parse("[::1]:3310", &sa, &len), 0);
    assert_int_equal(sa.ss_family, AF_INET6);
    assert_int_equal(clamd_addr_parse("::1:3310", &sa, &len), 0);            /* the last colon */
    assert_int_equal(clamd_addr_parse("clamd.example:3310", &sa, &len), -1); /* no name lookups */
    assert_int_equal(clamd_addr_parse("127.0.0.1:0", &sa, &len), -1);
    assert_int_equal(clamd_addr_parse("127.0.0.1:65536", &sa, &len), -1);
    assert_int_equal(clamd_addr_parse("127.0.0.1:", &sa, &len), -1);
    assert_int_equal(clamd_addr_parse("127.0.0.1", &sa, &len), -1);
    assert_int_equal(clamd_addr_parse("relative.sock", &sa, &len), -1);
    assert_int_equal(clamd_addr_parse("", &sa, &len), -1);
    char longpath[200] = "/";
    memset(longpath + 1, 'p', 150);
    assert_int_equal(clamd_addr_parse(longpath, &sa, &len), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean),
        cmocka_unit_test(test_found),
        cmocka_unit_test(test_error),
        cmocka_unit_test(test_addr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
