/* storeconf.h - the store section (uri, cleanup) */
#ifndef MX_STORE_STORECONF_H
#define MX_STORE_STORECONF_H

#include <stddef.h>

struct config;
struct config_section;

extern const struct config_section storeconf_section;

/* storeconf_uri - store { uri } or the embedded default lmdb:<state_dir>/db */
void storeconf_uri(const struct config *cfg, char *dst, size_t dstlen);

/* storeconf_cleanup - seconds between expiry sweeps */
unsigned storeconf_cleanup(const struct config *cfg);

#endif
