/*
 * store_lmdb_sync.h - the LMDB backend's periodic flush, on a thread of its own.
 *
 * The environment runs with MDB_NOSYNC and is forced to disk every few
 * seconds. That fdatasync waits for the disk, for as long as the disk is
 * busy with other work (the spool's own syncs, other programs): tens or
 * hundreds of milliseconds during which the event loop, had it called it,
 * would serve no client. mdb_env_sync only syncs the file descriptor, which
 * is safe beside transactions of other threads, so a helper thread does it.
 */
#ifndef MX_STORE_LMDB_SYNC_H
#define MX_STORE_LMDB_SYNC_H

#include <lmdb.h>

struct lmdb_syncer;

/* lmdb_syncer_start - a thread that syncs env when kicked; NULL if it cannot start */
struct lmdb_syncer *lmdb_syncer_start(MDB_env *env);

/* lmdb_syncer_kick - ask for a sync soon (returns at once; kicks during a sync merge) */
void lmdb_syncer_kick(struct lmdb_syncer *y);

/* lmdb_syncer_stop - finish a sync under way, end the thread, free; NULL is a no-op */
void lmdb_syncer_stop(struct lmdb_syncer *y);

#endif
