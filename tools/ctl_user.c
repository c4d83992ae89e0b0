/* ctl_user.c - mxgatectl user list|suspend|resume: the submission accounts' quotas */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/authconf.h"
#include "auth/users.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/json.h"
#include "ctl.h"
#include "policy/quota.h"
#include "store/store.h"

struct user_count {
    unsigned users, suspended;
};

/* user_print - "LOGIN  [suspended] [new]  messages/3600 12/100 ..." */
static void user_print(const struct quota_user *u, void *arg)
{
    struct user_count *n = arg;
    char when[32];

    ctl_put(stdout, u->login);
    if (u->suspended)
        printf("  suspended since %s", ctl_time((time_t)u->suspended_since, when, sizeof(when)));
    if (u->fresh)
        printf("  new");
    for (size_t i = 0; i < u->nuse; i++)
        printf("  %s/%us %lld/%u%s", u->use[i].kind == 'm' ? "messages" : "recipients",
               u->use[i].secs, u->use[i].count, u->use[i].limit,
               u->use[i].count >= (long long)u->use[i].limit ? "!" : "");
    if (u->hits)
        printf("  refused today %lld", u->hits);
    printf("\n");
    n->users++;
    n->suspended += (unsigned)u->suspended;
}

/* user_users - the users file, for the accounts' created= dates as the daemon reads
 * them (NULL when there is none or it cannot be read: then the first sight counts) */
static struct users *user_users(const struct config *cfg)
{
    struct authconf ac;
    struct users *u = NULL;
    char err[512];

    authconf_read(cfg, &ac);
    if (ac.users && !(u = users_load(ac.users, err, sizeof(err))))
        fprintf(stderr, "mxgatectl: %s (account ages from the first sight only)\n", err);
    authconf_clear(&ac);
    return u;
}

/* user_list - every login with a record, or the one named */
static int user_list(struct ctl *c, const char *only)
{
    struct user_count n = {0, 0};
    struct users *users;
    struct store *st;
    struct json j;
    int rc;

    if (!(st = ctl_store(c->cfg)))
        return 1;
    if ((users = user_users(c->cfg)))
        quota_created_source(quota_users_created, users);
    json_init(&j);
    if (c->json)
        rc = quota_users_json(c->cfg, st, clock_now(), &j);
    else
        rc = quota_users_each(c->cfg, st, clock_now(), only, user_print, &n);
    if (rc < 0)
        fprintf(stderr, "mxgatectl: cannot read the store\n");
    else if (c->json)
        ctl_json_print(&j);
    else
        printf("-- %u login(s), %u suspended\n", n.users, n.suspended);
    json_free(&j);
    store_close(st);
    quota_created_source(NULL, NULL);
    users_free(users);
    return rc < 0 ? 1 : 0;
}

/* user_encode - the login percent-encoded for the request line (it may hold spaces) */
static int user_encode(const char *login, char *dst, size_t len)
{
    size_t n = 0;

    for (const unsigned char *s = (const unsigned char *)login; *s; s++) {
        if (n + 4 > len)
            return -1;
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
            strchr("@._+-", *s))
            dst[n++] = (char)*s;
        else
            n += (size_t)snprintf(dst + n, len - n, "%%%02X", *s);
    }
    dst[n] = '\0';
    return 0;
}

/* user_command - list [LOGIN] | suspend LOGIN | resume LOGIN */
int user_command(struct ctl *c, int argc, char **argv)
{
    char enc[3 * QUOTA_LOGIN_MAX + 1], req[sizeof(enc) + 32];
    long done;
    int on;

    if (argc >= 1 && argc <= 2 && strcmp(argv[0], "list") == 0)
        return user_list(c, argc == 2 ? argv[1] : NULL);
    if (argc != 2 || (strcmp(argv[0], "suspend") != 0 && strcmp(argv[0], "resume") != 0))
        usage();
    on = strcmp(argv[0], "suspend") == 0;
    if (!quota_login_ok(argv[1]) || user_encode(argv[1], enc, sizeof(enc)) < 0) {
        ctl_error(argv[1], "not a login");
        return 1;
    }
    snprintf(req, sizeof(req), "user %s %s", argv[0], enc);
    if (ctl_action(c->cfg, req, &done) != 0)
        return 1;
    printf("%s ", on ? "suspended" : "resumed");
    ctl_put(stdout, argv[1]);
    printf("\n");
    return 0;
}
