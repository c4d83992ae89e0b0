/*
 * adm.h - what the operator looks at and acts on, produced once for both
 * front ends: the control socket (admin/control.c, for mxgatectl) and the
 * HTTP admin listener (admin/http*.c). Listings read the spool and the store
 * synchronously (LMDB reads are local and short), so mxgatectl runs the same
 * functions on its read-only handles without a daemon; actions that change
 * state need the daemon's queue and store (struct adm_env).
 *
 * Every string that came from outside (addresses, replies, store keys) is
 * kept as it is here; the JSON writer escapes it, mxgatectl's text output
 * escapes it for the terminal.
 */
#ifndef MX_ADMIN_ADM_H
#define MX_ADMIN_ADM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "queue/spool.h"

struct config;
struct event_base;
struct json;
struct queue;
struct store;

/* The daemon's parts the admin front ends use (main.c fills it). */
struct adm_env {
    struct event_base *base;
    /* the daemon's current configuration: a reload replaces *cfg (and frees the old
     * one once its sessions end), so read it through adm_cfg() each time */
    const struct config *const *cfg;
    struct queue *queue;
    struct spool *spool;
    struct store *store;
    time_t started;
    const unsigned *sessions; /* the server's open sessions */
    /* reload - what SIGHUP does (main.c's); NULL: not offered */
    void (*reload)(void *arg);
    void *reload_arg;
};

/* adm_cfg - the configuration in force now */
static inline const struct config *adm_cfg(const struct adm_env *env)
{
    return *env->cfg;
}

/* ---- statistics (adm_stats.c) ---- */
#define ADM_TABLE_MAX 128
struct adm_table {
    time_t from, to;
    size_t n;
    char name[ADM_TABLE_MAX][80];
    int64_t value[ADM_TABLE_MAX];
};
/* adm_table_read - sum the statistics of [from, to) from st. 0 or -1 */
int adm_table_read(struct store *st, time_t from, time_t to, struct adm_table *t);
int64_t adm_table_get(const struct adm_table *t, const char *name);
/* adm_table_json - {"from","to","connections","accepted","queue_corrupt","refused",
 * "mechanisms":[{"name","stopped","percent"}],"verdicts":[{"name","count"}]} */
void adm_table_json(const struct adm_table *t, struct json *j);
/* adm_series_json - refusals by mechanism per hour of [from, to):
 * {"from","to","hours":[{"t","connections","stopped":{mechanism: n}}]}. 0 or -1 */
int adm_series_json(struct store *st, time_t from, time_t to, struct json *j);
/* adm_parse_time - "YYYY-MM-DD", "YYYY-MM-DDTHH" (UTC), "today", "all", or unix seconds;
 * is_end: the end of that period. 0 or -1 */
int adm_parse_time(const char *s, int is_end, time_t *t);
/* adm_time - ISO 8601 UTC into dst */
const char *adm_time(time_t t, char *dst, size_t len);

/* ---- the queue (adm_queue.c) ---- */
struct adm_msg {
    struct spool_envelope env;
    uint64_t size;
    unsigned pending, attempts;
    int held;
};
struct adm_queue {
    struct adm_msg *msg;
    size_t n, cap;
    size_t corrupt; /* files that failed to load (left to the daemon) */
};
/* What a queue action applies to: one id, a sender, a recipient domain, or all. */
enum adm_sel_kind { ADM_SEL_ID, ADM_SEL_SENDER, ADM_SEL_DOMAIN, ADM_SEL_ALL };
struct adm_select {
    enum adm_sel_kind kind;
    const char *arg; /* id, address or domain (compared case-insensitively) */
};
/* adm_select_parse - "ID", "all", "sender ADDR", "domain DOMAIN" as argv; 0 or -1 */
int adm_select_parse(int argc, char **argv, struct adm_select *sel);
/* adm_queue_load - every queued message matching sel (NULL: all); 0 or -1 with errno */
int adm_queue_load(struct spool *sp, const struct adm_select *sel, struct adm_queue *q);
/* adm_queue_sort - by "age" (oldest first, the default), "size", "sender", "recipients",
 * "attempts" (largest first); -1 for an unknown key */
int adm_queue_sort(struct adm_queue *q, const char *key);
void adm_queue_free(struct adm_queue *q);
/* adm_queue_json - {"messages":[...],"total":{"messages","recipients","size","held"},
 * "oldest", "domains":[{"domain","recipients","messages"}]} */
void adm_queue_json(const struct adm_queue *q, struct json *j);
/* adm_queue_json_with - adm_queue_json with more keys written by extra(j, arg) at the end
 * ("destinations" from the daemon) */
void adm_queue_json_with(const struct adm_queue *q, struct json *j,
                         void (*extra)(struct json *j, void *arg), void *arg);
/* adm_msg_json - one message with its recipients' state */
void adm_msg_json(const struct adm_msg *m, struct json *j);

/* ---- the scheduler's destinations (adm_dests.c) ---- */
struct queue_dest_info;
/* adm_dest_state - "unreachable", "backoff", "busy" (at its concurrency) or "ready" */
const char *adm_dest_state(const struct queue_dest_info *in, time_t now);
/* adm_dest_json - {"destination","kind":"domain"|"nexthop","state","active","window",
 * "concurrency","rate","per_connection","backoff_until","unreachable_since","next_probe",
 * "messages","ready","deferred","parked","delivering"} */
void adm_dest_json(const struct queue_dest_info *in, struct json *j);
/* adm_dests_json - the daemon's destinations as a JSON array */
void adm_dests_json(const struct adm_env *env, struct json *j);
/* adm_dests_lines - the same, one "dest ..." line each (the control socket's form) */
void adm_dests_lines(const struct adm_env *env, FILE *f);
/* adm_dest_parse - one such line back (in->name points into name); 0 or -1 */
int adm_dest_parse(const char *line, struct queue_dest_info *in, char *name, size_t namelen);

enum adm_qaction { ADM_HOLD, ADM_RELEASE, ADM_DELETE };
/* adm_queue_act - hold, release or delete what sel names, in the daemon; the count
 * done, or -1 (ENOENT: an id that is not queued) */
int adm_queue_act(const struct adm_env *env, enum adm_qaction a, const struct adm_select *sel);

/* ---- the quarantine (adm_quarantine.c; queue/quarantine.h) ---- */
struct quarantine_msg;
/* adm_quarantine_msg_json - {"id","arrival","kept","reason","size","sender","client_ip",
 * "client_name","helo","recipients":[...]} */
void adm_quarantine_msg_json(const struct quarantine_msg *m, struct json *j);
/* adm_quarantine_json - {"messages":[...],"total"}. 0 or -1 */
int adm_quarantine_json(struct spool *sp, struct json *j);
/* adm_quarantine_act - release (into the queue, delivered once) or delete one kept
 * message, logged with via; 0, or -1 (ENOENT: not in quarantine) */
int adm_quarantine_act(const struct adm_env *env, int release, const char *id, const char *via);

/* ---- per-user allow and deny lists in the store (adm_userlists.c; policy/userlists.h) ---- */
/* adm_userlist_add - USER (user@dom or @dom) always accepts (kind "allow") or refuses
 * ("deny") PATTERN (an address or a domain); 0, or -1 with err */
int adm_userlist_add(const struct adm_env *env, const char *user, const char *kind,
                     const char *pattern, char *err, size_t errlen);
/* adm_userlist_remove - forget USER's entry for PATTERN; 1 removed, 0 none, -1 with err */
int adm_userlist_remove(const struct adm_env *env, const char *user, const char *pattern, char *err,
                        size_t errlen);
/* adm_userlist_each - fn for every store entry of user (NULL: every user); count or -1 */
int adm_userlist_each(struct store *st, const char *user,
                      void (*fn)(const char *rcpt, const char *kind, const char *pattern,
                                 void *arg),
                      void *arg);
/* adm_userlist_json - {"entries":[{"recipient","list","sender"}]}. 0 or -1 */
int adm_userlist_json(struct store *st, const char *user, struct json *j);

/* ---- store state: greylist, blocks, bounce flood (adm_state.c) ---- */
struct adm_grey {
    int network_only;    /* an auto-whitelist record (gl:c): no sender, recipient, state */
    const char *network; /* "192.0.2.0/24" */
    const char *sender, *recipient;
    int passed;       /* the triplet passed; 0: waiting for the retry */
    long long since;  /* first attempt or last pass (unix time) */
    long long passes; /* network_only: the counted passes */
};
/* adm_greylist_each - fn for every triplet, then every trusted network. 0 or -1 */
int adm_greylist_each(struct store *st, void (*fn)(const struct adm_grey *g, void *arg), void *arg);
/* adm_grey_json - {"network","sender","recipient","state","since"} or {"network","passes","since"}
 */
void adm_grey_json(const struct adm_grey *g, struct json *j);
/* adm_greylist_json - {"triplets":[...],"networks":[...],"truncated":bool}, at most
 * max of each (0: all; the daemon bounds it: a scan runs on its loop). 0 or -1 */
int adm_greylist_json(struct store *st, unsigned max, struct json *j);

struct adm_block {
    const char *kind;       /* "harvest", or the rate-limit kind ("connections", ...) */
    const char *client;     /* the address or network */
    long long count, limit; /* rate limits: this window's count and the limit (0: none) */
    int over;               /* blocked: a harvest block, or a rate-limit count over its limit */
};
/* The ratelimit section's window and limits, copied (a listing may outlive a reload). */
struct adm_limits {
    long interval; /* seconds of a window; 0: no ratelimit section */
    long limit[3]; /* connections, messages, recipients */
};
/* adm_limits_read - cfg's ratelimit window and limits */
void adm_limits_read(const struct config *cfg, struct adm_limits *l);
/* adm_blocks_each - fn for every harvest block, then every rate-limit counter of the
 * current window; cfg gives the limits. 0 or -1 */
int adm_blocks_each(const struct config *cfg, struct store *st,
                    void (*fn)(const struct adm_block *b, void *arg), void *arg);
/* adm_blocks_json - {"harvest":[{"client"}],"ratelimit":[{"kind","network","count",
 * "limit","over"}],"truncated":bool}, at most max of each (0: all) */
int adm_blocks_json(const struct adm_limits *l, struct store *st, unsigned max, struct json *j);

struct adm_flood {
    char state[8]; /* "normal", "flood" or "unknown" (a bad record) */
    long long since;
    long interval;
    long long last, current; /* bounces in the last complete window and in this one */
};
/* adm_flood_get - the bounce-flood state mirrored in the store. 0 or -1 */
int adm_flood_get(const struct config *cfg, struct store *st, struct adm_flood *f);
/* adm_flood_json - {"state","since","interval","last","current"}. 0 or -1 */
int adm_flood_json(const struct config *cfg, struct store *st, struct json *j);
/* adm_greylist_allow - let NET (an address or network; masked as the greylist section
 * says) pass: its auto-whitelist record, or the triplet with sender and rcpt. 0 or -1 */
int adm_greylist_allow(const struct adm_env *env, const char *net, const char *sender,
                       const char *rcpt, char *err, size_t errlen);
/* adm_greylist_remove - forget NET's records (or its one triplet); the count or -1 */
int adm_greylist_remove(const struct adm_env *env, const char *net, const char *sender,
                        const char *rcpt, char *err, size_t errlen);
/* adm_blocks_clear - lift the harvest block and rate-limit counters of an address or
 * network ("all": every one); the count removed, or -1 */
int adm_blocks_clear(const struct adm_env *env, const char *who, char *err, size_t errlen);

/* ---- submission accounts (adm_users.c; the records are policy/quota.h's) ---- */
/* adm_login_decode - a percent-encoded login (as mxgatectl sends it) into dst; 0 or -1 */
int adm_login_decode(const char *s, char *dst, size_t len);
/* adm_user_set - suspend (1) or resume (0) login; 0, or -1 with err */
int adm_user_set(const struct adm_env *env, const char *login, int suspend, char *err,
                 size_t errlen);
/* adm_users_json - quota_users_json of the daemon's store at clock_now(). 0 or -1 */
int adm_users_json(const struct adm_env *env, struct json *j);

/* ---- status (adm_status.c) ---- */
/* adm_status_json - {"version","started","uptime","listeners":[{"name","address"}],
 * "sessions","queue":{...},"store":{"uri","ok"},"admin"} */
void adm_status_json(const struct adm_env *env, struct json *j);
/* adm_status_text - the same as lines "what:  value" for mxgatectl status */
void adm_status_text(const struct adm_env *env, FILE *out);

#endif
