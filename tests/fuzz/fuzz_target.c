/*
 * fuzz_target.c - libFuzzer target for a request's parsing helpers
 * (lib/model/request.c), without a server.
 *
 * Input layout:
 *
 *     TARGET "\n" K RECORD*K C L BODY
 *
 *  TARGET  the raw request-target as libmicrohttpd's URI callback would give
 *          it (cut at a NUL, which MHD never passes), fed to
 *          vg__request_set_uri and vg__request_parse_target with `url` = the
 *          path part decoded by MHD_http_unescape, as MHD does;
 *  K       number of query records (K % 9);
 *  RECORD  NLEN VLEN NAME VALUE: a query argument for vg__request_add_query,
 *          NLEN % 32 name bytes and VLEN % 32 value bytes (VLEN 0xff: a NULL
 *          value, i.e. "?name" with no '='); both may hold NUL bytes, as
 *          MHD's decoded arguments may;
 *  C, L    the chunk size (C % 64, 0 meaning one zero-length append first
 *          and then everything at once) and the body limit (L < 0x80: 1 MiB;
 *          else (L & 0x7f) * 8 bytes) for vg__request_append_body;
 *  BODY    the rest: the request body, then parsed by vg_request_json.
 *
 * What must hold:
 *  - parse_target returns 0 exactly when the target starts with '/' (or is
 *    absolute-form, "http://host" with no '%' in host, followed by nothing,
 *    a query or such a path) and its path has no '#' and no "%00" (so a
 *    "%00" in the path never gives 0), else -EINVAL; on 0 the segments are
 *    the decoded '/'-pieces of the raw path (one trailing empty piece
 *    dropped), none holding a NUL, nseg consistent with them, and the path
 *    is `url` (without an absolute-form's scheme and host);
 *  - parameters filled from a router match are the matched segments (and
 *    the joined rest of the path for {*rest});
 *  - add_query refuses a name or value holding a NUL with -EINVAL and keeps
 *    the others, the first value of a name winning;
 *  - the body is kept byte for byte up to the limit and dropped past it;
 *  - vg_request_json parses once and agrees with jansson on the same bytes.
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
#include <strings.h>

#include <microhttpd.h>

#include "model/request.h"
#include "core/router.h"

#include "fuzz_check.h"

/* A tiny input reader. */
typedef struct {
    const uint8_t *p;
    size_t left;
} reader;

static bool rd_byte(reader *r, uint8_t *out)
{
    if (r->left == 0)
        return false;
    *out = *r->p++;
    r->left--;
    return true;
}

/* Takes up to `n` bytes into an exactly sized, NUL-terminated heap copy,
 * so that ASan sees any read past the terminator. */
static char *rd_copy(reader *r, size_t n, size_t *got)
{
    char *s;
    if (n > r->left)
        n = r->left;
    s = malloc(n + 1);
    CHECK(s != NULL);
    memcpy(s, r->p, n);
    s[n] = '\0';
    r->p += n;
    r->left -= n;
    *got = n;
    return s;
}

static vg_result *handler(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return NULL;
}

/* A fixed router, so that vg__request_set_params sees real matches. */
static vg__router *router(void)
{
    static vg__router *r;
    static const char *const patterns[] = {
        "/{*rest}", "/u/{id}", "/u/{id}/f/{*path}", "/a/b/{c}", "/a/{x}/{y}",
        "/static/{*file}",
    };
    if (r == NULL) {
        r = vg__router_new();
        CHECK(r != NULL);
        for (size_t i = 0; i < sizeof patterns / sizeof *patterns; i++)
            CHECK(vg__router_add(r, "GET", patterns[i], handler, NULL) == 0);
    }
    return r;
}

static void check_target(vg_request *req, const char *raw)
{
    size_t path_len = strcspn(raw, "?");
    char *path = strndup(raw, path_len);
    char *url = strndup(raw, path_len);
    CHECK(path != NULL && url != NULL);
    MHD_http_unescape(url);

    /* Absolute-form (RFC 9112 3.2.2): an http or https scheme and a
     * non-empty authority (with no '%', which Host refuses), then what an
     * origin-form target would hold; nothing after the authority is "/". */
    size_t pre = 0;
    bool abs_pct = false;
    if (strncasecmp(raw, "http://", 7) == 0 || strncasecmp(raw, "https://", 8) == 0) {
        size_t skip = raw[4] == ':' ? 7 : 8, alen = strcspn(raw + skip, "/?#");
        if (alen > 0) {
            pre = skip + alen;
            abs_pct = memchr(raw + skip, '%', alen) != NULL;
        }
    }
    const char *rpath = path + pre, *rurl = url + pre;
    if (pre > 0 && rpath[0] == '\0')
        rpath = rurl = "/";
    size_t rlen = strlen(rpath);

    bool has_nul = strstr(path, "%00") != NULL;
    bool ok = rpath[0] == '/' && strchr(rpath, '#') == NULL && !has_nul && !abs_pct;

    CHECK(vg__request_set_uri(req, raw) == 0);
    CHECK(strcmp(req->raw_uri, raw) == 0);
    int rc = vg__request_parse_target(req, url);
    if (has_nul)
        CHECK(rc != 0);
    if (rc != (ok ? 0 : -EINVAL)) {
        fprintf(stderr, "target \"%s\": expected %d, got %d\n", raw,
                ok ? 0 : -EINVAL, rc);
        abort();
    }
    if (rc != 0)
        goto out;

    /* The reference split: '/'-pieces of the raw path after the leading
     * '/', each decoded; "/" has none; one trailing empty piece dropped. */
    size_t n = 0;
    char *pieces = strdup(rpath + 1);
    CHECK(pieces != NULL);
    CHECK(strcmp(vg_request_path(req), rurl) == 0);
    if (rlen > 1) {
        char *p = pieces;
        for (;;) {
            char *slash = strchr(p, '/');
            if (slash != NULL)
                *slash = '\0';
            size_t raw_len = strlen(p);
            size_t dec_len = MHD_http_unescape(p);
            CHECK(dec_len == strlen(p)); /* no NUL: ok said so */
            CHECK(dec_len <= raw_len);
            CHECK(n < req->nseg || (slash == NULL && p[0] == '\0' && n > 0));
            if (n < req->nseg) {
                CHECK(req->segs != NULL && req->segs[n] != NULL);
                if (strcmp(req->segs[n], p) != 0) {
                    fprintf(stderr, "segment %zu: expected \"%s\", got \"%s\"\n",
                            n, p, req->segs[n]);
                    abort();
                }
            }
            n++;
            if (slash == NULL)
                break;
            p = slash + 1;
        }
        /* Only one trailing empty segment is dropped. */
        CHECK(req->nseg == n || (req->nseg == n - 1 && n > 1));
    } else {
        CHECK(req->nseg == 0);
    }
    free(pieces);

    /* Rebuilding the path from the segments gives `url` back, give or
     * take the dropped trailing slash: no byte went missing. */
    size_t total = 1;
    for (size_t i = 0; i < req->nseg; i++)
        total += strlen(req->segs[i]) + (i > 0);
    size_t url_len = strlen(rurl);
    CHECK(total == url_len || total + 1 == url_len);

    /* Parameters from a real match. */
    vg__match m;
    vg__match_kind kind = vg__router_match(
        router(), "GET", (const char *const *)req->segs, req->nseg, &m);
    CHECK(kind == VG__MATCH_FOUND); /* "/{*rest}" takes anything */
    CHECK(vg__request_set_params(req, &m) == 0);
    for (size_t i = 0; i < m.nparams; i++) {
        const char *got = vg_request_param(req, m.params[i].name);
        CHECK(got != NULL);
        if (!m.params[i].rest) {
            CHECK(m.params[i].seg < req->nseg);
            CHECK(strcmp(got, req->segs[m.params[i].seg]) == 0);
            continue;
        }
        CHECK(m.params[i].seg <= req->nseg);
        size_t want = 0, pos = 0;
        for (size_t k = m.params[i].seg; k < req->nseg; k++)
            want += strlen(req->segs[k]) + (k > m.params[i].seg);
        CHECK(strlen(got) == want);
        for (size_t k = m.params[i].seg; k < req->nseg; k++) {
            size_t len = strlen(req->segs[k]);
            if (k > m.params[i].seg)
                CHECK(got[pos++] == '/');
            CHECK(memcmp(got + pos, req->segs[k], len) == 0);
            pos += len;
        }
    }
out:
    free(path);
    free(url);
}

typedef struct {
    char *name, *value; /* value NULL: "?name" */
    size_t nlen, vlen;
    bool added;
} query_rec;

static void check_query(vg_request *req, reader *rd)
{
    query_rec recs[8];
    uint8_t k = 0, nl = 0, vl = 0;
    size_t n = 0;

    rd_byte(rd, &k);
    k %= 9;
    while (n < k && rd_byte(rd, &nl) && rd_byte(rd, &vl)) {
        query_rec *q = &recs[n++];
        q->name = rd_copy(rd, nl % 32, &q->nlen);
        q->value = NULL;
        q->vlen = 0;
        if (vl != 0xff)
            q->value = rd_copy(rd, vl % 32, &q->vlen);
        bool nul = memchr(q->name, '\0', q->nlen) != NULL ||
                   (q->value != NULL && memchr(q->value, '\0', q->vlen) != NULL);
        int rc = vg__request_add_query(req, q->name, q->nlen, q->value, q->vlen);
        CHECK(rc == (nul ? -EINVAL : 0));
        q->added = rc == 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!recs[i].added)
            continue;
        const query_rec *first = &recs[i];
        for (size_t j = 0; j < i; j++)
            if (recs[j].added && strcmp(recs[j].name, recs[i].name) == 0) {
                first = &recs[j];
                break;
            }
        const char *got = vg_request_query(req, recs[i].name);
        CHECK(got != NULL);
        CHECK(strcmp(got, first->value ? first->value : "") == 0);
    }
    for (size_t i = 0; i < n; i++) {
        free(recs[i].name);
        free(recs[i].value);
    }
}

static void check_body(vg_request *req, reader *rd)
{
    uint8_t c = 0, l = 0;
    size_t limit, len;

    rd_byte(rd, &c);
    rd_byte(rd, &l);
    c %= 64;
    limit = l < 0x80 ? (size_t)1 << 20 : (size_t)(l & 0x7f) * 8;
    const char *body = (const char *)rd->p;
    size_t total = rd->left;

    if (c == 0) {
        CHECK(vg__request_append_body(req, "", 0, limit) == 0);
        CHECK(vg__request_append_body(req, body, total, limit) == 0);
    } else {
        for (size_t off = 0; off < total; off += c) {
            size_t n = total - off < c ? total - off : c;
            CHECK(vg__request_append_body(req, body + off, n, limit) == 0);
        }
    }
    CHECK(req->body_seen == total);
    const char *got = vg_request_body(req, &len);
    CHECK(got != NULL);
    if (total > limit) {
        CHECK(req->body_too_large);
        CHECK(len == 0 && got[0] == '\0');
    } else {
        CHECK(!req->body_too_large);
        CHECK(len == total);
        CHECK(memcmp(got, body, total) == 0);
        CHECK(got[len] == '\0');
    }

    json_t *j = vg_request_json(req);
    CHECK(vg_request_json(req) == j); /* parsed once */
    if (len == 0) {
        CHECK(j == NULL);
        return;
    }
    json_t *ref = json_loadb(got, len, JSON_DECODE_ANY, NULL);
    CHECK((j == NULL) == (ref == NULL));
    if (j != NULL) {
        CHECK(json_equal(j, ref));
        /* Answering with it serializes it again. */
        vg_result *res = vg_json(json_incref(j));
        CHECK(res != NULL);
        vg_result_free(res);
    }
    json_decref(ref);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t tlen = nl ? (size_t)(nl - data) : size;
    reader rd = {nl ? nl + 1 : data + size, nl ? size - tlen - 1 : 0};

    char *raw = malloc(tlen + 1);
    CHECK(raw != NULL);
    memcpy(raw, data, tlen);
    raw[tlen] = '\0'; /* a NUL inside cuts it, as MHD's C string would */

    vg_request *req = vg__request_new(NULL);
    CHECK(req != NULL);
    check_target(req, raw);
    CHECK(vg__request_add_header(req, "X-Fuzz-Target", raw) == 0);
    CHECK(strcmp(vg_request_header(req, "x-fuzz-target"), raw) == 0);
    check_query(req, &rd);
    check_body(req, &rd);
    vg__request_unref(req);
    free(raw);
    return 0;
}
