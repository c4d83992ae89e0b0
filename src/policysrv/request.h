/*
 * request.h - one request of Postfix's policy delegation protocol
 * (SMTPD_POLICY_README): "name=value" lines ending with an empty line.
 * Parsed strictly and bounded; no I/O.
 */
#ifndef MX_POLICYSRV_REQUEST_H
#define MX_POLICYSRV_REQUEST_H

#include <stddef.h>

#define POLICYSRV_LINE_MAX 2048 /* one attribute line, LF excluded */
#define POLICYSRV_ATTRS_MAX 100 /* lines per request (Postfix 3.7 sends about 40) */
#define POLICYSRV_NAME_MAX 64

/* The attributes the checks use; the others are read, checked and dropped. */
struct policysrv_req {
    char *request;        /* "smtpd_access_policy" */
    char *protocol_state; /* CONNECT, EHLO, HELO, MAIL, RCPT, DATA, END-OF-MESSAGE, VRFY, ETRN */
    char *client_address;
    char *client_name;         /* forward-confirmed name, or "unknown" */
    char *reverse_client_name; /* the PTR name, or "unknown" */
    char *helo_name;
    char *sender;
    char *recipient;
    char *sasl_username;
    char *instance; /* the same for every request of one message transaction */
    unsigned nattrs;
};

/* policysrv_req_line - one line (len octets, LF removed) into r; 0, or -1 with *err */
int policysrv_req_line(struct policysrv_req *r, const char *line, size_t len, const char **err);

/* policysrv_req_complete - the empty line came: the request is one we can judge? 0, or
 * -1 with *err */
int policysrv_req_complete(const struct policysrv_req *r, const char **err);

/* policysrv_req_clear - free the values; r is empty again */
void policysrv_req_clear(struct policysrv_req *r);

#endif
