/* validate.h - the policy's part of checking a configuration (mxgated -n and start-up) */
#ifndef MX_POLICY_VALIDATE_H
#define MX_POLICY_VALIDATE_H

struct config_diag;
struct policy_env;

/*
 * policy_validate - everything policy_new would refuse, each error reported
 * to d as "file:line: message" (every one, not just the first): each name in
 * a listener's checks must be a check, and each check that a listener runs
 * must initialise (its options, its list and rule files). Then warnings for
 * settings that can have no effect. env->checking is set for the inits; no
 * store or resolver is needed.
 */
void policy_validate(const struct policy_env *env, struct config_diag *d);

#endif
