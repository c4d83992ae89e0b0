/* utf8.c - UTF-8 validation */
#include "core/utf8.h"

/* utf8_in - c lies in [lo, hi] */
static int utf8_in(unsigned char c, unsigned lo, unsigned hi)
{
    return c >= lo && c <= hi;
}

/* utf8_seq_len - the RFC 3629 table of well-formed sequences */
size_t utf8_seq_len(const unsigned char *s)
{
    if (utf8_in(s[0], 0xC2, 0xDF))
        return utf8_in(s[1], 0x80, 0xBF) ? 2 : 0;
    if (utf8_in(s[0], 0xE0, 0xEF)) {
        unsigned lo = s[0] == 0xE0 ? 0xA0 : 0x80, hi = s[0] == 0xED ? 0x9F : 0xBF;
        return utf8_in(s[1], lo, hi) && utf8_in(s[2], 0x80, 0xBF) ? 3 : 0;
    }
    if (utf8_in(s[0], 0xF0, 0xF4)) {
        unsigned lo = s[0] == 0xF0 ? 0x90 : 0x80, hi = s[0] == 0xF4 ? 0x8F : 0xBF;
        return utf8_in(s[1], lo, hi) && utf8_in(s[2], 0x80, 0xBF) && utf8_in(s[3], 0x80, 0xBF) ? 4
                                                                                               : 0;
    }
    return 0;
}
