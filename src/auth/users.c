/*
 * users.c - the users file (format in users.h): parsed once into a sorted,
 * immutable table so a lookup is a binary search and pool threads can read it.
 */
#include "auth/users.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"

#define USERS_LINE_MAX 4096
#define USERS_HASH_MAX 512
#define USERS_KEY_MAX 64
#define USERS_ATTRS_MAX 32
#define USERS_FILE_MAX (64u << 20)

struct users {
    struct users_entry *e;
    size_t n, cap;
};

/* user_free_entry - the strings one entry owns */
static void user_free_entry(struct users_entry *e)
{
    free((char *)e->login);
    free((char *)e->hash);
    for (size_t i = 0; i < e->nattrs; i++) {
        free((char *)e->attrs[i].key);
        free((char *)e->attrs[i].value);
    }
    free((void *)e->attrs);
}

void users_free(struct users *u)
{
    if (!u)
        return;
    for (size_t i = 0; i < u->n; i++)
        user_free_entry(&u->e[i]);
    free(u->e);
    free(u);
}

static int printable(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

/* user_field - the bytes of [p, end) if all are printable and none is in stop */
static const char *user_check(const char *p, size_t n, const char *stop)
{
    for (size_t i = 0; i < n; i++)
        if (!printable((unsigned char)p[i]) || strchr(stop, p[i]))
            return "character not allowed";
    return NULL;
}

/* user_attr - one key=value into e */
static const char *user_attr(struct users_entry *e, const char *p, size_t n)
{
    const char *eq = memchr(p, '=', n);
    struct users_attr *a;
    size_t kl;

    if (!eq || eq == p)
        return "attribute is not key=value";
    kl = (size_t)(eq - p);
    if (kl > USERS_KEY_MAX || strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_-") < kl)
        return "attribute key must be [a-z0-9_-], at most 64 bytes";
    if (user_check(eq + 1, n - kl - 1, ",="))
        return "attribute value must be printable ASCII without ',' or '='";
    if (e->nattrs >= USERS_ATTRS_MAX)
        return "too many attributes";
    for (size_t i = 0; i < e->nattrs; i++)
        if (strlen(e->attrs[i].key) == kl && memcmp(e->attrs[i].key, p, kl) == 0)
            return "duplicate attribute";
    e->attrs = xreallocarray((void *)e->attrs, e->nattrs + 1, sizeof(*e->attrs));
    a = (struct users_attr *)&e->attrs[e->nattrs++];
    a->key = xstrndup(p, kl);
    a->value = xstrndup(eq + 1, n - kl - 1);
    return NULL;
}

/* user_attrs - the comma-separated list after the second ':' */
static const char *user_attrs(struct users_entry *e, const char *p, const char *end)
{
    const char *why;

    while (p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        const char *stop = c ? c : end;

        if (stop > p && (why = user_attr(e, p, (size_t)(stop - p))))
            return why;
        p = c ? c + 1 : end;
    }
    return NULL;
}

/* user_line - one non-comment line into e */
static const char *user_line(struct users_entry *e, const char *p, const char *end)
{
    const char *c1 = memchr(p, ':', (size_t)(end - p)), *c2, *hend;

    if (!c1)
        return "expected login:hash";
    if (c1 == p || c1 - p > USERS_LOGIN_MAX || user_check(p, (size_t)(c1 - p), ":"))
        return "bad login (printable ASCII, no blanks, at most 255 bytes)";
    c2 = memchr(c1 + 1, ':', (size_t)(end - c1 - 1));
    hend = c2 ? c2 : end;
    if (hend == c1 + 1 || hend - c1 - 1 > USERS_HASH_MAX ||
        user_check(c1 + 1, (size_t)(hend - c1 - 1), ":"))
        return "bad hash (printable ASCII, no blanks)";
    e->login = xstrndup(p, (size_t)(c1 - p));
    e->hash = xstrndup(c1 + 1, (size_t)(hend - c1 - 1));
    return c2 ? user_attrs(e, c2 + 1, end) : NULL;
}

static int user_cmp(const void *a, const void *b)
{
    return strcasecmp(((const struct users_entry *)a)->login,
                      ((const struct users_entry *)b)->login);
}

/* users_sort - sorted for bsearch; a duplicate login is an error */
static int users_sort(struct users *u, const char *name, char *err, size_t errlen)
{
    qsort(u->e, u->n, sizeof(*u->e), user_cmp);
    for (size_t i = 1; i < u->n; i++)
        if (user_cmp(&u->e[i - 1], &u->e[i]) == 0) {
            snprintf(err, errlen, "%s:%u: duplicate login (first on line %u)", name,
                     u->e[i].line > u->e[i - 1].line ? u->e[i].line : u->e[i - 1].line,
                     u->e[i].line > u->e[i - 1].line ? u->e[i - 1].line : u->e[i].line);
            return -1;
        }
    return 0;
}

/* users_add - parse one line [p, end) numbered lineno into u */
static int users_add(struct users *u, const char *p, const char *end, unsigned lineno,
                     const char *name, char *err, size_t errlen)
{
    struct users_entry e = {.line = lineno};
    const char *why;

    if (end > p && end[-1] == '\r')
        end--;
    if (p == end || *p == '#')
        return 0;
    if (end - p > USERS_LINE_MAX)
        why = "line too long";
    else if ((why = user_line(&e, p, end)) == NULL) {
        if (u->n == u->cap)
            u->e = xreallocarray(u->e, u->cap = u->cap ? 2 * u->cap : 64, sizeof(*u->e));
        u->e[u->n++] = e;
        return 0;
    }
    user_free_entry(&e);
    snprintf(err, errlen, "%s:%u: %s", name, lineno, why);
    return -1;
}

struct users *users_parse(const char *name, const char *buf, size_t len, char *err, size_t errlen)
{
    struct users *u = xcalloc(1, sizeof(*u));
    const char *p = buf, *end = buf + len;
    unsigned lineno = 0;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;

        if (memchr(p, '\0', (size_t)(le - p))) {
            snprintf(err, errlen, "%s:%u: NUL byte", name, lineno + 1);
            goto fail;
        }
        if (users_add(u, p, le, ++lineno, name, err, errlen) < 0)
            goto fail;
        p = nl ? nl + 1 : end;
    }
    if (users_sort(u, name, err, errlen) == 0)
        return u;
fail:
    users_free(u);
    return NULL;
}

struct users *users_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    struct users *u = NULL;
    char *buf;
    size_t n;

    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    buf = xmalloc(USERS_FILE_MAX + 1);
    n = fread(buf, 1, USERS_FILE_MAX + 1, f);
    if (ferror(f))
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
    else if (n > USERS_FILE_MAX)
        snprintf(err, errlen, "%s: larger than 64 MiB", path);
    else
        u = users_parse(path, buf, n, err, errlen);
    fclose(f);
    free(buf);
    return u;
}

const struct users_entry *users_find(const struct users *u, const char *login)
{
    struct users_entry key = {.login = login};

    if (!u || !login || u->n == 0)
        return NULL;
    return bsearch(&key, u->e, u->n, sizeof(*u->e), user_cmp);
}

const char *users_attr(const struct users_entry *e, const char *key)
{
    for (size_t i = 0; e && i < e->nattrs; i++)
        if (strcmp(e->attrs[i].key, key) == 0)
            return e->attrs[i].value;
    return NULL;
}

size_t users_count(const struct users *u)
{
    return u ? u->n : 0;
}

const struct users_entry *users_entry_at(const struct users *u, size_t i)
{
    return u && i < u->n ? &u->e[i] : NULL;
}
