/*
 * test_spf_eval.c - the SPF evaluator against the whole RFC 7208 test suite
 * (openspf.org 2014.04, as kept by pyspf: ../shared/testdata/spf/), then the
 * Received-SPF header, HELO identity, cancellation and the resolver contract.
 *
 * The fake resolver answers from each scenario's zonedata the way the
 * suite's own driver (pyspf test/testspf.py) does:
 *  - names are case-insensitive; a name absent from the zone is NXDOMAIN, a
 *    name present without records of the type is NODATA;
 *  - "TIMEOUT" in a name's list: a query for a type with no record before it
 *    times out (temperror); records before it are answered;
 *  - SPF (type 99) records are never queried (RFC 7208 3.1), but, as the
 *    suite's header says its drivers must, a name's SPF records are also
 *    served as TXT records when the name has no TXT entry at all
 *    ("TXT: NONE" is such an entry, with no record);
 *  - a TXT or SPF value given as a list is one record of joined strings;
 *  - CNAMEs are followed; a CNAME loop answers SERVFAIL.
 * Answers never come from inside query(): they wait in a queue drained by
 * the test, as c-ares answers later from the event loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <yaml.h>

#include "policy/spf_eval.h"

#ifndef SPF_SUITE_FILE
#define SPF_SUITE_FILE "../shared/testdata/spf/rfc7208-tests.yml"
#endif

/* ---------------------------------------------------------------------- zone */

enum ztype { Z_A, Z_AAAA, Z_MX, Z_TXT, Z_PTR, Z_SPF, Z_CNAME, Z_TIMEOUT };

struct zrec {
    enum ztype type;
    char *str; /* TXT/SPF text (may hold NUL), MX/PTR/CNAME name */
    size_t len;
    int pref;
    int family;
    unsigned char addr[16];
};

struct zname {
    char *name; /* lower case, no trailing dot */
    struct zrec *recs;
    size_t n;
    int has_txt; /* a TXT entry (even "NONE"): no TXT made from SPF */
};

struct zone {
    struct zname *names;
    size_t n;
};

static void lower_name(char *dst, size_t size, const char *src)
{
    size_t i;

    for (i = 0; src[i] && i + 1 < size; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
    if (i > 0 && dst[i - 1] == '.')
        dst[i - 1] = '\0';
}

static struct zname *zone_name(struct zone *z, const char *name, int create)
{
    char key[512];

    lower_name(key, sizeof key, name);
    for (size_t i = 0; i < z->n; i++)
        if (strcmp(z->names[i].name, key) == 0)
            return &z->names[i];
    if (!create)
        return NULL;
    z->names = realloc(z->names, (z->n + 1) * sizeof *z->names);
    assert_non_null(z->names);
    memset(&z->names[z->n], 0, sizeof z->names[0]);
    z->names[z->n].name = strdup(key);
    return &z->names[z->n++];
}

static struct zrec *zone_add(struct zone *z, const char *name, enum ztype type, const char *str,
                             size_t len)
{
    struct zname *zn = zone_name(z, name, 1);
    struct zrec *r;

    zn->recs = realloc(zn->recs, (zn->n + 1) * sizeof *zn->recs);
    assert_non_null(zn->recs);
    r = &zn->recs[zn->n++];
    memset(r, 0, sizeof *r);
    r->type = type;
    if (str != NULL) {
        r->str = malloc(len + 1);
        memcpy(r->str, str, len);
        r->str[len] = '\0';
        r->len = len;
    }
    if (type == Z_A || type == Z_AAAA) {
        r->family = type == Z_A ? AF_INET : AF_INET6;
        assert_int_equal(inet_pton(r->family, str, r->addr), 1);
    }
    if (type == Z_TXT)
        zn->has_txt = 1;
    return r;
}

/* The suite's drivers serve SPF records as TXT when a name has no TXT entry */
static void zone_finish(struct zone *z)
{
    for (size_t i = 0; i < z->n; i++) {
        struct zname *zn = &z->names[i];
        size_t n = zn->n;
        if (zn->has_txt)
            continue;
        for (size_t k = 0; k < n; k++)
            if (zn->recs[k].type == Z_SPF)
                zone_add(z, zn->name, Z_TXT, zn->recs[k].str, zn->recs[k].len);
    }
}

static void zone_free(struct zone *z)
{
    for (size_t i = 0; i < z->n; i++) {
        for (size_t k = 0; k < z->names[i].n; k++)
            free(z->names[i].recs[k].str);
        free(z->names[i].recs);
        free(z->names[i].name);
    }
    free(z->names);
    memset(z, 0, sizeof *z);
}

/* ----------------------------------------------------------- fake resolver */

#define FAKE_MAX_RR 64

struct fq {
    struct fake *f;
    enum spf_qtype type;
    char name[512];
    spf_answer_cb cb;
    void *arg;
    struct fq *next;
};

struct fake {
    struct zone *z;
    struct fq *head, *tail;
    unsigned queries, cancels, answers;
    int in_query; /* to prove no answer comes from inside query() */
};

static void *fake_query(void *ctx, enum spf_qtype type, const char *name, spf_answer_cb cb,
                        void *arg)
{
    struct fake *f = ctx;
    struct fq *q = calloc(1, sizeof *q);

    assert_non_null(q);
    assert_true(strlen(name) <= 253);
    f->in_query = 1;
    q->f = f;
    q->type = type;
    snprintf(q->name, sizeof q->name, "%s", name);
    q->cb = cb;
    q->arg = arg;
    if (f->tail)
        f->tail->next = q;
    else
        f->head = q;
    f->tail = q;
    f->queries++;
    f->in_query = 0;
    return q;
}

static void fake_cancel(void *ctx, void *handle)
{
    struct fake *f = ctx;
    struct fq **pp = &f->head, *prev = NULL;

    for (; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
        if (*pp == handle) {
            struct fq *q = *pp;
            *pp = q->next;
            if (f->tail == q)
                f->tail = prev;
            free(q);
            f->cancels++;
            return;
        }
    }
    fail_msg("cancel of a query that is not outstanding");
}

static enum ztype ztype_of(enum spf_qtype t)
{
    static const enum ztype map[] = {[SPF_Q_A] = Z_A,
                                     [SPF_Q_AAAA] = Z_AAAA,
                                     [SPF_Q_MX] = Z_MX,
                                     [SPF_Q_TXT] = Z_TXT,
                                     [SPF_Q_PTR] = Z_PTR};
    return map[t];
}

static int by_pref(const void *a, const void *b)
{
    const struct zrec *x = *(struct zrec *const *)a, *y = *(struct zrec *const *)b;
    return x->pref != y->pref ? x->pref - y->pref : (x < y ? -1 : 1);
}

/* The records of type at name, following CNAMEs; status as the seam wants */
static enum spf_dns_status fake_resolve(struct zone *z, const char *name, enum ztype type,
                                        struct zrec **out, size_t *n)
{
    struct zname *zn;
    int hops = 0;

    *n = 0;
    for (;;) {
        if ((zn = zone_name(z, name, 0)) == NULL)
            return SPF_DNS_NXDOMAIN;
        if (zn->n == 0 || zn->recs[0].type != Z_CNAME)
            break;
        if (++hops > 8)
            return SPF_DNS_TEMPFAIL; /* a CNAME loop: SERVFAIL */
        name = zn->recs[0].str;
    }
    for (size_t i = 0; i < zn->n && *n < FAKE_MAX_RR; i++) {
        if (zn->recs[i].type == Z_TIMEOUT) {
            if (*n == 0)
                return SPF_DNS_TEMPFAIL;
            break;
        }
        if (zn->recs[i].type == type)
            out[(*n)++] = &zn->recs[i];
    }
    if (type == Z_MX)
        qsort(out, *n, sizeof *out, by_pref);
    return *n ? SPF_DNS_OK : SPF_DNS_NODATA;
}

static void fake_answer(struct fake *f, struct fq *q)
{
    struct zrec *recs[FAKE_MAX_RR];
    struct spf_rr rr[FAKE_MAX_RR];
    struct spf_answer a = {0, 0, rr};
    size_t n;

    memset(rr, 0, sizeof rr);
    a.status = fake_resolve(f->z, q->name, ztype_of(q->type), recs, &n);
    for (size_t i = 0; a.status == SPF_DNS_OK && i < n; i++) {
        rr[i].str = recs[i]->str;
        rr[i].len = recs[i]->len;
        rr[i].family = recs[i]->family;
        memcpy(rr[i].addr, recs[i]->addr, 16);
    }
    a.count = a.status == SPF_DNS_OK ? n : 0;
    f->answers++;
    q->cb(&a, q->arg);
}

/* Answer queries in order until none is left. */
static void fake_drain(struct fake *f)
{
    while (f->head != NULL) {
        struct fq *q = f->head;
        f->head = q->next;
        if (f->head == NULL)
            f->tail = NULL;
        fake_answer(f, q);
        free(q);
    }
}

/* --------------------------------------------------------------- one check */

struct run {
    int done;
    struct spf_check *c;
};

static void on_done(struct spf_check *c, void *arg)
{
    struct run *r = arg;
    assert_ptr_equal(c, r->c);
    r->done++;
}

static void make_addr(const char *host, struct sockaddr_storage *ss)
{
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof *ss);
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        return;
    }
    s6->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, host, &s6->sin6_addr), 1);
}

/* Run a check to its end against zone z; the caller frees it. */
static struct spf_check *check(struct zone *z, struct fake *f, const char *host, const char *helo,
                               const char *mailfrom, enum spf_identity id)
{
    static struct spf_resolver res = {fake_query, fake_cancel, NULL};
    struct sockaddr_storage ss;
    struct spf_request req = {0};
    struct run r = {0, NULL};

    memset(f, 0, sizeof *f);
    f->z = z;
    res.ctx = f;
    make_addr(host, &ss);
    req.client = (struct sockaddr *)&ss;
    req.helo = helo;
    req.mailfrom = mailfrom;
    req.identity = id;
    req.receiver = "mx.receiver.example";
    req.default_exp = "DEFAULT";
    r.c = spf_new(&res, &req);
    assert_non_null(r.c);
    if (spf_start(r.c, on_done, &r) == 0) {
        fake_drain(f);
        assert_int_equal(r.done, 1);
    } else {
        assert_int_equal(r.done, 0);
    }
    assert_null(f->head); /* nothing left outstanding */
    assert_int_equal(f->queries, f->answers + f->cancels);
    return r.c;
}

/* ------------------------------------------------------------ YAML suite */

static const char *scalar(yaml_document_t *d, yaml_node_t *n, size_t *len)
{
    if (n == NULL || n->type != YAML_SCALAR_NODE)
        return NULL;
    if (len)
        *len = n->data.scalar.length;
    return (const char *)n->data.scalar.value;
}

static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *k = scalar(d, yaml_document_get_node(d, p->key), NULL);
        if (k && strcmp(k, key) == 0)
            return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

/* A TXT/SPF value: a string, or a list of strings joined (RFC 7208 3.3) */
static void add_text(struct zone *z, const char *name, enum ztype t, yaml_document_t *d,
                     yaml_node_t *v)
{
    char buf[8192];
    size_t n = 0, len;
    const char *s;

    if ((s = scalar(d, v, &len)) != NULL) {
        if (strcmp(s, "NONE") == 0) {
            if (t == Z_TXT)
                zone_name(z, name, 1)->has_txt = 1;
            return;
        }
        zone_add(z, name, t, s, len);
        return;
    }
    assert_int_equal(v->type, YAML_SEQUENCE_NODE);
    for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
        s = scalar(d, yaml_document_get_node(d, *i), &len);
        assert_non_null(s);
        assert_true(n + len < sizeof buf);
        memcpy(buf + n, s, len);
        n += len;
    }
    zone_add(z, name, t, buf, n);
}

static void add_rr(struct zone *z, const char *name, yaml_document_t *d, const char *type,
                   yaml_node_t *v)
{
    static const struct {
        const char *name;
        enum ztype t;
    } types[] = {{"A", Z_A},     {"AAAA", Z_AAAA}, {"MX", Z_MX},      {"TXT", Z_TXT},
                 {"PTR", Z_PTR}, {"SPF", Z_SPF},   {"CNAME", Z_CNAME}};
    size_t i, len;
    const char *s;

    for (i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(type, types[i].name) == 0)
            break;
    assert_true(i < sizeof types / sizeof types[0]);
    if (types[i].t == Z_TXT || types[i].t == Z_SPF) {
        add_text(z, name, types[i].t, d, v);
    } else if (types[i].t == Z_MX) { /* [preference, exchange] */
        yaml_node_item_t *it = v->data.sequence.items.start;
        const char *pref = scalar(d, yaml_document_get_node(d, it[0]), NULL);
        s = scalar(d, yaml_document_get_node(d, it[1]), &len);
        zone_add(z, name, Z_MX, s, len)->pref = atoi(pref);
    } else {
        s = scalar(d, v, &len);
        assert_non_null(s);
        zone_add(z, name, types[i].t, s, len);
    }
}

static void load_zone(struct zone *z, yaml_document_t *d, yaml_node_t *zd)
{
    for (yaml_node_pair_t *p = zd->data.mapping.pairs.start; p < zd->data.mapping.pairs.top; p++) {
        const char *name = scalar(d, yaml_document_get_node(d, p->key), NULL);
        yaml_node_t *list = yaml_document_get_node(d, p->value);
        zone_name(z, name, 1);
        for (yaml_node_item_t *i = list->data.sequence.items.start;
             i < list->data.sequence.items.top; i++) {
            yaml_node_t *e = yaml_document_get_node(d, *i);
            const char *s = scalar(d, e, NULL);
            if (s != NULL) {
                assert_string_equal(s, "TIMEOUT");
                zone_add(z, name, Z_TIMEOUT, NULL, 0);
                continue;
            }
            yaml_node_pair_t *kv = e->data.mapping.pairs.start;
            add_rr(z, name, d, scalar(d, yaml_document_get_node(d, kv->key), NULL),
                   yaml_document_get_node(d, kv->value));
        }
    }
    zone_finish(z);
}

static int result_ok(yaml_document_t *d, yaml_node_t *want, enum spf_result got)
{
    const char *s = scalar(d, want, NULL);

    if (s != NULL)
        return spf_result_parse(s) == (int)got;
    for (yaml_node_item_t *i = want->data.sequence.items.start; i < want->data.sequence.items.top;
         i++)
        if (spf_result_parse(scalar(d, yaml_document_get_node(d, *i), NULL)) == (int)got)
            return 1;
    return 0;
}

static int first_result(yaml_document_t *d, yaml_node_t *want, enum spf_result got)
{
    yaml_node_t *first = yaml_document_get_node(d, want->data.sequence.items.start[0]);
    return spf_result_parse(scalar(d, first, NULL)) == (int)got;
}

struct tally {
    size_t total, passed;
};

static void run_case(struct zone *z, yaml_document_t *d, const char *name, yaml_node_t *t,
                     struct tally *tl)
{
    const char *host = scalar(d, map_get(d, t, "host"), NULL);
    const char *helo = scalar(d, map_get(d, t, "helo"), NULL);
    const char *from = scalar(d, map_get(d, t, "mailfrom"), NULL);
    const char *exp = scalar(d, map_get(d, t, "explanation"), NULL);
    yaml_node_t *want = map_get(d, t, "result");
    struct fake f;
    struct spf_check *c;
    const struct spf_outcome *o;
    int ok;

    assert_non_null(host);
    assert_non_null(want);
    c = check(z, &f, host, helo, from, SPF_ID_MAILFROM);
    o = spf_outcome(c);
    ok = result_ok(d, want, o->result) && (exp == NULL || strcmp(exp, o->explanation) == 0);
    tl->total++;
    if (ok && scalar(d, want, NULL) == NULL && !first_result(d, want, o->result))
        printf("note %s: %s is acceptable, the suite prefers another result\n", name,
               spf_result_name(o->result));
    if (ok)
        tl->passed++;
    else
        printf("FAIL %s: got %s (mechanism \"%s\", problem \"%s\", explanation \"%s\")\n", name,
               spf_result_name(o->result), o->mechanism, o->problem, o->explanation);
    spf_free(c);
}

static void run_document(yaml_document_t *d, struct tally *tl)
{
    yaml_node_t *root = yaml_document_get_root_node(d), *tests, *zd;
    struct zone z = {0};

    tests = map_get(d, root, "tests");
    zd = map_get(d, root, "zonedata");
    assert_non_null(tests);
    if (zd != NULL)
        load_zone(&z, d, zd);
    for (yaml_node_pair_t *p = tests->data.mapping.pairs.start; p < tests->data.mapping.pairs.top;
         p++)
        run_case(&z, d, scalar(d, yaml_document_get_node(d, p->key), NULL),
                 yaml_document_get_node(d, p->value), tl);
    zone_free(&z);
}

static void test_rfc7208_suite(void **state)
{
    const char *path = getenv("SPF_SUITE") ? getenv("SPF_SUITE") : SPF_SUITE_FILE;
    FILE *fp = fopen(path, "rb");
    yaml_parser_t parser;
    struct tally tl = {0, 0};
    size_t docs = 0;

    if (fp == NULL)
        fail_msg("cannot open the RFC 7208 suite %s (set SPF_SUITE)", path);
    assert_int_equal(yaml_parser_initialize(&parser), 1);
    yaml_parser_set_input_file(&parser, fp);
    for (;;) {
        yaml_document_t d;
        if (!yaml_parser_load(&parser, &d))
            fail_msg("%s: YAML error: %s", path, parser.problem ? parser.problem : "?");
        if (yaml_document_get_root_node(&d) == NULL) {
            yaml_document_delete(&d);
            break;
        }
        run_document(&d, &tl);
        yaml_document_delete(&d);
        docs++;
    }
    yaml_parser_delete(&parser);
    fclose(fp);
    printf("RFC 7208 test suite: %zu of %zu cases passed (%zu scenarios, %s)\n", tl.passed,
           tl.total, docs, path);
    assert_true(tl.total >= 200); /* the 2014.04 release has 203 */
    assert_int_equal(tl.passed, tl.total);
}

/* ------------------------------------------------------- beyond the suite */

static void small_zone(struct zone *z)
{
    static const char rec[] = "v=spf1 a:mail.example.org -all exp=why.example.org";
    static const char why[] = "%{i} may not send for %{d}; see %{r}";

    memset(z, 0, sizeof *z);
    zone_add(z, "example.org", Z_TXT, rec, sizeof rec - 1);
    zone_add(z, "why.example.org", Z_TXT, why, sizeof why - 1);
    zone_add(z, "mail.example.org", Z_A, "192.0.2.10", 10);
    zone_add(z, "mail.example.org", Z_TXT, "v=spf1 ip4:192.0.2.10 -all", 26);
}

static void test_pass_and_header(void **state)
{
    struct zone z;
    struct fake f;
    struct spf_check *c;
    char hdr[1024];

    small_zone(&z);
    c = check(&z, &f, "192.0.2.10", "mail.example.org", "alice@example.org", SPF_ID_MAILFROM);
    assert_int_equal(spf_outcome(c)->result, SPF_PASS);
    assert_string_equal(spf_outcome(c)->mechanism, "a:mail.example.org");
    assert_int_equal(spf_received_spf(c, hdr, sizeof hdr), 0);
    assert_string_equal(hdr, "pass (mx.receiver.example: domain of alice@example.org designates "
                             "192.0.2.10 as permitted sender) client-ip=192.0.2.10; "
                             "envelope-from=\"alice@example.org\"; helo=mail.example.org; "
                             "receiver=mx.receiver.example; identity=mailfrom; "
                             "mechanism=\"a:mail.example.org\";");
    assert_int_equal(spf_received_spf(c, hdr, 40), -1); /* too small: cut, said so */
    assert_int_equal(strlen(hdr), 39);
    spf_free(c);
    zone_free(&z);
}

static void test_fail_explanation_macros(void **state)
{
    struct zone z;
    struct fake f;
    struct spf_check *c;

    small_zone(&z);
    c = check(&z, &f, "2001:db8::1", "x.example.net", "bob@example.org", SPF_ID_MAILFROM);
    assert_int_equal(spf_outcome(c)->result, SPF_FAIL);
    assert_string_equal(spf_outcome(c)->mechanism, "-all");
    assert_string_equal(spf_outcome(c)->explanation,
                        "2.0.0.1.0.D.B.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1 may not "
                        "send for example.org; see mx.receiver.example");
    spf_free(c);
    zone_free(&z);
}

/* HELO identity: <sender> is postmaster@helo, the domain the HELO name */
static void test_helo_identity(void **state)
{
    struct zone z;
    struct fake f;
    struct spf_check *c;
    char hdr[1024];

    small_zone(&z);
    c = check(&z, &f, "192.0.2.10", "mail.example.org", "someone@elsewhere.example", SPF_ID_HELO);
    assert_int_equal(spf_outcome(c)->result, SPF_PASS);
    assert_string_equal(spf_outcome(c)->sender, "postmaster@mail.example.org");
    assert_string_equal(spf_outcome(c)->mechanism, "ip4:192.0.2.10");
    assert_int_equal(spf_received_spf(c, hdr, sizeof hdr), 0);
    assert_non_null(strstr(hdr, " identity=helo;"));
    assert_null(strstr(hdr, "envelope-from"));
    spf_free(c);
    zone_free(&z);
}

/* Hostile HELO and sender: the header stays one line, values quoted */
static void test_header_quoting(void **state)
{
    struct zone z = {0};
    struct fake f;
    struct spf_check *c;
    char hdr[2048];

    c = check(&z, &f, "192.0.2.1", "evil\"\r\nX-Injected: (1)\\", "a\"b\r\n@x", SPF_ID_MAILFROM);
    assert_int_equal(spf_outcome(c)->result, SPF_NONE);
    assert_int_equal(spf_received_spf(c, hdr, sizeof hdr), 0);
    assert_null(strchr(hdr, '\r'));
    assert_null(strchr(hdr, '\n'));
    assert_non_null(strstr(hdr, "helo=\"evil\\\"??X-Injected: (1)\\\\\";"));
    assert_non_null(strstr(hdr, "envelope-from=\"a\\\"b??@x\";"));
    assert_non_null(strstr(hdr, "(mx.receiver.example: domain of a\"b??@x does not designate"));
    spf_free(c);
}

/* spf_free() with lookups out cancels them; no callback ever comes */
static void test_cancel(void **state)
{
    static struct spf_resolver res = {fake_query, fake_cancel, NULL};
    struct zone z;
    struct fake f = {0};
    struct sockaddr_storage ss;
    struct spf_request req = {0};
    struct run r = {0, NULL};

    small_zone(&z);
    f.z = &z;
    res.ctx = &f;
    make_addr("192.0.2.99", &ss);
    req.client = (struct sockaddr *)&ss;
    req.helo = "mail.example.org";
    req.mailfrom = "carol@example.org";
    r.c = spf_new(&res, &req);
    assert_int_equal(spf_start(r.c, on_done, &r), 0);
    assert_int_equal(f.queries, 1); /* TXT example.org */
    spf_free(r.c);
    assert_int_equal(f.cancels, 1);
    assert_null(f.head);
    assert_int_equal(r.done, 0);
    zone_free(&z);
}

/* No DNS needed (no usable domain): finished at once, no callback */
static void test_immediate_none(void **state)
{
    struct zone z = {0};
    struct fake f;
    struct spf_check *c = check(&z, &f, "192.0.2.1", "localhost", "", SPF_ID_MAILFROM);

    assert_int_equal(spf_outcome(c)->result, SPF_NONE);
    assert_int_equal(f.queries, 0);
    spf_free(c);
}

/* Every term of a long record is bounded: 257 terms is a permerror */
static void test_term_limit(void **state)
{
    struct zone z = {0};
    struct fake f;
    struct spf_check *c;
    char rec[SPF_RECORD_MAX];
    size_t n = (size_t)snprintf(rec, sizeof rec, "v=spf1");

    for (int i = 0; i < SPF_MAX_TERMS + 1; i++)
        n += (size_t)snprintf(rec + n, sizeof rec - n, " ?a");
    zone_add(&z, "big.example", Z_TXT, rec, n);
    c = check(&z, &f, "192.0.2.1", "h.example", "x@big.example", SPF_ID_MAILFROM);
    assert_int_equal(spf_outcome(c)->result, SPF_PERMERROR);
    assert_string_equal(spf_outcome(c)->problem, "big.example: more than 256 terms");
    assert_int_equal(f.queries, 1);
    spf_free(c);
    zone_free(&z);
}

/* A backslash in an expanded name would be an escape to the resolver: the
 * name is unusable (no match), it is never asked for */
static void test_backslash_name_not_queried(void **state)
{
    static const char rec[] = "v=spf1 exists:%{l}.x.bs.example -all";
    struct zone z = {0};
    struct fake f;
    struct spf_check *c;

    zone_add(&z, "bs.example", Z_TXT, rec, sizeof rec - 1);
    c = check(&z, &f, "192.0.2.1", "h.example", "a\\046b@bs.example", SPF_ID_MAILFROM);
    assert_int_equal(spf_outcome(c)->result, SPF_FAIL);
    assert_int_equal(f.queries, 1); /* the TXT record only */
    spf_free(c);
    zone_free(&z);
}

static void *refuse_query(void *ctx, enum spf_qtype type, const char *name, spf_answer_cb cb,
                          void *arg)
{
    return NULL;
}

/* A resolver that cannot ask: temperror at once, no callback */
static void test_resolver_refuses(void **state)
{
    struct spf_resolver res = {refuse_query, fake_cancel, NULL};
    struct sockaddr_storage ss;
    struct spf_request req = {0};
    struct run r = {0, NULL};

    make_addr("192.0.2.1", &ss);
    req.client = (struct sockaddr *)&ss;
    req.mailfrom = "a@example.org";
    r.c = spf_new(&res, &req);
    assert_int_equal(spf_start(r.c, on_done, &r), 1);
    assert_int_equal(spf_outcome(r.c)->result, SPF_TEMPERROR);
    assert_string_equal(spf_outcome(r.c)->problem, "cannot query example.org");
    assert_int_equal(r.done, 0);
    spf_free(r.c);
}

static void test_result_names(void **state)
{
    for (int i = 0; i < SPF_RESULT_COUNT; i++)
        assert_int_equal(spf_result_parse(spf_result_name((enum spf_result)i)), i);
    assert_int_equal(spf_result_parse("SoftFail"), SPF_SOFTFAIL);
    assert_int_equal(spf_result_parse("unknown"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7208_suite),
        cmocka_unit_test(test_pass_and_header),
        cmocka_unit_test(test_fail_explanation_macros),
        cmocka_unit_test(test_helo_identity),
        cmocka_unit_test(test_header_quoting),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_immediate_none),
        cmocka_unit_test(test_term_limit),
        cmocka_unit_test(test_backslash_name_not_queried),
        cmocka_unit_test(test_resolver_refuses),
        cmocka_unit_test(test_result_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
