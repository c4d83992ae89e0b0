/* log.c - key=value event lines to stderr or syslog */
#include "core/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/event.h>

static const char *log_ident = "mxgated";
static int log_stderr = 1;
static int log_debug_on;
static long log_pid; /* getpid() once: one line per event must not cost a syscall more */

/* Batching (log_batch): lines from the loop thread collect in stderr's buffer
 * and go out in one write per loop turn; other threads flush at once. */
static char log_buf[65536];
static struct event *log_flush_ev;
static pthread_t log_loop_thread;
static int log_buffered;  /* stderr is fully buffered: every path must flush */
static int log_flush_due; /* log_flush_ev is active */

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
    if (!log_buffered)
        return;
    if (log_flush_ev && pthread_equal(pthread_self(), log_loop_thread)) {
        if (!log_flush_due) {
            log_flush_due = 1;
            event_active(log_flush_ev, EV_TIMEOUT, 0);
        }
        return;
    }
    fflush(stderr);
}

/* log_flush_cb - the loop turn's lines in one write */
static void log_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    log_flush_due = 0;
    fflush(stderr);
}

/* log_batch - lines logged on this thread are written once per turn of base's loop */
void log_batch(struct event_base *base)
{
    if (!log_stderr || log_buffered)
        return;
    log_flush_ev = event_new(base, -1, 0, log_flush_cb, NULL);
    if (!log_flush_ev || setvbuf(stderr, log_buf, _IOFBF, sizeof log_buf) != 0) {
        if (log_flush_ev)
            event_free(log_flush_ev);
        log_flush_ev = NULL;
        return;
    }
    log_loop_thread = pthread_self();
    log_buffered = 1;
}

/* log_batch_end - write what is buffered; from now on every line is flushed at once */
void log_batch_end(void)
{
    if (log_flush_ev)
        event_free(log_flush_ev);
    log_flush_ev = NULL;
    log_flush_due = 0;
    fflush(stderr);
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
    fflush(stderr);
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
