/*
 * userlists.c - the userlists check: per-user allow and deny lists
 * (userlists.h), at RCPT for the recipient being judged and at END for the
 * message.
 *
 *   userlists { dir = "/etc/mxgate/userlists"  store = true  max_entries = 100000 }
 *
 * A deny answers 550 5.7.1 at RCPT for that recipient only. An allow marks
 * the recipient (cl->user_allow): greylist and score, listed after this
 * check, do not refuse it (the pipeline logs event=allowed_by_user with
 * what it overrode); at END the message counts as allowed when every
 * recipient allowed the sender, and score then neither refuses, quarantines
 * nor tags it. The null sender matches no list. A store that fails is
 * logged and treated as holding no entry (the files still apply).
 */
#include "policy/checks.h"

#include <confuse.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mail/address.h"
#include "policy/stats.h"
#include "policy/userlists.h"
#include "store/store.h"

#define UL_MAX_ENTRIES 10000000

struct userlists {
    struct ul_table *table;
    struct store *store; /* NULL: files only */
    struct stats *stats;
    char *dir;
    size_t max;
};

/* One RCPT lookup through the levels. */
struct ul_job {
    struct userlists *ul;
    struct policy_job *job;
    struct policy_client *cl;
    int cancelled;
    size_t n, i;
    char keys[UL_LEVELS][UL_KEY_MAX];
};

static void ul_step(struct ul_job *j);

/* ul_decide - the first entry found: deny refuses, allow marks the recipient */
static void ul_decide(struct ul_job *j, enum ul_kind kind, const char *from)
{
    struct policy_verdict v;
    struct policy_job *job = j->job;

    policy_verdict_dunno(&v);
    if (kind == UL_DENY) {
        policy_verdict_set(&v, POLICY_REJECT, 550, "5.7.1", "",
                           "<%s>: Sender address rejected by the recipient", j->cl->rcpt);
        stats_count(j->ul->stats, "userlists.deny");
    } else if (kind == UL_ALLOW) {
        j->cl->user_allow = 1;
        stats_count(j->ul->stats, "userlists.allow");
    }
    if (kind != UL_NONE)
        snprintf(v.reason, sizeof(v.reason), "%s %.*s (%s)", ul_kind_name(kind), 150, j->keys[j->i],
                 from);
    policy_job_set_data(job, NULL);
    free(j);
    policy_job_done(job, &v);
}

/* ul_on_get - a store record of the current level */
static void ul_on_get(void *arg, int status, const void *val, size_t vlen)
{
    struct ul_job *j = arg;
    char kind[8];

    if (j->cancelled) {
        free(j);
        return;
    }
    if (status == STORE_OK && vlen < sizeof(kind)) {
        memcpy(kind, val, vlen);
        kind[vlen] = '\0';
        if (ul_kind_parse(kind) != UL_NONE) {
            ul_decide(j, ul_kind_parse(kind), "store");
            return;
        }
    } else if (status != STORE_NOTFOUND) {
        log_warn("event=userlists what=store error=%s", store_strerror(status));
    }
    j->i++;
    ul_step(j);
}

/* ul_step - the current level: the files, then the store, then the next level */
static void ul_step(struct ul_job *j)
{
    char key[UL_KEY_MAX + 4];
    enum ul_kind k;

    for (; j->i < j->n; j->i++) {
        if ((k = ul_table_get(j->ul->table, j->keys[j->i])) != UL_NONE) {
            ul_decide(j, k, "file");
            return;
        }
        if (!j->ul->store)
            continue;
        snprintf(key, sizeof(key), UL_KEY_PREFIX "%s", j->keys[j->i]);
        if (store_get(j->ul->store, key, strlen(key), ul_on_get, j) == 0)
            return;
        log_warn("event=userlists what=store error=%s", log_q(strerror(errno)));
    }
    ul_decide(j, UL_NONE, "");
}

/* ul_rcpt - RCPT: look the (recipient, sender) pairs up */
static void ul_rcpt(struct userlists *ul, struct policy_job *job, struct policy_client *cl)
{
    char rcpt[ADDR_CANON_MAX], sender[ADDR_CANON_MAX];
    struct ul_job *j = xcalloc(1, sizeof(*j));

    j->ul = ul;
    j->job = job;
    j->cl = cl;
    cl->user_allow = 0;
    if (cl->sender && cl->sender[0] && cl->rcpt &&
        addr_canon(cl->rcpt, ADDR_CANON_FOLD, rcpt, sizeof(rcpt)) > 0 &&
        addr_canon(cl->sender, ADDR_CANON_FOLD, sender, sizeof(sender)) > 0)
        j->n = ul_levels(rcpt, sender, j->keys);
    policy_job_set_data(job, j);
    ul_step(j);
}

static void userlists_run(void *state, struct policy_job *job, enum policy_stage stage,
                          struct policy_client *cl)
{
    struct policy_verdict v;

    if (stage == POLICY_RCPT) {
        ul_rcpt(state, job, cl);
        return;
    }
    /* END: the message is allowed when every accepted recipient allowed the sender */
    cl->user_allow = cl->nrcpt > 0 && cl->user_allowed >= cl->nrcpt;
    policy_verdict_dunno(&v);
    if (cl->user_allow)
        snprintf(v.reason, sizeof(v.reason), "allow: every recipient");
    policy_job_done(job, &v);
}

static void userlists_cancel(void *state, struct policy_job *job)
{
    struct ul_job *j = policy_job_data(job);

    if (j)
        j->cancelled = 1; /* the store's callback frees it */
    policy_job_set_data(job, NULL);
}

static int userlists_init(const struct policy_env *env, void **state, char *err, size_t errlen)
{
    cfg_t *sec = cfg_getsec(env->cfg->raw, "userlists");
    struct userlists *ul = xcalloc(1, sizeof(*ul));
    const char *dir = cfg_getstr(sec, "dir");

    ul->dir = xstrdup(dir ? dir : "");
    ul->max = (size_t)cfg_getint(sec, "max_entries");
    if (!(ul->table = ul_table_load(ul->dir, ul->max, err, errlen))) {
        free(ul->dir);
        free(ul);
        return -1;
    }
    ul->store = cfg_getbool(sec, "store") == cfg_true ? env->store : NULL;
    ul->stats = env->stats;
    if (!env->checking)
        log_info("event=userlists entries=%zu dir=%s store=%s", ul_table_size(ul->table),
                 log_q(ul->dir), ul->store ? "yes" : "no");
    *state = ul;
    return 0;
}

/* userlists_reload - SIGHUP: the files again; on an error the old table stays */
static void userlists_reload(void *state)
{
    struct userlists *ul = state;
    char err[512];
    struct ul_table *t = ul_table_load(ul->dir, ul->max, err, sizeof(err));

    if (!t) {
        log_warn("event=reload check=userlists status=failed error=%s keeping=old-lists",
                 log_q(err));
        return;
    }
    ul_table_free(ul->table);
    ul->table = t;
    log_info("event=reload check=userlists status=ok entries=%zu", ul_table_size(t));
}

static void userlists_free(void *state)
{
    struct userlists *ul = state;

    ul_table_free(ul->table);
    free(ul->dir);
    free(ul);
}

static cfg_opt_t userlists_opts[] = {
    CFG_STR("dir", "", CFGF_NONE),
    CFG_BOOL("store", cfg_true, CFGF_NONE),
    CFG_INT("max_entries", 100000, CFGF_NONE),
    CFG_END(),
};

static const struct config_bound userlists_bounds[] = {
    {"max_entries", 1, UL_MAX_ENTRIES},
    {NULL, 0, 0},
};

static const struct config_section userlists_section = {
    .name = "userlists",
    .opts = userlists_opts,
    .bounds = userlists_bounds,
};

const struct policy_check_ops policy_check_userlists = {
    .name = "userlists",
    .stages = POLICY_STAGE(POLICY_RCPT) | POLICY_STAGE(POLICY_END),
    .init = userlists_init,
    .run = userlists_run,
    .cancel = userlists_cancel,
    .reload = userlists_reload,
    .free = userlists_free,
    .section = &userlists_section,
};
