/* mxgatectl - look at and act on mxgated's queue */
#include <confuse.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "modules.h"
#include "policy/stats.h"
#include "queue/spool.h"
#include "store/store.h"
#include "store/storeconf.h"

#define CTL_DEFAULT_CONFIG "/etc/mxgate/mxgate.conf"
#define CTL_HEADER_MAX (64 * 1024)

/* usage - exit 2 */
static void usage(void) __attribute__((noreturn));
static void usage(void)
{
    fprintf(stderr, "usage: mxgatectl [-c config] queue list|show ID|flush|delete ID\n"
                    "       mxgatectl [-c config] stats [FROM [TO]]\n"
                    "       mxgatectl [-c config] flood|bounce-flood\n"
                    "  FROM, TO: YYYY-MM-DD, YYYY-MM-DDTHH (UTC), today, or all (default)\n");
    exit(2);
}

/* ctl_time - ISO 8601 UTC */
static const char *ctl_time(time_t t, char *dst, size_t len)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(dst, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return dst;
}

/* ctl_request - one line to the daemon's control socket; -1 with errno when it is not running */
static int ctl_request(const struct config *cfg, const char *req, char *reply, size_t len)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    size_t got = 0;
    ssize_t n;

    config_control_socket(cfg, sun.sun_path, sizeof(sun.sun_path));
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        errno = e;
        return -1;
    }
    if (dprintf(fd, "%s\n", req) < 0) {
        close(fd);
        return -1;
    }
    while (got + 1 < len && (n = read(fd, reply + got, len - got - 1)) > 0)
        got += (size_t)n;
    reply[got] = '\0';
    reply[strcspn(reply, "\n")] = '\0';
    close(fd);
    if (got == 0)
        snprintf(reply, len, "error no answer from mxgated");
    return 0;
}

struct list_ctx {
    struct spool *sp;
    unsigned n;
};

/* list_one - one message: summary line, then its pending recipients */
static void list_one(const char *id, void *arg)
{
    struct list_ctx *lc = arg;
    struct spool_envelope env;
    off_t off;
    uint64_t len;
    unsigned pending = 0, attempts = 0;
    char when[32];

    if (spool_load(lc->sp, id, &env, &off, &len) < 0)
        return; /* delivered meanwhile, or moved to corrupt/ */
    for (size_t i = 0; i < env.nrcpt; i++) {
        pending += env.rcpt[i].state == SPOOL_RCPT_PENDING;
        if (env.rcpt[i].attempts > attempts)
            attempts = env.rcpt[i].attempts;
    }
    printf("%s  %s  %llu  <%s>  pending=%u attempts=%u\n", id,
           ctl_time(env.arrival, when, sizeof(when)), (unsigned long long)len, env.sender, pending,
           attempts);
    for (size_t i = 0; i < env.nrcpt; i++)
        if (env.rcpt[i].state == SPOOL_RCPT_PENDING)
            printf("  <%s>%s%s%s\n", env.rcpt[i].addr, env.rcpt[i].last_text ? "  (" : "",
                   env.rcpt[i].last_text ? env.rcpt[i].last_text : "",
                   env.rcpt[i].last_text ? ")" : "");
    spool_envelope_free(&env);
    lc->n++;
}

/* cmd_list - every queued message */
static int cmd_list(struct spool *sp)
{
    struct list_ctx lc = {sp, 0};

    if (spool_list(sp, list_one, &lc) < 0) {
        fprintf(stderr, "mxgatectl: cannot read the queue: %s\n", strerror(errno));
        return 1;
    }
    if (lc.n == 0)
        printf("queue is empty\n");
    return 0;
}

/* show_header - the stored message's header section (dot-stuffing undone) */
static void show_header(struct spool *sp, const char *id, off_t off, uint64_t len)
{
    char buf[CTL_HEADER_MAX + 1];
    int fd = spool_open_body(sp, id);
    ssize_t n;
    char *line, *save = NULL;

    if (fd < 0)
        return;
    n = pread(fd, buf, len < CTL_HEADER_MAX ? (size_t)len : CTL_HEADER_MAX, off);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    printf("\n");
    for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r')
            line[--l] = '\0';
        if (l == 0)
            break;
        printf("%s\n", line[0] == '.' ? line + 1 : line);
    }
}

/* cmd_show - envelope, per-recipient state, header */
static int cmd_show(struct spool *sp, const char *id)
{
    static const char *const state[] = {"pending", "delivered", "bounced"};
    struct spool_envelope env;
    off_t off;
    uint64_t len;
    char when[32];

    if (!spool_valid_id(id) || spool_load(sp, id, &env, &off, &len) < 0) {
        fprintf(stderr, "mxgatectl: %s: no such message\n", id);
        return 1;
    }
    printf("id: %s\narrival: %s\nsize: %llu\nsender: <%s>\nclient: %s [%s]\nhelo: %s\n", env.id,
           ctl_time(env.arrival, when, sizeof(when)), (unsigned long long)len, env.sender,
           env.client_name, env.client_ip, env.helo);
    for (size_t i = 0; i < env.nrcpt; i++)
        printf("recipient: <%s> %s attempts=%u%s%s\n", env.rcpt[i].addr, state[env.rcpt[i].state],
               env.rcpt[i].attempts, env.rcpt[i].last_text ? " last=" : "",
               env.rcpt[i].last_text ? env.rcpt[i].last_text : "");
    show_header(sp, id, off, len);
    spool_envelope_free(&env);
    return 0;
}

/* cmd_flush - ask the daemon; without one, the next start delivers everything anyway */
static int cmd_flush(const struct config *cfg)
{
    char reply[256];

    if (ctl_request(cfg, "flush", reply, sizeof(reply)) < 0) {
        fprintf(stderr,
                "mxgatectl: mxgated is not running (%s); it retries everything when it "
                "starts\n",
                strerror(errno));
        return 1;
    }
    if (strncmp(reply, "ok ", 3) != 0) {
        fprintf(stderr, "mxgatectl: %s\n", reply);
        return 1;
    }
    printf("flushed %s\n", reply + 3);
    return 0;
}

/* cmd_delete - through the daemon when it runs (it may be delivering the message), else directly */
static int cmd_delete(const struct config *cfg, struct spool *sp, const char *id)
{
    char reply[256], req[64];

    if (!spool_valid_id(id)) {
        fprintf(stderr, "mxgatectl: %s: not a queue id\n", id);
        return 1;
    }
    snprintf(req, sizeof(req), "delete %s", id);
    if (ctl_request(cfg, req, reply, sizeof(reply)) == 0) {
        if (strcmp(reply, "ok") != 0) {
            fprintf(stderr, "mxgatectl: %s: %s\n", id, reply);
            return 1;
        }
    } else if (spool_remove(sp, id) < 0) {
        fprintf(stderr, "mxgatectl: %s: %s\n", id, strerror(errno));
        return 1;
    }
    printf("deleted %s\n", id);
    return 0;
}

/* ctl_parse_time - "YYYY-MM-DD", "YYYY-MM-DDTHH", "today", "all" (is_end: all = far future) */
static int ctl_parse_time(const char *s, int is_end, time_t *t)
{
    struct tm tm = {0};
    const char *end;
    time_t now = time(NULL);

    if (strcmp(s, "all") == 0) {
        *t = is_end ? now + 86400 * 366 : 0;
        return 0;
    }
    if (strcmp(s, "today") == 0) {
        gmtime_r(&now, &tm);
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        *t = timegm(&tm) + (is_end ? 86400 : 0);
        return 0;
    }
    end = strptime(s, "%Y-%m-%d", &tm);
    if (end && *end == 'T')
        end = strptime(end + 1, "%H", &tm);
    if (!end || *end != '\0')
        return -1;
    *t = timegm(&tm);
    return 0;
}

/* stats_command - the table of connections and refusals by mechanism for a period */
static int stats_command(const struct config *cfg, int argc, char **argv)
{
    char uri[4200], err[512];
    time_t from, to;
    struct store *st;
    int rc;

    if (argc > 2 || ctl_parse_time(argc > 0 ? argv[0] : "all", 0, &from) < 0 ||
        ctl_parse_time(argc > 1 ? argv[1] : "all", 1, &to) < 0)
        usage();
    storeconf_uri(cfg, uri, sizeof(uri));
    st = store_open_readonly(uri, err, sizeof(err));
    if (!st) {
        fprintf(stderr, "mxgatectl: %s: %s\n", uri, err);
        return 1;
    }
    rc = stats_report(st, from, to, stdout);
    store_close(st);
    if (rc < 0)
        fprintf(stderr, "mxgatectl: cannot read statistics from %s\n", uri);
    return rc < 0 ? 1 : 0;
}

/* flood_window - the bf:n counter of the bounce-flood window starting at w (0 when absent) */
static int64_t flood_window(struct store *st, time_t w)
{
    char key[40];
    void *val = NULL;
    size_t vlen = 0;
    int64_t n = 0;
    int k = snprintf(key, sizeof(key), "bf:n:%lld", (long long)w);

    if (store_sync_get(st, key, (size_t)k, &val, &vlen) == STORE_OK &&
        store_counter_decode(val, vlen, &n) < 0)
        n = 0;
    free(val);
    return n;
}

/* flood_print - "normal since T" or "flood since T", with the bounces of the last windows */
static int flood_print(struct store *st, long interval, const char *state)
{
    char word[8], when[32];
    long long since;
    time_t now = time(NULL), w = now - now % interval;

    if (sscanf(state, "%7s %lld", word, &since) != 2 ||
        (strcmp(word, "flood") != 0 && strcmp(word, "normal") != 0)) {
        fprintf(stderr, "mxgatectl: bad bf:state record \"%s\"\n", state);
        return 1;
    }
    printf("%s since %s (%" PRId64 " bounces in the last interval of %ld s, %" PRId64
           " in the current one)\n",
           word, ctl_time((time_t)since, when, sizeof(when)), flood_window(st, w - interval),
           interval, flood_window(st, w));
    return 0;
}

/* flood_command - the bounce-flood state that mxgated mirrors into the store */
static int flood_command(const struct config *cfg, int argc, char **argv)
{
    char uri[4200], err[512], state[48];
    long interval = cfg_getint(cfg_getsec(cfg->raw, "bounce_flood"), "interval");
    struct store *st;
    void *val = NULL;
    size_t vlen = 0;
    int rc, s;

    if (argc != 0)
        usage();
    if (interval < 1) {
        fprintf(stderr, "mxgatectl: %s: bounce_flood interval must be positive\n", cfg->path);
        return 1;
    }
    storeconf_uri(cfg, uri, sizeof(uri));
    if (!(st = store_open_readonly(uri, err, sizeof(err)))) {
        fprintf(stderr, "mxgatectl: %s: %s\n", uri, err);
        return 1;
    }
    s = store_sync_get(st, "bf:state", 8, &val, &vlen);
    if (s == STORE_NOTFOUND) {
        printf("normal (no bounce flood recorded)\n");
        rc = 0;
    } else if (s != STORE_OK || vlen >= sizeof(state)) {
        fprintf(stderr, "mxgatectl: %s: bf:state: %s\n", uri,
                s != STORE_OK ? store_strerror(s) : "record too long");
        rc = 1;
    } else {
        snprintf(state, sizeof(state), "%.*s", (int)vlen, (char *)val);
        rc = flood_print(st, interval, state);
    }
    free(val);
    store_close(st);
    return rc;
}

/* queue_command - dispatch "queue ..." */
static int queue_command(const struct config *cfg, int argc, char **argv)
{
    char err[512];
    struct spool *sp;
    int rc;

    if (argc < 1)
        usage();
    if (strcmp(argv[0], "flush") == 0 && argc == 1)
        return cmd_flush(cfg);
    sp = spool_open(cfg->spool_dir, err, sizeof(err));
    if (!sp) {
        fprintf(stderr, "mxgatectl: %s\n", err);
        return 1;
    }
    if (strcmp(argv[0], "list") == 0 && argc == 1)
        rc = cmd_list(sp);
    else if (strcmp(argv[0], "show") == 0 && argc == 2)
        rc = cmd_show(sp, argv[1]);
    else if (strcmp(argv[0], "delete") == 0 && argc == 2)
        rc = cmd_delete(cfg, sp, argv[1]);
    else
        usage();
    spool_close(sp);
    return rc;
}

int main(int argc, char **argv)
{
    const char *path = CTL_DEFAULT_CONFIG;
    struct config *cfg;
    int ch, rc;

    while ((ch = getopt(argc, argv, "c:h")) != -1) {
        if (ch == 'c')
            path = optarg;
        else
            usage();
    }
    argc -= optind;
    argv += optind;
    if (argc < 1 || (strcmp(argv[0], "queue") != 0 && strcmp(argv[0], "stats") != 0 &&
                     strcmp(argv[0], "flood") != 0 && strcmp(argv[0], "bounce-flood") != 0))
        usage();
    signal(SIGPIPE, SIG_IGN); /* a daemon that hangs up is reported, not fatal */
    cfg = modules_config_load(path, stderr);
    if (!cfg)
        return 1;
    if (strcmp(argv[0], "stats") == 0)
        rc = stats_command(cfg, argc - 1, argv + 1);
    else if (strcmp(argv[0], "flood") == 0 || strcmp(argv[0], "bounce-flood") == 0)
        rc = flood_command(cfg, argc - 1, argv + 1);
    else
        rc = queue_command(cfg, argc - 1, argv + 1);
    config_free(cfg);
    return rc;
}
