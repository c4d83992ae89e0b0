/* http_api.c - the JSON API: the same adm_* functions mxgatectl's listings run */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/http_internal.h"
#include "core/json.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "queue/quarantine.h"
#include "queue/queue.h"

/* api_selector - id=, sender=, domain= or all=1 from the parameters; 0 or -1 */
static int api_selector(struct http_req *r, struct adm_select *sel)
{
    const char *v;

    if ((v = http_param(r, "id")) && spool_valid_id(v))
        *sel = (struct adm_select){ADM_SEL_ID, v};
    else if ((v = http_param(r, "sender")))
        *sel = (struct adm_select){ADM_SEL_SENDER, v};
    else if ((v = http_param(r, "domain")) && v[0])
        *sel = (struct adm_select){ADM_SEL_DOMAIN, v};
    else if ((v = http_param(r, "all")) && strcmp(v, "1") == 0)
        *sel = (struct adm_select){ADM_SEL_ALL, NULL};
    else
        return -1;
    return 0;
}

/* api_queue_dests - the scheduler's destinations beside the spool's listing */
static void api_queue_dests(struct json *j, void *arg)
{
    json_key(j, "destinations");
    adm_dests_json(arg, j);
}

/* api_queue - GET /api/queue[?sort=&sender=&domain=&id=] */
static void api_queue(struct http_req *r)
{
    struct adm_select sel;
    struct adm_queue q;
    const char *sort = http_param(r, "sort");
    int filtered = api_selector(r, &sel) == 0;
    struct json j;

    if (adm_queue_load(r->a->env.spool, filtered ? &sel : NULL, &q) < 0) {
        http_error(r, 500, "cannot read the queue");
        return;
    }
    if (sort && adm_queue_sort(&q, sort) < 0) {
        adm_queue_free(&q);
        http_error(r, 400, "sort is age, size, sender, recipients or attempts");
        return;
    }
    json_init(&j);
    adm_queue_json_with(&q, &j, api_queue_dests, &r->a->env);
    http_json(r, 200, &j);
    json_free(&j);
    adm_queue_free(&q);
}

/* api_quarantine - GET /api/quarantine[?id=] */
static void api_quarantine(struct http_req *r)
{
    const char *id = http_param(r, "id");
    struct quarantine_msg m;
    struct json j;
    int rc = 0;

    json_init(&j);
    if (id && quarantine_get(r->a->env.spool, id, &m) == 0) {
        adm_quarantine_msg_json(&m, &j);
        quarantine_msg_free(&m);
    } else if (id) {
        rc = -2;
    } else {
        rc = adm_quarantine_json(r->a->env.spool, &j);
    }
    if (rc == -2)
        http_error(r, 404, "no such message in quarantine");
    else if (rc < 0)
        http_error(r, 500, "cannot read the quarantine");
    else
        http_json(r, 200, &j);
    json_free(&j);
}

int http_api_get(struct http_req *r, const char *path)
{
    struct json j;

    if (strcmp(path, "/api/stats") == 0 || strcmp(path, "/api/stats/series") == 0) {
        http_stats(r, path[10] == '/');
    } else if (strcmp(path, "/api/queue") == 0) {
        api_queue(r);
    } else if (strcmp(path, "/api/destinations") == 0) {
        json_init(&j);
        adm_dests_json(&r->a->env, &j);
        http_json(r, 200, &j);
        json_free(&j);
    } else if (strcmp(path, "/api/quarantine") == 0) {
        api_quarantine(r);
    } else if (strcmp(path, "/api/lists") == 0) {
        http_userlists(r);
    } else if (strcmp(path, "/api/greylist") == 0 || strcmp(path, "/api/blocks") == 0) {
        http_store_listing(r, path + 5);
    } else if (strcmp(path, "/api/flood") == 0) {
        json_init(&j);
        if (adm_flood_json(adm_cfg(&r->a->env), r->a->env.store, &j) < 0)
            http_error(r, 500, "cannot read the store");
        else
            http_json(r, 200, &j);
        json_free(&j);
    } else if (strcmp(path, "/api/users") == 0) {
        json_init(&j);
        if (adm_users_json(&r->a->env, &j) < 0)
            http_error(r, 500, "cannot read the store");
        else
            http_json(r, 200, &j);
        json_free(&j);
    } else if (strcmp(path, "/api/status") == 0) {
        json_init(&j);
        adm_status_json(&r->a->env, &j);
        http_json(r, 200, &j);
        json_free(&j);
    } else {
        return -1;
    }
    return 0;
}

/* api_count - {"ok":true,"count":n} */
static void api_count(struct http_req *r, long long n)
{
    struct json j;

    json_init(&j);
    json_obj_begin(&j);
    json_key(&j, "ok");
    json_bool(&j, 1);
    json_kint(&j, "count", n);
    json_obj_end(&j);
    http_json(r, 200, &j);
    json_free(&j);
}

/* api_queue_action - POST /api/queue/{hold,release,delete} with a selector */
static void api_queue_action(struct http_req *r, enum adm_qaction a)
{
    static const char *const names[] = {"hold", "release", "delete"};
    struct adm_select sel;
    int n;

    if (api_selector(r, &sel) < 0) {
        http_error(r, 400, "say which: id=, sender=, domain= or all=1");
        return;
    }
    n = adm_queue_act(&r->a->env, a, &sel);
    if (n < 0) {
        http_error(r, errno == ENOENT ? 404 : 500,
                   errno == ENOENT ? "no such message" : strerror(errno));
        return;
    }
    log_info("event=admin action=%s via=http count=%d", names[a], n);
    api_count(r, n);
}

/* api_store_action - greylist allow/remove, blocks clear */
static void api_store_action(struct http_req *r, const char *what)
{
    const char *net = http_param(r, "network"), *s = http_param(r, "sender"),
               *rc = http_param(r, "recipient"), *client = http_param(r, "client");
    char err[128] = "";
    int n;

    if (strcmp(what, "blocks/clear") == 0)
        n = client ? adm_blocks_clear(&r->a->env, client, err, sizeof(err)) : -1;
    else if (!net || (!s) != (!rc))
        n = -1;
    else if (strcmp(what, "greylist/allow") == 0)
        n = adm_greylist_allow(&r->a->env, net, s, rc, err, sizeof(err)) == 0 ? 1 : -1;
    else
        n = adm_greylist_remove(&r->a->env, net, s, rc, err, sizeof(err));
    if (n < 0)
        http_error(r, 400, err[0] ? err : "missing parameters");
    else
        api_count(r, n);
}

/* api_user_action - POST /api/users/{suspend,resume} with login= */
static void api_user_action(struct http_req *r, int suspend)
{
    const char *login = http_param(r, "login");
    char err[128] = "missing login";

    if (!login || adm_user_set(&r->a->env, login, suspend, err, sizeof(err)) < 0)
        http_error(r, 400, err);
    else
        api_count(r, 1);
}

/* api_quarantine_action - POST /api/quarantine/{release,delete} with id= */
static void api_quarantine_action(struct http_req *r, int release)
{
    const char *id = http_param(r, "id");

    if (!id) {
        http_error(r, 400, "missing id");
    } else if (adm_quarantine_act(&r->a->env, release, id, "http") < 0) {
        http_error(r, errno == ENOENT ? 404 : 500,
                   errno == ENOENT ? "no such message in quarantine" : strerror(errno));
    } else {
        api_count(r, 1);
    }
}

/* api_list_action - POST /api/lists/add (user=, list=, sender=) and /api/lists/remove */
static void api_list_action(struct http_req *r, int add)
{
    const char *user = http_param(r, "user"), *list = http_param(r, "list"),
               *sender = http_param(r, "sender");
    char err[128] = "missing user, list or sender";
    int n = -1;

    if (user && sender && add && list)
        n = adm_userlist_add(&r->a->env, user, list, sender, err, sizeof(err)) == 0 ? 1 : -1;
    else if (user && sender && !add)
        n = adm_userlist_remove(&r->a->env, user, sender, err, sizeof(err));
    if (n < 0)
        http_error(r, 400, err);
    else
        api_count(r, n);
}

int http_api_post(struct http_req *r, const char *path)
{
    if (strcmp(path, "/api/queue/flush") == 0) {
        unsigned n = queue_flush(r->a->env.queue);
        log_info("event=flush messages=%u via=http", n);
        api_count(r, n);
    } else if (strcmp(path, "/api/queue/hold") == 0) {
        api_queue_action(r, ADM_HOLD);
    } else if (strcmp(path, "/api/queue/release") == 0) {
        api_queue_action(r, ADM_RELEASE);
    } else if (strcmp(path, "/api/queue/delete") == 0) {
        api_queue_action(r, ADM_DELETE);
    } else if (strcmp(path, "/api/quarantine/release") == 0 ||
               strcmp(path, "/api/quarantine/delete") == 0) {
        api_quarantine_action(r, path[16] == 'r');
    } else if (strcmp(path, "/api/lists/add") == 0 || strcmp(path, "/api/lists/remove") == 0) {
        api_list_action(r, path[11] == 'a');
    } else if (strcmp(path, "/api/greylist/allow") == 0 ||
               strcmp(path, "/api/greylist/remove") == 0 ||
               strcmp(path, "/api/blocks/clear") == 0) {
        api_store_action(r, path + 5);
    } else if (strcmp(path, "/api/users/suspend") == 0 || strcmp(path, "/api/users/resume") == 0) {
        api_user_action(r, path[11] == 's');
    } else if (strcmp(path, "/api/reload") == 0 && r->a->env.reload) {
        r->a->env.reload(r->a->env.reload_arg);
        api_count(r, 1);
    } else {
        return -1;
    }
    return 0;
}
