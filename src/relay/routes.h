/*
 * routes.h - the route table: which next hop takes mail for a domain. The
 * "route" sections are declared here (routes_section) and read into a table
 * that the session (is there a route?), the queue (where to deliver) and the
 * recipients check (whom to probe) share.
 */
#ifndef MX_RELAY_ROUTES_H
#define MX_RELAY_ROUTES_H

#include <stddef.h>

#include "relay/route.h"

struct config;
struct config_section;

struct routes_entry {
    char *domain; /* "example.test", ".example.test" (subdomains) or "*" */
    struct route_target target;
    int create; /* maildir: create unknown mailboxes (default: refuse them at RCPT) */
};

struct routes;

/* The route sections, the domains option's syntax and "every domain has a route". */
extern const struct config_section routes_section;

/* routes_load - the table of cfg's route sections (validated by config_load) */
struct routes *routes_load(const struct config *cfg);
void routes_free(struct routes *rt);

/* routes_count, routes_at - every entry, in configuration order */
size_t routes_count(const struct routes *rt);
const struct routes_entry *routes_at(const struct routes *rt, size_t i);

/* routes_find - exact, then the longest ".parent" pattern, then "*"; NULL if none */
const struct routes_entry *routes_find(const struct routes *rt, const char *domain);

#endif
