/*
 * fuzz_router.c - libFuzzer target for the route trie (lib/core/router.c).
 *
 * The input is text, one item per line ("\n"-separated):
 *
 *     METHOD PATTERN        a route to add (every line but the last)
 *     ...
 *     METHOD PATH           the request to match (the last line)
 *
 * A line without a space means "GET line". Bytes after a NUL in a line are
 * ignored (the router takes C strings). At most MAX_ROUTES routes are added.
 *
 * Each added route is also kept in a reference model written from the
 * contract in volga.h and router.h, independently of router.c: which
 * patterns and methods are valid, which routes have the same shape, which
 * routes match a path, and the documented precedence (at each position a
 * literal beats a {param}, which beats a {*rest}; a path that ends beats a
 * {*rest} that would take nothing; HEAD falls back to GET). Every answer of
 * vg__router_add, vg__router_set_timeout and vg__router_match is checked
 * against the model, so a wrong answer aborts just like a memory error
 * does. On top of that the structural invariants hold whatever the model
 * says: FOUND implies a handler and parameter segment indices below nseg,
 * NO_METHOD implies an Allow string, adding the same route twice is -EEXIST.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, strndup; lib/ is built with it too */
#endif
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "core/router.h"

#define MAX_ROUTES 32
#define MAX_SEGS 64
#define MAX_PATTERN_SEGS 4096

/* A failed check: say what and where, then abort so that libFuzzer keeps
 * the input as a crash. */
#include "fuzz_check.h"

/* ---- The reference model ---- */

enum { K_END = -1, K_LIT = 0, K_PARAM = 1, K_REST = 2 };

typedef struct {
    int kind;
    const char *text; /* literal text or parameter name, into `pattern` */
    size_t len;
} ref_seg;

typedef struct {
    char *method;
    char *pattern;
    bool valid;            /* by the model */
    bool added;            /* vg__router_add returned 0 */
    bool too_long;         /* more segments than the model holds */
    size_t nsegs;
    ref_seg segs[MAX_PATTERN_SEGS];
    size_t nparams;
    size_t param_pos[VG__MAX_PARAMS]; /* pattern position of each param */
    char *shape;           /* literals kept, params as {}, rest as {*} */
    char *renamed;         /* the same shape with other parameter names */
    long timeout;          /* what set_timeout gave it */
    bool inline_;
} ref_route;

static vg_result *handler(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return NULL;
}

static bool ref_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool ref_method_valid(const char *m)
{
    if (m[0] == '\0')
        return false;
    for (; *m != '\0'; m++)
        if (!ref_tchar((unsigned char)*m))
            return false;
    return true;
}

static bool ref_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_';
}

static bool ref_literal_char(unsigned char c)
{
    return c > 0x20 && c != 0x7f && c != '?' && c != '#' && c != '%' &&
           c != '{' && c != '}';
}

/* Parses `r->pattern` by the grammar in volga.h ("Routes") and router.h
 * (vg__router_add's -EINVAL list). */
static bool ref_parse(ref_route *r)
{
    const char *p = r->pattern;
    r->nsegs = 0;
    r->nparams = 0;
    if (p[0] != '/')
        return false;
    if (p[1] == '\0')
        return true; /* "/" has no segments */
    while (*p == '/') {
        const char *s = ++p;
        size_t len = strcspn(s, "/");
        p = s + len;
        if (len == 0)
            return false;
        if (r->nsegs == MAX_PATTERN_SEGS) {
            r->too_long = true; /* beyond the model: skipped */
            return false;
        }
        if (r->nsegs > 0 && r->segs[r->nsegs - 1].kind == K_REST)
            return false; /* {*rest} must be last */
        ref_seg seg;
        if (s[0] == '{') {
            if (len < 3 || s[len - 1] != '}')
                return false;
            seg.kind = K_PARAM;
            seg.text = s + 1;
            seg.len = len - 2;
            if (seg.text[0] == '*') {
                seg.kind = K_REST;
                seg.text++;
                seg.len--;
            }
            if (seg.len == 0)
                return false;
            for (size_t i = 0; i < seg.len; i++)
                if (!ref_name_char((unsigned char)seg.text[i]))
                    return false;
            if (r->nparams == VG__MAX_PARAMS)
                return false;
            for (size_t i = 0; i < r->nsegs; i++) {
                const ref_seg *o = &r->segs[i];
                if (o->kind != K_LIT && o->len == seg.len &&
                    memcmp(o->text, seg.text, seg.len) == 0)
                    return false; /* duplicate name */
            }
            r->param_pos[r->nparams++] = r->nsegs;
        } else {
            for (size_t i = 0; i < len; i++)
                if (!ref_literal_char((unsigned char)s[i]))
                    return false;
            seg.kind = K_LIT;
            seg.text = s;
            seg.len = len;
        }
        r->segs[r->nsegs++] = seg;
    }
    return true;
}

/* The shape (what makes two patterns equivalent) and a renamed pattern of
 * the same shape, for a valid route. */
static void ref_shapes(ref_route *r)
{
    size_t cap = strlen(r->pattern) + 16 * (r->nsegs + 1) + 2;
    char *shape = malloc(cap), *renamed = malloc(cap);
    size_t a = 0, b = 0, np = 0;
    CHECK(shape != NULL && renamed != NULL);
    for (size_t i = 0; i < r->nsegs; i++) {
        const ref_seg *s = &r->segs[i];
        shape[a++] = '/';
        renamed[b++] = '/';
        if (s->kind == K_LIT) {
            memcpy(shape + a, s->text, s->len);
            memcpy(renamed + b, s->text, s->len);
            a += s->len;
            b += s->len;
        } else {
            a += (size_t)sprintf(shape + a, "%s",
                                 s->kind == K_REST ? "{*}" : "{}");
            b += (size_t)sprintf(renamed + b, "{%sZ%zu}",
                                 s->kind == K_REST ? "*" : "", np++);
        }
    }
    if (r->nsegs == 0) {
        shape[a++] = '/';
        renamed[b++] = '/';
    }
    shape[a] = '\0';
    renamed[b] = '\0';
    r->shape = shape;
    r->renamed = renamed;
}

/* Whether route `r` matches the request segments, and its precedence key:
 * the kind at each position, K_END where a pattern without {*rest} ends
 * exactly at the end of the path. */
static bool ref_matches(const ref_route *r, const char *const *segs,
                        size_t nseg)
{
    bool rest = r->nsegs > 0 && r->segs[r->nsegs - 1].kind == K_REST;
    size_t fixed = rest ? r->nsegs - 1 : r->nsegs;
    if (rest ? nseg < fixed : nseg != fixed)
        return false;
    for (size_t i = 0; i < fixed; i++) {
        const ref_seg *s = &r->segs[i];
        if (s->kind == K_LIT) {
            if (strlen(segs[i]) != s->len ||
                memcmp(segs[i], s->text, s->len) != 0)
                return false;
        } else if (segs[i][0] == '\0') {
            return false;
        }
    }
    return true;
}

static int ref_key(const ref_route *r, size_t i)
{
    return i < r->nsegs ? r->segs[i].kind : K_END;
}

/* <0 if `a` takes precedence over `b` (both match the same path). */
static int ref_order(const ref_route *a, const ref_route *b)
{
    size_t n = (a->nsegs > b->nsegs ? a->nsegs : b->nsegs) + 1;
    for (size_t i = 0; i < n; i++) {
        int ka = ref_key(a, i), kb = ref_key(b, i);
        if (ka != kb)
            return ka < kb ? -1 : 1;
        if (ka == K_END)
            break;
    }
    return 0;
}

static bool same_shape(const ref_route *a, const ref_route *b)
{
    return strcmp(a->shape, b->shape) == 0;
}

/* The Allow string of a shape: its methods in the order mapped, HEAD right
 * after GET when GET is mapped and HEAD is not, and OPTIONS last unless it
 * is mapped (the library answers OPTIONS on every routed path). */
static char *ref_allow(const ref_route *routes, size_t n, const ref_route *at)
{
    bool has_head = false, has_options = false;
    size_t size = 16 + sizeof ", OPTIONS";
    for (size_t i = 0; i < n; i++) {
        if (!routes[i].added || !same_shape(&routes[i], at))
            continue;
        has_head |= strcmp(routes[i].method, "HEAD") == 0;
        has_options |= strcmp(routes[i].method, "OPTIONS") == 0;
        size += strlen(routes[i].method) + 2;
    }
    char *allow = malloc(size), *w = allow;
    CHECK(allow != NULL);
    *w = '\0';
    for (size_t i = 0; i < n; i++) {
        if (!routes[i].added || !same_shape(&routes[i], at))
            continue;
        w += sprintf(w, "%s%s", w == allow ? "" : ", ", routes[i].method);
        if (strcmp(routes[i].method, "GET") == 0 && !has_head)
            w += sprintf(w, ", HEAD");
    }
    if (!has_options)
        sprintf(w, "%sOPTIONS", w == allow ? "" : ", ");
    return allow;
}

/* ---- Input handling ---- */

/* Splits a line into a method and the rest; both NUL-terminated copies. */
static void split_line(const uint8_t *line, size_t len, char **method,
                       char **rest)
{
    const uint8_t *sp = memchr(line, ' ', len);
    size_t mlen = sp ? (size_t)(sp - line) : 3;
    const uint8_t *r = sp ? sp + 1 : line;
    size_t rlen = sp ? len - mlen - 1 : len;

    *method = malloc(mlen + 1);
    *rest = malloc(rlen + 1);
    CHECK(*method != NULL && *rest != NULL);
    if (sp != NULL)
        memcpy(*method, line, mlen);
    else
        memcpy(*method, "GET", 3);
    (*method)[mlen] = '\0';
    memcpy(*rest, r, rlen);
    (*rest)[rlen] = '\0';
}

/* Splits a request path the way request.c does (no segments for "/", one
 * trailing empty segment dropped) and percent-decodes each segment, so that
 * segments may hold a '/' ("%2F"); a decoded NUL cuts the segment short.
 * Returns the number of segments, at most MAX_SEGS. */
static size_t split_path(char *path, const char **segs)
{
    size_t n = 0;
    char *p = path[0] == '/' ? path + 1 : path;
    if (p[0] == '\0')
        return 0;
    while (n < MAX_SEGS) {
        char *slash = strchr(p, '/');
        segs[n++] = p;
        if (slash == NULL)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    if (n > 1 && segs[n - 1][0] == '\0')
        n--;
    for (size_t i = 0; i < n; i++)
        MHD_http_unescape((char *)segs[i]);
    return n;
}

/* Is `method` one of the ", "-separated tokens of `allow`? */
static bool allow_has(const char *allow, const char *method)
{
    size_t mlen = strlen(method);
    const char *p = allow;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        if (len == mlen && memcmp(p, method, mlen) == 0)
            return true;
        p += len;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return false;
}

static void check_match(const ref_route *routes, size_t nroutes,
                        const char *method, const char *const *segs,
                        size_t nseg, vg__match_kind kind, const vg__match *m)
{
    /* What the model expects: the best route for the method (HEAD falling
     * back to a GET of the same shape without HEAD), else the best route
     * for any method (405), else nothing (404). */
    const ref_route *best = NULL, *best_any = NULL;
    bool is_head = strcmp(method, "HEAD") == 0;
    for (size_t i = 0; i < nroutes; i++) {
        const ref_route *r = &routes[i];
        if (!r->added || !ref_matches(r, segs, nseg))
            continue;
        if (best_any == NULL || ref_order(r, best_any) < 0)
            best_any = r;
        bool serves = strcmp(r->method, method) == 0;
        if (!serves && is_head && strcmp(r->method, "GET") == 0) {
            serves = true;
            for (size_t j = 0; j < nroutes; j++)
                if (routes[j].added && same_shape(&routes[j], r) &&
                    strcmp(routes[j].method, "HEAD") == 0)
                    serves = false;
        }
        if (serves && (best == NULL || ref_order(r, best) < 0))
            best = r;
    }

    /* Structural invariants, whatever the model says. */
    CHECK(kind == VG__MATCH_FOUND || kind == VG__MATCH_NO_PATH ||
          kind == VG__MATCH_NO_METHOD);
    CHECK(m->nparams <= VG__MAX_PARAMS);
    if (kind == VG__MATCH_FOUND) {
        CHECK(m->fn == handler);
        CHECK(m->allow != NULL);
        size_t prev = 0;
        for (size_t i = 0; i < m->nparams; i++) {
            const vg__param *p = &m->params[i];
            CHECK(p->name != NULL && p->name[0] != '\0');
            if (p->rest) {
                CHECK(i == m->nparams - 1);
                CHECK(p->seg <= nseg);
            } else {
                CHECK(p->seg < nseg);
                CHECK(segs[p->seg][0] != '\0');
            }
            CHECK(i == 0 || p->seg > prev);
            prev = p->seg;
        }
    } else {
        CHECK(m->fn == NULL);
        CHECK(m->nparams == 0);
    }
    if (kind == VG__MATCH_NO_METHOD) {
        CHECK(m->allow != NULL && m->allow[0] != '\0');
        /* OPTIONS is listed though unmapped: the library answers it. */
        CHECK(!allow_has(m->allow, method) || strcmp(method, "OPTIONS") == 0);
    }
    if (kind == VG__MATCH_NO_PATH)
        CHECK(m->allow == NULL);

    /* Against the model. */
    if (best != NULL) {
        if (kind != VG__MATCH_FOUND || m->arg != (const void *)best) {
            fprintf(stderr, "expected route %s %s (kind %d), got kind %d\n",
                    best->method, best->pattern, (int)VG__MATCH_FOUND,
                    (int)kind);
            if (kind == VG__MATCH_FOUND)
                fprintf(stderr, "  got route %s %s\n",
                        ((const ref_route *)m->arg)->method,
                        ((const ref_route *)m->arg)->pattern);
            abort();
        }
        CHECK(m->nparams == best->nparams);
        for (size_t i = 0; i < best->nparams; i++) {
            const ref_seg *s = &best->segs[best->param_pos[i]];
            CHECK(m->params[i].seg == best->param_pos[i]);
            CHECK(m->params[i].rest == (s->kind == K_REST));
            CHECK(strlen(m->params[i].name) == s->len &&
                  memcmp(m->params[i].name, s->text, s->len) == 0);
        }
        CHECK(m->timeout_ms == best->timeout);
        CHECK(m->inline_ == best->inline_);
        char *allow = ref_allow(routes, nroutes, best);
        CHECK(strcmp(m->allow, allow) == 0);
        free(allow);
    } else if (best_any != NULL) {
        CHECK(kind == VG__MATCH_NO_METHOD);
        char *allow = ref_allow(routes, nroutes, best_any);
        if (strcmp(m->allow, allow) != 0) {
            fprintf(stderr, "Allow: expected \"%s\", got \"%s\"\n", allow,
                    m->allow);
            abort();
        }
        free(allow);
    } else {
        CHECK(kind == VG__MATCH_NO_PATH);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ref_route routes[MAX_ROUTES];
    const uint8_t *lines[MAX_ROUTES + 1];
    size_t lens[MAX_ROUTES + 1], nlines = 0, off = 0;

    /* The routes are the first lines (at most MAX_ROUTES), the request the
     * last line. */
    while (nlines < MAX_ROUTES + 1) {
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        size_t len = nl ? (size_t)(nl - (data + off)) : size - off;
        lines[nlines] = data + off;
        lens[nlines++] = len;
        if (nl == NULL)
            break;
        off += len + 1;
    }
    size_t nroutes = nlines - 1;

    vg__router *r = vg__router_new();
    CHECK(r != NULL);
    for (size_t i = 0; i < nroutes; i++) {
        ref_route *rt = &routes[i];
        /* Not a memset: the segment arrays are large and ref_parse fills
         * what it uses. */
        rt->added = rt->too_long = rt->inline_ = false;
        rt->shape = rt->renamed = NULL;
        rt->nsegs = rt->nparams = 0;
        split_line(lines[i], lens[i], &rt->method, &rt->pattern);
        rt->valid = ref_method_valid(rt->method) && ref_parse(rt);
        rt->timeout = -1;
        if (rt->too_long)
            continue;

        /* A NULL handler is always refused. */
        CHECK(vg__router_add(r, rt->method, rt->pattern, NULL, rt) == -EINVAL);

        int rc = vg__router_add(r, rt->method, rt->pattern, handler, rt);
        if (!rt->valid) {
            if (rc != -EINVAL) {
                fprintf(stderr, "\"%s\" \"%s\": model says invalid, got %d\n",
                        rt->method, rt->pattern, rc);
                abort();
            }
            continue;
        }
        ref_shapes(rt);
        bool dup = false;
        for (size_t j = 0; j < i; j++)
            if (routes[j].added && same_shape(&routes[j], rt) &&
                strcmp(routes[j].method, rt->method) == 0)
                dup = true;
        if (rc != (dup ? -EEXIST : 0)) {
            fprintf(stderr, "\"%s\" \"%s\": expected %d, got %d\n", rt->method,
                    rt->pattern, dup ? -EEXIST : 0, rc);
            abort();
        }
        if (rc != 0)
            continue;
        rt->added = true;

        /* The same route again, as written or renamed, is a duplicate. */
        CHECK(vg__router_add(r, rt->method, rt->pattern, handler, rt) ==
              -EEXIST);
        CHECK(vg__router_add(r, rt->method, rt->renamed, handler, rt) ==
              -EEXIST);
        /* Per-route settings find the route through any names. */
        rt->timeout = (long)i + 1;
        CHECK(vg__router_set_timeout(r, rt->method, rt->renamed, rt->timeout) ==
              0);
        rt->inline_ = (i & 1) != 0;
        CHECK(vg__router_set_inline(r, rt->method, rt->renamed, rt->inline_) ==
              0);
    }
    /* A method nothing was mapped for has no route to configure. */
    for (size_t i = 0; i < nroutes; i++) {
        const ref_route *none = NULL; /* the FUZZ-NONE route of that shape */
        if (!routes[i].added)
            continue;
        for (size_t j = 0; j < nroutes; j++)
            if (routes[j].added && same_shape(&routes[j], &routes[i]) &&
                strcmp(routes[j].method, "FUZZ-NONE") == 0)
                none = &routes[j];
        CHECK(vg__router_set_timeout(r, "FUZZ-NONE", routes[i].pattern, 5) ==
              (none ? 0 : -ENOENT));
        /* Put back what the model expects of that route. */
        if (none != NULL)
            CHECK(vg__router_set_timeout(r, "FUZZ-NONE", routes[i].pattern,
                                         none->timeout) == 0);
        break;
    }

    char *method, *path;
    const char *segs[MAX_SEGS];
    split_line(lines[nlines - 1], lens[nlines - 1], &method, &path);
    size_t nseg = split_path(path, segs);

    vg__match m;
    memset(&m, 0xa5, sizeof m); /* the matcher must set what it reports */
    vg__match_kind kind = vg__router_match(r, method, segs, nseg, &m);
    check_match(routes, nroutes, method, segs, nseg, kind, &m);
    /* HEAD exercises the GET fallback on every input. */
    if (strcmp(method, "HEAD") != 0) {
        memset(&m, 0xa5, sizeof m);
        kind = vg__router_match(r, "HEAD", segs, nseg, &m);
        check_match(routes, nroutes, "HEAD", segs, nseg, kind, &m);
    }
    /* Every added route matches a path made from its own pattern. */
    for (size_t i = 0; i < nroutes; i++) {
        const ref_route *rt = &routes[i];
        const char *own[MAX_PATTERN_SEGS];
        size_t n = 0;
        if (!rt->added)
            continue;
        for (size_t k = 0; k < rt->nsegs; k++) {
            const ref_seg *s = &rt->segs[k];
            if (s->kind == K_REST)
                break;
            own[n++] = s->kind == K_LIT ? strndup(s->text, s->len)
                                        : strdup("x");
            CHECK(own[n - 1] != NULL);
        }
        memset(&m, 0xa5, sizeof m);
        kind = vg__router_match(r, rt->method, own, n, &m);
        CHECK(kind == VG__MATCH_FOUND);
        check_match(routes, nroutes, rt->method, own, n, kind, &m);
        for (size_t k = 0; k < n; k++)
            free((char *)own[k]);
    }

    vg__router_free(r);
    free(method);
    free(path);
    for (size_t i = 0; i < nroutes; i++) {
        free(routes[i].method);
        free(routes[i].pattern);
        free(routes[i].shape);
        free(routes[i].renamed);
    }
    return 0;
}
