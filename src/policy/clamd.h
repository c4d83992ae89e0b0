/*
 * clamd.h - what the clamd check's files share (clamd.c: the check and its
 * configuration; clamd_conn.c: one INSTREAM conversation on the loop;
 * clamd_proto.c: the pure parts, also for the unit tests).
 *
 * The protocol (clamd(8)): "zINSTREAM\0", then chunks of <4-octet
 * big-endian length><octets>, then a zero length; clamd answers one
 * NUL-terminated line: "stream: OK", "stream: <signature> FOUND" or
 * "<text> ERROR" (e.g. "INSTREAM size limit exceeded. ERROR").
 */
#ifndef MX_POLICY_CLAMD_H
#define MX_POLICY_CLAMD_H

#include <stddef.h>
#include <sys/socket.h>

struct event_base;

#define CLAMD_REPLY_MAX 512 /* longest reply line read; longer is an error */
#define CLAMD_SIG_MAX 64    /* octets of a signature name kept for the reply and log */
#define CLAMD_CHUNK 65536   /* octets per INSTREAM chunk */

enum clamd_result { CLAMD_CLEAN, CLAMD_FOUND, CLAMD_ERROR };

/* clamd_reply_parse - one reply (without its NUL). CLAMD_FOUND fills sig with the
 * signature name, bounded and made printable (no quote, backslash or control);
 * CLAMD_ERROR fills sig with the error text likewise. */
enum clamd_result clamd_reply_parse(const char *reply, size_t len, char *sig, size_t siglen);

/* clamd_addr_parse - "/path" (UNIX socket) or "host:port" / "[v6]:port" (TCP, a
 * literal address) into sa; 0, or -1 when it is neither */
int clamd_addr_parse(const char *s, struct sockaddr_storage *sa, socklen_t *salen);

/* One scan: the text goes in as it arrives, the result comes once. */
struct clamd_conn;
typedef void (*clamd_done_fn)(void *arg, enum clamd_result r, const char *text);

/* clamd_conn_open - connect and send the INSTREAM command (never blocks). A
 * connection that fails (now or later) is remembered: finish reports it. */
struct clamd_conn *clamd_conn_open(struct event_base *base, const struct sockaddr_storage *sa,
                                   socklen_t salen, unsigned timeout);
/* clamd_conn_write - message octets (sent as chunks); ignored after an error */
void clamd_conn_write(struct clamd_conn *c, const char *data, size_t len);
/* clamd_conn_finish - the end of the text: done is called exactly once, later
 * (never from inside this call), unless clamd_conn_free comes first */
void clamd_conn_finish(struct clamd_conn *c, clamd_done_fn done, void *arg);
void clamd_conn_free(struct clamd_conn *c);

#endif
