/* storefail.c - a check's verdict while the store is down (see storefail.h) */
#include "policy/storefail.h"

#include <stdio.h>

#include "core/metrics.h"
#include "store/store.h"

struct policy_verdict *storefail_verdict(const struct store *st, struct policy_verdict *v)
{
    if (store_on_error(st) == STORE_ON_ERROR_TEMPFAIL) {
        metrics_event("store_down.tempfail");
        policy_verdict_set(v, POLICY_TEMPFAIL, 451, "4.3.0", "store-down",
                           "Temporary local problem, please try again later");
    } else {
        metrics_event("store_down.pass");
        policy_verdict_dunno(v);
        snprintf(v->reason, sizeof(v->reason), "store-down");
    }
    return v;
}
