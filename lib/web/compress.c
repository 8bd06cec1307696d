/* compress.c - response compression as a middleware (vg_compress): gzip
 * through zlib, brotli and zstd when configure found them. It runs where the handler
 * runs, on a worker, after the handler has answered: the body is
 * compressed in one go into a new buffer. Inline routes (libmicrohttpd's
 * own thread, where nothing slow may run) are passed through untouched. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zlib.h>
#ifdef HAVE_BROTLI
#include <brotli/encode.h>
#endif
#ifdef HAVE_ZSTD
#include <zstd.h>
#include <zstd_errors.h>
#endif

#include "model/request.h"
#include "model/result.h"
#include "web/mime.h"
#include "web/static.h"

#define VG__MIN_SIZE_DEFAULT 1024
#define VG__MAX_SIZE_DEFAULT (8u << 20)

typedef enum {
    VG__CODING_IDENTITY,
    VG__CODING_GZIP,
    VG__CODING_BR,
    VG__CODING_ZSTD
} vg__coding;

/* The codings this build answers with, in the order that wins a tie of
 * q-values: br compresses text smallest, zstd next and faster, gzip is
 * what every client takes. */
static const struct {
    const char *name;
    vg__coding coding;
} vg__codings[] = {
#ifdef HAVE_BROTLI
    {"br", VG__CODING_BR},
#endif
#ifdef HAVE_ZSTD
    {"zstd", VG__CODING_ZSTD},
#endif
    {"gzip", VG__CODING_GZIP},
};

static const char *vg__coding_name(vg__coding c)
{
    return c == VG__CODING_BR ? "br" : c == VG__CODING_ZSTD ? "zstd" : "gzip";
}

/* The coding to answer with, or -1 for 406 (nothing acceptable). */
static int vg__negotiate(const char *ae)
{
    int best = VG__CODING_IDENTITY, best_q = 0, id;
    size_t i;

    if (ae == NULL)
        return VG__CODING_IDENTITY; /* no header: any coding, identity best */
    for (i = 0; i < sizeof vg__codings / sizeof vg__codings[0]; i++) {
        int q = vg__accept_q(ae, vg__codings[i].name);
        if (q > best_q) { /* strictly: the earlier wins a tie */
            best = vg__codings[i].coding;
            best_q = q;
        }
    }
    if (best != VG__CODING_IDENTITY)
        return best;
    /* RFC 9110 12.5.3: identity stays acceptable unless "identity;q=0", or
     * "*;q=0" with no entry of its own, refuses it. */
    id = vg__accept_q(ae, "identity");
    return id == 0 ? -1 : VG__CODING_IDENTITY;
}

static int vg__gzip(const char *in, size_t len, int level, char **out,
                    size_t *out_len)
{
    z_stream z;
    uLong cap;
    int rc;

    memset(&z, 0, sizeof z);
    /* 15 + 16: a gzip wrapper, not a zlib one (what "gzip" means). */
    if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return -ENOMEM;
    cap = deflateBound(&z, (uLong)len);
    *out = malloc(cap);
    if (*out == NULL) {
        deflateEnd(&z);
        return -ENOMEM;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)*out;
    z.avail_out = (uInt)cap;
    rc = deflate(&z, Z_FINISH);
    *out_len = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(*out);
        return -EIO;
    }
    return 0;
}

#ifdef HAVE_BROTLI
static int vg__brotli(const char *in, size_t len, int quality, char **out,
                      size_t *out_len)
{
    size_t cap = BrotliEncoderMaxCompressedSize(len);

    if (cap == 0)
        return -EINVAL;
    *out = malloc(cap);
    if (*out == NULL)
        return -ENOMEM;
    *out_len = cap;
    if (!BrotliEncoderCompress(quality, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_TEXT,
                               len, (const uint8_t *)in, out_len,
                               (uint8_t *)*out)) {
        free(*out);
        return -EIO;
    }
    return 0;
}
#endif

#ifdef HAVE_ZSTD
static int vg__zstd(const char *in, size_t len, int level, char **out,
                    size_t *out_len)
{
    size_t cap = ZSTD_compressBound(len), n;

    *out = malloc(cap);
    if (*out == NULL)
        return -ENOMEM;
    n = ZSTD_compress(*out, cap, in, len, level);
    if (ZSTD_isError(n)) {
        free(*out);
        return ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation ? -ENOMEM
                                                                    : -EIO;
    }
    *out_len = n;
    return 0;
}
#endif

/* Reads a file body (a static file answered on a worker) into memory. */
static int vg__read_fd_body(vg_result *res, char **body, size_t *len)
{
    size_t got = 0, n = (size_t)res->fd_len;
    char *buf = malloc(n ? n : 1);

    if (buf == NULL)
        return -ENOMEM;
    while (got < n) {
        ssize_t r = pread(res->fd, buf + got, n - got,
                          (off_t)(res->fd_off + got));
        if (r <= 0) {
            free(buf);
            return r < 0 ? -errno : -EIO;
        }
        got += (size_t)r;
    }
    *body = buf;
    *len = n;
    return 0;
}

/* Whether the answer may be compressed at all: a 200-ish whole body of a
 * compressible type, not encoded already, not a range, not a stream. */
static bool vg__eligible(vg_request *req, const vg_result *res)
{
    unsigned st = res->status;

    if (strcmp(vg_request_method(req), "HEAD") == 0 || res->stream != NULL)
        return false;
    if (st < 200 || st == 204 || st == 206 || st == 304)
        return false;
    if (vg_result_header(res, "Content-Encoding") != NULL ||
        vg_result_header(res, "Content-Range") != NULL)
        return false;
    return vg__mime_compressible(res->ctype);
}

static size_t vg__body_size(const vg_result *res)
{
    if (res->fd >= 0)
        return (size_t)res->fd_len;
    return res->body_len; /* a problem document: not counted, left alone */
}

/* "abc" -> "abc-gzip": the compressed bytes are another representation
 * and need their own strong validator. Weak tags stay as they are. */
static int vg__suffix_etag(vg_result *res, const char *suffix)
{
    const char *et = vg_result_header(res, "ETag");
    size_t n;
    char *tagged;
    int rc;

    if (et == NULL || et[0] != '"' || (n = strlen(et)) < 2 || et[n - 1] != '"')
        return 0;
    tagged = malloc(n + strlen(suffix) + 2);
    if (tagged == NULL)
        return -ENOMEM;
    memcpy(tagged, et, n - 1);
    tagged[n - 1] = '-';
    strcpy(tagged + n, suffix);
    strcat(tagged, "\"");
    rc = vg__result_replace_header(res, "ETag", tagged);
    free(tagged);
    return rc;
}

/* Levels out of range are brought into it rather than refused: the
 * options struct has no error path of its own. */
static int vg__clamp(int v, int lo, int hi, int dflt)
{
    if (v == 0)
        return dflt;
    return v < lo ? lo : v > hi ? hi : v;
}

static int vg__compress_result(vg_result *res, vg__coding c,
                               const vg_compress_options *o)
{
    char *in = NULL, *out = NULL;
    size_t in_len, out_len = 0;
    bool from_fd = res->fd >= 0;
    int rc;

    in = res->body;
    in_len = res->body_len;
    if (from_fd && (rc = vg__read_fd_body(res, &in, &in_len)) != 0)
        return rc;
#ifdef HAVE_BROTLI
    if (c == VG__CODING_BR)
        rc = vg__brotli(in, in_len, vg__clamp(o->brotli_quality, 1, 11, 4),
                        &out, &out_len);
    else
#endif
#ifdef HAVE_ZSTD
    if (c == VG__CODING_ZSTD)
        rc = vg__zstd(in, in_len, vg__clamp(o->zstd_level, 1, 19, 3), &out,
                      &out_len);
    else
#endif
        rc = vg__gzip(in, in_len, vg__clamp(o->gzip_level, 1, 9, 6), &out,
                      &out_len);
    if (from_fd)
        free(in);
    if (rc != 0)
        return rc;
    if (out_len >= in_len) { /* incompressible after all: keep identity */
        free(out);
        return 0;
    }
    rc = vg__result_replace_header(res, "Content-Encoding", vg__coding_name(c));
    if (rc != 0) {
        free(out);
        return rc; /* nothing changed: identity still answers */
    }
    vg__result_set_body(res, out, out_len);
    return vg__suffix_etag(res, vg__coding_name(c));
}

/* Whether a Vary header already names Accept-Encoding (static files with
 * precompressed siblings set one). */
static bool vg__varies_on_encoding(const vg_result *res)
{
    size_t i;

    for (i = 0; i < res->nheaders; i++)
        if (strcasecmp(res->headers[i].name, "Vary") == 0 &&
            strcasestr(res->headers[i].value, "Accept-Encoding") != NULL)
            return true;
    return false;
}

vg_result *vg_compress(vg_request *req, vg_next *next, void *arg)
{
    static const vg_compress_options defaults;
    const vg_compress_options *o = arg ? arg : &defaults;
    size_t min = o->min_size ? o->min_size : VG__MIN_SIZE_DEFAULT;
    size_t max = o->max_size ? o->max_size : VG__MAX_SIZE_DEFAULT;
    vg_result *res = vg_next_run(next);
    size_t size;
    int c, rc;

    if (res == NULL || vg_result_is_deferred(res) || req->inline_ ||
        !vg__eligible(req, res))
        return res;
    size = vg__body_size(res);
    if (size < min || size > max || res->problem != NULL)
        return res;
    /* The answer depends on Accept-Encoding from here on, whichever coding
     * this client gets: caches must know. */
    if (!vg__varies_on_encoding(res)) {
        res = vg_result_set_header(res, "Vary", "Accept-Encoding");
        if (res == NULL)
            return NULL;
    }
    c = vg__negotiate(vg_request_header(req, "Accept-Encoding"));
    if (c < 0) {
        vg_result_free(res);
        return vg_result_set_header(vg_status(406), "Vary", "Accept-Encoding");
    }
    if (c == VG__CODING_IDENTITY)
        return res;
    rc = vg__compress_result(res, (vg__coding)c, o);
    if (rc != 0 && vg_result_header(res, "Content-Encoding") != NULL) {
        /* Compressed but its validator could not be set: a 500 beats a
         * cache holding the wrong bytes under the identity's ETag. */
        vg_result_free(res);
        return NULL;
    }
    return res; /* uncompressed is still a right answer */
}
