/*
 * fuzz_session.c - libFuzzer harness for the SMTP session state machine:
 * the input is everything one client sends on a connection. A real server
 * (configuration, spool, pool, scheduler, STARTTLS context; no policy, no
 * DNS, no listening socket) adopts one end of a socketpair; the harness
 * writes the input in pieces of varying size, half-closes, and runs the
 * loop until the session and everything it started (commits, maildir
 * deliveries) are over. Properties: the daemon's plaintext output is
 * well-formed SMTP replies (3-digit code, CRLF, at most 512 octets); a
 * session ends once its client has sent EOF; every message the daemon
 * made durable was acknowledged to the client; nothing outlives the input.
 */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/pool.h"
#include "fuzz.h"
#include "modules.h"
#include "queue/commitq.h"
#include "queue/queue.h"
#include "queue/spool.h"
#include "relay/routes.h"
#include "smtp/server.h"
#include "smtp/serverconf.h"
#include "smtp/session.h"
#include "tls/tlsconf.h"

#define PIECE_MAX 512      /* largest write of the client; sizes vary from 1 up */
#define STALL_MAX 2000     /* loop turns a write may wait for room in the socket */
#define SETTLE_SECONDS 10  /* longer after the client's EOF is a stuck session */
#define TICK_USEC 20000    /* longest blocking wait of one loop turn */
#define REPLY_LINE_MAX 512 /* RFC 5321 4.5.3.1.5, code and CRLF included */

static struct {
    char dir[PATH_MAX - 64]; /* private temporary tree, removed at exit */
    char mail[PATH_MAX];     /* maildir root every route delivers to */
    struct config *cfg;
    struct serverconf *conf;
    struct routes *routes;
    struct server srv;
    struct event *tick; /* bounds EVLOOP_ONCE while work is pending */
    int verbose;        /* MXGATE_FUZZ_LOG set: the log and the replies go to fd 2 */
    unsigned queued;    /* "event=queued" log lines: messages made durable */
} F;

/* Streaming check of what the daemon writes, up to STARTTLS's 220 (then it is TLS). */
struct reply_check {
    char line[REPLY_LINE_MAX];
    size_t n;
    int tls;
    unsigned acks; /* "250 2.0.0 Ok: queued as" replies */
};

/* reply_line - one complete line (with CRLF): "ddd " or "ddd-" and printable text */
static void reply_line(struct reply_check *rc)
{
    const char *l = rc->line;

    FUZZ_ASSERT(rc->n >= 5 && l[rc->n - 2] == '\r');
    FUZZ_ASSERT(l[0] >= '2' && l[0] <= '5' && l[1] >= '0' && l[1] <= '9');
    FUZZ_ASSERT(l[2] >= '0' && l[2] <= '9' && (l[3] == ' ' || l[3] == '-' || rc->n == 5));
    FUZZ_ASSERT(memchr(l, '\r', rc->n - 2) == NULL && memchr(l, '\0', rc->n) == NULL);
    if (strncmp(l, "250 2.0.0 Ok: queued as ", 24) == 0)
        rc->acks++;
    if (rc->n == sizeof("220 2.0.0 Ready to start TLS\r\n") - 1 &&
        memcmp(l, "220 2.0.0 Ready to start TLS\r\n", rc->n) == 0)
        rc->tls = 1;
    rc->n = 0;
}

/* reply_feed - check octets the daemon wrote */
static void reply_feed(struct reply_check *rc, const char *p, size_t n)
{
    for (size_t i = 0; i < n && !rc->tls; i++) {
        FUZZ_ASSERT(rc->n < sizeof(rc->line)); /* a reply line over 512 octets */
        rc->line[rc->n++] = p[i];
        if (p[i] == '\n')
            reply_line(rc);
    }
}

/*
 * log_sink - the daemon's stderr stream, line-buffered so whole lines
 * arrive: count the messages it queued (only as the event of a line, never
 * inside a quoted value the client chose); pass the lines on when verbose.
 */
static ssize_t log_sink(void *cookie, const char *buf, size_t n)
{
    static const char ev[] = "]: event=queued ";
    const char *p = buf, *end = buf + n;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        const char *tag = memmem(p, (size_t)(eol - p), "]: ", 3);
        if (tag && (size_t)(eol - tag) >= sizeof(ev) - 1 && memcmp(tag, ev, sizeof(ev) - 1) == 0)
            __atomic_add_fetch(&F.queued, 1, __ATOMIC_RELAXED);
        p = eol + 1;
    }
    if (F.verbose && write(STDERR_FILENO, buf, n) < 0)
        F.verbose = 0;
    return (ssize_t)n;
}

/* log_capture - stderr becomes log_sink; libFuzzer and the sanitizers write to fd 2 directly */
static void log_capture(void)
{
    cookie_io_functions_t io = {.write = log_sink};

    if (!(stderr = fopencookie(NULL, "w", io)) || setvbuf(stderr, NULL, _IOLBF, 0) != 0)
        abort();
}

/* drain - read and check everything the daemon wrote so far */
static void drain(int fd, struct reply_check *rc)
{
    char buf[4096];
    ssize_t r;

    while ((r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
        if (F.verbose && write(STDERR_FILENO, buf, (size_t)r) < 0)
            F.verbose = 0;
        reply_feed(rc, buf, (size_t)r);
    }
}

/* on_tick - nothing to do: it only ends a blocking loop turn */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
}

/* turn - one loop turn: blocking (bounded by the tick) while work is pending, else not */
static void turn(int block)
{
    struct timeval tv = {0, TICK_USEC};

    if (!block) {
        event_base_loop(F.srv.base, EVLOOP_NONBLOCK);
        return;
    }
    evtimer_add(F.tick, &tv);
    event_base_loop(F.srv.base, EVLOOP_ONCE);
}

/* piece_len - the next write size, 1..PIECE_MAX, from a small generator seeded per input */
static size_t piece_len(uint32_t *rng, size_t left)
{
    size_t n;

    *rng = *rng * 1103515245u + 12345u;
    n = 1 + (*rng >> 16) % PIECE_MAX;
    return n < left ? n : left;
}

/* feed - the client's bytes in pieces, each followed by a loop turn, while the session lives */
static void feed(int fd, const uint8_t *data, size_t size, struct reply_check *rc)
{
    uint32_t rng = (uint32_t)size * 2654435761u + 1u;
    size_t pos = 0;
    unsigned stalls = 0;

    while (pos < size && F.srv.nconn > 0 && stalls < STALL_MAX) {
        ssize_t w = send(fd, data + pos, piece_len(&rng, size - pos), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            break; /* the daemon closed: the rest is never read */
        if (w > 0)
            pos += (size_t)w;
        else
            stalls++;
        turn(0);
        turn(0);
        drain(fd, rc);
    }
}

/*
 * settle - after the client's EOF: run the loop until the session is gone
 * and the pool has been idle for a few turns (so that deliveries the
 * commit scheduled ran too). A session still alive after SETTLE_SECONDS
 * would have lived until its timeout on a real server: a bug. So is a
 * message made durable whose 250 the client (still reading) never got:
 * it would send it again.
 */
static void settle(int fd, struct reply_check *rc)
{
    time_t deadline = time(NULL) + SETTLE_SECONDS;
    int idle = 0;

    while (idle < 3) {
        FUZZ_ASSERT(time(NULL) <= deadline);
        turn(F.srv.nconn > 0 || pool_pending(F.srv.pool) > 0);
        drain(fd, rc);
        idle = F.srv.nconn == 0 && pool_pending(F.srv.pool) == 0 ? idle + 1 : 0;
    }
    FUZZ_ASSERT(LIST_EMPTY(&F.srv.sessions));
    FUZZ_ASSERT(rc->acks == __atomic_load_n(&F.queued, __ATOMIC_RELAXED));
}

/* rm_entry - nftw callback: remove one file or (emptied) directory */
static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    if (ftw->level > 0 && remove(path) < 0)
        perror(path);
    return 0;
}

/* clear_tree - remove everything below dir, keeping dir */
static void clear_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* LLVMFuzzerTestOneInput - one input: run it, check the properties */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reply_check rc = {.n = 0};
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(40000)};
    int sv[2];

    /* Odd sizes come from a relay network (198.51.100.0/24), even ones from outside. */
    sin.sin_addr.s_addr = htonl(size & 1 ? 0xC6336401u : 0xC0000201u);
    __atomic_store_n(&F.queued, 0, __ATOMIC_RELAXED);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
        abort();
    if (evutil_make_socket_nonblocking(sv[1]) < 0)
        abort();
    server_adopt(&F.srv, &F.conf->listen[0], sv[0], (struct sockaddr *)&sin, sizeof(sin));
    FUZZ_ASSERT(F.srv.nconn == 1);
    feed(sv[1], data, size, &rc);
    shutdown(sv[1], SHUT_WR);
    settle(sv[1], &rc);
    close(sv[1]);
    clear_tree(F.mail);
    return 0;
}

/* write_cert - a throw-away P-256 key and self-signed certificate for STARTTLS */
static void write_cert(const char *cert, const char *key)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *n;
    FILE *fc, *fk;

    if (!k || !x)
        abort();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
    X509_set_pubkey(x, k);
    n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"mx.example.test", -1,
                               -1, 0);
    X509_set_issuer_name(x, n);
    if (!X509_sign(x, k, EVP_sha256()) || !(fc = fopen(cert, "w")) || !(fk = fopen(key, "w")))
        abort();
    if (!PEM_write_X509(fc, x) || !PEM_write_PrivateKey(fk, k, NULL, NULL, 0, NULL, NULL))
        abort();
    fclose(fc);
    fclose(fk);
    X509_free(x);
    EVP_PKEY_free(k);
}

/* write_config - small limits so sessions end fast; every route is a maildir in the tree */
static void write_config(const char *path)
{
    FILE *f = fopen(path, "w");
    const char *d = F.dir;

    if (!f)
        abort();
    fprintf(f,
            "hostname = \"mx.example.test\"\n"
            "spool_dir = \"%s/spool\"\nstate_dir = \"%s/state\"\n"
            "domains = {\"example.test\"}\nrelay_networks = {\"198.51.100.0/24\"}\n"
            "listen mx { address = \"127.0.0.1:2525\" tls = \"starttls\" }\n"
            "route \"example.test\" { to = \"maildir:%s\" }\n"
            "route \"*\" { to = \"maildir:%s\" }\n"
            "tls { certificate = \"%s/cert.pem\" key = \"%s/key.pem\" }\n"
            "limits { max_connections = 4 max_connections_per_ip = 4 max_message_size = 3000\n"
            "  max_recipients = 5 max_errors = 10 max_commands = 100 }\n"
            "timeouts { command = 30 data = 30 greeting_delay = 0 }\n"
            "queue { retry_min = 3600 retry_max = 3600 fsync_threads = 1 max_deliveries = 4 }\n"
            "delivery { starttls = false }\n",
            d, d, F.mail, F.mail, d, d);
    if (fclose(f) != 0)
        abort();
}

/* server_setup - what main.c wires, minus listeners, policy, DNS and statistics */
static void server_setup(void)
{
    struct server *srv = &F.srv;
    char err[512];

    srv->cfg = F.cfg;
    srv->conf = F.conf = serverconf_load(F.cfg);
    srv->routes = F.routes = routes_load(F.cfg);
    srv->base = event_base_new();
    LIST_INIT(&srv->sessions);
    srv->spool = spool_open(F.cfg->spool_dir, err, sizeof(err));
    tlsconf_server_ctx(F.cfg, &srv->tls, err, sizeof(err));
    if (!srv->conf || !srv->routes || !srv->base || !srv->spool || !srv->tls) {
        fprintf(stderr, "fuzz_session: setup: %s\n", err);
        abort();
    }
    /* the configuration generation sessions take (it owns cfg, conf, routes, tls) */
    srv->gen = server_gen_new(F.cfg, F.conf, F.routes, srv->tls, NULL, NULL);
    srv->pool = pool_new(srv->base, 1);
    srv->commits = srv->pool ? commitq_new(srv->pool, 1) : NULL;
    srv->queue =
        srv->pool ? queue_new(srv->base, F.cfg, F.routes, srv->spool, srv->pool, NULL, NULL) : NULL;
    F.tick = evtimer_new(srv->base, on_tick, NULL);
    if (!srv->queue || !srv->commits || !F.tick)
        abort();
}

/* fuzz_cleanup - at exit: stop everything, then remove the temporary tree */
static void fuzz_cleanup(void)
{
    server_close(&F.srv); /* ends every session, frees the flush event */
    queue_free(F.srv.queue);
    pool_free(F.srv.pool);
    commitq_free(F.srv.commits);
    spool_close(F.srv.spool);
    server_gen_unref(F.srv.gen);
    event_free(F.tick);
    event_base_free(F.srv.base);
    clear_tree(F.dir);
    rmdir(F.dir);
}

/* sweep_stale - trees of earlier runs that crashed (their pid is gone): a crash skips atexit */
static void sweep_stale(const char *base)
{
    DIR *d = opendir(base);
    struct dirent *e;
    char path[PATH_MAX];
    long pid;

    while (d && (e = readdir(d)) != NULL) {
        if (sscanf(e->d_name, "mxgate-fuzz-%ld-", &pid) != 1 || pid <= 0 ||
            kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        snprintf(path, sizeof(path), "%s/%s", base, e->d_name);
        clear_tree(path);
        rmdir(path);
    }
    if (d)
        closedir(d);
}

/* tmp_base - /dev/shm when there is one (fsync costs nothing there), else $TMPDIR or /tmp */
static const char *tmp_base(void)
{
    struct stat st;
    const char *t = getenv("TMPDIR");

    if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
        return "/dev/shm";
    return t && *t ? t : "/tmp";
}

/* LLVMFuzzerInitialize - once: the temporary tree, certificate, configuration and server */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[PATH_MAX], key[PATH_MAX];

    sweep_stale(tmp_base());
    snprintf(F.dir, sizeof(F.dir), "%s/mxgate-fuzz-%ld-XXXXXX", tmp_base(), (long)getpid());
    if (!mkdtemp(F.dir))
        abort();
    snprintf(F.mail, sizeof(F.mail), "%s/mail", F.dir);
    snprintf(path, sizeof(path), "%s/state", F.dir);
    if (mkdir(F.mail, 0700) < 0 || mkdir(path, 0700) < 0)
        abort();
    snprintf(path, sizeof(path), "%s/cert.pem", F.dir);
    snprintf(key, sizeof(key), "%s/key.pem", F.dir);
    write_cert(path, key);
    snprintf(path, sizeof(path), "%s/mxgate.conf", F.dir);
    write_config(path);
    if (!(F.cfg = modules_config_load(path, stderr)))
        abort();
    server_setup();
    atexit(fuzz_cleanup);
    signal(SIGPIPE, SIG_IGN);
    /* MXGATE_FUZZ_LOG=1 shows the log and the replies: for reading what a crashing input does. */
    F.verbose = getenv("MXGATE_FUZZ_LOG") != NULL;
    log_capture();
    return 0;
}
