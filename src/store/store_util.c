/* store_util.c - the store's helpers that need no store: status texts, counters, URIs */
#include "store/store.h"

#include <stdio.h>
#include <string.h>

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

/* store_uri_safe - "scheme://:secret@host" as "scheme://:***@host" */
const char *store_uri_safe(const char *uri, char *dst, size_t len)
{
    const char *slashes = strstr(uri, "://"), *at;
    char tmp[4200];

    snprintf(tmp, sizeof(tmp), "%s", uri);
    if (slashes && (at = strchr(slashes + 3, '@')) != NULL)
        snprintf(tmp, sizeof(tmp), "%.*s***%s", (int)(slashes + 4 - uri), uri, at);
    snprintf(dst, len, "%s", tmp);
    return dst;
}

/* store_counter_decode - a counter value: 8 octets, little-endian int64 */
int store_counter_decode(const void *val, size_t vlen, int64_t *out)
{
    const unsigned char *p = val;
    uint64_t u = 0;

    if (!val || vlen != 8)
        return -1;
    for (int i = 7; i >= 0; i--)
        u = u << 8 | p[i];
    *out = (int64_t)u;
    return 0;
}

/* store_strerror - a short text for a status */
const char *store_strerror(int status)
{
    static const char *const text[] = {
        [STORE_OK] = "ok",
        [STORE_NOTFOUND] = "not found",
        [STORE_EINVAL] = "invalid key or value",
        [STORE_ETYPE] = "not a counter",
        [STORE_ERANGE] = "counter overflow",
        [STORE_EFULL] = "store full",
        [STORE_ELIMIT] = "scan result too large",
        [STORE_ENOMEM] = "out of memory",
        [STORE_EIO] = "store i/o error",
        [STORE_EDOWN] = "store unreachable",
        [STORE_EBUSY] = "held by another",
    };

    if (status < 0 || (size_t)status >= NITEMS(text) || !text[status])
        return "unknown store status";
    return text[status];
}
