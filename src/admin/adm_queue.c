/* adm_queue.c - the queue as the operator sees it: listing, selection, hold/release/delete */
#include "admin/adm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/json.h"
#include "core/xmalloc.h"
#include "queue/hold.h"
#include "queue/queue.h"

#define ADM_DOMAINS_MAX 1000 /* destinations listed; the rest are summed under "" */

int adm_select_parse(int argc, char **argv, struct adm_select *sel)
{
    if (argc == 1 && strcmp(argv[0], "all") == 0)
        *sel = (struct adm_select){ADM_SEL_ALL, NULL};
    else if (argc == 1 && spool_valid_id(argv[0]))
        *sel = (struct adm_select){ADM_SEL_ID, argv[0]};
    else if (argc == 2 && strcmp(argv[0], "sender") == 0)
        *sel = (struct adm_select){ADM_SEL_SENDER, argv[1]};
    else if (argc == 2 && strcmp(argv[0], "domain") == 0 && argv[1][0])
        *sel = (struct adm_select){ADM_SEL_DOMAIN, argv[1]};
    else
        return -1;
    return 0;
}

/* rcpt_domain - what follows the last '@' ("" for none) */
static const char *rcpt_domain(const char *addr)
{
    const char *at = strrchr(addr, '@');

    return at ? at + 1 : "";
}

/* adm_matches - does the loaded message fall under sel (a domain: any pending recipient) */
static int adm_matches(const struct spool_envelope *env, const struct adm_select *sel)
{
    if (!sel || sel->kind == ADM_SEL_ALL || sel->kind == ADM_SEL_ID)
        return 1;
    if (sel->kind == ADM_SEL_SENDER)
        return strcasecmp(env->sender, sel->arg) == 0;
    for (size_t i = 0; i < env->nrcpt; i++)
        if (env->rcpt[i].state == SPOOL_RCPT_PENDING &&
            strcasecmp(rcpt_domain(env->rcpt[i].addr), sel->arg) == 0)
            return 1;
    return 0;
}

struct load_ctx {
    struct spool *sp;
    const struct adm_select *sel;
    struct adm_queue *q;
};

/* load_one - spool_list callback: load, filter, keep */
static void load_one(const char *id, void *arg)
{
    struct load_ctx *lc = arg;
    struct adm_msg m = {0};
    off_t off;

    if (spool_load(lc->sp, id, &m.env, &off, &m.size) < 0) {
        if (errno == EBADMSG)
            lc->q->corrupt++;
        return; /* or delivered meanwhile */
    }
    if (!adm_matches(&m.env, lc->sel)) {
        spool_envelope_free(&m.env);
        return;
    }
    for (size_t i = 0; i < m.env.nrcpt; i++) {
        m.pending += m.env.rcpt[i].state == SPOOL_RCPT_PENDING;
        if (m.env.rcpt[i].attempts > m.attempts)
            m.attempts = m.env.rcpt[i].attempts;
    }
    m.held = hold_is(lc->sp, id);
    if (lc->q->n == lc->q->cap) {
        lc->q->cap = lc->q->cap ? 2 * lc->q->cap : 64;
        lc->q->msg = xreallocarray(lc->q->msg, lc->q->cap, sizeof(*lc->q->msg));
    }
    lc->q->msg[lc->q->n++] = m;
}

int adm_queue_load(struct spool *sp, const struct adm_select *sel, struct adm_queue *q)
{
    struct load_ctx lc = {sp, sel, q};

    memset(q, 0, sizeof(*q));
    if (sel && sel->kind == ADM_SEL_ID) {
        load_one(sel->arg, &lc);
        return 0;
    }
    if (spool_list(sp, load_one, &lc) < 0)
        return -1;
    adm_queue_sort(q, "age");
    return 0;
}

void adm_queue_free(struct adm_queue *q)
{
    for (size_t i = 0; i < q->n; i++)
        spool_envelope_free(&q->msg[i].env);
    free(q->msg);
    memset(q, 0, sizeof(*q));
}

/* Orders: ids are time-ordered, so age is the id; the others largest first, then age. */
static int by_age(const void *a, const void *b)
{
    return strcmp(((const struct adm_msg *)a)->env.id, ((const struct adm_msg *)b)->env.id);
}

static int by_size(const void *a, const void *b)
{
    const struct adm_msg *x = a, *y = b;

    return x->size != y->size ? (x->size < y->size ? 1 : -1) : by_age(a, b);
}

static int by_sender(const void *a, const void *b)
{
    int c = strcasecmp(((const struct adm_msg *)a)->env.sender,
                       ((const struct adm_msg *)b)->env.sender);

    return c ? c : by_age(a, b);
}

static int by_rcpts(const void *a, const void *b)
{
    const struct adm_msg *x = a, *y = b;

    return x->pending != y->pending ? (x->pending < y->pending ? 1 : -1) : by_age(a, b);
}

static int by_attempts(const void *a, const void *b)
{
    const struct adm_msg *x = a, *y = b;

    return x->attempts != y->attempts ? (x->attempts < y->attempts ? 1 : -1) : by_age(a, b);
}

int adm_queue_sort(struct adm_queue *q, const char *key)
{
    static const struct {
        const char *name;
        int (*cmp)(const void *, const void *);
    } orders[] = {{"age", by_age},
                  {"size", by_size},
                  {"sender", by_sender},
                  {"recipients", by_rcpts},
                  {"attempts", by_attempts}};

    for (size_t i = 0; i < sizeof(orders) / sizeof(orders[0]); i++)
        if (strcmp(key, orders[i].name) == 0) {
            if (q->n > 1)
                qsort(q->msg, q->n, sizeof(*q->msg), orders[i].cmp);
            return 0;
        }
    return -1;
}

void adm_msg_json(const struct adm_msg *m, struct json *j)
{
    static const char *const state[] = {"pending", "delivered", "bounced"};
    char when[32];

    json_obj_begin(j);
    json_kstr(j, "id", m->env.id);
    json_kstr(j, "arrival", adm_time(m->env.arrival, when, sizeof(when)));
    json_kint(j, "size", (long long)m->size);
    json_kstr(j, "sender", m->env.sender);
    json_kstr(j, "client_ip", m->env.client_ip);
    json_kstr(j, "client_name", m->env.client_name);
    json_kstr(j, "helo", m->env.helo);
    json_key(j, "held");
    json_bool(j, m->held);
    json_kint(j, "pending", m->pending);
    json_kint(j, "attempts", m->attempts);
    json_key(j, "recipients");
    json_arr_begin(j);
    for (size_t i = 0; i < m->env.nrcpt; i++) {
        const struct spool_rcpt *r = &m->env.rcpt[i];
        json_obj_begin(j);
        json_kstr(j, "address", r->addr);
        json_kstr(j, "state", state[r->state]);
        json_kint(j, "attempts", r->attempts);
        json_kstr(j, "last", r->last_text);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_obj_end(j);
}

struct dest {
    const char *domain;
    unsigned rcpts, msgs;
};

/* dest_add - count a message's pending recipients per destination domain */
static size_t dest_add(struct dest *d, size_t n, const struct adm_msg *m)
{
    for (size_t i = 0; i < m->env.nrcpt; i++) {
        const char *dom = rcpt_domain(m->env.rcpt[i].addr);
        size_t k, first = 1;
        if (m->env.rcpt[i].state != SPOOL_RCPT_PENDING)
            continue;
        for (k = 0; k < n && strcasecmp(d[k].domain, dom) != 0; k++)
            ;
        if (k == n && n == ADM_DOMAINS_MAX)
            continue;
        if (k == n)
            d[n++] = (struct dest){dom, 0, 0};
        for (size_t p = 0; p < i; p++) /* this message already counted for dom */
            if (m->env.rcpt[p].state == SPOOL_RCPT_PENDING &&
                strcasecmp(rcpt_domain(m->env.rcpt[p].addr), dom) == 0)
                first = 0;
        d[k].rcpts++;
        d[k].msgs += (unsigned)first;
    }
    return n;
}

/* queue_domains_json - the queue by destination */
static void queue_domains_json(const struct adm_queue *q, struct json *j)
{
    struct dest *d = xcalloc(ADM_DOMAINS_MAX, sizeof(*d));
    size_t n = 0;

    for (size_t i = 0; i < q->n; i++)
        n = dest_add(d, n, &q->msg[i]);
    json_key(j, "domains");
    json_arr_begin(j);
    for (size_t k = 0; k < n; k++) {
        json_obj_begin(j);
        json_kstr(j, "domain", d[k].domain);
        json_kint(j, "recipients", d[k].rcpts);
        json_kint(j, "messages", d[k].msgs);
        json_obj_end(j);
    }
    json_arr_end(j);
    free(d);
}

void adm_queue_json(const struct adm_queue *q, struct json *j)
{
    adm_queue_json_with(q, j, NULL, NULL);
}

void adm_queue_json_with(const struct adm_queue *q, struct json *j,
                         void (*extra)(struct json *j, void *arg), void *arg)
{
    unsigned long long size = 0, rcpts = 0, held = 0;
    time_t oldest = 0;
    char when[32];

    json_obj_begin(j);
    json_key(j, "messages");
    json_arr_begin(j);
    for (size_t i = 0; i < q->n; i++) {
        adm_msg_json(&q->msg[i], j);
        size += q->msg[i].size;
        rcpts += q->msg[i].pending;
        held += (unsigned)q->msg[i].held;
        if (!oldest || q->msg[i].env.arrival < oldest)
            oldest = q->msg[i].env.arrival;
    }
    json_arr_end(j);
    json_key(j, "total");
    json_obj_begin(j);
    json_kint(j, "messages", (long long)q->n);
    json_kint(j, "recipients", (long long)rcpts);
    json_kint(j, "size", (long long)size);
    json_kint(j, "held", (long long)held);
    json_kint(j, "corrupt", (long long)q->corrupt);
    json_key(j, "oldest");
    if (oldest)
        json_str(j, adm_time(oldest, when, sizeof(when)));
    else
        json_null(j);
    json_obj_end(j);
    queue_domains_json(q, j);
    if (extra)
        extra(j, arg);
    json_obj_end(j);
}

/* act_one - one id */
static int act_one(const struct adm_env *env, enum adm_qaction a, const char *id)
{
    switch (a) {
    case ADM_HOLD:
        return queue_hold(env->queue, id);
    case ADM_RELEASE:
        return queue_release(env->queue, id);
    default:
        return queue_delete(env->queue, id) == 0 ? 0 : (errno = ENOENT, -1);
    }
}

int adm_queue_act(const struct adm_env *env, enum adm_qaction a, const struct adm_select *sel)
{
    struct adm_queue q;
    int n = 0;

    if (sel->kind == ADM_SEL_ID)
        return act_one(env, a, sel->arg) == 0 ? 1 : -1;
    if (adm_queue_load(env->spool, sel, &q) < 0)
        return -1;
    for (size_t i = 0; i < q.n; i++) {
        if ((a == ADM_RELEASE && !q.msg[i].held) || (a == ADM_HOLD && q.msg[i].held))
            continue; /* counted are the messages the action changed */
        if (act_one(env, a, q.msg[i].env.id) == 0)
            n++;
    }
    adm_queue_free(&q);
    return n;
}
