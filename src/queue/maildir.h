/* maildir.h - final delivery into Maildir folders (one per local part) */
#ifndef MX_QUEUE_MAILDIR_H
#define MX_QUEUE_MAILDIR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum maildir_status {
    MAILDIR_OK = 0,
    MAILDIR_BAD_NAME, /* no mailbox can have this name: 550 5.1.3 */
    MAILDIR_UNKNOWN,  /* no such mailbox and the route may not create it: 550 5.1.1 */
    MAILDIR_REFUSED,  /* a symlink or not a directory: never followed, 550 5.2.1 */
    MAILDIR_TEMP,     /* the root cannot be read now: 451 4.3.0 */
};

/*
 * maildir_mailbox - the canonical mailbox name of a recipient "local@domain"
 * (the local part as stored: quoted form keeps its quotes). The quotes and
 * backslash escapes are undone and ASCII letters lower-cased, so that
 * "Bob"@, BOB@ and bob@ are one mailbox. A name that could not be one
 * directory below the root — empty, starting with '.', holding '/', a
 * control or a non-ASCII octet (no case folding beyond ASCII: look-alike
 * mailboxes are refused rather than made), longer than the local-part
 * limit — gives MAILDIR_BAD_NAME. Otherwise MAILDIR_OK with out filled.
 */
enum maildir_status maildir_mailbox(const char *rcpt, char *out, size_t outlen);

/*
 * maildir_accept - the delivery agent's acceptance test, run at RCPT time:
 * would maildir_deliver take rcpt below root? A few fstatat calls on the
 * local file system, no creation. mailbox (NAME_MAX + 1 octets) receives
 * the canonical name. With create, a missing mailbox is fine; without,
 * MAILDIR_UNKNOWN. A missing root is MAILDIR_TEMP without create (an
 * unmounted disk must not refuse mail for good), fine with it.
 */
enum maildir_status maildir_accept(const char *root, const char *rcpt, int create, char *mailbox,
                                   size_t mailboxlen);

/*
 * maildir_deliver - BLOCKING (run it in the pool). Writes the message to
 * root/<mailbox>/new/<unique> with LF line ends and dot-stuffing undone,
 * prefixed by "Return-Path: <sender>" and "Delivered-To: <rcpt>". mailbox
 * is a canonical name (maildir_mailbox). The walk from root never follows
 * a symbolic link (openat with O_NOFOLLOW | O_DIRECTORY): a mailbox, tmp/,
 * new/ or cur/ that is one is a permanent failure. root/<mailbox> is
 * created only with create (root too then); tmp/ new/ cur/ of an existing
 * mailbox are created as needed. The file is written in tmp/, fsynced,
 * renamed into new/, and new/ fsynced. Returns 0; or -1 with err filled
 * and *permanent set to 1 (will never work) or 0 (may work later: disk
 * full, permission).
 */
struct spool_body;
int maildir_deliver(const char *root, const char *mailbox, int create, const char *sender,
                    const char *rcpt, const struct spool_body *body, char *err, size_t errlen,
                    int *permanent);

#endif
