/* parse.c - pure SMTP command-line parser (RFC 5321 section 4.1) */
#include "smtp/parse.h"
#include "mail/address.h" /* SMTP_PATH_MAX */

#include <string.h>

#define ENVID_MAX 100 /* RFC 3461 section 4.4 */
#define ORCPT_MAX 500 /* RFC 3461 section 4.2 */
#define DIGITS_MAX 20 /* enough for UINT64_MAX */

struct verb_entry {
    const char *name;
    enum smtp_verb verb;
};

static const struct verb_entry verb_table[] = {
    {"HELO", SMTP_VERB_HELO}, {"EHLO", SMTP_VERB_EHLO},         {"LHLO", SMTP_VERB_LHLO},
    {"MAIL", SMTP_VERB_MAIL}, {"RCPT", SMTP_VERB_RCPT},         {"DATA", SMTP_VERB_DATA},
    {"BDAT", SMTP_VERB_BDAT}, {"RSET", SMTP_VERB_RSET},         {"NOOP", SMTP_VERB_NOOP},
    {"QUIT", SMTP_VERB_QUIT}, {"HELP", SMTP_VERB_HELP},         {"VRFY", SMTP_VERB_VRFY},
    {"EXPN", SMTP_VERB_EXPN}, {"STARTTLS", SMTP_VERB_STARTTLS}, {"AUTH", SMTP_VERB_AUTH},
};

typedef enum smtp_parse_err (*param_fn)(struct smtp_cmd *cmd, char *val);

struct param_entry {
    enum smtp_verb verb;
    const char *keyword;
    param_fn fn;
};

/* ascii_upper - toupper() without the locale: SMTP keywords are ASCII */
static char ascii_upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

/* is_digit - ASCII digit test, independent of the locale */
static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* ascii_ieq - the n octets at s equal the upper-case literal up, ignoring case */
static int ascii_ieq(const char *s, size_t n, const char *up)
{
    size_t i;

    if (strlen(up) != n)
        return 0;
    for (i = 0; i < n; i++)
        if (ascii_upper(s[i]) != up[i])
            return 0;
    return 1;
}

/* ascii_iprefix - s starts with the upper-case literal up, ignoring case */
static int ascii_iprefix(const char *s, const char *up)
{
    size_t i;

    for (i = 0; up[i] != '\0'; i++)
        if (ascii_upper(s[i]) != up[i])
            return 0;
    return 1;
}

/* check_octets - NUL, CR, LF and other C0 controls (TAB aside) are never part of a command */
static enum smtp_parse_err check_octets(const char *line, size_t len)
{
    size_t i;

    if (memchr(line, '\0', len) != NULL)
        return SMTP_PARSE_NUL;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 && c != '\t')
            return SMTP_PARSE_BAD_CHAR;
    }
    return SMTP_PARSE_OK;
}

/* lookup_verb - map the first word of the line to a verb, ignoring case */
static enum smtp_verb lookup_verb(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < sizeof verb_table / sizeof verb_table[0]; i++)
        if (ascii_ieq(s, n, verb_table[i].name))
            return verb_table[i].verb;
    return SMTP_VERB_UNKNOWN;
}

/* trim - strip SP/TAB on both sides in place; NULL when nothing is left */
static char *trim(char *s)
{
    size_t n;

    while (*s == ' ' || *s == '\t')
        s++;
    n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return n > 0 ? s : NULL;
}

/* parse_u64 - 1..20 decimal digits that fit in 64 bits; the whole string must be used */
static int parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (n == 0 || n > DIGITS_MAX)
        return -1;
    for (i = 0; i < n; i++) {
        uint64_t d;
        if (!is_digit(s[i]))
            return -1;
        d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* is_atext - RFC 5322 atext, the characters of an ORCPT addr-type atom */
static int is_atext(char c)
{
    char u = ascii_upper(c);

    return is_digit(c) || (u >= 'A' && u <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* is_uhex - upper-case hex digit, as xtext's hexchar requires */
static int is_uhex(char c)
{
    return is_digit(c) || (c >= 'A' && c <= 'F');
}

/* xtext_ok - RFC 3461 xtext: printable ASCII except '+' and '=', or "+" 2 upper-case hex */
static int xtext_ok(const char *s, size_t max)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > max)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') {
            if (!is_uhex(s[i + 1]) || !is_uhex(s[i + 2]))
                return 0;
            i += 2;
        } else if (c < 33 || c > 126 || c == '=') {
            return 0;
        }
    }
    return 1;
}

/* p_size - RFC 1870 SIZE=<digits>; a value that overflows is refused, not clamped */
static enum smtp_parse_err p_size(struct smtp_cmd *cmd, char *val)
{
    if (val == NULL || parse_u64(val, strlen(val), &cmd->size) < 0)
        return SMTP_PARSE_BAD_PARAM;
    cmd->has_size = 1;
    return SMTP_PARSE_OK;
}

/* p_body - RFC 6152 / RFC 3030 BODY=7BIT|8BITMIME|BINARYMIME */
static enum smtp_parse_err p_body(struct smtp_cmd *cmd, char *val)
{
    size_t n = val ? strlen(val) : 0;

    if (val == NULL)
        return SMTP_PARSE_BAD_PARAM;
    if (ascii_ieq(val, n, "7BIT"))
        cmd->body = SMTP_BODY_7BIT;
    else if (ascii_ieq(val, n, "8BITMIME"))
        cmd->body = SMTP_BODY_8BITMIME;
    else if (ascii_ieq(val, n, "BINARYMIME"))
        cmd->body = SMTP_BODY_BINARY;
    else
        return SMTP_PARSE_BAD_PARAM;
    return SMTP_PARSE_OK;
}

/* p_smtputf8 - RFC 6531 SMTPUTF8 takes no value */
static enum smtp_parse_err p_smtputf8(struct smtp_cmd *cmd, char *val)
{
    if (val != NULL)
        return SMTP_PARSE_BAD_PARAM;
    cmd->smtputf8 = 1;
    return SMTP_PARSE_OK;
}

/* p_ret - RFC 3461 RET=FULL|HDRS, stored upper-case so the spool sees one spelling */
static enum smtp_parse_err p_ret(struct smtp_cmd *cmd, char *val)
{
    size_t i, n = val ? strlen(val) : 0;

    if (val == NULL || (!ascii_ieq(val, n, "FULL") && !ascii_ieq(val, n, "HDRS")))
        return SMTP_PARSE_BAD_PARAM;
    for (i = 0; i < n; i++)
        val[i] = ascii_upper(val[i]);
    cmd->ret = val;
    return SMTP_PARSE_OK;
}

/* p_envid - RFC 3461 ENVID=xtext, at most 100 characters */
static enum smtp_parse_err p_envid(struct smtp_cmd *cmd, char *val)
{
    if (val == NULL || !xtext_ok(val, ENVID_MAX))
        return SMTP_PARSE_BAD_PARAM;
    cmd->envid = val;
    return SMTP_PARSE_OK;
}

/* p_auth - RFC 4954 AUTH=xtext or AUTH=<> ("<>" is itself valid xtext) */
static enum smtp_parse_err p_auth(struct smtp_cmd *cmd, char *val)
{
    if (val == NULL || !xtext_ok(val, SMTP_CMD_LINE_MAX))
        return SMTP_PARSE_BAD_PARAM;
    cmd->auth = val;
    return SMTP_PARSE_OK;
}

/* notify_item - the bit of one NOTIFY keyword, 0 if unknown */
static unsigned notify_item(const char *s, size_t n)
{
    if (ascii_ieq(s, n, "NEVER"))
        return 1;
    if (ascii_ieq(s, n, "SUCCESS"))
        return 2;
    if (ascii_ieq(s, n, "FAILURE"))
        return 4;
    if (ascii_ieq(s, n, "DELAY"))
        return 8;
    return 0;
}

/* p_notify - RFC 3461 NOTIFY=NEVER or a list of SUCCESS,FAILURE,DELAY without repeats */
static enum smtp_parse_err p_notify(struct smtp_cmd *cmd, char *val)
{
    unsigned seen = 0;
    const char *p = val;

    if (val == NULL)
        return SMTP_PARSE_BAD_PARAM;
    for (;;) {
        size_t n = strcspn(p, ",");
        unsigned bit = notify_item(p, n);
        if (bit == 0 || (seen & bit) != 0)
            return SMTP_PARSE_BAD_PARAM;
        seen |= bit;
        if (p[n] == '\0')
            break;
        p += n + 1;
    }
    if ((seen & 1) != 0 && seen != 1)
        return SMTP_PARSE_BAD_PARAM;
    cmd->notify = val;
    return SMTP_PARSE_OK;
}

/* p_orcpt - RFC 3461 ORCPT=addr-type;xtext where addr-type is an atom such as rfc822 */
static enum smtp_parse_err p_orcpt(struct smtp_cmd *cmd, char *val)
{
    size_t i, tl;

    if (val == NULL || strlen(val) > ORCPT_MAX)
        return SMTP_PARSE_BAD_PARAM;
    tl = strcspn(val, ";");
    if (tl == 0 || val[tl] != ';' || !xtext_ok(val + tl + 1, ORCPT_MAX))
        return SMTP_PARSE_BAD_PARAM;
    for (i = 0; i < tl; i++)
        if (!is_atext(val[i]))
            return SMTP_PARSE_BAD_PARAM;
    cmd->orcpt = val;
    return SMTP_PARSE_OK;
}

static const struct param_entry param_table[] = {
    {SMTP_VERB_MAIL, "SIZE", p_size},         {SMTP_VERB_MAIL, "BODY", p_body},
    {SMTP_VERB_MAIL, "SMTPUTF8", p_smtputf8}, {SMTP_VERB_MAIL, "RET", p_ret},
    {SMTP_VERB_MAIL, "ENVID", p_envid},       {SMTP_VERB_MAIL, "AUTH", p_auth},
    {SMTP_VERB_RCPT, "NOTIFY", p_notify},     {SMTP_VERB_RCPT, "ORCPT", p_orcpt},
};

/* value_ok - RFC 5321 esmtp-value: 1*(%d33-60 / %d62-126) */
static int value_ok(const char *v)
{
    if (*v == '\0')
        return 0;
    for (; *v != '\0'; v++) {
        unsigned char c = (unsigned char)*v;
        if (c < 33 || c > 126 || c == '=')
            return 0;
    }
    return 1;
}

/* one_param - validate keyword[=value], refuse unknown and repeated keywords, apply it */
static enum smtp_parse_err one_param(struct smtp_cmd *cmd, char *tok, unsigned *seen)
{
    char *val = strchr(tok, '=');
    size_t i;

    if (val != NULL) {
        *val++ = '\0';
        if (!value_ok(val))
            return SMTP_PARSE_BAD_PARAM;
    }
    for (i = 0; i < sizeof param_table / sizeof param_table[0]; i++) {
        const struct param_entry *pe = &param_table[i];
        if (pe->verb != cmd->verb || !ascii_ieq(tok, strlen(tok), pe->keyword))
            continue;
        if ((*seen & (1u << i)) != 0)
            return SMTP_PARSE_BAD_PARAM;
        *seen |= 1u << i;
        return pe->fn(cmd, val);
    }
    return SMTP_PARSE_BAD_PARAM;
}

/* parse_params - SP-separated ESMTP parameters after the path */
static enum smtp_parse_err parse_params(struct smtp_cmd *cmd, char *p)
{
    unsigned seen = 0;

    for (;;) {
        enum smtp_parse_err e;
        char *tok;

        while (*p == ' ')
            p++;
        if (*p == '\0')
            return SMTP_PARSE_OK;
        tok = p;
        p += strcspn(p, " ");
        if (*p != '\0')
            *p++ = '\0';
        e = one_param(cmd, tok, &seen);
        if (e != SMTP_PARSE_OK)
            return e;
    }
}

/* path_end - the '>' closing the path at p[0] == '<'; a '>' in a quoted string does not count */
static char *path_end(char *p)
{
    int quoted = 0;

    for (p++; *p != '\0'; p++) {
        if (quoted && *p == '\\' && p[1] != '\0')
            p++;
        else if (*p == '"')
            quoted = !quoted;
        else if (*p == '>' && !quoted)
            return p;
    }
    return NULL;
}

/* parse_path_cmd - "FROM:<path> params" or "TO:<path> params" of MAIL and RCPT */
static enum smtp_parse_err parse_path_cmd(struct smtp_cmd *cmd, char *rest, const char *kw)
{
    char *p, *end;

    if (!ascii_iprefix(rest, kw))
        return SMTP_PARSE_SYNTAX;
    rest = trim(rest);
    p = rest + strlen(kw);
    while (*p == ' ')
        p++;
    if (*p != '<')
        return SMTP_PARSE_BAD_PATH;
    end = path_end(p);
    if (end == NULL || end - p + 1 > SMTP_PATH_MAX)
        return SMTP_PARSE_BAD_PATH;
    if (end[1] != '\0' && end[1] != ' ')
        return SMTP_PARSE_SYNTAX;
    *end = '\0';
    cmd->path = p + 1;
    return parse_params(cmd, end + 1);
}

/* bdat_ok - RFC 3030 "chunk-size [SP LAST]" */
static int bdat_ok(const char *arg)
{
    size_t n = strcspn(arg, " ");
    uint64_t size;
    const char *p = arg + n;

    if (parse_u64(arg, n, &size) < 0)
        return 0;
    while (*p == ' ')
        p++;
    return *p == '\0' || ascii_ieq(p, strlen(p), "LAST");
}

/* need_arg - verbs whose argument is mandatory */
static enum smtp_parse_err need_arg(struct smtp_cmd *cmd, char *rest)
{
    cmd->arg = trim(rest);
    return cmd->arg != NULL ? SMTP_PARSE_OK : SMTP_PARSE_SYNTAX;
}

/* dispatch - per-verb argument rules once the verb is known */
static enum smtp_parse_err dispatch(struct smtp_cmd *cmd, char *rest)
{
    switch (cmd->verb) {
    case SMTP_VERB_HELO:
    case SMTP_VERB_EHLO:
    case SMTP_VERB_LHLO:
    case SMTP_VERB_VRFY:
    case SMTP_VERB_EXPN:
    case SMTP_VERB_AUTH:
        return need_arg(cmd, rest);
    case SMTP_VERB_BDAT:
        if (need_arg(cmd, rest) != SMTP_PARSE_OK || !bdat_ok(cmd->arg))
            return SMTP_PARSE_SYNTAX;
        return SMTP_PARSE_OK;
    case SMTP_VERB_NOOP:
    case SMTP_VERB_HELP:
        cmd->arg = trim(rest);
        return SMTP_PARSE_OK;
    case SMTP_VERB_MAIL:
        return parse_path_cmd(cmd, rest, "FROM:");
    case SMTP_VERB_RCPT:
        return parse_path_cmd(cmd, rest, "TO:");
    case SMTP_VERB_DATA:
    case SMTP_VERB_RSET:
    case SMTP_VERB_QUIT:
    case SMTP_VERB_STARTTLS:
        return trim(rest) == NULL ? SMTP_PARSE_OK : SMTP_PARSE_SYNTAX;
    case SMTP_VERB_UNKNOWN:
        break;
    }
    return SMTP_PARSE_UNKNOWN_VERB;
}

/* smtp_parse_command - check the octets, find the verb, then apply its argument rules */
enum smtp_parse_err smtp_parse_command(char *line, size_t len, struct smtp_cmd *cmd)
{
    enum smtp_parse_err e;
    size_t vlen;
    char *rest;

    memset(cmd, 0, sizeof *cmd);
    if (line == NULL)
        return SMTP_PARSE_SYNTAX;
    e = check_octets(line, len);
    if (e != SMTP_PARSE_OK)
        return e;
    line[len] = '\0';
    vlen = strcspn(line, " ");
    cmd->verb = lookup_verb(line, vlen);
    if (cmd->verb == SMTP_VERB_UNKNOWN)
        return SMTP_PARSE_UNKNOWN_VERB;
    rest = line + vlen;
    while (*rest == ' ')
        rest++;
    return dispatch(cmd, rest);
}

/* smtp_verb_name - the upper-case verb for logs */
const char *smtp_verb_name(enum smtp_verb v)
{
    size_t i;

    for (i = 0; i < sizeof verb_table / sizeof verb_table[0]; i++)
        if (verb_table[i].verb == v)
            return verb_table[i].name;
    return "UNKNOWN";
}
