/* maildir.h - final delivery into Maildir folders (one per local part) */
#ifndef MX_QUEUE_MAILDIR_H
#define MX_QUEUE_MAILDIR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * maildir_deliver - BLOCKING (run it in the pool). Writes the message to
 * root/<local>/new/<unique> with LF line ends and dot-stuffing undone,
 * prefixed by "Return-Path: <sender>" and "Delivered-To: <rcpt>". Creates
 * root/<local>/{tmp,new,cur} as needed. The file is written in tmp/,
 * fsynced, renamed into new/, and new/ fsynced. local must not be empty,
 * start with '.', or contain '/' or NUL: that is a permanent failure.
 * Returns 0; or -1 with err filled and *permanent set to 1 (will never
 * work) or 0 (may work later: disk full, permission).
 */
int maildir_deliver(const char *root, const char *local, const char *sender, const char *rcpt,
                    int body_fd, off_t body_off, uint64_t body_len, char *err, size_t errlen,
                    int *permanent);

#endif
