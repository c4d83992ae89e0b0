/*
 * userlists.h - per-user allow and deny lists: what the userlists check
 * (userlists.c) and the admin tools share; the table and its files are in
 * userlists_table.c.
 *
 * An entry says that a recipient always accepts (allow) or always refuses
 * (deny) a sender. The recipient is "user@domain" or "@domain" (every user
 * of the domain); the sender pattern is an address "someone@example.org"
 * or a domain "@example.org". All are kept canonical: the domain lower-case
 * A-labels, the local part lower-cased (mail/address.h, ADDR_CANON_FOLD).
 *
 * Entries come from files, one per recipient domain, named after it, under
 * userlists { dir }, lines "RECIPIENT allow|deny PATTERN" ('#' comments),
 * and from the store, one record per (recipient, pattern):
 *   key "ul:<recipient>|<pattern>"  value "allow" or "deny"
 * managed with mxgatectl list add|remove|show and the admin API.
 *
 * The most specific entry decides: (user, sender address), (user, sender
 * domain), (@domain, sender address), (@domain, sender domain); at one
 * level a file's entry comes before the store's.
 */
#ifndef MX_POLICY_USERLISTS_H
#define MX_POLICY_USERLISTS_H

#include <stddef.h>

#define UL_KEY_PREFIX "ul:"
#define UL_ENTRY_MAX 320 /* a canonical recipient or pattern with its NUL (bounded) */
#define UL_KEY_MAX (3 + 2 * UL_ENTRY_MAX)
#define UL_LEVELS 4

enum ul_kind { UL_NONE, UL_ALLOW, UL_DENY };

/* ul_kind_name - "allow", "deny" or "none"; ul_kind_parse - the kind, or UL_NONE */
const char *ul_kind_name(enum ul_kind k);
enum ul_kind ul_kind_parse(const char *s);

/* ul_canon_rcpt - "user@dom" or "@dom" canonical into dst; 0 or -1 (not one of them) */
int ul_canon_rcpt(const char *s, char *dst, size_t len);
/* ul_canon_pattern - an address, "@dom" or a bare "dom" ("@dom") canonical; 0 or -1 */
int ul_canon_pattern(const char *s, char *dst, size_t len);

/* ul_levels - the (recipient, pattern) pairs of rcpt and sender (both canonical
 * addresses), most specific first, as "recipient|pattern" keys without the prefix;
 * the count (0 when either is not an address, e.g. the null sender) */
size_t ul_levels(const char *rcpt, const char *sender, char keys[UL_LEVELS][UL_KEY_MAX]);

/* The entries of the files: a sorted table of "recipient|pattern" -> kind. */
struct ul_table;
/* ul_table_load - read every file under dir (a missing dir is empty); NULL with err
 * ("file:line: why") on the first bad line or past max entries */
struct ul_table *ul_table_load(const char *dir, size_t max, char *err, size_t errlen);
void ul_table_free(struct ul_table *t);
size_t ul_table_size(const struct ul_table *t);
/* ul_table_each - fn for every entry whose recipient is rcpt (canonical; NULL: all) */
void ul_table_each(const struct ul_table *t, const char *rcpt,
                   void (*fn)(const char *rcpt, const char *kind, const char *pattern, void *arg),
                   void *arg);
/* ul_table_get - the kind of key ("recipient|pattern"), UL_NONE when absent */
enum ul_kind ul_table_get(const struct ul_table *t, const char *key);
/* ul_table_parse_line - one line of the file for domain: 1 with the entry, 0 for a
 * blank or comment line, -1 with why */
int ul_table_parse_line(const char *domain, char *line, char *key, size_t keylen,
                        enum ul_kind *kind, const char **why);

#endif
