/* log.h - one key=value line per event, to stderr or syslog */
#ifndef MX_LOG_H
#define MX_LOG_H

#include <stddef.h>

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERR };

/* log_init - choose the sink: stderr (foreground) or syslog(mail facility) */
void log_init(const char *ident, int to_stderr, int debug);

struct event_base;
/* log_batch - with stderr as the sink, lines logged on the calling thread (the
 * loop's) are buffered and written once per turn of base's loop: one write
 * for all of a turn's events. Other threads' lines are written at once. */
void log_batch(struct event_base *base);
/* log_batch_end - flush; call before base is freed */
void log_batch_end(void);

/* log_msg - emit one line; callers write "event=... key=value ..." */
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* log_fatal - the environment is wrong (bad config, no permission): exit(1) */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* log_panic - a bug: abort() so that a core shows where */
void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * log_quote - render s as a log value: unchanged when it is a plain token,
 * else in double quotes with ", \ and control octets escaped. Always
 * NUL-terminates dst; truncates to fit.
 */
const char *log_quote(char *dst, size_t dstlen, const char *s);

#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)

#endif
