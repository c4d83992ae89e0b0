/*
 * spool_internal.h - what the spool's files share and nobody else sees: the
 * structures behind struct spool and struct spool_writer, the on-disk format
 * constants and the helpers used by more than one of them.
 *   spool.c          directory set-up, queue ids, I/O helpers
 *   spool_recycle.c  the free list: delivered files kept for new messages
 *   spool_writer.c   writing a message to tmp/ (or over a free/ file)
 *   spool_commit.c   group commit: one directory sync for many writers
 *   spool_load.c     the queue file format: checking and parsing it
 *   spool_corrupt.c  files that fail to load: moved to corrupt/, reported, listed
 *   spool_log.c      the per-recipient delivery log, and dequeueing
 *   spool_list.c     walking the directories, sweeps, listing
 *   quarantine.c     messages kept in quarantine/ until released or deleted
 */
#ifndef MX_QUEUE_SPOOL_INTERNAL_H
#define MX_QUEUE_SPOOL_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "queue/spool.h"

#define SPOOL_BUF_SIZE 65536           /* writer buffer */
#define SPOOL_HDR_MAX (4u << 20)       /* largest envelope header we write or read */
#define SPOOL_BODY_MAX 999999999999ULL /* what 12 decimal digits can say */
#define SPOOL_MAGIC "MXQ3 "    /* CRC-32 of everything after the first line, prepend length */
#define SPOOL_MAGIC_V2 "MXQ2 " /* without the prepend length: still read */
#define SPOOL_MAGIC_V1 "MXQ1 " /* without a checksum either: still read */
#define SPOOL_MAGIC_LEN 5
#define SPOOL_LEN_DIGITS 12
#define SPOOL_CRC_DIGITS 8
#define SPOOL_PREPEND_DIGITS 5
#define SPOOL_FIRST_LINE_V1 (SPOOL_MAGIC_LEN + SPOOL_LEN_DIGITS + 1)
#define SPOOL_FIRST_LINE_V2 (SPOOL_MAGIC_LEN + SPOOL_LEN_DIGITS + 1 + SPOOL_CRC_DIGITS + 1)
#define SPOOL_FIRST_LINE (SPOOL_FIRST_LINE_V2 + SPOOL_PREPEND_DIGITS + 1)
#define SPOOL_TEXT_MAX 400    /* octets of log text kept */
#define SPOOL_LOG_REC_MAX 512 /* longest log record we write (about 445) rounded up */
#define SPOOL_LOG_READ 8192

#define SPOOL_RECYCLE_SIZE_MAX (256 * 1024) /* larger files are unlinked, not kept */

enum spool_sub { SUB_TMP, SUB_QUEUE, SUB_LOG, SUB_CORRUPT, SUB_FREE, SUB_QUARANTINE, SUB_COUNT };

/* Files of delivered messages kept in free/ to be written over by new ones. */
struct spool_free {
    pthread_mutex_t mu;
    char (*name)[SPOOL_ID_LEN + 1];
    off_t *size;
    size_t n, max; /* max 0: recycling off (every file created and unlinked) */
};

struct spool {
    char *dir;
    int dirfd;
    int fds[SUB_COUNT];
    /* Group commit of the queue/ directory fsync: every rename (or unlink)
     * takes a generation number; one fsync started after generation g was
     * taken makes every generation <= g durable. */
    pthread_mutex_t gc_mu;
    pthread_cond_t gc_cv;
    uint64_t renamed_gen; /* last generation handed out */
    uint64_t synced_gen;  /* every generation <= this is durable */
    int syncing;          /* an fsync of queue/ is in flight */
    int sync_fs;          /* group commit by syncfs(2) instead of fsync per file */
    int sync_err;         /* sticky: after a failed directory fsync nothing is trusted */
    struct spool_free fr;
    spool_corrupt_fn corrupt_fn; /* told of every file that fails to load */
    void *corrupt_arg;
    int keep_corrupt; /* leave such files in queue/ (a viewer) */
};

struct spool_writer {
    struct spool *sp;
    char id[SPOOL_ID_LEN + 1];
    int fd;
    int tmp_exists;         /* the file we write is ours to remove (or give back) */
    enum spool_sub tmp_sub; /* SUB_TMP (created) or SUB_FREE (recycled) */
    char tmp_name[SPOOL_ID_LEN + 1];
    off_t old_size; /* a recycled file's size before we wrote over it */
    int failed;     /* errno of the first failure, sticky */
    int committed;
    char *quarantine; /* commit into quarantine/ with this reason (quarantine.h), or NULL */
    uint64_t body_len;
    size_t prepend_len; /* octets after the body that go on top of it (spool_writer_prepend) */
    size_t hdr_len;
    unsigned long crc; /* zlib crc32 of what follows the first line */
    size_t crc_skip;   /* octets of the first line not yet put */
    size_t buflen;
    char buf[SPOOL_BUF_SIZE];
};

/* Keys of the envelope header, in the order they are written. */
enum spool_key {
    K_ID,
    K_ARRIVAL,
    K_CLIENT_IP,
    K_CLIENT_NAME,
    K_HELO,
    K_SENDER,
    K_BODY,
    K_SMTPUTF8,
    K_IS_BOUNCE,
    K_DSN_RET,
    K_DSN_ENVID,
    K_RCPT,
    K_COUNT
};
/* spool_keyname - the keys as written, indexed by enum spool_key (spool_load.c) */
extern const char *const spool_keyname[K_COUNT];
/* Keys every file we write carries; dsn-ret and dsn-envid are optional. */
#define SPOOL_REQUIRED_KEYS (((1u << K_COUNT) - 1) & ~(1u << K_DSN_RET) & ~(1u << K_DSN_ENVID))

typedef int (*spool_entry_fn)(struct spool *sp, const char *name, void *ctx);

/* spool_bad_msg - fail with EBADMSG (an inconsistent file) */
int spool_bad_msg(void);
/* spool_write_all - write len octets, retrying short writes and EINTR. 0 or -1 */
int spool_write_all(int fd, const void *data, size_t len);
/* spool_pread_full - read up to len octets at off; the count (short only at EOF) or -1 */
ssize_t spool_pread_full(int fd, void *data, size_t len, off_t off);

/* spool_free_push - remember free/NAME of size; 0, or -1 when the list is full */
int spool_free_push(struct spool *sp, const char *name, off_t size);
/* spool_free_pop - take a free/ file's name and size; 0, or -1 when there is none */
int spool_free_pop(struct spool *sp, char name[SPOOL_ID_LEN + 1], off_t *size);
/* spool_recycle - dequeue queue/ID by moving it to free/; 0, or -1 (then unlink it) */
int spool_recycle(struct spool *sp, const char *id);

/* spool_writer_prepare - everything of a commit but the sync: length,
 * checksum, fsync (per-file mode), rename into queue/, close. 0 or -1 */
int spool_writer_prepare(struct spool_writer *w);

/* spool_writer_dest - the directory a commit renames into: queue/, or quarantine/ */
int spool_writer_dest(const struct spool_writer *w);
/* quarantine_note - before the rename: quarantine/ID.why with w's reason; 0 or -1 */
int quarantine_note(struct spool_writer *w);
/* spool_load_fd - check and parse an open queue file (spool_load_open's first half:
 * no log, nothing moved); on EBADMSG *why names the check that failed */
int spool_load_fd(int fd, const char *id, struct spool_envelope *env, off_t *body_off,
                  uint64_t *body_len, int verify, const char **why);

/* spool_corrupt_found - queue/ID failed its checks (why): quarantine it unless
 * keep_corrupt, then tell the owner */
void spool_corrupt_found(struct spool *sp, const char *id, const char *why);
/* spool_corrupt_move - only the quarantine of spool_corrupt_found; 1 if queue/ID moved */
int spool_corrupt_move(struct spool *sp, const char *id, const char *why);

/* spool_dir_walk - call cb for every queue-id-shaped name in subdirectory sub */
int spool_dir_walk(struct spool *sp, enum spool_sub sub, spool_entry_fn cb, void *ctx);

#endif
