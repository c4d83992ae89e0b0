/* ctl_quarantine.c - mxgatectl quarantine: list, show, release, delete */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/adm.h"
#include "core/config.h"
#include "core/json.h"
#include "ctl.h"
#include "queue/quarantine.h"
#include "queue/spool.h"

#define CTL_Q_SHOW_MAX (64 * 1024 * 1024) /* --body shows at most this much */

/* list_one - "ID  kept  size  <sender>  reason", then the recipients */
static void list_one(const struct quarantine_msg *m, void *arg)
{
    char when[32];

    (void)arg;
    printf("%s  %s  %llu  <", m->env.id,
           ctl_time(m->when ? m->when : m->env.arrival, when, sizeof(when)),
           (unsigned long long)m->size);
    ctl_put(stdout, m->env.sender);
    printf(">  reason=");
    ctl_put(stdout, m->why);
    printf("\n");
    for (size_t i = 0; i < m->env.nrcpt; i++) {
        printf("  <");
        ctl_put(stdout, m->env.rcpt[i].addr);
        printf(">\n");
    }
}

static int cmd_list(struct ctl *c, struct spool *sp)
{
    struct json j;
    int n;

    if (c->json) {
        json_init(&j);
        n = adm_quarantine_json(sp, &j);
        if (n == 0)
            ctl_json_print(&j);
        json_free(&j);
    } else {
        n = quarantine_list(sp, list_one, NULL);
        if (n == 0)
            printf("quarantine is empty\n");
        else if (n > 0)
            printf("-- %d message(s) in quarantine\n", n);
    }
    if (n < 0) {
        fprintf(stderr, "mxgatectl: cannot read the quarantine: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

/* show_text - the stored text, dot-stuffing undone, escaped; the header only unless all */
static void show_text(int fd, off_t off, uint64_t len, int all)
{
    FILE *f = lseek(fd, off, SEEK_SET) < 0 ? NULL : fdopen(dup(fd), "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t seen = 0;

    if (!f)
        return;
    printf("\n");
    while (seen < len && seen < CTL_Q_SHOW_MAX && (n = getline(&line, &cap, f)) > 0) {
        char *p = line;
        seen += (uint64_t)n;
        line[n - 1] = '\0';
        if (n >= 2 && line[n - 2] == '\r')
            line[n - 2] = '\0';
        if (!all && !*p)
            break;
        if (*p == '.')
            p++;
        if (*p == '\t') /* a folded line's tab is layout */
            putchar(*p++);
        ctl_put(stdout, p);
        printf("\n");
    }
    free(line);
    fclose(f);
}

static int cmd_show(struct ctl *c, struct spool *sp, const char *id, int body)
{
    struct quarantine_msg m;
    struct json j;
    char when[32];
    off_t off;
    uint64_t len;
    int fd;

    if (quarantine_get(sp, id, &m) < 0) {
        ctl_error(id, "no such message in quarantine");
        return 1;
    }
    if (c->json) {
        json_init(&j);
        adm_quarantine_msg_json(&m, &j);
        ctl_json_print(&j);
        json_free(&j);
        quarantine_msg_free(&m);
        return 0;
    }
    printf("id: %s\narrival: %s\n", m.env.id, ctl_time(m.env.arrival, when, sizeof(when)));
    printf("kept: %s\nreason: ", m.when ? ctl_time(m.when, when, sizeof(when)) : "unknown");
    ctl_put(stdout, m.why);
    printf("\nsize: %llu\nsender: <", (unsigned long long)m.size);
    ctl_put(stdout, m.env.sender);
    printf(">\nclient: ");
    ctl_put(stdout, m.env.client_name);
    printf(" [");
    ctl_put(stdout, m.env.client_ip);
    printf("]\n");
    for (size_t i = 0; i < m.env.nrcpt; i++) {
        printf("recipient: <");
        ctl_put(stdout, m.env.rcpt[i].addr);
        printf(">\n");
    }
    quarantine_msg_free(&m);
    if ((fd = quarantine_open(sp, id, &off, &len)) >= 0) {
        show_text(fd, off, len, body);
        close(fd);
    }
    return 0;
}

/* cmd_act - release|delete ID: through the daemon (release queues it at once); without
 * one, on the spool (a released message is delivered when mxgated starts) */
static int cmd_act(struct ctl *c, struct spool *sp, const char *what, const char *id)
{
    int release = strcmp(what, "release") == 0;
    char req[128], *reply;
    int rc;

    if (!spool_valid_id(id)) {
        ctl_error(id, "not a queue id");
        return 1;
    }
    snprintf(req, sizeof(req), "quarantine %s %s", what, id);
    if (ctl_request(c->cfg, req, &reply) == 0) {
        reply[strcspn(reply, "\n")] = '\0';
        rc = strncmp(reply, "ok ", 3) == 0 ? 0 : 1;
        if (rc)
            ctl_error(id, strncmp(reply, "error ", 6) == 0 ? reply + 6 : reply);
        free(reply);
        if (rc)
            return 1;
    } else if ((release ? quarantine_release(sp, id) : quarantine_delete(sp, id)) < 0) {
        ctl_error(id, errno == ENOENT ? "no such message in quarantine" : strerror(errno));
        return 1;
    }
    printf("%s %s\n", release ? "released" : "deleted", id);
    return 0;
}

int quarantine_command(struct ctl *c, int argc, char **argv)
{
    char err[512];
    struct spool *sp;
    int rc;

    if (argc < 1)
        usage();
    sp = spool_open(c->cfg->spool_dir, err, sizeof(err));
    if (!sp) {
        fprintf(stderr, "mxgatectl: %s\n", err);
        return 1;
    }
    if (strcmp(argv[0], "list") == 0 && argc == 1)
        rc = cmd_list(c, sp);
    else if (strcmp(argv[0], "show") == 0 && argc == 2)
        rc = cmd_show(c, sp, argv[1], 0);
    else if (strcmp(argv[0], "show") == 0 && argc == 3 && strcmp(argv[2], "--body") == 0)
        rc = cmd_show(c, sp, argv[1], 1);
    else if ((strcmp(argv[0], "release") == 0 || strcmp(argv[0], "delete") == 0) && argc == 2)
        rc = cmd_act(c, sp, argv[0], argv[1]);
    else
        usage();
    spool_close(sp);
    return rc;
}
