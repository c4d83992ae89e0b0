/* log.c - key=value event lines to stderr or syslog */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

static const char *log_ident = "mxgated";
static int log_stderr = 1;
static int log_debug_on;
static long log_pid; /* getpid() once: one line per event must not cost a syscall more */

/* log_init - choose the sink */
void log_init(const char *ident, int to_stderr, int debug)
{
    log_ident = ident;
    log_stderr = to_stderr;
    log_pid = (long)getpid();
    log_debug_on = debug;
    if (!to_stderr)
        openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

/* log_vmsg - format one line and hand it to the sink in a single write */
static void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
    static const int prio[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
    static const char *const tag[] = {"debug: ", "", "warning: ", "error: "};
    char line[4096];

    if (lvl == LOG_LVL_DEBUG && !log_debug_on)
        return;
    vsnprintf(line, sizeof(line), fmt, ap);
    if (!log_stderr) {
        syslog(prio[lvl], "%s%s", tag[lvl], line);
        return;
    }
    /* One fprintf per line keeps lines whole when several threads log. */
    fprintf(stderr, "%s[%ld]: %s%s\n", log_ident, log_pid ? log_pid : (long)getpid(), tag[lvl],
            line);
}

/* log_msg - emit one line */
void log_msg(enum log_level lvl, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(lvl, fmt, ap);
    va_end(ap);
}

/* log_fatal - report and exit: the environment is wrong */
void log_fatal(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(LOG_LVL_ERR, fmt, ap);
    va_end(ap);
    exit(1);
}

/* log_panic - report and abort: a bug */
void log_panic(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(LOG_LVL_ERR, fmt, ap);
    va_end(ap);
    abort();
}

/* log_plain - does s need no quoting */
static int log_plain(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == '"' || *s == '\\' || *s == '=' ||
            (unsigned char)*s == 0x7f)
            return 0;
    return 1;
}

/* log_quote - render s as one log value that a parser can split on spaces */
const char *log_quote(char *dst, size_t dstlen, const char *s)
{
    size_t n = 0;

    if (s == NULL)
        s = "";
    if (log_plain(s)) {
        snprintf(dst, dstlen, "%s", s);
        return dst;
    }
    if (dstlen < 3) {
        if (dstlen)
            dst[0] = '\0';
        return dst;
    }
    dst[n++] = '"';
    for (; *s && n + 5 < dstlen; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            dst[n++] = '\\';
            dst[n++] = (char)c;
        } else if (c < ' ' || c == 0x7f) {
            n += (size_t)snprintf(dst + n, dstlen - n, "\\x%02x", c);
        } else {
            dst[n++] = (char)c;
        }
    }
    dst[n++] = '"';
    dst[n] = '\0';
    return dst;
}
