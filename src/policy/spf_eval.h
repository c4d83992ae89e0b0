/* spf_eval.h - SPF (RFC 7208) evaluation: check_host() without blocking DNS
 *
 * The evaluator knows no DNS library: it asks a small resolver seam (struct
 * spf_resolver) for TXT, A, AAAA, MX and PTR records and continues when the
 * answer comes back. spf_dns.h adapts the daemon's c-ares resolver to it; the
 * unit test answers from the RFC 7208 test suite's zone data.
 *
 * One check evaluates one identity (MAIL FROM, or HELO) for one client
 * address. Limits (RFC 7208 4.6.4): at most 10 DNS-querying terms (include,
 * a, mx, ptr, exists, redirect), at most 2 void lookups, at most 10 MX names
 * and 10 PTR names looked at; records longer than SPF_RECORD_MAX bytes or with
 * more than SPF_MAX_TERMS terms are a permerror; include depth is bounded by
 * the term limit. Nothing recurses: include and redirect are frames on a
 * fixed stack. The overall time limit RFC 7208 4.6.4 asks for (at least 20
 * s) is the caller's: spf_free() a check that takes too long and count it as
 * temperror. Each lookup is bounded by the resolver's own timeout.
 */
#ifndef MXGATE_SPF_EVAL_H
#define MXGATE_SPF_EVAL_H

#include <stddef.h>
#include <sys/socket.h>

#define SPF_RECORD_MAX 4096     /* bytes of one SPF record (its strings joined) */
#define SPF_MAX_TERMS 256       /* terms of one SPF record */
#define SPF_MAX_LOOKUPS 10      /* DNS-querying terms per check */
#define SPF_MAX_VOID 2          /* lookups answering NXDOMAIN or no records */
#define SPF_MAX_NAMES 10        /* MX / PTR names looked at per term */
#define SPF_EXPLANATION_MAX 400 /* bytes of an explanation (it goes into an SMTP reply) */

enum spf_result {
    SPF_NONE,
    SPF_NEUTRAL,
    SPF_PASS,
    SPF_FAIL,
    SPF_SOFTFAIL,
    SPF_TEMPERROR,
    SPF_PERMERROR
};
#define SPF_RESULT_COUNT 7

enum spf_identity { SPF_ID_MAILFROM, SPF_ID_HELO };

/* ---- the resolver seam -------------------------------------------------- */

enum spf_qtype { SPF_Q_A, SPF_Q_AAAA, SPF_Q_MX, SPF_Q_TXT, SPF_Q_PTR };

enum spf_dns_status {
    SPF_DNS_OK,       /* count >= 1 records */
    SPF_DNS_NXDOMAIN, /* the name does not exist */
    SPF_DNS_NODATA,   /* the name exists, no record of the type */
    SPF_DNS_TEMPFAIL  /* SERVFAIL, timeout, any other error: temperror */
};

struct spf_rr {
    const char *str;        /* TXT: the record's strings joined (may hold NUL);
                               MX: exchange; PTR: name. NULL for A/AAAA */
    size_t len;             /* bytes of str */
    int family;             /* A: AF_INET, AAAA: AF_INET6 */
    unsigned char addr[16]; /* A: first 4 bytes; AAAA: 16 */
};

struct spf_answer {
    enum spf_dns_status status;
    size_t count; /* records in rr; MX in ascending preference */
    const struct spf_rr *rr;
};

typedef void (*spf_answer_cb)(const struct spf_answer *ans, void *arg);

/* query() starts a lookup of name (no trailing dot, at most 253 bytes) and
 * returns a handle, or NULL when it cannot (the check then ends temperror).
 * The answer must come later, exactly once, never from inside query(); it is
 * valid only during the callback. cancel() stops a query whose answer has not
 * come: its callback must then never run. */
struct spf_resolver {
    void *(*query)(void *ctx, enum spf_qtype type, const char *name, spf_answer_cb cb, void *arg);
    void (*cancel)(void *ctx, void *handle);
    void *ctx;
};

/* ---- a check ------------------------------------------------------------ */

struct spf_request {
    const struct sockaddr *client; /* AF_INET or AF_INET6 (v4-mapped counts as IPv4) */
    const char *helo;              /* HELO/EHLO argument (may be NULL) */
    const char *mailfrom;          /* MAIL FROM path without <>; NULL or "" = null sender */
    enum spf_identity identity;    /* HELO: <sender> is postmaster@helo */
    const char *receiver;          /* our host name, for %{r} and the header */
    const char *default_exp;       /* explanation when exp= gives none (macros
                                      allowed); NULL for the built-in one */
};

struct spf_outcome {
    enum spf_result result;
    enum spf_identity identity;
    const char *sender;      /* <sender>: local@domain as checked */
    const char *domain;      /* the identity's domain */
    const char *mechanism;   /* the deciding term as written ("-all", "include:x"),
                                "default" when none matched, "" on errors/none */
    const char *explanation; /* fail: the explanation; else "" */
    const char *problem;     /* temperror, permerror, none: why; else "" */
};

struct spf_check;
typedef void (*spf_done_cb)(struct spf_check *c, void *arg);

/* A check for req (copied; strings longer than SPF input bounds are cut). NULL
 * when the client address is neither IPv4 nor IPv6. */
struct spf_check *spf_new(const struct spf_resolver *res, const struct spf_request *req);

/* Start evaluating. 1: finished already (no DNS was needed; cb will not run);
 * 0: cb(c, arg) runs once when the result is known (it may spf_free(c)). */
int spf_start(struct spf_check *c, spf_done_cb cb, void *arg);

/* The result; valid once finished, until spf_free(). */
const struct spf_outcome *spf_outcome(const struct spf_check *c);

/* Cancel outstanding queries (their callbacks never run) and free. NULL ok. */
void spf_free(struct spf_check *c);

/* "pass", "fail", ... (RFC 7208 section 8, lower case). */
const char *spf_result_name(enum spf_result r);
/* The result named s (case-insensitive), or -1. */
int spf_result_parse(const char *s);

/* The value of a Received-SPF header field (RFC 7208 9.1) for a finished
 * check, on one line, without the field name: result, a comment, then
 * client-ip, envelope-from, helo, receiver, identity, mechanism or problem.
 * Every value from outside is a dot-atom or quoted, the comment stripped of
 * what could end it. 0, or -1 when buf is too small (buf holds a cut value). */
int spf_received_spf(const struct spf_check *c, char *buf, size_t len);

#endif
