/* ctl_dests.h - the daemon's destinations (state and waiting mail) in mxgatectl */
#ifndef MX_TOOLS_CTL_DESTS_H
#define MX_TOOLS_CTL_DESTS_H

#include <stddef.h>

struct config;
struct json;
struct queue_dest_info;
struct adm_queue;
struct adm_msg;

#define CTL_DEST_NAME_MAX 512

struct ctl_dests {
    struct queue_dest_info *d;
    size_t n;
    int daemon; /* 0: mxgated did not answer (nothing is known) */
};

/* ctl_dests_fetch - ask mxgated; 0, or -1 when it does not run (cd->daemon 0) */
int ctl_dests_fetch(const struct config *cfg, struct ctl_dests *cd);
void ctl_dests_free(struct ctl_dests *cd);
/* ctl_dests_print - one line per destination (outside names escaped) */
void ctl_dests_print(const struct ctl_dests *cd);
/* ctl_dests_list - q's messages grouped by destination (as the routes of cfg send their
 * first pending recipient), each group under a line with the daemon's state of it */
void ctl_dests_list(const struct config *cfg, const struct ctl_dests *cd, const struct adm_queue *q,
                    void (*one)(const struct adm_msg *m));
/* ctl_dests_json - "destinations": [...] (null without the daemon), for adm_queue_json_with */
void ctl_dests_json(struct json *j, void *arg);

#endif
