/*
 * milter_proto.h - the Sendmail milter protocol, version 6, as Postfix speaks
 * it: packets are a 4-octet big-endian length (command octet included), one
 * command octet and its data. This module only encodes what the MTA sends and
 * decodes (and validates) what a milter answers; milter_client.c moves the
 * octets and milter.c decides.
 *
 * Every reply is distrusted: a packet over MILTER_PROTO_REPLY_MAX, a string
 * without its NUL, a header name that is not printable ASCII without ':', a
 * header value with a control or a line break not followed by white space (a
 * second field smuggled in), a reply code that is not 4xx/5xx or a text that
 * is not printable ASCII is refused as a protocol error.
 */
#ifndef MX_POLICY_MILTER_PROTO_H
#define MX_POLICY_MILTER_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define MILTER_PROTO_VERSION 6
/* the longest reply packet accepted (a body chunk is at most 65535) */
#define MILTER_PROTO_REPLY_MAX (65536 + 512)
#define MILTER_PROTO_CHUNK 65535 /* body octets per SMFIC_BODY */
#define MILTER_PROTO_NAME_MAX 128
#define MILTER_PROTO_VALUE_MAX 16384
#define MILTER_PROTO_TEXT_MAX 200 /* reply text kept after code and status */

/* commands (MTA to milter) */
enum {
    SMFIC_ABORT = 'A',
    SMFIC_BODY = 'B',
    SMFIC_CONNECT = 'C',
    SMFIC_MACRO = 'D',
    SMFIC_BODYEOB = 'E',
    SMFIC_HELO = 'H',
    SMFIC_HEADER = 'L',
    SMFIC_MAIL = 'M',
    SMFIC_EOH = 'N',
    SMFIC_OPTNEG = 'O',
    SMFIC_QUIT = 'Q',
    SMFIC_RCPT = 'R',
    SMFIC_DATA = 'T',
};

/* replies (milter to MTA) */
enum {
    SMFIR_ADDRCPT = '+',
    SMFIR_DELRCPT = '-',
    SMFIR_ADDRCPT_PAR = '2',
    SMFIR_SHUTDOWN = '4',
    SMFIR_ACCEPT = 'a',
    SMFIR_REPLBODY = 'b',
    SMFIR_CONTINUE = 'c',
    SMFIR_DISCARD = 'd',
    SMFIR_CHGFROM = 'e',
    SMFIR_CONN_FAIL = 'f',
    SMFIR_ADDHEADER = 'h',
    SMFIR_INSHEADER = 'i',
    SMFIR_SETSYMLIST = 'l',
    SMFIR_CHGHEADER = 'm',
    SMFIR_PROGRESS = 'p',
    SMFIR_QUARANTINE = 'q',
    SMFIR_REJECT = 'r',
    SMFIR_SKIP = 's',
    SMFIR_TEMPFAIL = 't',
    SMFIR_REPLYCODE = 'y',
};

/* actions a milter may take (SMFIC_OPTNEG) */
#define SMFIF_ADDHDRS 0x01u
#define SMFIF_CHGBODY 0x02u
#define SMFIF_ADDRCPT 0x04u
#define SMFIF_DELRCPT 0x08u
#define SMFIF_CHGHDRS 0x10u
#define SMFIF_QUARANTINE 0x20u
#define SMFIF_CHGFROM 0x40u
#define SMFIF_ADDRCPT_PAR 0x80u
#define SMFIF_SETSYMLIST 0x100u

/* protocol steps a milter may not want, or not answer */
#define SMFIP_NOCONNECT 0x1u
#define SMFIP_NOHELO 0x2u
#define SMFIP_NOMAIL 0x4u
#define SMFIP_NORCPT 0x8u
#define SMFIP_NOBODY 0x10u
#define SMFIP_NOHDRS 0x20u
#define SMFIP_NOEOH 0x40u
#define SMFIP_NR_HDR 0x80u
#define SMFIP_NOUNKNOWN 0x100u
#define SMFIP_NODATA 0x200u
#define SMFIP_SKIP 0x400u
#define SMFIP_RCPT_REJ 0x800u
#define SMFIP_NR_CONN 0x1000u
#define SMFIP_NR_HELO 0x2000u
#define SMFIP_NR_MAIL 0x4000u
#define SMFIP_NR_RCPT 0x8000u
#define SMFIP_NR_DATA 0x10000u
#define SMFIP_NR_UNKN 0x20000u
#define SMFIP_NR_EOH 0x40000u
#define SMFIP_NR_BODY 0x80000u
#define SMFIP_HDR_LEADSPC 0x100000u

/* What mxgate offers: every step may be skipped or left unanswered; no
 * leading-space headers, no SMFIC_UNKNOWN (never sent). */
#define MILTER_PROTO_OFFER                                                                         \
    (SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT | SMFIP_NOBODY | SMFIP_NOHDRS |  \
     SMFIP_NOEOH | SMFIP_NR_HDR | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_SKIP | SMFIP_NR_CONN |    \
     SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_DATA | SMFIP_NR_UNKN |               \
     SMFIP_NR_EOH | SMFIP_NR_BODY)
/* the actions offered (recipient and sender changes are offered so that milters
 * registering them start, and refused when used: milter.c) */
#define MILTER_PROTO_ACTIONS                                                                       \
    (SMFIF_ADDHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT | SMFIF_DELRCPT | SMFIF_CHGHDRS |               \
     SMFIF_QUARANTINE | SMFIF_CHGFROM | SMFIF_ADDRCPT_PAR)

/* A packet being built (the MTA side): len octets of p, the frame included. */
struct milter_pkt {
    unsigned char *p;
    size_t len, cap;
};

void milter_proto_free(struct milter_pkt *k);
/* milter_proto_begin - start a packet of command cmd (clears k) */
void milter_proto_begin(struct milter_pkt *k, char cmd);
/* milter_proto_str - a string and its NUL */
void milter_proto_str(struct milter_pkt *k, const char *s);
void milter_proto_bytes(struct milter_pkt *k, const void *data, size_t len);
void milter_proto_u32(struct milter_pkt *k, uint32_t v);
void milter_proto_u16(struct milter_pkt *k, uint16_t v);
/* milter_proto_end - put the length into the frame */
void milter_proto_end(struct milter_pkt *k);

/* whole packets */
void milter_proto_optneg(struct milter_pkt *k, uint32_t actions, uint32_t protocol);
/* milter_proto_connect - family '4', '6' or 'U' (then port 0 and addr the path) */
void milter_proto_connect(struct milter_pkt *k, const char *host, char family, uint16_t port,
                          const char *addr);
/* milter_proto_macros - SMFIC_MACRO for command cmd: n name/value pairs (kv[2i], kv[2i+1]);
 * pairs whose value is NULL are left out */
void milter_proto_macros(struct milter_pkt *k, char cmd, const char *const *kv, size_t n);
/* milter_proto_header - name, and the value with CRLF folds turned into LF as milters expect */
void milter_proto_header(struct milter_pkt *k, const char *name, const char *value, size_t vlen);
/* milter_proto_simple - a command without data (ABORT, EOH, BODYEOB, DATA, QUIT) or one
 * string (HELO) or one path (MAIL, RCPT: "<addr>") */
void milter_proto_simple(struct milter_pkt *k, char cmd, const char *str);

/* A decoded reply; pointers point into the packet given to milter_proto_parse. */
struct milter_reply {
    char cmd;
    /* SMFIC_OPTNEG answer */
    uint32_t version, actions, protocol;
    /* REPLYCODE, REJECT (550 5.7.1) and TEMPFAIL (451 4.7.1): the SMTP answer */
    int code;
    char status[8];
    char text[MILTER_PROTO_TEXT_MAX + 1];
    /* header changes: index (INSHEADER, CHGHEADER), name, value ("" deletes in CHGHEADER);
     * value keeps the milter's LF folds turned into CRLF */
    uint32_t index;
    char name[MILTER_PROTO_NAME_MAX + 1];
    char *value; /* malloc'd (milter_reply_clear) */
    /* REPLBODY: a chunk */
    const unsigned char *data;
    size_t len;
    /* QUARANTINE reason, ADDRCPT/DELRCPT/CHGFROM address: printable, bounded */
    char arg[256];
};

/* milter_proto_frame - the payload length of the packet at p, 0 while fewer than 4
 * octets are there, -1 when it announces nothing or more than MILTER_PROTO_REPLY_MAX */
long milter_proto_frame(const unsigned char *p, size_t avail);

/* milter_proto_parse - decode one payload (command octet and data; SMFIC_OPTNEG is the
 * negotiation answer); 0, or -1 with why (a short token) for anything malformed or
 * hostile. r must be zeroed or cleared before. */
int milter_proto_parse(const unsigned char *p, size_t len, struct milter_reply *r,
                       const char **why);
/* milter_reply_clear - free what parse allocated */
void milter_reply_clear(struct milter_reply *r);

#endif
