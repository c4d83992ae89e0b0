/* maildir.c - final delivery into root/<local>/{tmp,new,cur} */
#include "core/fsutil.h"
#include "core/xmalloc.h"
#include "queue/maildir.h"
#include "queue/spool.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define MD_CHUNK 65536  /* body octets read per pread */
#define MD_OUTBUF 65536 /* converted octets buffered per write */
#define MD_HOST_MAX 256
#define MD_NAME_MAX 1400 /* time, usec, pid, counter and an escaped host name */
#define MD_OPEN_TRIES 3
#define MD_DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define MD_MAILBOX_MAX 64 /* the local-part limit, RFC 5321 4.5.3.1.1 */

static unsigned long md_counter; /* atomic: deliveries attempted by this process */

struct md_dirs {
    char path[PATH_MAX]; /* root/<local>, for messages */
    int mdfd;
    int tmpfd;
    int newfd;
};

/* Per-delivery buffers, on the heap: pool threads need not have big stacks. */
struct md_io {
    int fd;
    int err; /* errno of the first failed write, sticky */
    int bol; /* at the start of a line (dot-unstuffing) */
    int cr;  /* a CR was seen and not yet emitted (it may start CRLF) */
    size_t olen;
    char out[MD_OUTBUF];
    char in[MD_CHUNK];
};

/* md_err - fill err with "maildir: what path: reason" and set the failure kind */
static int md_err(char *err, size_t errlen, int *permanent, int perm, const char *what,
                  const char *path, int errnum)
{
    char buf[128];

    *permanent = perm;
    if (err && errlen)
        snprintf(err, errlen, "maildir: %s%s%s%s%s", what, *path ? " " : "", path,
                 errnum ? ": " : "", errnum ? strerror_r(errnum, buf, sizeof buf) : "");
    return -1;
}

/* md_name_ok - a canonical name is one directory entry: no traversal,
 * no hidden names, printable ASCII only */
static int md_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > MD_MAILBOX_MAX || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '/' || c <= 0x20 || c >= 0x7f)
            return 0;
    }
    return 1;
}

/* maildir_mailbox - see maildir.h */
enum maildir_status maildir_mailbox(const char *rcpt, char *out, size_t outlen)
{
    const char *at = rcpt ? strrchr(rcpt, '@') : NULL;
    const char *p = rcpt, *end = at ? at : (rcpt ? rcpt + strlen(rcpt) : NULL);
    int quoted;
    size_t o = 0;

    if (!rcpt || outlen == 0)
        return MAILDIR_BAD_NAME;
    quoted = p < end && *p == '"';
    if (quoted && (end - p < 2 || end[-1] != '"'))
        return MAILDIR_BAD_NAME;
    if (quoted) {
        p++;
        end--;
    }
    for (; p < end; p++) {
        char c = *p;
        if (quoted && c == '\\' && p + 1 < end)
            c = *++p; /* quoted-pair: the escaped octet itself */
        if (o + 1 >= outlen)
            return MAILDIR_BAD_NAME;
        out[o++] = (char)tolower((unsigned char)c);
    }
    out[o] = '\0';
    return md_name_ok(out) ? MAILDIR_OK : MAILDIR_BAD_NAME;
}

/* maildir_accept - see maildir.h */
enum maildir_status maildir_accept(const char *root, const char *rcpt, int create, char *mailbox,
                                   size_t mailboxlen)
{
    enum maildir_status st = maildir_mailbox(rcpt, mailbox, mailboxlen);
    struct stat sb;
    int rootfd;

    if (st != MAILDIR_OK)
        return st;
    rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return create && errno == ENOENT ? MAILDIR_OK : MAILDIR_TEMP;
    if (fstatat(rootfd, mailbox, &sb, AT_SYMLINK_NOFOLLOW) < 0)
        st = errno != ENOENT ? MAILDIR_TEMP : create ? MAILDIR_OK : MAILDIR_UNKNOWN;
    else if (!S_ISDIR(sb.st_mode))
        st = MAILDIR_REFUSED; /* a symlink (never followed), or a file */
    close(rootfd);
    return st;
}

/* header_value_ok - the address goes into a header line: CR or LF would inject lines */
static int header_value_ok(const char *s)
{
    return s && strpbrk(s, "\r\n") == NULL;
}

/* md_subdirs - create tmp/ new/ cur/ in the maildir and open tmp/ and new/ */
static int md_subdirs(struct md_dirs *d)
{
    static const char *const sub[] = {"tmp", "new", "cur"};
    int created = 0;

    for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++) {
        if (mkdirat(d->mdfd, sub[i], 0700) == 0)
            created = 1;
        else if (errno != EEXIST)
            return -1;
    }
    if (created && fsync(d->mdfd) < 0)
        return -1;
    d->tmpfd = openat(d->mdfd, "tmp", MD_DIR_FLAGS);
    if (d->tmpfd < 0)
        return -1;
    d->newfd = openat(d->mdfd, "new", MD_DIR_FLAGS);
    return d->newfd < 0 ? -1 : 0;
}

/* md_walk_err - why a directory on the walk could not be opened: a
 * symlink or a file where a directory belongs is permanent */
static int md_walk_err(char *err, size_t errlen, int *permanent, const char *what, const char *path,
                       int errnum)
{
    if (errnum == ELOOP || errnum == ENOTDIR)
        return md_err(err, errlen, permanent, 1,
                      "not a directory (symlinks are not followed):", path, 0);
    return md_err(err, errlen, permanent, 0, what, path, errnum);
}

/* md_open_mailbox - open root/<mailbox> without following links; create
 * it (and the root) only when the route says so */
static int md_open_mailbox(struct md_dirs *d, const char *root, const char *mailbox, int create,
                           char *err, size_t errlen, int *permanent)
{
    int rootfd;

    if (create && fs_mkdir_p(root, 0700) < 0)
        return md_err(err, errlen, permanent, 0, "mkdir", root, errno);
    rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return md_err(err, errlen, permanent, 0, "open", root, errno);
    d->mdfd = openat(rootfd, mailbox, MD_DIR_FLAGS);
    if (d->mdfd < 0 && errno == ENOENT && create) {
        if ((mkdirat(rootfd, mailbox, 0700) < 0 && errno != EEXIST) || fsync(rootfd) < 0) {
            md_err(err, errlen, permanent, 0, "mkdir", d->path, errno);
            close(rootfd);
            return -1;
        }
        d->mdfd = openat(rootfd, mailbox, MD_DIR_FLAGS);
    }
    if (d->mdfd < 0) {
        int e = errno;
        close(rootfd);
        if (e == ENOENT)
            return md_err(err, errlen, permanent, 1, "no such mailbox", d->path, 0);
        return md_walk_err(err, errlen, permanent, "open", d->path, e);
    }
    close(rootfd);
    return 0;
}

/* md_open_dirs - open root/<mailbox>/{tmp,new} (creating what is allowed) */
static int md_open_dirs(struct md_dirs *d, const char *root, const char *mailbox, int create,
                        char *err, size_t errlen, int *permanent)
{
    d->mdfd = d->tmpfd = d->newfd = -1;
    if (snprintf(d->path, sizeof d->path, "%s/%s", root, mailbox) >= (int)sizeof d->path)
        return md_err(err, errlen, permanent, 0, "path too long:", root, ENAMETOOLONG);
    if (md_open_mailbox(d, root, mailbox, create, err, errlen, permanent) < 0)
        return -1;
    if (md_subdirs(d) < 0)
        return md_walk_err(err, errlen, permanent, "open", d->path, errno);
    return 0;
}

/* md_close_dirs - close whatever md_open_dirs opened */
static void md_close_dirs(struct md_dirs *d)
{
    if (d->newfd >= 0)
        close(d->newfd);
    if (d->tmpfd >= 0)
        close(d->tmpfd);
    if (d->mdfd >= 0)
        close(d->mdfd);
}

/* md_hostname - this host's name with '/' and ':' escaped as the maildir spec says */
static void md_hostname(char *out, size_t outlen)
{
    char host[MD_HOST_MAX];
    size_t o = 0;

    if (gethostname(host, sizeof host) < 0)
        strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';
    for (const char *p = host; *p && o + 5 < outlen; p++) {
        if (*p == '/' || *p == ':') {
            o += (size_t)snprintf(out + o, outlen - o, "\\%03o", (unsigned char)*p);
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

/* md_unique - "<time>.M<usec>P<pid>Q<counter>.<host>": unique per host by construction */
static void md_unique(char *out, size_t outlen)
{
    char host[MD_HOST_MAX * 4 + 1];
    struct timeval tv;
    unsigned long q = __atomic_add_fetch(&md_counter, 1, __ATOMIC_RELAXED);

    gettimeofday(&tv, NULL);
    md_hostname(host, sizeof host);
    snprintf(out, outlen, "%lld.M%06ldP%ldQ%lu.%s", (long long)tv.tv_sec, (long)tv.tv_usec,
             (long)getpid(), q, host);
}

/* md_create - create a fresh tmp/<unique> file; name receives its name */
static int md_create(const struct md_dirs *d, char *name, size_t namelen)
{
    int fd = -1;

    for (int i = 0; i < MD_OPEN_TRIES && fd < 0; i++) {
        md_unique(name, namelen);
        fd = openat(d->tmpfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    return fd;
}

/* io_flush - write out the converted octets */
static void io_flush(struct md_io *io)
{
    const char *p = io->out;
    size_t left = io->olen;

    while (left > 0 && !io->err) {
        ssize_t n = write(io->fd, p, left);
        if (n < 0 && errno != EINTR)
            io->err = errno;
        if (n > 0) {
            p += n;
            left -= (size_t)n;
        }
    }
    io->olen = 0;
}

/* io_put - append one octet to the output buffer */
static void io_put(struct md_io *io, char c)
{
    if (io->olen == sizeof io->out)
        io_flush(io);
    io->out[io->olen++] = c;
}

/* io_puts - append a string to the output buffer */
static void io_puts(struct md_io *io, const char *s)
{
    while (*s)
        io_put(io, *s++);
}

/* io_convert - CRLF -> LF and undo dot-stuffing for n wire octets */
static void io_convert(struct md_io *io, const char *in, size_t n)
{
    /* The state (at line start, CR pending) lives in io and carries over, so
     * a CRLF or a ".." split between two chunks is handled like one inside
     * a chunk. */
    for (size_t i = 0; i < n; i++) {
        char c = in[i];

        if (io->cr) {
            io->cr = 0;
            if (c == '\n') {
                io_put(io, '\n');
                io->bol = 1;
                continue;
            }
            io_put(io, '\r'); /* a bare CR is kept as it came */
            io->bol = 0;
        }
        if (c == '\r') {
            io->cr = 1;
        } else if (io->bol && c == '.') {
            io->bol = 0; /* the stuffed dot: RFC 5321 section 4.5.2 */
        } else {
            io->bol = c == '\n';
            io_put(io, c);
        }
    }
}

/* io_copy_body - read the body in chunks and convert it into the file */
static int io_copy_body(struct md_io *io, int body_fd, off_t off, uint64_t len)
{
    while (len > 0 && !io->err) {
        size_t want = len < sizeof io->in ? (size_t)len : sizeof io->in;
        ssize_t n = pread(body_fd, io->in, want, off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 ? (errno = EIO, -1) : -1; /* EOF early: the spool file shrank */
        io_convert(io, io->in, (size_t)n);
        off += n;
        len -= (uint64_t)n;
    }
    if (io->cr)
        io_put(io, '\r');
    io->cr = 0;
    io_flush(io);
    return io->err ? (errno = io->err, -1) : 0;
}

/* md_fill - write the delivery headers and the converted body into fd, then fsync */
static int md_fill(int fd, const char *sender, const char *rcpt, const struct spool_body *body)
{
    struct md_io *io = xmalloc(sizeof *io);
    int rc, saved;

    io->fd = fd;
    io->err = 0;
    io->olen = 0;
    io->bol = 1;
    io->cr = 0;
    io_puts(io, "Return-Path: <");
    io_puts(io, sender);
    io_puts(io, ">\nDelivered-To: ");
    io_puts(io, rcpt);
    io_puts(io, "\n");
    /* the fields decided at the end of DATA go first, converted like the body */
    io_convert(io, body->prepend ? body->prepend : "", body->prepend_len);
    rc = io_copy_body(io, body->fd, body->off, body->len);
    saved = errno;
    free(io);
    if (rc == 0)
        rc = fsync(fd);
    else
        errno = saved;
    return rc;
}

/* md_store - write tmp/<unique>, then move it into new/ and make that durable */
static int md_store(const struct md_dirs *d, const char *sender, const char *rcpt,
                    const struct spool_body *body, char *err, size_t errlen, int *permanent)
{
    char name[MD_NAME_MAX];
    int fd = md_create(d, name, sizeof name), saved;

    if (fd < 0)
        return md_err(err, errlen, permanent, 0, "create in", d->path, errno);
    if (md_fill(fd, sender, rcpt, body) < 0) {
        saved = errno;
        close(fd);
        unlinkat(d->tmpfd, name, 0);
        return md_err(err, errlen, permanent, 0, "write in", d->path, saved);
    }
    if (close(fd) < 0 || renameat(d->tmpfd, name, d->newfd, name) < 0) {
        saved = errno;
        unlinkat(d->tmpfd, name, 0);
        return md_err(err, errlen, permanent, 0, "store in", d->path, saved);
    }
    if (fsync(d->newfd) < 0) {
        /* Not durable, so the delivery will be retried: do not leave a
         * second copy behind for the user. */
        saved = errno;
        unlinkat(d->newfd, name, 0);
        return md_err(err, errlen, permanent, 0, "fsync new/ of", d->path, saved);
    }
    return 0;
}

/* maildir_deliver - BLOCKING: deliver one message into root/<mailbox>/new/ */
int maildir_deliver(const char *root, const char *mailbox, int create, const char *sender,
                    const char *rcpt, const struct spool_body *body, char *err, size_t errlen,
                    int *permanent)
{
    struct md_dirs d;
    int rc;

    *permanent = 0;
    /* The offending value is not echoed: it may hold control octets. */
    if (!mailbox || !md_name_ok(mailbox))
        return md_err(err, errlen, permanent, 1, "bad local part", "", 0);
    if (!header_value_ok(sender) || !header_value_ok(rcpt))
        return md_err(err, errlen, permanent, 1, "bad address for", mailbox, 0);
    rc = md_open_dirs(&d, root, mailbox, create, err, errlen, permanent);
    if (rc == 0)
        rc = md_store(&d, sender, rcpt, body, err, errlen, permanent);
    md_close_dirs(&d);
    return rc;
}
