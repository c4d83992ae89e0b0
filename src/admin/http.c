/* http.c - the admin listener: binding, limits, routing, authorization */
#include "admin/admin.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/adminconf.h"
#include "admin/http_internal.h"
#include "core/cidr.h"
#include "core/json.h"
#include "core/log.h"
#include "core/pool.h"
#include "core/xmalloc.h"

#define ADMIN_DEFAULT_PORT 8025
#define ADMIN_HEADERS_MAX 8192 /* octets of request line and headers */
#define ADMIN_BODY_MAX 4096    /* a form with a few fields */

/* admin_read_token - the token's hash; 0 or -1 with err */
static int admin_read_token(struct admin *a, const struct config *cfg, char *err, size_t errlen)
{
    char tok[ADMINCONF_TOKEN_MAX + 2];
    int len = adminconf_read_token(cfg, tok, sizeof(tok), err, errlen);

    if (len < 0)
        return -1;
    SHA256((const unsigned char *)tok, (size_t)len, a->token_sha);
    OPENSSL_cleanse(tok, sizeof(tok));
    a->has_token = 1;
    return 0;
}

/* admin_authorized - "Authorization: Bearer <token>": 0, else the HTTP status to answer */
static int admin_authorized(const struct admin *a, struct evhttp_request *req)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    unsigned char sha[32];
    size_t len;

    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return 401;
    h += 7;
    len = strlen(h);
    if (!a->has_token || len > ADMINCONF_TOKEN_MAX)
        return 403;
    /* Hashes of equal length compared in constant time: neither the token nor
     * its length leaks through the time the comparison takes. */
    SHA256((const unsigned char *)h, len, sha);
    return CRYPTO_memcmp(sha, a->token_sha, sizeof(sha)) == 0 ? 0 : 403;
}

/* admin_params - the query string, and for POST a form body */
static int admin_params(struct http_req *r)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->req);
    const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
    struct evbuffer *body = evhttp_request_get_input_buffer(r->req);
    size_t blen = evbuffer_get_length(body);
    char *form;
    struct evkeyvalq extra;
    struct evkeyval *kv;

    TAILQ_INIT(&r->params);
    if (q && evhttp_parse_query_str(q, &r->params) < 0)
        return -1;
    if (blen == 0 || evhttp_request_get_command(r->req) != EVHTTP_REQ_POST)
        return 0;
    form = xmalloc(blen + 1);
    evbuffer_remove(body, form, blen);
    form[blen] = '\0';
    TAILQ_INIT(&extra);
    if (strlen(form) != blen || evhttp_parse_query_str(form, &extra) < 0) {
        free(form);
        evhttp_clear_headers(&extra);
        return -1;
    }
    free(form);
    TAILQ_FOREACH(kv, &extra, next)
    evhttp_add_header(&r->params, kv->key, kv->value);
    evhttp_clear_headers(&extra);
    return 0;
}

/* admin_route - one request: fixed paths only */
static void admin_route(struct http_req *r, const char *path)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(r->req);
    int code;

    if (cmd == EVHTTP_REQ_POST) {
        if (strncmp(path, "/api/", 5) != 0) {
            http_error(r, 405, "method not allowed");
        } else if ((code = admin_authorized(r->a, r->req)) != 0) {
            if (code == 401)
                evhttp_add_header(evhttp_request_get_output_headers(r->req), "WWW-Authenticate",
                                  "Bearer realm=\"mxgate\"");
            http_error(r, code, code == 401 ? "authorization required" : "forbidden");
        } else if (http_api_post(r, path) < 0) {
            http_error(r, 404, "no such action");
        }
        return;
    }
    if (strcmp(path, "/metrics") == 0)
        http_metrics(r);
    else if (strncmp(path, "/api/", 5) == 0) {
        if (http_api_get(r, path) < 0)
            http_error(r, 404, "no such resource");
    } else if (http_dashboard(r, path) < 0)
        http_error(r, 404, "not found");
}

/* admin_request - evhttp's callback for every request */
static void admin_request(struct evhttp_request *req, void *arg)
{
    struct http_req r = {.a = arg, .req = req};
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;

    TAILQ_INIT(&r.params);
    if (!r.a->started) {
        http_error(&r, 503, "starting");
        return;
    }
    if (!adminconf_host_ok(adm_cfg(&r.a->env), evhttp_request_get_host(req))) {
        http_error(&r, 403, "Host not allowed: name it in admin { hosts = ... }");
        return;
    }
    if (!path || admin_params(&r) < 0) {
        http_error(&r, 400, "bad request");
        evhttp_clear_headers(&r.params);
        return;
    }
    admin_route(&r, path);
    evhttp_clear_headers(&r.params);
}

/* admin_bind - a listening socket on the configured address */
static int admin_bind(struct admin *a, struct event_base *base, const char *addr, char *err,
                      size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    struct evconnlistener *l;

    if (sockaddr_parse(addr, ADMIN_DEFAULT_PORT, &ss, &len) < 0) {
        snprintf(err, errlen, "admin: bad address %s", addr);
        return -1;
    }
    l = evconnlistener_new_bind(base, NULL, NULL,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE,
                                64, (struct sockaddr *)&ss, len);
    if (!l || !evhttp_bind_listener(a->http, l)) {
        snprintf(err, errlen, "admin: cannot listen on %s: %s", addr, strerror(errno));
        if (l)
            evconnlistener_free(l);
        return -1;
    }
    return 0;
}

int admin_listen(struct event_base *base, const struct config *cfg, struct admin **out, char *err,
                 size_t errlen)
{
    char addr[256];
    const char *tf = adminconf_token_file(cfg);
    struct admin *a;

    *out = NULL;
    if (!adminconf_address(cfg, addr, sizeof(addr)))
        return 0;
    a = xcalloc(1, sizeof(*a));
    if (!(a->http = evhttp_new(base))) {
        snprintf(err, errlen, "admin: evhttp_new failed");
        free(a);
        return -1;
    }
    evhttp_set_timeout(a->http, (int)adminconf_timeout(cfg));
    evhttp_set_max_headers_size(a->http, ADMIN_HEADERS_MAX);
    evhttp_set_max_body_size(a->http, ADMIN_BODY_MAX);
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(a->http, admin_request, a);
    if ((tf && admin_read_token(a, cfg, err, errlen) < 0) ||
        admin_bind(a, base, addr, err, errlen) < 0) {
        admin_close(a);
        return -1;
    }
    *out = a;
    return 0;
}

void admin_start(struct admin *a, const struct adm_env *env)
{
    if (!a)
        return;
    a->env = *env;
    a->lister = pool_new(env->base, 1); /* here: after the privileges are dropped */
    a->started = 1;
}

void admin_close(struct admin *a)
{
    if (!a)
        return;
    if (a->lister) /* its listings answer requests that evhttp_free frees */
        pool_free(a->lister);
    if (a->http)
        evhttp_free(a->http);
    OPENSSL_cleanse(a->token_sha, sizeof(a->token_sha));
    free(a);
}

/* ---- replies ---- */

const char *http_param(struct http_req *r, const char *name)
{
    return evhttp_find_header(&r->params, name);
}

void http_reply(struct http_req *r, int code, const char *type, const char *body, size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    struct evbuffer *b = evbuffer_new();
    static const char *const reasons[][2] = {{"200", "OK"},
                                             {"400", "Bad Request"},
                                             {"401", "Unauthorized"},
                                             {"403", "Forbidden"},
                                             {"404", "Not Found"},
                                             {"405", "Method Not Allowed"},
                                             {"409", "Conflict"},
                                             {"500", "Internal Server Error"},
                                             {"503", "Service Unavailable"}};
    const char *reason = "Error";
    char c[8];

    snprintf(c, sizeof(c), "%d", code);
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (strcmp(reasons[i][0], c) == 0)
            reason = reasons[i][1];
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
    evhttp_add_header(h, "Content-Security-Policy",
                      "default-src 'none'; script-src 'self'; style-src 'self'; "
                      "connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
    if (b)
        evbuffer_add(b, body, len);
    evhttp_send_reply(r->req, code, reason, b);
    if (b)
        evbuffer_free(b);
}

void http_json(struct http_req *r, int code, const struct json *j)
{
    http_reply(r, code, "application/json", j->buf, j->len);
}

void http_error(struct http_req *r, int code, const char *text)
{
    struct json j;

    json_init(&j);
    json_obj_begin(&j);
    json_kstr(&j, "error", text);
    json_obj_end(&j);
    http_json(r, code, &j);
    json_free(&j);
}
