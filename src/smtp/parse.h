/* parse.h - pure SMTP command-line parser (RFC 5321 section 4.1) */
#ifndef MX_SMTP_PARSE_H
#define MX_SMTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define SMTP_CMD_LINE_MAX 512   /* octets including CRLF, RFC 5321 4.5.3.1.4 */
#define SMTP_TEXT_LINE_MAX 1000 /* octets including CRLF, RFC 5321 4.5.3.1.6 */

enum smtp_verb {
    SMTP_VERB_UNKNOWN = 0,
    SMTP_VERB_HELO,
    SMTP_VERB_EHLO,
    SMTP_VERB_LHLO,
    SMTP_VERB_MAIL,
    SMTP_VERB_RCPT,
    SMTP_VERB_DATA,
    SMTP_VERB_BDAT,
    SMTP_VERB_RSET,
    SMTP_VERB_NOOP,
    SMTP_VERB_QUIT,
    SMTP_VERB_HELP,
    SMTP_VERB_VRFY,
    SMTP_VERB_EXPN,
    SMTP_VERB_STARTTLS,
    SMTP_VERB_AUTH,
};

/* Why a line could not be parsed; each maps to one SMTP reply in session.c. */
enum smtp_parse_err {
    SMTP_PARSE_OK = 0,
    SMTP_PARSE_UNKNOWN_VERB, /* 500 5.5.1 */
    SMTP_PARSE_SYNTAX,       /* 501 5.5.4: arguments malformed */
    SMTP_PARSE_BAD_PATH,     /* 501 5.1.3 (RCPT) / 5.1.7 (MAIL): path malformed */
    SMTP_PARSE_BAD_PARAM,    /* 555 5.5.4: unknown or malformed ESMTP parameter */
    SMTP_PARSE_NUL,          /* 500 5.5.2: NUL octet in the line */
    SMTP_PARSE_BAD_CHAR,     /* 500 5.5.2: bare CR/LF or other control octet */
};

enum smtp_body_type { SMTP_BODY_UNSPEC = 0, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARY };

/* A parsed command. String members point into the caller's line buffer,
 * which smtp_parse_command modifies in place (NUL terminators). */
struct smtp_cmd {
    enum smtp_verb verb;
    char *arg;  /* HELO/EHLO domain, VRFY/HELP/AUTH/BDAT argument; NULL if none */
    char *path; /* MAIL/RCPT: the text between < and >, "" for <> ; NULL otherwise */
    /* ESMTP parameters of MAIL (RFC 1870, 6152, 6531, 3461) */
    int has_size;
    uint64_t size;
    enum smtp_body_type body;
    int smtputf8;
    char *ret;    /* DSN RET=FULL|HDRS (MAIL) or NULL */
    char *envid;  /* DSN ENVID= (MAIL) or NULL */
    char *notify; /* DSN NOTIFY= (RCPT) or NULL */
    char *orcpt;  /* DSN ORCPT= (RCPT) or NULL */
    char *auth;   /* AUTH= (MAIL) or NULL */
};

/*
 * smtp_parse_command - parse one command line.
 * line/len: the line WITHOUT its CRLF; may contain any octets (NUL, CR, LF
 * are reported, not trusted). The buffer is modified and must have room
 * for len + 1 octets: line[len] receives a NUL (where the CR was). Verbs are
 * case-insensitive. MAIL needs "FROM:" and RCPT "TO:" (RFC 5321 is strict:
 * no space before the path is required, but one space after the colon is
 * tolerated as most MTAs do). Returns SMTP_PARSE_OK and fills cmd, or an
 * error code; cmd->verb is set whenever the verb was recognised.
 */
enum smtp_parse_err smtp_parse_command(char *line, size_t len, struct smtp_cmd *cmd);

/* smtp_verb_name - "MAIL", "RCPT", ... for logs */
const char *smtp_verb_name(enum smtp_verb v);

#endif
