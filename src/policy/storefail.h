/*
 * storefail.h - what a store-backed check answers while its store is down.
 *
 * The store reports an outage (STORE_EDOWN: Redis stopped, unreachable or
 * too slow) and logs it once (event=store_down / store_up). Each check that
 * gets STORE_EDOWN gives the verdict store { on_error } asks for: "pass", no
 * opinion (the check is as if it were not listed); "tempfail", 451 4.3.0 so
 * that the client retries when the shared state is back. Either is counted
 * ("store_down.pass" / "store_down.tempfail" in /metrics), never logged per
 * message.
 */
#ifndef MX_POLICY_STOREFAIL_H
#define MX_POLICY_STOREFAIL_H

#include "policy/policy.h"

struct store;

/* storefail_verdict - fill v for a store outage; returns v */
struct policy_verdict *storefail_verdict(const struct store *st, struct policy_verdict *v);

#endif
