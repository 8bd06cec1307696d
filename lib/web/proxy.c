/* proxy.c - the client behind trusted reverse proxies: Forwarded (RFC 7239)
 * and X-Forwarded-For, honoured only when the connected peer is a
 * configured proxy, as a filter of the pipeline.
 *
 * Anyone can send these headers, so they mean something only when a proxy
 * we trust wrote (or appended to) them. The hops are walked from the
 * nearest one: the peer, if trusted, vouches for the last address in the
 * list; if that one is a trusted proxy too, it vouches for the one before,
 * and so on; the first hop we do not trust is the client. Everything left
 * of it is whatever the client chose to claim, and is ignored.
 *
 * The filter makes vg_request_client_addr report that client (through a
 * small hook in lib/model/request.c), so every later filter, middleware,
 * handler and the rate limiter see the same address. No Debian library
 * parses Forwarded (libmicrohttpd only splits header fields), hence the
 * small parser below; tests/fuzz/fuzz_forwarded.c fuzzes it. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <volga.h>

#include "model/request.h"
#include "web/proxy.h"

/* Hops remembered from the end of a header: a longer chain is cut at its
 * oldest end, where only claims of the client could be anyway. */
#define VG__PROXY_HOPS 64

typedef struct {
    int family;           /* AF_INET or AF_INET6 */
    unsigned char a[16];  /* network order; IPv4 in the first 4 bytes */
} vg__addr;

typedef struct {
    vg__addr net;
    unsigned bits;
} vg__cidr;

struct vg_proxy_trust {
    vg__cidr *nets;
    size_t n;
    bool frozen;
};

/* One hop of a forwarding header: the span of its address text, or NULL
 * for an element with none ("unknown", no for=, a quoted escape). */
typedef struct {
    const char *p;
    size_t n;
} vg__span;

typedef struct {
    vg__span hop[VG__PROXY_HOPS];
    size_t n; /* hops seen; the last VG__PROXY_HOPS are kept */
} vg__hops;

/* ---- Addresses ---- */

/* Parses an address as text: IPv4, IPv6, "[IPv6]" and, with a port
 * allowed, "IPv4:port" and "[IPv6]:port". IPv4-mapped IPv6 becomes IPv4,
 * so one client has one key whatever socket it came through. */
static bool vg__addr_parse(const char *s, size_t len, bool port_ok,
                           vg__addr *out)
{
    char buf[INET6_ADDRSTRLEN + 8];
    const char *end = s + len, *colon;
    size_t i;

    if (len == 0 || len >= sizeof buf)
        return false;
    if (*s == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            return false;
        if (close + 1 != end) {
            if (!port_ok || close[1] != ':' || close + 2 == end)
                return false;
            for (colon = close + 2; colon < end; colon++)
                if (*colon < '0' || *colon > '9')
                    return false;
        }
        s++;
        len = (size_t)(close - s);
        memcpy(buf, s, len);
        buf[len] = '\0';
        if (memchr(buf, '\0', len) != NULL ||
            inet_pton(AF_INET6, buf, out->a) != 1)
            return false;
        out->family = AF_INET6;
    } else {
        colon = memchr(s, ':', len);
        if (colon != NULL && memchr(colon + 1, ':', (size_t)(end - colon - 1))
                                 == NULL) {
            /* One colon: IPv4 with a port. */
            if (!port_ok || colon + 1 == end)
                return false;
            for (i = 1; colon + i < end; i++)
                if (colon[i] < '0' || colon[i] > '9')
                    return false;
            len = (size_t)(colon - s);
        }
        memcpy(buf, s, len);
        buf[len] = '\0';
        if (memchr(buf, '\0', len) != NULL)
            return false;
        if (inet_pton(AF_INET, buf, out->a) == 1)
            out->family = AF_INET;
        else if (inet_pton(AF_INET6, buf, out->a) == 1)
            out->family = AF_INET6;
        else
            return false;
    }
    if (out->family == AF_INET6 &&
        IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)out->a)) {
        memmove(out->a, out->a + 12, 4);
        out->family = AF_INET;
    }
    return true;
}

static void vg__addr_format(const vg__addr *a, char *out)
{
    if (inet_ntop(a->family, a->a, out, VG__PROXY_ADDR_MAX) == NULL)
        out[0] = '\0';
}

static bool vg__cidr_has(const vg__cidr *c, const vg__addr *a)
{
    unsigned full = c->bits / 8, rest = c->bits % 8;
    unsigned char mask;

    if (c->net.family != a->family || memcmp(c->net.a, a->a, full) != 0)
        return false;
    if (rest == 0)
        return true;
    mask = (unsigned char)(0xff << (8 - rest));
    return (c->net.a[full] & mask) == (a->a[full] & mask);
}

static bool vg__trusted(const vg_proxy_trust *t, const vg__addr *a)
{
    size_t i;

    for (i = 0; i < t->n; i++)
        if (vg__cidr_has(&t->nets[i], a))
            return true;
    return false;
}

/* ---- The headers ---- */

static void vg__hops_push(vg__hops *h, const char *p, size_t n)
{
    h->hop[h->n % VG__PROXY_HOPS].p = p;
    h->hop[h->n % VG__PROXY_HOPS].n = n;
    h->n++;
}

static bool vg__ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool vg__tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* X-Forwarded-For: addresses separated by commas, nearest last. */
static void vg__xff_split(const char *s, vg__hops *h)
{
    const char *p = s, *end;
    size_t n;

    for (;;) {
        while (vg__ows(*p))
            p++;
        end = p;
        while (*end != '\0' && *end != ',')
            end++;
        n = (size_t)(end - p);
        while (n > 0 && vg__ows(p[n - 1]))
            n--;
        vg__hops_push(h, n > 0 ? p : NULL, n);
        if (*end == '\0')
            return;
        p = end + 1;
    }
}

/* Forwarded: elements separated by commas, each pairs "name=value"
 * separated by semicolons, values tokens or quoted strings (RFC 7239
 * section 4). Records each element's for= value. False if the field is
 * not well-formed: then none of it can be believed. */
static bool vg__forwarded_split(const char *s, vg__hops *h)
{
    const char *p = s, *name, *val;
    size_t nlen, vlen;
    vg__span hop;
    bool have_for, escaped;

    for (;;) { /* one element */
        hop.p = NULL;
        hop.n = 0;
        have_for = false;
        while (vg__ows(*p))
            p++;
        if (*p == ',' || *p == '\0') { /* an empty list element */
            if (*p == '\0')
                return true;
            p++;
            continue;
        }
        for (;;) { /* one pair */
            while (vg__ows(*p))
                p++;
            name = p;
            while (vg__tchar((unsigned char)*p))
                p++;
            nlen = (size_t)(p - name);
            if (nlen == 0 || *p != '=')
                return false;
            p++;
            escaped = false;
            if (*p == '"') {
                val = ++p;
                while (*p != '"') {
                    if (*p == '\0' || (unsigned char)*p < 0x20 ||
                        (unsigned char)*p == 0x7f)
                        return false;
                    if (*p == '\\') {
                        escaped = true;
                        if (*++p == '\0')
                            return false;
                    }
                    p++;
                }
                vlen = (size_t)(p - val);
                p++;
            } else {
                val = p;
                while (vg__tchar((unsigned char)*p))
                    p++;
                vlen = (size_t)(p - val);
                if (vlen == 0)
                    return false;
            }
            if (nlen == 3 && strncasecmp(name, "for", 3) == 0) {
                if (have_for)
                    return false; /* a parameter at most once */
                have_for = true;
                /* No address needs an escape: one that has one is not. */
                if (!escaped) {
                    hop.p = val;
                    hop.n = vlen;
                }
            }
            while (vg__ows(*p))
                p++;
            if (*p == ';') {
                p++;
                continue;
            }
            if (*p == ',' || *p == '\0')
                break;
            return false;
        }
        vg__hops_push(h, hop.p, hop.n);
        if (*p == '\0')
            return true;
        p++;
    }
}

int vg__proxy_resolve(const vg_proxy_trust *t, const char *peer,
                      const char *forwarded, const char *xff, char *out)
{
    static vg__hops none; /* read-only: an empty chain */
    vg__hops hops;
    vg__addr cur, next;
    size_t i, kept;
    bool from_header = false;

    if (peer == NULL || !vg__addr_parse(peer, strlen(peer), false, &cur))
        return -EINVAL;
    hops = none;
    if (t != NULL && vg__trusted(t, &cur)) {
        if (forwarded != NULL) {
            if (!vg__forwarded_split(forwarded, &hops))
                hops.n = 0; /* malformed: believe none of it */
        } else if (xff != NULL) {
            vg__xff_split(xff, &hops);
        }
    }
    kept = hops.n < VG__PROXY_HOPS ? hops.n : VG__PROXY_HOPS;
    for (i = 0; i < kept; i++) {
        const vg__span *s = &hops.hop[(hops.n - 1 - i) % VG__PROXY_HOPS];
        if (s->p == NULL || !vg__addr_parse(s->p, s->n, true, &next))
            break; /* the chain is broken here: stop at what is known */
        cur = next;
        from_header = true;
        if (!vg__trusted(t, &cur))
            break; /* the first hop we do not trust: the client */
    }
    vg__addr_format(&cur, out);
    return from_header ? 1 : 0;
}

/* ---- Configuration ---- */

vg_proxy_trust *vg_proxy_trust_new(void)
{
    vg_proxy_trust *t = calloc(1, sizeof *t);

    if (t == NULL)
        errno = ENOMEM;
    return t;
}

void vg_proxy_trust_free(vg_proxy_trust *t)
{
    if (t == NULL)
        return;
    free(t->nets);
    free(t);
}

int vg_proxy_trust_add(vg_proxy_trust *t, const char *cidr)
{
    const char *slash;
    vg__cidr c;
    vg__cidr *grown;
    unsigned long bits;
    char *end;
    unsigned i;

    if (t == NULL || cidr == NULL)
        return -EINVAL;
    if (t->frozen)
        return -EBUSY;
    slash = strchr(cidr, '/');
    if (!vg__addr_parse(cidr, slash ? (size_t)(slash - cidr) : strlen(cidr),
                        false, &c.net))
        return -EINVAL;
    c.bits = c.net.family == AF_INET ? 32 : 128;
    if (slash != NULL) {
        if (slash[1] < '0' || slash[1] > '9')
            return -EINVAL;
        errno = 0;
        bits = strtoul(slash + 1, &end, 10);
        if (*end != '\0' || errno != 0 || bits > c.bits)
            return -EINVAL;
        /* "::ffff:10.0.0.0/104" became IPv4: its prefix counts from 96. */
        if (c.net.family == AF_INET && strchr(cidr, ':') != NULL) {
            if (bits < 96)
                return -EINVAL;
            bits -= 96;
        }
        c.bits = (unsigned)bits;
    }
    /* Host bits set below the prefix are a typo more often than not; the
     * network is what counts, so clear them. */
    for (i = c.bits; i < (c.net.family == AF_INET ? 32u : 128u); i++)
        c.net.a[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
    grown = realloc(t->nets, (t->n + 1) * sizeof *grown);
    if (grown == NULL)
        return -ENOMEM;
    t->nets = grown;
    t->nets[t->n++] = c;
    return 0;
}

/* ---- Per request (event thread) ---- */

/* The key of the peer's address in the request's data, set only when the
 * client came from a header. */
static const char vg__proxy_peer_key;

typedef struct {
    char *fwd, *xff;
    size_t fwd_len, xff_len;
    bool failed;
} vg__joined;

static void vg__join(char **buf, size_t *len, const char *value, bool *failed)
{
    size_t n = strlen(value);
    char *grown = realloc(*buf, *len + n + 3);

    if (grown == NULL) {
        *failed = true;
        return;
    }
    if (*len > 0) {
        memcpy(grown + *len, ", ", 2);
        *len += 2;
    }
    memcpy(grown + *len, value, n + 1);
    *len += n;
    *buf = grown;
}

static int vg__proxy_collect(const char *name, const char *value, void *arg)
{
    vg__joined *j = arg;

    if (strcasecmp(name, "Forwarded") == 0)
        vg__join(&j->fwd, &j->fwd_len, value, &j->failed);
    else if (strcasecmp(name, "X-Forwarded-For") == 0)
        vg__join(&j->xff, &j->xff_len, value, &j->failed);
    return 0;
}

static vg_result *vg__proxy_filter(vg_request *req, void *arg)
{
    const vg_proxy_trust *t = arg;
    unsigned char key[17];
    size_t n = vg__request_client_key(req, key);
    char client[VG__PROXY_ADDR_MAX];
    const char *peer;
    vg__addr a;
    vg__joined j = {0};
    char *copy;

    /* The peer as bytes, no text: a peer that is not a proxy (the common
     * case) costs one comparison per network. */
    if (n != 5 && n != 17)
        return NULL;
    a.family = key[0] == 4 ? AF_INET : AF_INET6;
    memcpy(a.a, key + 1, n - 1);
    if (!vg__trusted(t, &a))
        return NULL;
    peer = vg_request_client_addr(req);
    if (peer == NULL)
        return NULL;
    vg_request_headers(req, vg__proxy_collect, &j);
    if (!j.failed &&
        vg__proxy_resolve(t, peer, j.fwd, j.xff, client) == 1 &&
        (copy = strdup(peer)) != NULL &&
        vg_request_set_data(req, &vg__proxy_peer_key, copy, free) == 0)
        vg__request_set_client_addr(req, client);
    free(j.fwd);
    free(j.xff);
    return NULL;
}

int vg_app_use_proxy_trust(vg_app *app, vg_proxy_trust *t)
{
    int rc;

    if (t == NULL || t->n == 0)
        return -EINVAL;
    rc = vg_app_filter(app, vg__proxy_filter, t);
    if (rc == 0)
        t->frozen = true;
    return rc;
}

const char *vg_request_peer_addr(const vg_request *req)
{
    const char *peer = vg_request_data(req, &vg__proxy_peer_key);

    return peer != NULL ? peer : vg_request_client_addr(req);
}
