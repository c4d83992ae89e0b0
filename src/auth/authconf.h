/* authconf.h - the auth section: where submission logins and their senders come from */
#ifndef MXGATE_AUTH_AUTHCONF_H
#define MXGATE_AUTH_AUTHCONF_H

struct config;
struct config_section;

struct authconf {
    char *users;             /* the users file (absolute), NULL: no SMTP AUTH */
    char *senders;           /* the senders map (absolute), or NULL */
    char *dovecot;           /* Dovecot's auth-client socket: passwords checked there */
    char *default_domain;    /* for logins without a domain; default the first of domains */
    int show_login;          /* the login in the Received header */
    int header_from;         /* the header From: too must be the login's */
    unsigned cache_ttl;      /* seconds a verified password is remembered; 0: never */
    unsigned cache_size;     /* entries */
    unsigned max_failures;   /* failed AUTH per address or login in failure_window, then lockout */
    unsigned tarpit_after;   /* failures after which each reply is delayed */
    unsigned tarpit_delay;   /* seconds */
    unsigned failure_window; /* seconds */
    unsigned lockout;        /* seconds */
};

extern const struct config_section authconf_section;

/* authconf_read - the section's settings (strings malloc'd: authconf_clear) */
void authconf_read(const struct config *cfg, struct authconf *ac);
void authconf_clear(struct authconf *ac);

#endif
