/* decompress.c - request bodies sent with a Content-Encoding, decoded
 * before the handler reads them (vg_decompress): gzip and deflate through
 * zlib, br and zstd when configure found brotli and libzstd.
 *
 * A middleware of its own rather than an option of vg_compress: it works
 * on the request, before the handler, where vg_compress works on the
 * answer after it, so the two sit at different places in a chain and an
 * app may want either alone (an upload API that takes gzip bodies and
 * answers small JSON, a site that compresses pages and takes no uploads).
 *
 * The body arrives on libmicrohttpd's thread as sent, bounded there by the
 * route's body limit; this file decodes it on the worker, where slow work
 * belongs, and holds the decoded bytes to the same limit as they come out,
 * so a body that inflates a thousandfold costs the limit, not the bomb. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>
#ifdef HAVE_BROTLI
#include <brotli/decode.h>
#endif
#ifdef HAVE_ZSTD
#include <zstd.h>
#include <zstd_errors.h>
#endif

#include "app.h"
#include "model/request.h"
#include "pipeline/limits.h"
#include "pipeline/pipeline.h"
#include "web/decompress.h"

/* The first output buffer: enough for most bodies in one go, small
 * enough that a bomb's first allocation is no gift. */
#define VG__SINK_START (16 * 1024)
/* zlib counts input in uInt: longer bodies are fed in pieces. */
#define VG__ZLIB_PIECE (1u << 30)

/* What this build decodes, as 415 answers announce it (RFC 9110 15.5.16). */
#ifdef HAVE_BROTLI
#define VG__ACCEPTED_BR ", br"
#else
#define VG__ACCEPTED_BR ""
#endif
#ifdef HAVE_ZSTD
#define VG__ACCEPTED_ZSTD ", zstd"
#else
#define VG__ACCEPTED_ZSTD ""
#endif
static const char vg__accepted[] =
    "gzip, deflate" VG__ACCEPTED_BR VG__ACCEPTED_ZSTD;

/* The largest zstd window a body may ask for: 8 MiB, what RFC 9659 3
 * requires of "zstd" in HTTP, instead of the library's 128 MiB. */
#define VG__ZSTD_WINDOW_LOG 23

/* ---- The bounded output buffer ---- */

typedef struct {
    char *buf;
    size_t len, cap;
    size_t limit; /* the most bytes the body may decode to */
    size_t hard;  /* limit + 1: the most ever held, to see the breach */
    size_t start; /* the first allocation */
} vg__sink;

static void vg__sink_init(vg__sink *s, size_t limit, size_t in_len)
{
    memset(s, 0, sizeof *s);
    s->limit = limit;
    s->hard = limit < SIZE_MAX ? limit + 1 : SIZE_MAX;
    /* Text compresses about fourfold: start there, within the bounds. */
    s->start = in_len < SIZE_MAX / 4 ? in_len * 4 : SIZE_MAX;
    if (s->start < VG__SINK_START)
        s->start = VG__SINK_START;
    if (s->start > s->hard)
        s->start = s->hard;
}

/* Makes room for more output: 0, -E2BIG once the output is past the
 * limit (it then holds limit + 1 bytes and never grows), -ENOMEM. */
static int vg__sink_room(vg__sink *s)
{
    size_t cap;
    char *grown;

    if (s->len > s->limit)
        return -E2BIG;
    if (s->cap > s->len)
        return 0;
    cap = s->cap == 0 ? s->start : s->cap <= s->hard / 2 ? s->cap * 2 : s->hard;
    grown = realloc(s->buf, cap);
    if (grown == NULL)
        return -ENOMEM;
    s->buf = grown;
    s->cap = cap;
    return 0;
}

/* The free space, in a decoder's unit. */
static size_t vg__sink_free(const vg__sink *s, size_t most)
{
    size_t n = s->cap - s->len;

    return n < most ? n : most;
}

/* Hands the output over NUL-terminated (room for the NUL is there: the
 * output is at most `limit` bytes and the buffer may hold limit + 1). */
static int vg__sink_finish(vg__sink *s, char **out, size_t *out_len)
{
    char *fit = realloc(s->buf, s->len + 1);

    if (fit == NULL) {
        free(s->buf);
        return -ENOMEM;
    }
    fit[s->len] = '\0';
    *out = fit;
    *out_len = s->len;
    return 0;
}

/* ---- zlib: gzip and deflate ---- */

/* Whether the data starts with a zlib header (RFC 1950 2.2): method 8 and
 * a check value. Raw deflate, which some clients send as "deflate", does
 * not pass it but in 1 case of 31 with method 8. */
static bool vg__zlib_header(const unsigned char *p, size_t len)
{
    return len >= 2 && (p[0] & 0x0f) == 8 && (p[0] >> 4) <= 7 &&
           ((unsigned)p[0] << 8 | p[1]) % 31 == 0;
}

static int vg__zlib_error(int rc)
{
    return rc == Z_MEM_ERROR ? -ENOMEM : -EBADMSG;
}

/* Inflates with `wbits` (zlib's choice of wrapper); `members`: gzip
 * members may follow one another (RFC 1952 2.2), decoded as one body. */
static int vg__inflate(const char *in, size_t len, int wbits, bool members,
                       vg__sink *s)
{
    z_stream z;
    size_t left = len;
    int rc, err = 0;

    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, wbits) != Z_OK)
        return -ENOMEM;
    z.next_in = (Bytef *)in;
    for (;;) {
        uInt room;

        if (z.avail_in == 0 && left > 0) {
            z.avail_in = left < VG__ZLIB_PIECE ? (uInt)left : VG__ZLIB_PIECE;
            left -= z.avail_in;
        }
        if ((err = vg__sink_room(s)) != 0)
            break;
        room = (uInt)vg__sink_free(s, UINT_MAX);
        z.next_out = (Bytef *)s->buf + s->len;
        z.avail_out = room;
        rc = inflate(&z, Z_NO_FLUSH);
        s->len += room - z.avail_out;
        if (s->len > s->limit) {
            err = -E2BIG;
            break;
        }
        if (rc == Z_STREAM_END) {
            if (z.avail_in == 0 && left == 0)
                break; /* the whole body, decoded */
            if (!members || inflateReset(&z) != Z_OK) {
                err = -EBADMSG; /* something after the end */
                break;
            }
            continue;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            err = vg__zlib_error(rc);
            break;
        }
        /* With room left and nothing more to give, the data stopped
         * before its end. */
        if (z.avail_in == 0 && left == 0 && z.avail_out > 0) {
            err = -EBADMSG;
            break;
        }
    }
    inflateEnd(&z);
    return err;
}

/* ---- brotli ---- */

#ifdef HAVE_BROTLI
static int vg__unbrotli(const char *in, size_t len, vg__sink *s)
{
    BrotliDecoderState *st = BrotliDecoderCreateInstance(NULL, NULL, NULL);
    const uint8_t *next_in = (const uint8_t *)in;
    size_t avail_in = len;
    int err = 0;

    if (st == NULL)
        return -ENOMEM;
    for (;;) {
        BrotliDecoderResult r;
        size_t avail_out;
        uint8_t *next_out;
        int code;

        if ((err = vg__sink_room(s)) != 0)
            break;
        avail_out = vg__sink_free(s, SIZE_MAX);
        next_out = (uint8_t *)s->buf + s->len;
        r = BrotliDecoderDecompressStream(st, &avail_in, &next_in, &avail_out,
                                          &next_out, NULL);
        s->len = (size_t)((char *)next_out - s->buf);
        if (s->len > s->limit) {
            err = -E2BIG;
            break;
        }
        if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT)
            continue;
        if (r == BROTLI_DECODER_RESULT_SUCCESS) {
            err = avail_in == 0 ? 0 : -EBADMSG; /* nothing may follow */
            break;
        }
        if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT) {
            err = -EBADMSG; /* it had all there is: truncated */
            break;
        }
        code = BrotliDecoderGetErrorCode(st);
        err = code <= BROTLI_DECODER_ERROR_ALLOC_CONTEXT_MODES &&
                      code >= BROTLI_DECODER_ERROR_ALLOC_BLOCK_TYPE_TREES
                  ? -ENOMEM
                  : -EBADMSG;
        break;
    }
    BrotliDecoderDestroyInstance(st);
    return err;
}
#endif

/* ---- zstd ---- */

#ifdef HAVE_ZSTD
static int vg__zstd_error(size_t r)
{
    return ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? -ENOMEM
                                                                : -EBADMSG;
}

/* Frames may follow one another (RFC 8878 3), decoded as one body. */
static int vg__unzstd(const char *in, size_t len, vg__sink *s)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    ZSTD_inBuffer ib = {in, len, 0};
    size_t r;
    int err = 0;

    if (d == NULL)
        return -ENOMEM;
    r = ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, VG__ZSTD_WINDOW_LOG);
    if (ZSTD_isError(r))
        err = vg__zstd_error(r);
    while (err == 0) {
        ZSTD_outBuffer ob;

        if ((err = vg__sink_room(s)) != 0)
            break;
        ob.dst = s->buf + s->len;
        ob.size = vg__sink_free(s, SIZE_MAX);
        ob.pos = 0;
        r = ZSTD_decompressStream(d, &ob, &ib);
        s->len += ob.pos;
        if (ZSTD_isError(r)) {
            err = vg__zstd_error(r);
            break;
        }
        if (s->len > s->limit) {
            err = -E2BIG;
            break;
        }
        if (r == 0 && ib.pos == ib.size)
            break; /* the last frame, whole and flushed */
        /* Room left and nothing more to give: the frame stopped short. */
        if (ib.pos == ib.size && ob.pos < ob.size)
            err = -EBADMSG;
    }
    ZSTD_freeDCtx(d);
    return err;
}
#endif

/* ---- What other files call ---- */

int vg__decode_coding_of(const char *name, size_t len)
{
    static const struct {
        const char *name;
        int coding;
    } names[] = {
        {"gzip", VG__DECODE_GZIP},
        {"x-gzip", VG__DECODE_GZIP}, /* RFC 9110 8.4.1.3 */
        {"deflate", VG__DECODE_DEFLATE},
#ifdef HAVE_BROTLI
        {"br", VG__DECODE_BR},
#endif
#ifdef HAVE_ZSTD
        {"zstd", VG__DECODE_ZSTD},
#endif
    };
    size_t i;

    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == len &&
            strncasecmp(names[i].name, name, len) == 0)
            return names[i].coding;
    return -1;
}

int vg__decode_body(vg__decode_coding coding, const char *in, size_t len,
                    size_t limit, char **out, size_t *out_len)
{
    vg__sink s;
    int rc;

    *out = NULL;
    *out_len = 0;
    vg__sink_init(&s, limit, len);
    switch (coding) {
    case VG__DECODE_GZIP:
        rc = vg__inflate(in, len, 15 + 16, true, &s);
        break;
    case VG__DECODE_DEFLATE:
        rc = vg__inflate(in, len,
                         vg__zlib_header((const unsigned char *)in, len) ? 15
                                                                          : -15,
                         false, &s);
        break;
#ifdef HAVE_BROTLI
    case VG__DECODE_BR:
        rc = vg__unbrotli(in, len, &s);
        break;
#endif
#ifdef HAVE_ZSTD
    case VG__DECODE_ZSTD:
        rc = vg__unzstd(in, len, &s);
        break;
#endif
    default:
        rc = -EINVAL;
        break;
    }
    if (rc != 0) {
        free(s.buf);
        return rc;
    }
    return vg__sink_finish(&s, out, out_len);
}

/* ---- The middleware ---- */

/* What the request's Content-Encoding fields say, all of them taken
 * together as one list (RFC 9110 5.3). */
typedef struct {
    int coding;   /* the last coding named */
    size_t count; /* codings named, identity aside */
    bool unknown; /* one this build does not decode */
} vg__ce_scan;

static bool vg__ows(char c)
{
    return c == ' ' || c == '\t';
}

static int vg__scan_field(const char *name, const char *value, void *arg)
{
    vg__ce_scan *scan = arg;
    const char *p = value;

    if (strcasecmp(name, "Content-Encoding") != 0)
        return 0;
    while (*p != '\0') {
        const char *end;
        size_t n;

        while (vg__ows(*p) || *p == ',')
            p++;
        for (end = p; *end != '\0' && *end != ','; end++)
            ;
        n = (size_t)(end - p);
        while (n > 0 && vg__ows(p[n - 1]))
            n--;
        if (n > 0 && !(n == 8 && strncasecmp(p, "identity", 8) == 0)) {
            int c = vg__decode_coding_of(p, n);
            scan->count++;
            if (c < 0)
                scan->unknown = true;
            else
                scan->coding = c;
        }
        p = end;
    }
    return 0;
}

/* Whether the media type of `ctype` is `type`, parameters aside. */
static bool vg__media_is(const char *ctype, const char *type)
{
    size_t n = strlen(type);

    return ctype != NULL && strncasecmp(ctype, type, n) == 0 &&
           (ctype[n] == '\0' || ctype[n] == ';' || vg__ows(ctype[n]));
}

/* Bodies that libmicrohttpd's thread consumed as they arrived: forms
 * are decoded there and an uploads route streams its files to disk, so
 * by the time a worker could inflate them, they have been read as sent. */
static bool vg__read_as_sent(const vg_request *req)
{
    const char *ctype = vg_request_header(req, "Content-Type");

    return (req->limits != NULL && req->limits->uploads == 1) ||
           vg__media_is(ctype, "application/x-www-form-urlencoded") ||
           vg__media_is(ctype, "multipart/form-data");
}

/* 415 naming what would have been accepted instead. */
static vg_result *vg__unsupported(vg_request *req, const char *accepted)
{
    return vg_result_set_header(
        vg__pipeline_error(req, 415, "unsupported content coding"),
        "Accept-Encoding", accepted);
}

vg_result *vg_decompress(vg_request *req, vg_next *next, void *arg)
{
    vg__ce_scan scan = {-1, 0, false};
    const char *body;
    size_t len, limit, out_len;
    char *out;
    int rc;

    (void)arg;
    vg_request_headers(req, vg__scan_field, &scan);
    if (scan.count == 0)
        return vg_next_run(next);
    /* One coding, or none: a list would need a buffer per stage. */
    if (scan.unknown || scan.count > 1)
        return vg__unsupported(req, vg__accepted);
    /* Inline routes run here on libmicrohttpd's thread: no decoding. */
    if (req->inline_ || vg__read_as_sent(req))
        return vg__unsupported(req, "identity");
    body = vg_request_body(req, &len);
    if (len == 0)
        return vg_next_run(next); /* nothing was encoded */
    limit = req->limits != NULL ? req->limits->body : req->app->body_limit;
    rc = vg__decode_body((vg__decode_coding)scan.coding, body, len, limit, &out,
                         &out_len);
    if (rc == -E2BIG)
        return vg__pipeline_error(req, 413, "request body too large");
    if (rc == -EBADMSG)
        return vg__pipeline_error(req, 400, "request body does not decode");
    if (rc != 0)
        return NULL; /* no memory: 500 */
    vg__request_replace_body(req, out, out_len);
    return vg_next_run(next);
}
