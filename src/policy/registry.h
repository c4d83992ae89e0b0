/* registry.h - every policy check mxgate knows, by name */
#ifndef MX_POLICY_REGISTRY_H
#define MX_POLICY_REGISTRY_H

#include "policy/policy.h"

/* policy_check_find - the check called name, or NULL */
const struct policy_check_ops *policy_check_find(const char *name);

#endif
