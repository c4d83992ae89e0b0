/* checks.h - the policy checks (one file each under src/policy/) */
#ifndef MX_POLICY_CHECKS_H
#define MX_POLICY_CHECKS_H

#include "policy/policy.h"

/* dnsbl, greylist, ratelimit (the greylist and ratelimit clocks: NULL means time(NULL);
 * tests give the same clock to the store with store_set_clock) */
#include <time.h>
extern const struct policy_check_ops policy_check_dnsbl;
extern const struct policy_check_ops policy_check_greylist;
extern const struct policy_check_ops policy_check_ratelimit;
void policy_greylist_set_clock(time_t (*now)(void));
void policy_ratelimit_set_clock(time_t (*now)(void));

extern const struct policy_check_ops policy_check_access;
extern const struct policy_check_ops policy_check_s25r;

/* bounce_flood (its clock: NULL means the real one; with a clock the window timer polls it) */
#include <time.h>
extern const struct policy_check_ops policy_check_bounce_flood;
void policy_bounceflood_set_clock(time_t (*now)(void));

/* batv (its clock: NULL means time(NULL); tests move the day) */
#include <time.h>
extern const struct policy_check_ops policy_check_batv;
void policy_batv_set_clock(time_t (*now)(void));

/* recipients (recipient verification at RCPT) and harvest (anti-harvesting) */
extern const struct policy_check_ops policy_check_recipients;
extern const struct policy_check_ops policy_check_harvest;

#endif
