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

#include "core/utf8.h"

#define LOG_LINE_MAX 8192
#define LOG_CUT " truncated=yes"

static const char *log_ident = "mxgated";
static int log_stderr = 1;
static int log_debug_on;
static int log_echo; /* syslog lines of warning and error also go to stderr (log_echo_stderr) */
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

/* log_set_debug - see log.h */
void log_set_debug(int debug)
{
    log_debug_on = debug;
}

void log_echo_stderr(int on)
{
    log_echo = on;
}

/* log_seal - a line cut at LOG_LINE_MAX: drop the value the cut went through
 * (it may be inside quotes) and say the line is incomplete */
static void log_seal(char *line)
{
    size_t end = 0;
    int quoted = 0;

    for (size_t i = 0; line[i]; i++) {
        if (quoted && line[i] == '\\' && line[i + 1])
            i++;
        else if (line[i] == '"')
            quoted = !quoted;
        else if (!quoted && line[i] == ' ')
            end = i; /* the last separator between whole values */
    }
    memcpy(line + end, LOG_CUT, sizeof(LOG_CUT));
}

/* log_vmsg - format one line and hand it to the sink in a single write */
static void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
    static const int prio[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
    static const char *const tag[] = {"debug: ", "", "warning: ", "error: "};
    char line[LOG_LINE_MAX + sizeof(LOG_CUT)];

    if (lvl == LOG_LVL_DEBUG && !log_debug_on)
        return;
    if (vsnprintf(line, LOG_LINE_MAX, fmt, ap) >= LOG_LINE_MAX)
        log_seal(line);
    if (!log_stderr) {
        syslog(prio[lvl], "%s%s", tag[lvl], line);
        if (log_echo && lvl >= LOG_LVL_WARN)
            fprintf(stderr, "%s: %s%s\n", log_ident, tag[lvl], line);
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

/* log_plain - printable ASCII with nothing a parser splits or unquotes on */
static int log_plain(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f || *s == '"' || *s == '\\' ||
            *s == '=')
            return 0;
    return 1;
}

/* log_shown - how many octets at p go into a quoted value as they are; 0: escape *p.
 * UTF-8 is kept readable, except the code points that reorder or break what a
 * terminal shows: C1 controls, LRM/RLM/ALM, U+2028..U+202E, U+2066..U+2069. */
static size_t log_shown(const unsigned char *p)
{
    size_t n;

    if (*p < 0x80)
        return *p >= ' ' && *p != 0x7f && *p != '"' && *p != '\\';
    n = utf8_seq_len(p);
    if (n == 2 && ((p[0] == 0xC2 && p[1] < 0xA0) || (p[0] == 0xD8 && p[1] == 0x9C)))
        return 0;
    if (n == 3 && p[0] == 0xE2 && p[1] == 0x80 &&
        (p[2] == 0x8E || p[2] == 0x8F || (p[2] >= 0xA8 && p[2] <= 0xAE)))
        return 0;
    if (n == 3 && p[0] == 0xE2 && p[1] == 0x81 && p[2] >= 0xA6 && p[2] <= 0xA9)
        return 0;
    return n;
}

/* log_quote - render s as one log value that a parser can split on spaces */
const char *log_quote(char *dst, size_t dstlen, const char *s)
{
    const unsigned char *p;
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
    for (p = (const unsigned char *)s; *p;) {
        size_t k = log_shown(p), need = k ? k : *p == '"' || *p == '\\' ? 2 : 4;
        if (n + need + 2 > dstlen) /* the closing quote and the NUL always fit */
            break;
        if (k) {
            memcpy(dst + n, p, k);
            p += k;
        } else if (need == 2) {
            dst[n] = '\\';
            dst[n + 1] = (char)*p++;
        } else {
            snprintf(dst + n, 5, "\\x%02x", *p++);
        }
        n += k ? k : need;
    }
    dst[n++] = '"';
    dst[n] = '\0';
    return dst;
}

/* log_quote_addr - <addr> as one value */
const char *log_quote_addr(char *dst, size_t dstlen, const char *addr)
{
    char raw[LOG_QUOTE_MAX];

    snprintf(raw, sizeof(raw), "<%s>", addr ? addr : "");
    return log_quote(dst, dstlen, raw);
}
