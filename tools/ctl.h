/* ctl.h - what mxgatectl's files share */
#ifndef MX_TOOLS_CTL_H
#define MX_TOOLS_CTL_H

#include <stdio.h>
#include <time.h>

struct config;
struct json;
struct store;

struct ctl {
    const struct config *cfg;
    int json; /* --json: listings as the HTTP API gives them */
};

/* usage - exit 2 */
void usage(void) __attribute__((noreturn));

/*
 * ctl_put - write outside data (envelope, header lines, replies, store
 * records) to f so that nothing in it can drive the operator's terminal:
 * C0 controls, DEL, C1 controls (U+0080..U+009F) and octets that are not
 * well-formed UTF-8 are shown as \xHH, a backslash as \\. Every print of
 * data mxgatectl did not make itself goes through here (or through JSON).
 */
void ctl_put(FILE *f, const char *s);
/* ctl_put_lines - ctl_put for each line of s (newlines kept) */
void ctl_put_lines(FILE *f, const char *s);
/* ctl_error - "mxgatectl: ID: text" on stderr, text being outside data */
void ctl_error(const char *id, const char *text);
/* ctl_time - ISO 8601 UTC */
const char *ctl_time(time_t t, char *dst, size_t len);
/* ctl_json_print - the JSON on stdout, one line */
void ctl_json_print(struct json *j);
/* ctl_request - one request line to the daemon; *reply (malloc'd) is the whole answer.
 * -1 with errno when the daemon is not running */
int ctl_request(const struct config *cfg, const char *req, char **reply);
/* ctl_action - a request answered "ok <n>": 0 with *n, or 1 after printing the error
 * (not running: says so) */
int ctl_action(const struct config *cfg, const char *req, long *n);
/* ctl_word_ok - an argument may go into a request line (no space, no control) */
int ctl_word_ok(const char *s);
/* ctl_store - the store, read-only; NULL after printing why */
struct store *ctl_store(const struct config *cfg);

int queue_command(struct ctl *c, int argc, char **argv);
int stats_command(struct ctl *c, int argc, char **argv);
int flood_command(struct ctl *c, int argc, char **argv);
int greylist_command(struct ctl *c, int argc, char **argv);
int blocks_command(struct ctl *c, int argc, char **argv);
int status_command(struct ctl *c, int argc, char **argv);
int reload_command(struct ctl *c, int argc, char **argv);
/* dkim_command - "dkim keygen ...": needs no configuration (ctl_dkim.c) */
int dkim_command(int argc, char **argv);
int user_command(struct ctl *c, int argc, char **argv);
int quarantine_command(struct ctl *c, int argc, char **argv);
int list_command(struct ctl *c, int argc, char **argv);

#endif
