/* session_internal.h - the session struct, shared by session*.c only */
#ifndef MX_SMTP_SESSION_INTERNAL_H
#define MX_SMTP_SESSION_INTERNAL_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/bufferevent.h>

#include "mail/eightbit.h"
#include "policy/policy.h"
#include "queue/spool.h"
#include "smtp/parse.h"
#include "smtp/session_auth.h"
#include "smtp/session.h"

typedef struct ssl_st SSL;

enum session_state {
    SESS_GREETING,      /* greeting delay running: any input is early talk */
    SESS_COMMAND,       /* reading command lines */
    SESS_POLICY,        /* checks of a command run; input waits */
    SESS_DATA,          /* reading message text */
    SESS_COMMIT,        /* the spool commit runs in the pool; input waits */
    SESS_TLS_SWITCH,    /* "220 Ready to start TLS" being flushed */
    SESS_TLS_HANDSHAKE, /* TLS handshake under way */
    SESS_CLOSING,       /* the last reply is being flushed */
};

struct session;
struct dkim_body;

/* session_set_state - the one place the state changes; logs the change at debug level */
void session_set_state(struct session *s, enum session_state st);

enum data_error { DATA_OK, DATA_BARE, DATA_LONG, DATA_TOO_BIG, DATA_IO };

/* One mail transaction: created by MAIL, ended by the final dot or RSET. */
struct smtp_tx {
    char *sender; /* "" for <> */
    int body_8bit;
    int smtputf8;
    char *dsn_ret;
    char *dsn_envid;
    char **rcpt;
    char **rcpt_key; /* each recipient's canonical form (mail/address.h): duplicates are one */
    char *headers;   /* fields the MAIL checks add on top of the message (Received-SPF) */
    size_t nrcpt;
    size_t rcpt_cap;
    char id[SPOOL_ID_LEN + 1];
    double started; /* MAIL: clock_now_precise(), for delay= */
    struct spool_writer *writer;
    enum data_error derr;
    int prev_crlf;   /* the previous text line ended with CRLF: "." may end DATA */
    int discard;     /* dropping the rest of an over-long text line */
    char last_octet; /* last octet dropped while discarding */
    uint64_t size;
    uint64_t mail_size;        /* MAIL SIZE=, 0 when not given */
    struct eightbit_scan scan; /* non-ASCII in the header or body so far */
    /* the message as the checks see it (session_message.c) */
    struct policy_msg *msg; /* the checks' per-message data, NULL when none reads the text */
    int in_header;          /* the empty line that ends the header section is still to come */
    char *hdr;              /* the header section, unstuffed, up to POLICY_HEADER_MAX */
    size_t hdr_len, hdr_cap;
    int hdr_truncated;
    enum { FIELD_NONE, FIELD_HOLD, FIELD_PASS, FIELD_DROP } field; /* the current header field */
    char *held;                                                    /* FIELD_HOLD: its lines */
    size_t held_len, held_cap;
    struct dkim_body *sign_body; /* session_sign.c: the body hash, when the message is signed */
    /* where the stored header section starts and the body starts (after the empty
     * line; 0: none came) in the queue file's body, for session_edit.c */
    uint64_t hdr_off, body_off;
};

struct session_commit;

/* A point in the score's history to go back to (session_cmd.c). */
struct session_score {
    int saved;
    int score;
    size_t tests_len; /* of cl.score_tests */
};

struct session {
    LIST_ENTRY(session) entry;
    struct server *srv;
    struct server_gen *gen;     /* the configuration the session started with (a reference) */
    session_release_fn release; /* gives back the server's per-address slot */
    void *release_arg;
    const struct serverconf_listen *listen;
    struct bufferevent *bev;
    evutil_socket_t fd;
    int fd_in_bev; /* the TLS bufferevent owns (and closes) fd */
    LIST_ENTRY(session) flush_entry;
    int flush_queued; /* on srv->flushq */
    struct sockaddr_storage peer;
    char ip[64];
    char sid[24];
    enum session_state state;
    int esmtp;
    char *helo;
    int tls;
    char *tls_desc; /* after the handshake: protocol and cipher (malloc'd) */
    unsigned nerrors;
    unsigned ncommands;
    unsigned nmessages;
    int cmd_discard; /* dropping the rest of an over-long command line */
    int peer_eof;    /* the client sent EOF: answer what it sent, then close */
    int out_paused;  /* replies pile up unread: input waits until they drain */
    struct smtp_tx *tx;
    const char *cur_rcpt; /* the RCPT path being judged, for reject log lines */
    struct event *greet_timer;
    struct event *deadline; /* per line: partial input does not extend it (slowloris) */
    struct event *lifetime; /* the whole session's limit (timeouts.session) */
    unsigned line_timeout;  /* seconds the current line may take */
    unsigned greet_wait;    /* SESSION_WAIT_* still holding the greeting back */
    int greeted;
    struct session_commit *commit;
    const char *close_reason;
    /* policy */
    const struct policy_chain *chain;
    struct policy_client cl;
    struct policy_run *prun;
    struct dns_query *rdns_q;
    struct mx_lookup *mxq; /* RCPT for a route "mx": its domain's MX (session_mx.c) */
    char *mx_rcpt;
    void (*mx_next)(struct session *s, const char *rcpt);
    char *rdns_name;
    char *ptr_name;
    struct policy_verdict *held; /* a connect/HELO refusal, given at RCPT; malloc'd, NULL: none */
    char *pending_rcpt;          /* RCPT being judged */
    void (*policy_next)(struct session *s, const struct policy_verdict *v);
    /* the score after the connect stage (where a HELO starts) and after HELO
     * (where each transaction starts) */
    struct session_score score_conn, score_tx;
    const char *refused_by; /* mechanism of the last refusal, for statistics */
    /* SMTP AUTH (session_auth.c) */
    char *login; /* the authenticated identity (cl.login), NULL before AUTH */
    enum session_auth_step auth_step;
    const char *auth_mech;     /* "PLAIN" or "LOGIN" */
    char *auth_user;           /* the login being checked: AUTH_FIELD octets, from AUTH on */
    struct auth_job *auth_job; /* the password check under way */
    struct guard_job *guard;   /* the failure counters being read or counted */
    struct event *tarpit;      /* a failure's reply held back */
    char *auth_pass;           /* only between the lock-out check and auth_verify; ditto */
    int auth_inline;           /* auth_check still on the stack: no session_process */
    /* for the session duration metric (0: never started) */
    struct timespec started;
};

#define SESSION_TLS_DESC 128   /* octets of tls_desc */
#define SESSION_AUTH_FIELD 256 /* octets of auth_user and auth_pass each */

#define SESSION_WAIT_DELAY 1u  /* greeting_delay running */
#define SESSION_WAIT_CHECKS 2u /* FCrDNS and connect checks running */

/* DKIM signing of our own clients' mail (session_sign.c): begin at DATA, each
 * stored body line (unstuffed), then the DKIM-Signature fields (malloc'd, NULL
 * when the message is not signed) at the final dot; free with the transaction */
void session_sign_begin(struct session *s);
void session_sign_body(struct session *s, const char *line, size_t len);
char *session_sign_fields(struct session *s);
void session_sign_free(struct session *s);
/* session_unstuffed - text as the queue file keeps it (CRLF lines, dot-stuffed) to fn,
 * line by line, as the message's own octets: a leading "." that stuffing added goes
 * (session_edit.c) */
void session_unstuffed(const char *p, size_t n, void (*fn)(void *arg, const char *p, size_t n),
                       void *arg);
/* session_sign_rebody - a check replaced the body (session_edit.c): the signatures
 * cover the new one, given as the queue file keeps it (CRLF lines, dot-stuffed) */
void session_sign_rebody(struct session *s, const char *body, size_t len);

/* session_connect_checks - FCrDNS, then the connect stage; greet when done (session_policy.c) */
void session_connect_checks(struct session *s);
/* session_greet_ready - one reason to hold the greeting is gone (session.c) */
void session_greet_ready(struct session *s, unsigned what);
/* session_run_stage - run stage's checks, then call next with the verdict (session_policy.c) */
void session_run_stage(struct session *s, enum policy_stage stage,
                       void (*next)(struct session *s, const struct policy_verdict *v));
/* session_refuse - give a check's refusal as the reply; logs and counts (session_policy.c) */
void session_refuse(struct session *s, const char *stage, const struct policy_verdict *v);
/* session_hold - keep a connect/HELO refusal for RCPT, or close now for 421 (session_policy.c) */
void session_hold(struct session *s, const char *stage, const struct policy_verdict *v);
/* The message text as the checks see it (session_message.c): begin at DATA, each
 * stored line, the end of the text, and free with the transaction. */
void session_message_begin(struct session *s);
/* session_message_header_line - a header line: kept for the checks, and stored
 * (session_data_write) unless it belongs to a field claiming our authserv-id */
void session_message_header_line(struct session *s, const char *line, size_t len);
void session_message_body_line(struct session *s, const char *line, size_t len);
void session_message_end(struct session *s);
/* session_message_fields - the fields the END stage decided, Authentication-Results
 * first: malloc'd CRLF lines for the queue file's prepend, or NULL */
char *session_message_fields(struct session *s);
void session_message_free(struct session *s);
/* session_edit_apply - the END stage's edits (cl.edit: changed or deleted header fields,
 * a replaced body) into the queue file before the prepend; 0, or -1 (write error) */
int session_edit_apply(struct session *s);
/* session_data_write - octets of the text into the spool file; 0, or -1 (session_data.c) */
int session_data_write(struct session *s, const char *p, size_t len);

/* session_policy_end - cancel pending checks and DNS, count the session (session_policy.c) */
void session_policy_end(struct session *s);

/* session_reply - queue one reply line (text without CRLF) */
void session_reply(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* session_error - a 4xx/5xx reply that counts towards max_errors (may close) */
void session_error(struct session *s, const char *stage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* session_close - send the final reply line and close once it is flushed */
void session_close(struct session *s, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* session_set_timeout - the time a line may take in this state, and the write timeout */
void session_set_timeout(struct session *s, unsigned seconds);
/* session_arm_deadline - a complete line was read: restart its deadline */
void session_arm_deadline(struct session *s);
/* session_process - consume as much buffered input as the state allows */
void session_process(struct session *s);

/* session_free - release everything; the only place a session ends (session.c) */
void session_free(struct session *s);
/* session_eof - the client sent EOF; 0 when the session should just end (session_io.c) */
int session_eof(struct session *s);
/* session_read_cb, session_write_cb - the bufferevent's callbacks (session_io.c) */
void session_read_cb(struct bufferevent *bev, void *arg);
void session_write_cb(struct bufferevent *bev, void *arg);
/* session_queue_flush - have s's output written at the end of this loop turn (session_io.c) */
void session_queue_flush(struct session *s);
/* session_direct - replies are written by us, not by the bufferevent (plaintext) */
int session_direct(const struct session *s);

/* session_command - execute one parsed command line (session_cmd.c) */
void session_command(struct session *s, char *line, size_t len);
/* session_tx_free - end the transaction (session_cmd.c) */
void session_tx_free(struct session *s);
/* session_starttls_switch - the 220 is flushed: become a TLS session (session.c) */
void session_starttls_switch(struct session *s);

/* session_data_begin - open the spool file and answer 354 (session_data.c) */
void session_data_begin(struct session *s);
/* session_data_step - consume one text line; 0 when more input is needed (session_data.c) */
int session_data_step(struct session *s, struct evbuffer *in);
/* session_log_msgid - the Message-ID of the kept header section, or NULL (session_log.c) */
char *session_log_msgid(const struct session *s);
/* session_log_rcpts - the recipients as one log value "<a@x>,<b@y>" (session_log.c) */
char *session_log_rcpts(const struct smtp_tx *tx);
/* session_commit_detach - the session goes away while its commit runs (session_data.c) */
void session_commit_detach(struct session *s);

struct accept_offer;
struct mx_lookup;
/* session_accept_offer - what EHLO announces for the routes (session_accept.c) */
void session_accept_offer(struct session *s, struct accept_offer *o);
/* session_accept_rcpt - can rcpt's route take it? 0, or -1 refused and answered (session_accept.c)
 */
int session_accept_rcpt(struct session *s, const char *rcpt);
/* session_accept_end - can every route take the message? 0, or -1 refused and answered */
int session_accept_end(struct session *s);

/* session_rcpt_mx - rcpt routed to "mx": the session waits for its domain's MX lookup;
 * a domain that does not exist (550 5.1.10), a null MX (556 5.1.10) or a DNS error
 * (451 4.4.3) is refused, anything else goes on to next (session_mx.c) */
void session_rcpt_mx(struct session *s, const char *rcpt,
                     void (*next)(struct session *s, const char *rcpt));
/* session_mx_cancel - the session ends: no lookup may call back into it */
void session_mx_cancel(struct session *s);

#endif
