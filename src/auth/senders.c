/* senders.c - the senders map: login -> the addresses and @domains it may send as */
#include "auth/senders.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/users.h"
#include "core/xmalloc.h"
#include "mail/address.h"

#define SENDERS_FILE_MAX (64u << 20)
#define SENDERS_LINE_MAX 8192

struct senders_row {
    char *login;
    char **allow; /* canonical "local@domain" or "@domain" */
    size_t nallow;
};

struct senders {
    struct senders_row *r;
    size_t n, cap;
};

void senders_free(struct senders *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        for (size_t j = 0; j < s->r[i].nallow; j++)
            free(s->r[i].allow[j]);
        free(s->r[i].allow);
        free(s->r[i].login);
    }
    free(s->r);
    free(s);
}

/* senders_canon - one entry of a line in canonical form; -1 if it is not an address */
static int senders_canon(const char *w, char *dst, size_t dstlen)
{
    char tmp[ADDR_CANON_MAX + 2];

    if (w[0] == '@') {
        if (!addr_host_ok(w + 1) || snprintf(tmp, sizeof tmp, "x%s", w) >= (int)sizeof tmp ||
            addr_canon(tmp, ADDR_CANON_FOLD, dst + 0, dstlen) < 0)
            return -1;
        memmove(dst, dst + 1, strlen(dst)); /* drop the "x" again */
        return 0;
    }
    if (!strchr(w, '@'))
        return -1;
    return addr_canon(w, ADDR_CANON_FOLD, dst, dstlen) < 0 ? -1 : 0;
}

/* senders_line - one line's words into a new row */
static const char *senders_line(struct senders *s, char *line)
{
    char *save = NULL, *w = strtok_r(line, " \t", &save);
    struct senders_row row = {0};
    char canon[ADDR_CANON_MAX + 1];

    if (!w)
        return NULL;
    if (strlen(w) > USERS_LOGIN_MAX)
        return "login too long";
    row.login = xstrdup(w);
    while ((w = strtok_r(NULL, " \t", &save))) {
        if (senders_canon(w, canon, sizeof canon) < 0) {
            for (size_t j = 0; j < row.nallow; j++)
                free(row.allow[j]);
            free(row.allow);
            free(row.login);
            return "not an address or @domain";
        }
        row.allow = xreallocarray(row.allow, row.nallow + 1, sizeof(*row.allow));
        row.allow[row.nallow++] = xstrdup(canon);
    }
    if (s->n == s->cap)
        s->r = xreallocarray(s->r, s->cap = s->cap ? s->cap * 2 : 16, sizeof(*s->r));
    s->r[s->n++] = row;
    return NULL;
}

struct senders *senders_parse(const char *name, const char *buf, size_t len, char *err,
                              size_t errlen)
{
    struct senders *s = xcalloc(1, sizeof(*s));
    const char *p = buf, *end = buf + len;
    char line[SENDERS_LINE_MAX + 1];
    unsigned lineno = 0;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end, *why = NULL;
        size_t n = (size_t)(le - p);

        lineno++;
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n > SENDERS_LINE_MAX)
            why = "line too long";
        else if (memchr(p, '\0', n))
            why = "NUL byte";
        else if (n > 0 && p[strspn(p, " \t")] != '#') {
            memcpy(line, p, n);
            line[n] = '\0';
            why = senders_line(s, line);
        }
        if (why) {
            snprintf(err, errlen, "%s:%u: %s", name, lineno, why);
            senders_free(s);
            return NULL;
        }
        p = nl ? nl + 1 : end;
    }
    return s;
}

struct senders *senders_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    struct senders *s = NULL;
    char *buf;
    size_t n;

    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    buf = xmalloc(SENDERS_FILE_MAX + 1);
    n = fread(buf, 1, SENDERS_FILE_MAX + 1, f);
    if (ferror(f) || n > SENDERS_FILE_MAX)
        snprintf(err, errlen, "%s: %s", path, ferror(f) ? strerror(errno) : "too large");
    else
        s = senders_parse(path, buf, n, err, errlen);
    fclose(f);
    free(buf);
    return s;
}

/* senders_own - the login's own address, canonical; -1 when it has none */
static int senders_own(const char *login, const char *default_domain, char *dst, size_t dstlen)
{
    char tmp[ADDR_CANON_MAX + USERS_LOGIN_MAX + 2];

    if (strchr(login, '@'))
        return addr_canon(login, ADDR_CANON_FOLD, dst, dstlen);
    if (!default_domain ||
        snprintf(tmp, sizeof tmp, "%s@%s", login, default_domain) >= (int)sizeof tmp)
        return -1;
    return addr_canon(tmp, ADDR_CANON_FOLD, dst, dstlen);
}

/* senders_row_allows - does a row's list name addr (canonical) or its domain */
static int senders_row_allows(const struct senders_row *r, const char *addr)
{
    const char *at = strrchr(addr, '@');

    for (size_t i = 0; i < r->nallow; i++) {
        if (r->allow[i][0] == '@' ? at && strcmp(r->allow[i], at) == 0
                                  : strcmp(r->allow[i], addr) == 0)
            return 1;
    }
    return 0;
}

int senders_allowed(const struct senders *s, const char *login, const char *default_domain,
                    const char *addr)
{
    char canon[ADDR_CANON_MAX], own[ADDR_CANON_MAX];

    if (addr[0] == '\0')
        return 1; /* the null sender: bounces and receipts are the user's to send */
    if (addr_canon_lax(addr, ADDR_CANON_FOLD, canon, sizeof canon) < 0)
        return 0;
    if (senders_own(login, default_domain, own, sizeof own) >= 0 && strcmp(own, canon) == 0)
        return 1;
    for (size_t i = 0; s && i < s->n; i++)
        if (strcasecmp(s->r[i].login, login) == 0 && senders_row_allows(&s->r[i], canon))
            return 1;
    return 0;
}
