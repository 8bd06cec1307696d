/* request.c - one HTTP request as handlers see it: everything copied out of
 * libmicrohttpd into the request's own arena, plus its token and body. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <microhttpd.h>

#include "model/http_strict.h"
#include "model/request.h"
#include "model/form.h"
#include "model/upload.h"
#include "model/result.h"
#include "core/token.h"

/* Most requests fit their strings in one chunk of this size. */
#define VG__CHUNK_SIZE 2048

vg_request *vg__request_new(vg_app *app)
{
    vg_request *req = calloc(1, sizeof *req);

    if (req == NULL)
        return NULL;
    req->token = vg_token_new();
    if (req->token == NULL) {
        free(req);
        return NULL;
    }
    atomic_init(&req->refs, 1);
    pthread_mutex_init(&req->lock, NULL);
    req->app = app;
    req->watch_slot = -1;
    return req;
}

void vg__request_ref(vg_request *req)
{
    atomic_fetch_add_explicit(&req->refs, 1, memory_order_relaxed);
}

static void vg__request_free(vg_request *req)
{
    vg__chunk *c, *next;
    vg__datum *d;

    /* Values first: a free_fn may still read the request's strings. */
    for (d = req->data; d != NULL; d = d->next)
        if (d->free_fn != NULL)
            d->free_fn(d->value);
    for (c = req->chunks; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    if (req->engine != NULL)
        req->engine->release(req);
    json_decref(req->json);
    vg__form_free(req->form);
    vg__uploads_free(req->uploads);
    free(req->body);
    free(req->headers.items);
    free(req->query.items);
    free(req->params.items);
    free(req->resp_headers.items);
    free(req->peer_text);
    free(req->segs);
    vg_token_unref(req->token);
    pthread_mutex_destroy(&req->lock);
    free(req);
}

void vg__request_unref(vg_request *req)
{
    if (req != NULL &&
        atomic_fetch_sub_explicit(&req->refs, 1, memory_order_acq_rel) == 1)
        vg__request_free(req);
}

/* Bump allocation: strings are never freed one by one, only with the
 * request, so a request costs a handful of mallocs instead of dozens. */
static void *vg__request_alloc(vg_request *req, size_t n)
{
    vg__chunk *c = req->chunks;
    size_t cap;
    void *p;

    n = (n + 7) & ~(size_t)7;
    if (c == NULL || c->cap - c->used < n) {
        cap = n > VG__CHUNK_SIZE ? n : VG__CHUNK_SIZE;
        c = malloc(sizeof *c + cap);
        if (c == NULL)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = req->chunks;
        req->chunks = c;
    }
    p = c->data + c->used;
    c->used += n;
    return p;
}

char *vg__request_strndup(vg_request *req, const char *s, size_t len)
{
    char *copy = vg__request_alloc(req, len + 1);

    if (copy != NULL) {
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    return copy;
}

int vg__request_set_uri(vg_request *req, const char *uri)
{
    req->raw_uri = vg__request_strndup(req, uri, strlen(uri));
    return req->raw_uri ? 0 : -ENOMEM;
}

static int vg__pairs_add(vg_request *req, vg__pairs *p, const char *name,
                         size_t name_len, const char *value, size_t value_len)
{
    vg__pair pair;

    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        vg__pair *grown = realloc(p->items, cap * sizeof *grown);
        if (grown == NULL)
            return -ENOMEM;
        p->items = grown;
        p->cap = cap;
    }
    pair.name = vg__request_strndup(req, name, name_len);
    pair.value = vg__request_strndup(req, value, value_len);
    if (pair.name == NULL || pair.value == NULL)
        return -ENOMEM;
    p->items[p->n++] = pair;
    return 0;
}

/* Counts the segments of a raw path ("/" has none) to size the array. */
static size_t vg__count_segments(const char *path, size_t len)
{
    size_t i, n = 1;

    if (len <= 1)
        return 0;
    for (i = 1; i < len; i++)
        if (path[i] == '/')
            n++;
    return n;
}

/* Decodes one raw segment in place into the arena. A decoded length that
 * differs from the C-string length means a %00 hid a NUL in it. */
static int vg__decode_segment(vg_request *req, const char *raw, size_t len,
                              char **out)
{
    char *seg = vg__request_strndup(req, raw, len);
    size_t n;

    if (seg == NULL)
        return -ENOMEM;
    n = MHD_http_unescape(seg);
    if (strlen(seg) != n)
        return -EINVAL;
    *out = seg;
    return 0;
}

static int vg__split_path(vg_request *req, const char *raw, size_t len)
{
    size_t n = vg__count_segments(raw, len), i = 0, start = 1, end;
    int rc;

    if (n == 0)
        return 0;
    req->segs = malloc(n * sizeof *req->segs);
    if (req->segs == NULL)
        return -ENOMEM;
    while (i < n) {
        end = start;
        while (end < len && raw[end] != '/')
            end++;
        rc = vg__decode_segment(req, raw + start, end - start, &req->segs[i++]);
        if (rc != 0)
            return rc;
        start = end + 1;
    }
    /* One trailing slash is not significant (volga.h, "Routes"). */
    if (n > 1 && req->segs[n - 1][0] == '\0')
        n--;
    req->nseg = n;
    return 0;
}

int vg__request_parse_target(vg_request *req, const char *url)
{
    const char *raw = req->raw_uri, *q;
    vg__strict_absolute abs;
    size_t path_len;

    if (raw != NULL && strcmp(raw, "*") == 0 && req->method != NULL &&
        strcmp(req->method, "OPTIONS") == 0) {
        /* Asterisk-form (RFC 9112 3.2.4): about the server, no path. */
        req->asterisk = true;
        req->path = "*";
        return 0;
    }
    if (raw != NULL && vg__strict_absolute_form(raw, &abs)) {
        if (memchr(abs.authority, '%', abs.authority_len) != NULL)
            return -EINVAL;
        /* Absolute-form (RFC 9112 3.2.2): a server MUST accept it, route
         * by the path and take the host from the target. The decoded url
         * starts with the same scheme and authority (which holds no '%',
         * vg__strict_host). */
        req->authority = vg__request_strndup(req, abs.authority,
                                             abs.authority_len);
        if (req->authority == NULL)
            return -ENOMEM;
        url += (size_t)(abs.rest - raw);
        raw = abs.rest;
        if (raw[0] == '\0' || raw[0] == '?') {
            req->path = "/";
            return vg__split_path(req, "/", 1);
        }
    }
    if (raw == NULL || raw[0] != '/')
        return -EINVAL;
    q = strchr(raw, '?');
    path_len = q ? (size_t)(q - raw) : strlen(raw);
    /* A fragment is never sent by a well-behaved client; refuse it rather
     * than route on half a target. */
    if (memchr(raw, '#', path_len) != NULL)
        return -EINVAL;
    req->path = vg__request_strndup(req, url, strlen(url));
    if (req->path == NULL)
        return -ENOMEM;
    return vg__split_path(req, raw, path_len);
}

/* The pair already held under `name` (any case), or NULL. */
static vg__pair *vg__pairs_get(vg__pairs *p, const char *name)
{
    size_t i;

    for (i = 0; i < p->n; i++)
        if (strcasecmp(p->items[i].name, name) == 0)
            return &p->items[i];
    return NULL;
}

int vg__request_add_header(vg_request *req, const char *name, const char *value)
{
    vg__pair *prev;

    /* An absolute-form target's authority is the Host (RFC 9112 3.2.2);
     * the glue adds it once the fields are copied. */
    if (req->authority != NULL && strcasecmp(name, "Host") == 0 &&
        value != req->authority)
        return 0;
    /* Cookie fields sent apart (HTTP/2 gateways do, RFC 9113 8.2.3) are
     * one list: a lookup sees them joined with "; " (vg_request_header),
     * the walk over the fields each as sent. */
    if ((name[0] | 0x20) == 'c' && strcasecmp(name, "Cookie") == 0 &&
        (prev = vg__pairs_get(&req->headers, "Cookie")) != NULL) {
        const char *had = req->cookies ? req->cookies : prev->value;
        size_t a = strlen(had), b = strlen(value);
        char *joined = vg__request_alloc(req, a + 2 + b + 1);

        if (joined == NULL)
            return -ENOMEM;
        memcpy(joined, had, a);
        memcpy(joined + a, "; ", 2);
        memcpy(joined + a + 2, value, b + 1);
        req->cookies = joined;
    }
    return vg__pairs_add(req, &req->headers, name, strlen(name), value,
                         strlen(value));
}

int vg__request_add_query(vg_request *req, const char *name, size_t name_len,
                          const char *value, size_t value_len)
{
    if (value == NULL) {
        value = "";
        value_len = 0;
    }
    if (strlen(name) != name_len || strlen(value) != value_len)
        return -EINVAL;
    return vg__pairs_add(req, &req->query, name, name_len, value, value_len);
}

/* Joins segments from..nseg-1 with '/' for a {*rest} parameter. */
static const char *vg__join_rest(vg_request *req, size_t from, size_t *len)
{
    size_t i, total = 0;
    char *out, *p;

    for (i = from; i < req->nseg; i++)
        total += strlen(req->segs[i]) + 1;
    out = vg__request_alloc(req, total + 1);
    if (out == NULL)
        return NULL;
    p = out;
    for (i = from; i < req->nseg; i++) {
        size_t n = strlen(req->segs[i]);
        if (i > from)
            *p++ = '/';
        memcpy(p, req->segs[i], n);
        p += n;
    }
    *p = '\0';
    *len = (size_t)(p - out);
    return out;
}

int vg__request_set_params(vg_request *req, const vg__match *m)
{
    size_t i, len;
    const char *value;
    int rc;

    for (i = 0; i < m->nparams; i++) {
        const vg__param *p = &m->params[i];
        if (p->rest) {
            value = vg__join_rest(req, p->seg, &len);
            if (value == NULL)
                return -ENOMEM;
        } else {
            value = req->segs[p->seg];
            len = strlen(value);
        }
        rc = vg__pairs_add(req, &req->params, p->name, strlen(p->name), value,
                           len);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void vg__request_count_body(vg_request *req, size_t len, size_t limit)
{
    req->body_seen += len;
    if (req->body_seen > limit)
        req->body_too_large = true;
}

int vg__request_append_body(vg_request *req, const char *data, size_t len,
                            size_t limit)
{
    size_t need;

    req->body_seen += len;
    if (req->body_too_large)
        return 0;
    if (len > limit || req->body_len > limit - len) {
        /* Keep nothing of an oversized body: the answer will be 413. */
        req->body_too_large = true;
        free(req->body);
        req->body = NULL;
        req->body_len = req->body_cap = 0;
        return 0;
    }
    need = req->body_len + len + 1;
    if (need > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 1024;
        char *grown;
        while (cap < need)
            cap *= 2;
        grown = realloc(req->body, cap);
        if (grown == NULL)
            return -ENOMEM;
        req->body = grown;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
    return 0;
}

void vg__request_replace_body(vg_request *req, char *body, size_t len)
{
    free(req->body);
    req->body = body;
    req->body_len = len;
    req->body_cap = body != NULL ? len + 1 : 0;
    /* JSON parsed from the old bytes would describe another body. */
    json_decref(req->json);
    req->json = NULL;
    req->json_done = false;
}

/* ---- The public, read-only view handlers get. ---- */

static const char *vg__pairs_find(const vg__pairs *p, const char *name,
                                  bool nocase)
{
    size_t i;

    if (name == NULL)
        return NULL;
    for (i = 0; i < p->n; i++) {
        const char *n = p->items[i].name;
        /* Names that differ in their first letter, as most do, are told
         * apart without a call (equal letters stay equal once both have
         * bit 0x20 set, whatever their case). */
        if (nocase ? ((n[0] | 0x20) == (name[0] | 0x20) &&
                      strcasecmp(n, name) == 0)
                   : strcmp(n, name) == 0)
            return p->items[i].value;
    }
    return NULL;
}

const char *vg_request_method(const vg_request *req)
{
    return req ? req->method : NULL;
}

const char *vg_request_path(const vg_request *req)
{
    return req ? req->path : NULL;
}

const char *vg_request_param(const vg_request *req, const char *name)
{
    return req ? vg__pairs_find(&req->params, name, false) : NULL;
}

const char *vg_request_query(const vg_request *req, const char *name)
{
    return req ? vg__pairs_find(&req->query, name, false) : NULL;
}

const char *vg_request_header(const vg_request *req, const char *name)
{
    if (req != NULL && req->cookies != NULL && name != NULL &&
        (name[0] | 0x20) == 'c' && strcasecmp(name, "Cookie") == 0)
        return req->cookies;
    return req ? vg__pairs_find(&req->headers, name, true) : NULL;
}

const void *vg_request_body(const vg_request *req, size_t *len)
{
    if (len != NULL)
        *len = req && req->body ? req->body_len : 0;
    return req && req->body ? req->body : "";
}

json_t *vg_request_json(vg_request *req)
{
    if (req == NULL)
        return NULL;
    /* Parsed once: handlers may ask as often as they like. */
    if (!req->json_done) {
        req->json_done = true;
        if (req->body_len > 0)
            req->json = json_loadb(req->body, req->body_len,
                                   JSON_DECODE_ANY, NULL);
    }
    return req->json;
}

vg_token *vg_request_token(vg_request *req)
{
    return req ? req->token : NULL;
}

/* ---- What the pipeline and middleware read and attach. ---- */

int vg_request_headers(const vg_request *req,
                       int (*fn)(const char *name, const char *value,
                                 void *arg),
                       void *arg)
{
    size_t i;
    int rc;

    if (req == NULL || fn == NULL)
        return -EINVAL;
    for (i = 0; i < req->headers.n; i++) {
        rc = fn(req->headers.items[i].name, req->headers.items[i].value, arg);
        if (rc != 0)
            return rc;
    }
    return 0;
}

const char *vg_request_target(const vg_request *req)
{
    return req ? req->raw_uri : NULL;
}

const char *vg_request_route(const vg_request *req)
{
    return req ? req->route : NULL;
}

const char *vg_request_allow(const vg_request *req)
{
    return req ? req->allow : NULL;
}

void vg__request_set_peer(vg_request *req, const struct sockaddr *sa,
                          socklen_t len)
{
    if (sa == NULL || len == 0 || len > sizeof req->peer)
        return;
    memcpy(&req->peer, sa, len);
    req->peer_len = len;
}

/* The peer as text; an IPv4 client reached over an IPv6 socket shows as
 * the IPv4 address it is. NULL if unknown or no memory. */
static char *vg__peer_format(const struct sockaddr_storage *ss)
{
    char buf[INET6_ADDRSTRLEN];
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
    const void *addr;
    int family = ss->ss_family;

    if (family == AF_INET) {
        addr = &((const struct sockaddr_in *)ss)->sin_addr;
    } else if (family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
        family = AF_INET;
        addr = &in6->sin6_addr.s6_addr[12];
    } else if (family == AF_INET6) {
        addr = &in6->sin6_addr;
    } else {
        return NULL;
    }
    if (inet_ntop(family, addr, buf, sizeof buf) == NULL)
        return NULL;
    return strdup(buf);
}

int vg__request_set_client_addr(vg_request *req, const char *addr)
{
    char *copy = vg__request_strndup(req, addr, strlen(addr));

    if (copy == NULL)
        return -ENOMEM;
    pthread_mutex_lock(&req->lock);
    req->client_text = copy;
    pthread_mutex_unlock(&req->lock);
    return 0;
}

size_t vg__request_client_key(const vg_request *req, unsigned char out[17])
{
    vg_request *r = (vg_request *)req; /* the lock only */
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&req->peer;
    const char *text;

    pthread_mutex_lock(&r->lock);
    text = r->client_text;
    pthread_mutex_unlock(&r->lock);
    if (text != NULL) { /* canonical text from lib/web/proxy.c */
        out[0] = strchr(text, ':') ? 6 : 4;
        if (inet_pton(out[0] == 6 ? AF_INET6 : AF_INET, text, out + 1) != 1)
            return 0;
        return out[0] == 6 ? 17 : 5;
    }
    if (req->peer_len == 0)
        return 0;
    if (req->peer.ss_family == AF_INET) {
        out[0] = 4;
        memcpy(out + 1, &((const struct sockaddr_in *)&req->peer)->sin_addr, 4);
        return 5;
    }
    if (req->peer.ss_family != AF_INET6)
        return 0;
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
        out[0] = 4;
        memcpy(out + 1, &in6->sin6_addr.s6_addr[12], 4);
        return 5;
    }
    out[0] = 6;
    memcpy(out + 1, &in6->sin6_addr, 16);
    return 17;
}

const char *vg_request_client_addr(const vg_request *req)
{
    vg_request *r = (vg_request *)req; /* the lock and the cache only */
    const char *text;

    if (req == NULL || req->peer_len == 0)
        return NULL;
    /* Formatted on first use: most requests never ask. */
    pthread_mutex_lock(&r->lock);
    if (r->client_text != NULL) {
        pthread_mutex_unlock(&r->lock);
        return r->client_text;
    }
    if (r->peer_text == NULL)
        r->peer_text = vg__peer_format(&r->peer);
    text = r->peer_text;
    pthread_mutex_unlock(&r->lock);
    return text;
}

int vg_request_set_data(vg_request *req, const void *key, void *value,
                        void (*free_fn)(void *))
{
    vg__datum *d;

    if (req == NULL || key == NULL)
        return -EINVAL;
    for (d = req->data; d != NULL; d = d->next)
        if (d->key == key)
            break;
    if (d == NULL) {
        d = vg__request_alloc(req, sizeof *d);
        if (d == NULL) {
            if (free_fn != NULL)
                free_fn(value);
            return -ENOMEM;
        }
        d->key = key;
        d->next = req->data;
        req->data = d;
    } else if (d->free_fn != NULL && d->value != value) {
        d->free_fn(d->value);
    }
    d->value = value;
    d->free_fn = free_fn;
    return 0;
}

void *vg_request_data(const vg_request *req, const void *key)
{
    const vg__datum *d;

    if (req == NULL)
        return NULL;
    for (d = req->data; d != NULL; d = d->next)
        if (d->key == key)
            return d->value;
    return NULL;
}

int vg_request_add_response_header(vg_request *req, const char *name,
                                   const char *value)
{
    int rc;

    if (req == NULL || !vg__result_header_ok(name, value))
        return -EINVAL;
    pthread_mutex_lock(&req->lock);
    rc = vg__pairs_add(req, &req->resp_headers, name, strlen(name), value,
                       strlen(value));
    if (rc == 0)
        atomic_store_explicit(&req->nresp, req->resp_headers.n,
                              memory_order_release);
    pthread_mutex_unlock(&req->lock);
    return rc;
}

int vg__request_each_response_header(vg_request *req,
                                     int (*fn)(const char *name,
                                               const char *value, void *arg),
                                     void *arg)
{
    size_t i;
    int rc = 0;

    if (atomic_load_explicit(&req->nresp, memory_order_acquire) == 0)
        return 0;
    pthread_mutex_lock(&req->lock);
    for (i = 0; i < req->resp_headers.n && rc == 0; i++)
        rc = fn(req->resp_headers.items[i].name,
                req->resp_headers.items[i].value, arg);
    pthread_mutex_unlock(&req->lock);
    return rc;
}
