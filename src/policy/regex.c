/* regex.c - the PCRE2 handling shared by the checks that take patterns */
#include "policy/regex.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"

#define REGEX_MATCH_LIMIT 100000 /* bounds the CPU one operator regex may take per name */

/* regex_matcher_init - match data for one capture and the limited context */
int regex_matcher_init(struct regex_matcher *m)
{
    m->md = pcre2_match_data_create(1, NULL);
    m->mctx = pcre2_match_context_create(NULL);
    if (!m->md || !m->mctx) {
        regex_matcher_free(m);
        return -1;
    }
    pcre2_set_match_limit(m->mctx, REGEX_MATCH_LIMIT);
    return 0;
}

/* regex_matcher_free - release (safe on a zeroed or half-made matcher) */
void regex_matcher_free(struct regex_matcher *m)
{
    pcre2_match_data_free(m->md);
    pcre2_match_context_free(m->mctx);
    m->md = NULL;
    m->mctx = NULL;
}

/* regex_unslash - "/x/" is "x"; anything else stays */
size_t regex_unslash(const char **pat, size_t len)
{
    if (len >= 2 && (*pat)[0] == '/' && (*pat)[len - 1] == '/') {
        (*pat)++;
        len -= 2;
    }
    return len;
}

/* regex_compile - caseless, JIT when it can be had */
pcre2_code *regex_compile(const char *pat, size_t len, char *err, size_t errlen)
{
    PCRE2_UCHAR msg[128];
    PCRE2_SIZE off;
    pcre2_code *re;
    int code;

    if (len == 0) {
        snprintf(err, errlen, "empty regular expression");
        return NULL;
    }
    re = pcre2_compile((PCRE2_SPTR)pat, len, PCRE2_CASELESS, &code, &off, NULL);
    if (!re) {
        pcre2_get_error_message(code, msg, sizeof(msg));
        snprintf(err, errlen, "bad regular expression at offset %zu: %s", (size_t)off,
                 (const char *)msg);
        return NULL;
    }
    /* JIT only makes matching faster; the interpreter is used when it is unavailable. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

/* regex_match - 1 on a match; errors are logged and count as no match */
int regex_match(const struct regex_matcher *m, const pcre2_code *re, const char *s,
                const char *check, unsigned line)
{
    char q[300];
    int rc = pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, m->md, m->mctx);

    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH)
        log_warn("event=regex-error check=%s line=%u rc=%d subject=%s", check, line, rc,
                 log_quote(q, sizeof(q), s));
    return rc >= 0;
}
