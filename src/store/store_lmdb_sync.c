/* store_lmdb_sync.c - the forced syncs of an LMDB environment, off the event loop */
#include "store/store_lmdb_sync.h"

#include <pthread.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/xmalloc.h"

struct lmdb_syncer {
    MDB_env *env;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int want; /* a sync was asked for since the last one started */
    int stop;
};

/* syncer_main - sync whenever asked, until told to stop */
static void *syncer_main(void *arg)
{
    struct lmdb_syncer *y = arg;
    int rc;

    pthread_mutex_lock(&y->lock);
    for (;;) {
        while (!y->want && !y->stop)
            pthread_cond_wait(&y->wake, &y->lock);
        if (!y->want)
            break;
        y->want = 0;
        pthread_mutex_unlock(&y->lock);
        if ((rc = mdb_env_sync(y->env, 1)) != 0) {
            metrics_inc(METRICS_STORE_ERRORS);
            log_warn("event=store_error op=sync error=%s", log_q(mdb_strerror(rc)));
        }
        pthread_mutex_lock(&y->lock);
    }
    pthread_mutex_unlock(&y->lock);
    return NULL;
}

struct lmdb_syncer *lmdb_syncer_start(MDB_env *env)
{
    struct lmdb_syncer *y = xcalloc(1, sizeof(*y));

    y->env = env;
    pthread_mutex_init(&y->lock, NULL);
    pthread_cond_init(&y->wake, NULL);
    if (pthread_create(&y->thread, NULL, syncer_main, y) != 0) {
        pthread_cond_destroy(&y->wake);
        pthread_mutex_destroy(&y->lock);
        free(y);
        return NULL;
    }
    return y;
}

void lmdb_syncer_kick(struct lmdb_syncer *y)
{
    pthread_mutex_lock(&y->lock);
    y->want = 1;
    pthread_cond_signal(&y->wake);
    pthread_mutex_unlock(&y->lock);
}

void lmdb_syncer_stop(struct lmdb_syncer *y)
{
    if (!y)
        return;
    pthread_mutex_lock(&y->lock);
    y->stop = 1;
    pthread_cond_signal(&y->wake);
    pthread_mutex_unlock(&y->lock);
    pthread_join(y->thread, NULL);
    pthread_cond_destroy(&y->wake);
    pthread_mutex_destroy(&y->lock);
    free(y);
}
