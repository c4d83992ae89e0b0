/* delivery_internal.h - one attempt's state, shared by delivery.c and delivery_mx.c */
#ifndef MX_QUEUE_DELIVERY_INTERNAL_H
#define MX_QUEUE_DELIVERY_INTERNAL_H

#include <stddef.h>
#include <sys/types.h>

#include "queue/delivery.h"
#include "relay/dest.h"
#include "relay/resolve.h"

struct smtp_client;
struct smtp_client_result;
struct mx_lookup;
struct mx_result;
struct event;

enum dl_result { DL_PENDING, DL_OK, DL_DEFER, DL_BOUNCE };

/* One pending recipient in this attempt. */
struct dl_rcpt {
    size_t idx; /* into env.rcpt */
    enum dl_result res;
    int code;
    char text[512];
    char relay[320];
    int maybe;              /* the reply to the final dot was lost: it may have arrived */
    double t_ready, t_done; /* ready to send (MAIL FROM), outcome known: delay= */
};

/* The recipients that share a route, handed over together. */
struct dl_leg {
    struct delivery *d;
    const struct routes_entry *route;
    struct dl_rcpt **rcpt;
    const char **addrs;
    size_t n;
    struct smtp_client *client;
    struct relay_resolve *resolving;
    struct relay_addr ra;
    /* route "mx": the domain of the leg's recipients, its servers in order, the one tried */
    const char *domain;
    struct mx_lookup *mxq;
    struct mx_result *mx;
    size_t mx_at;
    struct dest *dest; /* its flow control (relay/dest.h); counted while dest_on */
    int dest_on;
    int dest_charged;    /* its start counted in the destination's rate */
    struct event *gate;  /* waiting for the destination (or an MX host) to take one more */
    struct mxhost *host; /* the MX host tried (relay/mxhost.h); counted while host_on */
    int host_on;
    int host_wait;   /* waiting for an MX host: counted in dest->host_waiting */
    int attempted;   /* a connection was started (or taken from the cache) */
    int give_back;   /* its gate ends the attempt unstarted (delivery_mxhost.c) */
    int reached;     /* a server of the leg answered (a greeting) */
    int unreachable; /* none did: every connection failed before a greeting */
};

struct delivery {
    struct delivery_ctx ctx;
    char id[SPOOL_ID_LEN + 1];
    double t_arrived, t_queued, t_started; /* delay=: see delivery_set_times */
    struct spool_envelope env;
    off_t body_off;
    uint64_t body_len;
    int body_fd;
    struct dl_rcpt *r;
    size_t nr;
    struct dl_leg *legs;
    size_t nlegs;
    unsigned pending;   /* legs not finished */
    unsigned pool_jobs; /* jobs in the pool that point at us */
    int cancelled;
    int starting;                      /* inside dl_begin: finishing must not be synchronous */
    int verify;                        /* the load checks the checksum */
    int load_rc, load_err, load_moved; /* the pool's load: spool_load_quiet */
    const char *load_why;
    delivery_done_fn done;
    void *arg;
    /* decided in delivery_finish, carried out in the pool */
    int make_dsn;
    const char *dsn_note; /* none, suppressed or failed, when no DSN id */
    int dsn_ok;
    int remove_ok;
    struct delivery_outcome out;
    struct dest *primary; /* the first leg's destination (out.dest), or NULL */
};

/* delivery.c */
void dl_leg_fail(struct dl_leg *leg, int code, const char *text);
void dl_client_start(struct dl_leg *leg);
void dl_relay(const struct dl_leg *leg, char *dst, size_t dstlen);
/* dl_not_started - the attempt ends before it began (err: see delivery_outcome); d is
 * freed */
void dl_not_started(struct delivery *d, int err);

/* delivery_mx.c */
struct dest *dl_primary_dest(struct delivery *d);
void dl_dest_end(struct dl_leg *leg, enum dest_outcome o);
int dl_mx_next(struct dl_leg *leg, const struct smtp_client_result *res);
void dl_start_mx(struct dl_leg *leg);
struct smtp_client_req;
void dl_tls_policy(const struct dl_leg *leg, struct smtp_client_req *req);
int dl_gate(struct dl_leg *leg, double wait);

/* delivery_mxhost.c */
enum dl_host_pick { DL_HOST_GO, DL_HOST_WAIT, DL_HOST_NONE };
/* dl_host_pick - the address at mx_at (reordered within its preference) whose host takes
 * one more connection: DL_HOST_GO (counted on leg->host); DL_HOST_WAIT: the leg waits on
 * its gate (or has failed); DL_HOST_NONE: no address but ourselves is left */
enum dl_host_pick dl_host_pick(struct dl_leg *leg);
void dl_host_end(struct dl_leg *leg, enum dest_outcome o);
void dl_host_release(struct dl_leg *leg);

#endif
