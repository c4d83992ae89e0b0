/* adm_quarantine.c - the quarantine as the operator sees it: listing, release, delete */
#include "admin/adm.h"

#include <errno.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "queue/quarantine.h"
#include "queue/queue.h"

void adm_quarantine_msg_json(const struct quarantine_msg *m, struct json *j)
{
    char when[32];

    json_obj_begin(j);
    json_kstr(j, "id", m->env.id);
    json_kstr(j, "arrival", adm_time(m->env.arrival, when, sizeof(when)));
    json_key(j, "kept");
    if (m->when)
        json_str(j, adm_time(m->when, when, sizeof(when)));
    else
        json_null(j);
    json_kstr(j, "reason", m->why);
    json_kint(j, "size", (long long)m->size);
    json_kstr(j, "sender", m->env.sender);
    json_kstr(j, "client_ip", m->env.client_ip);
    json_kstr(j, "client_name", m->env.client_name);
    json_kstr(j, "helo", m->env.helo);
    json_key(j, "recipients");
    json_arr_begin(j);
    for (size_t i = 0; i < m->env.nrcpt; i++)
        json_str(j, m->env.rcpt[i].addr);
    json_arr_end(j);
    json_obj_end(j);
}

static void list_json_one(const struct quarantine_msg *m, void *arg)
{
    adm_quarantine_msg_json(m, arg);
}

int adm_quarantine_json(struct spool *sp, struct json *j)
{
    int n;

    json_obj_begin(j);
    json_key(j, "messages");
    json_arr_begin(j);
    n = quarantine_list(sp, list_json_one, j);
    json_arr_end(j);
    json_kint(j, "total", n < 0 ? 0 : n);
    json_obj_end(j);
    return n < 0 ? -1 : 0;
}

int adm_quarantine_act(const struct adm_env *env, int release, const char *id, const char *via)
{
    if (!spool_valid_id(id))
        return errno = ENOENT, -1;
    if (!release) {
        if (quarantine_delete(env->spool, id) < 0)
            return -1;
        log_info("event=quarantine action=delete id=%s via=%s", id, via);
        return 0;
    }
    /* the rename is the one step that decides: a second release finds nothing */
    if (quarantine_release(env->spool, id) < 0)
        return -1;
    log_info("event=quarantine action=release id=%s via=%s", id, via);
    if (env->queue)
        queue_add(env->queue, id);
    return 0;
}
