/* checks.h - the policy checks (one file each under src/policy/) */
#ifndef MX_POLICY_CHECKS_H
#define MX_POLICY_CHECKS_H

#include "policy/policy.h"

#endif
