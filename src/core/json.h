/*
 * json.h - a small JSON writer into a growing buffer (the admin API, mxgatectl
 * --json). Strings are escaped completely: quotes, backslash, every control
 * character (C0 and C1), DEL, octets that are not well-formed UTF-8 (as U+FFFD), and
 * '<', '>', '&', U+2028, U+2029 (so that output embedded in a page or script
 * cannot end it). Commas and colons are placed by the writer.
 */
#ifndef MX_CORE_JSON_H
#define MX_CORE_JSON_H

#include <stddef.h>
#include <stdint.h>

struct json {
    char *buf; /* NUL-terminated */
    size_t len, cap;
    int comma; /* a value was written at this level: the next needs "," */
};

void json_init(struct json *j);
void json_free(struct json *j);

void json_obj_begin(struct json *j);
void json_obj_end(struct json *j);
void json_arr_begin(struct json *j);
void json_arr_end(struct json *j);
/* json_key - an object member's name; the value follows */
void json_key(struct json *j, const char *k);

void json_str(struct json *j, const char *s); /* NULL: null */
void json_strn(struct json *j, const char *s, size_t n);
void json_int(struct json *j, long long v);
void json_double(struct json *j, double v);
void json_bool(struct json *j, int v);
void json_null(struct json *j);

/* json_kstr, json_kint - key and value at once */
void json_kstr(struct json *j, const char *k, const char *s);
void json_kint(struct json *j, const char *k, long long v);

#endif
