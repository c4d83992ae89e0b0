/* spf_eval.c - check_host() (RFC 7208 4, 5, 6) as a state machine: the
 * check's lifecycle, the term loop, include/redirect frames, the result
 *
 * Every DNS lookup leaves the loop (c->wait); its answer (spf_answer.c)
 * continues it. include pushes a frame, redirect replaces one: the stack is
 * fixed-size and the 10-lookup limit keeps it from filling.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "policy/spf_internal.h"
#include "core/clock.h"
#include "core/xmalloc.h"

#define BUILTIN_EXP "%{i} is not allowed to send mail for %{o}"

static const char *const result_names[SPF_RESULT_COUNT] = {
    "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"};

const char *spf_result_name(enum spf_result r)
{
    return (unsigned)r < SPF_RESULT_COUNT ? result_names[r] : "?";
}

int spf_result_parse(const char *s)
{
    for (int i = 0; i < SPF_RESULT_COUNT; i++)
        if (strcasecmp(s, result_names[i]) == 0)
            return i;
    return -1;
}

int spf_prefix_match(const unsigned char *a, const unsigned char *b, int bits)
{
    int bytes = bits / 8, rest = bits % 8;

    if (memcmp(a, b, (size_t)bytes) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

/* %{p}: a validated name equal to or under domain if there is one, else the first */
static const char *p_value(const struct spf_check *c, const char *domain)
{
    size_t dl = strlen(domain);

    if (c->p_state != 2)
        return NULL;
    for (size_t i = 0; i < c->np; i++) {
        const char *n = c->p_names[i];
        size_t nl = strlen(n);
        if (strcasecmp(n, domain) == 0 ||
            (nl > dl && n[nl - dl - 1] == '.' && strcasecmp(n + nl - dl, domain) == 0))
            return n;
    }
    return c->np > 0 ? c->p_names[0] : "unknown";
}

void spf_macro_ctx(const struct spf_check *c, const char *domain, struct spf_macro_ctx *m)
{
    m->sender = c->sender;
    m->local = c->local;
    m->odomain = c->odomain;
    m->domain = domain;
    m->ip_dots = c->ip_dots;
    m->ip_text = c->ip_text;
    m->v = c->family == AF_INET ? "in-addr" : "ip6";
    m->helo = c->helo;
    m->receiver = c->receiver;
    m->p = p_value(c, domain);
    m->now = c->now;
}

static void finish(struct spf_check *c, enum spf_result r)
{
    c->out.result = r;
    if (r == SPF_FAIL) { /* find the explanation first */
        c->exp_stage = SPF_EXP_START;
        return;
    }
    c->done = 1;
}

void spf_error(struct spf_check *c, enum spf_result r, const char *fmt, ...)
{
    va_list ap;

    if (c->problem[0] == '\0') {
        va_start(ap, fmt);
        vsnprintf(c->problem, sizeof c->problem, fmt, ap);
        va_end(ap);
    }
    c->mech[0] = '\0';
    finish(c, r);
}

int spf_query(struct spf_check *c, int slot, enum spf_qtype type, const char *name)
{
    struct spf_slot *s = &c->slots[slot];

    s->handle = c->res.query(c->res.ctx, type, name, spf_on_answer, s);
    if (s->handle == NULL) {
        spf_error(c, SPF_TEMPERROR, "cannot query %s", name);
        return -1;
    }
    return 0;
}

static void query_record(struct spf_check *c)
{
    if (spf_query(c, 0, SPF_Q_TXT, c->frames[c->depth - 1].domain) == 0)
        c->wait = SPF_W_RECORD;
}

static void pop(struct spf_check *c)
{
    struct spf_frame *f = &c->frames[--c->depth];

    spf_record_free(f->rec);
    f->rec = NULL;
}

/* A frame ended with r: the check's result, or the include term's outcome in
 * the frame below (pass: it matches; fail, softfail, neutral: it does not). */
void spf_frame_result(struct spf_check *c, enum spf_result r)
{
    for (;;) {
        struct spf_frame *f = &c->frames[c->depth - 1];
        const struct spf_term *t;
        if (r == SPF_NONE && f->redirected) {
            spf_error(c, SPF_PERMERROR, "redirect=%s has no SPF record", f->domain);
            return;
        }
        if (r == SPF_TEMPERROR || r == SPF_PERMERROR || c->depth == 1) {
            finish(c, r);
            return;
        }
        if (r == SPF_NONE) {
            spf_error(c, SPF_PERMERROR, "include:%s has no SPF record", f->domain);
            return;
        }
        pop(c);
        if (r != SPF_PASS)
            return;
        f = &c->frames[c->depth - 1];
        t = &f->rec->terms[f->next - 1];
        if (c->depth == 1)
            snprintf(c->mech, sizeof c->mech, "%s", t->text);
        r = t->qual;
    }
}

void spf_matched(struct spf_check *c, const struct spf_term *t)
{
    if (c->depth == 1)
        snprintf(c->mech, sizeof c->mech, "%s", t->text);
    spf_frame_result(c, t->qual);
}

static void push(struct spf_check *c, const char *domain)
{
    struct spf_frame *f;

    if (c->depth == SPF_MAX_DEPTH) { /* the lookup limit comes first; never happens */
        spf_error(c, SPF_PERMERROR, "includes nested too deep");
        return;
    }
    f = &c->frames[c->depth++];
    memset(f, 0, sizeof *f);
    snprintf(f->domain, sizeof f->domain, "%s", domain);
    query_record(c);
}

/* The target name of a DNS term (or redirect): 0, 1 unusable name, -1 ended */
static int target_name(struct spf_check *c, const char *spec, char name[SPF_NAME_SIZE])
{
    struct spf_frame *f = &c->frames[c->depth - 1];
    struct spf_macro_ctx m;
    int r;

    if (spec == NULL) {
        snprintf(name, SPF_NAME_SIZE, "%s", f->domain);
        return 0;
    }
    spf_macro_ctx(c, f->domain, &m);
    if ((r = spf_expand_name(&m, spec, name)) < 0)
        spf_error(c, SPF_PERMERROR, "bad macro in %s", spec);
    return r;
}

/* A term that looks something up: count it, expand its target, ask. */
static void dns_term(struct spf_check *c, struct spf_frame *f, const struct spf_term *t)
{
    char name[SPF_NAME_SIZE];
    int r;

    if (t->spec != NULL && spf_macro_uses_p(t->spec) && c->p_state != 2) {
        spf_start_p(c); /* then this term again */
        return;
    }
    if (++c->lookups > SPF_MAX_LOOKUPS) {
        spf_error(c, SPF_PERMERROR, "more than %d DNS lookups", SPF_MAX_LOOKUPS);
        return;
    }
    f->next++;
    if ((r = target_name(c, t->spec, name)) < 0)
        return;
    if (r > 0) { /* 4.8, 5: an unusable name does not exist */
        if (t->mech == SPF_M_INCLUDE)
            spf_error(c, SPF_PERMERROR, "include of an unusable name");
        return;
    }
    c->cur = t;
    switch (t->mech) {
    case SPF_M_INCLUDE:
        push(c, name);
        return;
    case SPF_M_A:
        if (spf_query(c, 0, c->family == AF_INET ? SPF_Q_A : SPF_Q_AAAA, name) == 0)
            c->wait = SPF_W_A;
        return;
    case SPF_M_MX:
        if (spf_query(c, 0, SPF_Q_MX, name) == 0)
            c->wait = SPF_W_MX;
        return;
    case SPF_M_PTR:
        snprintf(c->target, sizeof c->target, "%s", name);
        if (spf_query(c, 0, SPF_Q_PTR, c->rev_name) == 0)
            c->wait = SPF_W_PTR;
        return;
    default: /* exists: A even for an IPv6 client (5.7) */
        if (spf_query(c, 0, SPF_Q_A, name) == 0)
            c->wait = SPF_W_EXISTS;
        return;
    }
}

static void step_term(struct spf_check *c, struct spf_frame *f)
{
    const struct spf_term *t = &f->rec->terms[f->next];
    int fam = t->mech == SPF_M_IP4 ? AF_INET : AF_INET6;

    switch (t->mech) {
    case SPF_M_ALL:
        f->next++;
        spf_matched(c, t);
        return;
    case SPF_M_IP4:
    case SPF_M_IP6:
        f->next++;
        if (c->family == fam &&
            spf_prefix_match(c->ip, t->ip, fam == AF_INET ? t->cidr4 : t->cidr6))
            spf_matched(c, t);
        return;
    default:
        dns_term(c, f, t);
    }
}

/* No term matched: redirect= if there is one (6.1), else neutral (4.7). */
static void end_of_record(struct spf_check *c, struct spf_frame *f)
{
    char name[SPF_NAME_SIZE];
    const char *spec = f->rec->redirect;
    int r;

    if (spec == NULL) {
        if (c->depth == 1)
            snprintf(c->mech, sizeof c->mech, "default");
        spf_frame_result(c, SPF_NEUTRAL);
        return;
    }
    if (spf_macro_uses_p(spec) && c->p_state != 2) {
        spf_start_p(c);
        return;
    }
    if (++c->lookups > SPF_MAX_LOOKUPS) {
        spf_error(c, SPF_PERMERROR, "more than %d DNS lookups", SPF_MAX_LOOKUPS);
        return;
    }
    if ((r = target_name(c, spec, name)) != 0) {
        if (r > 0)
            spf_error(c, SPF_PERMERROR, "redirect to an unusable name");
        return;
    }
    spf_record_free(f->rec);
    f->rec = NULL;
    f->next = 0;
    f->redirected = 1;
    snprintf(f->domain, sizeof f->domain, "%s", name);
    query_record(c);
}

/* Run until a lookup is out or the result is known. */
static void advance(struct spf_check *c)
{
    while (!c->done && c->wait == SPF_W_NONE) {
        struct spf_frame *f = &c->frames[c->depth - 1];
        if (c->exp_stage != SPF_EXP_OFF)
            spf_exp_step(c);
        else if (f->next < f->rec->nterms)
            step_term(c, f);
        else
            end_of_record(c, f);
    }
}

void spf_continue(struct spf_check *c)
{
    advance(c);
    if (c->done && c->started && !c->reported) {
        c->reported = 1;
        c->cb(c, c->cb_arg); /* may free c */
    }
}

/* %{i}, %{c} and the PTR query name of the client address */
static void ip_names(struct spf_check *c)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *a = c->ip;

    inet_ntop(c->family, a, c->ip_text, sizeof c->ip_text);
    if (c->family == AF_INET) {
        snprintf(c->ip_dots, sizeof c->ip_dots, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
        snprintf(c->rev_name, sizeof c->rev_name, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1],
                 a[0]);
        return;
    }
    for (int i = 0; i < 32; i++) { /* nibbles, dot-separated (7.3) */
        unsigned n = i % 2 ? a[i / 2] & 15 : a[i / 2] >> 4;
        c->ip_dots[2 * i] = hex[n];
        c->ip_dots[2 * i + 1] = '.';
        c->rev_name[2 * (31 - i)] = hex[n];
        c->rev_name[2 * (31 - i) + 1] = '.';
    }
    c->ip_dots[63] = '\0';
    snprintf(c->rev_name + 64, sizeof c->rev_name - 64, "ip6.arpa");
}

static int set_client(struct spf_check *c, const struct sockaddr *sa)
{
    if (sa == NULL)
        return -1;
    if (sa->sa_family == AF_INET) {
        c->family = AF_INET;
        memcpy(c->ip, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) { /* 5: an IPv4-mapped address is IPv4 */
            c->family = AF_INET;
            memcpy(c->ip, a6->s6_addr + 12, 4);
        } else {
            c->family = AF_INET6;
            memcpy(c->ip, a6->s6_addr, 16);
        }
    } else {
        return -1;
    }
    ip_names(c);
    return 0;
}

/* <sender> and <domain> (4.1, 4.3): MAIL FROM, or postmaster@HELO */
static void set_sender(struct spf_check *c, const struct spf_request *req)
{
    const char *from = req->mailfrom, *at;

    snprintf(c->helo, sizeof c->helo, "%s", req->helo ? req->helo : "");
    if (req->identity == SPF_ID_HELO || from == NULL || from[0] == '\0') {
        snprintf(c->local, sizeof c->local, "postmaster");
        snprintf(c->odomain, sizeof c->odomain, "%s", c->helo);
    } else if ((at = strrchr(from, '@')) == NULL) {
        snprintf(c->local, sizeof c->local, "postmaster");
        snprintf(c->odomain, sizeof c->odomain, "%s", from);
    } else {
        snprintf(c->local, sizeof c->local, "%.*s", (int)(at - from), from);
        snprintf(c->odomain, sizeof c->odomain, "%s", at + 1);
        if (c->local[0] == '\0') /* 4.3: no local-part: postmaster */
            snprintf(c->local, sizeof c->local, "postmaster");
    }
    snprintf(c->sender, sizeof c->sender, "%s@%s", c->local, c->odomain);
}

struct spf_check *spf_new(const struct spf_resolver *res, const struct spf_request *req)
{
    struct spf_check *c = xcalloc(1, sizeof *c);

    if (set_client(c, req->client) < 0) {
        free(c);
        return NULL;
    }
    c->res = *res;
    for (size_t i = 0; i < sizeof c->slots / sizeof c->slots[0]; i++) {
        c->slots[i].c = c;
        c->slots[i].index = (int)i;
    }
    set_sender(c, req);
    snprintf(c->receiver, sizeof c->receiver, "%s", req->receiver ? req->receiver : "");
    snprintf(c->default_exp, sizeof c->default_exp, "%s",
             req->default_exp ? req->default_exp : BUILTIN_EXP);
    c->now = (long long)clock_now();
    c->out.identity = req->identity;
    c->out.sender = c->sender;
    c->out.domain = c->odomain;
    c->out.mechanism = c->mech;
    c->out.explanation = c->explanation;
    c->out.problem = c->problem;
    return c;
}

/* 4.3: a malformed or single-label <domain> (or a domain literal) gives none */
static int domain_usable(const char *d)
{
    const char *dot = strchr(d, '.');

    return spf_name_valid(d) && d[0] != '[' && strchr(d, ' ') == NULL && dot != NULL &&
           dot[1] != '\0';
}

int spf_start(struct spf_check *c, spf_done_cb cb, void *arg)
{
    char name[SPF_NAME_SIZE];
    size_t n;

    c->cb = cb;
    c->cb_arg = arg;
    if (!domain_usable(c->odomain)) {
        snprintf(c->problem, sizeof c->problem, "not a usable domain name");
        c->out.result = SPF_NONE;
        c->done = 1;
        return 1;
    }
    n = strlen(c->odomain);
    snprintf(name, sizeof name, "%.*s", (int)(c->odomain[n - 1] == '.' ? n - 1 : n), c->odomain);
    c->depth = 1;
    snprintf(c->frames[0].domain, sizeof c->frames[0].domain, "%s", name);
    query_record(c);
    advance(c);
    c->started = 1;
    return c->done ? 1 : 0;
}

const struct spf_outcome *spf_outcome(const struct spf_check *c)
{
    return &c->out;
}

void spf_free(struct spf_check *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < sizeof c->slots / sizeof c->slots[0]; i++)
        if (c->slots[i].handle != NULL)
            c->res.cancel(c->res.ctx, c->slots[i].handle);
    while (c->depth > 0)
        pop(c);
    free(c);
}
