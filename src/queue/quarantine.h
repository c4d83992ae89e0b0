/*
 * quarantine.h - messages a check kept back: accepted (250, durable like
 * every accepted message) but never delivered until an operator releases
 * them. They live beside the queue:
 *
 *   quarantine/ID      the queue file, exactly as queue/ID would be
 *   quarantine/ID.why  "<unix-time> <reason>\n": when and why it was kept
 *
 * The commit renames tmp/ID straight into quarantine/ (never through
 * queue/, so a crash cannot deliver it); a release renames quarantine/ID
 * into queue/ with RENAME_NOREPLACE and syncs queue/ before the daemon
 * queues it, so it is delivered exactly once however often it is released.
 * Every change is a rename or an unlink: a crash leaves the message either
 * kept or released, never both, and at worst an orphaned ID.why (removed by
 * the next expiry or delete).
 */
#ifndef MX_QUEUE_QUARANTINE_H
#define MX_QUEUE_QUARANTINE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "queue/spool.h"

#define QUARANTINE_WHY_MAX 256

struct quarantine_msg {
    struct spool_envelope env;
    uint64_t size;                /* body octets */
    time_t when;                  /* when it was kept (0: unknown) */
    char why[QUARANTINE_WHY_MAX]; /* printable; "unknown" when ID.why is missing */
};

/* spool_writer_quarantine - commit w into quarantine/ with why (printable text)
 * instead of queue/. Call before the commit. 0 */
int spool_writer_quarantine(struct spool_writer *w, const char *why);

/* quarantine_list - fn for every kept message (unparsable ones are skipped); the count or -1 */
int quarantine_list(struct spool *sp, void (*fn)(const struct quarantine_msg *m, void *arg),
                    void *arg);
/* quarantine_get - one message; 0, or -1 (ENOENT, EINVAL for a bad id, EBADMSG) */
int quarantine_get(struct spool *sp, const char *id, struct quarantine_msg *m);
void quarantine_msg_free(struct quarantine_msg *m);
/* quarantine_open - quarantine/ID for reading (the text is at env's body offset); fd or -1 */
int quarantine_open(struct spool *sp, const char *id, off_t *body_off, uint64_t *body_len);
/* quarantine_release - BLOCKING: move ID into queue/ (durable) for the caller to
 * queue; 0, or -1 (ENOENT: not kept, EEXIST: already queued) */
int quarantine_release(struct spool *sp, const char *id);
/* quarantine_delete - remove ID and its reason; 0, or -1 (ENOENT) */
int quarantine_delete(struct spool *sp, const char *id);
/* quarantine_expire - delete what was kept before now - max_age; the count or -1 */
int quarantine_expire(struct spool *sp, time_t max_age, time_t now);

/* Expiry (quarantine_expire.c): the section quarantine { max_age } and an hourly
 * sweep in the pool, started by the daemon; NULL when max_age is 0. Free it after
 * the pool (whose pending sweep calls back). */
struct event_base;
struct pool;
struct config;
struct quarantine_expiry;
extern const struct config_section quarantine_section;
struct quarantine_expiry *quarantine_expiry_start(struct event_base *base, struct pool *pool,
                                                  struct spool *sp, const struct config *cfg);
void quarantine_expiry_free(struct quarantine_expiry *qx);

#endif
