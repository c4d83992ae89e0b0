/* test_maildir.c - Maildir delivery: exact bytes, chunk boundaries, failure kinds */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "queue/maildir.h"
#include "queue/spool.h"
#include "ts_fs.h"

#define CHUNK 65536 /* maildir.c reads the body in chunks of this size */
#define HDRS "Return-Path: <s@example.org>\nDelivered-To: u@example.test\n"

struct fixture {
    char dir[64];  /* private temporary directory */
    char root[96]; /* dir/mail: the maildir root, not created beforehand */
};

/* setup - a private directory; the root below it does not exist yet */
static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);

    if (!f)
        return -1;
    if (ts_tmpdir_make(f->dir, sizeof f->dir, "test_maildir") < 0)
        return -1;
    snprintf(f->root, sizeof f->root, "%s/mail/root", f->dir);
    *state = f;
    return 0;
}

/* teardown - remove the whole tree */
static int teardown(void **state)
{
    struct fixture *f = *state;

    ts_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

/* body_fd - a file holding prefix followed by wire; the body starts after prefix */
static int body_fd(struct fixture *f, const char *prefix, const char *wire, size_t wirelen)
{
    char path[128];
    int fd;

    snprintf(path, sizeof path, "%s/body", f->dir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, prefix, strlen(prefix)), (ssize_t)strlen(prefix));
    assert_int_equal(write(fd, wire, wirelen), (ssize_t)wirelen);
    return fd;
}

/* count_in - entries (not . and ..) in root/local/sub; -1 if the directory is missing */
static int count_in(struct fixture *f, const char *local, const char *sub, char *name, size_t len)
{
    char path[256];
    struct dirent *de;
    DIR *d;
    int n = 0;

    snprintf(path, sizeof path, "%s/%s/%s", f->root, local, sub);
    d = opendir(path);
    if (!d)
        return -1;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (name)
            snprintf(name, len, "%s", de->d_name);
        n++;
    }
    closedir(d);
    return n;
}

/* delivered - the content of the single message in root/local/new (checks tmp/ is empty) */
static char *delivered(struct fixture *f, const char *local, size_t *len)
{
    char name[512], path[1024];
    char *buf;

    assert_int_equal(count_in(f, local, "new", name, sizeof name), 1);
    assert_int_equal(count_in(f, local, "tmp", NULL, 0), 0);
    assert_int_equal(count_in(f, local, "cur", NULL, 0), 0);
    snprintf(path, sizeof path, "%s/%s/new/%s", f->root, local, name);
    buf = ts_read_file(path, len);
    assert_int_equal(unlink(path), 0); /* ready for the next delivery */
    return buf;
}

/* deliver_ok - deliver wire (after a prefix) to local and compare with expect */
static void deliver_ok(struct fixture *f, const char *local, const char *prefix, const char *wire,
                       size_t wirelen, const char *expect, size_t expectlen)
{
    char err[256] = "";
    int perm = -1, fd = body_fd(f, prefix, wire, wirelen);
    size_t len;
    char *got;

    assert_int_equal(
        maildir_deliver(f->root, local, 1, "s@example.org", "u@example.test",
                        &(struct spool_body){fd, (off_t)strlen(prefix), wirelen, NULL, 0}, err,
                        sizeof err, &perm),
        0);
    close(fd);
    got = delivered(f, local, &len);
    assert_int_equal(len, expectlen);
    assert_memory_equal(got, expect, expectlen);
    free(got);
}

/* test_basic - headers, LF line ends, unstuffed dots; directories made with mode 0700 */
static void test_basic(void **state)
{
    static const char wire[] = "Subject: hi\r\n\r\nline one\r\n..dotted\r\n...two\r\n"
                               "a.b\r\n\r\n..\r\nend\r\n";
    static const char expect[] = HDRS "Subject: hi\n\nline one\n.dotted\n..two\n"
                                      "a.b\n\n.\nend\n";
    static const char *const subs[] = {"", "/tmp", "/new", "/cur"};
    struct fixture *f = *state;
    char path[256];
    struct stat st;

    deliver_ok(f, "user", "MXQ1 header\n\n", wire, sizeof wire - 1, expect, sizeof expect - 1);
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/user%s", f->root, subs[i]);
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 0777, 0700);
    }
    assert_int_equal(stat(f->root, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
}

/* test_odd_octets - bare CR kept, a body without a final line end kept as is */
static void test_odd_octets(void **state)
{
    static const char wire[] = "a\rb\r\nc\r\r\n.\rx\r\nno end";
    static const char expect[] = HDRS "a\rb\nc\r\n\rx\nno end";
    static const char trailing_cr[] = "x\r";
    struct fixture *f = *state;

    deliver_ok(f, "u", "", wire, sizeof wire - 1, expect, sizeof expect - 1);
    deliver_ok(f, "u", "", trailing_cr, 2, HDRS "x\r", sizeof HDRS + 1);
    deliver_ok(f, "u", "", "", 0, HDRS, sizeof HDRS - 1);
}

/* test_chunk_boundaries - CRLF and ".." split at every offset around the 64 KiB chunk end */
static void test_chunk_boundaries(void **state)
{
    struct fixture *f = *state;
    size_t max = CHUNK + 64;
    char *wire = malloc(max + 64), *expect = malloc(max + 256);

    assert_non_null(wire);
    assert_non_null(expect);
    /* The CR lands on CHUNK-6 .. CHUNK+3: every split of "\r\n..dot\r\n" */
    for (size_t k = CHUNK - 6; k <= CHUNK + 3; k++) {
        size_t wl, el;

        memset(wire, 'a', k);
        wl = k + (size_t)sprintf(wire + k, "\r\n..dot\r\n.\r\n..\r\nz\r\n");
        el = (size_t)sprintf(expect, "%s", HDRS);
        memset(expect + el, 'a', k);
        el += k;
        el += (size_t)sprintf(expect + el, "\n.dot\n\n.\nz\n");
        deliver_ok(f, "chunks", "", wire, wl, expect, el);
        /* the same with the body not at offset 0 of its file */
        deliver_ok(f, "chunks", "MXQ1 000000000001\n", wire, wl, expect, el);
    }
    free(wire);
    free(expect);
}

/* test_large_body - many chunks of varied lines against an independently built expectation */
static void test_large_body(void **state)
{
    struct fixture *f = *state;
    size_t cap = 1 << 20, wl = 0, el = 0;
    char *wire = malloc(cap), *expect = malloc(cap);

    assert_non_null(wire);
    assert_non_null(expect);
    el = (size_t)sprintf(expect, "%s", HDRS);
    for (unsigned i = 0; wl < 600000; i++) {
        size_t n = (i * 37) % 150;
        int dot = i % 3 == 0;

        if (dot) /* stuffing: a line that starts with '.' is sent with one more */
            wire[wl++] = '.';
        for (size_t j = 0; j < n; j++) {
            char c = j == 0 && dot ? '.' : (char)('a' + (i + j) % 26);
            wire[wl++] = c;
            expect[el++] = c;
        }
        memcpy(wire + wl, "\r\n", 2);
        wl += 2;
        expect[el++] = '\n';
    }
    deliver_ok(f, "big", "prefix\n", wire, wl, expect, el);
    free(wire);
    free(expect);
}

/* test_unique_names - two deliveries to one maildir make two distinct, well-formed names */
static void test_unique_names(void **state)
{
    struct fixture *f = *state;
    char err[256], name[512], pidpart[32];
    int perm, fd = body_fd(f, "", "x\r\n", 3);
    struct dirent *de;
    char path[256];
    DIR *d;
    int n = 0;

    for (int i = 0; i < 2; i++)
        assert_int_equal(maildir_deliver(f->root, "twice", 1, "", "t@example.test",
                                         &(struct spool_body){fd, 0, 3, NULL, 0}, err, sizeof err,
                                         &perm),
                         0);
    close(fd);
    snprintf(pidpart, sizeof pidpart, "P%ldQ", (long)getpid());
    snprintf(path, sizeof path, "%s/twice/new", f->root);
    d = opendir(path);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        long sec, usec;
        if (de->d_name[0] == '.')
            continue;
        n++;
        snprintf(name, sizeof name, "%s", de->d_name);
        assert_int_equal(sscanf(name, "%ld.M%6ldP", &sec, &usec), 2);
        assert_non_null(strstr(name, pidpart));
        assert_null(strchr(name, '/'));
        assert_null(strchr(name, ':'));
    }
    closedir(d);
    assert_int_equal(n, 2);
}

/* test_canonical - one mailbox per user whatever the case or quoting */
static void test_canonical(void **state)
{
    static const char *const same[] = {"bob@x.test", "BOB@x.test", "\"Bob\"@x.test",
                                       "\"b\\ob\"@x.test", "bOb"};
    static const char *const bad[] = {
        "a/b@x.test", "\"a/b\"@x.test", ".bob@x.test",        "\"..\"@x.test", "\"\"@x.test",
        "@x.test",    "\"a b\"@x.test", "j\xc3\xb6rg@x.test", "\"bob@x.test",  "\"a\x01\"@x.test"};
    char name[NAME_MAX + 1], big[200];

    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        assert_int_equal(maildir_mailbox(same[i], name, sizeof name), MAILDIR_OK);
        assert_string_equal(name, "bob");
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(maildir_mailbox(bad[i], name, sizeof name), MAILDIR_BAD_NAME);
    memset(big, 'a', 65);
    strcpy(big + 65, "@x.test");
    assert_int_equal(maildir_mailbox(big, name, sizeof name), MAILDIR_BAD_NAME);
    strcpy(big + 64, "@x.test");
    assert_int_equal(maildir_mailbox(big, name, sizeof name), MAILDIR_OK);
}

/* test_accept - the RCPT-time test: known, unknown, created, refused, root missing */
static void test_accept(void **state)
{
    struct fixture *f = *state;
    char name[NAME_MAX + 1], path[256], err[256];
    int perm, fd = body_fd(f, "", "x\r\n", 3);

    /* no root: temporary without create, fine with it */
    assert_int_equal(maildir_accept(f->root, "bob@x.test", 0, name, sizeof name), MAILDIR_TEMP);
    assert_int_equal(maildir_accept(f->root, "bob@x.test", 1, name, sizeof name), MAILDIR_OK);
    assert_int_equal(maildir_accept(f->root, "a/b@x.test", 1, name, sizeof name), MAILDIR_BAD_NAME);
    /* without create nothing is made, and delivery refuses for good */
    assert_int_equal(fs_mkdir_p(f->root, 0700), 0);
    assert_int_equal(maildir_accept(f->root, "bob@x.test", 0, name, sizeof name), MAILDIR_UNKNOWN);
    perm = 0;
    assert_int_equal(maildir_deliver(f->root, "bob", 0, "", "bob@x.test",
                                     &(struct spool_body){fd, 0, 3, NULL, 0}, err, sizeof err,
                                     &perm),
                     -1);
    assert_int_equal(perm, 1);
    assert_non_null(strstr(err, "no such mailbox"));
    assert_int_equal(count_in(f, "bob", "new", NULL, 0), -1);
    /* an existing mailbox (without its subdirectories yet) takes mail */
    snprintf(path, sizeof path, "%s/bob", f->root);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(maildir_accept(f->root, "\"BOB\"@x.test", 0, name, sizeof name), MAILDIR_OK);
    assert_string_equal(name, "bob");
    assert_int_equal(maildir_deliver(f->root, name, 0, "", "BOB@x.test",
                                     &(struct spool_body){fd, 0, 3, NULL, 0}, err, sizeof err,
                                     &perm),
                     0);
    assert_int_equal(count_in(f, "bob", "new", NULL, 0), 1);
    close(fd);
}

/* test_symlink - a symlinked mailbox or new/ is never followed */
static void test_symlink(void **state)
{
    struct fixture *f = *state;
    char name[NAME_MAX + 1], target[256], link[256], err[256] = "";
    int perm = 0, fd = body_fd(f, "", "x\r\n", 3);

    assert_int_equal(fs_mkdir_p(f->root, 0700), 0);
    snprintf(target, sizeof target, "%s/elsewhere", f->dir);
    assert_int_equal(mkdir(target, 0700), 0);
    snprintf(link, sizeof link, "%s/eve", f->root);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(maildir_accept(f->root, "eve@x.test", 1, name, sizeof name), MAILDIR_REFUSED);
    assert_int_equal(maildir_deliver(f->root, "eve", 1, "", "eve@x.test",
                                     &(struct spool_body){fd, 0, 3, NULL, 0}, err, sizeof err,
                                     &perm),
                     -1);
    assert_int_equal(perm, 1);
    assert_non_null(strstr(err, "symlinks are not followed"));
    /* new/ of a real mailbox pointing elsewhere */
    snprintf(link, sizeof link, "%s/amy", f->root);
    assert_int_equal(mkdir(link, 0700), 0);
    snprintf(link, sizeof link, "%s/amy/new", f->root);
    assert_int_equal(symlink(target, link), 0);
    perm = 0;
    assert_int_equal(maildir_deliver(f->root, "amy", 0, "", "amy@x.test",
                                     &(struct spool_body){fd, 0, 3, NULL, 0}, err, sizeof err,
                                     &perm),
                     -1);
    assert_int_equal(perm, 1);
    close(fd);
    assert_int_equal(count_in(f, "../../elsewhere", ".", NULL, 0), 0); /* nothing written there */
}

/* test_bad_local - unusable local parts and header-breaking addresses are permanent */
static void test_bad_local(void **state)
{
    static const char *const bad[] = {"",     ".",      "..",        ".hidden", "a/b",
                                      "/abs", "a\x01z", "tab\there", "del\x7f", "new\nline"};
    struct fixture *f = *state;
    char err[256];
    int perm, fd = body_fd(f, "", "x\r\n", 3);
    struct stat st;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        perm = 0;
        assert_int_equal(maildir_deliver(f->root, bad[i], 1, "", "x@y.test",
                                         &(struct spool_body){fd, 0, 3, NULL, 0}, err, sizeof err,
                                         &perm),
                         -1);
        assert_int_equal(perm, 1);
        assert_true(strlen(err) > 0);
    }
    perm = 0;
    assert_int_equal(maildir_deliver(f->root, "ok", 1, "a@b\r\nX-Evil: 1", "x@y.test",
                                     &(struct spool_body){fd, 0, 3, NULL, 0}, err, sizeof err,
                                     &perm),
                     -1);
    assert_int_equal(perm, 1);
    assert_int_equal(maildir_deliver(f->root, "ok", 1, "", "x@y\nX-Evil: 1",
                                     &(struct spool_body){fd, 0, 3, NULL, 0}, err, sizeof err,
                                     &perm),
                     -1);
    assert_int_equal(perm, 1);
    close(fd);
    assert_int_equal(stat(f->root, &st), -1); /* nothing was created */
}

/* test_unwritable_root - a root below a regular file fails temporarily (ENOTDIR) */
static void test_unwritable_root(void **state)
{
    struct fixture *f = *state;
    char root[128], file[128], err[256] = "";
    int perm = 1, fd = body_fd(f, "", "x\r\n", 3), ffd;

    /* Tests may run as root, where permission bits do not stop anything. */
    snprintf(file, sizeof file, "%s/file", f->dir);
    ffd = open(file, O_WRONLY | O_CREAT, 0600);
    assert_true(ffd >= 0);
    close(ffd);
    snprintf(root, sizeof root, "%s/file/sub", f->dir);
    assert_int_equal(maildir_deliver(root, "user", 1, "", "u@x.test",
                                     &(struct spool_body){fd, 0, 3, NULL, 0}, err, sizeof err,
                                     &perm),
                     -1);
    assert_int_equal(perm, 0);
    assert_non_null(strstr(err, strerror(ENOTDIR)));

    /* the maildir itself is a regular file */
    assert_int_equal(maildir_deliver(f->root, "user", 1, "", "u@x.test",
                                     &(struct spool_body){fd, 0, 3, NULL, 0}, err, sizeof err,
                                     &perm),
                     0);
    snprintf(file, sizeof file, "%s/blocked", f->root);
    ffd = open(file, O_WRONLY | O_CREAT, 0600);
    assert_true(ffd >= 0);
    close(ffd);
    perm = 1;
    assert_int_equal(maildir_deliver(f->root, "blocked", 1, "", "u@x.test",
                                     &(struct spool_body){fd, 0, 3, NULL, 0}, err, sizeof err,
                                     &perm),
                     -1);
    assert_int_equal(perm, 1); /* a file where the mailbox belongs: never a directory */
    close(fd);
}

/* test_prepend - the fields decided at the end of DATA come first, with LF line ends */
static void test_prepend(void **state)
{
    struct fixture *f = *state;
    static const char pre[] = "Authentication-Results: mx.test; none\r\nX-Spam-Score: 0\r\n";
    static const char expect[] =
        HDRS "Authentication-Results: mx.test; none\nX-Spam-Score: 0\nSubject: hi\n\nbody\n";
    char err[256] = "";
    int perm = -1, fd = body_fd(f, "", "Subject: hi\r\n\r\nbody\r\n", 21);
    size_t len;
    char *got;

    assert_int_equal(maildir_deliver(f->root, "pre", 1, "s@example.org", "u@example.test",
                                     &(struct spool_body){fd, 0, 21, pre, strlen(pre)}, err,
                                     sizeof err, &perm),
                     0);
    close(fd);
    got = delivered(f, "pre", &len);
    assert_int_equal(len, strlen(expect));
    assert_memory_equal(got, expect, len);
    free(got);
}

/* test_short_body - a body file shorter than announced fails temporarily, leaving nothing */
static void test_short_body(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    int perm = 1, fd = body_fd(f, "", "only this\r\n", 11);

    assert_int_equal(maildir_deliver(f->root, "short", 1, "", "u@x.test",
                                     &(struct spool_body){fd, 0, 5000, NULL, 0}, err, sizeof err,
                                     &perm),
                     -1);
    close(fd);
    assert_int_equal(perm, 0);
    assert_true(strlen(err) > 0);
    assert_int_equal(count_in(f, "short", "tmp", NULL, 0), 0);
    assert_int_equal(count_in(f, "short", "new", NULL, 0), 0);
}

/* main - run the maildir tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_odd_octets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunk_boundaries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unique_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_canonical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_local, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_body, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
