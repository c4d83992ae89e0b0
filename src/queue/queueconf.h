/* queueconf.h - the queue and delivery sections: declared here, read into typed settings */
#ifndef MX_QUEUE_QUEUECONF_H
#define MX_QUEUE_QUEUECONF_H

struct config;
struct config_section;

struct queueconf_queue {
    unsigned retry_min;      /* first retry after, default 60 s */
    unsigned retry_max;      /* backoff cap, default 3600 s */
    unsigned lifetime;       /* give up after, default 432000 s (5 days) */
    unsigned fsync_threads;  /* workers doing fsync and file I/O, default 16 */
    unsigned recycle;        /* delivered queue files kept for new messages, default 1024 */
    unsigned max_deliveries; /* concurrent deliveries, default 100 */
    unsigned bounce_limit;   /* DSNs per destination address per bounce_window, default 5 */
    unsigned bounce_window;  /* default 3600 s */
    int sync_filesystem;     /* commit by syncfs group commit (default), not fsync per file */
    /* DSNs per destination domain per bounce_window, default 100 */
    unsigned bounce_domain_limit;
};

struct queueconf_delivery {
    unsigned connect_timeout; /* default 30 s */
    unsigned command_timeout; /* default 300 s */
    unsigned data_timeout;    /* default 600 s */
    int starttls;             /* opportunistic STARTTLS to the next hop, default true */
};

struct queueconf {
    struct queueconf_queue queue;
    struct queueconf_delivery delivery;
};

extern const struct config_section queueconf_queue_section;
extern const struct config_section queueconf_delivery_section;

/* queueconf_read - the settings of cfg (validated by config_load) */
void queueconf_read(const struct config *cfg, struct queueconf *qc);

#endif
