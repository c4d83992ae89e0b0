/*
 * milter_msg.c - the message as milters see it: the body is kept while DATA
 * is read (up to the largest max_size), and at the end of DATA each milter
 * gets DATA, the header fields (cl->header: as stored, without the fields
 * mxgate adds), EOH, the body in chunks of at most 65535 octets and the end
 * of message; then the modifications it answers are applied:
 *
 *   add / insert header    on top of the stored message, with the other
 *                          fields the checks add (folds kept as CRLF)
 *   change / delete header policy_edit_field: the session rewrites the
 *                          queue file's header section before the commit
 *   replace body           policy_edit_body, bounded by max_size
 *   quarantine             policy_client_quarantine
 *   recipients, sender     refused: mxgate's envelope is decided at RCPT,
 *                          and a milter that needs them must not be
 *                          believed to have acted (on_error applies)
 */
#include "policy/milter_internal.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "policy/stats.h"

void *milter_msg_begin(void *state, const struct policy_client *cl)
{
    struct milter_msg *m = xcalloc(1, sizeof(*m));

    (void)cl;
    m->body = evbuffer_new();
    m->max = ((struct milter_state *)state)->max_size;
    return m;
}

void milter_msg_body(void *mdata, const char *data, size_t len)
{
    struct milter_msg *m = mdata;

    if (len > m->max || m->size > m->max - len)
        m->over = 1; /* no milter sees a message this long: keep no more of it */
    else
        evbuffer_add(m->body, data, len);
    m->size += len;
}

void milter_msg_free(void *mdata)
{
    struct milter_msg *m = mdata;

    evbuffer_free(m->body);
    free(m);
}

/* msg_field - the field at cl->header + *pos: name and value (one leading space
 * dropped, folds kept, no final CRLF); 0, or -1 at the end */
static int msg_field(const struct policy_client *cl, size_t *pos, char *name, size_t namelen,
                     const char **value, size_t *vlen)
{
    const char *h = cl->header, *end = cl->header + cl->header_len;

    while (h && h + *pos < end) {
        const char *p = h + *pos, *e = p, *colon;
        do { /* the field ends at a line break not followed by white space */
            const char *lf = memchr(e, '\n', (size_t)(end - e));
            e = lf ? lf + 1 : end;
        } while (e < end && (*e == ' ' || *e == '\t'));
        *pos = (size_t)(e - h);
        colon = memchr(p, ':', (size_t)(e - p));
        if (!colon || colon == p || (size_t)(colon - p) >= namelen)
            continue; /* not a field: nothing a milter could name */
        snprintf(name, namelen, "%.*s", (int)(colon - p), p);
        name[strcspn(name, " \t")] = '\0';
        *value = colon + 1;
        if (*value < e && **value == ' ')
            (*value)++;
        *vlen = (size_t)(e - *value);
        while (*vlen && ((*value)[*vlen - 1] == '\n' || (*value)[*vlen - 1] == '\r'))
            (*vlen)--;
        return 0;
    }
    return -1;
}

/* msg_macros - the DATA and end-of-message macros */
static void msg_macros(struct milter_sess *ss, struct milter_pkt *k, char cmd)
{
    const char *kv[] = {"i", ss->cl->queue_id};

    milter_proto_macros(k, cmd, kv, 1);
}

/* msg_body_chunk - the next body chunk for l; 0 when the body is through */
static int msg_body_chunk(struct milter_sess *ss, struct milter_link *l, struct milter_pkt *k)
{
    struct evbuffer *b = ss->msg ? ss->msg->body : NULL;
    size_t have = b ? evbuffer_get_length(b) : 0, n;
    struct evbuffer_ptr at;

    if (l->body_skip || l->body_pos >= have)
        return 0;
    n = have - l->body_pos < MILTER_PROTO_CHUNK ? have - l->body_pos : MILTER_PROTO_CHUNK;
    static char chunk[MILTER_PROTO_CHUNK]; /* the loop's thread only */

    milter_proto_begin(k, SMFIC_BODY);
    evbuffer_ptr_set(b, &at, l->body_pos, EVBUFFER_PTR_SET);
    evbuffer_copyout_from(b, &at, chunk, n);
    milter_proto_bytes(k, chunk, n);
    milter_proto_end(k);
    l->body_pos += n;
    return 1;
}

/* msg_step - one step of the END sequence; 1 with a packet, 0 to go on, -1 when through */
static int msg_step(struct milter_sess *ss, struct milter_link *l, struct milter_pkt *k, int *want)
{
    char name[MILTER_PROTO_NAME_MAX + 1];
    const char *value;
    size_t vlen;

    switch (l->mstep) {
    case 0:
        l->mstep++;
        return (l->proto & SMFIP_NODATA) ? 0 : (msg_macros(ss, k, SMFIC_DATA), *want = 0, 1);
    case 1:
        l->mstep++;
        if (l->proto & SMFIP_NODATA)
            return 0;
        milter_proto_simple(k, SMFIC_DATA, NULL);
        *want = !(l->proto & SMFIP_NR_DATA);
        return 1;
    case 2:
        if ((l->proto & SMFIP_NOHDRS) ||
            msg_field(ss->cl, &l->hdr_pos, name, sizeof(name), &value, &vlen) < 0) {
            l->mstep++;
            return 0;
        }
        milter_proto_header(k, name, value, vlen);
        *want = !(l->proto & SMFIP_NR_HDR);
        return 1;
    case 3:
        l->mstep++;
        if (l->proto & SMFIP_NOEOH)
            return 0;
        milter_proto_simple(k, SMFIC_EOH, NULL);
        *want = !(l->proto & SMFIP_NR_EOH);
        return 1;
    case 4:
        if ((l->proto & SMFIP_NOBODY) || !msg_body_chunk(ss, l, k)) {
            l->mstep++;
            return 0;
        }
        *want = !(l->proto & SMFIP_NR_BODY);
        return 1;
    case 5:
        l->mstep++;
        msg_macros(ss, k, SMFIC_BODYEOB);
        *want = 0;
        return 1;
    case 6:
        l->mstep++;
        milter_proto_simple(k, SMFIC_BODYEOB, NULL);
        l->eom = 1;
        *want = 1;
        return 1;
    default:
        return -1;
    }
}

int milter_msg_next(struct milter_sess *ss, struct milter_link *l, struct milter_pkt *k, int *want)
{
    int rc;

    while ((rc = msg_step(ss, l, k, want)) == 0)
        ;
    return rc > 0;
}

/* msg_add_field - an added field on top, "Name: value" CRLF, bounded with the others */
static int msg_add_field(struct policy_client *cl, const char *name, const char *value)
{
    size_t have = cl->add_headers ? strlen(cl->add_headers) : 0;
    size_t add = strlen(name) + 2 + strlen(value) + 2;

    if (have + add + 1 > POLICY_HEADERS_MAX)
        return -1;
    cl->add_headers = xrealloc(cl->add_headers, have + add + 1);
    snprintf(cl->add_headers + have, add + 1, "%s: %s\r\n", name, value);
    return 0;
}

/* msg_spam_tag - the milter's spam header saying yes gives its points */
static void msg_spam_tag(struct milter_sess *ss, struct milter_link *l, const char *name,
                         const char *value)
{
    size_t have = strlen(ss->tags);

    if (!l->mc->score || strcasecmp(name, l->mc->spam_header) != 0 ||
        strncasecmp(value, "yes", 3) != 0)
        return;
    ss->score += l->mc->score;
    if (have + strlen(l->mc->name) + 2 < sizeof(ss->tags))
        snprintf(ss->tags + have, sizeof(ss->tags) - have, "%s%s", have ? "," : "", l->mc->name);
}

/* msg_allowed - the reply's action was negotiated */
static int msg_allowed(const struct milter_link *l, char cmd)
{
    switch (cmd) {
    case SMFIR_ADDHEADER:
        return (l->actions & SMFIF_ADDHDRS) != 0;
    case SMFIR_INSHEADER:
        return (l->actions & (SMFIF_ADDHDRS | SMFIF_CHGHDRS)) != 0;
    case SMFIR_CHGHEADER:
        return (l->actions & SMFIF_CHGHDRS) != 0;
    case SMFIR_REPLBODY:
        return (l->actions & SMFIF_CHGBODY) != 0;
    case SMFIR_QUARANTINE:
        return (l->actions & SMFIF_QUARANTINE) != 0;
    default:
        return 0;
    }
}

int milter_msg_modify(struct milter_sess *ss, struct milter_link *l, const struct milter_reply *r,
                      const char **why)
{
    struct policy_client *cl = ss->cl;
    char by[80];

    if (r->cmd == SMFIR_ADDRCPT || r->cmd == SMFIR_DELRCPT || r->cmd == SMFIR_ADDRCPT_PAR ||
        r->cmd == SMFIR_CHGFROM)
        return *why = "unsupported-modification", -1;
    if (!l->eom || !msg_allowed(l, r->cmd))
        return *why = "modification-not-negotiated", -1;
    snprintf(by, sizeof(by), "milter %s", l->mc->name);
    switch (r->cmd) {
    case SMFIR_ADDHEADER:
    case SMFIR_INSHEADER:
        msg_spam_tag(ss, l, r->name, r->value);
        if (msg_add_field(cl, r->name, r->value) < 0)
            return *why = "added-fields-too-long", -1;
        return 0;
    case SMFIR_CHGHEADER:
        if (r->value[0])
            msg_spam_tag(ss, l, r->name, r->value);
        if (policy_edit_field(cl, by, r->name, r->index, r->value[0] ? r->value : NULL) < 0)
            return *why = "too-many-changes", -1;
        return 0;
    case SMFIR_REPLBODY:
        if (policy_edit_body(cl, by, r->data, r->len, (size_t)l->mc->max_size) < 0)
            return *why = "body-too-long", -1;
        return 0;
    default: /* SMFIR_QUARANTINE */
        log_info("event=milter name=%s stage=end action=quarantine client=%s reason=%s",
                 log_q(l->mc->name), cl->ip, log_q(r->arg));
        snprintf(by, sizeof(by), "milter:%s.quarantine", l->mc->name);
        stats_count(ss->st->stats, by);
        snprintf(by, sizeof(by), "milter %s", l->mc->name);
        policy_client_quarantine(cl, by, r->arg[0] ? r->arg : "quarantined");
        return 0;
    }
}
