/* pool.h - a few worker threads for blocking work (fsync, file I/O) */
#ifndef MX_POOL_H
#define MX_POOL_H

struct event_base;
struct pool;

/* pool_work_fn - runs on a worker thread; must not touch the event loop */
typedef void (*pool_work_fn)(void *arg);
/* pool_done_fn - runs afterwards on the loop thread, in submission-independent order */
typedef void (*pool_done_fn)(void *arg);

/* pool_new - start nthreads workers whose completions are delivered on base */
struct pool *pool_new(struct event_base *base, int nthreads);

/* pool_submit - queue work; done (may be NULL) is called on the loop when it finished */
void pool_submit(struct pool *p, pool_work_fn work, pool_done_fn done, void *arg);

/* pool_pending - jobs submitted whose done callback has not run yet */
unsigned pool_pending(const struct pool *p);

/* pool_free - finish every queued job (running done callbacks), then stop the workers */
void pool_free(struct pool *p);

#endif
