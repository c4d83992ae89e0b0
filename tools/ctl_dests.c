/* ctl_dests.c - the daemon's destinations for mxgatectl queue list: state and waiting mail */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/adm.h"
#include "core/json.h"
#include "core/xmalloc.h"
#include "ctl.h"
#include "ctl_dests.h"
#include "queue/queue.h"
#include "relay/route.h"
#include "relay/routes.h"

int ctl_dests_fetch(const struct config *cfg, struct ctl_dests *cd)
{
    char *reply, *line, *save = NULL;

    memset(cd, 0, sizeof(*cd));
    if (ctl_request(cfg, "destinations", &reply) < 0)
        return -1;
    if (strncmp(reply, "ok\n", 3) != 0) {
        free(reply);
        return -1;
    }
    for (line = strtok_r(reply + 3, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        struct queue_dest_info in;
        char *name = xmalloc(CTL_DEST_NAME_MAX);
        if (adm_dest_parse(line, &in, name, CTL_DEST_NAME_MAX) < 0) {
            free(name);
            continue;
        }
        cd->d = xreallocarray(cd->d, cd->n + 1, sizeof(*cd->d));
        cd->d[cd->n++] = in;
    }
    free(reply);
    cd->daemon = 1;
    return 0;
}

void ctl_dests_free(struct ctl_dests *cd)
{
    for (size_t i = 0; i < cd->n; i++)
        free((char *)cd->d[i].name);
    free(cd->d);
    memset(cd, 0, sizeof(*cd));
}

/* ctl_dest_print - one destination: name, state, concurrency now/allowed/limit, rate,
 * messages per connection, mail waiting, and the times that matter */
static void ctl_dest_print(const struct queue_dest_info *in, time_t now)
{
    char when[32];

    if (in->mxhost)
        printf("mx_host ");
    ctl_put(stdout, in->name);
    printf("  %s  active=%u", adm_dest_state(in, now), in->active);
    if (in->concurrency)
        printf("/%u (limit %u)", in->window, in->concurrency);
    if (in->rate_secs)
        printf("  rate=%u/%us", in->rate_n, in->rate_secs);
    if (in->per_connection)
        printf("  per_connection=%u", in->per_connection);
    if (!in->mxhost) /* a host has no mail of its own: its domains have */
        printf("  waiting=%u (ready %u, deferred %u, parked %u, delivering %u)", in->messages,
               in->ready, in->deferred, in->parked, in->delivering);
    if (in->backoff_until > (double)now)
        printf("  backoff_until=%s", ctl_time((time_t)in->backoff_until, when, sizeof(when)));
    if (in->unreachable_since > 0) {
        printf("  unreachable_since=%s",
               ctl_time((time_t)in->unreachable_since, when, sizeof(when)));
        printf("  next_probe=%s", ctl_time((time_t)in->probe_due, when, sizeof(when)));
    }
    printf("\n");
}

void ctl_dests_print(const struct ctl_dests *cd)
{
    time_t now = time(NULL);

    if (!cd->daemon) {
        printf("destinations: mxgated is not running (no delivery state)\n");
        return;
    }
    printf("-- %zu destination(s) and MX host(s) known to mxgated:\n", cd->n);
    for (size_t i = 0; i < cd->n; i++)
        ctl_dest_print(&cd->d[i], now);
}

void ctl_dests_json(struct json *j, void *arg)
{
    const struct ctl_dests *cd = arg;

    json_key(j, "destinations");
    if (!cd->daemon) {
        json_null(j);
        return;
    }
    json_arr_begin(j);
    for (size_t i = 0; i < cd->n; i++)
        adm_dest_json(&cd->d[i], j);
    json_arr_end(j);
}

/* ctl_msg_dest - where m's first pending recipient goes, named as the daemon names its
 * destinations: the domain for route "mx", the route's target otherwise */
static char *ctl_msg_dest(const struct routes *rt, const struct adm_msg *m)
{
    char buf[CTL_DEST_NAME_MAX];
    const struct routes_entry *e;
    const char *dom = "";

    for (size_t i = 0; i < m->env.nrcpt; i++)
        if (m->env.rcpt[i].state == SPOOL_RCPT_PENDING) {
            const char *at = strrchr(m->env.rcpt[i].addr, '@');
            dom = at ? at + 1 : "";
            break;
        }
    e = rt ? routes_find(rt, dom) : NULL;
    if (!e)
        snprintf(buf, sizeof(buf), "(no route)");
    else if (e->target.kind == ROUTE_MX) {
        snprintf(buf, sizeof(buf), "%s", dom);
        for (char *p = buf; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    } else
        route_target_format(&e->target, buf, sizeof(buf));
    return xstrdup(buf);
}

/* ctl_dest_header - a group's first line: the daemon's state of it, or only its name */
static void ctl_dest_header(const struct ctl_dests *cd, const char *key, time_t now)
{
    printf("destination ");
    for (size_t i = 0; i < cd->n; i++)
        if (!cd->d[i].mxhost && strcmp(cd->d[i].name, key) == 0) {
            ctl_dest_print(&cd->d[i], now);
            return;
        }
    ctl_put(stdout, key);
    printf("%s\n", cd->daemon ? "  not yet scheduled" : "");
}

void ctl_dests_list(const struct config *cfg, const struct ctl_dests *cd, const struct adm_queue *q,
                    void (*one)(const struct adm_msg *m))
{
    struct routes *rt = routes_load(cfg);
    char **key = xcalloc(q->n + 1, sizeof(*key));
    unsigned char *done = xcalloc(q->n + 1, 1);
    time_t now = time(NULL);

    for (size_t i = 0; i < q->n; i++)
        key[i] = ctl_msg_dest(rt, &q->msg[i]);
    for (size_t i = 0; i < q->n; i++) {
        if (done[i])
            continue;
        ctl_dest_header(cd, key[i], now);
        for (size_t k = i; k < q->n; k++)
            if (!done[k] && strcmp(key[k], key[i]) == 0) {
                one(&q->msg[k]);
                done[k] = 1;
            }
    }
    for (size_t i = 0; i < q->n; i++)
        free(key[i]);
    free(key);
    free(done);
    routes_free(rt);
}
