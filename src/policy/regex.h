/* regex.h - operator regular expressions (PCRE2) for the checks: /slashes/
 * optional, caseless, JIT when available, matching bounded in CPU */
#ifndef MX_POLICY_REGEX_H
#define MX_POLICY_REGEX_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>

/* What one check needs to run matches: scratch space and the match limit. */
struct regex_matcher {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
};

/* regex_matcher_init - 0, or -1 when out of memory */
int regex_matcher_init(struct regex_matcher *m);
void regex_matcher_free(struct regex_matcher *m);

/* regex_unslash - the pattern inside optional /slashes/: advances *pat, returns its length */
size_t regex_unslash(const char **pat, size_t len);

/* regex_compile - pat (len octets, no slashes) caseless; NULL with err
 * filled ("empty regular expression", "bad regular expression at offset N: ...") */
pcre2_code *regex_compile(const char *pat, size_t len, char *err, size_t errlen);

/*
 * regex_match - 1 when re matches s, 0 when not. An error (the match limit,
 * an operator's pattern too costly for this subject) counts as no match and
 * is logged with check and line (0: none) so that the operator can fix it.
 */
int regex_match(const struct regex_matcher *m, const pcre2_code *re, const char *s,
                const char *check, unsigned line);

#endif
