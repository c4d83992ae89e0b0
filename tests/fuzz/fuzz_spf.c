/*
 * fuzz_spf.c - libFuzzer harness for the SPF evaluator: the input is the
 * SPF record every TXT query answers (first line), the MAIL FROM local part
 * (second line) and the HELO name (third); the first byte picks the client
 * address. A/AAAA/MX/PTR answers are made up from a hash of the name, so
 * include, redirect, mx and ptr wander through a little world where any
 * lookup may fail. Properties: the check ends, after a bounded number of
 * queries, with none left outstanding; the explanation, mechanism and
 * problem are printable and bounded; the Received-SPF value is one line.
 */
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "fuzz.h"
#include "policy/spf_eval.h"

#define MAX_QUERIES 200 /* 1 + 10 terms x (1 + 10) + %{p} (1 + 10) + exp */

struct q {
    spf_answer_cb cb;
    void *arg;
    enum spf_qtype type;
    char name[256];
    int live;
};

static struct world {
    const char *record;
    size_t reclen;
    struct q q[MAX_QUERIES + 1];
    size_t nq, next, outstanding;
} W;

static void *query(void *ctx, enum spf_qtype type, const char *name, spf_answer_cb cb, void *arg)
{
    struct q *q;

    FUZZ_ASSERT(strlen(name) <= 253);
    FUZZ_ASSERT(W.nq < MAX_QUERIES);
    q = &W.q[W.nq++];
    q->cb = cb;
    q->arg = arg;
    q->type = type;
    snprintf(q->name, sizeof q->name, "%s", name);
    q->live = 1;
    W.outstanding++;
    return q;
}

static void cancel(void *ctx, void *handle)
{
    struct q *q = handle;

    FUZZ_ASSERT(q->live);
    q->live = 0;
    W.outstanding--;
}

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)(*s | 0x20)) * 16777619u;
    return h;
}

static void answer(struct q *q)
{
    static char names[12][32];
    struct spf_rr rr[12];
    struct spf_answer a = {SPF_DNS_OK, 0, rr};
    unsigned h = hash(q->name);

    memset(rr, 0, sizeof rr);
    if (h % 16 == 0)
        a.status = SPF_DNS_TEMPFAIL;
    else if (h % 8 == 1)
        a.status = SPF_DNS_NXDOMAIN;
    else if (h % 8 == 2)
        a.status = SPF_DNS_NODATA;
    else if (q->type == SPF_Q_TXT) {
        rr[a.count].str = h % 5 ? W.record : "v=spf1 ip4:192.0.2.0/24 -all";
        rr[a.count].len = h % 5 ? W.reclen : strlen(rr[0].str);
        a.count++;
    } else {
        a.count = 1 + (h >> 4) % 12;
        for (size_t i = 0; i < a.count; i++) {
            snprintf(names[i], sizeof names[i], "%s%zu.example.org", i % 2 ? "mx" : "h", i);
            rr[i].str = names[i];
            rr[i].len = strlen(names[i]);
            rr[i].family = q->type == SPF_Q_AAAA ? AF_INET6 : AF_INET;
            rr[i].addr[0] = 192;
            rr[i].addr[3] = (unsigned char)(h >> (i % 8));
        }
    }
    if (a.status != SPF_DNS_OK)
        a.count = 0;
    q->live = 0;
    W.outstanding--;
    q->cb(&a, q->arg);
}

static int done;

static void on_done(struct spf_check *c, void *arg)
{
    done++;
}

static void printable(const char *s, size_t max)
{
    FUZZ_ASSERT(strlen(s) <= max);
    for (; *s; s++)
        FUZZ_ASSERT(*s >= ' ' && *s <= '~');
}

static void check_outcome(struct spf_check *c)
{
    const struct spf_outcome *o = spf_outcome(c);
    char hdr[4096];

    FUZZ_ASSERT((unsigned)o->result < SPF_RESULT_COUNT);
    printable(o->explanation, SPF_EXPLANATION_MAX);
    printable(o->mechanism, 255);
    printable(o->problem, 199);
    FUZZ_ASSERT(o->result == SPF_FAIL || o->explanation[0] == '\0');
    spf_received_spf(c, hdr, sizeof hdr);
    FUZZ_ASSERT(strpbrk(hdr, "\r\n") == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct spf_resolver res = {query, cancel, NULL};
    struct sockaddr_in6 sa6 = {0};
    struct spf_request req = {0};
    char buf[8192], from[400], *line[3] = {buf, "", "helo.example.org"};
    struct spf_check *c;

    if (size < 1 || size >= sizeof buf)
        return -1;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    for (int i = 1; i < 3; i++) { /* record \n local part \n helo */
        char *nl = strchr(line[i - 1], '\n');
        if (nl == NULL)
            break;
        *nl = '\0';
        line[i] = nl + 1;
    }
    memset(&W, 0, sizeof W);
    W.record = buf;
    W.reclen = strlen(buf);
    snprintf(from, sizeof from, "%s@example.org", line[1]);
    sa6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, data[0] & 1 ? "::ffff:192.0.2.7" : "2001:db8::7", &sa6.sin6_addr);
    req.client = (struct sockaddr *)&sa6;
    req.mailfrom = from;
    req.helo = line[2];
    req.receiver = "mx.example.net";
    req.identity = data[0] & 2 ? SPF_ID_HELO : SPF_ID_MAILFROM;
    done = 0;
    c = spf_new(&res, &req);
    FUZZ_ASSERT(c != NULL);
    if (spf_start(c, on_done, NULL) == 0) {
        while (W.next < W.nq && !done)
            if (W.q[W.next++].live)
                answer(&W.q[W.next - 1]);
        FUZZ_ASSERT(done == 1);
    }
    FUZZ_ASSERT(W.outstanding == 0);
    check_outcome(c);
    spf_free(c);
    return 0;
}
