/* storeconf.h - the store section (uri, cleanup, on_error, prefix, timeout) */
#ifndef MX_STORE_STORECONF_H
#define MX_STORE_STORECONF_H

#include <stddef.h>

struct config;
struct config_section;
struct store_options;

#define STORECONF_PREFIX_MAX 64

extern const struct config_section storeconf_section;

/* storeconf_uri - store { uri } or the embedded default lmdb:<state_dir>/db */
void storeconf_uri(const struct config *cfg, char *dst, size_t dstlen);

/* storeconf_options - on_error, and Redis's prefix and timeout (the options'
 * strings belong to cfg) */
void storeconf_options(const struct config *cfg, struct store_options *opt);

/* storeconf_cleanup - seconds between expiry sweeps */
unsigned storeconf_cleanup(const struct config *cfg);

#endif
