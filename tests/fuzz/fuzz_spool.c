/*
 * fuzz_spool.c - libFuzzer harness for the queue file loader: the input is
 * written as spool/queue/<ID> (on /dev/shm, where syncs cost nothing) and
 * loaded with spool_load. An input whose first line has the MXQ3 or MXQ2
 * shape gets its checksum fixed first, so that the envelope parser behind the check is
 * reached (the mismatch path has its unit test). Properties:
 *   - a refused file is gone from queue/ and kept in corrupt/ (EBADMSG);
 *   - an accepted one has the file's id, at least one recipient, values
 *     without CR or LF, and body_off + body_len + prepend_len equal to the
 *     file size;
 *   - it can be written again by spool_writer_* and loads back the same
 *     (envelope, body and prepend octets): what the loader accepts, the
 *     writer can say.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "fuzz.h"
#include "queue/spool.h"

#define ID "0123456789ABCDEF"
#define V2_FIRST 27 /* "MXQ2 " 12 digits, space, 8 hex digits, LF */
#define V3_FIRST 33 /* "MXQ3 " 12 digits, space, 8 hex digits, space, 5 digits, LF */

static char dir[64];
static struct spool *sp;

/* rm_entry - nftw callback */
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* cleanup - at exit: the whole tree */
static void cleanup(void)
{
    spool_close(sp);
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];

    (void)argc;
    (void)argv;
    snprintf(dir, sizeof dir, "/dev/shm/fuzz_spool.XXXXXX");
    if (!mkdtemp(dir))
        abort();
    sp = spool_open(dir, err, sizeof err);
    if (!sp) {
        fprintf(stderr, "fuzz_spool: %s\n", err);
        abort();
    }
    spool_set_sync(sp, SPOOL_SYNC_FILESYSTEM);
    atexit(cleanup);
    return 0;
}

/* path_in - "<dir>/<sub>/<name>" */
static const char *path_in(const char *sub, const char *name)
{
    static char buf[160];

    snprintf(buf, sizeof buf, "%s/%s/%s", dir, sub, name);
    return buf;
}

/* first_line - the length of an MXQ3 or MXQ2 first line at data, 0 if it is neither */
static size_t first_line(const uint8_t *data, size_t size)
{
    if (size >= V3_FIRST && memcmp(data, "MXQ3 ", 5) == 0 && data[17] == ' ' && data[26] == ' ' &&
        data[V3_FIRST - 1] == '\n')
        return V3_FIRST;
    if (size >= V2_FIRST && memcmp(data, "MXQ2 ", 5) == 0 && data[17] == ' ' &&
        data[V2_FIRST - 1] == '\n')
        return V2_FIRST;
    return 0;
}

/* put_file - the input as queue/ID, its checksum made right */
static void put_file(const uint8_t *data, size_t size)
{
    int fd = open(path_in("queue", ID), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t first = first_line(data, size);
    char crc[9];

    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
        abort();
    if (first) {
        snprintf(crc, sizeof crc, "%08lx",
                 crc32(0, data + first, (unsigned)(size - first)) & 0xffffffffUL);
        if (pwrite(fd, crc, 8, 18) != 8)
            abort();
    }
    close(fd);
}

/* clean - values never hold CR or LF */
static int clean(const char *s)
{
    return !s || !strpbrk(s, "\r\n");
}

/* check_env - the promises of an accepted envelope */
static void check_env(const struct spool_envelope *env, off_t off, uint64_t len, const char *path)
{
    struct stat st;

    FUZZ_ASSERT(strcmp(env->id, ID) == 0);
    FUZZ_ASSERT(env->nrcpt >= 1);
    FUZZ_ASSERT(stat(path, &st) == 0 &&
                (uint64_t)st.st_size == (uint64_t)off + len + env->prepend_len);
    FUZZ_ASSERT(env->prepend_len == 0 || env->prepend != NULL);
    FUZZ_ASSERT(clean(env->client_ip) && clean(env->client_name) && clean(env->helo) &&
                clean(env->sender) && clean(env->dsn_envid));
    for (size_t i = 0; i < env->nrcpt; i++)
        FUZZ_ASSERT(env->rcpt[i].addr && *env->rcpt[i].addr && clean(env->rcpt[i].addr));
}

/* same_str - equal, with NULL and "" alike where the writer makes them so */
static int same_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* rewrite - write env and the body again under a new id and load that back */
static void rewrite(const struct spool_envelope *env, const uint8_t *body, uint64_t len)
{
    struct spool_envelope copy = *env, back;
    struct spool_writer *w;
    off_t off;
    uint64_t blen;

    spool_new_id(copy.id);
    w = spool_writer_begin(sp, &copy);
    FUZZ_ASSERT(w != NULL);
    FUZZ_ASSERT(spool_writer_write(w, body, len) == 0);
    FUZZ_ASSERT(spool_writer_prepend(w, env->prepend, env->prepend_len) == 0);
    FUZZ_ASSERT(spool_writer_commit(w) == 0);
    spool_writer_free(w);
    FUZZ_ASSERT(spool_load(sp, copy.id, &back, &off, &blen) == 0);
    FUZZ_ASSERT(blen == len && back.nrcpt == env->nrcpt && back.arrival == env->arrival);
    FUZZ_ASSERT(same_str(back.sender, env->sender) && same_str(back.helo, env->helo) &&
                same_str(back.client_ip, env->client_ip) &&
                same_str(back.client_name, env->client_name) &&
                same_str(back.dsn_ret, env->dsn_ret) && same_str(back.dsn_envid, env->dsn_envid));
    FUZZ_ASSERT(back.body_8bit == env->body_8bit && back.smtputf8 == env->smtputf8 &&
                back.is_bounce == env->is_bounce);
    for (size_t i = 0; i < env->nrcpt; i++)
        FUZZ_ASSERT(strcmp(back.rcpt[i].addr, env->rcpt[i].addr) == 0);
    FUZZ_ASSERT(
        back.prepend_len == env->prepend_len &&
        (env->prepend_len == 0 || memcmp(back.prepend, env->prepend, env->prepend_len) == 0));
    spool_envelope_free(&back);
    FUZZ_ASSERT(spool_remove(sp, copy.id) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct spool_envelope env;
    off_t off;
    uint64_t len;
    int rc;

    put_file(data, size);
    unlink(path_in("log", ID));
    rc = spool_load(sp, ID, &env, &off, &len);
    if (rc < 0) {
        /* only a damaged file is refused here, and it is moved aside */
        FUZZ_ASSERT(errno == EBADMSG);
        FUZZ_ASSERT(access(path_in("queue", ID), F_OK) != 0);
        FUZZ_ASSERT(access(path_in("corrupt", ID), F_OK) == 0);
        unlink(path_in("corrupt", ID));
        return 0;
    }
    check_env(&env, off, len, path_in("queue", ID));
    /* the records of a log were not there: every recipient is pending */
    for (size_t i = 0; i < env.nrcpt; i++)
        FUZZ_ASSERT(env.rcpt[i].state == SPOOL_RCPT_PENDING && env.rcpt[i].attempts == 0);
    rewrite(&env, data + off, len);
    spool_envelope_free(&env);
    unlink(path_in("queue", ID));
    return 0;
}
