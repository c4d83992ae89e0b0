/* http_internal.h - what the admin listener's files share */
#ifndef MX_ADMIN_HTTP_INTERNAL_H
#define MX_ADMIN_HTTP_INTERNAL_H

#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "admin/adm.h"

struct json;
struct pool;

struct admin {
    struct evhttp *http;
    int has_token;
    unsigned char token_sha[32]; /* SHA-256 of the token: compared in constant time */
    int started;
    struct adm_env env;
    struct pool *lister; /* a thread for the listings of a shared store (http_listing.c) */
};

/* A request being answered: its parameters (query string, or a form body for POST). */
struct http_req {
    struct admin *a;
    struct evhttp_request *req;
    struct evkeyvalq params;
};

/* http_param - a parameter, or NULL */
const char *http_param(struct http_req *r, const char *name);
/* http_reply - answer with code and body (copied) of type */
void http_reply(struct http_req *r, int code, const char *type, const char *body, size_t len);
/* http_json - answer with the JSON written in j */
void http_json(struct http_req *r, int code, const struct json *j);
/* http_error - {"error": text} with code */
void http_error(struct http_req *r, int code, const char *text);

/* http_api_get - GET /api/...: 0, or -1 when path is no route */
int http_api_get(struct http_req *r, const char *path);
/* http_api_post - POST /api/... (authorized already): 0, or -1 when path is no route */
int http_api_post(struct http_req *r, const char *path);
/* http_store_listing - GET /api/greylist or /api/blocks (what: the word after /api/) */
void http_store_listing(struct http_req *r, const char *what);
/* http_stats - GET /api/stats (series 0) or /api/stats/series */
void http_stats(struct http_req *r, int series);
/* http_userlists - GET /api/lists[?user=] */
void http_userlists(struct http_req *r);
/* http_metrics - GET /metrics */
void http_metrics(struct http_req *r);
/* http_dashboard - GET of a dashboard file: 0, or -1 when path is none of them */
int http_dashboard(struct http_req *r, const char *path);

#endif
