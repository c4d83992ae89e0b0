/* route.c - next-hop targets as written in the configuration */
#include "relay/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* route_abs_path - p made absolute against the current directory */
static int route_abs_path(const char *p, char *dst, size_t dstlen)
{
    char cwd[PATH_MAX];
    int n;

    if (*p == '/') {
        n = snprintf(dst, dstlen, "%s", p);
    } else {
        if (!getcwd(cwd, sizeof(cwd)))
            return -1;
        n = snprintf(dst, dstlen, "%s/%s", cwd, p);
    }
    return n < 0 || (size_t)n >= dstlen ? -1 : 0;
}

/* route_parse_port - decimal 1..65535 */
static int route_parse_port(const char *s, int *port)
{
    char *end;
    long p = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || p < 1 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

/* route_parse_host - "[host]:port", "[host]", "host:port" or "host" */
static int route_parse_host(const char *s, struct route_target *t, char *err, size_t errlen)
{
    const char *hend, *rest;

    if (*s == '[') {
        hend = strchr(s, ']');
        if (!hend) {
            snprintf(err, errlen, "missing ']' in \"%s\"", s);
            return -1;
        }
        s++;
        rest = hend + 1;
        t->literal = 1;
    } else {
        hend = strchr(s, ':');
        if (!hend)
            hend = s + strlen(s);
        rest = hend;
    }
    if (hend == s || (size_t)(hend - s) >= sizeof(t->host)) {
        snprintf(err, errlen, "bad host name");
        return -1;
    }
    memcpy(t->host, s, (size_t)(hend - s));
    t->host[hend - s] = '\0';
    if (*rest == '\0')
        return 0;
    if (*rest != ':' || route_parse_port(rest + 1, &t->port) < 0) {
        snprintf(err, errlen, "bad port in \"%s\"", rest);
        return -1;
    }
    return 0;
}

/* route_target_parse - "kind:where" */
int route_target_parse(const char *s, struct route_target *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    if (strcmp(s, "mx") == 0 || strncmp(s, "mx:", 3) == 0) {
        /* the MX records of each recipient's domain; port 25 unless given (test set-ups) */
        t->kind = ROUTE_MX;
        t->port = 25;
        if (s[2] == ':' && route_parse_port(s + 3, &t->port) < 0) {
            snprintf(err, errlen, "bad port in \"%s\"", s);
            return -1;
        }
        return 0;
    }
    if (strncmp(s, "smtp:", 5) == 0) {
        t->kind = ROUTE_SMTP;
        t->port = 25;
        return route_parse_host(s + 5, t, err, errlen);
    }
    if (strncmp(s, "lmtp:unix:", 10) == 0 || strncmp(s, "maildir:", 8) == 0) {
        int lmtp = s[0] == 'l';
        const char *p = s + (lmtp ? 10 : 8);
        t->kind = lmtp ? ROUTE_LMTP : ROUTE_MAILDIR;
        if (*p == '\0' || route_abs_path(p, t->path, sizeof(t->path)) < 0) {
            snprintf(err, errlen, "bad path in \"%s\"", s);
            return -1;
        }
        if (lmtp && strlen(t->path) >= 108) {
            snprintf(err, errlen, "socket path too long: %s", t->path);
            return -1;
        }
        return 0;
    }
    if (strncmp(s, "lmtp:", 5) == 0) {
        t->kind = ROUTE_LMTP;
        t->port = 24;
        return route_parse_host(s + 5, t, err, errlen);
    }
    snprintf(err, errlen, "unknown route target \"%s\" (want smtp:, lmtp:, maildir: or mx)", s);
    return -1;
}

/* route_target_format - the configuration form */
void route_target_format(const struct route_target *t, char *dst, size_t dstlen)
{
    if (t->kind == ROUTE_MAILDIR)
        snprintf(dst, dstlen, "maildir:%s", t->path);
    else if (t->kind == ROUTE_MX)
        snprintf(dst, dstlen, "mx%s%.0d", t->port == 25 ? "" : ":", t->port == 25 ? 0 : t->port);
    else if (t->kind == ROUTE_LMTP && t->path[0])
        snprintf(dst, dstlen, "lmtp:unix:%s", t->path);
    else
        snprintf(dst, dstlen, "%s:%s%s%s:%d", t->kind == ROUTE_LMTP ? "lmtp" : "smtp",
                 t->literal ? "[" : "", t->host, t->literal ? "]" : "", t->port);
}
