/* adm_status.c - what the daemon is doing now: up since, listeners, sessions, queue, store */
#include "admin/adm.h"

#include <confuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/adminconf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/json.h"
#include "queue/queue.h"
#include "store/store.h"
#include "store/storeconf.h"

/* status_listeners - every listen section, as configured */
static void status_listeners(const struct config *cfg, struct json *j)
{
    json_key(j, "listeners");
    json_arr_begin(j);
    for (unsigned i = 0; i < cfg_size(cfg->raw, "listen"); i++) {
        cfg_t *l = cfg_getnsec(cfg->raw, "listen", i);
        json_obj_begin(j);
        json_kstr(j, "name", cfg_title(l));
        json_kstr(j, "address", cfg_getstr(l, "address"));
        json_obj_end(j);
    }
    json_arr_end(j);
}

/* status_store - its URI, and whether a read works now */
static void status_store(const struct adm_env *env, struct json *j)
{
    char uri[4200];
    void *val = NULL;
    size_t vlen = 0;
    int s = store_sync_get(env->store, "bf:state", 8, &val, &vlen);

    free(val);
    storeconf_uri(adm_cfg(env), uri, sizeof(uri));
    store_uri_safe(uri, uri, sizeof(uri)); /* a Redis password is not shown */
    json_key(j, "store");
    json_obj_begin(j);
    json_kstr(j, "uri", uri);
    json_key(j, "ok");
    json_bool(j, s == STORE_OK || s == STORE_NOTFOUND);
    json_kstr(j, "status", s == STORE_NOTFOUND ? "ok" : store_strerror(s));
    json_obj_end(j);
}

void adm_status_json(const struct adm_env *env, struct json *j)
{
    struct queue_info qi;
    char when[32], addr[128];
    time_t now = clock_now();

    queue_info(env->queue, &qi);
    json_obj_begin(j);
    json_kstr(j, "hostname", adm_cfg(env)->hostname);
    json_kstr(j, "started", adm_time(env->started, when, sizeof(when)));
    json_kint(j, "uptime", (long long)(now - env->started));
    status_listeners(adm_cfg(env), j);
    json_kstr(j, "admin", adminconf_address(adm_cfg(env), addr, sizeof(addr)) ? addr : NULL);
    json_kint(j, "sessions", env->sessions ? *env->sessions : 0);
    json_key(j, "queue");
    json_obj_begin(j);
    json_kint(j, "messages", qi.messages);
    json_kint(j, "active", qi.active);
    json_kint(j, "deferred", qi.deferred);
    json_kint(j, "held", qi.held);
    json_kint(j, "oldest_age", qi.oldest ? (long long)now - qi.oldest : 0);
    json_obj_end(j);
    status_store(env, j);
    json_obj_end(j);
}

void adm_status_text(const struct adm_env *env, FILE *out)
{
    struct queue_info qi;
    char when[32], addr[128], uri[4200];
    time_t now = clock_now();
    void *val = NULL;
    size_t vlen = 0;
    int st = store_sync_get(env->store, "bf:state", 8, &val, &vlen);

    free(val);
    queue_info(env->queue, &qi);
    fprintf(out, "up since:  %s (%lld s)\n", adm_time(env->started, when, sizeof(when)),
            (long long)(now - env->started));
    for (unsigned i = 0; i < cfg_size(adm_cfg(env)->raw, "listen"); i++) {
        cfg_t *l = cfg_getnsec(adm_cfg(env)->raw, "listen", i);
        fprintf(out, "listener:  %s %s\n", cfg_title(l), cfg_getstr(l, "address"));
    }
    if (adminconf_address(adm_cfg(env), addr, sizeof(addr)))
        fprintf(out, "admin:     http://%s/\n", addr);
    fprintf(out, "sessions:  %u\n", env->sessions ? *env->sessions : 0);
    fprintf(out, "queue:     %u messages (%u being delivered, %u deferred, %u held)", qi.messages,
            qi.active, qi.deferred, qi.held);
    if (qi.oldest)
        fprintf(out, ", oldest %lld s", (long long)now - qi.oldest);
    storeconf_uri(adm_cfg(env), uri, sizeof(uri));
    store_uri_safe(uri, uri, sizeof(uri));
    fprintf(out, "\nstore:     %s %s\n", uri,
            st == STORE_OK || st == STORE_NOTFOUND ? "ok" : store_strerror(st));
}
