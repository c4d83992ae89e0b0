/* test_store_redis_cmd.c - the Redis backend's URIs, command encoding and reply decoding,
 * against fake hiredis replies (no server) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <hiredis/hiredis.h>

#include "store/store.h"
#include "store/store_redis_cmd.h"

/* arg_is - argument i of c is exactly s (binary-safe) */
static void arg_is(const struct rds_cmd *c, int i, const char *s, size_t n)
{
    assert_true(i < c->argc);
    assert_int_equal(c->argvlen[i], n);
    assert_memory_equal(c->argv[i], s, n);
}
#define ARG(c, i, lit) arg_is(c, i, lit, sizeof(lit) - 1)

static void test_uri_tcp(void **state)
{
    struct rds_uri u;
    char err[200], name[300];

    assert_int_equal(rds_uri_parse("redis", "//127.0.0.1:6380/2", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
    assert_false(u.has_password);
    assert_int_equal(rds_uri_parse("redis", "//:p@ss:w@rd@[::1]", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_true(u.has_password);
    assert_string_equal(u.password, "p@ss:w@rd"); /* the last @ ends the password */
    rds_uri_name(&u, name, sizeof(name));
    assert_string_equal(name, "[::1]:6379/0"); /* never the password */
    assert_int_equal(rds_uri_parse("redis", "//localhost/", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "localhost");
}

static void test_uri_unix(void **state)
{
    struct rds_uri u;
    char err[200], name[300];

    assert_int_equal(
        rds_uri_parse("redis+unix", "//:pw@/run/redis/r.sock?db=3", &u, err, sizeof(err)), 0);
    assert_string_equal(u.path, "/run/redis/r.sock");
    assert_string_equal(u.password, "pw");
    assert_int_equal(u.db, 3);
    assert_string_equal(u.host, "");
    rds_uri_name(&u, name, sizeof(name));
    assert_string_equal(name, "unix:/run/redis/r.sock/3");
}

static void test_uri_bad(void **state)
{
    static const char *const tcp[] = {"127.0.0.1", "//",          "//h:0",  "//h:65536",
                                      "//h:12x",   "//h/16",      "//h/-1", "//h/1x",
                                      "//[::1",    "//user:pw@h", "//:@h"};
    static const char *const unx[] = {"//relative.sock", "///s?db=99", "///s?prefix=x", "//"};
    struct rds_uri u;
    char err[200];

    for (size_t i = 0; i < sizeof(tcp) / sizeof(tcp[0]); i++) {
        err[0] = '\0';
        assert_int_equal(rds_uri_parse("redis", tcp[i], &u, err, sizeof(err)), -1);
        assert_true(err[0] != '\0');
    }
    for (size_t i = 0; i < sizeof(unx) / sizeof(unx[0]); i++)
        assert_int_equal(rds_uri_parse("redis+unix", unx[i], &u, err, sizeof(err)), -1);
}

static void test_cmd_encoding(void **state)
{
    struct rds_cmd c;
    const char bin[] = {'a', '\0', 'b'};

    rds_cmd_get(&c, "mxgate:", "gl:c:1", 6);
    assert_int_equal(c.argc, 2);
    ARG(&c, 0, "GET");
    ARG(&c, 1, "mxgate:gl:c:1");

    rds_cmd_set(&c, "p:", bin, sizeof(bin), bin, sizeof(bin), 0); /* binary key and value */
    assert_int_equal(c.argc, 3);
    ARG(&c, 0, "SET");
    arg_is(&c, 1, "p:a\0b", 5);
    arg_is(&c, 2, "va\0b", 4); /* a plain value carries its "v" */
    rds_cmd_free(&c);

    rds_cmd_set(&c, "p:", "k", 1, "", 0, 300);
    assert_int_equal(c.argc, 5);
    ARG(&c, 2, "v");
    ARG(&c, 3, "EX");
    ARG(&c, 4, "300");
    rds_cmd_free(&c);

    rds_cmd_incr(&c, "p:", "rl:x", 4, -3, 60);
    assert_int_equal(c.argc, 6);
    ARG(&c, 0, "EVAL");
    arg_is(&c, 1, rds_script_incr, strlen(rds_script_incr));
    assert_non_null(strstr(rds_script_incr, "INCRBY"));
    assert_non_null(strstr(rds_script_incr, "EXPIRE"));
    ARG(&c, 2, "1");
    ARG(&c, 3, "p:rl:x");
    ARG(&c, 4, "-3");
    ARG(&c, 5, "60");

    rds_cmd_del(&c, "", "k", 1);
    ARG(&c, 0, "DEL");
    ARG(&c, 1, "k");

    rds_cmd_lease(&c, "p:", "bf:leader", 9, "mx1 42", 9000);
    ARG(&c, 0, "EVAL");
    ARG(&c, 3, "p:bf:leader");
    ARG(&c, 4, "vmx1 42"); /* stored as a plain value: a get reads the owner */
    ARG(&c, 5, "9000");
    rds_cmd_free(&c);
}

static void test_long_key_kept_whole(void **state)
{
    char key[STORE_KEY_MAX];
    struct rds_cmd c;

    memset(key, 'k', sizeof(key));
    rds_cmd_get(&c, "0123456789012345678901234567890123456789012345678901234567890123", key,
                sizeof(key));
    assert_int_equal(c.argvlen[1], 64 + STORE_KEY_MAX);
}

static void test_match_escapes_glob(void **state)
{
    char m[64];

    assert_int_equal(rds_match(m, sizeof(m), "mx*:", "a?[b]\\", 6), 16);
    assert_string_equal(m, "mx\\*:a\\?\\[b\\]\\\\*");
    rds_match(m, sizeof(m), "mxgate:", "", 0);
    assert_string_equal(m, "mxgate:*");
}

static void test_decode_values(void **state)
{
    unsigned char ctr[8];
    const void *v;
    size_t n;
    int64_t x;

    assert_int_equal(rds_value("vhello", 6, &v, &n, ctr), STORE_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(v, "hello", 5);
    assert_int_equal(rds_value("v", 1, &v, &n, ctr), STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(rds_value("-42", 3, &v, &n, ctr), STORE_OK); /* a counter */
    assert_int_equal(n, 8);
    assert_int_equal(store_counter_decode(v, n, &x), 0);
    assert_int_equal(x, -42);
    assert_int_equal(rds_value("9223372036854775807", 19, &v, &n, ctr), STORE_OK);
    assert_int_equal(store_counter_decode(v, n, &x), 0);
    assert_true(x == INT64_MAX);
    assert_int_equal(rds_value("12a", 3, &v, &n, ctr), STORE_EIO); /* not ours */
    assert_int_equal(rds_value("", 0, &v, &n, ctr), STORE_EIO);
}

/* rep - a fake reply */
static redisReply rep(int type, const char *str, long long integer)
{
    redisReply r;

    memset(&r, 0, sizeof(r));
    r.type = type;
    r.str = (char *)str;
    r.len = str ? strlen(str) : 0;
    r.integer = integer;
    return r;
}

static void test_decode_replies(void **state)
{
    redisReply r;
    unsigned char ctr[8];
    const void *v;
    size_t n;
    int64_t x = 0;

    r = rep(REDIS_REPLY_NIL, NULL, 0);
    assert_int_equal(rds_reply_get(&r, &v, &n, ctr), STORE_NOTFOUND);
    r = rep(REDIS_REPLY_STRING, "vx", 0);
    assert_int_equal(rds_reply_get(&r, &v, &n, ctr), STORE_OK);
    assert_int_equal(rds_reply_get(NULL, &v, &n, ctr), STORE_EDOWN); /* connection gone */
    r = rep(REDIS_REPLY_STATUS, "OK", 0);
    assert_int_equal(rds_reply_set(&r), STORE_OK);
    r = rep(REDIS_REPLY_INTEGER, NULL, 7);
    assert_int_equal(rds_reply_incr(&r, &x), STORE_OK);
    assert_int_equal(x, 7);
    r = rep(REDIS_REPLY_ERROR,
            "ERR value is not an integer or out of range script: 1bc, on @user_script:1.", 0);
    assert_int_equal(rds_reply_incr(&r, &x), STORE_ETYPE);
    r = rep(REDIS_REPLY_ERROR, "ERR increment or decrement would overflow", 0);
    assert_int_equal(rds_reply_incr(&r, &x), STORE_ERANGE);
    r = rep(REDIS_REPLY_INTEGER, NULL, 1);
    assert_int_equal(rds_reply_del(&r), STORE_OK);
    r = rep(REDIS_REPLY_INTEGER, NULL, 0);
    assert_int_equal(rds_reply_del(&r), STORE_NOTFOUND);
    assert_int_equal(rds_reply_lease(&r), STORE_EBUSY);
    r = rep(REDIS_REPLY_INTEGER, NULL, 1);
    assert_int_equal(rds_reply_lease(&r), STORE_OK);
    /* a server that cannot answer now is an outage; other errors are errors */
    r = rep(REDIS_REPLY_ERROR, "LOADING Redis is loading the dataset in memory", 0);
    assert_int_equal(rds_reply_set(&r), STORE_EDOWN);
    r = rep(REDIS_REPLY_ERROR, "NOAUTH Authentication required.", 0);
    assert_int_equal(rds_reply_del(&r), STORE_EDOWN);
    r = rep(REDIS_REPLY_ERROR, "OOM command not allowed when used memory > 'maxmemory'.", 0);
    assert_int_equal(rds_reply_set(&r), STORE_EFULL);
    r = rep(REDIS_REPLY_ERROR, "WRONGTYPE Operation against a key holding the wrong kind", 0);
    assert_int_equal(rds_reply_set(&r), STORE_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uri_tcp),
        cmocka_unit_test(test_uri_unix),
        cmocka_unit_test(test_uri_bad),
        cmocka_unit_test(test_cmd_encoding),
        cmocka_unit_test(test_long_key_kept_whole),
        cmocka_unit_test(test_match_escapes_glob),
        cmocka_unit_test(test_decode_values),
        cmocka_unit_test(test_decode_replies),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
