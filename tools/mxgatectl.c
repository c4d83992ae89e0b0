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
#include "core/privs.h"
#include "core/utf8.h"
#include "modules.h"
#include "policy/stats.h"
#include "queue/spool.h"
#include "store/store.h"
#include "store/storeconf.h"
#include "version.h"

#define CTL_DEFAULT_CONFIG MXGATE_CONFIG_FILE
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

/*
 * ctl_put - write outside data (envelope, header lines, replies, store
 * records) to f so that nothing in it can drive the operator's terminal:
 * C0 controls, DEL, C1 controls (U+0080..U+009F) and octets that are not
 * well-formed UTF-8 are shown as \xHH, a backslash as \\. Every print of
 * data mxgatectl did not make itself goes through here.
 */
static void ctl_put(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");

    while (*p) {
        size_t n = *p >= 0x80 ? utf8_seq_len(p) : 1;
        if (*p == '\\') {
            fputs("\\\\", f);
        } else if (*p < 0x20 || *p == 0x7f || n == 0 || (n == 2 && p[0] == 0xc2 && p[1] < 0xa0)) {
            fprintf(f, "\\x%02x", *p);
            n = 1;
        } else {
            fwrite(p, 1, n, f);
        }
        p += n;
    }
}

/* ctl_error - "mxgatectl: ID: text" on stderr, text being outside data (a reply, an error) */
static void ctl_error(const char *id, const char *text)
{
    fprintf(stderr, "mxgatectl: ");
    if (id) {
        ctl_put(stderr, id);
        fprintf(stderr, ": ");
    }
    ctl_put(stderr, text);
    fprintf(stderr, "\n");
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
    const struct config *cfg;
    unsigned n, corrupt;
    char reason[24]; /* set by ctl_corrupt when a load fails its checks */
};

/* ctl_corrupt - spool_on_corrupt callback: remember why the file we loaded failed */
static void ctl_corrupt(const char *id, const char *reason, int moved, void *arg)
{
    struct list_ctx *lc = arg;

    snprintf(lc->reason, sizeof(lc->reason), "%s", reason);
}

/* list_unloadable - a queue/ file that fails its checks: mxgatectl leaves it to mxgated */
static void list_unloadable(struct list_ctx *lc, const char *id)
{
    printf("%s  corrupt  reason=%s  file=", id, lc->reason);
    ctl_put(stdout, lc->cfg->spool_dir);
    printf("/queue/%s  (not yet moved to corrupt/ by mxgated)\n", id);
    lc->corrupt++;
}

/* list_one - one message: summary line, then its pending recipients */
static void list_one(const char *id, void *arg)
{
    struct list_ctx *lc = arg;
    struct spool_envelope env;
    off_t off;
    uint64_t len;
    unsigned pending = 0, attempts = 0;
    char when[32];

    if (spool_load(lc->sp, id, &env, &off, &len) < 0) {
        if (errno == EBADMSG)
            list_unloadable(lc, id);
        return; /* or delivered meanwhile */
    }
    for (size_t i = 0; i < env.nrcpt; i++) {
        pending += env.rcpt[i].state == SPOOL_RCPT_PENDING;
        if (env.rcpt[i].attempts > attempts)
            attempts = env.rcpt[i].attempts;
    }
    printf("%s  %s  %llu  <", id, ctl_time(env.arrival, when, sizeof(when)),
           (unsigned long long)len);
    ctl_put(stdout, env.sender);
    printf(">  pending=%u attempts=%u\n", pending, attempts);
    for (size_t i = 0; i < env.nrcpt; i++) {
        if (env.rcpt[i].state != SPOOL_RCPT_PENDING)
            continue;
        printf("  <");
        ctl_put(stdout, env.rcpt[i].addr);
        printf(">");
        if (env.rcpt[i].last_text) {
            printf("  (");
            ctl_put(stdout, env.rcpt[i].last_text);
            printf(")");
        }
        printf("\n");
    }
    spool_envelope_free(&env);
    lc->n++;
}

/* list_corrupt_one - one file of corrupt/ */
static void list_corrupt_one(const struct spool_corrupt *c, void *arg)
{
    struct list_ctx *lc = arg;
    char when[32];

    if (lc->corrupt++ == 0 && lc->n == 0)
        printf("queue is empty\n");
    printf("%s  corrupt  reason=%s  moved=%s  size=%lld  file=", c->id, c->reason,
           c->when ? ctl_time(c->when, when, sizeof(when)) : "unknown", (long long)c->size);
    ctl_put(stdout, lc->cfg->spool_dir);
    printf("/corrupt/%s%s\n", c->id, c->has_log ? " (and .log)" : "");
}

/* cmd_list - every queued message, then the corrupt files kept for the operator */
static int cmd_list(const struct config *cfg, struct spool *sp)
{
    struct list_ctx lc = {.sp = sp, .cfg = cfg};

    spool_keep_corrupt(sp);
    spool_on_corrupt(sp, ctl_corrupt, &lc);
    if (spool_list(sp, list_one, &lc) < 0 || spool_list_corrupt(sp, list_corrupt_one, &lc) < 0) {
        fprintf(stderr, "mxgatectl: cannot read the queue: %s\n", strerror(errno));
        return 1;
    }
    if (lc.n == 0 && lc.corrupt == 0)
        printf("queue is empty\n");
    if (lc.corrupt)
        printf("%u corrupt file(s): inspect with \"mxgatectl queue show ID\", "
               "remove with \"mxgatectl queue delete ID\"\n",
               lc.corrupt);
    return 0;
}

/* show_lines - print fd's lines from off up to the first empty one (at most
 * CTL_HEADER_MAX octets); unstuff: a message header, not an envelope */
static void show_lines(int fd, off_t off, uint64_t len, int unstuff)
{
    char buf[CTL_HEADER_MAX + 1];
    ssize_t n;
    char *line, *save = NULL;

    n = pread(fd, buf, len < CTL_HEADER_MAX ? (size_t)len : CTL_HEADER_MAX, off);
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
        if (unstuff && line[0] == '.')
            line++;
        /* A folded header line's leading tab is layout: kept, the rest escaped. */
        if (unstuff && line[0] == '\t')
            putchar(*line++);
        ctl_put(stdout, line);
        printf("\n");
    }
}

/* show_header - the stored message's header section (dot-stuffing undone) */
static void show_header(struct spool *sp, const char *id, off_t off, uint64_t len)
{
    int fd = spool_open_body(sp, id);

    if (fd < 0)
        return;
    show_lines(fd, off, len, 1);
    close(fd);
}

/* show_corrupt - a file that failed its checks: why, where, and its raw envelope lines */
static int show_corrupt(const struct config *cfg, struct spool *sp, const char *id,
                        const char *in_queue_why)
{
    struct spool_corrupt c;
    char when[32];
    int fd;

    if (in_queue_why) {
        printf("id: %s\nstate: corrupt (reason=%s), still in queue/\nfile: ", id, in_queue_why);
        ctl_put(stdout, cfg->spool_dir);
        printf("/queue/%s\n", id);
        fd = spool_open_body(sp, id);
    } else {
        if (spool_corrupt_get(sp, id, &c) < 0)
            return -1;
        printf("id: %s\nstate: corrupt (reason=%s), moved to corrupt/ %s\nsize: %lld\nfile: ", id,
               c.reason, c.when ? ctl_time(c.when, when, sizeof(when)) : "at an unknown time",
               (long long)c.size);
        ctl_put(stdout, cfg->spool_dir);
        printf("/corrupt/%s%s\n", id, c.has_log ? " (delivery log: same name + .log)" : "");
        fd = spool_open_corrupt(sp, id);
    }
    if (fd >= 0) {
        show_lines(fd, 0, CTL_HEADER_MAX, 0);
        close(fd);
    }
    printf("\n%sremove with: mxgatectl queue delete %s\n",
           in_queue_why ? "" : "mxgated no longer delivers it; ", id);
    return 0;
}

/* cmd_show - envelope, per-recipient state, header; or what is known of a corrupt file */
static int cmd_show(const struct config *cfg, struct spool *sp, const char *id)
{
    static const char *const state[] = {"pending", "delivered", "bounced"};
    struct list_ctx lc = {.sp = sp, .cfg = cfg};
    struct spool_envelope env;
    off_t off;
    uint64_t len;
    char when[32];

    spool_keep_corrupt(sp);
    spool_on_corrupt(sp, ctl_corrupt, &lc);
    if (!spool_valid_id(id) || spool_load(sp, id, &env, &off, &len) < 0) {
        if (spool_valid_id(id) &&
            show_corrupt(cfg, sp, id, errno == EBADMSG ? lc.reason : NULL) == 0)
            return 0;
        fprintf(stderr, "mxgatectl: ");
        ctl_put(stderr, id);
        fprintf(stderr, ": no such message\n");
        return 1;
    }
    printf("id: %s\narrival: %s\nsize: %llu\nsender: <", env.id,
           ctl_time(env.arrival, when, sizeof(when)), (unsigned long long)len);
    ctl_put(stdout, env.sender);
    printf(">\nclient: ");
    ctl_put(stdout, env.client_name);
    printf(" [");
    ctl_put(stdout, env.client_ip);
    printf("]\nhelo: ");
    ctl_put(stdout, env.helo);
    printf("\n");
    for (size_t i = 0; i < env.nrcpt; i++) {
        printf("recipient: <");
        ctl_put(stdout, env.rcpt[i].addr);
        printf("> %s attempts=%u", state[env.rcpt[i].state], env.rcpt[i].attempts);
        if (env.rcpt[i].last_text) {
            printf(" last=");
            ctl_put(stdout, env.rcpt[i].last_text);
        }
        printf("\n");
    }
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
        ctl_error(NULL, reply);
        return 1;
    }
    printf("flushed ");
    ctl_put(stdout, reply + 3);
    printf("\n");
    return 0;
}

/* cmd_delete - through the daemon when it runs (it may be delivering the message), else
 * directly; a corrupt file (never the daemon's business again) always directly */
static int cmd_delete(const struct config *cfg, struct spool *sp, const char *id)
{
    char reply[256], req[64];
    int unknown;

    if (!spool_valid_id(id)) {
        ctl_error(id, "not a queue id");
        return 1;
    }
    snprintf(req, sizeof(req), "delete %s", id);
    if (ctl_request(cfg, req, reply, sizeof(reply)) == 0) {
        unknown = strcmp(reply, "error no such message") == 0;
        if (strcmp(reply, "ok") != 0 && !(unknown && spool_remove_corrupt(sp, id) == 0)) {
            ctl_error(id, reply);
            return 1;
        }
    } else if (spool_remove(sp, id) < 0) {
        if (errno != ENOENT || spool_remove_corrupt(sp, id) < 0) {
            ctl_error(id, strerror(errno));
            return 1;
        }
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
        fprintf(stderr, "mxgatectl: bad bf:state record \"");
        ctl_put(stderr, state);
        fprintf(stderr, "\"\n");
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
        rc = cmd_list(cfg, sp);
    else if (strcmp(argv[0], "show") == 0 && argc == 2)
        rc = cmd_show(cfg, sp, argv[1]);
    else if (strcmp(argv[0], "delete") == 0 && argc == 2)
        rc = cmd_delete(cfg, sp, argv[1]);
    else
        usage();
    spool_close(sp);
    return rc;
}

/* become_user - run by root, read the spool and the store as the daemon user: what
 * is in them is that user's to control (a symlink, a hard link), and nothing made
 * here may become root's; 0 or -1 (reported) */
static int become_user(const struct config *cfg)
{
    const struct privs_dir none[] = {{NULL, NULL}};
    char err[512];

    if (!cfg->user || geteuid() != 0)
        return 0;
    if (privs_drop(cfg->user, none, err, sizeof(err)) < 0) {
        fprintf(stderr, "mxgatectl: %s\n", err);
        return -1;
    }
    return 0;
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
    if (become_user(cfg) < 0) {
        config_free(cfg);
        return 1;
    }
    if (strcmp(argv[0], "stats") == 0)
        rc = stats_command(cfg, argc - 1, argv + 1);
    else if (strcmp(argv[0], "flood") == 0 || strcmp(argv[0], "bounce-flood") == 0)
        rc = flood_command(cfg, argc - 1, argv + 1);
    else
        rc = queue_command(cfg, argc - 1, argv + 1);
    config_free(cfg);
    return rc;
}
