/* checks.h - the policy checks (one file each under src/policy/) */
#ifndef MX_POLICY_CHECKS_H
#define MX_POLICY_CHECKS_H

#include "policy/policy.h"

/* Time-based checks read core/clock.h: a unit test moves time for all of them
 * and the store at once with clock_set(). */

/* dnsbl, greylist, ratelimit */
extern const struct policy_check_ops policy_check_dnsbl;
extern const struct policy_check_ops policy_check_greylist;
extern const struct policy_check_ops policy_check_ratelimit;

extern const struct policy_check_ops policy_check_access;
extern const struct policy_check_ops policy_check_s25r;

/* bounce_flood (with an injected clock its window timer polls it) */
extern const struct policy_check_ops policy_check_bounce_flood;

/* spf (RFC 7208 at MAIL, spf.c; the evaluator is spf_eval.h) */
extern const struct policy_check_ops policy_check_spf;

/* dkim (RFC 6376 at END, dkim.c; the engine is mail/dkim.h) */
extern const struct policy_check_ops policy_check_dkim;

/* sender (MAIL FROM, HELO and header From: domains exist; our own domains from
 * outside only with SPF pass) and score (thresholds on the SCORE points; X-Spam-*) */
extern const struct policy_check_ops policy_check_sender;
extern const struct policy_check_ops policy_check_score;

/* dmarc (RFC 7489 at END, dmarc.c; record, alignment and PSL in dmarc.h) */
extern const struct policy_check_ops policy_check_dmarc;

/* batv */
extern const struct policy_check_ops policy_check_batv;

/* recipients (recipient verification at RCPT) and harvest (anti-harvesting) */
extern const struct policy_check_ops policy_check_recipients;
extern const struct policy_check_ops policy_check_harvest;

/* quota (per-login message and recipient quotas on submission listeners; quota.h) */
extern const struct policy_check_ops policy_check_quota;

/* milter (the Sendmail milter protocol, several milters in order; milter.c) */
extern const struct policy_check_ops policy_check_milter;

/* clamd (the message text through clamd's INSTREAM at END; clamd.h) */
extern const struct policy_check_ops policy_check_clamd;

/* userlists (per-user allow and deny lists at RCPT and END; userlists.h) */
extern const struct policy_check_ops policy_check_userlists;

#endif
