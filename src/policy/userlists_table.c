/* userlists_table.c - per-user lists: canonical entries, the files' table, lookup keys */
#include "policy/userlists.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "mail/address.h"

#define UL_LINE_MAX 1024

struct ul_entry {
    char *key;
    enum ul_kind kind;
    size_t order; /* line order while loading: of equal keys the last one stays */
};

struct ul_table {
    struct ul_entry *e;
    size_t n, cap;
};

const char *ul_kind_name(enum ul_kind k)
{
    return k == UL_ALLOW ? "allow" : k == UL_DENY ? "deny" : "none";
}

enum ul_kind ul_kind_parse(const char *s)
{
    return strcmp(s, "allow") == 0 ? UL_ALLOW : strcmp(s, "deny") == 0 ? UL_DENY : UL_NONE;
}

/* canon_domain - "@" + the canonical domain (lower-case A-labels), which must be a
 * host name: nothing else ('@', '|', spaces) can be one */
static int canon_domain(const char *d, char *dst, size_t len)
{
    if (!*d || strpbrk(d, "@| \t\r\n") || len < 2)
        return -1;
    dst[0] = '@';
    return addr_canon_domain(d, dst + 1, len - 1) < 0 || !addr_host_ok(dst + 1) ? -1 : 0;
}

/* canon_addr - a whole address, local part folded */
static int canon_addr(const char *s, char *dst, size_t len)
{
    char buf[ADDR_CANON_MAX];

    if (!strchr(s, '@') || s[0] == '@' || strchr(s, '|') ||
        addr_canon(s, ADDR_CANON_FOLD, buf, sizeof(buf)) <= 0 || strchr(buf, '|') ||
        strlen(buf) >= len)
        return -1;
    memcpy(dst, buf, strlen(buf) + 1);
    return 0;
}

int ul_canon_rcpt(const char *s, char *dst, size_t len)
{
    return s[0] == '@' ? canon_domain(s + 1, dst, len) : canon_addr(s, dst, len);
}

int ul_canon_pattern(const char *s, char *dst, size_t len)
{
    if (s[0] == '@')
        return canon_domain(s + 1, dst, len);
    return strchr(s, '@') ? canon_addr(s, dst, len) : canon_domain(s, dst, len);
}

size_t ul_levels(const char *rcpt, const char *sender, char keys[UL_LEVELS][UL_KEY_MAX])
{
    const char *rat = strrchr(rcpt, '@'), *sat = strrchr(sender, '@');
    const char *r[2] = {rcpt, rat}, *p[2] = {sender, sat};
    size_t n = 0;

    if (!rat || !sat || rat == rcpt || sat == sender)
        return 0;
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 2; k++)
            snprintf(keys[n++], UL_KEY_MAX, "%s|%s", r[i], p[k]);
    return n;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct ul_entry *)a)->key, ((const struct ul_entry *)b)->key);
}

enum ul_kind ul_table_get(const struct ul_table *t, const char *key)
{
    struct ul_entry k = {(char *)key, UL_NONE, 0}, *e;

    if (!t || !t->n)
        return UL_NONE;
    e = bsearch(&k, t->e, t->n, sizeof(*t->e), entry_cmp);
    return e ? e->kind : UL_NONE;
}

void ul_table_each(const struct ul_table *t, const char *rcpt,
                   void (*fn)(const char *rcpt, const char *kind, const char *pattern, void *arg),
                   void *arg)
{
    char r[UL_KEY_MAX];
    size_t rl = rcpt ? strlen(rcpt) : 0;

    for (size_t i = 0; t && i < t->n; i++) {
        const char *bar = strchr(t->e[i].key, '|');
        if (!bar ||
            (rcpt && ((size_t)(bar - t->e[i].key) != rl || strncmp(t->e[i].key, rcpt, rl) != 0)))
            continue;
        snprintf(r, sizeof(r), "%.*s", (int)(bar - t->e[i].key), t->e[i].key);
        fn(r, ul_kind_name(t->e[i].kind), bar + 1, arg);
    }
}

size_t ul_table_size(const struct ul_table *t)
{
    return t ? t->n : 0;
}

void ul_table_free(struct ul_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->e[i].key);
    free(t->e);
    free(t);
}

int ul_table_parse_line(const char *domain, char *line, char *key, size_t keylen,
                        enum ul_kind *kind, const char **why)
{
    char *save = NULL, *w[4], rcpt[UL_ENTRY_MAX], pat[UL_ENTRY_MAX];
    const char *at;
    int n = 0;

    line[strcspn(line, "#\r\n")] = '\0';
    for (char *t = strtok_r(line, " \t", &save); t; t = strtok_r(NULL, " \t", &save))
        if (n < 4)
            w[n++] = t;
        else
            return *why = "too many words", -1;
    if (n == 0)
        return 0;
    if (n != 3)
        return *why = "expected \"RECIPIENT allow|deny SENDER\"", -1;
    if (ul_canon_rcpt(w[0], rcpt, sizeof(rcpt)) < 0)
        return *why = "not a recipient address or @domain", -1;
    at = strrchr(rcpt, '@');
    if (strcmp(at + 1, domain) != 0)
        return *why = "recipient of another domain than the file's", -1;
    if ((*kind = ul_kind_parse(w[1])) == UL_NONE)
        return *why = "expected allow or deny", -1;
    if (ul_canon_pattern(w[2], pat, sizeof(pat)) < 0)
        return *why = "not a sender address or domain", -1;
    snprintf(key, keylen, "%s|%s", rcpt, pat);
    return 1;
}

/* table_add - one entry; a later line for the same pair replaces the earlier */
static void table_add(struct ul_table *t, const char *key, enum ul_kind kind)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->e = xreallocarray(t->e, t->cap, sizeof(*t->e));
    }
    t->e[t->n] = (struct ul_entry){xstrdup(key), kind, t->n};
    t->n++;
}

/* load_file - dir/name, the list of domain name; 0 or -1 with err */
static int load_file(struct ul_table *t, const char *dir, const char *name, size_t max, char *err,
                     size_t errlen)
{
    char path[4096], dom[UL_ENTRY_MAX], line[UL_LINE_MAX + 2], key[UL_KEY_MAX];
    const char *why = NULL;
    enum ul_kind kind;
    unsigned lineno = 0;
    FILE *f;
    int rc = 0;

    if (canon_domain(name, dom, sizeof(dom)) < 0 || strcmp(dom + 1, name) != 0) {
        snprintf(err, errlen, "%s/%s: the file name must be a lower-case domain (A-labels)", dir,
                 name);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (!(f = fopen(path, "re"))) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f))
            why = "line too long", rc = -1;
        else if ((rc = ul_table_parse_line(dom + 1, line, key, sizeof(key), &kind, &why)) == 1)
            rc = t->n >= max ? (why = "more entries than max_entries", -1)
                             : (table_add(t, key, kind), 0);
    }
    if (rc < 0)
        snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
    fclose(f);
    return rc < 0 ? -1 : 0;
}

/* dedupe - sorted by key, the last of equal keys (in file order) kept */
static void dedupe(struct ul_table *t)
{
    size_t out = 0;

    for (size_t i = 0; i < t->n; i++) {
        if (out && strcmp(t->e[out - 1].key, t->e[i].key) == 0) {
            free(t->e[out - 1].key);
            t->e[out - 1] = t->e[i];
        } else {
            t->e[out++] = t->e[i];
        }
    }
    t->n = out;
}

/* stable_cmp - by key, then line order */
static int stable_cmp(const void *a, const void *b)
{
    const struct ul_entry *x = a, *y = b;
    int c = strcmp(x->key, y->key);

    return c ? c : (x->order > y->order) - (x->order < y->order);
}

struct ul_table *ul_table_load(const char *dir, size_t max, char *err, size_t errlen)
{
    struct ul_table *t = xcalloc(1, sizeof(*t));
    struct dirent *de;
    DIR *d;
    int rc = 0;

    if (!dir || !*dir || !(d = opendir(dir))) {
        if (dir && *dir && errno != ENOENT) {
            snprintf(err, errlen, "%s: %s", dir, strerror(errno));
            ul_table_free(t);
            return NULL;
        }
        return t;
    }
    while (rc == 0 && (de = readdir(d)))
        if (de->d_name[0] != '.' && de->d_type != DT_DIR)
            rc = load_file(t, dir, de->d_name, max, err, errlen);
    closedir(d);
    if (rc < 0) {
        ul_table_free(t);
        return NULL;
    }
    qsort(t->e, t->n, sizeof(*t->e), stable_cmp);
    dedupe(t);
    return t;
}
