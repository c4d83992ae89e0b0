/* utf8.h - UTF-8 validation (RFC 3629) */
#ifndef MX_CORE_UTF8_H
#define MX_CORE_UTF8_H

#include <stddef.h>

/*
 * utf8_seq_len - length (2..4) of the well-formed UTF-8 sequence at s, or 0.
 * Follows RFC 3629's table, so overlongs, surrogates and code points above
 * U+10FFFF are refused. A NUL stops it (it is no continuation octet), so s
 * needs no length when it is NUL-terminated.
 */
size_t utf8_seq_len(const unsigned char *s);

#endif
