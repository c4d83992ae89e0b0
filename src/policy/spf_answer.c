/* spf_answer.c - what each DNS answer does to a check: record selection
 * (4.5), a / mx / ptr / exists (5), the %{p} macro (7.3), exp= (6.2) */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "policy/spf_internal.h"

void spf_void(struct spf_check *c)
{
    if (++c->voids > SPF_MAX_VOID)
        spf_error(c, SPF_PERMERROR, "more than %d void lookups", SPF_MAX_VOID);
}

/* 4.5: exactly one record starting "v=spf1"; other TXT records are ignored */
static void on_record(struct spf_check *c, const struct spf_answer *a)
{
    struct spf_frame *f = &c->frames[c->depth - 1];
    const struct spf_rr *found = NULL;
    char err[160];

    if (a->status == SPF_DNS_TEMPFAIL) {
        spf_error(c, SPF_TEMPERROR, "DNS error looking up the SPF record of %s", f->domain);
        return;
    }
    for (size_t i = 0; a->status == SPF_DNS_OK && i < a->count; i++) {
        if (!spf_is_record(a->rr[i].str, a->rr[i].len))
            continue;
        if (found != NULL) {
            spf_error(c, SPF_PERMERROR, "more than one SPF record for %s", f->domain);
            return;
        }
        found = &a->rr[i];
    }
    if (found == NULL) {
        if (c->depth == 1 && !f->redirected)
            snprintf(c->problem, sizeof c->problem, "no SPF record for %s", f->domain);
        spf_frame_result(c, SPF_NONE);
        return;
    }
    if ((f->rec = spf_record_parse(found->str, found->len, err, sizeof err)) == NULL)
        spf_error(c, SPF_PERMERROR, "%s: %s", f->domain, err);
}

static int addr_matches(const struct spf_check *c, const struct spf_answer *a, int bits)
{
    for (size_t i = 0; a->status == SPF_DNS_OK && i < a->count; i++)
        if (a->rr[i].family == c->family && spf_prefix_match(c->ip, a->rr[i].addr, bits))
            return 1;
    return 0;
}

static int cidr(const struct spf_check *c, const struct spf_term *t)
{
    return c->family == AF_INET ? t->cidr4 : t->cidr6;
}

/* a, exists: errors end the check; no address is a void lookup */
static void on_addr(struct spf_check *c, const struct spf_answer *a, int exists)
{
    if (a->status == SPF_DNS_TEMPFAIL) {
        spf_error(c, SPF_TEMPERROR, "DNS error in %s", c->cur->text);
        return;
    }
    if (a->status != SPF_DNS_OK || a->count == 0) {
        spf_void(c);
        return;
    }
    if (exists || addr_matches(c, a, cidr(c, c->cur)))
        spf_matched(c, c->cur);
}

/* Copy a name from an answer (without a trailing dot); 0 if unusable */
static int answer_name(const struct spf_rr *rr, char out[SPF_NAME_SIZE])
{
    size_t n = rr->len;

    if (rr->str == NULL || n == 0 || n >= SPF_NAME_SIZE || memchr(rr->str, '\0', n) != NULL)
        return 0;
    memcpy(out, rr->str, n);
    out[n] = '\0';
    if (out[n - 1] == '.')
        out[n - 1] = '\0';
    return out[0] != '\0' && spf_name_valid(out);
}

static void on_mx(struct spf_check *c, const struct spf_answer *a)
{
    if (a->status == SPF_DNS_TEMPFAIL) {
        spf_error(c, SPF_TEMPERROR, "DNS error in %s", c->cur->text);
        return;
    }
    if (a->status != SPF_DNS_OK || a->count == 0) {
        spf_void(c);
        return;
    }
    if (a->count > SPF_MAX_NAMES) { /* 4.6.4 */
        spf_error(c, SPF_PERMERROR, "more than %d MX records in %s", SPF_MAX_NAMES, c->cur->text);
        return;
    }
    c->nnames = 0;
    for (size_t i = 0; i < a->count; i++) /* a null MX (".") names no host */
        if (answer_name(&a->rr[i], c->names[c->nnames]))
            c->nnames++;
    if (c->nnames > 0)
        spf_start_batch(c, SPF_W_MXADDR, cidr(c, c->cur));
}

static int under(const char *name, const char *domain)
{
    size_t nl = strlen(name), dl = strlen(domain);

    if (nl == dl)
        return strcasecmp(name, domain) == 0;
    return nl > dl && name[nl - dl - 1] == '.' && strcasecmp(name + nl - dl, domain) == 0;
}

/* ptr (5.5) and %{p}: the first 10 PTR names; for ptr only those under the
 * target are worth confirming. A failed PTR lookup is no match. */
static void on_ptr(struct spf_check *c, const struct spf_answer *a, int pmacro)
{
    char name[SPF_NAME_SIZE];
    int bits = c->family == AF_INET ? 32 : 128;

    c->nnames = 0;
    for (size_t i = 0; a->status == SPF_DNS_OK && i < a->count && i < SPF_MAX_NAMES; i++) {
        if (!answer_name(&a->rr[i], name) || (!pmacro && !under(name, c->target)))
            continue;
        memcpy(c->names[c->nnames++], name, sizeof name);
    }
    if (c->nnames > 0) {
        spf_start_batch(c, pmacro ? SPF_W_PADDR : SPF_W_PTRADDR, bits);
    } else if (pmacro) {
        c->p_state = 2;
        c->np = 0;
    }
}

int spf_start_batch(struct spf_check *c, enum spf_wait w, int bits)
{
    enum spf_qtype type = c->family == AF_INET ? SPF_Q_A : SPF_Q_AAAA;

    c->matched = c->errored = 0;
    c->batch_bits = bits;
    c->pending = 0;
    for (size_t i = 0; i < c->nnames; i++) {
        struct spf_slot *s = &c->slots[i + 1];
        s->handle = c->res.query(c->res.ctx, type, c->names[i], spf_on_answer, s);
        if (s->handle == NULL) {
            for (size_t k = 0; k < i; k++) {
                c->res.cancel(c->res.ctx, c->slots[k + 1].handle);
                c->slots[k + 1].handle = NULL;
            }
            c->pending = 0;
            if (w == SPF_W_PADDR) /* %{p} is then "unknown" */
                c->p_state = 2;
            else
                spf_error(c, SPF_TEMPERROR, "cannot query %s", c->names[i]);
            return -1;
        }
        c->pending++;
    }
    c->wait = w;
    return 0;
}

static void batch_done(struct spf_check *c, enum spf_wait w)
{
    if (w == SPF_W_PADDR) {
        c->np = 0;
        for (size_t i = 0; i < c->nnames; i++)
            if (c->matched & (1u << i))
                memcpy(c->p_names[c->np++], c->names[i], SPF_NAME_SIZE);
        c->p_state = 2;
    } else if (c->matched) {
        spf_matched(c, c->cur);
    } else if (w == SPF_W_MXADDR && c->errored) {
        spf_error(c, SPF_TEMPERROR, "DNS error in %s", c->cur->text);
    }
}

/* One forward lookup of a batch; errors of ptr/%{p} lookups only skip the name */
static void on_batch(struct spf_check *c, size_t i, const struct spf_answer *a)
{
    if (a->status == SPF_DNS_TEMPFAIL)
        c->errored |= 1u << i;
    else if (addr_matches(c, a, c->batch_bits))
        c->matched |= 1u << i;
    if (--c->pending == 0) {
        enum spf_wait w = c->wait;
        c->wait = SPF_W_NONE;
        batch_done(c, w);
    }
}

/* %{p} needs the validated names first; if even asking fails, it is "unknown" */
void spf_start_p(struct spf_check *c)
{
    c->np = 0;
    c->p_state = 2;
    c->slots[0].handle =
        c->res.query(c->res.ctx, SPF_Q_PTR, c->rev_name, spf_on_answer, &c->slots[0]);
    if (c->slots[0].handle != NULL) {
        c->p_state = 1;
        c->wait = SPF_W_PNAMES;
    }
}

/* The explanation TXT (6.2): one record of printable ASCII, else none */
static void on_exp(struct spf_check *c, const struct spf_answer *a)
{
    const struct spf_rr *rr;

    c->exp_stage = SPF_EXP_TEXT;
    c->exp_have = 0;
    if (a->status != SPF_DNS_OK || a->count != 1 || a->rr[0].len > SPF_RECORD_MAX)
        return;
    rr = &a->rr[0];
    for (size_t i = 0; i < rr->len; i++)
        if (rr->str[i] < ' ' || rr->str[i] > '~')
            return;
    memcpy(c->exp_text, rr->str, rr->len);
    c->exp_text[rr->len] = '\0';
    c->exp_have = 1;
}

void spf_on_answer(const struct spf_answer *a, void *arg)
{
    struct spf_slot *s = arg;
    struct spf_check *c = s->c;
    enum spf_wait w = c->wait;

    s->handle = NULL;
    if (s->index > 0) {
        on_batch(c, (size_t)s->index - 1, a);
        spf_continue(c);
        return;
    }
    c->wait = SPF_W_NONE;
    switch (w) {
    case SPF_W_RECORD:
        on_record(c, a);
        break;
    case SPF_W_A:
        on_addr(c, a, 0);
        break;
    case SPF_W_EXISTS:
        on_addr(c, a, 1);
        break;
    case SPF_W_MX:
        on_mx(c, a);
        break;
    case SPF_W_PTR:
        on_ptr(c, a, 0);
        break;
    case SPF_W_PNAMES:
        on_ptr(c, a, 1);
        break;
    case SPF_W_EXP:
        on_exp(c, a);
        break;
    default:
        break;
    }
    spf_continue(c);
}

/* Expand the explanation into c->explanation; -1 on a macro syntax error */
static int expand_exp(struct spf_check *c, const char *text)
{
    struct spf_macro_ctx m;
    char buf[SPF_EXPAND_SIZE];
    int r;

    spf_macro_ctx(c, c->frames[0].domain, &m);
    r = spf_expand(&m, text, SPF_MACRO_EXP | SPF_MACRO_SPACE, buf, sizeof buf);
    if (r == -1)
        return -1;
    snprintf(c->explanation, sizeof c->explanation, "%s", buf); /* cut if long */
    for (char *p = c->explanation; *p; p++)
        if (*p < ' ' || *p > '~')
            *p = '?';
    return 0;
}

/* The explanation of a fail: exp= of the record that failed, else the default */
void spf_exp_step(struct spf_check *c)
{
    const char *spec = c->frames[0].rec != NULL ? c->frames[0].rec->exp : NULL;
    const char *text;
    char name[SPF_NAME_SIZE];
    struct spf_macro_ctx m;

    if (c->exp_stage == SPF_EXP_START) {
        c->exp_stage = SPF_EXP_TEXT;
        if (spec != NULL && spf_macro_uses_p(spec) && c->p_state != 2) {
            c->exp_stage = SPF_EXP_START;
            spf_start_p(c);
            return;
        }
        spf_macro_ctx(c, c->frames[0].domain, &m);
        if (spec != NULL && spf_expand_name(&m, spec, name) == 0 &&
            (c->slots[0].handle =
                 c->res.query(c->res.ctx, SPF_Q_TXT, name, spf_on_answer, &c->slots[0])) != NULL) {
            c->exp_stage = SPF_EXP_WAIT;
            c->wait = SPF_W_EXP;
        }
        return;
    }
    text = c->exp_have ? c->exp_text : c->default_exp;
    if (spf_macro_uses_p(text) && c->p_state != 2) {
        spf_start_p(c);
        return;
    }
    if (expand_exp(c, text) < 0) {
        if (c->exp_have) { /* 6.2: a bad explanation is no explanation */
            c->exp_have = 0;
            return;
        }
        snprintf(c->explanation, sizeof c->explanation, "%s", "not permitted by SPF");
    }
    c->done = 1;
}
