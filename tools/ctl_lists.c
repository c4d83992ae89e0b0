/* ctl_lists.c - mxgatectl list: per-user allow and deny lists (policy/userlists.h) */
#include <confuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/adm.h"
#include "core/config.h"
#include "core/json.h"
#include "ctl.h"
#include "policy/userlists.h"
#include "store/store.h"

static void show_one(const char *rcpt, const char *kind, const char *pattern, void *arg)
{
    ctl_put(stdout, rcpt);
    printf("  %s  ", kind);
    ctl_put(stdout, pattern);
    printf("%s\n", (const char *)arg);
}

/* cmd_show - the store's entries of USER, then the files' (userlists { dir }) */
static int cmd_show(struct ctl *c, const char *user)
{
    cfg_t *sec = cfg_getsec(c->cfg->raw, "userlists");
    char r[UL_ENTRY_MAX], err[512];
    struct ul_table *t;
    struct store *st;
    struct json j;
    int n;

    if (ul_canon_rcpt(user, r, sizeof(r)) < 0) {
        ctl_error(user, "not a recipient address or @domain");
        return 1;
    }
    if (!(st = ctl_store(c->cfg)))
        return 1;
    if (c->json) {
        json_init(&j);
        n = adm_userlist_json(st, r, &j);
        if (n == 0)
            ctl_json_print(&j);
        json_free(&j);
    } else {
        n = adm_userlist_each(st, r, show_one, "");
    }
    store_close(st);
    if (n < 0) {
        fprintf(stderr, "mxgatectl: cannot read the store\n");
        return 1;
    }
    if (c->json)
        return 0;
    t = ul_table_load(cfg_getstr(sec, "dir"), (size_t)cfg_getint(sec, "max_entries"), err,
                      sizeof(err));
    if (!t) {
        ctl_error(NULL, err);
        return 1;
    }
    ul_table_each(t, r, show_one, "  (file)");
    ul_table_free(t);
    return 0;
}

/* cmd_act - add USER allow|deny PATTERN, remove USER [allow|deny] PATTERN: the daemon writes */
static int cmd_act(struct ctl *c, int argc, char **argv)
{
    int add = strcmp(argv[0], "add") == 0;
    const char *user = argv[1], *kind = argc == 4 ? argv[2] : NULL, *pat = argv[argc - 1];
    char req[1200];
    long n;

    if ((add && argc != 4) || (!add && argc != 3 && argc != 4) ||
        (kind && ul_kind_parse(kind) == UL_NONE))
        usage();
    if (!ctl_word_ok(user) || !ctl_word_ok(pat)) {
        ctl_error(NULL, "addresses with spaces or control characters cannot be listed");
        return 1;
    }
    if (add)
        snprintf(req, sizeof(req), "list add %s %s %s", user, kind, pat);
    else
        snprintf(req, sizeof(req), "list remove %s %s", user, pat);
    if (ctl_action(c->cfg, req, &n) != 0)
        return 1;
    if (add)
        printf("added: %s %s %s\n", user, kind, pat);
    else
        printf(n ? "removed: %s %s\n" : "not listed: %s %s\n", user, pat);
    return 0;
}

int list_command(struct ctl *c, int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[0], "show") == 0)
        return cmd_show(c, argv[1]);
    if (argc >= 3 && (strcmp(argv[0], "add") == 0 || strcmp(argv[0], "remove") == 0))
        return cmd_act(c, argc, argv);
    usage();
}
