/* dovecot.c - one Dovecot auth-client exchange per check, on a pool thread */
#include "auth/dovecot.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "auth/sasl.h"

#define DOVECOT_LINE_MAX 8192

struct dv_conn {
    int fd;
    char buf[DOVECOT_LINE_MAX];
    size_t len;
};

/* dv_line - the next LF-terminated line (without LF) into out; 0, or -1 */
static int dv_line(struct dv_conn *c, char *out, size_t outlen)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        ssize_t n;

        if (nl) {
            size_t l = (size_t)(nl - c->buf);
            if (l >= outlen)
                return -1;
            memcpy(out, c->buf, l);
            out[l] = '\0';
            memmove(c->buf, nl + 1, c->len - l - 1);
            c->len -= l + 1;
            return 0;
        }
        if (c->len == sizeof(c->buf))
            return -1;
        n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
        if (n <= 0)
            return -1;
        c->len += (size_t)n;
    }
}

static int dv_send(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* dv_connect - the socket, with the exchange's time limit on every read and write */
static int dv_connect(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct timeval tv = {DOVECOT_TIMEOUT, 0};
    int fd;

    if (strlen(path) >= sizeof(sun.sun_path))
        return -1;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* dv_handshake - our VERSION and CPID, then the server's lines up to DONE */
static int dv_handshake(struct dv_conn *c)
{
    char line[DOVECOT_LINE_MAX], hello[64];
    int n = snprintf(hello, sizeof(hello), "VERSION\t1\t2\nCPID\t%ld\n", (long)getpid());
    int version_ok = 0;

    if (dv_send(c->fd, hello, (size_t)n) < 0)
        return -1;
    for (;;) {
        if (dv_line(c, line, sizeof(line)) < 0)
            return -1;
        if (strncmp(line, "VERSION\t1\t", 10) == 0)
            version_ok = 1; /* major 1: the protocol we speak */
        if (strcmp(line, "DONE") == 0)
            return version_ok ? 0 : -1;
    }
}

/* dv_request - AUTH with the PLAIN message; the reply's verdict */
static enum auth_result dv_request(struct dv_conn *c, const char *login, const char *password)
{
    char plain[2 * (SASL_FIELD_MAX + 1) + 1], b64[1400], req[1600], line[DOVECOT_LINE_MAX];
    size_t ll = strlen(login), pl = strlen(password);
    enum auth_result r = AUTH_TEMPFAIL;
    int n;

    plain[0] = '\0';
    memcpy(plain + 1, login, ll + 1);
    memcpy(plain + 2 + ll, password, pl);
    n = sasl_b64_encode(plain, 2 + ll + pl, b64, sizeof(b64));
    sasl_wipe(plain, sizeof(plain));
    if (n < 0)
        return AUTH_FAIL;
    n = snprintf(req, sizeof(req), "AUTH\t1\tPLAIN\tservice=smtp\tnologin\tsecured\tresp=%s\n",
                 b64);
    if (n > 0 && (size_t)n < sizeof(req) && dv_send(c->fd, req, (size_t)n) == 0 &&
        dv_line(c, line, sizeof(line)) == 0) {
        if (strncmp(line, "OK\t1", 4) == 0 && (line[4] == '\0' || line[4] == '\t'))
            r = AUTH_OK;
        else if (strncmp(line, "FAIL\t1", 6) == 0 && !strstr(line, "\ttemp"))
            r = AUTH_FAIL; /* "temp" marks Dovecot's own temporary failure */
    }
    sasl_wipe(b64, sizeof(b64));
    sasl_wipe(req, sizeof(req));
    return r;
}

enum auth_result dovecot_auth(const char *path, const char *login, const char *password)
{
    struct dv_conn c = {.fd = dv_connect(path)};
    enum auth_result r = AUTH_TEMPFAIL;

    /* login and password travel base64-encoded: no tab or newline can split the request */
    if (!*login)
        r = AUTH_FAIL;
    else if (c.fd >= 0 && dv_handshake(&c) == 0)
        r = dv_request(&c, login, password);
    if (c.fd >= 0)
        close(c.fd);
    return r;
}
