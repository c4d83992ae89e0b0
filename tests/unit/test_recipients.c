/* test_recipients.c - the recipients check through the real pipeline: a
 * recipients file, and probes of a fake internal SMTP/LMTP server running on
 * the same event loop, with the cache in a real LMDB store */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/config.h"
#include "policy/checks.h"
#include "policy/policy.h"
#include "policy/stats.h"
#include "store/store.h"
#include "ts_fixture.h"
#include "ts_fs.h"
#include "ts_policy.h"
#include "ts_smtp.h"

#define UNKNOWN_FMT "<%s>: Recipient address rejected: User unknown"
#define TEMPFAIL_FMT "<%s>: Recipient address verification failed, try again later"
#define T0 1700000000

/* ---- a fake internal mail server: lock-step SMTP or LMTP ---- */

struct fake {
    struct ts_smtp srv;       /* silent: accept but never greet (a hung server) */
    const char *const *known; /* RCPT gets 250; "busy..." 450; any other 550 */
    int nrcpt, ndata;
    char last_mail[128];
    char last_rcpt[128];
};

/* fake_rcpt - the reply to RCPT TO:<addr> */
static const char *fake_rcpt(struct fake *f, const char *arg)
{
    char addr[128];
    size_t n = strcspn(arg, ">");

    snprintf(addr, sizeof(addr), "%.*s", (int)n, arg);
    snprintf(f->last_rcpt, sizeof(f->last_rcpt), "%s", addr);
    f->nrcpt++;
    for (size_t i = 0; f->known && f->known[i]; i++)
        if (strcasecmp(f->known[i], addr) == 0)
            return "250 2.1.5 ok\r\n";
    if (strncmp(addr, "busy", 4) == 0)
        return "450 4.2.1 mailbox busy\r\n";
    return "550 5.1.1 no such user\r\n";
}

/* fake_line - answer one command line, in lock-step */
static const char *fake_line(struct ts_smtp_conn *c, const char *line)
{
    struct fake *f = c->s->arg;

    if (!strncmp(line, "EHLO ", 5) || !strncmp(line, "LHLO ", 5))
        return "250 fake\r\n";
    if (!strncmp(line, "MAIL FROM:<", 11)) {
        snprintf(f->last_mail, sizeof(f->last_mail), "%s", line);
        return "250 2.1.0 ok\r\n";
    }
    if (!strncmp(line, "RCPT TO:<", 9))
        return fake_rcpt(f, line + 9);
    if (!strcmp(line, "DATA")) {
        f->ndata++;
        return "554 5.5.1 no data expected\r\n";
    }
    if (!strcmp(line, "QUIT")) {
        c->hangup = 1;
        return "221 bye\r\n";
    }
    return "500 5.5.2 what\r\n";
}

/* fake_start - listen on 127.0.0.1, an ephemeral port */
static void fake_start(struct fake *f, struct event_base *base, const char *const *known)
{
    memset(f, 0, sizeof(*f));
    f->known = known;
    ts_smtp_start(&f->srv, base, fake_line, f);
    f->srv.greeting = "220 fake ESMTP\r\n";
}

/* ---- the pipeline around the check ---- */

struct ctx {
    struct ts_fixture fx;
    struct fake fake;
};

static struct ctx *C;

/* setup - loop, scratch directory, a store */
static int setup(void **state)
{
    static struct ctx c;

    memset(&c, 0, sizeof(c));
    C = &c;
    assert_int_equal(ts_fixture_init(&c.fx, "test_recipients"), 0);
    ts_now = T0;
    c.fx.store = ts_store_open(&c.fx, "db", NULL, ts_clock);
    *state = &c;
    return 0;
}

/* unload - policy, configuration and the statistics made with them */
static void unload(void)
{
    ts_fixture_unload(&C->fx);
    stats_free(C->fx.stats);
    C->fx.stats = NULL;
}

/* teardown - free everything; the fake server before its loop */
static int teardown(void **state)
{
    unload();
    ts_smtp_stop(&C->fake.srv);
    ts_fixture_free(&C->fx);
    return 0;
}

/* write_file - name in the scratch directory holds text; its path into out */
static void write_file(const char *name, const char *text, char *out, size_t outlen)
{
    ts_write_file(C->fx.dir, name, text, out, outlen);
}

/* try_load - a configuration running recipients with these sections */
static struct policy *try_load(const char *sections, char *err, size_t errlen)
{
    struct policy_env env;
    char text[4096];

    unload();
    C->fx.stats = stats_new(C->fx.store);
    assert_non_null(C->fx.stats);
    env = ts_env(&C->fx);
    snprintf(text, sizeof(text),
             "hostname = \"mx.example.test\"\n"
             "listen mx { address = \"127.0.0.1:2525\"  checks = {\"recipients\"} }\n%s\n",
             sections);
    ts_policy_load(&C->fx, text, &env, err, errlen);
    assert_non_null(C->fx.cfg);
    return C->fx.pol;
}

/* load - try_load that must work */
static void load(const char *sections)
{
    char err[512];

    if (!try_load(sections, err, sizeof(err)))
        fail_msg("policy_new: %s", err);
}

/* load_fails - try_load that must fail with exactly this message */
static void load_fails(const char *sections, const char *want)
{
    char err[512];

    assert_null(try_load(sections, err, sizeof(err)));
    assert_string_equal(err, want);
}

/* rcpt - the RCPT verdict for rcpt from ip */
static struct policy_verdict rcpt_from(const char *ip, const char *rcpt)
{
    struct policy_client cl;

    ts_client(&cl, ip);
    cl.sender = "s@x.test";
    cl.rcpt = rcpt;
    return ts_stage(&C->fx, POLICY_RCPT, &cl, 15000).v;
}

/* rcpt - the RCPT verdict for rcpt from 192.0.2.1 */
static struct policy_verdict rcpt(const char *addr)
{
    return rcpt_from("192.0.2.1", addr);
}

/* assert_dunno - the recipient is known (or not verified) */
static void assert_dunno(const char *addr)
{
    struct policy_verdict v = rcpt(addr);

    if (v.action != POLICY_DUNNO)
        fail_msg("%s: expected dunno, got %d %s %s (%s)", addr, v.code, v.status, v.text, v.reason);
}

/* assert_unknown - 550 5.1.1 from recipients with this reason */
static void assert_unknown(const char *addr, const char *reason)
{
    struct policy_verdict v = rcpt(addr);
    char text[300];

    snprintf(text, sizeof(text), UNKNOWN_FMT, addr);
    assert_int_equal(v.action, POLICY_REJECT);
    assert_int_equal(v.code, 550);
    assert_string_equal(v.status, "5.1.1");
    assert_string_equal(v.text, text);
    assert_string_equal(v.reason, reason);
    assert_string_equal(v.check, "recipients");
}

/* assert_tempfail - 451 4.4.0 from recipients; the reason starts with prefix */
static void assert_tempfail(const char *addr, const char *prefix)
{
    struct policy_verdict v = rcpt(addr);
    char text[300];

    snprintf(text, sizeof(text), TEMPFAIL_FMT, addr);
    assert_int_equal(v.action, POLICY_TEMPFAIL);
    assert_int_equal(v.code, 451);
    assert_string_equal(v.status, "4.4.0");
    assert_string_equal(v.text, text);
    if (strncmp(v.reason, prefix, strlen(prefix)) != 0)
        fail_msg("reason \"%s\" does not start with \"%s\"", v.reason, prefix);
    assert_string_equal(v.check, "recipients");
}

/* store_read - key from the store, synchronously for the test */
static struct ts_got store_read(const char *key)
{
    return ts_store_get(C->fx.base, C->fx.store, key);
}

/* assert_cached - "rv:<key>" holds val ("1" / "0"), or is missing when val is NULL */
static void assert_cached(const char *addr, const char *val)
{
    char key[300];
    struct ts_got g;

    snprintf(key, sizeof(key), "rv:%s", addr);
    g = store_read(key);
    if (!val) {
        assert_int_equal(g.status, STORE_NOTFOUND);
        return;
    }
    assert_int_equal(g.status, STORE_OK);
    assert_int_equal(g.vlen, strlen(val));
    assert_memory_equal(g.val, val, g.vlen);
}

/* harvest_count - the unknown-recipient counter of ip (0 when missing) */
static int64_t harvest_count(const char *ip)
{
    char key[100];
    struct ts_got g;
    int64_t n = 0;

    snprintf(key, sizeof(key), "hv:n:%s", ip);
    g = store_read(key);
    if (g.status == STORE_NOTFOUND)
        return 0;
    assert_int_equal(g.status, STORE_OK);
    assert_int_equal(store_counter_decode(g.val, g.vlen, &n), 0);
    return n;
}

/* ---------------------------------------------------------------------- */

static const char list1[] = "# staff\n"
                            "Alice@Example.TEST\n"
                            "  bob@example.test   # trailing comment\n"
                            "\n"
                            "@catch.test\n"
                            "\"quoted name\"@example.test\n";

/* test_file - listed, catch-all, case-insensitive; others 550 and counted for harvest */
static void test_file(void **state)
{
    char path[128], sections[512];

    write_file("rcpts", list1, path, sizeof(path));
    snprintf(sections, sizeof(sections),
             "recipients \"example.test\" { file = \"%s\" }\n"
             "recipients \"Catch.Test\" { file = \"%s\" }\n",
             path, path);
    load(sections);
    assert_dunno("alice@example.test");
    assert_dunno("ALICE@EXAMPLE.TEST");
    assert_dunno("bob@Example.Test");
    assert_dunno("\"quoted name\"@example.test");
    assert_dunno("anyone@catch.test");
    assert_dunno("Else@CATCH.test");
    assert_dunno("carol@other.test"); /* no section: not verified */
    assert_dunno("carol@sub.example.test");
    assert_dunno("no-domain");
    assert_int_equal(harvest_count("192.0.2.1"), 0);
    assert_unknown("carol@example.test", "unknown source=file");
    assert_unknown("zed@example.test", "unknown source=file");
    assert_int_equal(harvest_count("192.0.2.1"), 2);
    assert_unknown("x@example.test", "unknown source=file");
    assert_int_equal(harvest_count("192.0.2.1"), 3);
    assert_int_equal(harvest_count("192.0.2.2"), 0);
    assert_cached("carol@example.test", NULL); /* the file needs no cache */
}

/* test_file_canonical - quoting, IDNA and case variants of listed addresses are
 * listed; file entries and section names are canonicalised too */
static void test_file_canonical(void **state)
{
    char path[128], sections[512];

    write_file("rcpts",
               "\"alice\"@example.test\n"
               "\"a b\"@example.test\n"
               "j\xc3\xb6rg@b\xc3\xbc\x63her.example\n"
               "@XN--MNCHEN-3YA.example\n",
               path, sizeof(path));
    snprintf(sections, sizeof(sections),
             "recipients \"example.test\" { file = \"%s\" }\n"
             "recipients \"B\xc3\x9c\x43HER.example\" { file = \"%s\" }\n"
             "recipients \"m\xc3\xbcnchen.example\" { file = \"%s\" }\n",
             path, path, path);
    load(sections);
    assert_dunno("alice@example.test");
    assert_dunno("\"Alice\"@example.test");
    assert_dunno("\"a\\ b\"@example.test");
    assert_dunno("J\xc3\xb6rg@xn--bcher-kva.example");
    assert_dunno("j\xc3\xb6rg@b\xc3\xbc\x63her.example");
    assert_dunno("anyone@m\xc3\xbcnchen.example");
    assert_dunno("\"postmaster\"@example.test");
    assert_int_equal(harvest_count("192.0.2.1"), 0);
    assert_unknown("\"a  b\"@example.test", "unknown source=file");
    assert_unknown("bob@xn--bcher-kva.example", "unknown source=file");
    assert_int_equal(harvest_count("192.0.2.1"), 2);
}

/* test_file_errors - a bad file or section stops the start with file and line */
static void test_file_errors(void **state)
{
    char path[128], sections[512], want[512];

    write_file("bad", "alice@example.test\nbob@example.test carol@example.test\n", path,
               sizeof(path));
    snprintf(sections, sizeof(sections), "recipients \"example.test\" { file = \"%s\" }", path);
    snprintf(want, sizeof(want), "listen mx: %s:2: one address per line", path);
    load_fails(sections, want);

    write_file("bad", "# fine\nnot-an-address\n", path, sizeof(path));
    snprintf(want, sizeof(want), "listen mx: %s:2: not an address or @domain", path);
    load_fails(sections, want);

    snprintf(sections, sizeof(sections), "recipients \"example.test\" { file = \"%s/missing\" }",
             C->fx.dir);
    snprintf(want, sizeof(want), "listen mx: %s/missing:0: cannot open: No such file or directory",
             C->fx.dir);
    load_fails(sections, want);

    load_fails("recipients \"example.test\" { positive_ttl = 5 }",
               "listen mx: recipients example.test: needs a file or probe = true");
    load_fails("recipients \"example.test\" { probe = true }",
               "listen mx: recipients example.test: probe needs an smtp or lmtp route");
    snprintf(sections, sizeof(sections),
             "route \"example.test\" { to = \"maildir:%s/mail\" }\n"
             "recipients \"example.test\" { probe = true }",
             C->fx.dir);
    load_fails(sections, "listen mx: recipients example.test: probe needs an smtp or lmtp route");
    write_file("ok", "a@example.test\n", path, sizeof(path));
    snprintf(sections, sizeof(sections),
             "recipients \"example.test\" { file = \"%s\" }\n"
             "recipients \"EXAMPLE.test\" { file = \"%s\" }",
             path, path);
    load_fails(sections, "listen mx: recipients example.test: domain given twice");
}

/* test_reload - SIGHUP reads the file again; a broken file keeps the old list */
static void test_reload(void **state)
{
    char path[128], sections[512];

    write_file("rcpts", "alice@example.test\n", path, sizeof(path));
    snprintf(sections, sizeof(sections), "recipients \"example.test\" { file = \"%s\" }", path);
    load(sections);
    assert_dunno("alice@example.test");
    assert_unknown("dave@example.test", "unknown source=file");

    write_file("rcpts", "alice@example.test\ndave@example.test\n", path, sizeof(path));
    policy_reload(C->fx.pol);
    assert_dunno("dave@example.test");

    write_file("rcpts", "erin@example.test\nthis is wrong\n", path, sizeof(path));
    policy_reload(C->fx.pol); /* kept: alice and dave, not erin */
    assert_dunno("alice@example.test");
    assert_dunno("dave@example.test");
    assert_unknown("erin@example.test", "unknown source=file");

    write_file("rcpts", "erin@example.test\n", path, sizeof(path));
    policy_reload(C->fx.pol);
    assert_dunno("erin@example.test");
    assert_unknown("alice@example.test", "unknown source=file");
}

/* test_many - a large file: every entry found, the table grows correctly */
static void test_many(void **state)
{
    char path[128], sections[512], addr[64];
    FILE *f;

    snprintf(path, sizeof(path), "%s/many", C->fx.dir);
    f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 5000; i++)
        fprintf(f, "user%d@Example.test\n", i);
    assert_int_equal(fclose(f), 0);
    snprintf(sections, sizeof(sections), "recipients \"example.test\" { file = \"%s\" }", path);
    load(sections);
    for (int i = 0; i < 5000; i += 499) {
        snprintf(addr, sizeof(addr), "USER%d@example.test", i);
        assert_dunno(addr);
    }
    assert_unknown("user5000@example.test", "unknown source=file");
}

static const char *const known1[] = {"known@probe.test", "Other@probe.test", NULL};

/* probe_sections - a probed domain routed to the fake server (kind smtp or lmtp) */
static void probe_sections(char *out, size_t outlen, const char *kind, const char *extra)
{
    snprintf(out, outlen,
             "route \"probe.test\" { to = \"%s:[127.0.0.1]:%d\" }\n"
             "recipients \"probe.test\" { probe = true %s }\n",
             kind, C->fake.srv.port, extra);
}

/* test_probe - 2xx known, 5xx unknown, both cached; the probe says MAIL FROM:<>, never DATA */
static void test_probe(void **state)
{
    char sections[512];

    fake_start(&C->fake, C->fx.base, known1);
    probe_sections(sections, sizeof(sections), "smtp", "");
    load(sections);

    assert_dunno("known@probe.test");
    assert_int_equal(C->fake.srv.nconn, 1);
    assert_int_equal(C->fake.nrcpt, 1);
    assert_string_equal(C->fake.last_mail, "MAIL FROM:<>");
    assert_string_equal(C->fake.last_rcpt, "known@probe.test");
    assert_cached("known@probe.test", "1");

    assert_unknown("nobody@probe.test", "probe 550");
    assert_int_equal(C->fake.nrcpt, 2);
    assert_cached("nobody@probe.test", "0");
    assert_int_equal(harvest_count("192.0.2.1"), 1);

    /* the cache answers now, whatever the case: the server is not asked */
    assert_dunno("KNOWN@probe.test");
    assert_unknown("Nobody@Probe.Test", "cache negative");
    assert_int_equal(C->fake.nrcpt, 2);
    assert_int_equal(C->fake.srv.nconn, 2);
    assert_int_equal(harvest_count("192.0.2.1"), 2); /* a cached unknown counts too */

    /* variants of the address share its cache entry */
    assert_unknown("\"nobody\"@probe.test", "cache negative");
    assert_int_equal(C->fake.nrcpt, 2);

    /* the address is probed as written */
    assert_dunno("OTHER@probe.test");
    assert_string_equal(C->fake.last_rcpt, "OTHER@probe.test");
    assert_cached("other@probe.test", "1");
    assert_int_equal(C->fake.ndata, 0);
}

/* test_probe_ttl - the cached answers expire after their TTLs; TTL 0 is not cached */
static void test_probe_ttl(void **state)
{
    char sections[512];

    fake_start(&C->fake, C->fx.base, known1);
    probe_sections(sections, sizeof(sections), "smtp", "positive_ttl = 100  negative_ttl = 10");
    load(sections);
    assert_dunno("known@probe.test");
    assert_unknown("nobody@probe.test", "probe 550");
    ts_now = T0 + 9;
    assert_dunno("known@probe.test");
    assert_unknown("nobody@probe.test", "cache negative");
    assert_int_equal(C->fake.nrcpt, 2);
    ts_now = T0 + 10; /* negative expired, positive not */
    assert_unknown("nobody@probe.test", "probe 550");
    assert_dunno("known@probe.test");
    assert_int_equal(C->fake.nrcpt, 3);
    ts_now = T0 + 100;
    assert_dunno("known@probe.test");
    assert_int_equal(C->fake.nrcpt, 4);

    probe_sections(sections, sizeof(sections), "smtp", "positive_ttl = 0  negative_ttl = 0");
    load(sections);
    assert_dunno("other@probe.test");
    assert_unknown("nobody2@probe.test", "probe 550");
    assert_cached("other@probe.test", NULL);
    assert_cached("nobody2@probe.test", NULL);
    assert_dunno("other@probe.test");
    assert_int_equal(C->fake.nrcpt, 7);
}

/* test_probe_tempfail - 4xx or no answer is 451, never cached, never counted */
static void test_probe_tempfail(void **state)
{
    char sections[512];

    fake_start(&C->fake, C->fx.base, known1);
    probe_sections(sections, sizeof(sections), "lmtp", "");
    load(sections);
    assert_dunno("known@probe.test"); /* LMTP works the same */
    assert_tempfail("busy@probe.test", "probe 450 4.2.1 mailbox busy");
    assert_tempfail("busy@probe.test", "probe 450");
    assert_int_equal(C->fake.nrcpt, 3);
    assert_cached("busy@probe.test", NULL);

    ts_smtp_stop(&C->fake.srv); /* the internal server is down */
    assert_tempfail("new@probe.test", "probe no-answer: connect to 127.0.0.1:");
    assert_cached("new@probe.test", NULL);
    assert_dunno("known@probe.test"); /* still cached */
    assert_int_equal(harvest_count("192.0.2.1"), 0);
}

/* test_file_and_probe - a listed address needs no probe; others are probed */
static void test_file_and_probe(void **state)
{
    char path[128], extra[256], sections[512];

    fake_start(&C->fake, C->fx.base, known1);
    write_file("rcpts", "listed@probe.test\n", path, sizeof(path));
    snprintf(extra, sizeof(extra), "file = \"%s\"", path);
    probe_sections(sections, sizeof(sections), "smtp", extra);
    load(sections);
    assert_dunno("listed@probe.test");
    assert_int_equal(C->fake.srv.nconn, 0);
    assert_dunno("known@probe.test");
    assert_unknown("nobody@probe.test", "probe 550");
    assert_int_equal(C->fake.nrcpt, 2);
}

/* on_break - stop the loop after this callback: the events activated meanwhile wait */
static void on_break(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(C->fx.base);
}

/* test_probe_cancel - the session ends during a probe: no verdict, nothing leaks */
static void test_probe_cancel(void **state)
{
    char sections[512];
    struct policy_client cl;
    struct ts_outcome o = {0};
    struct policy_run *r;
    struct event *brk;
    int never = 0;

    fake_start(&C->fake, C->fx.base, known1);
    C->fake.srv.silent = 1;
    probe_sections(sections, sizeof(sections), "smtp", "");
    load(sections);
    memset(&cl, 0, sizeof(cl));
    snprintf(cl.ip, sizeof(cl.ip), "192.0.2.1");
    cl.listener = "mx";
    cl.rcpt = "known@probe.test";
    r = policy_start(policy_chain_for(C->fx.pol, "mx"), POLICY_RCPT, &cl, ts_on_verdict, &o);
    assert_non_null(r);
    while (C->fake.srv.nconn == 0)
        ts_run_until(C->fx.base, &never, 1, 50);
    policy_cancel(r); /* the probe is under way */
    ts_run_until(C->fx.base, &never, 1, 200);
    assert_int_equal(o.calls, 0);
    /* and a cancel while the cache is being read: no probe follows */
    r = policy_start(policy_chain_for(C->fx.pol, "mx"), POLICY_RCPT, &cl, ts_on_verdict, &o);
    assert_non_null(r);
    brk = event_new(C->fx.base, -1, 0, on_break, NULL);
    assert_non_null(brk);
    event_active(brk, EV_TIMEOUT, 0); /* queued after the pipeline's start: runs the check */
    event_base_loop(C->fx.base, 0);   /* ... whose store read is now pending */
    event_free(brk);
    policy_cancel(r);
    ts_run_until(C->fx.base, &never, 1, 200);
    assert_int_equal(o.calls, 0);
    assert_int_equal(C->fake.srv.nconn, 1);
}

/* main - run the recipients tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_canonical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_tempfail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_and_probe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_cancel, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
