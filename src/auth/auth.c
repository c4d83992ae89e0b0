/* auth.c - users, senders and password checks (crypt on the pool, a keyed-hash cache) */
#include "auth/auth.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "auth/dovecot.h"
#include "auth/sasl.h"
#include "auth/senders.h"
#include "auth/users.h"
#include "core/clock.h"
#include "core/pool.h"
#include "core/xmalloc.h"

#define AUTH_DIGEST 32

struct auth_cached {
    unsigned char digest[AUTH_DIGEST];
    double expires;
};

struct auth {
    struct authconf conf;
    struct users *users;
    struct senders *senders;
    struct auth_cached *cache; /* direct-mapped: a slot per digest prefix, bounded */
    unsigned char key[AUTH_DIGEST];
};

struct auth_job {
    struct auth *a; /* NULL once cancelled */
    auth_done_fn done;
    void *arg;
    char *hash;    /* a copy: the users table may be replaced while we run */
    char *dovecot; /* or Dovecot's socket (a copy) */
    char login[SASL_FIELD_MAX + 1];
    char password[SASL_FIELD_MAX + 1];
    unsigned char digest[AUTH_DIGEST];
    enum auth_result result;
};

/* A hash for unknown logins, so they take as long as known ones (no user probing
 * by timing): SHA-512-crypt of a random string. */
static const char auth_dummy_hash[] =
    "$6$4pXb6E0lV4dYKqkS$yq7G2GPp2Q.x1mVr0fNqkZ8mE1P9XtfF4nC5s8cE1H6wS8o2n0v5J0ib5r0K3vB2yDv9m2bQO"
    "K0Qw1l3xR0y/";

struct auth *auth_new(const struct config *cfg, char *err, size_t errlen)
{
    struct auth *a = xcalloc(1, sizeof(*a));

    err[0] = '\0';
    authconf_read(cfg, &a->conf);
    if (!a->conf.users && !a->conf.dovecot)
        goto fail;
    if (a->conf.users && !(a->users = users_load(a->conf.users, err, errlen)))
        goto fail;
    if (a->conf.senders && !(a->senders = senders_load(a->conf.senders, err, errlen)))
        goto fail;
    if (RAND_bytes(a->key, sizeof(a->key)) != 1) {
        snprintf(err, errlen, "no randomness for the credential cache key");
        goto fail;
    }
    if (a->conf.cache_ttl > 0)
        a->cache = xcalloc(a->conf.cache_size, sizeof(*a->cache));
    return a;
fail:
    auth_free(a);
    return NULL;
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    users_free(a->users);
    senders_free(a->senders);
    if (a->cache)
        OPENSSL_cleanse(a->cache, a->conf.cache_size * sizeof(*a->cache));
    free(a->cache);
    OPENSSL_cleanse(a->key, sizeof(a->key));
    authconf_clear(&a->conf);
    free(a);
}

const struct authconf *auth_conf(const struct auth *a)
{
    return &a->conf;
}

const struct users *auth_users(const struct auth *a)
{
    return a->users;
}

/* auth_digest - HMAC-SHA-256(key, lower(login) NUL password): the cache's key */
static void auth_digest(const struct auth *a, const char *login, const char *password,
                        unsigned char out[AUTH_DIGEST])
{
    unsigned char buf[2 * (SASL_FIELD_MAX + 1)];
    size_t ll = strnlen(login, SASL_FIELD_MAX), pl = strnlen(password, SASL_FIELD_MAX);
    unsigned int olen = AUTH_DIGEST;

    for (size_t i = 0; i < ll; i++)
        buf[i] = (unsigned char)(login[i] >= 'A' && login[i] <= 'Z' ? login[i] + 32 : login[i]);
    buf[ll] = 0;
    memcpy(buf + ll + 1, password, pl);
    HMAC(EVP_sha256(), a->key, sizeof(a->key), buf, ll + 1 + pl, out, &olen);
    OPENSSL_cleanse(buf, sizeof(buf));
}

/* auth_slot - the cache slot of a digest */
static struct auth_cached *auth_slot(const struct auth *a, const unsigned char *d)
{
    uint32_t h = (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;

    return &a->cache[h % a->conf.cache_size];
}

/* auth_cache_hit - a verified, unexpired entry for this digest */
static int auth_cache_hit(const struct auth *a, const unsigned char *d)
{
    const struct auth_cached *c;

    if (!a->cache)
        return 0;
    c = auth_slot(a, d);
    return c->expires > clock_now() && CRYPTO_memcmp(c->digest, d, AUTH_DIGEST) == 0;
}

/* auth_work - in a pool thread: crypt and compare in constant time */
static void auth_work(void *arg)
{
    struct auth_job *j = arg;
    struct crypt_data *cd;
    const char *setting = j->hash ? j->hash : auth_dummy_hash, *out;
    size_t n = strlen(setting);

    if (j->dovecot) {
        j->result = dovecot_auth(j->dovecot, j->login, j->password);
        OPENSSL_cleanse(j->password, sizeof(j->password));
        return;
    }
    cd = xcalloc(1, sizeof(*cd));
    out = crypt_rn(j->password, setting, cd, sizeof(*cd));

    if (!out || out[0] == '*')
        j->result = j->hash ? AUTH_TEMPFAIL : AUTH_FAIL;
    else if (j->hash && strlen(out) == n && CRYPTO_memcmp(out, setting, n) == 0)
        j->result = AUTH_OK;
    else
        j->result = AUTH_FAIL;
    OPENSSL_cleanse(cd, sizeof(*cd));
    free(cd);
    OPENSSL_cleanse(j->password, sizeof(j->password));
}

static void auth_job_free(struct auth_job *j)
{
    OPENSSL_cleanse(j, sizeof(*j) - 0);
    free(j);
}

/* auth_work_done - on the loop: remember a success, tell the session */
static void auth_work_done(void *arg)
{
    struct auth_job *j = arg;
    char *hash = j->hash, *dovecot = j->dovecot;

    if (j->a) {
        if (j->result == AUTH_OK && j->a->cache) {
            struct auth_cached *c = auth_slot(j->a, j->digest);

            memcpy(c->digest, j->digest, AUTH_DIGEST);
            c->expires = clock_now() + j->a->conf.cache_ttl;
        }
        j->done(j->arg, j->result, 0);
    }
    free(hash);
    free(dovecot);
    auth_job_free(j);
}

struct auth_job *auth_verify(struct auth *a, struct pool *pool, const char *login,
                             const char *password, auth_done_fn done, void *arg)
{
    const struct users_entry *e = users_find(a->users, login);
    struct auth_job *j = xcalloc(1, sizeof(*j));

    auth_digest(a, login, password, j->digest);
    if (((e && e->hash[0] == '$') || a->conf.dovecot) && auth_cache_hit(a, j->digest)) {
        auth_job_free(j);
        done(arg, AUTH_OK, 1);
        return NULL;
    }
    j->a = a;
    j->done = done;
    j->arg = arg;
    /* "!" or "*" (a disabled account) is checked like an unknown login */
    j->hash = e && e->hash[0] == '$' ? xstrdup(e->hash) : NULL;
    j->dovecot = a->conf.dovecot ? xstrdup(a->conf.dovecot) : NULL;
    snprintf(j->login, sizeof(j->login), "%s", login);
    snprintf(j->password, sizeof(j->password), "%s", password);
    pool_submit(pool, auth_work, auth_work_done, j);
    return j;
}

void auth_cancel(struct auth_job *j)
{
    if (j)
        j->a = NULL;
}

int auth_sender_ok(const struct auth *a, const char *login, const char *addr)
{
    return senders_allowed(a->senders, login, a->conf.default_domain, addr);
}
