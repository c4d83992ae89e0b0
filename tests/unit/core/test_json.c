/* test_json.c - the JSON writer: structure, commas, and escapes of everything outside */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/json.h"
#include "core/metrics.h"

/* str - one string value, written alone */
static void check_str(const char *in, size_t len, const char *want)
{
    struct json j;

    json_init(&j);
    json_strn(&j, in, len);
    assert_string_equal(j.buf, want);
    json_free(&j);
}

static void test_structure(void **state)
{
    struct json j;

    (void)state;
    json_init(&j);
    json_obj_begin(&j);
    json_kstr(&j, "a", "x");
    json_kint(&j, "b", -5);
    json_key(&j, "c");
    json_arr_begin(&j);
    json_int(&j, 1);
    json_obj_begin(&j);
    json_obj_end(&j);
    json_null(&j);
    json_bool(&j, 0);
    json_double(&j, 33.3);
    json_arr_end(&j);
    json_kstr(&j, "d", NULL);
    json_obj_end(&j);
    assert_string_equal(j.buf, "{\"a\":\"x\",\"b\":-5,\"c\":[1,{},null,false,33.3],\"d\":null}");
    json_free(&j);
}

static void test_escapes(void **state)
{
    (void)state;
    check_str("plain text", 10, "\"plain text\"");
    check_str("say \"hi\" \\o/", 12, "\"say \\\"hi\\\" \\\\o/\"");
    check_str("\x1b[31mred\x07\r\n\t", 12, "\"\\u001b[31mred\\u0007\\u000d\\u000a\\u0009\"");
    check_str("a\0b", 3, "\"a\\u0000b\""); /* NUL inside a counted string */
    check_str("\x7f", 1, "\"\\u007f\"");
    check_str("</script><!--&", 14, "\"\\u003c/script\\u003e\\u003c!--\\u0026\"");
    check_str("caf\xc3\xa9 \xe6\x97\xa5", 9, "\"caf\xc3\xa9 \xe6\x97\xa5\""); /* UTF-8 kept */
    check_str("\xe2\x80\xa8\xe2\x80\xa9", 6, "\"\\u2028\\u2029\"");
    check_str("\xff\xc3", 2, "\"\\ufffd\\ufffd\"");            /* not UTF-8; cut sequence */
    check_str("\xc2\x9b\xc2\xa0", 4, "\"\\u009b\xc2\xa0\"");   /* C1 (CSI) escaped, NBSP kept */
    check_str("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""); /* a surrogate */
}

static void test_metrics_events(void **state)
{
    struct metrics_hist_snap s;

    (void)state;
    metrics_observe(METRICS_SESSION_SECONDS, 0.007);
    metrics_observe(METRICS_SESSION_SECONDS, 1000);
    metrics_hist_get(METRICS_SESSION_SECONDS, &s);
    assert_int_equal(s.count, 2);
    assert_int_equal(s.cumulative[0], 0);                   /* le 0.005 */
    assert_int_equal(s.cumulative[1], 1);                   /* le 0.01 */
    assert_int_equal(s.cumulative[METRICS_BUCKETS - 1], 1); /* 1000 s only in +Inf */
    metrics_inc(METRICS_DNS_TIMEOUTS);
    assert_int_equal(metrics_get(METRICS_DNS_TIMEOUTS), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_metrics_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
