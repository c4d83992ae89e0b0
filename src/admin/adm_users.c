/*
 * adm_users.c - the submission accounts' quotas for the operator: the listing
 * (policy/quota_users.c) and suspend / resume in the daemon's store. The
 * control socket splits requests at spaces, so mxgatectl sends the login
 * percent-encoded (adm_login_decode); the HTTP API's form parameters arrive
 * decoded.
 */
#include "admin/adm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/json.h"
#include "policy/quota.h"

/* hexval - one hex digit, or -1 */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int adm_login_decode(const char *s, char *dst, size_t len)
{
    size_t n = 0;

    for (; *s; s++) {
        int c = (unsigned char)*s;
        if (c == '%') {
            int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);
            if (lo < 0)
                return -1;
            c = hi * 16 + lo;
            s += 2;
        }
        if (c == 0 || n + 1 >= len)
            return -1;
        dst[n++] = (char)c;
    }
    dst[n] = '\0';
    return n > 0 ? 0 : -1;
}

int adm_user_set(const struct adm_env *env, const char *login, int suspend, char *err,
                 size_t errlen)
{
    if (!env->store) {
        snprintf(err, errlen, "no state store");
        return -1;
    }
    if (quota_set_suspended(env->store, login, suspend, clock_now()) < 0) {
        snprintf(err, errlen, "%s", errno == EINVAL ? "not a login" : "store refused the write");
        return -1;
    }
    return 0;
}

int adm_users_json(const struct adm_env *env, struct json *j)
{
    return env->store ? quota_users_json(adm_cfg(env), env->store, clock_now(), j) : -1;
}
