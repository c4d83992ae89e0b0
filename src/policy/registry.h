/* registry.h - every policy check mxgate knows, by name */
#ifndef MX_POLICY_REGISTRY_H
#define MX_POLICY_REGISTRY_H

#include "policy/policy.h"

/* policy_check_find - the check called name, or NULL */
const struct policy_check_ops *policy_check_find(const char *name);

/* policy_section - the i-th check's configuration section, skipping checks without one;
 * NULL past the last (config_load assembles them with the other modules') */
const struct config_section *policy_section(size_t i);

#endif
