/*
 * policy.h - the policy pipeline: checks hang on SMTP stages, each gives
 * one verdict (possibly asynchronously), and every verdict names its check.
 *
 * A check is a struct policy_check_ops in the registry (policy/registry.c).
 * Listeners name the checks they run, in order ("checks = {...}"). For a
 * stage, the pipeline runs the listener's checks that hook that stage one
 * after the other: DUNNO and SCORE go on, OK stops the stage (trusted),
 * TEMPFAIL and REJECT stop it with that answer. The session decides where
 * an answer is given (connect and HELO verdicts are held until RCPT, as
 * Postfix's smtpd_delay_reject, so the log shows sender and recipient; a
 * 421 is given at once and closes the session). The RCPT stage answers such
 * a held refusal (policy_client.held) for every recipient but two kinds:
 * postmaster@ of our domains (RFC 5321 4.5.1) and recipients a passes_held
 * check allows (abuse@ in the access list). Those are judged by the RCPT
 * checks as for a client nothing refused, so a harvest block, a rate
 * limit or an unknown user still applies to them.
 */
#ifndef MX_POLICY_POLICY_H
#define MX_POLICY_POLICY_H

#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct config;
struct config_section;
struct routes;
struct dns;
struct store;
struct stats;

enum policy_stage {
    POLICY_CONNECT, /* after FCrDNS, before the greeting */
    POLICY_HELO,
    POLICY_MAIL,
    POLICY_RCPT,
    POLICY_DATA, /* header and body available (later issues) */
    POLICY_END,  /* after the final dot, before the reply (later issues) */
    POLICY_NSTAGES
};

#define POLICY_STAGE(s) (1u << (s))

enum policy_action { POLICY_DUNNO, POLICY_OK, POLICY_TEMPFAIL, POLICY_REJECT, POLICY_SCORE };

struct policy_verdict {
    enum policy_action action;
    int code;          /* TEMPFAIL 4xx / REJECT 5xx; 421 closes the session */
    char status[8];    /* enhanced status, e.g. "4.7.1" */
    char text[256];    /* reply text after code and status */
    int score;         /* SCORE */
    const char *check; /* set by the pipeline: the check that gave it */
    char reason[192];  /* for the log: the rule, zone or counter that decided */
};

/* rDNS outcome of the client, as FCrDNS found it */
enum policy_rdns { RDNS_CONFIRMED, RDNS_NONE, RDNS_UNCONFIRMED, RDNS_TEMPFAIL, RDNS_UNCHECKED };

/* What checks see of a session. Strings stay valid during the stage. */
struct policy_client {
    struct sockaddr_storage addr;
    char ip[64];
    const char *listener;
    enum policy_rdns rdns;
    const char *rdns_name; /* FCrDNS-confirmed name, or NULL */
    const char *ptr_name;  /* first PTR name even when not confirmed, or NULL */
    const char *helo;      /* HELO stage on */
    const char *sender;    /* MAIL stage on; "" for <> */
    const char *rcpt;      /* RCPT stage: the recipient being judged */
    /* RCPT stage: the session's held connect/HELO refusal, or NULL. The pipeline
     * answers it unless the recipient passes it (policy_start). */
    const struct policy_verdict *held;
    unsigned nrcpt;     /* recipients accepted so far in this transaction */
    unsigned nmessages; /* messages accepted so far in this session */
    /* marks that checks leave for later checks of the same session */
    int allowlisted; /* access allowed the client: connection checks are skipped */
    int suspicious;  /* s25r flagged the client (greylist only_suspicious) */
    char suspicious_why[96];
    int score;
    /* rewrites a check may ask for; malloc'd, the session takes (and frees) them */
    char *rcpt_rewrite;   /* RCPT stage: deliver to this address instead (BATV tag stripped) */
    char *sender_rewrite; /* MAIL stage: use this envelope sender (BATV signing) */
    /* header fields a check of the MAIL stage adds on top of the stored message
     * (e.g. Received-SPF), complete lines with CRLF; malloc'd, the session takes them */
    char *add_headers;
};

/* Daemon-wide services a check may use. */
struct policy_env {
    struct event_base *base;
    const struct config *cfg;
    struct dns *dns;     /* NULL when no resolver is configured */
    struct store *store; /* NULL when no state store */
    struct stats *stats;
    struct pool *pool;           /* blocking work (route names resolved); NULL in some tests */
    const struct routes *routes; /* the route table (the recipients check probes through it) */
    /* checking - init only reads and checks the configuration and its files (mxgated -n
     * and the start-up check, policy_validate): there is no store and no resolver yet */
    int checking;
};

struct policy_job; /* one check's turn in one stage of one session */

struct policy_check_ops {
    const char *name; /* the mechanism: config name, log name, statistics name */
    unsigned stages;  /* POLICY_STAGE() bits */
    /* init - read the configuration; *state is passed back to run/cancel/reload/free */
    int (*init)(const struct policy_env *env, void **state, char *err, size_t errlen);
    /* run - judge cl at stage; call policy_job_done(job, &v) exactly once, now or later */
    void (*run)(void *state, struct policy_job *job, enum policy_stage stage,
                struct policy_client *cl);
    /* cancel - the session ended while run was pending: drop job-related work, no done */
    void (*cancel)(void *state, struct policy_job *job);
    /* reload - SIGHUP: re-read list and rule files (may be NULL) */
    void (*reload)(void *state);
    void (*free)(void *state);
    /* disconnect - the session of cl ended: drop per-session state, e.g. a
     * concurrency count taken at CONNECT (may be NULL) */
    void (*disconnect)(void *state, struct policy_client *cl);
    /* trusted_too - run even for clients the access list allowed: the check
     * rewrites addresses (BATV) or is the allow list itself */
    int trusted_too;
    /* passes_held - at RCPT, an OK from this check lets the recipient past a
     * held connect/HELO refusal (the access list's rcpt allow) */
    int passes_held;
    /* section - the check's configuration section (options, defaults, bounds), or NULL;
     * config_load assembles it with the others (policy_section lists them) */
    const struct config_section *section;
};

/* policy_job_done - the check's verdict; may be called from inside run or later */
void policy_job_done(struct policy_job *job, const struct policy_verdict *v);
/* policy_job_set_data / policy_job_data - per-job storage for an asynchronous check */
void policy_job_set_data(struct policy_job *job, void *data);
void *policy_job_data(const struct policy_job *job);

/* policy_client_add_header - append "name: value" CRLF to cl->add_headers. The
 * value must already be one line of printable text; a field that would take the
 * total over POLICY_HEADERS_MAX octets is dropped (0 added, -1 dropped). */
#define POLICY_HEADERS_MAX 8192
int policy_client_add_header(struct policy_client *cl, const char *name, const char *value);

/* Verdict helpers for checks. */
void policy_verdict_dunno(struct policy_verdict *v);
void policy_verdict_set(struct policy_verdict *v, enum policy_action a, int code,
                        const char *status, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* ---- the pipeline, for the session ---- */

struct policy;
struct policy_chain;
struct policy_run;

/* policy_new - instantiate every check named by any listener; NULL with err (unknown check...) */
struct policy *policy_new(const struct policy_env *env, char *err, size_t errlen);
void policy_free(struct policy *p);
void policy_reload(struct policy *p);

/* policy_chain_for - the checks of a listener, in its order (NULL list = none) */
const struct policy_chain *policy_chain_for(const struct policy *p, const char *listener);

/* policy_has_stage - does any check of the chain hook stage (skip the run otherwise);
 * RCPT too when any hooks CONNECT or HELO: the RCPT run answers their held refusals */
int policy_has_stage(const struct policy_chain *c, enum policy_stage stage);

typedef void (*policy_done_fn)(void *arg, const struct policy_verdict *v);

/*
 * policy_start - run the chain's checks for stage. done gets the deciding
 * verdict (DUNNO when none decided; SCORE totals in cl->score) exactly
 * once, never from inside this call. At RCPT with cl->held set, done gets
 * *cl->held unless the recipient passes it (see the top of this file).
 * Each non-DUNNO verdict is counted in the statistics under its check's
 * name and logged by the caller.
 */
struct policy_run *policy_start(const struct policy_chain *c, enum policy_stage stage,
                                struct policy_client *cl, policy_done_fn done, void *arg);
/* policy_cancel - the session ends: cancel the pending check; done is not called */
void policy_cancel(struct policy_run *r);
/* policy_disconnect - the session of cl ends (after policy_cancel of any pending run):
 * tell every check of the chain; call it once per session that ran any stage */
void policy_disconnect(const struct policy_chain *c, struct policy_client *cl);

const char *policy_stage_name(enum policy_stage s);
const char *policy_action_name(enum policy_action a);

#endif
