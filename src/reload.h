/*
 * reload.h - SIGHUP (and mxgatectl reload): the whole configuration read
 * again, checked as the start checks it, and put in place for new sessions,
 * or refused as a whole.
 */
#ifndef MX_RELOAD_H
#define MX_RELOAD_H

#include <stddef.h>

struct server;
struct store;

struct reload_ctx {
    struct server *srv;    /* its current generation is replaced */
    struct store *store;   /* the checks' state store (its uri needs a restart) */
    const char *path;      /* the configuration file, as given at start */
    int debug;             /* -d: debug lines whatever log_level says */
    unsigned long reloads; /* how many were put in place */
};

/*
 * reload_init - after start-up: the queue's attempts hold the first
 * generation as later ones hold theirs (call once, before the loop runs)
 */
void reload_init(struct reload_ctx *rc);

/*
 * reload_all - read rc->path again and validate it as `mxgated -n` does; build
 * a new generation (settings, routes, TLS context, resolver, checks with their
 * files) and bind the listeners it adds or moves. On any error nothing
 * changes: the error is logged (event=reload status=refused) and -1 is
 * returned. On success new sessions and delivery attempts use the new
 * generation and 0 is returned; sessions under way finish on theirs.
 * Settings that need a restart (user, spool_dir, state_dir, pidfile, store.uri,
 * limits.ipv6_prefix, queue fsync_threads, sync, recycle and the bounce limits) keep their running
 * value, each with a warning. msg (may be NULL) gets a one-line outcome for mxgatectl. arg is a
 * struct reload_ctx.
 */
int reload_all(void *arg, char *msg, size_t msglen);

#endif
