/* ctl_util.c - mxgatectl's output, the control socket, the store */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/config.h"
#include "core/json.h"
#include "core/utf8.h"
#include "core/xmalloc.h"
#include "ctl.h"
#include "store/store.h"
#include "store/storeconf.h"

#define CTL_REPLY_MAX (1024 * 1024)

void ctl_put(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");

    while (*p) {
        size_t n = *p >= 0x80 ? utf8_seq_len(p) : 1;
        if (*p == '\\') {
            fputs("\\\\", f);
        } else if (*p < 0x20 || *p == 0x7f || n == 0 || (n == 2 && p[0] == 0xc2 && p[1] < 0xa0)) {
            fprintf(f, "\\x%02x", *p);
            n = 1;
        } else {
            fwrite(p, 1, n, f);
        }
        p += n;
    }
}

void ctl_put_lines(FILE *f, const char *s)
{
    char *copy = xstrdup(s), *save = NULL;

    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        ctl_put(f, l);
        fputc('\n', f);
    }
    free(copy);
}

void ctl_error(const char *id, const char *text)
{
    fprintf(stderr, "mxgatectl: ");
    if (id) {
        ctl_put(stderr, id);
        fprintf(stderr, ": ");
    }
    ctl_put(stderr, text);
    fprintf(stderr, "\n");
}

const char *ctl_time(time_t t, char *dst, size_t len)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(dst, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return dst;
}

void ctl_json_print(struct json *j)
{
    fwrite(j->buf, 1, j->len, stdout);
    putchar('\n');
}

int ctl_request(const struct config *cfg, const char *req, char **reply)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    size_t got = 0, cap = 4096;
    ssize_t n;
    char *buf;

    config_control_socket(cfg, sun.sun_path, sizeof(sun.sun_path));
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        errno = e;
        return -1;
    }
    if (dprintf(fd, "%s\n", req) < 0) {
        close(fd);
        return -1;
    }
    buf = xmalloc(cap);
    while ((n = read(fd, buf + got, cap - got - 1)) > 0) {
        got += (size_t)n;
        if (got + 1 == cap && cap < CTL_REPLY_MAX)
            buf = xrealloc(buf, cap *= 2);
        else if (got + 1 == cap)
            break;
    }
    close(fd);
    buf[got] = '\0';
    if (got == 0)
        snprintf(buf, cap, "error no answer from mxgated");
    *reply = buf;
    return 0;
}

int ctl_action(const struct config *cfg, const char *req, long *n)
{
    char *reply, *end;

    if (ctl_request(cfg, req, &reply) < 0) {
        fprintf(stderr, "mxgatectl: mxgated is not running (%s)\n", strerror(errno));
        return 1;
    }
    reply[strcspn(reply, "\n")] = '\0';
    if (strncmp(reply, "ok ", 3) != 0 || (*n = strtol(reply + 3, &end, 10), *end != '\0')) {
        ctl_error(NULL, strncmp(reply, "error ", 6) == 0 ? reply + 6 : reply);
        free(reply);
        return 1;
    }
    free(reply);
    return 0;
}

int ctl_word_ok(const char *s)
{
    if (!*s || strlen(s) > 300)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

struct store *ctl_store(const struct config *cfg)
{
    char uri[4200], err[512];
    struct store *st;

    struct store_options opt;

    storeconf_uri(cfg, uri, sizeof(uri));
    storeconf_options(cfg, &opt);
    if (!(st = store_open_readonly_opts(uri, &opt, err, sizeof(err)))) {
        fprintf(stderr, "mxgatectl: ");
        ctl_put(stderr, store_uri_safe(uri, uri, sizeof(uri)));
        fprintf(stderr, ": ");
        ctl_put(stderr, err);
        fprintf(stderr, "\n");
    }
    return st;
}
