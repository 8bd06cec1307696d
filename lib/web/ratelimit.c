/* ratelimit.c - rate limiting per key (the client's address, a header, or
 * what a callback says) as a filter of the pipeline.
 *
 * The decision is made on the event thread, before any hand-off to a
 * worker, so a flood of refused requests costs a table look-up each and
 * never fills the worker queue. The algorithm is GCRA (the generic cell
 * rate algorithm, a token bucket kept as one timestamp): each key holds a
 * "theoretical arrival time" (TAT); a request is allowed when TAT minus
 * the burst tolerance is not in the future, and then moves TAT one
 * emission interval (window / limit) on. `limit` requests may come at
 * once, after which one more is allowed every interval.
 *
 * Memory is fixed when the limiter is made: a set-associative table of
 * 16-byte slots (a hash of the key and its TAT), VG__RL_WAYS slots per set,
 * one lock per shard of sets. A new key takes a free slot of its set or
 * evicts the one with the oldest TAT. An expired slot (TAT in the past)
 * is indistinguishable from a fresh key, so evicting it forgets nothing;
 * only when more keys are live at once than the table holds is the least
 * limited of a set forgotten, which errs toward letting a request through
 * rather than toward growing memory. Keys are hashed with a seed drawn
 * per limiter, so which keys share a set cannot be chosen from outside. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <volga.h>

#include "core/clock.h"
#include "model/request.h"
#include "pipeline/pipeline.h"
#include "web/ratelimit.h"

/* Slots per set: eviction looks at this many. */
#define VG__RL_WAYS 8
/* Locks: sets are spread over them so that event threads rarely meet. */
#define VG__RL_SHARDS 64
#define VG__RL_DEFAULT_KEYS 65536u
#define VG__RL_MAX_KEYS (1u << 26)
#define VG__NS 1000000000ull

typedef struct {
    uint64_t key; /* the key's seeded hash, 0: free */
    uint64_t tat; /* theoretical arrival time, ns on CLOCK_MONOTONIC */
} vg__rl_slot;

typedef struct {
    pthread_mutex_t lock;
    char pad[64 - sizeof(pthread_mutex_t) % 64]; /* one cache line each */
} vg__rl_shard;

typedef enum { VG__RL_BY_ADDR, VG__RL_BY_HEADER, VG__RL_BY_FN } vg__rl_by;

struct vg_ratelimit {
    unsigned limit;
    uint64_t window_ns;
    uint64_t interval_ns;  /* window / limit: one request's worth of time */
    uint64_t tolerance_ns; /* window - interval: how far TAT may run ahead */
    vg__rl_by by;
    char *header;
    vg_ratelimit_key_fn key_fn;
    void *key_arg;
    char *name;            /* the policy's name in the IETF headers */
    char policy[96];       /* RateLimit-Policy, made at attachment */
    bool headers_always;   /* RateLimit on allowed responses too */
    char *method, *route;  /* vg_map_ratelimit: only this route */
    bool frozen;
    uint64_t seed;
    size_t nsets;          /* a power of two */
    vg__rl_slot *slots;    /* nsets * VG__RL_WAYS */
    vg__rl_shard shards[VG__RL_SHARDS];
    atomic_ullong allowed, refused;
};

/* ---- The table ---- */

/* FNV-1a over the seed and the key, then a 64-bit finaliser (MurmurHash3's
 * fmix64) so that the low bits, which pick the set, depend on every byte.
 * Not cryptographic and need not be: the seed is secret and a collision
 * only makes two keys share a budget. */
static uint64_t vg__rl_hash(uint64_t seed, const char *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h != 0 ? h : 1; /* 0 marks a free slot */
}

static int vg__rl_alloc(vg_ratelimit *rl, size_t keys)
{
    size_t nsets = 1, need = (keys + VG__RL_WAYS - 1) / VG__RL_WAYS;
    vg__rl_slot *slots;

    while (nsets < need)
        nsets <<= 1;
    if (nsets < VG__RL_SHARDS)
        nsets = VG__RL_SHARDS;
    /* calloc: pages are only touched as keys arrive, and free slots are 0. */
    slots = calloc(nsets * VG__RL_WAYS, sizeof *slots);
    if (slots == NULL)
        return -ENOMEM;
    free(rl->slots);
    rl->slots = slots;
    rl->nsets = nsets;
    return 0;
}

static uint64_t vg__rl_ceil_s(uint64_t ns)
{
    return (ns + VG__NS - 1) / VG__NS;
}

int vg__ratelimit_take_at(vg_ratelimit *rl, const char *key, size_t len,
                          uint64_t now, vg_ratelimit_info *info)
{
    uint64_t h, tat, oldest = UINT64_MAX;
    size_t set, i, victim = 0;
    vg__rl_slot *s;
    vg__rl_shard *sh;
    bool found = false, ok;
    vg_ratelimit_info local;

    if (rl == NULL || key == NULL)
        return -EINVAL;
    if (info == NULL)
        info = &local;
    h = vg__rl_hash(rl->seed, key, len);
    set = (size_t)h & (rl->nsets - 1);
    s = rl->slots + set * VG__RL_WAYS;
    sh = &rl->shards[set % VG__RL_SHARDS];

    pthread_mutex_lock(&sh->lock);
    for (i = 0; i < VG__RL_WAYS; i++) {
        if (s[i].key == h) {
            victim = i;
            found = true;
            break;
        }
        if (s[i].tat < oldest) { /* a free slot has tat 0: taken first */
            oldest = s[i].tat;
            victim = i;
        }
    }
    tat = found ? s[victim].tat : 0;
    if (tat < now)
        tat = now;
    ok = tat - now <= rl->tolerance_ns;
    if (ok) {
        tat += rl->interval_ns;
        s[victim].key = h;
        s[victim].tat = tat;
    }
    pthread_mutex_unlock(&sh->lock);

    info->limit = rl->limit;
    info->window_ms = (unsigned)(rl->window_ns / 1000000u);
    info->reset_ms = (tat - now + 999999u) / 1000000u;
    if (ok) {
        info->remaining = (unsigned)((now + rl->window_ns - tat) /
                                     rl->interval_ns);
        info->retry_after_ms = 0;
        atomic_fetch_add_explicit(&rl->allowed, 1, memory_order_relaxed);
        return 0;
    }
    info->remaining = 0;
    info->retry_after_ms = (tat - rl->tolerance_ns - now + 999999u) / 1000000u;
    atomic_fetch_add_explicit(&rl->refused, 1, memory_order_relaxed);
    return -EAGAIN;
}

size_t vg__ratelimit_table_bytes(const vg_ratelimit *rl)
{
    return rl ? rl->nsets * VG__RL_WAYS * sizeof(vg__rl_slot) : 0;
}

int vg_ratelimit_take(vg_ratelimit *rl, const char *key, size_t len,
                      vg_ratelimit_info *info)
{
    return vg__ratelimit_take_at(rl, key, len, vg__clock_ns(), info);
}

/* ---- Configuration ---- */

vg_ratelimit *vg_ratelimit_new(unsigned limit, unsigned window_ms)
{
    vg_ratelimit *rl;
    size_t i;

    if (limit == 0 || window_ms == 0 ||
        (uint64_t)window_ms * 1000000u < limit) {
        errno = EINVAL;
        return NULL;
    }
    rl = calloc(1, sizeof *rl);
    if (rl == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    rl->limit = limit;
    rl->window_ns = (uint64_t)window_ms * 1000000u;
    rl->interval_ns = rl->window_ns / limit;
    rl->tolerance_ns = rl->window_ns - rl->interval_ns;
    rl->by = VG__RL_BY_ADDR;
    for (i = 0; i < VG__RL_SHARDS; i++)
        pthread_mutex_init(&rl->shards[i].lock, NULL);
    if (getrandom(&rl->seed, sizeof rl->seed, GRND_NONBLOCK) !=
        (ssize_t)sizeof rl->seed)
        rl->seed = vg__clock_ns() ^ (uint64_t)(uintptr_t)rl;
    rl->name = strdup("default");
    if (rl->name == NULL || vg__rl_alloc(rl, VG__RL_DEFAULT_KEYS) != 0) {
        vg_ratelimit_free(rl);
        errno = ENOMEM;
        return NULL;
    }
    return rl;
}

void vg_ratelimit_free(vg_ratelimit *rl)
{
    size_t i;

    if (rl == NULL)
        return;
    for (i = 0; i < VG__RL_SHARDS; i++)
        pthread_mutex_destroy(&rl->shards[i].lock);
    free(rl->slots);
    free(rl->header);
    free(rl->name);
    free(rl->method);
    free(rl->route);
    free(rl);
}

static int vg__rl_settable(const vg_ratelimit *rl)
{
    if (rl == NULL)
        return -EINVAL;
    return rl->frozen ? -EBUSY : 0;
}

int vg_ratelimit_set_capacity(vg_ratelimit *rl, size_t keys)
{
    int rc = vg__rl_settable(rl);

    if (rc != 0)
        return rc;
    if (keys == 0 || keys > VG__RL_MAX_KEYS)
        return -EINVAL;
    return vg__rl_alloc(rl, keys);
}

/* RFC 9110 tchar: what a header name is made of. */
static bool vg__rl_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || strchr("!#$%&'*+-.^_`|~", *s)))
            return false;
    return true;
}

int vg_ratelimit_set_key_header(vg_ratelimit *rl, const char *name)
{
    int rc = vg__rl_settable(rl);
    char *copy;

    if (rc != 0)
        return rc;
    if (name == NULL || !vg__rl_token(name))
        return -EINVAL;
    copy = strdup(name);
    if (copy == NULL)
        return -ENOMEM;
    free(rl->header);
    rl->header = copy;
    rl->by = VG__RL_BY_HEADER;
    return 0;
}

int vg_ratelimit_set_key_fn(vg_ratelimit *rl, vg_ratelimit_key_fn fn,
                            void *arg)
{
    int rc = vg__rl_settable(rl);

    if (rc != 0)
        return rc;
    if (fn == NULL)
        return -EINVAL;
    rl->key_fn = fn;
    rl->key_arg = arg;
    rl->by = VG__RL_BY_FN;
    return 0;
}

int vg_ratelimit_set_name(vg_ratelimit *rl, const char *name)
{
    int rc = vg__rl_settable(rl);
    char *copy;

    if (rc != 0)
        return rc;
    /* A structured-field token, kept short so the headers stay small. */
    if (name == NULL || strlen(name) > 32 || !vg__rl_token(name) ||
        strpbrk(name, "\"\\") != NULL)
        return -EINVAL;
    copy = strdup(name);
    if (copy == NULL)
        return -ENOMEM;
    free(rl->name);
    rl->name = copy;
    return 0;
}

int vg_ratelimit_set_headers(vg_ratelimit *rl, bool on_every_response)
{
    int rc = vg__rl_settable(rl);

    if (rc == 0)
        rl->headers_always = on_every_response;
    return rc;
}

void vg_ratelimit_counts(const vg_ratelimit *rl, unsigned long long *allowed,
                         unsigned long long *refused)
{
    vg_ratelimit *m = (vg_ratelimit *)rl; /* atomics only */

    if (allowed != NULL)
        *allowed = rl ? atomic_load_explicit(&m->allowed,
                                             memory_order_relaxed) : 0;
    if (refused != NULL)
        *refused = rl ? atomic_load_explicit(&m->refused,
                                             memory_order_relaxed) : 0;
}

/* ---- Per request (event thread) ---- */

/* The key of a request: borrowed from it, or the client's address as
 * bytes in `buf` (no text formatted: that is most of the hot path's cost
 * otherwise). A header's value and an address never collide: an address
 * key starts with a byte 4 or 6, which no header value can hold. NULL:
 * not limited. */
static const char *vg__rl_key(const vg_ratelimit *rl, vg_request *req,
                              unsigned char buf[17], size_t *len)
{
    const char *key;

    if (rl->by == VG__RL_BY_FN) {
        key = rl->key_fn(req, rl->key_arg);
        if (key != NULL)
            *len = strlen(key);
        return key;
    }
    if (rl->by == VG__RL_BY_HEADER) {
        key = vg_request_header(req, rl->header);
        if (key != NULL && *key != '\0') {
            *len = strlen(key);
            return key;
        }
        /* Without the header: the client's address. */
    }
    *len = vg__request_client_key(req, buf);
    return (const char *)buf;
}

/* Whether a vg_map_ratelimit limiter applies to this request. */
static bool vg__rl_applies(const vg_ratelimit *rl, vg_request *req)
{
    const char *m, *route;

    if (rl->route == NULL)
        return true;
    route = vg_request_route(req);
    if (route == NULL || strcmp(route, rl->route) != 0)
        return false;
    m = vg_request_method(req);
    return strcmp(m, rl->method) == 0 ||
           (strcmp(m, "HEAD") == 0 && strcmp(rl->method, "GET") == 0);
}

static void vg__rl_state(const vg_ratelimit *rl, const vg_ratelimit_info *in,
                         char *buf, size_t size)
{
    snprintf(buf, size, "\"%s\";r=%u;t=%llu", rl->name, in->remaining,
             (unsigned long long)vg__rl_ceil_s(in->reset_ms * 1000000ull));
}

static vg_result *vg__rl_filter(vg_request *req, void *arg)
{
    vg_ratelimit *rl = arg;
    vg_ratelimit_info in;
    unsigned char addr[17];
    const char *key;
    char state[96], retry[24];
    size_t len = 0;
    vg_result *res;

    if (!vg__rl_applies(rl, req))
        return NULL;
    key = vg__rl_key(rl, req, addr, &len);
    if (key == NULL)
        return NULL;
    if (vg_ratelimit_take(rl, key, len, &in) == 0) {
        if (rl->headers_always) {
            vg__rl_state(rl, &in, state, sizeof state);
            vg_request_add_response_header(req, "RateLimit-Policy",
                                           rl->policy);
            vg_request_add_response_header(req, "RateLimit", state);
        }
        return NULL;
    }
    /* Through the app's error handler, so a 429 can be a problem
     * document like every other error the library answers. */
    vg__rl_state(rl, &in, state, sizeof state);
    snprintf(retry, sizeof retry, "%llu",
             (unsigned long long)vg__rl_ceil_s(in.retry_after_ms * 1000000ull));
    res = vg__pipeline_error(req, 429, "too many requests");
    res = vg_result_set_header(res, "Retry-After", retry);
    res = vg_result_set_header(res, "RateLimit-Policy", rl->policy);
    return vg_result_set_header(res, "RateLimit", state);
}

/* ---- Attachment ---- */

static int vg__rl_freeze(vg_ratelimit *rl)
{
    if (rl == NULL)
        return -EINVAL;
    if (rl->frozen)
        return 0; /* one limiter may serve several places: one budget */
    snprintf(rl->policy, sizeof rl->policy, "\"%s\";q=%u;w=%llu", rl->name,
             rl->limit, (unsigned long long)vg__rl_ceil_s(rl->window_ns));
    return 0;
}

int vg_app_use_ratelimit(vg_app *app, vg_ratelimit *rl)
{
    int rc = vg__rl_freeze(rl);

    if (rc == 0 && rl->route != NULL)
        rc = -EINVAL; /* already bound to one route */
    if (rc == 0)
        rc = vg_app_filter(app, vg__rl_filter, rl);
    if (rc == 0)
        rl->frozen = true;
    return rc;
}

int vg_group_use_ratelimit(vg_group *g, vg_ratelimit *rl)
{
    int rc = vg__rl_freeze(rl);

    if (rc == 0 && rl->route != NULL)
        rc = -EINVAL;
    if (rc == 0)
        rc = vg_group_filter(g, vg__rl_filter, rl);
    if (rc == 0)
        rl->frozen = true;
    return rc;
}

int vg_map_ratelimit(vg_app *app, const char *method, const char *pattern,
                     vg_ratelimit *rl)
{
    int rc = vg__rl_freeze(rl);

    if (rc == 0 && (method == NULL || pattern == NULL || rl->frozen ||
                    !vg__rl_token(method)))
        rc = rl->frozen ? -EBUSY : -EINVAL;
    if (rc != 0)
        return rc;
    rl->method = strdup(method);
    rl->route = strdup(pattern);
    if (rl->method == NULL || rl->route == NULL) {
        free(rl->method);
        free(rl->route);
        rl->method = rl->route = NULL;
        return -ENOMEM;
    }
    rc = vg_app_filter(app, vg__rl_filter, rl);
    if (rc != 0) {
        free(rl->method);
        free(rl->route);
        rl->method = rl->route = NULL;
        return rc;
    }
    rl->frozen = true;
    return 0;
}
