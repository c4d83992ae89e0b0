/* mxgatectl - look at and act on mxgated: queue, statistics, greylist, blocks, status;
 * make DKIM keys */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/privs.h"
#include "ctl.h"
#include "modules.h"
#include "version.h"

#define CTL_DEFAULT_CONFIG MXGATE_CONFIG_FILE

void usage(void)
{
    fprintf(stderr,
            "usage: mxgatectl [-c config] [--json] COMMAND\n"
            "  queue list [--sort age|size|sender|recipients|attempts]\n"
            "  queue show ID [--body]\n"
            "  queue destinations\n"
            "  queue flush\n"
            "  queue hold|release|delete ID|all|sender ADDRESS|domain DOMAIN\n"
            "  stats [FROM [TO]]       FROM, TO: YYYY-MM-DD, YYYY-MM-DDTHH (UTC), today, all\n"
            "  flood                   the bounce-flood state\n"
            "  greylist list\n"
            "  greylist allow|remove ADDRESS|NETWORK [SENDER RECIPIENT]\n"
            "  blocks list\n"
            "  blocks clear ADDRESS|NETWORK|all\n"
            "  user list [LOGIN]       submission logins: quota usage, suspension\n"
            "  user suspend|resume LOGIN\n"
            "  quarantine list\n"
            "  quarantine show ID [--body]\n"
            "  quarantine release|delete ID\n"
            "  list show USER          per-user allow and deny lists (USER: user@domain, @domain)\n"
            "  list add USER allow|deny SENDER   SENDER: an address or @domain\n"
            "  list remove USER [allow|deny] SENDER\n"
            "  status\n"
            "  reload\n"
            "  dkim keygen DOMAIN SELECTOR [--type rsa|ed25519] [--bits 2048] [--dir DIR]\n");
    exit(2);
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

/* strip_json - "--json" may also follow the command; remove it wherever it is */
static int strip_json(int *argc, char **argv)
{
    int found = 0, n = 0;

    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            found = 1;
        else
            argv[n++] = argv[i];
    }
    *argc = n;
    return found;
}

static const struct {
    const char *name;
    int (*fn)(struct ctl *c, int argc, char **argv);
} commands[] = {
    {"queue", queue_command},           {"stats", stats_command},       {"flood", flood_command},
    {"bounce-flood", flood_command},    {"greylist", greylist_command}, {"blocks", blocks_command},
    {"status", status_command},         {"reload", reload_command},     {"user", user_command},
    {"quarantine", quarantine_command}, {"list", list_command},
};

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    const char *path = CTL_DEFAULT_CONFIG;
    struct ctl c = {0};
    struct config *cfg;
    int ch, rc = 2;

    while ((ch = getopt_long(argc, argv, "+c:jh", longopts, NULL)) != -1) {
        if (ch == 'c')
            path = optarg;
        else if (ch == 'j')
            c.json = 1;
        else
            usage();
    }
    argc -= optind;
    argv += optind;
    c.json |= strip_json(&argc, argv);
    if (argc < 1)
        usage();
    if (strcmp(argv[0], "dkim") == 0)
        return dkim_command(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[0], commands[i].name) != 0)
            continue;
        signal(SIGPIPE, SIG_IGN); /* a daemon that hangs up is reported, not fatal */
        if (!(cfg = modules_config_load(path, stderr)))
            return 1;
        c.cfg = cfg;
        rc = become_user(cfg) < 0 ? 1 : commands[i].fn(&c, argc - 1, argv + 1);
        config_free(cfg);
        return rc;
    }
    usage();
}
