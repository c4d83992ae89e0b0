/* registry.c - the table of policy checks; a new check adds one line here */
#include "policy/registry.h"
#include "policy/checks.h"

#include <string.h>

static const struct policy_check_ops *const policy_checks[] = {
    &policy_check_dnsbl,
    &policy_check_access,
    &policy_check_s25r,
    &policy_check_greylist,
    &policy_check_ratelimit,
    &policy_check_bounce_flood,
    &policy_check_batv,
    &policy_check_recipients,
    &policy_check_harvest,
    &policy_check_spf,
    &policy_check_dkim,
    &policy_check_sender,
    &policy_check_score,
    &policy_check_dmarc,
    &policy_check_quota,
    &policy_check_milter,
    &policy_check_clamd,
    &policy_check_userlists,
    NULL,
};

const struct config_section *policy_section(size_t i)
{
    for (size_t k = 0; policy_checks[k]; k++)
        if (policy_checks[k]->section && i-- == 0)
            return policy_checks[k]->section;
    return NULL;
}

/* policy_check_find - linear: a handful of checks, looked up at start only */
const struct policy_check_ops *policy_check_find(const char *name)
{
    for (size_t i = 0; policy_checks[i]; i++)
        if (strcmp(policy_checks[i]->name, name) == 0)
            return policy_checks[i];
    return NULL;
}
