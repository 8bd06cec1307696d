/* test_compress_request.c - request bodies with a Content-Encoding decoded
 * by vg_decompress: round trips through real encoders (zlib, brotli,
 * zstd), the
 * decoded size held to the route's body limit (exact at N and N + 1; a zip
 * bomb answers 413 holding no more than the limit), 415 with the codings
 * accepted, 400 for corrupt data, forms and upload routes refused, and
 * every error through the error handler (problem documents here). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <volga.h>
#include "testutil.h"
#include "web/decompress.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#ifdef HAVE_BROTLI
#include <brotli/encode.h>
#endif
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif

#define LIMIT 4096 /* the /small route's body limit */

static vg_app *app;
static unsigned short port;

/* ---- Handlers ---- */

/* The body's length and CRC-32, so any byte wrong shows. */
static vg_result *h_sum(vg_request *req, void *arg)
{
    size_t len;
    const unsigned char *b = vg_request_body(req, &len);

    (void)arg;
    return vg_textf("len=%zu crc=%08lx", len,
                    (unsigned long)crc32(0, b, (uInt)len));
}

static vg_result *h_json(vg_request *req, void *arg)
{
    json_t *j = vg_request_json(req);

    (void)arg;
    if (j == NULL)
        return vg_status(422);
    return vg_textf("n=%lld", (long long)json_integer_value(json_object_get(j, "n")));
}

/* ---- Fixture ---- */

static void setup(void)
{
    vg_body_limits small = {.body = LIMIT};

    app = tu_app_new();
    ck_assert_int_eq(vg_app_use_problem_details(app), 0);
    ck_assert_int_eq(vg_app_use(app, vg_decompress, NULL), 0);
    ck_assert_int_eq(vg_map_post(app, "/sum", h_sum, NULL), 0);
    ck_assert_int_eq(vg_map_post(app, "/small", h_sum, NULL), 0);
    ck_assert_int_eq(vg_map_body_limits(app, "POST", "/small", &small), 0);
    ck_assert_int_eq(vg_map_post(app, "/json", h_json, NULL), 0);
    ck_assert_int_eq(vg_map_post(app, "/inline", h_sum, NULL), 0);
    ck_assert_int_eq(vg_map_inline(app, "POST", "/inline", true), 0);
    ck_assert_int_eq(vg_map_post(app, "/up", h_sum, NULL), 0);
    ck_assert_int_eq(vg_map_uploads(app, "POST", "/up", "/tmp"), 0);
    tu_start(app);
    port = vg_app_port(app);
}

static void teardown(void)
{
    vg_app_free(app);
    app = NULL;
}

/* ---- Encoders ---- */

/* zlib's deflate with window bits `wbits`: 15 + 16 gzip, 15 zlib, -15 raw. */
static char *zenc(const void *in, size_t len, int wbits, size_t *out_len)
{
    z_stream z;
    uLong cap;
    char *out;

    memset(&z, 0, sizeof z);
    ck_assert_int_eq(deflateInit2(&z, 9, Z_DEFLATED, wbits, 8,
                                  Z_DEFAULT_STRATEGY), Z_OK);
    cap = deflateBound(&z, (uLong)len);
    out = malloc(cap);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = z.total_out;
    deflateEnd(&z);
    return out;
}

static char *gz(const void *in, size_t len, size_t *out_len)
{
    return zenc(in, len, 15 + 16, out_len);
}

#ifdef HAVE_BROTLI
static char *br(const void *in, size_t len, size_t *out_len)
{
    size_t cap = BrotliEncoderMaxCompressedSize(len);
    char *out = malloc(cap);

    *out_len = cap;
    ck_assert(BrotliEncoderCompress(9, 22, BROTLI_MODE_GENERIC, len,
                                    (const uint8_t *)in, out_len,
                                    (uint8_t *)out));
    return out;
}
#endif

#ifdef HAVE_ZSTD
static char *zs(const void *in, size_t len, size_t *out_len)
{
    size_t cap = ZSTD_compressBound(len);
    char *out = malloc(cap);

    *out_len = ZSTD_compress(out, cap, in, len, 3);
    ck_assert(!ZSTD_isError(*out_len));
    return out;
}
#endif

/* Varied text that still compresses: every byte value shows up. */
static char *sample(size_t len)
{
    char *p = malloc(len + 1);
    size_t i;

    for (i = 0; i < len; i++)
        p[i] = (char)((i * 7 + i / 13) & 0xff);
    p[len] = '\0';
    return p;
}

/* ---- Helpers ---- */

static tu_response post(const char *path, const char *ce, const char *ctype,
                        const char *body, size_t len)
{
    char h1[128], h2[128];
    const char *hs[3] = {NULL, NULL, NULL};
    int i = 0;

    if (ce != NULL) {
        snprintf(h1, sizeof h1, "Content-Encoding: %s", ce);
        hs[i++] = h1;
    }
    snprintf(h2, sizeof h2, "Content-Type: %s",
             ctype ? ctype : "application/octet-stream");
    hs[i] = h2;
    return tu_request(port, "POST", path, body, len, hs);
}

static void expect_sum(const tu_response *r, const char *plain, size_t len)
{
    char want[64];

    snprintf(want, sizeof want, "len=%zu crc=%08lx", len,
             (unsigned long)crc32(0, (const Bytef *)plain, (uInt)len));
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(r->body, want);
}

/* Asserts a problem document of `status`, as the error handler makes it. */
static void expect_problem(const tu_response *r, long status)
{
    char *ct = tu_header(r, "Content-Type");

    ck_assert_int_eq(r->status, status);
    ck_assert_ptr_nonnull(ct);
    ck_assert_str_eq(ct, "application/problem+json");
    free(ct);
}

/* ---- Tests ---- */

START_TEST(test_gzip_round_trip)
{
    char *plain = sample(200000), *enc;
    size_t n;
    tu_response r;

    enc = gz(plain, 200000, &n);
    ck_assert_uint_lt(n, 200000);
    r = post("/sum", "gzip", NULL, enc, n);
    expect_sum(&r, plain, 200000);
    tu_response_free(&r);
    r = post("/sum", "X-GZIP", NULL, enc, n); /* RFC 9110 8.4.1.3 */
    expect_sum(&r, plain, 200000);
    tu_response_free(&r);
    free(enc), free(plain);
}
END_TEST

START_TEST(test_deflate_zlib_and_raw_round_trip)
{
    char *plain = sample(50000), *enc;
    size_t n;
    tu_response r;

    enc = zenc(plain, 50000, 15, &n);
    r = post("/sum", "deflate", NULL, enc, n);
    expect_sum(&r, plain, 50000);
    tu_response_free(&r);
    free(enc);
    enc = zenc(plain, 50000, -15, &n); /* what some clients mean by it */
    r = post("/sum", "Deflate", NULL, enc, n);
    expect_sum(&r, plain, 50000);
    tu_response_free(&r);
    free(enc), free(plain);
}
END_TEST

START_TEST(test_brotli_round_trip)
{
#ifdef HAVE_BROTLI
    char *plain = sample(120000), *enc;
    size_t n;
    tu_response r;

    enc = br(plain, 120000, &n);
    r = post("/sum", "br", NULL, enc, n);
    expect_sum(&r, plain, 120000);
    tu_response_free(&r);
    free(enc), free(plain);
#else
    tu_response r = post("/sum", "br", NULL, "x", 1);
    fprintf(stderr, "test_compress_request: built without brotli: br is 415\n");
    expect_problem(&r, 415);
    tu_response_free(&r);
#endif
}
END_TEST

START_TEST(test_zstd_round_trip)
{
#ifdef HAVE_ZSTD
    char *plain = sample(150000), *a, *b, *both;
    size_t na, nb;
    tu_response r;

    a = zs(plain, 100000, &na);
    r = post("/sum", "zstd", NULL, a, na);
    expect_sum(&r, plain, 100000);
    tu_response_free(&r);
    /* Two frames are one body (RFC 8878 3). */
    b = zs(plain + 100000, 50000, &nb);
    both = malloc(na + nb);
    memcpy(both, a, na);
    memcpy(both + na, b, nb);
    r = post("/sum", "ZSTD", NULL, both, na + nb);
    expect_sum(&r, plain, 150000);
    tu_response_free(&r);
    r = post("/sum", "zstd", NULL, a, na - 3); /* truncated */
    expect_problem(&r, 400);
    tu_response_free(&r);
    r = post("/sum", "zstd", NULL, plain, 1000); /* not zstd */
    expect_problem(&r, 400);
    tu_response_free(&r);
    free(a), free(b), free(both), free(plain);
#else
    tu_response r = post("/sum", "zstd", NULL, "x", 1);
    fprintf(stderr, "test_compress_request: built without zstd: zstd is 415\n");
    expect_problem(&r, 415);
    tu_response_free(&r);
#endif
}
END_TEST

/* A zstd frame that asks for a 128 MiB window is refused (RFC 9659 allows
 * 8 MiB): a small body must not make the decoder reserve that much. */
START_TEST(test_zstd_window_over_8_mib_400)
{
#ifdef HAVE_ZSTD
    ZSTD_CCtx *c = ZSTD_createCCtx();
    char *plain = sample(2000), out[4096], *res;
    size_t n, got;

    ck_assert_ptr_nonnull(c);
    ck_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, 27)));
    /* Without a content size in the frame header the decoder must trust
     * the declared window. */
    ck_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0)));
    {
        /* Fed in two calls, so that zstd cannot shrink the window to
         * the input's size. */
        ZSTD_inBuffer ib = {plain, 2000, 0}, none = {NULL, 0, 0};
        ZSTD_outBuffer ob = {out, sizeof out, 0};
        ck_assert(!ZSTD_isError(ZSTD_compressStream2(c, &ob, &ib, ZSTD_e_continue)));
        ck_assert_uint_eq(ZSTD_compressStream2(c, &ob, &none, ZSTD_e_end), 0);
        n = ob.pos;
    }
    {
        /* A valid frame, that a decoder held to 8 MiB refuses for its
         * window alone. */
        static char back[4096];
        ZSTD_DCtx *d = ZSTD_createDCtx();
        ck_assert_uint_eq(ZSTD_decompressDCtx(d, back, sizeof back, out, n), 2000);
        ck_assert(!ZSTD_isError(ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 23)));
        {
            ZSTD_inBuffer ib = {out, n, 0};
            ZSTD_outBuffer ob = {back, sizeof back, 0};
            ck_assert(ZSTD_isError(ZSTD_decompressStream(d, &ob, &ib)));
        }
        ZSTD_freeDCtx(d);
    }
    ZSTD_freeCCtx(c);
    ck_assert_int_eq(vg__decode_body(VG__DECODE_ZSTD, out, n, 1u << 20, &res,
                                     &got), -EBADMSG);
    {
        tu_response r = post("/sum", "zstd", NULL, out, n);
        expect_problem(&r, 400);
        tu_response_free(&r);
    }
    free(plain);
#endif
}
END_TEST

START_TEST(test_gzip_members_concatenated)
{
    char *a = sample(3000), *ea, *eb, *both, *plain;
    size_t na, nb;
    tu_response r;

    ea = gz(a, 3000, &na);
    eb = gz("tail of the body", 16, &nb);
    both = malloc(na + nb);
    memcpy(both, ea, na);
    memcpy(both + na, eb, nb);
    plain = malloc(3016);
    memcpy(plain, a, 3000);
    memcpy(plain + 3000, "tail of the body", 16);
    r = post("/sum", "gzip", NULL, both, na + nb);
    expect_sum(&r, plain, 3016);
    tu_response_free(&r);
    free(a), free(ea), free(eb), free(both), free(plain);
}
END_TEST

START_TEST(test_json_reads_decoded_body)
{
    const char *doc = "{\"n\": 42}";
    size_t n;
    char *enc = gz(doc, strlen(doc), &n);
    tu_response r = post("/json", "gzip", "application/json", enc, n);

    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "n=42");
    tu_response_free(&r);
    free(enc);
}
END_TEST

START_TEST(test_identity_and_none_pass_through)
{
    tu_response r = post("/sum", NULL, NULL, "plain body", 10);

    expect_sum(&r, "plain body", 10);
    tu_response_free(&r);
    r = post("/sum", "identity", NULL, "plain body", 10);
    expect_sum(&r, "plain body", 10);
    tu_response_free(&r);
    r = post("/sum", "gzip", NULL, "", 0); /* nothing was encoded */
    expect_sum(&r, "", 0);
    tu_response_free(&r);
}
END_TEST

/* The route allows LIMIT bytes: LIMIT decoded bytes pass, LIMIT + 1 do
 * not, though both are sent in far fewer. */
START_TEST(test_limit_exact_decoded)
{
    char *plain = sample(LIMIT + 1), *enc;
    size_t n;
    tu_response r;

    enc = gz(plain, LIMIT, &n);
    ck_assert_uint_lt(n, LIMIT);
    r = post("/small", "gzip", NULL, enc, n);
    expect_sum(&r, plain, LIMIT);
    tu_response_free(&r);
    free(enc);
    enc = gz(plain, LIMIT + 1, &n);
    ck_assert_uint_lt(n, LIMIT);
    r = post("/small", "gzip", NULL, enc, n);
    expect_problem(&r, 413);
    tu_response_free(&r);
    free(enc);
#ifdef HAVE_BROTLI
    enc = br(plain, LIMIT, &n);
    r = post("/small", "br", NULL, enc, n);
    expect_sum(&r, plain, LIMIT);
    tu_response_free(&r);
    free(enc);
    enc = br(plain, LIMIT + 1, &n);
    r = post("/small", "br", NULL, enc, n);
    expect_problem(&r, 413);
    tu_response_free(&r);
    free(enc);
#endif
#ifdef HAVE_ZSTD
    enc = zs(plain, LIMIT, &n);
    r = post("/small", "zstd", NULL, enc, n);
    expect_sum(&r, plain, LIMIT);
    tu_response_free(&r);
    free(enc);
    enc = zs(plain, LIMIT + 1, &n);
    r = post("/small", "zstd", NULL, enc, n);
    expect_problem(&r, 413);
    tu_response_free(&r);
    free(enc);
#endif
    free(plain);
}
END_TEST

/* 10 MiB of zeros in about 10 KiB, against the default 1 MiB limit. */
START_TEST(test_zip_bomb_413)
{
    size_t big = 10u << 20, n;
    char *zeros = calloc(1, big), *enc = gz(zeros, big, &n);
    tu_response r;

    ck_assert_uint_lt(n, 16 * 1024);
    r = post("/sum", "gzip", NULL, enc, n);
    expect_problem(&r, 413);
    tu_response_free(&r);
    free(enc);
#ifdef HAVE_BROTLI
    enc = br(zeros, big, &n);
    r = post("/sum", "br", NULL, enc, n);
    expect_problem(&r, 413);
    tu_response_free(&r);
    free(enc);
#endif
#ifdef HAVE_ZSTD
    enc = zs(zeros, big, &n);
    ck_assert_uint_lt(n, 16 * 1024);
    r = post("/sum", "zstd", NULL, enc, n);
    expect_problem(&r, 413);
    tu_response_free(&r);
    free(enc);
#endif
    free(zeros);
    /* The server still answers after refusing it. */
    r = post("/sum", NULL, NULL, "ok", 2);
    expect_sum(&r, "ok", 2);
    tu_response_free(&r);
}
END_TEST

/* Peak memory of decoding, in a child of its own so that its high-water
 * mark starts at the bomb: 1 GiB of zeros as 100 gzip members of 10 MiB
 * (about 1 MiB sent) decoded with a 1 MiB limit must stop near the limit,
 * not hold the gigabyte. */
START_TEST(test_zip_bomb_memory_bounded)
{
    size_t member = 10u << 20, n, i, limit = 1u << 20;
    char *zeros = calloc(1, member), *one = gz(zeros, member, &n), *bomb;
    pid_t pid;
    int status;

    free(zeros);
    bomb = malloc(n * 100);
    for (i = 0; i < 100; i++)
        memcpy(bomb + i * n, one, n);
    free(one);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct rusage before, after;
        char *out;
        size_t out_len;
        int rc;

        getrusage(RUSAGE_SELF, &before);
        rc = vg__decode_body(VG__DECODE_GZIP, bomb, n * 100, limit, &out,
                             &out_len);
        getrusage(RUSAGE_SELF, &after);
        free(bomb); /* valgrind checks the child's leaks too */
        /* ru_maxrss is in KiB; the limit plus zlib and slack for the
         * sanitizers' bookkeeping, far below the 1 GiB a naive decoder
         * touches. */
        _exit(rc == -E2BIG && out == NULL &&
                      after.ru_maxrss - before.ru_maxrss < 32 * 1024
                  ? 0
                  : 1);
    }
    free(bomb);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

START_TEST(test_unknown_coding_415)
{
#if defined(HAVE_BROTLI) && defined(HAVE_ZSTD)
    const char *accepted = "gzip, deflate, br, zstd";
#elif defined(HAVE_BROTLI)
    const char *accepted = "gzip, deflate, br";
#elif defined(HAVE_ZSTD)
    const char *accepted = "gzip, deflate, zstd";
#else
    const char *accepted = "gzip, deflate";
#endif
    const char *rows[] = {"compress", "x-unknown", "gzip;q=1", "gzip, gzip",
                          "deflate, gzip", "identity, compress"};
    size_t i, n;
    char *enc = gz("hello", 5, &n);

    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tu_response r = post("/sum", rows[i], NULL, enc, n);
        char *ae = tu_header(&r, "Accept-Encoding");

        ck_assert_msg(r.status == 415, "%s: %ld", rows[i], r.status);
        expect_problem(&r, 415);
        ck_assert_ptr_nonnull(ae);
        ck_assert_str_eq(ae, accepted);
        free(ae);
        tu_response_free(&r);
    }
    free(enc);
}
END_TEST

/* Two Content-Encoding fields are one list of two codings. */
START_TEST(test_two_fields_are_a_list_415)
{
    size_t n;
    char *enc = gz("hello", 5, &n);
    const char *hs[] = {"Content-Encoding: gzip", "Content-Encoding: gzip", NULL};
    tu_response r = tu_request(port, "POST", "/sum", enc, n, hs);

    expect_problem(&r, 415);
    tu_response_free(&r);
    free(enc);
}
END_TEST

START_TEST(test_corrupt_400)
{
    char *plain = sample(20000), *enc, *bad;
    size_t n;
    tu_response r;

    enc = gz(plain, 20000, &n);
    r = post("/sum", "gzip", NULL, enc, n / 2); /* truncated */
    expect_problem(&r, 400);
    tu_response_free(&r);
    bad = malloc(n + 5);
    memcpy(bad, enc, n);
    memcpy(bad + n, "junk!", 5); /* something after the end */
    r = post("/sum", "gzip", NULL, bad, n + 5);
    expect_problem(&r, 400);
    tu_response_free(&r);
    memcpy(bad, enc, n);
    bad[n / 2] ^= 0x55; /* a flipped byte: bad data or bad CRC */
    r = post("/sum", "gzip", NULL, bad, n);
    expect_problem(&r, 400);
    tu_response_free(&r);
    r = post("/sum", "gzip", NULL, plain, 20000); /* not gzip at all */
    expect_problem(&r, 400);
    tu_response_free(&r);
    r = post("/sum", "deflate", NULL, plain, 20000);
    expect_problem(&r, 400);
    tu_response_free(&r);
#ifdef HAVE_BROTLI
    r = post("/sum", "br", NULL, plain, 20000);
    expect_problem(&r, 400);
    tu_response_free(&r);
#endif
    free(bad), free(enc), free(plain);
}
END_TEST

/* Forms and upload routes are read as sent on libmicrohttpd's thread,
 * and inline routes decode nothing: 415 with identity. */
START_TEST(test_read_as_sent_415_identity)
{
    size_t n;
    char *enc = gz("a=1&b=2", 7, &n);
    struct {
        const char *path, *ctype;
    } rows[] = {
        {"/sum", "application/x-www-form-urlencoded"},
        {"/sum", "multipart/form-data; boundary=xyz"},
        {"/up", "application/octet-stream"},
        {"/inline", "application/octet-stream"},
    };
    size_t i;

    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tu_response r = post(rows[i].path, "gzip", rows[i].ctype, enc, n);
        char *ae = tu_header(&r, "Accept-Encoding");

        ck_assert_msg(r.status == 415, "%s %s: %ld", rows[i].path,
                      rows[i].ctype, r.status);
        ck_assert_ptr_nonnull(ae);
        ck_assert_str_eq(ae, "identity");
        free(ae);
        tu_response_free(&r);
    }
    free(enc);
}
END_TEST

/* The decoder on its own: the same limits without a server. */
START_TEST(test_decode_body_contract)
{
    char *plain = sample(1000), *enc, *out;
    size_t n, out_len;

    enc = gz(plain, 1000, &n);
    ck_assert_int_eq(vg__decode_body(VG__DECODE_GZIP, enc, n, 1000, &out,
                                     &out_len), 0);
    ck_assert_uint_eq(out_len, 1000);
    ck_assert(memcmp(out, plain, 1000) == 0);
    ck_assert_int_eq(out[1000], '\0');
    free(out);
    ck_assert_int_eq(vg__decode_body(VG__DECODE_GZIP, enc, n, 999, &out,
                                     &out_len), -E2BIG);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(vg__decode_body(VG__DECODE_GZIP, enc, n, 0, &out,
                                     &out_len), -E2BIG);
    ck_assert_int_eq(vg__decode_body(VG__DECODE_DEFLATE, enc, n, 1000, &out,
                                     &out_len), -EBADMSG);
    free(enc);
    ck_assert_int_eq(vg__decode_coding_of("GZip", 4), VG__DECODE_GZIP);
    ck_assert_int_eq(vg__decode_coding_of("gzipx", 5), -1);
    ck_assert_int_eq(vg__decode_coding_of("gzip", 3), -1);
    free(plain);
}
END_TEST

static Suite *compress_request_suite(void)
{
    Suite *s = suite_create("compress_request");
    TCase *tc = tcase_create("compress_request");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_gzip_round_trip);
    tcase_add_test(tc, test_deflate_zlib_and_raw_round_trip);
    tcase_add_test(tc, test_brotli_round_trip);
    tcase_add_test(tc, test_zstd_round_trip);
    tcase_add_test(tc, test_zstd_window_over_8_mib_400);
    tcase_add_test(tc, test_gzip_members_concatenated);
    tcase_add_test(tc, test_json_reads_decoded_body);
    tcase_add_test(tc, test_identity_and_none_pass_through);
    tcase_add_test(tc, test_limit_exact_decoded);
    tcase_add_test(tc, test_zip_bomb_413);
    tcase_add_test(tc, test_zip_bomb_memory_bounded);
    tcase_add_test(tc, test_unknown_coding_415);
    tcase_add_test(tc, test_two_fields_are_a_list_415);
    tcase_add_test(tc, test_corrupt_400);
    tcase_add_test(tc, test_read_as_sent_415_identity);
    tcase_add_test(tc, test_decode_body_contract);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(compress_request_suite());
}
