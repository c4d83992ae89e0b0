/* queueconf.c - the queue and delivery sections */
#include "queue/queueconf.h"

#include <confuse.h>
#include <limits.h>
#include <string.h>

#include "core/config.h"

/* queueconf_valid_sync - filesystem (syncfs group commit) or file */
static int queueconf_valid_sync(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *v = cfg_opt_getnstr(opt, 0);

    if (strcmp(v, "filesystem") && strcmp(v, "file"))
        cfg_error(cfg, "queue: sync must be \"filesystem\" or \"file\"");
    return 0; /* reported; keep parsing to list every error */
}

/* queueconf_check_queue - relations a single bound cannot see */
static void queueconf_check_queue(cfg_t *root, struct config_diag *d)
{
    cfg_t *q = cfg_getsec(root, "queue");

    if (cfg_getint(q, "retry_max") < cfg_getint(q, "retry_min"))
        config_error(d, q->line, "queue: retry_max must not be below retry_min");
}

static cfg_opt_t queueconf_queue_opts[] = {
    CFG_INT("retry_min", 60, CFGF_NONE),
    CFG_INT("retry_max", 3600, CFGF_NONE),
    CFG_INT("lifetime", 432000, CFGF_NONE),
    CFG_INT("fsync_threads", 16, CFGF_NONE),
    CFG_INT("recycle", 1024, CFGF_NONE), /* queue files kept in free/ for reuse; 0: off */
    CFG_INT("max_deliveries", 100, CFGF_NONE),
    CFG_INT("bounce_limit", 5, CFGF_NONE),
    CFG_INT("bounce_window", 3600, CFGF_NONE),
    CFG_INT("bounce_domain_limit", 100, CFGF_NONE),
    CFG_STR("sync", "filesystem", CFGF_NONE), /* filesystem (syncfs group commit) | file */
    CFG_END(),
};

static const struct config_bound queueconf_queue_bounds[] = {
    {"retry_min", 1, INT_MAX},
    {"retry_max", 0, INT_MAX},
    {"lifetime", 0, INT_MAX},
    {"fsync_threads", 1, 64},
    {"recycle", 0, 100000},
    {"max_deliveries", 1, INT_MAX},
    {"bounce_limit", 0, INT_MAX},
    {"bounce_window", 0, INT_MAX},
    {"bounce_domain_limit", 0, INT_MAX},
    {NULL, 0, 0},
};

static const struct config_validator queueconf_queue_validators[] = {
    {"queue|sync", queueconf_valid_sync},
    {NULL, NULL},
};

const struct config_section queueconf_queue_section = {
    .name = "queue",
    .opts = queueconf_queue_opts,
    .bounds = queueconf_queue_bounds,
    .validators = queueconf_queue_validators,
    .check = queueconf_check_queue,
};

static cfg_opt_t queueconf_delivery_opts[] = {
    CFG_INT("connect_timeout", 30, CFGF_NONE),
    CFG_INT("command_timeout", 300, CFGF_NONE),
    CFG_INT("data_timeout", 600, CFGF_NONE),
    CFG_BOOL("starttls", cfg_true, CFGF_NONE),
    CFG_END(),
};

static const struct config_bound queueconf_delivery_bounds[] = {
    {"connect_timeout", 1, INT_MAX},
    {"command_timeout", 1, INT_MAX},
    {"data_timeout", 1, INT_MAX},
    {NULL, 0, 0},
};

const struct config_section queueconf_delivery_section = {
    .name = "delivery",
    .opts = queueconf_delivery_opts,
    .bounds = queueconf_delivery_bounds,
};

void queueconf_read(const struct config *cfg, struct queueconf *qc)
{
    cfg_t *q = cfg_getsec(cfg->raw, "queue"), *d = cfg_getsec(cfg->raw, "delivery");

    qc->queue.retry_min = config_uint(q, "retry_min");
    qc->queue.retry_max = config_uint(q, "retry_max");
    qc->queue.lifetime = config_uint(q, "lifetime");
    qc->queue.fsync_threads = config_uint(q, "fsync_threads");
    qc->queue.recycle = config_uint(q, "recycle");
    qc->queue.max_deliveries = config_uint(q, "max_deliveries");
    qc->queue.bounce_limit = config_uint(q, "bounce_limit");
    qc->queue.bounce_window = config_uint(q, "bounce_window");
    qc->queue.bounce_domain_limit = config_uint(q, "bounce_domain_limit");
    qc->queue.sync_filesystem = strcmp(cfg_getstr(q, "sync"), "file") != 0;
    qc->delivery.connect_timeout = config_uint(d, "connect_timeout");
    qc->delivery.command_timeout = config_uint(d, "command_timeout");
    qc->delivery.data_timeout = config_uint(d, "data_timeout");
    qc->delivery.starttls = cfg_getbool(d, "starttls") == cfg_true;
}
