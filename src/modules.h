/*
 * modules.h - the top of the layers: every module's configuration section in
 * one list, for mxgated, mxgatectl and the tests that load a configuration.
 */
#ifndef MX_MODULES_H
#define MX_MODULES_H

#include <stdio.h>

struct config;
struct config_section;

/* modules_sections - every section a configuration file may hold, NULL-terminated */
const struct config_section *const *modules_sections(void);

/* modules_config_load - config_load with every module's section */
struct config *modules_config_load(const char *path, FILE *errout);

/*
 * modules_validate - what start-up would refuse after the file loaded, checked
 * before anything starts (mxgated -n runs exactly this too): the checks' names
 * and each check's options and files, the TLS certificate and key (loaded), the
 * DNS servers, the user. Every error and every warning (a setting that can have
 * no effect) goes to out as "file:line: [warning: ]message". Returns the number
 * of errors.
 */
unsigned modules_validate(const struct config *cfg, FILE *out);

#endif
