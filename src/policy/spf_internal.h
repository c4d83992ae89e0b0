/* spf_internal.h - what the SPF files share: parsed records, macro expansion
 * (spf_record.c, spf_macro.c, spf_eval.c, spf_header.c; not for other modules) */
#ifndef MXGATE_SPF_INTERNAL_H
#define MXGATE_SPF_INTERNAL_H

#include <stddef.h>

#include "policy/spf_eval.h"

#define SPF_NAME_SIZE 256    /* a query name (at most 253) + NUL */
#define SPF_EXPAND_SIZE 1024 /* a macro expansion before truncation to a name */
#define SPF_INPUT_MAX 320    /* bytes kept of a sender, HELO or receiver */
#define SPF_MECH_MAX 256     /* bytes kept of the deciding term, for logs */

enum spf_mech {
    SPF_M_ALL,
    SPF_M_INCLUDE,
    SPF_M_A,
    SPF_M_MX,
    SPF_M_PTR,
    SPF_M_IP4,
    SPF_M_IP6,
    SPF_M_EXISTS
};

struct spf_term {
    enum spf_mech mech;
    enum spf_result qual; /* the result when it matches */
    const char *text;     /* the term as written (NUL-terminated) */
    const char *spec;     /* domain-spec (NUL-terminated), NULL when absent */
    int cidr4, cidr6;     /* prefix lengths (a, mx, ip4, ip6) */
    unsigned char ip[16]; /* ip4 (first 4 bytes) / ip6 network */
};

struct spf_record {
    char *orig; /* the record, each term NUL-terminated (term text) */
    char *buf;  /* a second copy cut into specs */
    size_t nterms;
    struct spf_term *terms;
    const char *redirect; /* domain-spec of redirect=, or NULL */
    const char *exp;      /* domain-spec of exp=, or NULL */
};

/* spf_record.c */

/* Is txt[0..len) an SPF record: "v=spf1" (any case) then a space or its end. */
int spf_is_record(const char *txt, size_t len);
/* Parse an SPF record. NULL on a syntax error (a permerror; why in err). */
struct spf_record *spf_record_parse(const char *txt, size_t len, char *err, size_t errlen);
void spf_record_free(struct spf_record *r);
/* A name usable in a query: labels of 1..63 bytes, at most 253 in all (one
 * trailing dot allowed), printable ASCII or space, no backslash. */
int spf_name_valid(const char *name);

/* spf_macro.c */

struct spf_macro_ctx {
    const char *sender;   /* s */
    const char *local;    /* l */
    const char *odomain;  /* o */
    const char *domain;   /* d: the current <domain> */
    const char *ip_dots;  /* i */
    const char *ip_text;  /* c */
    const char *v;        /* "in-addr" or "ip6" */
    const char *helo;     /* h */
    const char *receiver; /* r */
    const char *p;        /* validated name, NULL when not yet known */
    long long now;        /* t */
};

#define SPF_MACRO_EXP 1   /* c, r, t allowed (explanation text, unknown modifiers) */
#define SPF_MACRO_SPACE 2 /* spaces allowed (explanation text) */

/* Syntax of a macro-string: 0, or -1. flags: SPF_MACRO_*. */
int spf_macro_check(const char *s, int flags);
/* Syntax of a domain-spec (RFC 7208 7.1; before expansion): 0, or -1. */
int spf_domain_spec_check(const char *s);
/* Does s use the p macro (which needs DNS before it can be expanded)? */
int spf_macro_uses_p(const char *s);
/* Expand s into out (NUL-terminated). 0; -1 syntax error; -2 does not fit. */
int spf_expand(const struct spf_macro_ctx *m, const char *s, int flags, char *out, size_t outlen);
/* Expand a domain-spec into a query name (cut to 253 from the left, no
 * trailing dot). 0; -1 syntax error; 1 expands to an unusable name. */
int spf_expand_name(const struct spf_macro_ctx *m, const char *s, char out[SPF_NAME_SIZE]);

/* ---- a check in flight (spf_eval.c, spf_answer.c, spf_header.c) ---- */

#define SPF_MAX_DEPTH (SPF_MAX_LOOKUPS + 2) /* include frames: bounded by the lookup limit */

enum spf_wait {
    SPF_W_NONE,
    SPF_W_RECORD,  /* TXT of the top frame's domain */
    SPF_W_A,       /* a: A or AAAA of the target */
    SPF_W_MX,      /* mx: the MX names */
    SPF_W_MXADDR,  /* mx: addresses of the names (batch) */
    SPF_W_PTR,     /* ptr: PTR names of the client */
    SPF_W_PTRADDR, /* ptr: forward lookups of matching names (batch) */
    SPF_W_EXISTS,  /* exists: A of the target */
    SPF_W_PNAMES,  /* %{p}: PTR names of the client */
    SPF_W_PADDR,   /* %{p}: forward lookups (batch) */
    SPF_W_EXP      /* exp=: the explanation TXT */
};

enum spf_exp_stage { SPF_EXP_OFF, SPF_EXP_START, SPF_EXP_WAIT, SPF_EXP_TEXT };

struct spf_frame {
    struct spf_record *rec; /* NULL while its TXT lookup is out */
    char domain[SPF_NAME_SIZE];
    size_t next;    /* the next term to evaluate */
    int redirected; /* reached by redirect=: "none" is a permerror */
};

struct spf_slot {
    struct spf_check *c;
    void *handle;
    int index; /* 0: the single query; 1..: batch entry index-1 */
};

struct spf_check {
    struct spf_resolver res;
    spf_done_cb cb;
    void *cb_arg;
    int done, reported, started;

    /* inputs */
    int family;           /* AF_INET (also v4-mapped) or AF_INET6 */
    unsigned char ip[16]; /* IPv4 in the first 4 bytes */
    char ip_dots[80];     /* %{i} */
    char ip_text[48];     /* %{c} */
    char rev_name[80];    /* the PTR query name */
    char sender[2 * SPF_INPUT_MAX + 2], local[SPF_INPUT_MAX + 1], odomain[SPF_INPUT_MAX + 1];
    char helo[SPF_INPUT_MAX + 1], receiver[SPF_INPUT_MAX + 1];
    char default_exp[SPF_EXPLANATION_MAX + 1];
    long long now;

    /* evaluation */
    struct spf_frame frames[SPF_MAX_DEPTH];
    size_t depth;
    unsigned lookups, voids;
    enum spf_wait wait;
    const struct spf_term *cur; /* the term whose lookup is out */
    char target[SPF_NAME_SIZE]; /* ptr: the name PTR names must end in */
    struct spf_slot slots[1 + SPF_MAX_NAMES];

    /* a batch of forward lookups (mx names, ptr names) */
    char names[SPF_MAX_NAMES][SPF_NAME_SIZE];
    size_t nnames, pending;
    unsigned matched, errored; /* bit i: names[i] matched / failed */
    int batch_bits;            /* prefix length compared */

    /* %{p}: validated PTR names, found once per check */
    int p_state; /* 0 not yet, 1 looking, 2 known */
    char p_names[SPF_MAX_NAMES][SPF_NAME_SIZE];
    size_t np;

    /* explanation of a fail */
    enum spf_exp_stage exp_stage;
    int exp_have;
    char exp_text[SPF_RECORD_MAX + 1];

    /* outcome */
    struct spf_outcome out;
    char mech[SPF_MECH_MAX];
    char problem[200];
    char explanation[SPF_EXPLANATION_MAX + 1];
};

/* spf_eval.c */
void spf_error(struct spf_check *c, enum spf_result r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void spf_matched(struct spf_check *c, const struct spf_term *t);
void spf_frame_result(struct spf_check *c, enum spf_result r);
int spf_query(struct spf_check *c, int slot, enum spf_qtype type, const char *name);
void spf_macro_ctx(const struct spf_check *c, const char *domain, struct spf_macro_ctx *m);
int spf_prefix_match(const unsigned char *a, const unsigned char *b, int bits);
/* After an answer: run on, and report the result if it is known. */
void spf_continue(struct spf_check *c);

/* spf_answer.c */
void spf_on_answer(const struct spf_answer *a, void *arg);
void spf_start_p(struct spf_check *c);
int spf_start_batch(struct spf_check *c, enum spf_wait w, int bits);
void spf_exp_step(struct spf_check *c);
void spf_void(struct spf_check *c);

#endif
