/* test_recipients.c - the recipients check through the real pipeline: a
 * recipients file, and probes of a fake internal SMTP/LMTP server running on
 * the same event loop, with the cache in a real LMDB store */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "core/config.h"
#include "policy/checks.h"
#include "policy/policy.h"
#include "policy/stats.h"
#include "store/store.h"

#define UNKNOWN_FMT "<%s>: Recipient address rejected: User unknown"
#define TEMPFAIL_FMT "<%s>: Recipient address verification failed, try again later"
#define T0 1700000000

/* ---- a fake internal mail server: lock-step SMTP or LMTP ---- */

struct fake {
    struct evconnlistener *lis;
    int port;
    int silent;               /* accept but never greet (a hung server) */
    const char *const *known; /* RCPT gets 250; "busy..." 450; any other 550 */
    int nconn, nrcpt, ndata;
    int held[8]; /* silent: the connections kept open, unanswered */
    int nheld;
    char last_mail[128];
    char last_rcpt[128];
};

/* fake_reply - one reply line */
static void fake_reply(struct bufferevent *bev, const char *line)
{
    bufferevent_write(bev, line, strlen(line));
}

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

/* fake_line - answer one command line */
static void fake_line(struct fake *f, struct bufferevent *bev, const char *line)
{
    if (!strncmp(line, "EHLO ", 5) || !strncmp(line, "LHLO ", 5)) {
        fake_reply(bev, "250 fake\r\n");
    } else if (!strncmp(line, "MAIL FROM:<", 11)) {
        snprintf(f->last_mail, sizeof(f->last_mail), "%s", line);
        fake_reply(bev, "250 2.1.0 ok\r\n");
    } else if (!strncmp(line, "RCPT TO:<", 9)) {
        fake_reply(bev, fake_rcpt(f, line + 9));
    } else if (!strcmp(line, "DATA")) {
        f->ndata++;
        fake_reply(bev, "554 5.5.1 no data expected\r\n");
    } else if (!strcmp(line, "QUIT")) {
        fake_reply(bev, "221 bye\r\n");
        bufferevent_disable(bev, EV_READ);
    } else {
        fake_reply(bev, "500 5.5.2 what\r\n");
    }
}

/* fake_read - every complete line */
static void fake_read(struct bufferevent *bev, void *arg)
{
    char *line;

    while ((line = evbuffer_readln(bufferevent_get_input(bev), NULL, EVBUFFER_EOL_CRLF))) {
        fake_line(arg, bev, line);
        free(line);
    }
}

/* fake_write - after the 221 is out (reading disabled), hang up */
static void fake_write(struct bufferevent *bev, void *arg)
{
    if (!(bufferevent_get_enabled(bev) & EV_READ))
        bufferevent_free(bev);
}

/* fake_event - the client went away */
static void fake_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        bufferevent_free(bev);
}

/* fake_accept - greet, unless silent (then the connection hangs until fake_stop) */
static void fake_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                        int len, void *arg)
{
    struct fake *f = arg;
    struct bufferevent *bev;

    f->nconn++;
    if (f->silent) {
        if (f->nheld < 8)
            f->held[f->nheld++] = fd;
        else
            close(fd);
        return;
    }
    bev = bufferevent_socket_new(evconnlistener_get_base(lis), fd, BEV_OPT_CLOSE_ON_FREE);
    assert_non_null(bev);
    bufferevent_setcb(bev, fake_read, fake_write, fake_event, f);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    fake_reply(bev, "220 fake ESMTP\r\n");
}

/* fake_start - listen on 127.0.0.1, an ephemeral port */
static void fake_start(struct fake *f, struct event_base *base, const char *const *known)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);

    memset(f, 0, sizeof(*f));
    f->known = known;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->lis = evconnlistener_new_bind(base, fake_accept, f, LEV_OPT_CLOSE_ON_FREE, 16,
                                     (struct sockaddr *)&sin, sizeof(sin));
    assert_non_null(f->lis);
    assert_int_equal(getsockname(evconnlistener_get_fd(f->lis), (struct sockaddr *)&sin, &len), 0);
    f->port = ntohs(sin.sin_port);
}

/* fake_stop - nobody listens on that port any more */
static void fake_stop(struct fake *f)
{
    if (f->lis)
        evconnlistener_free(f->lis);
    f->lis = NULL;
    while (f->nheld > 0)
        close(f->held[--f->nheld]);
}

/* ---- the pipeline around the check ---- */

struct ctx {
    struct event_base *base;
    char dir[64];
    char uri[128];
    struct store *store;
    struct stats *stats;
    struct config *cfg;
    struct policy *pol;
    struct fake fake;
};

static struct ctx *C;
static time_t fake_now;

/* fake_clock - the store's time (TTL tests move it) */
static time_t fake_clock(void)
{
    return fake_now;
}

/* setup - loop, scratch directory, a store */
static int setup(void **state)
{
    static struct ctx c;
    char err[256];

    memset(&c, 0, sizeof(c));
    C = &c;
    c.base = event_base_new();
    assert_non_null(c.base);
    snprintf(c.dir, sizeof(c.dir), "/tmp/test_recipients.XXXXXX");
    assert_non_null(mkdtemp(c.dir));
    snprintf(c.uri, sizeof(c.uri), "lmdb:%s/db", c.dir);
    c.store = store_open(c.base, c.uri, err, sizeof(err));
    assert_non_null(c.store);
    fake_now = T0;
    store_set_clock(c.store, fake_clock);
    *state = &c;
    return 0;
}

/* rm_entry - nftw helper removing one entry */
static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* unload - policy and configuration */
static void unload(void)
{
    policy_free(C->pol);
    config_free(C->cfg);
    stats_free(C->stats);
    C->pol = NULL;
    C->cfg = NULL;
    C->stats = NULL;
}

/* teardown - free everything */
static int teardown(void **state)
{
    unload();
    fake_stop(&C->fake);
    store_close(C->store);
    event_base_free(C->base);
    nftw(C->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* write_file - name in the scratch directory holds text; its path into out */
static void write_file(const char *name, const char *text, char *out, size_t outlen)
{
    FILE *f;

    snprintf(out, outlen, "%s/%s", C->dir, name);
    f = fopen(out, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* try_load - a configuration running recipients with these sections */
static struct policy *try_load(const char *sections, char *err, size_t errlen)
{
    struct policy_env env = {C->base, NULL, NULL, C->store, NULL};
    char path[128], text[4096];

    unload();
    C->stats = stats_new(C->store);
    assert_non_null(C->stats);
    snprintf(text, sizeof(text),
             "hostname = \"mx.example.test\"\n"
             "listen mx { address = \"127.0.0.1:2525\"  checks = {\"recipients\"} }\n%s\n",
             sections);
    write_file("mxgate.conf", text, path, sizeof(path));
    C->cfg = config_load(path, stderr);
    assert_non_null(C->cfg);
    env.cfg = C->cfg;
    env.stats = C->stats;
    err[0] = '\0';
    C->pol = policy_new(&env, err, errlen);
    return C->pol;
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

struct outcome {
    int calls;
    struct policy_verdict v;
};

/* on_done - the pipeline's verdict */
static void on_done(void *arg, const struct policy_verdict *v)
{
    struct outcome *o = arg;

    o->calls++;
    o->v = *v;
}

/* on_deadline - a safety net so that a broken check fails instead of hanging */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    *(int *)arg = 1;
}

/* run_loop - run the loop until *flag is set or ms passed */
static void run_loop(const int *flag, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    int expired = 0;
    struct event *t = evtimer_new(C->base, on_deadline, &expired);

    assert_non_null(t);
    evtimer_add(t, &tv);
    while (!*flag && !expired)
        event_base_loop(C->base, EVLOOP_ONCE);
    event_free(t);
}

/* rcpt - the RCPT verdict for rcpt from ip */
static struct policy_verdict rcpt_from(const char *ip, const char *rcpt)
{
    struct policy_client cl;
    struct sockaddr_in *s = (struct sockaddr_in *)&cl.addr;
    struct outcome o = {0};

    memset(&cl, 0, sizeof(cl));
    s->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &s->sin_addr), 1);
    snprintf(cl.ip, sizeof(cl.ip), "%s", ip);
    cl.listener = "mx";
    cl.sender = "s@x.test";
    cl.rcpt = rcpt;
    assert_non_null(policy_start(policy_chain_for(C->pol, "mx"), POLICY_RCPT, &cl, on_done, &o));
    run_loop(&o.calls, 15000);
    assert_int_equal(o.calls, 1);
    return o.v;
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

struct got {
    int done, status;
    char val[64];
    size_t vlen;
};

/* on_get - a store read, for the assertions */
static void on_get(void *arg, int status, const void *val, size_t vlen)
{
    struct got *g = arg;

    g->done = 1;
    g->status = status;
    g->vlen = vlen < sizeof(g->val) ? vlen : sizeof(g->val);
    if (status == STORE_OK)
        memcpy(g->val, val, g->vlen);
}

/* store_read - key from the store, synchronously for the test */
static struct got store_read(const char *key)
{
    struct got g = {0};

    assert_int_equal(store_get(C->store, key, strlen(key), on_get, &g), 0);
    run_loop(&g.done, 2000);
    assert_int_equal(g.done, 1);
    return g;
}

/* assert_cached - "rv:<key>" holds val ("1" / "0"), or is missing when val is NULL */
static void assert_cached(const char *addr, const char *val)
{
    char key[300];
    struct got g;

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
    struct got g;
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
             C->dir);
    snprintf(want, sizeof(want), "listen mx: %s/missing:0: cannot open: No such file or directory",
             C->dir);
    load_fails(sections, want);

    load_fails("recipients \"example.test\" { positive_ttl = 5 }",
               "listen mx: recipients example.test: needs a file or probe = true");
    load_fails("recipients \"example.test\" { probe = true }",
               "listen mx: recipients example.test: probe needs an smtp or lmtp route");
    snprintf(sections, sizeof(sections),
             "route \"example.test\" { to = \"maildir:%s/mail\" }\n"
             "recipients \"example.test\" { probe = true }",
             C->dir);
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
    policy_reload(C->pol);
    assert_dunno("dave@example.test");

    write_file("rcpts", "erin@example.test\nthis is wrong\n", path, sizeof(path));
    policy_reload(C->pol); /* kept: alice and dave, not erin */
    assert_dunno("alice@example.test");
    assert_dunno("dave@example.test");
    assert_unknown("erin@example.test", "unknown source=file");

    write_file("rcpts", "erin@example.test\n", path, sizeof(path));
    policy_reload(C->pol);
    assert_dunno("erin@example.test");
    assert_unknown("alice@example.test", "unknown source=file");
}

/* test_many - a large file: every entry found, the table grows correctly */
static void test_many(void **state)
{
    char path[128], sections[512], addr[64];
    FILE *f;

    snprintf(path, sizeof(path), "%s/many", C->dir);
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
             kind, C->fake.port, extra);
}

/* test_probe - 2xx known, 5xx unknown, both cached; the probe says MAIL FROM:<>, never DATA */
static void test_probe(void **state)
{
    char sections[512];

    fake_start(&C->fake, C->base, known1);
    probe_sections(sections, sizeof(sections), "smtp", "");
    load(sections);

    assert_dunno("known@probe.test");
    assert_int_equal(C->fake.nconn, 1);
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
    assert_int_equal(C->fake.nconn, 2);
    assert_int_equal(harvest_count("192.0.2.1"), 2); /* a cached unknown counts too */

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

    fake_start(&C->fake, C->base, known1);
    probe_sections(sections, sizeof(sections), "smtp", "positive_ttl = 100  negative_ttl = 10");
    load(sections);
    assert_dunno("known@probe.test");
    assert_unknown("nobody@probe.test", "probe 550");
    fake_now = T0 + 9;
    assert_dunno("known@probe.test");
    assert_unknown("nobody@probe.test", "cache negative");
    assert_int_equal(C->fake.nrcpt, 2);
    fake_now = T0 + 10; /* negative expired, positive not */
    assert_unknown("nobody@probe.test", "probe 550");
    assert_dunno("known@probe.test");
    assert_int_equal(C->fake.nrcpt, 3);
    fake_now = T0 + 100;
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

    fake_start(&C->fake, C->base, known1);
    probe_sections(sections, sizeof(sections), "lmtp", "");
    load(sections);
    assert_dunno("known@probe.test"); /* LMTP works the same */
    assert_tempfail("busy@probe.test", "probe 450 4.2.1 mailbox busy");
    assert_tempfail("busy@probe.test", "probe 450");
    assert_int_equal(C->fake.nrcpt, 3);
    assert_cached("busy@probe.test", NULL);

    fake_stop(&C->fake); /* the internal server is down */
    assert_tempfail("new@probe.test", "probe no-answer: connect to 127.0.0.1:");
    assert_cached("new@probe.test", NULL);
    assert_dunno("known@probe.test"); /* still cached */
    assert_int_equal(harvest_count("192.0.2.1"), 0);
}

/* test_file_and_probe - a listed address needs no probe; others are probed */
static void test_file_and_probe(void **state)
{
    char path[128], extra[256], sections[512];

    fake_start(&C->fake, C->base, known1);
    write_file("rcpts", "listed@probe.test\n", path, sizeof(path));
    snprintf(extra, sizeof(extra), "file = \"%s\"", path);
    probe_sections(sections, sizeof(sections), "smtp", extra);
    load(sections);
    assert_dunno("listed@probe.test");
    assert_int_equal(C->fake.nconn, 0);
    assert_dunno("known@probe.test");
    assert_unknown("nobody@probe.test", "probe 550");
    assert_int_equal(C->fake.nrcpt, 2);
}

/* on_break - stop the loop after this callback: the events activated meanwhile wait */
static void on_break(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(C->base);
}

/* test_probe_cancel - the session ends during a probe: no verdict, nothing leaks */
static void test_probe_cancel(void **state)
{
    char sections[512];
    struct policy_client cl;
    struct outcome o = {0};
    struct policy_run *r;
    struct event *brk;
    int never = 0;

    fake_start(&C->fake, C->base, known1);
    C->fake.silent = 1;
    probe_sections(sections, sizeof(sections), "smtp", "");
    load(sections);
    memset(&cl, 0, sizeof(cl));
    snprintf(cl.ip, sizeof(cl.ip), "192.0.2.1");
    cl.listener = "mx";
    cl.rcpt = "known@probe.test";
    r = policy_start(policy_chain_for(C->pol, "mx"), POLICY_RCPT, &cl, on_done, &o);
    assert_non_null(r);
    while (C->fake.nconn == 0)
        run_loop(&never, 50);
    policy_cancel(r); /* the probe is under way */
    run_loop(&never, 200);
    assert_int_equal(o.calls, 0);
    /* and a cancel while the cache is being read: no probe follows */
    r = policy_start(policy_chain_for(C->pol, "mx"), POLICY_RCPT, &cl, on_done, &o);
    assert_non_null(r);
    brk = event_new(C->base, -1, 0, on_break, NULL);
    assert_non_null(brk);
    event_active(brk, EV_TIMEOUT, 0); /* queued after the pipeline's start: runs the check */
    event_base_loop(C->base, 0);      /* ... whose store read is now pending */
    event_free(brk);
    policy_cancel(r);
    run_loop(&never, 200);
    assert_int_equal(o.calls, 0);
    assert_int_equal(C->fake.nconn, 1);
}

/* main - run the recipients tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file, setup, teardown),
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
