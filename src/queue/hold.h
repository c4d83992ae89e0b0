/*
 * hold.h - messages held by the operator: not delivered until released.
 * A hold is the empty file hold/ID under the spool directory, so that it
 * outlives a restart and mxgatectl sees it without the daemon. The queue
 * (queue.c) honours it; a marker without its message means nothing (ids
 * never repeat) and is removed with the message.
 */
#ifndef MX_QUEUE_HOLD_H
#define MX_QUEUE_HOLD_H

struct spool;

/* hold_set - make the hold durable (file and directory synced). 0 or -1 with errno */
int hold_set(struct spool *sp, const char *id);
/* hold_clear - remove the hold; 0 (also when there was none) or -1 */
int hold_clear(struct spool *sp, const char *id);
/* hold_is - 1 if id is held, else 0 */
int hold_is(struct spool *sp, const char *id);

#endif
