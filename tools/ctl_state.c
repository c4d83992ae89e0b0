/* ctl_state.c - mxgatectl stats, flood, greylist, blocks, status, reload */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/adm.h"
#include "core/config.h"
#include "core/json.h"
#include "core/xmalloc.h"
#include "ctl.h"
#include "policy/stats.h"
#include "store/store.h"

/* stats_command - the table of connections and refusals by mechanism for a period */
int stats_command(struct ctl *c, int argc, char **argv)
{
    struct adm_table *t;
    time_t from, to;
    struct store *st;
    struct json j;
    int rc;

    if (argc > 2 || adm_parse_time(argc > 0 ? argv[0] : "all", 0, &from) < 0 ||
        adm_parse_time(argc > 1 ? argv[1] : "all", 1, &to) < 0)
        usage();
    if (!(st = ctl_store(c->cfg)))
        return 1;
    if (c->json) {
        t = xmalloc(sizeof(*t));
        json_init(&j);
        if ((rc = adm_table_read(st, from, to, t)) == 0) {
            adm_table_json(t, &j);
            ctl_json_print(&j);
        }
        json_free(&j);
        free(t);
    } else {
        rc = stats_report(st, from, to, stdout);
    }
    store_close(st);
    if (rc < 0)
        fprintf(stderr, "mxgatectl: cannot read statistics\n");
    return rc < 0 ? 1 : 0;
}

/* flood_command - the bounce-flood state that mxgated mirrors into the store */
int flood_command(struct ctl *c, int argc, char **argv)
{
    struct adm_flood f;
    struct store *st;
    struct json j;
    char when[32];
    int rc;

    if (argc != 0)
        usage();
    if (!(st = ctl_store(c->cfg)))
        return 1;
    json_init(&j);
    if (c->json)
        rc = adm_flood_json(c->cfg, st, &j);
    else
        rc = adm_flood_get(c->cfg, st, &f);
    if (rc < 0) {
        fprintf(stderr, "mxgatectl: cannot read the bounce-flood state\n");
    } else if (c->json) {
        ctl_json_print(&j);
    } else if (strcmp(f.state, "unknown") == 0) {
        fprintf(stderr, "mxgatectl: bad bf:state record\n");
        rc = -1;
    } else if (f.since == 0) {
        printf("normal (no bounce flood recorded)\n");
    } else {
        printf("%s since %s (%lld bounces in the last interval of %ld s, %lld in the current "
               "one)\n",
               f.state, ctl_time((time_t)f.since, when, sizeof(when)), f.last, f.interval,
               f.current);
    }
    json_free(&j);
    store_close(st);
    return rc < 0 ? 1 : 0;
}

struct count {
    unsigned a, b;
};

/* grey_print - one greylist record as a line */
static void grey_print(const struct adm_grey *g, void *arg)
{
    struct count *n = arg;
    char when[32];

    ctl_put(stdout, g->network);
    if (g->network_only) {
        printf("  trusted  passes=%lld  last=%s\n", g->passes,
               ctl_time((time_t)g->since, when, sizeof(when)));
        n->b++;
        return;
    }
    printf("  <");
    ctl_put(stdout, g->sender);
    printf("> -> <");
    ctl_put(stdout, g->recipient);
    printf(">  %s  since=%s\n", g->passed ? "passed" : "waiting",
           ctl_time((time_t)g->since, when, sizeof(when)));
    n->a++;
}

/* greylist_change - allow|remove NET [SENDER RCPT] through the daemon */
static int greylist_change(struct ctl *c, int argc, char **argv)
{
    char req[1024];
    long n;

    for (int i = 1; i < argc; i++)
        if (!ctl_word_ok(argv[i])) {
            ctl_error(argv[i], "not a valid argument");
            return 1;
        }
    snprintf(req, sizeof(req), "greylist %s %s%s%s%s%s", argv[0], argv[1], argc == 4 ? " " : "",
             argc == 4 ? argv[2] : "", argc == 4 ? " " : "", argc == 4 ? argv[3] : "");
    if (ctl_action(c->cfg, req, &n) != 0)
        return 1;
    if (strcmp(argv[0], "allow") == 0)
        printf("allowed ");
    else
        printf("removed %ld record(s) of ", n);
    ctl_put(stdout, argv[1]);
    printf("\n");
    return 0;
}

/* greylist_command - list | allow NET [SENDER RCPT] | remove NET [SENDER RCPT] */
int greylist_command(struct ctl *c, int argc, char **argv)
{
    struct count n = {0, 0};
    struct store *st;
    struct json j;
    int rc;

    if (argc >= 1 && (strcmp(argv[0], "allow") == 0 || strcmp(argv[0], "remove") == 0) &&
        (argc == 2 || argc == 4))
        return greylist_change(c, argc, argv);
    if (argc != 1 || strcmp(argv[0], "list") != 0)
        usage();
    if (!(st = ctl_store(c->cfg)))
        return 1;
    json_init(&j);
    rc = c->json ? adm_greylist_json(st, 0, &j) : adm_greylist_each(st, grey_print, &n);
    if (rc < 0)
        fprintf(stderr, "mxgatectl: cannot read the store\n");
    else if (c->json)
        ctl_json_print(&j);
    else
        printf("-- %u triplet(s), %u trusted network(s)\n", n.a, n.b);
    json_free(&j);
    store_close(st);
    return rc < 0 ? 1 : 0;
}

/* block_print - one block or rate-limit window as a line */
static void block_print(const struct adm_block *b, void *arg)
{
    struct count *n = arg;

    ctl_put(stdout, b->client);
    if (strcmp(b->kind, "harvest") == 0)
        printf("  harvest  blocked\n");
    else
        printf("  ratelimit %s  %lld/%lld%s\n", b->kind, b->count, b->limit,
               b->over ? "  blocked" : "");
    n->a += (unsigned)b->over;
    n->b++;
}

/* blocks_command - list | clear ADDRESS|NETWORK|all */
int blocks_command(struct ctl *c, int argc, char **argv)
{
    struct count n = {0, 0};
    struct store *st;
    struct json j;
    char req[400];
    long done;
    struct adm_limits lim;
    int rc;

    if (argc == 2 && strcmp(argv[0], "clear") == 0) {
        if (!ctl_word_ok(argv[1])) {
            ctl_error(argv[1], "not an address, network or \"all\"");
            return 1;
        }
        snprintf(req, sizeof(req), "blocks clear %s", argv[1]);
        if (ctl_action(c->cfg, req, &done) != 0)
            return 1;
        printf("cleared %ld record(s)\n", done);
        return 0;
    }
    if (argc != 1 || strcmp(argv[0], "list") != 0)
        usage();
    if (!(st = ctl_store(c->cfg)))
        return 1;
    json_init(&j);
    adm_limits_read(c->cfg, &lim);
    rc = c->json ? adm_blocks_json(&lim, st, 0, &j) : adm_blocks_each(c->cfg, st, block_print, &n);
    if (rc < 0)
        fprintf(stderr, "mxgatectl: cannot read the store\n");
    else if (c->json)
        ctl_json_print(&j);
    else
        printf("-- %u blocked, %u record(s)\n", n.a, n.b);
    json_free(&j);
    store_close(st);
    return rc < 0 ? 1 : 0;
}

/* status_command - asked of the daemon: only it knows its listeners and sessions */
int status_command(struct ctl *c, int argc, char **argv)
{
    char *reply;

    if (argc != 0)
        usage();
    if (ctl_request(c->cfg, c->json ? "status json" : "status", &reply) < 0) {
        printf("mxgated is not running\n");
        return 3; /* as "service status" says it (LSB) */
    }
    if (strncmp(reply, "ok", 2) != 0) {
        reply[strcspn(reply, "\n")] = '\0';
        ctl_error(NULL, reply);
        free(reply);
        return 1;
    }
    ctl_put_lines(stdout, reply + 3);
    free(reply);
    return 0;
}

/* reload_command - what SIGHUP does */
int reload_command(struct ctl *c, int argc, char **argv)
{
    long n;

    if (argc != 0)
        usage();
    if (ctl_action(c->cfg, "reload", &n) != 0)
        return 1;
    printf("reload requested\n");
    return 0;
}
