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
    POLICY_DATA, /* reserved (the message is judged at END) */
    POLICY_END,  /* after the final dot, before the reply: the message (policy_msg) */
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

/*
 * What the sender-authentication checks found in the current transaction, for
 * later checks (sender, greylist, dmarc, score) and the Authentication-Results
 * field (RFC 8601). Results are RFC 8601 tokens: "pass", "fail", "softfail",
 * "neutral", "none", "temperror", "permerror", "policy"; "" when the check did
 * not run. The session allocates it (zeroed) at MAIL and frees it with the
 * transaction: it is there for every check from the MAIL stage on, and NULL
 * before (an idle connection does not carry its 4.7 KB). Domains are
 * lower-case A-labels.
 */
#define POLICY_DKIM_MAX 8
#define POLICY_SCORE_TESTS_MAX 512 /* octets of policy_client.score_tests */
struct policy_auth_dkim {
    char result[12];
    char domain[256];  /* d= */
    char selector[64]; /* s= */
    char algo[24];     /* a=, e.g. "rsa-sha256" */
    char b[12];        /* the first 8 characters of b= (header.b, RFC 6008) */
    char reason[96];   /* short, printable: why it failed ("body hash mismatch") */
};
struct policy_auth {
    char spf[12];           /* MAIL stage (spf) */
    int spf_helo;           /* the result is for the HELO identity (smtp.helo) */
    char spf_domain[256];   /* the domain checked: MAIL FROM's, or the HELO name */
    char spf_identity[512]; /* smtp.mailfrom address, or the HELO name */
    struct policy_auth_dkim dkim[POLICY_DKIM_MAX]; /* END stage (dkim), in header order */
    size_t ndkim;
    char dmarc[12];        /* END stage (dmarc) */
    char dmarc_policy[12]; /* the policy applied: "none", "quarantine", "reject" */
    char from_domain[256]; /* END stage: the header From: domain, "" if none or several */
};

/* What checks see of a session. Strings stay valid during the stage. */
struct policy_client {
    struct sockaddr_storage addr;
    char ip[64];
    const char *listener;
    enum policy_rdns rdns;
    const char *rdns_name; /* FCrDNS-confirmed name, or NULL */
    const char *ptr_name;  /* first PTR name even when not confirmed, or NULL */
    const char *helo;      /* HELO stage on */
    const char *login;     /* the SMTP AUTH identity (RFC 4954) once authenticated, else NULL */
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
    /* each SCORE verdict as "check=points", comma-separated (X-Spam-Status tests=,
     * reject log lines); the pipeline appends, the session resets it with score.
     * NULL until the first SCORE verdict: the pipeline then allocates
     * POLICY_SCORE_TESTS_MAX octets (most connections never get one), the
     * session frees it */
    char *score_tests;
    struct policy_auth *auth; /* MAIL stage on; see struct policy_auth */
    /* END stage: the header section as received (CRLF lines, no empty line, not
     * dot-stuffed), at most POLICY_HEADER_MAX octets; header_truncated when longer */
    const char *header;
    size_t header_len;
    int header_truncated;
    struct policy_msg *msg; /* END stage: the checks' per-message data (policy_job_msg) */
    /* rewrites a check may ask for; malloc'd, the session takes (and frees) them */
    char *rcpt_rewrite;   /* RCPT stage: deliver to this address instead (BATV tag stripped) */
    char *sender_rewrite; /* MAIL stage: use this envelope sender (BATV signing) */
    /* header fields a check adds on top of the stored message (Received-SPF at MAIL,
     * X-Spam-Status at END), complete lines with CRLF; malloc'd, the session takes them */
    char *add_headers;
    /* END stage: what becomes of an accepted message instead of delivery. The
     * first check that asks decides (policy_client_quarantine); the session
     * clears both when a transaction starts. quarantine: kept in
     * spool/quarantine/ until an operator releases it ("" = deliver), the text
     * says which check asked and why. discard: accepted and dropped (a milter's
     * discard), logged, never delivered. */
    char quarantine[192];
    int discard;
    /* END stage: the message's queue id (a milter's macro i) */
    const char *queue_id;
    /* END stage: changes to the stored header section and body a check asks for
     * (a milter's change or delete header, replaced body), policy_edit_*; the
     * session applies them before the commit and frees them */
    struct policy_edit *edit;
    /* per-user lists (userlists.c): at RCPT the recipient being judged always
     * accepts the sender; at END every recipient does. A check that is
     * user_allowable (greylist, score) is then not let refuse: the pipeline logs
     * event=allowed_by_user with what it overrode. user_allowed counts the
     * transaction's accepted recipients that had it (the session keeps it). */
    int user_allow;
    unsigned user_allowed;
};

/*
 * An edit of the message, for the session to apply. A field edit names the
 * index-th field called name (1 = the first; case-insensitive) of the header
 * section as the checks saw it (cl->header): value replaces its value (CRLF
 * folds allowed), NULL deletes it; a field that is not there is added at the
 * end. body: the new body (CRLF lines, not dot-stuffed) when body_set.
 */
#define POLICY_EDIT_FIELDS_MAX 256
struct policy_edit_field {
    char *name;
    unsigned index;
    char *value;
};
struct policy_edit {
    struct policy_edit_field *fields;
    size_t nfields;
    char *body;
    size_t body_len;
    int body_set;
    char by[64]; /* the check (and milter) that asked, for the log */
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

/*
 * A check that judges the message text (END stage) has msg ops: while DATA is
 * read the session streams the transaction's text through policy_msg_*, and
 * each such check keeps per-message data (a DKIM body hash) that its END run
 * finds with policy_job_msg(). Calls never block and never fail the session.
 */
struct policy_msg_ops {
    /* begin - a message of cl starts: per-message data, or NULL (nothing to keep) */
    void *(*begin)(void *state, const struct policy_client *cl);
    /* header - the complete header section (as cl->header), once, before any body */
    void (*header)(void *mdata, const char *hdr, size_t len, int truncated);
    /* body - body octets in order: CRLF lines, dot-stuffing removed */
    void (*body)(void *mdata, const char *data, size_t len);
    void (*free)(void *mdata);
};

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
    /* retire - a reload put a newer instance of the check in place: stop what runs on
     * its own (timers, hooks) and leave shared state to the new one; the sessions that
     * started with this instance still finish on it (may be NULL) */
    void (*retire)(void *state);
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
    /* user_allowable - a per-user allow (cl->user_allow) overrides this check's
     * TEMPFAIL and REJECT (greylist, score) */
    int user_allowable;
    /* section - the check's configuration section (options, defaults, bounds), or NULL;
     * config_load assembles it with the others (policy_section lists them) */
    const struct config_section *section;
    /* msg - the check reads the message text as it arrives (NULL: it does not) */
    const struct policy_msg_ops *msg;
};

/* policy_job_done - the check's verdict; may be called from inside run or later */
void policy_job_done(struct policy_job *job, const struct policy_verdict *v);
/* policy_job_set_data / policy_job_data - per-job storage for an asynchronous check */
void policy_job_set_data(struct policy_job *job, void *data);
void *policy_job_data(const struct policy_job *job);
/* policy_job_msg - END stage: what the check's msg->begin returned for this message */
void *policy_job_msg(const struct policy_job *job);

/* policy_client_add_header - append "name: value" CRLF to cl->add_headers. The
 * value must already be one line of printable text; a field that would take the
 * total over POLICY_HEADERS_MAX octets is dropped (0 added, -1 dropped). */
#define POLICY_HEADERS_MAX 8192
int policy_client_add_header(struct policy_client *cl, const char *name, const char *value);

/* policy_client_quarantine - END stage: keep the message in quarantine instead of
 * delivering it; the first request wins, later ones are ignored (returns 0 when
 * this one decided, -1 otherwise). why is printable text for the log and list. */
int policy_client_quarantine(struct policy_client *cl, const char *check, const char *why);

/* policy_edit_field - ask for a field change (value) or removal (NULL); 0, or -1
 * when POLICY_EDIT_FIELDS_MAX are asked for already */
int policy_edit_field(struct policy_client *cl, const char *by, const char *name, unsigned index,
                      const char *value);
/* policy_edit_body - append to the replaced body (the first call starts it); 0, or -1
 * when it would pass max octets */
int policy_edit_body(struct policy_client *cl, const char *by, const void *data, size_t len,
                     size_t max);
void policy_edit_free(struct policy_edit *e);

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
/* policy_retire - a newer instance took over (SIGHUP): each check's retire */
void policy_retire(struct policy *p);

/* policy_chain_for - the checks of a listener, in its order (NULL list = none) */
const struct policy_chain *policy_chain_for(const struct policy *p, const char *listener);

/* policy_has_check - does the chain run the check called name */
int policy_has_check(const struct policy_chain *c, const char *name);

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

/*
 * The message, for the session: policy_msg_begin when DATA starts (NULL when no
 * check of the chain reads the text), then policy_msg_header once with the
 * header section, policy_msg_body for the body, and policy_msg_free after the
 * END stage (or when the transaction ends early). cl->msg is the handle.
 */
#define POLICY_HEADER_MAX 65536
struct policy_msg *policy_msg_begin(const struct policy_chain *c, struct policy_client *cl);
void policy_msg_header(struct policy_msg *m, const char *hdr, size_t len, int truncated);
void policy_msg_body(struct policy_msg *m, const char *data, size_t len);
void policy_msg_free(struct policy_msg *m);

/* policy_score_add - a SCORE verdict of check: points into cl->score and "check=points"
 * into cl->score_tests (the pipeline calls it; exposed for the tests) */
void policy_score_add(struct policy_client *cl, const char *check, int points);

const char *policy_stage_name(enum policy_stage s);
const char *policy_action_name(enum policy_action a);

#endif
