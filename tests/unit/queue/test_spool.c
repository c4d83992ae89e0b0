/* test_spool.c - the durable queue: format, crash leftovers, logs, concurrency */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "queue/spool.h"
#include "ts_fs.h"

struct fixture {
    char dir[64];
    struct spool *sp;
};

/* setup - a fresh spool in a private temporary directory */
static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char err[256];

    if (!f)
        return -1;
    if (ts_tmpdir_make(f->dir, sizeof f->dir, "test_spool") < 0)
        return -1;
    f->sp = spool_open(f->dir, err, sizeof err);
    if (!f->sp)
        return -1;
    *state = f;
    return 0;
}

/* teardown - close the spool and remove its directory tree */
static int teardown(void **state)
{
    struct fixture *f = *state;

    spool_close(f->sp);
    ts_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

/* path_of - "<spool>/<sub>/<name>" */
static const char *path_of(struct fixture *f, const char *sub, const char *name)
{
    static char buf[256];

    assert_true(snprintf(buf, sizeof buf, "%s/%s/%s", f->dir, sub, name) < (int)sizeof buf);
    return buf;
}

/* exists - 1 if "<spool>/<sub>/<name>" exists */
static int exists(struct fixture *f, const char *sub, const char *name)
{
    struct stat st;
    return stat(path_of(f, sub, name), &st) == 0;
}

/* count_entries - number of entries (not . and ..) in "<spool>/<sub>" */
static int count_entries(struct fixture *f, const char *sub)
{
    char path[256];
    struct dirent *de;
    DIR *d;
    int n = 0;

    snprintf(path, sizeof path, "%s/%s", f->dir, sub);
    d = opendir(path);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* write_file - create path with exactly len octets */
static void write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static struct spool_rcpt test_rcpts[3] = {
    {.addr = "alice@example.test"}, {.addr = "bob@example.test"}, {.addr = "carol@other.test"}};

/* make_env - a typical inbound envelope with a fresh id */
static void make_env(struct spool_envelope *env)
{
    memset(env, 0, sizeof *env);
    spool_new_id(env->id);
    env->arrival = 1700000000;
    env->client_ip = "192.0.2.7";
    env->client_name = "mail.example.org";
    env->helo = "mail.example.org";
    env->sender = "sender@example.org";
    env->body_8bit = 1;
    env->nrcpt = 3;
    env->rcpt = test_rcpts;
}

/* commit_message - write env with body and commit it; the writer is freed */
static void commit_message(struct spool *sp, const struct spool_envelope *env, const char *body)
{
    struct spool_writer *w = spool_writer_begin(sp, env);

    assert_non_null(w);
    assert_int_equal(spool_writer_write(w, body, strlen(body)), 0);
    assert_int_equal(spool_writer_commit(w), 0);
    spool_writer_free(w);
}

/* read_body - the body of a queued message through spool_open_body and the offsets */
static char *read_body(struct spool *sp, const char *id, off_t off, uint64_t len)
{
    char *buf = malloc(len + 1);
    int fd = spool_open_body(sp, id);

    assert_non_null(buf);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, len, off), (ssize_t)len);
    buf[len] = '\0';
    close(fd);
    return buf;
}

/* test_roundtrip - every envelope field, recipient order and body octets survive */
static void test_roundtrip(void **state)
{
    struct fixture *f = *state;
    struct spool_envelope env, got;
    struct spool_writer *w;
    size_t blen = 200000;
    char *body = malloc(blen), *back;
    off_t off;
    uint64_t len;

    assert_non_null(body);
    for (size_t i = 0; i < blen; i++)
        body[i] = (char)(i * 7 + i / 251); /* includes NUL, CR, LF and '.' octets */
    make_env(&env);
    env.smtputf8 = 1;
    env.dsn_ret = "HDRS";
    env.dsn_envid = "QQ+2Bxyz";
    w = spool_writer_begin(f->sp, &env);
    assert_non_null(w);
    assert_true(exists(f, "tmp", env.id));
    /* small pieces, a piece crossing the buffer end, and one larger than the buffer */
    assert_int_equal(spool_writer_write(w, body, 10), 0);
    assert_int_equal(spool_writer_write(w, body + 10, 65530), 0);
    assert_int_equal(spool_writer_write(w, body + 65540, 100000), 0);
    assert_int_equal(spool_writer_write(w, body + 165540, blen - 165540), 0);
    assert_int_equal(spool_writer_size(w), blen);
    assert_int_equal(spool_writer_commit(w), 0);
    spool_writer_free(w);
    assert_false(exists(f, "tmp", env.id));
    assert_int_equal(count_entries(f, "tmp"), 0);

    assert_int_equal(spool_load(f->sp, env.id, &got, &off, &len), 0);
    assert_string_equal(got.id, env.id);
    assert_int_equal(got.arrival, 1700000000);
    assert_string_equal(got.client_ip, "192.0.2.7");
    assert_string_equal(got.client_name, "mail.example.org");
    assert_string_equal(got.helo, "mail.example.org");
    assert_string_equal(got.sender, "sender@example.org");
    assert_int_equal(got.body_8bit, 1);
    assert_int_equal(got.smtputf8, 1);
    assert_int_equal(got.is_bounce, 0);
    assert_string_equal(got.dsn_ret, "HDRS");
    assert_string_equal(got.dsn_envid, "QQ+2Bxyz");
    assert_int_equal(got.nrcpt, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(got.rcpt[i].addr, test_rcpts[i].addr);
        assert_int_equal(got.rcpt[i].state, SPOOL_RCPT_PENDING);
        assert_int_equal(got.rcpt[i].attempts, 0);
        assert_null(got.rcpt[i].last_text);
    }
    assert_int_equal(len, blen);
    back = read_body(f->sp, env.id, off, len);
    assert_memory_equal(back, body, blen);
    spool_envelope_free(&got);
    assert_null(got.rcpt);
    assert_int_equal(got.nrcpt, 0);
    free(back);
    free(body);
}

/* test_on_disk_format - the header is the documented text, byte for byte */
static void test_on_disk_format(void **state)
{
    struct fixture *f = *state;
    struct spool_envelope env, got;
    char expect[1024], rest[1024];
    size_t len;
    char *raw;
    off_t off;
    uint64_t blen;

    make_env(&env);
    env.client_ip = NULL; /* locally generated: written as "" */
    env.sender = "";
    env.body_8bit = 0;
    env.is_bounce = 1;
    env.nrcpt = 2;
    commit_message(f->sp, &env, "Subject: x\r\n\r\nhello\r\n");
    /* first line: body length, then zlib's CRC-32 of everything after the line */
    snprintf(rest, sizeof rest,
             "id %s\narrival 1700000000\nclient-ip \n"
             "client-name mail.example.org\nhelo mail.example.org\nsender \nbody 7bit\n"
             "smtputf8 0\nis-bounce 1\nrcpt alice@example.test\nrcpt bob@example.test\n\n"
             "Subject: x\r\n\r\nhello\r\n",
             env.id);
    snprintf(expect, sizeof expect, "MXQ3 000000000021 %08lx 00000\n%s",
             crc32(0, (const unsigned char *)rest, (unsigned)strlen(rest)), rest);
    raw = ts_read_file(path_of(f, "queue", env.id), &len);
    assert_int_equal(len, strlen(expect));
    assert_memory_equal(raw, expect, len);
    assert_int_equal(spool_load(f->sp, env.id, &got, &off, &blen), 0);
    assert_int_equal(off, (off_t)(len - 21));
    assert_int_equal(blen, 21);
    assert_string_equal(got.client_ip, "");
    assert_string_equal(got.sender, "");
    assert_int_equal(got.is_bounce, 1);
    assert_int_equal(got.body_8bit, 0);
    assert_null(got.dsn_ret);
    assert_null(got.dsn_envid);
    spool_envelope_free(&got);
    free(raw);
}

/* test_ids - 100000 ids: the right shape, strictly increasing, near the current time */
static void test_ids(void **state)
{
    char prev[SPOOL_ID_LEN + 1] = "", id[SPOOL_ID_LEN + 1];
    time_t now = time(NULL);
    unsigned long secs;

    for (int i = 0; i < 100000; i++) {
        spool_new_id(id);
        assert_int_equal(strlen(id), SPOOL_ID_LEN);
        assert_true(spool_valid_id(id));
        assert_true(strcmp(prev, id) < 0);
        memcpy(prev, id, sizeof id);
    }
    assert_int_equal(sscanf(id, "%8lx", &secs), 1);
    assert_true((long)secs >= (long)now - 2 && (long)secs <= (long)now + 5);
}

#define ID_THREADS 4
#define IDS_PER_THREAD 25000

/* id_thread - collect ids from one thread */
static void *id_thread(void *arg)
{
    char(*ids)[SPOOL_ID_LEN + 1] = arg;

    for (int i = 0; i < IDS_PER_THREAD; i++)
        spool_new_id(ids[i]);
    return NULL;
}

/* cmp_id - qsort comparator */
static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* test_ids_threads - ids from concurrent threads never collide */
static void test_ids_threads(void **state)
{
    static char ids[ID_THREADS * IDS_PER_THREAD][SPOOL_ID_LEN + 1];
    pthread_t th[ID_THREADS];

    for (int i = 0; i < ID_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, id_thread, ids[i * IDS_PER_THREAD]), 0);
    for (int i = 0; i < ID_THREADS; i++)
        pthread_join(th[i], NULL);
    qsort(ids, ID_THREADS * IDS_PER_THREAD, sizeof ids[0], cmp_id);
    for (int i = 1; i < ID_THREADS * IDS_PER_THREAD; i++)
        assert_true(strcmp(ids[i - 1], ids[i]) < 0);
}

/* test_valid_id - exactly 16 upper-case hex digits */
static void test_valid_id(void **state)
{
    assert_true(spool_valid_id("0123456789ABCDEF"));
    assert_false(spool_valid_id("0123456789abcdef"));
    assert_false(spool_valid_id("0123456789ABCDE"));
    assert_false(spool_valid_id("0123456789ABCDEF0"));
    assert_false(spool_valid_id("../3456789ABCDEF"));
    assert_false(spool_valid_id(""));
    assert_false(spool_valid_id(NULL));
}

/* expect_corrupt - load fails with EBADMSG and the file moved to corrupt/ */
static void expect_corrupt(struct fixture *f, const char *id)
{
    struct spool_envelope got;
    off_t off;
    uint64_t len;

    errno = 0;
    assert_int_equal(spool_load(f->sp, id, &got, &off, &len), -1);
    assert_int_equal(errno, EBADMSG);
    assert_false(exists(f, "queue", id));
    assert_true(exists(f, "corrupt", id));
    assert_null(got.rcpt);
}

/* test_torn_file - a queued file cut short (body or header) goes to corrupt/ */
static void test_torn_file(void **state)
{
    struct fixture *f = *state;
    struct spool_envelope env;
    char id2[SPOOL_ID_LEN + 1], logname[SPOOL_ID_LEN + 5];
    struct stat st;

    make_env(&env);
    commit_message(f->sp, &env, "Subject: torn\r\n\r\nbody\r\n");
    assert_int_equal(spool_log_deferred(f->sp, env.id, 0, "later"), 0);
    assert_int_equal(stat(path_of(f, "queue", env.id), &st), 0);
    assert_int_equal(truncate(path_of(f, "queue", env.id), st.st_size - 1), 0);
    expect_corrupt(f, env.id);
    assert_false(exists(f, "log", env.id));
    snprintf(logname, sizeof logname, "%s.log", env.id);
    assert_true(exists(f, "corrupt", logname));

    make_env(&env);
    memcpy(id2, env.id, sizeof id2);
    commit_message(f->sp, &env, "x\r\n");
    assert_int_equal(truncate(path_of(f, "queue", id2), 40), 0);
    expect_corrupt(f, id2);
}

/* valid_header - a correct hand-made queue file for id with a 5-octet body */
static void valid_header(char *buf, size_t len, const char *id)
{
    snprintf(buf, len,
             "MXQ1 000000000005\nid %s\narrival 1\nclient-ip 192.0.2.1\nclient-name unknown\n"
             "helo x\nsender a@b.test\nbody 7bit\nsmtputf8 0\nis-bounce 0\nrcpt c@d.test\n\n"
             "hello",
             id);
}

/* test_prepend - fields decided at the end of DATA: stored after the body, loaded
 * apart from it, counted in the checksum and the length check */
static void test_prepend(void **state)
{
    struct fixture *f = *state;
    static const char pre[] = "Authentication-Results: mx.test; none\r\n";
    struct spool_envelope env, got;
    struct spool_writer *w;
    char *raw;
    size_t len;
    off_t off;
    uint64_t blen;

    make_env(&env);
    w = spool_writer_begin(f->sp, &env);
    assert_non_null(w);
    assert_int_equal(spool_writer_write(w, "Subject: x\r\n\r\nhi\r\n", 18), 0);
    assert_int_equal(spool_writer_prepend(w, pre, strlen(pre)), 0);
    assert_int_equal(spool_writer_write(w, "late", 4), -1); /* the body is closed */
    assert_int_equal(spool_writer_commit(w), 0);
    spool_writer_free(w);
    raw = ts_read_file(path_of(f, "queue", env.id), &len);
    assert_memory_equal(raw, "MXQ3 000000000018 ", 18);
    assert_memory_equal(raw + 26, " 00039\n", 7);
    assert_int_equal(spool_load(f->sp, env.id, &got, &off, &blen), 0);
    assert_int_equal(blen, 18);
    assert_int_equal(got.prepend_len, strlen(pre));
    assert_string_equal(got.prepend, pre);
    assert_memory_equal(raw + off, "Subject: x\r\n\r\nhi\r\n", 18);
    spool_envelope_free(&got);
    /* a prepend one octet short of its announced length is a torn file */
    write_file(path_of(f, "queue", env.id), raw, len - 1);
    assert_int_equal(spool_load(f->sp, env.id, &got, &off, &blen), -1);
    assert_int_equal(errno, EBADMSG);
    free(raw);
}

/* splice_check - the committed message loads (checksum verified) with body want */
static void splice_check(struct fixture *f, const char *id, const char *want)
{
    struct spool_envelope got;
    char *raw;
    size_t len;
    off_t off;
    uint64_t blen;

    assert_int_equal(spool_load(f->sp, id, &got, &off, &blen), 0);
    raw = ts_read_file(path_of(f, "queue", id), &len);
    assert_int_equal(blen, strlen(want));
    assert_memory_equal(raw + off, want, strlen(want));
    assert_string_equal(got.prepend, "X-P: 1\r\n");
    spool_envelope_free(&got);
    free(raw);
}

/* test_splice - an edit at the end of DATA rewrites a range of the body in tmp/:
 * the checksum, the lengths and the prepend after it stay right */
static void test_splice(void **state)
{
    struct fixture *f = *state;
    struct spool_envelope env;
    struct spool_writer *w;
    char big[100000];

    make_env(&env);
    w = spool_writer_begin(f->sp, &env);
    assert_non_null(w);
    static const char orig[] = "A: 1\r\nB: 2\r\n\r\nbody\r\n", chg[] = "B: changed\r\nC: 3\r\n";

    assert_int_equal(spool_writer_write(w, orig, strlen(orig)), 0);
    assert_int_equal(spool_writer_splice(w, 6, 6, chg, strlen(chg)), 0);
    assert_int_equal(spool_writer_splice(w, 26, 6, "new\r\n", 5), 0); /* the body */
    assert_int_equal(spool_writer_splice(w, 30, 10, "x", 1), -1);     /* out of range */
    assert_int_equal(errno, EINVAL);
    assert_int_equal(spool_writer_size(w), 31);
    assert_int_equal(spool_writer_prepend(w, "X-P: 1\r\n", 8), 0);
    assert_int_equal(spool_writer_splice(w, 0, 0, "x", 1), -1); /* after the prepend */
    assert_int_equal(spool_writer_commit(w), 0);
    spool_writer_free(w);
    splice_check(f, env.id, "A: 1\r\nB: changed\r\nC: 3\r\n\r\nnew\r\n");
    /* a tail longer than the writer's buffer is carried over whole */
    make_env(&env);
    memset(big, 'z', sizeof big);
    w = spool_writer_begin(f->sp, &env);
    assert_int_equal(spool_writer_write(w, "H: 1\r\n", 7), 0);
    assert_int_equal(spool_writer_write(w, big, sizeof big), 0);
    assert_int_equal(spool_writer_splice(w, 0, 7, "", 0), 0);
    assert_int_equal(spool_writer_prepend(w, "X-P: 1\r\n", 8), 0);
    assert_int_equal(spool_writer_commit(w), 0);
    spool_writer_free(w);
    char *want = calloc(1, sizeof big + 1);
    memcpy(want, big, sizeof big);
    splice_check(f, env.id, want);
    free(want);
}

/* replace - copy src into dst with the first "from" replaced by "to" */
static void replace(char *dst, size_t len, const char *src, const char *from, const char *to)
{
    const char *at = strstr(src, from);

    assert_non_null(at);
    snprintf(dst, len, "%.*s%s%s", (int)(at - src), src, to, at + strlen(from));
}

/* test_bad_headers - each kind of inconsistency is refused and quarantined */
static void test_bad_headers(void **state)
{
    static const char *const edits[][2] = {
        {"MXQ1 ", "MXQ4 "},                                /* bad magic */
        {"MXQ1 ", "MXQ2 "},                                /* new magic, no checksum */
        {"000000000005", "000000000006"},                  /* length does not match */
        {"000000000005", "00000000000x"},                  /* length not decimal */
        {"helo x\n", "helo x\ncolour blue\n"},             /* unknown key */
        {"rcpt c@d.test\n", ""},                           /* no recipient */
        {"sender a@b.test\n", ""},                         /* no sender */
        {"body 7bit\n", "body 9bit\n"},                    /* bad value */
        {"smtputf8 0\n", "smtputf8 2\n"},                  /* bad flag */
        {"helo x\n", "helo x\nhelo y\n"},                  /* repeated key */
        {"helo x\n", "helo\n"},                            /* key without value separator */
        {"arrival 1\n", "arrival -1\n"},                   /* bad number */
        {"rcpt c@d.test\n", "rcpt \n"},                    /* empty recipient */
        {"helo x\n", "helo x\r\n"},                        /* CR in a value */
        {"is-bounce 0\n", "is-bounce 0\ndsn-ret NEVER\n"}, /* bad DSN RET */
    };
    struct fixture *f = *state;
    struct spool_envelope got;
    char id[SPOOL_ID_LEN + 1], good[1024], bad[1024];
    off_t off;
    uint64_t len;

    /* control: the unedited file loads, so each failure below is the edit's doing */
    spool_new_id(id);
    valid_header(good, sizeof good, id);
    write_file(path_of(f, "queue", id), good, strlen(good));
    assert_int_equal(spool_load(f->sp, id, &got, &off, &len), 0);
    assert_int_equal(len, 5);
    assert_string_equal(got.rcpt[0].addr, "c@d.test");
    spool_envelope_free(&got);

    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        spool_new_id(id);
        valid_header(good, sizeof good, id);
        replace(bad, sizeof bad, good, edits[i][0], edits[i][1]);
        write_file(path_of(f, "queue", id), bad, strlen(bad));
        expect_corrupt(f, id);
    }
    /* the id inside must match the file name */
    spool_new_id(id);
    valid_header(good, sizeof good, "0000000000000001");
    write_file(path_of(f, "queue", id), good, strlen(good));
    expect_corrupt(f, id);
    /* a NUL octet in the header */
    spool_new_id(id);
    valid_header(good, sizeof good, id);
    good[30] = '\0';
    write_file(path_of(f, "queue", id), good, strlen(good) + 1 + strlen(good + 31));
    expect_corrupt(f, id);
}

/* test_load_missing - a missing id is ENOENT, a malformed one EINVAL */
static void test_load_missing(void **state)
{
    struct fixture *f = *state;
    struct spool_envelope got;
    off_t off;
    uint64_t len;

    errno = 0;
    assert_int_equal(spool_load(f->sp, "00000000000000AA", &got, &off, &len), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(spool_load(f->sp, "../../etc/passwd", &got, &off, &len), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(spool_open_body(f->sp, "00000000000000AA"), -1);
    assert_int_equal(errno, ENOENT);
}

/* test_log_states - records set states, count attempts and keep the newest text */
static void test_log_states(void **state)
{
    struct fixture *f = *state;
    struct spool_envelope env, got;
    char longtext[1000];
    off_t off;
    uint64_t len;

    make_env(&env);
    commit_message(f->sp, &env, "b\r\n");
    memset(longtext, 'z', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = '\0';
    longtext[5] = '\t';
    longtext[6] = '\n';
    assert_int_equal(spool_log_deferred(f->sp, env.id, 0, "451 try later"), 0);
    assert_int_equal(spool_log_deferred(f->sp, env.id, 0, "451 again"), 0);
    assert_int_equal(spool_log(f->sp, env.id, 0, SPOOL_RCPT_DELIVERED, "250 ok"), 0);
    assert_int_equal(spool_log(f->sp, env.id, 1, SPOOL_RCPT_BOUNCED, "550 no\r\nsuch user"), 0);
    assert_int_equal(spool_log_deferred(f->sp, env.id, 2, longtext), 0);
    assert_int_equal(spool_log(f->sp, env.id, 2, SPOOL_RCPT_PENDING, "x"), -1);
    assert_int_equal(errno, EINVAL);

    assert_int_equal(spool_load(f->sp, env.id, &got, &off, &len), 0);
    assert_int_equal(got.rcpt[0].state, SPOOL_RCPT_DELIVERED);
    assert_int_equal(got.rcpt[0].attempts, 2);
    assert_string_equal(got.rcpt[0].last_text, "250 ok");
    assert_int_equal(got.rcpt[1].state, SPOOL_RCPT_BOUNCED);
    assert_int_equal(got.rcpt[1].attempts, 0);
    assert_string_equal(got.rcpt[1].last_text, "550 no  such user");
    assert_int_equal(got.rcpt[2].state, SPOOL_RCPT_PENDING);
    assert_int_equal(got.rcpt[2].attempts, 1);
    assert_int_equal(strlen(got.rcpt[2].last_text), 400);
    assert_memory_equal(got.rcpt[2].last_text, "zzzzz  zzz", 10);
    spool_envelope_free(&got);
}

/* test_log_format - the record is "<time> <idx> <status> <text>\n" */
static void test_log_format(void **state)
{
    struct fixture *f = *state;
    struct spool_envelope env;
    long long t;
    char text[64];
    size_t len;
    char *raw;
    time_t now = time(NULL);

    make_env(&env);
    commit_message(f->sp, &env, "b\r\n");
    assert_int_equal(spool_log_deferred(f->sp, env.id, 2, "421 busy"), 0);
    raw = ts_read_file(path_of(f, "log", env.id), &len);
    assert_int_equal(sscanf(raw, "%lld 2 deferred %63[^\n]", &t, text), 2);
    assert_true(t >= (long long)now && t <= (long long)now + 5);
    assert_string_equal(text, "421 busy");
    assert_int_equal(raw[len - 1], '\n');
    assert_non_null(strstr(raw, " 2 deferred 421 busy\n"));
    free(raw);
}

/* append_raw - append octets to log/ID as a crash or a damaged disk would leave them */
static void append_raw(struct fixture *f, const char *id, const char *data)
{
    int fd = open(path_of(f, "log", id), O_WRONLY | O_APPEND | O_CREAT, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
    close(fd);
}

/* test_log_torn_tail - a torn last record is ignored, and cut before the next append */
static void test_log_torn_tail(void **state)
{
    struct fixture *f = *state;
    struct spool_envelope env, got;
    off_t off;
    uint64_t len;
    size_t rawlen;
    char *raw;

    make_env(&env);
    commit_message(f->sp, &env, "b\r\n");
    assert_int_equal(spool_log_deferred(f->sp, env.id, 0, "451 later"), 0);
    append_raw(f, env.id, "1700000000 1 deliv");
    assert_int_equal(spool_load(f->sp, env.id, &got, &off, &len), 0);
    assert_int_equal(got.rcpt[0].attempts, 1);
    assert_int_equal(got.rcpt[1].state, SPOOL_RCPT_PENDING);
    spool_envelope_free(&got);

    assert_int_equal(spool_log(f->sp, env.id, 1, SPOOL_RCPT_DELIVERED, "250 done"), 0);
    raw = ts_read_file(path_of(f, "log", env.id), &rawlen);
    assert_null(strstr(raw, "deliv\n"));
    assert_null(strstr(raw, "deliv1"));
    free(raw);
    assert_int_equal(spool_load(f->sp, env.id, &got, &off, &len), 0);
    assert_int_equal(got.rcpt[0].attempts, 1);
    assert_int_equal(got.rcpt[1].state, SPOOL_RCPT_DELIVERED);
    assert_string_equal(got.rcpt[1].last_text, "250 done");
    spool_envelope_free(&got);
}

/* test_log_malformed - a complete but malformed record is not ignored */
static void test_log_malformed(void **state)
{
    static const char *const bad[] = {
        "garbage\n",
        "1700000000 7 delivered out of range\n",
        "1700000000 0 shipped unknown status\n",
        "1700000000 0 delivered\n",
        "17x 0 delivered bad time\n",
    };
    struct fixture *f = *state;
    struct spool_envelope env;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        make_env(&env);
        commit_message(f->sp, &env, "b\r\n");
        append_raw(f, env.id, bad[i]);
        append_raw(f, env.id, "1700000000 0 deferred fine\n");
        expect_corrupt(f, env.id);
    }
}

/* test_remove - queue/ID and log/ID are gone afterwards */
static void test_remove(void **state)
{
    struct fixture *f = *state;
    struct spool_envelope env, got;
    off_t off;
    uint64_t len;

    make_env(&env);
    commit_message(f->sp, &env, "b\r\n");
    assert_int_equal(spool_log(f->sp, env.id, 0, SPOOL_RCPT_DELIVERED, "250 ok"), 0);
    assert_true(exists(f, "log", env.id));
    assert_int_equal(spool_remove(f->sp, env.id), 0);
    assert_false(exists(f, "queue", env.id));
    assert_false(exists(f, "log", env.id));
    assert_int_equal(spool_load(f->sp, env.id, &got, &off, &len), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(spool_remove(f->sp, env.id), -1);
    assert_int_equal(errno, ENOENT);
}

struct seen_ids {
    char ids[8][SPOOL_ID_LEN + 1];
    int n;
};

/* collect - spool_list callback */
static void collect(const char *id, void *arg)
{
    struct seen_ids *s = arg;

    assert_true(s->n < 8);
    memcpy(s->ids[s->n++], id, SPOOL_ID_LEN + 1);
}

/* has_id - 1 if id was listed */
static int has_id(const struct seen_ids *s, const char *id)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->ids[i], id) == 0)
            return 1;
    return 0;
}

/* test_list - lists queued ids, removes crash leftovers, spares a live writer */
static void test_list(void **state)
{
    struct fixture *f = *state;
    struct spool_envelope env[3], live;
    struct seen_ids seen = {.n = 0};
    char stale[SPOOL_ID_LEN + 1], orphan[SPOOL_ID_LEN + 1];
    struct spool_writer *w;

    for (int i = 0; i < 3; i++) {
        make_env(&env[i]);
        commit_message(f->sp, &env[i], "b\r\n");
    }
    assert_int_equal(spool_log_deferred(f->sp, env[0].id, 0, "kept"), 0);
    spool_new_id(stale);
    write_file(path_of(f, "tmp", stale), "MXQ1 half", 9);
    spool_new_id(orphan);
    write_file(path_of(f, "log", orphan), "1 0 delivered x\n", 16);
    write_file(path_of(f, "queue", "README"), "not an id", 9);
    make_env(&live);
    w = spool_writer_begin(f->sp, &live);
    assert_non_null(w);

    assert_int_equal(spool_list(f->sp, collect, &seen), 3);
    for (int i = 0; i < 3; i++)
        assert_true(has_id(&seen, env[i].id));
    assert_false(exists(f, "tmp", stale));
    assert_false(exists(f, "log", orphan));
    assert_true(exists(f, "log", env[0].id));
    assert_true(exists(f, "tmp", live.id)); /* being written: not a leftover */
    assert_true(exists(f, "queue", "README"));

    assert_int_equal(spool_writer_commit(w), 0);
    spool_writer_free(w);
    seen.n = 0;
    assert_int_equal(spool_list(f->sp, collect, &seen), 4);
    assert_true(has_id(&seen, live.id));
}

/* test_noreplace - a second message with the same id never overwrites the first */
static void test_noreplace(void **state)
{
    struct fixture *f = *state;
    struct spool_envelope env, got;
    struct spool_writer *w1, *w2;
    off_t off;
    uint64_t len;
    char *body;

    make_env(&env);
    w1 = spool_writer_begin(f->sp, &env);
    assert_non_null(w1);
    errno = 0;
    assert_null(spool_writer_begin(f->sp, &env)); /* tmp/ID is taken */
    assert_int_equal(errno, EEXIST);
    assert_int_equal(spool_writer_write(w1, "first", 5), 0);
    assert_int_equal(spool_writer_commit(w1), 0);
    spool_writer_free(w1);

    w2 = spool_writer_begin(f->sp, &env);
    assert_non_null(w2);
    assert_int_equal(spool_writer_write(w2, "second!", 7), 0);
    errno = 0;
    assert_int_equal(spool_writer_commit(w2), -1);
    assert_int_equal(errno, EEXIST);
    assert_false(exists(f, "tmp", env.id));
    assert_int_equal(spool_writer_commit(w2), -1); /* no second try on a failed writer */
    spool_writer_free(w2);

    assert_int_equal(spool_load(f->sp, env.id, &got, &off, &len), 0);
    body = read_body(f->sp, env.id, off, len);
    assert_string_equal(body, "first");
    free(body);
    spool_envelope_free(&got);
}

/* test_reject_bad_values - CR/LF in values and unloadable envelopes are refused */
static void test_reject_bad_values(void **state)
{
    struct fixture *f = *state;
    struct spool_rcpt bad_rcpt[1] = {{.addr = "x@y.test\nrcpt evil@z.test"}};
    struct spool_rcpt empty_rcpt[1] = {{.addr = ""}};
    struct spool_envelope env;

    make_env(&env);
    env.sender = "a@b.test\r";
    errno = 0;
    assert_null(spool_writer_begin(f->sp, &env));
    assert_int_equal(errno, EINVAL);
    make_env(&env);
    env.helo = "evil\r\nrcpt x@y";
    assert_null(spool_writer_begin(f->sp, &env));
    make_env(&env);
    env.client_name = "a\nb";
    assert_null(spool_writer_begin(f->sp, &env));
    make_env(&env);
    env.dsn_envid = "a\rb";
    assert_null(spool_writer_begin(f->sp, &env));
    make_env(&env);
    env.rcpt = bad_rcpt;
    env.nrcpt = 1;
    assert_null(spool_writer_begin(f->sp, &env));
    env.rcpt = empty_rcpt;
    assert_null(spool_writer_begin(f->sp, &env));
    make_env(&env);
    env.nrcpt = 0;
    assert_null(spool_writer_begin(f->sp, &env));
    make_env(&env);
    env.dsn_ret = "SOME";
    assert_null(spool_writer_begin(f->sp, &env));
    make_env(&env);
    strcpy(env.id, "not-an-id");
    assert_null(spool_writer_begin(f->sp, &env));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(count_entries(f, "tmp"), 0);
}

/* flip_octet - change the octet at off of a file in place */
static void flip_octet(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    char c;

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &c, 1, off), 1);
    c ^= 0x20;
    assert_int_equal(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

/* offset_of - where needle first occurs in the file at path */
static off_t offset_of(const char *path, const char *needle)
{
    size_t len;
    char *raw = ts_read_file(path, &len), *at = strstr(raw, needle);
    off_t off;

    assert_non_null(at);
    off = at - raw;
    free(raw);
    return off;
}

/* fill_lines - len-1 octets of 98-octet lines ending in CRLF, NUL-terminated */
static void fill_lines(char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++)
        buf[i] = i % 100 == 98 ? '\r' : i % 100 == 99 ? '\n' : (char)('a' + i % 26);
    buf[len - 1] = '\0';
}

/* load_ok - queue/ID loads; returns the body length */
static uint64_t load_ok(struct fixture *f, const char *id)
{
    struct spool_envelope got;
    off_t off;
    uint64_t len;

    assert_int_equal(spool_load(f->sp, id, &got, &off, &len), 0);
    spool_envelope_free(&got);
    return len;
}

/* load_unverified - spool_load_open without the checksum loads queue/ID */
static void load_unverified(struct fixture *f, const char *id)
{
    struct spool_envelope got;
    off_t off;
    uint64_t len;
    int fd = -1;

    assert_int_equal(spool_load_open(f->sp, id, &got, &off, &len, &fd, 0), 0);
    assert_true(fd >= 0);
    close(fd);
    spool_envelope_free(&got);
}

/* test_checksum - octets changed after the commit (body, header, past the first read) are caught */
static void test_checksum(void **state)
{
    struct fixture *f = *state;
    static char big[200001];
    struct spool_envelope env;
    struct stat st;
    const char *path;

    make_env(&env);
    commit_message(f->sp, &env, "Subject: x\r\n\r\nhello\r\n");
    path = path_of(f, "queue", env.id);
    assert_int_equal(stat(path, &st), 0);
    flip_octet(path, st.st_size - 4); /* "hello" -> "heLlo": same length */
    load_unverified(f, env.id);       /* as for a file this process wrote: not read whole */
    expect_corrupt(f, env.id);

    make_env(&env);
    commit_message(f->sp, &env, "x\r\n");
    path = path_of(f, "queue", env.id);
    flip_octet(path, offset_of(path, "helo mail") + 5); /* a header value */
    expect_corrupt(f, env.id);

    fill_lines(big, sizeof big);
    make_env(&env);
    commit_message(f->sp, &env, big);
    assert_int_equal(load_ok(f, env.id), sizeof big - 1); /* control */
    path = path_of(f, "queue", env.id);
    assert_int_equal(stat(path, &st), 0);
    flip_octet(path, st.st_size - 1000); /* beyond the first 64 KiB */
    expect_corrupt(f, env.id);
}

/* test_recycle - a delivered message's file is written over by the next (shorter) one */
static void test_recycle(void **state)
{
    struct fixture *f = *state;
    struct spool_envelope env, got;
    char longbody[5001], id1[SPOOL_ID_LEN + 1], *body;
    struct stat st1, st2;
    off_t off;
    uint64_t len;

    assert_int_equal(spool_set_recycle(f->sp, 4), 0);
    fill_lines(longbody, sizeof longbody);
    make_env(&env);
    commit_message(f->sp, &env, longbody);
    memcpy(id1, env.id, sizeof id1);
    assert_int_equal(stat(path_of(f, "queue", id1), &st1), 0);
    assert_int_equal(spool_remove(f->sp, id1), 0);
    assert_false(exists(f, "queue", id1));
    assert_true(exists(f, "free", id1));

    make_env(&env);
    commit_message(f->sp, &env, "short\r\n");
    assert_int_equal(count_entries(f, "free"), 0);
    assert_int_equal(count_entries(f, "tmp"), 0);
    assert_int_equal(stat(path_of(f, "queue", env.id), &st2), 0);
    assert_true(st2.st_ino == st1.st_ino); /* the same file, no new inode */
    assert_int_equal(spool_load(f->sp, env.id, &got, &off, &len), 0);
    assert_int_equal(len, 7);
    assert_int_equal(st2.st_size, off + 7); /* the old tail is cut */
    body = read_body(f->sp, env.id, off, len);
    assert_string_equal(body, "short\r\n");
    assert_string_equal(got.rcpt[2].addr, "carol@other.test");
    free(body);
    spool_envelope_free(&got);
}

/* test_recycle_limits - a full list or a big file means unlink; an abandoned
 * writer gives its file back; free/ is adopted, and emptied when turned off */
static void test_recycle_limits(void **state)
{
    struct fixture *f = *state;
    static char big[300001];
    char a[SPOOL_ID_LEN + 1], b[SPOOL_ID_LEN + 1];
    struct spool_envelope env;
    struct spool_writer *w;

    assert_int_equal(spool_set_recycle(f->sp, 1), 0);
    make_env(&env);
    commit_message(f->sp, &env, "a\r\n");
    memcpy(a, env.id, sizeof a);
    make_env(&env);
    commit_message(f->sp, &env, "b\r\n");
    memcpy(b, env.id, sizeof b);
    assert_int_equal(spool_remove(f->sp, a), 0);
    assert_int_equal(spool_remove(f->sp, b), 0); /* the list is full: unlinked */
    assert_true(exists(f, "free", a));
    assert_false(exists(f, "free", b));
    assert_false(exists(f, "queue", b));

    make_env(&env);
    w = spool_writer_begin(f->sp, &env);
    assert_non_null(w);
    assert_int_equal(spool_writer_write(w, "x\r\n", 3), 0);
    spool_writer_free(w); /* abandoned: a's file goes back to the list */
    assert_int_equal(count_entries(f, "free"), 1);
    make_env(&env);
    commit_message(f->sp, &env, "c\r\n");
    assert_int_equal(count_entries(f, "free"), 0);
    assert_int_equal(load_ok(f, env.id), 3);

    assert_int_equal(spool_set_recycle(f->sp, 4), 0);
    fill_lines(big, sizeof big);
    make_env(&env);
    commit_message(f->sp, &env, big);
    assert_int_equal(spool_remove(f->sp, env.id), 0);
    assert_int_equal(count_entries(f, "free"), 0); /* over 256 KiB: not kept */

    /* a restart finds files in free/ (junk to us) and writes over them */
    write_file(path_of(f, "free", "00000000000000AA"), "left over by a crash, longer than c", 35);
    assert_int_equal(spool_set_recycle(f->sp, 4), 0);
    make_env(&env);
    commit_message(f->sp, &env, "d\r\n");
    assert_false(exists(f, "free", "00000000000000AA"));
    assert_int_equal(load_ok(f, env.id), 3);

    assert_int_equal(spool_remove(f->sp, env.id), 0);
    assert_int_equal(count_entries(f, "free"), 1);
    assert_int_equal(spool_set_recycle(f->sp, 0), 0); /* off: free/ is emptied */
    assert_int_equal(count_entries(f, "free"), 0);
}

/* test_recycle_double_name - after a crash a file can carry a name in free/ and
 * one in queue/: it is a queued message, never written over, never unlinked */
static void test_recycle_double_name(void **state)
{
    struct fixture *f = *state;
    struct spool_envelope env;
    char queued[SPOOL_ID_LEN + 1], free_name[] = "00000000000000BB";
    char free_path[256];

    make_env(&env);
    commit_message(f->sp, &env, "still queued\r\n");
    memcpy(queued, env.id, sizeof queued);
    snprintf(free_path, sizeof free_path, "%s", path_of(f, "free", free_name));
    assert_int_equal(link(path_of(f, "queue", queued), free_path), 0);
    assert_int_equal(spool_set_recycle(f->sp, 4), 0);
    make_env(&env);
    commit_message(f->sp, &env, "new\r\n");
    assert_true(exists(f, "free", free_name));
    assert_int_equal(load_ok(f, queued), 14);
    assert_int_equal(load_ok(f, env.id), 5);

    /* a second name made by hand (link count 2) is left alone too */
    assert_int_equal(unlink(path_of(f, "queue", queued)), 0);
    assert_int_equal(link(free_path, path_of(f, "tmp", "keep")), 0);
    assert_int_equal(spool_set_recycle(f->sp, 4), 0);
    make_env(&env);
    commit_message(f->sp, &env, "x\r\n");
    assert_true(exists(f, "free", free_name));
}

/* test_free_without_commit - an abandoned writer leaves nothing behind */
static void test_free_without_commit(void **state)
{
    struct fixture *f = *state;
    struct spool_envelope env;
    struct spool_writer *w;

    make_env(&env);
    w = spool_writer_begin(f->sp, &env);
    assert_non_null(w);
    assert_int_equal(spool_writer_write(w, "partial", 7), 0);
    assert_true(exists(f, "tmp", env.id));
    spool_writer_free(w);
    assert_int_equal(count_entries(f, "tmp"), 0);
    assert_int_equal(count_entries(f, "queue"), 0);
}

#define COMMIT_THREADS 16
#define COMMITS_PER_THREAD 25

struct committer {
    struct spool *sp;
    char ids[COMMITS_PER_THREAD][SPOOL_ID_LEN + 1];
    int failures;
};

/* commit_thread - commit a batch of messages whose body names their id */
static void *commit_thread(void *arg)
{
    struct committer *c = arg;
    struct spool_envelope env;

    for (int i = 0; i < COMMITS_PER_THREAD; i++) {
        struct spool_writer *w;

        make_env(&env);
        memcpy(c->ids[i], env.id, sizeof env.id);
        w = spool_writer_begin(c->sp, &env);
        if (!w || spool_writer_write(w, env.id, SPOOL_ID_LEN) < 0 || spool_writer_commit(w) < 0)
            c->failures++;
        spool_writer_free(w);
    }
    return NULL;
}

/* test_concurrent_commits - 16 threads committing at once all land, intact */
static void test_concurrent_commits(void **state)
{
    struct fixture *f = *state;
    static struct committer c[COMMIT_THREADS];
    pthread_t th[COMMIT_THREADS];

    for (int i = 0; i < COMMIT_THREADS; i++) {
        c[i] = (struct committer){.sp = f->sp};
        assert_int_equal(pthread_create(&th[i], NULL, commit_thread, &c[i]), 0);
    }
    for (int i = 0; i < COMMIT_THREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < COMMIT_THREADS; i++) {
        assert_int_equal(c[i].failures, 0);
        for (int j = 0; j < COMMITS_PER_THREAD; j++) {
            struct spool_envelope got;
            off_t off;
            uint64_t len;
            char *body;

            assert_int_equal(spool_load(f->sp, c[i].ids[j], &got, &off, &len), 0);
            body = read_body(f->sp, c[i].ids[j], off, len);
            assert_string_equal(body, c[i].ids[j]);
            free(body);
            spool_envelope_free(&got);
        }
    }
    assert_int_equal(count_entries(f, "queue"), COMMIT_THREADS * COMMITS_PER_THREAD);
    assert_int_equal(count_entries(f, "tmp"), 0);
}

/* test_open_layout - spool_open makes the directory tree (parents too) with mode 0700 */
static void test_open_layout(void **state)
{
    struct fixture *f = *state;
    static const char *const subs[] = {"tmp", "queue", "log", "corrupt", "free"};
    char path[256], err[256] = "";
    struct spool *sp;
    struct stat st;

    snprintf(path, sizeof path, "%s/deep/er/spool", f->dir);
    sp = spool_open(path, err, sizeof err);
    assert_non_null(sp);
    assert_string_equal(spool_dir(sp), path);
    for (size_t i = 0; i < 5; i++) {
        char sub[300];
        snprintf(sub, sizeof sub, "%s/%s", path, subs[i]);
        assert_int_equal(stat(sub, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 0777, 0700);
    }
    spool_close(sp);

    /* under a regular file: fails with a message */
    write_file(path_of(f, "tmp", "plainfile"), "x", 1);
    snprintf(path, sizeof path, "%s/tmp/plainfile/spool", f->dir);
    assert_null(spool_open(path, err, sizeof err));
    assert_int_equal(errno, ENOTDIR);
    assert_non_null(strstr(err, "plainfile"));
}

/* What the corrupt callback was told. */
struct corrupt_seen {
    int calls, moved;
    char id[SPOOL_ID_LEN + 1], reason[32];
};

/* on_corrupt - spool_on_corrupt callback for the tests */
static void on_corrupt(const char *id, const char *reason, int moved, void *arg)
{
    struct corrupt_seen *cs = arg;

    cs->calls++;
    cs->moved = moved;
    snprintf(cs->id, sizeof cs->id, "%s", id);
    snprintf(cs->reason, sizeof cs->reason, "%s", reason);
}

/* corrupt_commit - commit a message, then damage it with how (0: flip a body
 * octet, 1: cut the last octet, 2: a malformed log record, else none); its id in id */
static void corrupt_commit(struct fixture *f, int how, char id[SPOOL_ID_LEN + 1])
{
    struct spool_envelope env;
    struct stat st;
    const char *path;

    make_env(&env);
    commit_message(f->sp, &env, "Subject: x\r\n\r\nhello\r\n");
    assert_int_equal(spool_log_deferred(f->sp, env.id, 0, "later"), 0);
    memcpy(id, env.id, SPOOL_ID_LEN + 1);
    path = path_of(f, "queue", env.id);
    assert_int_equal(stat(path, &st), 0);
    if (how == 0)
        flip_octet(path, st.st_size - 4);
    else if (how == 1)
        assert_int_equal(truncate(path, st.st_size - 1), 0);
    else if (how == 2)
        append_raw(f, env.id, "garbage\n");
}

/* count_corrupt - spool_list_corrupt callback: count and check the entries */
static void count_corrupt(const struct spool_corrupt *c, void *arg)
{
    assert_true(spool_valid_id(c->id));
    (*(int *)arg)++;
}

/* test_corrupt_reported - the owner hears of each quarantined file and why;
 * corrupt/ID.why keeps the reason for a later listing */
static void test_corrupt_reported(void **state)
{
    static const char *const why[] = {"checksum", "length", "log"};
    struct fixture *f = *state;
    struct corrupt_seen cs = {0};
    struct spool_corrupt c;
    char id[SPOOL_ID_LEN + 1], whyname[SPOOL_ID_LEN + 5];
    time_t t0 = time(NULL);
    int n = 0;

    spool_on_corrupt(f->sp, on_corrupt, &cs);
    for (int how = 0; how < 3; how++) {
        corrupt_commit(f, how, id);
        expect_corrupt(f, id);
        assert_int_equal(cs.calls, how + 1);
        assert_string_equal(cs.id, id);
        assert_string_equal(cs.reason, why[how]);
        assert_int_equal(cs.moved, 1);
        snprintf(whyname, sizeof whyname, "%s.why", id);
        assert_true(exists(f, "corrupt", whyname));
        assert_int_equal(spool_corrupt_get(f->sp, id, &c), 0);
        assert_string_equal(c.id, id);
        assert_string_equal(c.reason, why[how]);
        assert_true(c.when >= t0 && c.when <= time(NULL));
        assert_true(c.size > 0);
        assert_true(c.has_log);
    }
    /* A file that loads is not reported. */
    corrupt_commit(f, 3, id);
    assert_int_equal(load_ok(f, id), strlen("Subject: x\r\n\r\nhello\r\n"));
    assert_int_equal(cs.calls, 3);
    assert_int_equal(spool_list_corrupt(f->sp, count_corrupt, &n), 3);
    assert_int_equal(n, 3);
}

/* test_keep_corrupt - a viewer's spool reports a bad file but leaves it in queue/ */
static void test_keep_corrupt(void **state)
{
    struct fixture *f = *state;
    struct corrupt_seen cs = {0};
    struct spool_envelope got;
    char id[SPOOL_ID_LEN + 1];
    off_t off;
    uint64_t len;
    int n = 0;

    spool_keep_corrupt(f->sp);
    spool_on_corrupt(f->sp, on_corrupt, &cs);
    corrupt_commit(f, 0, id);
    assert_int_equal(spool_load(f->sp, id, &got, &off, &len), -1);
    assert_int_equal(errno, EBADMSG);
    assert_int_equal(cs.calls, 1);
    assert_string_equal(cs.reason, "checksum");
    assert_int_equal(cs.moved, 0);
    assert_true(exists(f, "queue", id));
    assert_true(exists(f, "log", id));
    assert_int_equal(count_entries(f, "corrupt"), 0);
    assert_int_equal(spool_list_corrupt(f->sp, count_corrupt, &n), 0);
}

/* test_remove_corrupt - the operator's delete takes the file, its log and its reason */
static void test_remove_corrupt(void **state)
{
    struct fixture *f = *state;
    struct spool_corrupt c;
    char id[SPOOL_ID_LEN + 1], whyname[SPOOL_ID_LEN + 5];
    int fd;

    corrupt_commit(f, 0, id);
    expect_corrupt(f, id);
    assert_int_equal(count_entries(f, "corrupt"), 3);
    fd = spool_open_corrupt(f->sp, id);
    assert_true(fd >= 0);
    close(fd);
    /* A reason file that is not ours to trust reads as unknown: it goes to a terminal. */
    snprintf(whyname, sizeof whyname, "%s.why", id);
    write_file(path_of(f, "corrupt", whyname), "1700000000 \x1b[31mred\n", 20);
    assert_int_equal(spool_corrupt_get(f->sp, id, &c), 0);
    assert_string_equal(c.reason, "unknown");
    assert_int_equal(c.when, 0);
    assert_int_equal(spool_remove_corrupt(f->sp, id), 0);
    assert_int_equal(count_entries(f, "corrupt"), 0);
    assert_int_equal(spool_remove_corrupt(f->sp, id), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(spool_corrupt_get(f->sp, id, &c), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(spool_remove_corrupt(f->sp, "../etc/passwd"), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(spool_open_corrupt(f->sp, "../etc/passwd"), -1);
}

/* main - run the spool tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_on_disk_format, setup, teardown),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_ids_threads),
        cmocka_unit_test(test_valid_id),
        cmocka_unit_test_setup_teardown(test_torn_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_splice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noreplace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_bad_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_without_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checksum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recycle_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recycle_double_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_corrupt, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
