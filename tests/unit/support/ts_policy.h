/* ts_policy.h - a configuration and policy written and loaded for a test, and
 * the policy pipeline driven on the fixture's loop until it decides */
#ifndef TS_POLICY_H
#define TS_POLICY_H

#include <stddef.h>

#include "policy/policy.h"
#include "ts_dns.h"
#include "ts_fixture.h"

/* ts_env - the environment checks see: the fixture's loop, store and statistics */
struct policy_env ts_env(const struct ts_fixture *fx);
/* ts_policy_load - unload, write conf as <dir>/mxgate.conf, load it, make the policy
 * over env (its cfg is filled in). The policy, or NULL with the message in err; a
 * configuration that does not load leaves fx->cfg NULL, for tests to assert on */
struct policy *ts_policy_load(struct ts_fixture *fx, const char *conf, struct policy_env *env,
                              char *err, size_t errlen);
/* ts_policy_checks - the usual mxgate.conf (hostname, spool and state in dir) with
 * listener "mx" running checks, then sections where "@" stands for the fixture
 * directory; 0, or -1 with the message in fx->err. The configuration must load */
int ts_policy_checks(struct ts_fixture *fx, const char *checks, const char *sections);

/* ts_client - a client of listener "mx" at ip (IPv4 or IPv6) with a zeroed auth (as
 * the session gives it at MAIL), nothing else set */
void ts_client(struct policy_client *cl, const char *ip);

/* ts_client_rdns - ts_client with its rDNS state: name is the confirmed name or the PTR */
void ts_client_rdns(struct policy_client *cl, const char *ip, enum policy_rdns rdns,
                    const char *name);

struct ts_outcome {
    int calls;   /* verdicts delivered: exactly 1 once ts_stage returns */
    int sync;    /* of those, delivered from inside policy_start */
    double secs; /* from policy_start to the verdict */
    struct policy_verdict v;
};

/* ts_on_verdict - a policy_done_fn counting into a struct ts_outcome */
void ts_on_verdict(void *arg, const struct policy_verdict *v);
/* ts_stage - run stage st of chain "mx" for cl until it decides: ms > 0 waits
 * up to ms, 0 only takes what is ready (ts_settle) for checks that never wait
 * on a timer. Asserts exactly one verdict */
struct ts_outcome ts_stage(struct ts_fixture *fx, enum policy_stage st, struct policy_client *cl,
                           int ms);

/* A fixture with the fake DNS server answering from table, a real resolver
 * pointed at it (timeout seconds per try) and a store for the statistics:
 * what the tests of the checks that use DNS share. */
struct ts_dns_world {
    struct ts_fixture fx;
    struct ts_dns_fake fake;
    struct dns *dns;
};
void ts_dns_world_start(struct ts_dns_world *w, const char *name, const struct ts_dns_entry *table,
                        size_t n, unsigned timeout);
/* ts_dns_world_stop - the policy, then the resolver and the server before their loop */
void ts_dns_world_stop(struct ts_dns_world *w);

#endif
