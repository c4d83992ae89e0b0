/*
 * quota_conf.c - the quota section (window lists "N/SECONDS", the new-account
 * tier, the hook), the store keys and the pluggable account-age source.
 */
#include "policy/quota.h"

#include <confuse.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/users.h"
#include "core/config.h"

#define QUOTA_SECS_MAX (31u * 86400)
#define QUOTA_LIMIT_MAX 1000000000u

static quota_created_fn created_fn;
static void *created_arg;

int quota_window_parse(const char *s, struct quota_window *w)
{
    unsigned long n, secs;
    char *end;

    if (!s || *s < '0' || *s > '9')
        return -1;
    n = strtoul(s, &end, 10);
    if (*end != '/' || end[1] < '0' || end[1] > '9')
        return -1;
    secs = strtoul(end + 1, &end, 10);
    if (*end || n < 1 || n > QUOTA_LIMIT_MAX || secs < 1 || secs > QUOTA_SECS_MAX)
        return -1;
    w->limit = (unsigned)n;
    w->secs = (unsigned)secs;
    return 0;
}

/* quota_check_list - every value "N/SECONDS", not too many, no window length twice
 * (after parsing: libconfuse's validators see a list once per value and once more) */
static void quota_check_list(cfg_t *sec, const char *name, struct config_diag *d)
{
    struct quota_window w[QUOTA_WINDOWS_MAX + 1];
    unsigned n = cfg_size(sec, name);

    if (n > QUOTA_WINDOWS_MAX) {
        config_error(d, sec->line, "quota: %s: at most %d windows", name, QUOTA_WINDOWS_MAX);
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        const char *v = cfg_getnstr(sec, name, i);
        if (quota_window_parse(v, &w[i]) < 0) {
            config_error(d, sec->line,
                         "quota: %s: \"%s\" is not \"COUNT/SECONDS\" (COUNT 1..%u, SECONDS 1..%u)",
                         name, v, QUOTA_LIMIT_MAX, QUOTA_SECS_MAX);
            w[i].secs = 0;
            continue;
        }
        for (unsigned k = 0; k < i; k++)
            if (w[k].secs == w[i].secs)
                config_error(d, sec->line, "quota: %s: two windows of %u seconds", name, w[i].secs);
    }
}

/* quota_check - the three window lists */
static void quota_check(cfg_t *root, struct config_diag *d)
{
    cfg_t *sec = cfg_getsec(root, "quota");

    if (!sec)
        return;
    quota_check_list(sec, "default", d);
    quota_check_list(sec, "recipients", d);
    quota_check_list(sec, "new_account", d);
}

static cfg_opt_t quota_opts[] = {
    CFG_STR_LIST("default", "{}", CFGF_NONE),     /* messages per window */
    CFG_STR_LIST("recipients", "{}", CFGF_NONE),  /* recipients per window */
    CFG_STR_LIST("new_account", "{}", CFGF_NONE), /* messages, accounts younger than new_days */
    CFG_INT("new_days", 14, CFGF_NONE),
    CFG_STR("hook", NULL, CFGF_NODEFAULT),
    CFG_INT("hook_after", 3, CFGF_NONE), /* refusals of one login in a day that run the hook */
    CFG_END(),
};

static const struct config_bound quota_bounds[] = {
    {"new_days", 0, 3650},
    {"hook_after", 1, 1000000},
    {NULL, 0, 0},
};

const struct config_section quota_section = {
    .name = "quota",
    .opts = quota_opts,
    .bounds = quota_bounds,
    .check = quota_check,
};

/* quota_list - a validated list option into w */
static size_t quota_list(cfg_t *sec, const char *name, struct quota_window *w)
{
    size_t n = 0;

    for (unsigned i = 0; i < cfg_size(sec, name) && n < QUOTA_WINDOWS_MAX; i++)
        if (quota_window_parse(cfg_getnstr(sec, name, i), &w[n]) == 0)
            n++;
    return n;
}

void quota_limits_read(const struct config *cfg, struct quota_limits *l)
{
    cfg_t *sec = cfg_getsec(cfg->raw, "quota");

    memset(l, 0, sizeof(*l));
    if (!sec)
        return;
    l->nmsg = quota_list(sec, "default", l->msg);
    l->nrcpt = quota_list(sec, "recipients", l->rcpt);
    l->nfresh = quota_list(sec, "new_account", l->fresh);
    l->new_days = (unsigned)cfg_getint(sec, "new_days");
}

size_t quota_effective(const struct quota_limits *l, int fresh, struct quota_window *out)
{
    size_t n = 0;

    for (size_t i = 0; i < l->nmsg; i++)
        out[n++] = l->msg[i];
    for (size_t i = 0; fresh && i < l->nfresh; i++) {
        size_t k = 0;
        while (k < n && out[k].secs != l->fresh[i].secs)
            k++;
        if (k == n)
            out[n++] = l->fresh[i];
        else if (l->fresh[i].limit < out[k].limit)
            out[k].limit = l->fresh[i].limit;
    }
    return n;
}

const char *quota_period(unsigned secs, char *dst, size_t len)
{
    static const struct {
        unsigned secs;
        const char *one, *many;
    } u[] = {{86400, "day", "days"}, {3600, "hour", "hours"}, {60, "minute", "minutes"}};

    for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++)
        if (secs % u[i].secs == 0) {
            unsigned n = secs / u[i].secs;
            /* "24 hours" reads better than "1 day" for a rolling quota's reader */
            if (u[i].secs == 86400 && n == 1)
                snprintf(dst, len, "24 hours");
            else
                snprintf(dst, len, "%u %s", n, n == 1 ? u[i].one : u[i].many);
            return dst;
        }
    snprintf(dst, len, "%u second%s", secs, secs == 1 ? "" : "s");
    return dst;
}

int quota_login_ok(const char *login)
{
    size_t n = 0;

    if (!login)
        return 0;
    for (; login[n]; n++)
        if ((unsigned char)login[n] < 0x20 || login[n] == 0x7f || n >= QUOTA_LOGIN_MAX)
            return 0;
    return n > 0;
}

size_t quota_key(char *dst, size_t len, const char *login, const char *suffix)
{
    size_t ll = login ? strlen(login) : 0, sl = strlen(suffix);

    if (ll == 0 || ll > QUOTA_LOGIN_MAX || 2 + ll + 1 + sl > len)
        return 0;
    memcpy(dst, QUOTA_PREFIX, 2);
    /* the users file compares logins ignoring ASCII case: so do the records, or a
     * client could split its quota by spelling its login differently */
    for (size_t i = 0; i < ll; i++)
        dst[2 + i] = (login[i] >= 'A' && login[i] <= 'Z') ? (char)(login[i] + 32) : login[i];
    dst[2 + ll] = '\0';
    memcpy(dst + 3 + ll, suffix, sl);
    return 3 + ll + sl;
}

void quota_created_source(quota_created_fn fn, void *arg)
{
    created_fn = fn;
    created_arg = arg;
}

int quota_created(const char *login, time_t *created)
{
    return created_fn ? created_fn(created_arg, login, created) : -1;
}

int quota_suspend_value(char *dst, size_t len, time_t now)
{
    return snprintf(dst, len, "%lld", (long long)now);
}

int quota_date_parse(const char *s, time_t *t)
{
    struct tm tm = {0};
    char *end;

    if (!s || strlen(s) != 10 || !(end = strptime(s, "%Y-%m-%d", &tm)) || *end)
        return -1;
    *t = timegm(&tm);
    return *t == (time_t)-1 ? -1 : 0;
}

int quota_users_created(void *arg, const char *login, time_t *created)
{
    const struct users_entry *e = users_find(arg, login);

    return e ? quota_date_parse(users_attr(e, "created"), created) : -1;
}
