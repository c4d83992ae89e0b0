/* log.h - one key=value line per event, to stderr or syslog */
#ifndef MX_LOG_H
#define MX_LOG_H

#include <stddef.h>

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERR };

/* log_init - choose the sink: stderr (foreground) or syslog(mail facility) */
void log_init(const char *ident, int to_stderr, int debug);

/* log_set_debug - debug lines on or off from now on (a reload's log_level) */
void log_set_debug(int debug);

/* log_echo_stderr - with syslog as the sink, also write warnings and errors to
 * stderr (a daemon starting up: the terminal that started it hears why it failed) */
void log_echo_stderr(int on);

struct event_base;
/* log_batch - with stderr as the sink, lines logged on the calling thread (the
 * loop's) are buffered and written once per turn of base's loop: one write
 * for all of a turn's events. Other threads' lines are written at once. */
void log_batch(struct event_base *base);
/* log_batch_end - flush; call before base is freed */
void log_batch_end(void);

/* log_msg - emit one line; callers write "event=... key=value ..." with every
 * string value through log_q() (below). A line longer than the limit is cut
 * after its last whole value and ends in "truncated=yes". */
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* log_fatal - the environment is wrong (bad config, no permission): exit(1) */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* log_panic - a bug: abort() so that a core shows where */
void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * log_quote - render s as one log value: unchanged when it is a plain token
 * (printable ASCII without blank, '"', '\\' or '='), else in double quotes
 * where '"' and '\\' are escaped with a backslash and every octet that could
 * break the line or fool a terminal (controls, octets that are not
 * well-formed UTF-8, C1 controls, line separators and bidirectional
 * controls) is written \xHH; other UTF-8 stays as it is. Always
 * NUL-terminates dst; truncates to fit, never inside an escape. NULL is "".
 */
const char *log_quote(char *dst, size_t dstlen, const char *s);
/* log_quote_addr - an envelope address as the one value <addr>, quoted as log_quote does */
const char *log_quote_addr(char *dst, size_t dstlen, const char *addr);

/*
 * log_q, log_qaddr - THE way to put a string into a log line: every value
 * that came from outside (addresses, HELO, DNS names and TXT, replies, TLS
 * details) or from configuration (names, paths), and every error text.
 * Each use gets its own buffer, alive until the end of the enclosing block:
 *   log_info("event=x sid=%s helo=%s from=%s", s->sid, log_q(helo), log_qaddr(sender));
 * Only numbers and the daemon's own tokens (ids, stage and check names,
 * addresses it formatted itself) go into a line with a bare %s.
 */
#define LOG_QUOTE_MAX 1100 /* a 256-octet path with every octet \xHH, and its <> */
#define log_q(s) log_quote((char[LOG_QUOTE_MAX]){0}, LOG_QUOTE_MAX, (s))
#define log_qaddr(a) log_quote_addr((char[LOG_QUOTE_MAX]){0}, LOG_QUOTE_MAX, (a))

#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)

#endif
