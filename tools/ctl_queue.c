/* ctl_queue.c - mxgatectl queue: list, show, flush, hold, release, delete */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/adm.h"
#include "core/config.h"
#include "core/json.h"
#include "ctl.h"
#include "ctl_dests.h"
#include "queue/hold.h"
#include "queue/spool.h"

#define CTL_HEADER_MAX (64 * 1024)
#define CTL_BODY_MAX (64 * 1024 * 1024) /* --body shows at most this much */

struct list_ctx {
    const struct config *cfg;
    unsigned corrupt;
    char reason[24]; /* set by ctl_corrupt when a load fails its checks */
    int print;       /* print unloadable files as they are found */
};

/* ctl_corrupt - spool_on_corrupt callback: a queue/ file fails its checks; mxgatectl
 * leaves it to mxgated */
static void ctl_corrupt(const char *id, const char *reason, int moved, void *arg)
{
    struct list_ctx *lc = arg;

    snprintf(lc->reason, sizeof(lc->reason), "%s", reason);
    if (!lc->print)
        return;
    printf("%s  corrupt  reason=%s  file=", id, reason);
    ctl_put(stdout, lc->cfg->spool_dir);
    printf("/queue/%s  (not yet moved to corrupt/ by mxgated)\n", id);
    lc->corrupt++;
}

/* list_one - one message: summary line, then its pending recipients */
static void list_one(const struct adm_msg *m)
{
    char when[32];

    printf("%s  %s  %llu  <", m->env.id, ctl_time(m->env.arrival, when, sizeof(when)),
           (unsigned long long)m->size);
    ctl_put(stdout, m->env.sender);
    printf(">  pending=%u attempts=%u%s\n", m->pending, m->attempts, m->held ? "  HELD" : "");
    for (size_t i = 0; i < m->env.nrcpt; i++) {
        if (m->env.rcpt[i].state != SPOOL_RCPT_PENDING)
            continue;
        printf("  <");
        ctl_put(stdout, m->env.rcpt[i].addr);
        printf(">");
        if (m->env.rcpt[i].last_text) {
            printf("  (");
            ctl_put(stdout, m->env.rcpt[i].last_text);
            printf(")");
        }
        printf("\n");
    }
}

/* list_totals - one line after the messages */
static void list_totals(const struct adm_queue *q)
{
    unsigned long long size = 0, rcpts = 0, held = 0;
    time_t oldest = 0;
    char when[32];

    for (size_t i = 0; i < q->n; i++) {
        size += q->msg[i].size;
        rcpts += q->msg[i].pending;
        held += (unsigned)q->msg[i].held;
        if (!oldest || q->msg[i].env.arrival < oldest)
            oldest = q->msg[i].env.arrival;
    }
    printf("-- %zu message(s), %llu recipient(s) pending, %llu octets, %llu held, oldest %s\n",
           q->n, rcpts, size, held, ctl_time(oldest, when, sizeof(when)));
}

/* list_corrupt_one - one file of corrupt/ */
static void list_corrupt_one(const struct spool_corrupt *c, void *arg)
{
    struct list_ctx *lc = arg;
    char when[32];

    lc->corrupt++;
    printf("%s  corrupt  reason=%s  moved=%s  size=%lld  file=", c->id, c->reason,
           c->when ? ctl_time(c->when, when, sizeof(when)) : "unknown", (long long)c->size);
    ctl_put(stdout, lc->cfg->spool_dir);
    printf("/corrupt/%s%s\n", c->id, c->has_log ? " (and .log)" : "");
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

/* show_body - the whole stored message after the header, dot-stuffing undone, escaped */
static void show_body(struct spool *sp, const char *id, off_t off, uint64_t len)
{
    int fd = spool_open_body(sp, id);
    FILE *f;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t seen = 0;

    if (fd < 0 || lseek(fd, off, SEEK_SET) < 0 || !(f = fdopen(fd, "r"))) {
        if (fd >= 0)
            close(fd);
        return;
    }
    printf("\n");
    while (seen < len && seen < CTL_BODY_MAX && (n = getline(&line, &cap, f)) > 0) {
        char *p = line;
        seen += (uint64_t)n;
        if (n >= 2 && line[n - 2] == '\r' && line[n - 1] == '\n')
            line[n - 2] = '\0';
        else if (line[n - 1] == '\n')
            line[n - 1] = '\0';
        if (*p == '.')
            p++;
        if (*p == '\t') /* layout, as in the header */
            putchar(*p++);
        ctl_put(stdout, p);
        printf("\n");
    }
    if (seen < len)
        printf("[... %llu more octets not shown]\n", (unsigned long long)(len - seen));
    free(line);
    fclose(f);
}

/* show_json - the message as the API gives it (GET /api/queue?id=) */
static void show_json(const struct spool_envelope *env, uint64_t len, int held)
{
    struct adm_msg m = {.env = *env, .size = len, .held = held};
    struct json j;

    for (size_t i = 0; i < env->nrcpt; i++) {
        m.pending += env->rcpt[i].state == SPOOL_RCPT_PENDING;
        if (env->rcpt[i].attempts > m.attempts)
            m.attempts = env->rcpt[i].attempts;
    }
    json_init(&j);
    adm_msg_json(&m, &j);
    ctl_json_print(&j);
    json_free(&j);
}

/* cmd_show - envelope, per-recipient state, header (and body); or what is known of a
 * corrupt file */
static int cmd_show(struct ctl *c, struct spool *sp, const char *id, int body)
{
    static const char *const state[] = {"pending", "delivered", "bounced"};
    struct list_ctx lc = {.cfg = c->cfg};
    struct spool_envelope env;
    off_t off;
    uint64_t len;
    char when[32];
    int held;

    spool_keep_corrupt(sp);
    spool_on_corrupt(sp, ctl_corrupt, &lc);
    if (!spool_valid_id(id) || spool_load(sp, id, &env, &off, &len) < 0) {
        if (spool_valid_id(id) &&
            show_corrupt(c->cfg, sp, id, errno == EBADMSG ? lc.reason : NULL) == 0)
            return 0;
        ctl_error(id, "no such message");
        return 1;
    }
    held = hold_is(sp, id);
    if (c->json) {
        show_json(&env, len, held);
        spool_envelope_free(&env);
        return 0;
    }
    printf("id: %s\narrival: %s\nsize: %llu\n%ssender: <", env.id,
           ctl_time(env.arrival, when, sizeof(when)), (unsigned long long)len,
           held ? "held: yes (mxgatectl queue release ID)\n" : "");
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
    if (body)
        show_body(sp, id, off, len);
    else
        show_header(sp, id, off, len);
    spool_envelope_free(&env);
    return 0;
}

/* list_sort_arg - "--sort KEY" / "--sort=KEY"; the key, NULL for none, usage() if bad */
static const char *list_sort_arg(int argc, char **argv)
{
    if (argc == 1)
        return NULL;
    if (argc == 2 && strncmp(argv[1], "--sort=", 7) == 0)
        return argv[1] + 7;
    if (argc == 3 && strcmp(argv[1], "--sort") == 0)
        return argv[2];
    usage();
}

/* cmd_list - every queued message (in the order asked), totals, then corrupt files */
static int cmd_list(struct ctl *c, struct spool *sp, int argc, char **argv)
{
    const char *sort = list_sort_arg(argc, argv);
    struct list_ctx lc = {.cfg = c->cfg, .print = !c->json};
    struct adm_queue q;
    struct ctl_dests cd;
    struct json j;

    spool_keep_corrupt(sp);
    spool_on_corrupt(sp, ctl_corrupt, &lc);
    ctl_dests_fetch(c->cfg, &cd); /* what only the running daemon knows */
    if (adm_queue_load(sp, NULL, &q) < 0) {
        ctl_dests_free(&cd);
        fprintf(stderr, "mxgatectl: cannot read the queue: %s\n", strerror(errno));
        return 1;
    }
    if (sort && adm_queue_sort(&q, sort) < 0) {
        fprintf(stderr, "mxgatectl: sort by age, size, sender, recipients or attempts\n");
        adm_queue_free(&q);
        ctl_dests_free(&cd);
        return 2;
    }
    if (c->json) {
        json_init(&j);
        adm_queue_json_with(&q, &j, ctl_dests_json, &cd);
        ctl_json_print(&j);
        json_free(&j);
        adm_queue_free(&q);
        ctl_dests_free(&cd);
        return 0;
    }
    ctl_dests_list(c->cfg, &cd, &q, list_one);
    ctl_dests_free(&cd);
    if (q.n)
        list_totals(&q);
    else if (lc.corrupt == 0)
        printf("queue is empty\n");
    if (spool_list_corrupt(sp, list_corrupt_one, &lc) < 0)
        fprintf(stderr, "mxgatectl: cannot read corrupt/: %s\n", strerror(errno));
    if (lc.corrupt)
        printf("%u corrupt file(s): inspect with \"mxgatectl queue show ID\", "
               "remove with \"mxgatectl queue delete ID\"\n",
               lc.corrupt);
    adm_queue_free(&q);
    return 0;
}

/* cmd_dests - every destination mxgated knows, with its state (none without the daemon) */
static int cmd_dests(struct ctl *c)
{
    struct ctl_dests cd;
    struct json j;

    if (ctl_dests_fetch(c->cfg, &cd) < 0) {
        fprintf(stderr, "mxgatectl: mxgated is not running: no delivery state\n");
        return 1;
    }
    if (c->json) {
        json_init(&j);
        json_obj_begin(&j);
        ctl_dests_json(&j, &cd);
        json_obj_end(&j);
        ctl_json_print(&j);
        json_free(&j);
    } else {
        ctl_dests_print(&cd);
    }
    ctl_dests_free(&cd);
    return 0;
}

/* cmd_flush - ask the daemon; without one, the next start delivers everything anyway */
static int cmd_flush(struct ctl *c)
{
    long n;

    if (ctl_action(c->cfg, "flush", &n) != 0) {
        fprintf(stderr, "mxgatectl: without mxgated, everything is retried when it starts\n");
        return 1;
    }
    printf("flushed %ld\n", n);
    return 0;
}

/* act_offline - without the daemon: the spool directly (the hold marker is what the
 * daemon honours when it starts); 0 or -1 */
static int act_offline(struct spool *sp, enum adm_qaction a, const char *id)
{
    if (a == ADM_HOLD)
        return hold_set(sp, id);
    if (a == ADM_RELEASE)
        return hold_clear(sp, id);
    if (spool_remove(sp, id) < 0)
        return errno == ENOENT && spool_remove_corrupt(sp, id) == 0 ? 0 : -1;
    hold_clear(sp, id);
    return 0;
}

/* offline_select - act on every message sel names; the count or -1 */
static int offline_select(struct spool *sp, enum adm_qaction a, const struct adm_select *sel)
{
    struct adm_queue q;
    int n = 0;

    if (sel->kind == ADM_SEL_ID)
        return act_offline(sp, a, sel->arg) == 0 ? 1 : -1;
    spool_keep_corrupt(sp);
    if (adm_queue_load(sp, sel, &q) < 0)
        return -1;
    for (size_t i = 0; i < q.n; i++)
        if (!((a == ADM_RELEASE && !q.msg[i].held) || (a == ADM_HOLD && q.msg[i].held)) &&
            act_offline(sp, a, q.msg[i].env.id) == 0)
            n++;
    adm_queue_free(&q);
    return n;
}

/* cmd_act - hold|release|delete SELECTOR: through the daemon when it runs (it may be
 * delivering the message), else on the spool; a corrupt file is never the daemon's */
static int cmd_act(struct ctl *c, struct spool *sp, int argc, char **argv)
{
    static const char *const done[] = {"held", "released", "deleted"};
    enum adm_qaction a = strcmp(argv[0], "hold") == 0      ? ADM_HOLD
                         : strcmp(argv[0], "release") == 0 ? ADM_RELEASE
                                                           : ADM_DELETE;
    struct adm_select sel;
    char req[700], *reply;
    long n = -1;

    if (adm_select_parse(argc - 1, argv + 1, &sel) < 0 || (sel.arg && !ctl_word_ok(sel.arg))) {
        ctl_error(argv[1], "not a queue id, \"all\", \"sender ADDRESS\" or \"domain DOMAIN\"");
        return 1;
    }
    snprintf(req, sizeof(req), "%s%s%s%s%s", argv[0],
             sel.kind == ADM_SEL_SENDER   ? " sender"
             : sel.kind == ADM_SEL_DOMAIN ? " domain"
                                          : "",
             sel.kind == ADM_SEL_ALL ? " all" : "", sel.arg ? " " : "", sel.arg ? sel.arg : "");
    if (ctl_request(c->cfg, req, &reply) == 0) {
        reply[strcspn(reply, "\n")] = '\0';
        if (strncmp(reply, "ok ", 3) == 0)
            n = strtol(reply + 3, NULL, 10);
        else if (a == ADM_DELETE && sel.kind == ADM_SEL_ID &&
                 strcmp(reply, "error no such message") == 0 &&
                 spool_remove_corrupt(sp, sel.arg) == 0)
            n = 1;
        if (n < 0)
            ctl_error(sel.arg, strncmp(reply, "error ", 6) == 0 ? reply + 6 : reply);
        free(reply);
    } else if ((n = offline_select(sp, a, &sel)) < 0) {
        ctl_error(sel.arg, errno == ENOENT ? "no such message" : strerror(errno));
    }
    if (n < 0)
        return 1;
    if (sel.kind == ADM_SEL_ID)
        printf("%s %s\n", done[a], sel.arg);
    else
        printf("%s %ld message(s)\n", done[a], n);
    return 0;
}

/* queue_command - dispatch "queue ..." */
int queue_command(struct ctl *c, int argc, char **argv)
{
    char err[512];
    struct spool *sp;
    int rc;

    if (argc < 1)
        usage();
    if (strcmp(argv[0], "flush") == 0 && argc == 1)
        return cmd_flush(c);
    if (strcmp(argv[0], "destinations") == 0 && argc == 1)
        return cmd_dests(c);
    sp = spool_open(c->cfg->spool_dir, err, sizeof(err));
    if (!sp) {
        fprintf(stderr, "mxgatectl: %s\n", err);
        return 1;
    }
    if (strcmp(argv[0], "list") == 0)
        rc = cmd_list(c, sp, argc, argv);
    else if (strcmp(argv[0], "show") == 0 && argc == 2)
        rc = cmd_show(c, sp, argv[1], 0);
    else if (strcmp(argv[0], "show") == 0 && argc == 3 && strcmp(argv[2], "--body") == 0)
        rc = cmd_show(c, sp, argv[1], 1);
    else if ((strcmp(argv[0], "hold") == 0 || strcmp(argv[0], "release") == 0 ||
              strcmp(argv[0], "delete") == 0) &&
             argc >= 2)
        rc = cmd_act(c, sp, argc, argv);
    else
        usage();
    spool_close(sp);
    return rc;
}
