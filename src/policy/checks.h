/* checks.h - the policy checks (one file each under src/policy/) */
#ifndef MX_POLICY_CHECKS_H
#define MX_POLICY_CHECKS_H

#include "policy/policy.h"

extern const struct policy_check_ops policy_check_access;
extern const struct policy_check_ops policy_check_s25r;

#endif
