/* test_server_install.c - a new configuration generation's listeners: kept, bound,
 * closed, or the whole install refused; generations counted; session ids */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include <event2/event.h>

#include "core/xmalloc.h"
#include "smtp/server.h"
#include "smtp/serverconf.h"

/* bind_to - a socket bound (and listening) on 127.0.0.1:port, or -1 */
static int bind_to(int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 1) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* free_port - a port nobody holds right now */
static int free_port(void)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = bind_to(0), port;

    assert_true(fd >= 0);
    getsockname(fd, (struct sockaddr *)&sin, &len);
    port = ntohs(sin.sin_port);
    close(fd);
    return port;
}

/* bound - does someone (the server) hold port */
static int bound(int port)
{
    int fd = bind_to(port);

    if (fd < 0)
        return 1;
    close(fd);
    return 0;
}

/* gen_of - a generation whose only settings are n listeners "name=port" */
static struct server_gen *gen_of(size_t n, const char *const *names, const int *ports)
{
    struct serverconf *sc = xcalloc(1, sizeof(*sc));
    char addr[64];

    sc->listen = xcalloc(n ? n : 1, sizeof(*sc->listen));
    sc->nlisten = n;
    sc->limits.ipv6_prefix = 64;
    for (size_t i = 0; i < n; i++) {
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", ports[i]);
        sc->listen[i].name = xstrdup(names[i]);
        sc->listen[i].address = xstrdup(addr);
    }
    return server_gen_new(NULL, sc, NULL, NULL, NULL, NULL);
}

/* test_install - same address: same socket; new: bound; gone: closed; a bind that
 * fails leaves the running set and generation as they were */
static void test_install(void **state)
{
    struct server srv = {.base = event_base_new()};
    int p1 = free_port(), p2 = free_port(), p3 = free_port();
    const char *n12[] = {"mx", "a"}, *n13[] = {"mx", "b"};
    struct server_gen *g2, *g3;
    struct evconnlistener *mx;
    char err[256] = "";
    int busy;

    (void)state;
    LIST_INIT(&srv.sessions);
    assert_int_equal(server_listen(&srv, gen_of(2, n12, (int[]){p1, p2}), err, sizeof(err)), 0);
    assert_int_equal(srv.gen->id, 1);
    assert_true(bound(p1) && bound(p2));
    mx = srv.listeners[0].evl;

    g2 = gen_of(2, n13, (int[]){p1, p3});
    assert_int_equal(server_install(&srv, g2, err, sizeof(err)), 0);
    assert_ptr_equal(srv.gen, g2);
    assert_int_equal(g2->id, 2);
    assert_ptr_equal(srv.listeners[0].evl, mx); /* kept: no moment without a socket */
    assert_ptr_equal(srv.listeners[0].conf, &g2->conf->listen[0]);
    assert_true(bound(p1) && bound(p3));
    assert_false(bound(p2));

    busy = bind_to(p2); /* someone else holds p2 now */
    assert_true(busy >= 0);
    server_gen_ref(g2); /* as a session would */
    g3 = gen_of(2, (const char *[]){"mx", "c"}, (int[]){p1, p2});
    assert_int_equal(server_install(&srv, g3, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "listen c: bind 127.0.0.1:"));
    assert_non_null(strstr(err, "Address already in use"));
    assert_ptr_equal(srv.gen, g2);
    assert_int_equal(g2->refs, 2);
    assert_true(bound(p3));
    server_gen_unref(g3);
    close(busy);

    g3 = gen_of(1, n12, (int[]){p1});
    assert_int_equal(server_install(&srv, g3, err, sizeof(err)), 0);
    assert_int_equal(g3->id, 3);
    assert_int_equal(g2->refs, 1); /* the server let go; the "session" still holds it */
    assert_false(bound(p3));
    server_gen_unref(g2);

    server_close(&srv);
    assert_false(bound(p1));
    server_gen_unref(srv.gen);
    event_base_free(srv.base);
}

/* test_session_ids - one prefix per start, a counter after it; another start, another prefix */
static void test_session_ids(void **state)
{
    struct server a = {0}, b = {0};
    char x[24], y[24], z[24];

    (void)state;
    server_session_id(&a, x, sizeof(x));
    server_session_id(&a, y, sizeof(y));
    server_session_id(&b, z, sizeof(z));
    assert_int_equal(strlen(x), 13);
    assert_memory_equal(x, y, 12);
    assert_string_not_equal(x, y);
    assert_string_equal(x + 12, "1");
    assert_string_equal(y + 12, "2");
    assert_memory_not_equal(x + 6, z + 6, 6); /* the random half (2^-30 to collide) */
    for (const char *p = x; *p; p++)
        assert_non_null(strchr("0123456789abcdefghjkmnpqrstvwxyz", *p));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_install),
        cmocka_unit_test(test_session_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
