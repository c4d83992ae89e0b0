/*
 * fuzz_milter.c - libFuzzer harness for the milter reply decoder
 * (milter_proto_frame, milter_proto_parse): the input is what a milter
 * writes on its connection, cut into packets as the client cuts them.
 * Properties: a frame is never announced longer than MILTER_PROTO_REPLY_MAX;
 * an accepted reply code is 4xx or 5xx with a status of its class and a
 * printable text within MILTER_PROTO_TEXT_MAX; an accepted header name is
 * printable ASCII without ':' or space; an accepted value has no control but
 * TAB and its only line breaks are CRLF folds (a second field cannot be
 * smuggled in); arguments are printable; a body chunk lies inside the packet.
 */
#include <string.h>

#include "fuzz.h"
#include "policy/milter_proto.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

static void check_text(const char *s, size_t max)
{
    FUZZ_ASSERT(strlen(s) <= max);
    for (const char *p = s; *p; p++)
        FUZZ_ASSERT(*p >= 0x20 && *p < 0x7f);
}

static void check_value(const char *v)
{
    for (const char *p = v; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\r') {
            FUZZ_ASSERT(p[1] == '\n' && (p[2] == ' ' || p[2] == '\t'));
            continue;
        }
        if (c == '\n') {
            FUZZ_ASSERT(p > v && p[-1] == '\r');
            continue;
        }
        FUZZ_ASSERT(c >= 0x20 || c == '\t');
        FUZZ_ASSERT(c != 0x7f);
    }
}

/* check - the promises of an accepted reply */
static void check(const struct milter_reply *r, const unsigned char *p, size_t len)
{
    switch (r->cmd) {
    case SMFIR_REPLYCODE:
    case SMFIR_REJECT:
    case SMFIR_TEMPFAIL:
        FUZZ_ASSERT(r->code >= 400 && r->code <= 599);
        FUZZ_ASSERT(r->status[0] == '0' + r->code / 100 && r->status[1] == '.');
        check_text(r->status, 7);
        check_text(r->text, MILTER_PROTO_TEXT_MAX);
        break;
    case SMFIR_ADDHEADER:
    case SMFIR_INSHEADER:
    case SMFIR_CHGHEADER:
        FUZZ_ASSERT(r->name[0] != '\0' && r->value != NULL);
        for (const char *n = r->name; *n; n++)
            FUZZ_ASSERT(*n > 0x20 && *n < 0x7f && *n != ':');
        check_value(r->value);
        FUZZ_ASSERT(strlen(r->value) <= 2 * MILTER_PROTO_VALUE_MAX);
        break;
    case SMFIR_REPLBODY:
        FUZZ_ASSERT(r->data == p + 1 && r->len == len - 1);
        break;
    case SMFIR_QUARANTINE:
    case SMFIR_ADDRCPT:
    case SMFIR_DELRCPT:
    case SMFIR_ADDRCPT_PAR:
    case SMFIR_CHGFROM:
        check_text(r->arg, sizeof(r->arg) - 1);
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the first packet is whole input when it has no valid frame: the decoder alone */
    struct milter_reply r;
    const char *why;

    memset(&r, 0, sizeof(r));
    if (size > 0 && milter_proto_parse(data, size, &r, &why) == 0)
        check(&r, data, size);
    milter_reply_clear(&r);
    while (size >= 4) { /* and the stream, framed as the client frames it */
        long n = milter_proto_frame(data, size);
        FUZZ_ASSERT(n != 0);
        if (n < 0)
            break;
        FUZZ_ASSERT(n <= MILTER_PROTO_REPLY_MAX);
        if ((size_t)n + 4 > size)
            break;
        if (milter_proto_parse(data + 4, (size_t)n, &r, &why) == 0)
            check(&r, data + 4, (size_t)n);
        else
            FUZZ_ASSERT(why && why[0]);
        milter_reply_clear(&r);
        data += n + 4;
        size -= (size_t)n + 4;
    }
    return 0;
}
