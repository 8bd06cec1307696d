/* compress.c - response compression as a middleware (vg_compress): gzip
 * through zlib, brotli and zstd when configure found them. It runs where the handler
 * runs, on a worker, after the handler has answered: the body is
 * compressed in one go into a new buffer. Inline routes (libmicrohttpd's
 * own thread, where nothing slow may run) are passed through untouched. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <stdint.h>
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
#include "model/stream.h"
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

/* Whether a whole body may be compressed at all: a 200-ish answer of a
 * compressible type, not encoded already, not a range (streams: see
 * vg__stream_eligible). */
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

/* ---- Streams: coded as they are written ---- */

/* One stream's encoder: the coding's state and the buffer its output
 * goes to until the stream copies it. */
typedef struct {
    vg__coding coding;
    z_stream z;
#ifdef HAVE_BROTLI
    BrotliEncoderState *br;
#endif
#ifdef HAVE_ZSTD
    ZSTD_CCtx *zs;
#endif
    char *out;
    size_t cap, used;
} vg__scoder;

static void vg__scoder_free(void *ctx)
{
    vg__scoder *c = ctx;

    if (c->coding == VG__CODING_GZIP)
        deflateEnd(&c->z);
#ifdef HAVE_BROTLI
    if (c->br != NULL)
        BrotliEncoderDestroyInstance(c->br);
#endif
#ifdef HAVE_ZSTD
    ZSTD_freeCCtx(c->zs);
#endif
    free(c->out);
    free(c);
}

/* Room for at least 4 KiB more output. */
static int vg__scoder_room(vg__scoder *c)
{
    size_t cap = c->cap ? c->cap : 16384;
    char *grown;

    while (cap - c->used < 4096)
        cap *= 2;
    if (cap == c->cap)
        return 0;
    grown = realloc(c->out, cap);
    if (grown == NULL)
        return -ENOMEM;
    c->out = grown;
    c->cap = cap;
    return 0;
}

static int vg__scoder_gzip(vg__scoder *c, const char *in, size_t len, int mode)
{
    int flush = mode == VG__CODE_MORE    ? Z_NO_FLUSH
                : mode == VG__CODE_FLUSH ? Z_SYNC_FLUSH
                                         : Z_FINISH;
    int rc;

    c->z.next_in = (Bytef *)(uintptr_t)in;
    c->z.avail_in = (uInt)len;
    for (;;) {
        if (vg__scoder_room(c) != 0)
            return -ENOMEM;
        c->z.next_out = (Bytef *)c->out + c->used;
        c->z.avail_out = (uInt)(c->cap - c->used);
        rc = deflate(&c->z, flush);
        c->used = c->cap - c->z.avail_out;
        if (rc == Z_STREAM_ERROR)
            return -EIO;
        if (flush == Z_FINISH ? rc == Z_STREAM_END
                              : c->z.avail_in == 0 && c->z.avail_out > 0)
            return 0;
    }
}

#ifdef HAVE_BROTLI
static int vg__scoder_brotli(vg__scoder *c, const char *in, size_t len, int mode)
{
    BrotliEncoderOperation op = mode == VG__CODE_MORE ? BROTLI_OPERATION_PROCESS
                                : mode == VG__CODE_FLUSH ? BROTLI_OPERATION_FLUSH
                                                         : BROTLI_OPERATION_FINISH;
    const uint8_t *next_in = (const uint8_t *)in;
    size_t avail_in = len, avail_out;
    uint8_t *next_out;

    for (;;) {
        if (vg__scoder_room(c) != 0)
            return -ENOMEM;
        next_out = (uint8_t *)c->out + c->used;
        avail_out = c->cap - c->used;
        if (!BrotliEncoderCompressStream(c->br, op, &avail_in, &next_in,
                                         &avail_out, &next_out, NULL))
            return -EIO;
        c->used = c->cap - avail_out;
        if (avail_in == 0 && !BrotliEncoderHasMoreOutput(c->br) &&
            (op != BROTLI_OPERATION_FINISH || BrotliEncoderIsFinished(c->br)))
            return 0;
    }
}
#endif

#ifdef HAVE_ZSTD
static int vg__scoder_zstd(vg__scoder *c, const char *in, size_t len, int mode)
{
    ZSTD_EndDirective op = mode == VG__CODE_MORE    ? ZSTD_e_continue
                           : mode == VG__CODE_FLUSH ? ZSTD_e_flush
                                                    : ZSTD_e_end;
    ZSTD_inBuffer ib = {in, len, 0};
    ZSTD_outBuffer ob;
    size_t left;

    for (;;) {
        if (vg__scoder_room(c) != 0)
            return -ENOMEM;
        ob.dst = c->out;
        ob.size = c->cap;
        ob.pos = c->used;
        left = ZSTD_compressStream2(c->zs, &ob, &ib, op);
        c->used = ob.pos;
        if (ZSTD_isError(left))
            return -EIO;
        if (ib.pos == ib.size && (op == ZSTD_e_continue || left == 0))
            return 0;
    }
}
#endif

static int vg__scoder_encode(void *ctx, const char *in, size_t len, int mode,
                             const char **out, size_t *outlen)
{
    vg__scoder *c = ctx;
    int rc;

    c->used = 0;
#ifdef HAVE_BROTLI
    if (c->coding == VG__CODING_BR)
        rc = vg__scoder_brotli(c, in, len, mode);
    else
#endif
#ifdef HAVE_ZSTD
    if (c->coding == VG__CODING_ZSTD)
        rc = vg__scoder_zstd(c, in, len, mode);
    else
#endif
        rc = vg__scoder_gzip(c, in, len, mode);
    *out = c->out;
    *outlen = c->used;
    return rc;
}

/* A stream's encoder for coding `coding`; NULL without memory. Streams
 * keep their state for as long as they last, so the windows are smaller
 * than for whole bodies: zlib's 32 KiB, brotli's 256 KiB, zstd's 1 MiB. */
static vg__scoder *vg__scoder_new(vg__coding coding, const vg_compress_options *o)
{
    vg__scoder *c = calloc(1, sizeof *c);

    if (c == NULL)
        return NULL;
    c->coding = coding;
#ifdef HAVE_BROTLI
    if (coding == VG__CODING_BR) {
        c->br = BrotliEncoderCreateInstance(NULL, NULL, NULL);
        if (c->br == NULL)
            goto fail;
        BrotliEncoderSetParameter(c->br, BROTLI_PARAM_QUALITY,
                                  (uint32_t)vg__clamp(o->brotli_quality, 1, 11, 4));
        BrotliEncoderSetParameter(c->br, BROTLI_PARAM_LGWIN, 18);
        return c;
    }
#endif
#ifdef HAVE_ZSTD
    if (coding == VG__CODING_ZSTD) {
        c->zs = ZSTD_createCCtx();
        if (c->zs == NULL ||
            ZSTD_isError(ZSTD_CCtx_setParameter(c->zs, ZSTD_c_compressionLevel,
                                                vg__clamp(o->zstd_level, 1, 19, 3))) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(c->zs, ZSTD_c_windowLog, 20)))
            goto fail;
        return c;
    }
#endif
    if (deflateInit2(&c->z, vg__clamp(o->gzip_level, 1, 9, 6), Z_DEFLATED,
                     15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(c);
        return NULL;
    }
    return c;
#if defined(HAVE_BROTLI) || defined(HAVE_ZSTD)
fail:
    c->coding = VG__CODING_IDENTITY; /* nothing of zlib's to end */
    vg__scoder_free(c);
    return NULL;
#endif
}

/* Whether a stream may be coded: a 200-ish answer of a compressible type
 * (event streams only when asked), not HEAD, not encoded already. */
static bool vg__stream_eligible(vg_request *req, const vg_result *res,
                                const vg_compress_options *o)
{
    unsigned st = res->status;
    const char *t = res->ctype;

    if (strcmp(vg_request_method(req), "HEAD") == 0)
        return false;
    if (st < 200 || st == 204 || st == 206 || st == 304)
        return false;
    if (vg_result_header(res, "Content-Encoding") != NULL)
        return false;
    if (t != NULL && strncasecmp(t, "text/event-stream", 17) == 0 &&
        (t[17] == '\0' || t[17] == ';' || t[17] == ' '))
        return o->sse;
    return vg__mime_compressible(t);
}

/* Puts an encoder on the result's stream (what the producer queued so far
 * included) and says so in its headers. If that fails the stream stays
 * identity, a right answer too. */
static vg_result *vg__compress_stream(vg_request *req, vg_result *res,
                                      const vg_compress_options *o)
{
    vg__stream_coder sc;
    vg__scoder *c;
    int coding;

    if (!vg__stream_eligible(req, res, o))
        return res;
    if (!vg__varies_on_encoding(res)) {
        res = vg_result_set_header(res, "Vary", "Accept-Encoding");
        if (res == NULL)
            return NULL;
    }
    coding = vg__negotiate(vg_request_header(req, "Accept-Encoding"));
    if (coding < 0) {
        vg_result_free(res);
        return vg_result_set_header(vg_status(406), "Vary", "Accept-Encoding");
    }
    if (coding == VG__CODING_IDENTITY)
        return res;
    c = vg__scoder_new((vg__coding)coding, o);
    if (c == NULL)
        return res; /* identity still answers */
    sc.encode = vg__scoder_encode;
    sc.free = vg__scoder_free;
    sc.ctx = c;
    if (vg__stream_set_coder(res->stream, &sc) != 0) {
        vg__scoder_free(c);
        return res;
    }
    /* From here the bytes are coded: a result that cannot say so is a 500
     * (vg_result_set_header frees it), never identity headers on them. */
    return vg_result_set_header(res, "Content-Encoding",
                                vg__coding_name((vg__coding)coding));
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

    if (res == NULL || vg_result_is_deferred(res) || req->inline_)
        return res;
    if (res->stream != NULL)
        return vg__compress_stream(req, res, o);
    if (!vg__eligible(req, res))
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
