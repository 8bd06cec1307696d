/* test_compress.c - the vg_compress middleware end to end: bodies
 * round-trip through real decoders (zlib, brotli, zstd), Accept-Encoding
 * negotiation as a table, the minimum size, every skip rule (HEAD, 204,
 * ranges, types, encoded bodies, streams, inline routes), ETag suffixes,
 * and static files compressed on the workers and revalidated. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <curl/curl.h>
#include <volga.h>
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#ifdef HAVE_BROTLI
#include <brotli/decode.h>
#endif
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif

static vg_app *app;
static unsigned short port;
static char tmp[64];
static char text[64 * 1024]; /* compressible text, NUL-terminated */

/* ---- Handlers ---- */

/* ?n= bytes of text, of type ?type= (default text/plain). */
static vg_result *h_text(vg_request *req, void *arg)
{
    const char *n = vg_request_query(req, "n"), *type = vg_request_query(req, "type");
    size_t len = n ? strtoul(n, NULL, 10) : 4096;
    char *copy;
    vg_result *res;

    (void)arg;
    if (len >= sizeof text)
        len = sizeof text - 1;
    copy = strndup(text, len);
    res = vg_text(copy);
    free(copy);
    if (type != NULL)
        res = vg_result_set_header(res, "Content-Type", type);
    if (vg_request_query(req, "etag") != NULL)
        res = vg_result_set_header(res, "ETag", vg_request_query(req, "etag"));
    if (vg_request_query(req, "enc") != NULL)
        res = vg_result_set_header(res, "Content-Encoding", "gzip");
    return res;
}

static vg_result *h_204(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_status(204);
}

static vg_result *h_sse(vg_request *req, void *arg)
{
    vg_stream *s;
    vg_result *res = vg_sse_new(req, &s);

    (void)arg;
    if (res == NULL)
        return NULL;
    vg_stream_write(s, text, 4096);
    vg_stream_end(s);
    return res;
}

/* ---- Fixture ---- */

static void write_file(const char *name, const char *data, size_t len)
{
    char p[256];
    int fd;

    snprintf(p, sizeof p, "%s/%s", tmp, name);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert(fd >= 0);
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void setup(void)
{
    vg_static_options so = {0};
    size_t i;

    for (i = 0; i + 1 < sizeof text; i++)
        text[i] = "volga compresses repeated words well. "[i % 38];
    text[sizeof text - 1] = '\0';
    snprintf(tmp, sizeof tmp, "/tmp/vg-compress.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    write_file("site.css", text, 8000);
    write_file("pic.png", text, 8000);

    app = tu_app_new();
    ck_assert_int_eq(vg_app_use(app, vg_compress, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/text", h_text, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/inline", h_text, NULL), 0);
    ck_assert_int_eq(vg_map_inline(app, "GET", "/inline", true), 0);
    ck_assert_int_eq(vg_map_get(app, "/204", h_204, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/sse", h_sse, NULL), 0);
    so.on_workers = true;
    ck_assert_int_eq(vg_app_serve_dir_opts(app, "/s", tmp, &so), 0);
    ck_assert_int_eq(vg_app_serve_dir(app, "/fast", tmp), 0);
    tu_start(app);
    port = vg_app_port(app);
}

static void teardown(void)
{
    vg_app_free(app);
    app = NULL;
    tu_remove_tree(tmp);
}

/* ---- Helpers ---- */

static tu_response get_ae(const char *path, const char *ae, const char *extra)
{
    char h[256];
    const char *hs[3] = {NULL, NULL, NULL};
    int i = 0;

    if (ae != NULL) {
        snprintf(h, sizeof h, "Accept-Encoding: %s", ae);
        hs[i++] = h;
    }
    hs[i] = extra;
    return tu_request(port, "GET", path, NULL, 0, hs);
}

/* The Content-Encoding the server chose ("identity" when none) and the
 * status, for one Accept-Encoding value. */
static char *coding_for(const char *path, const char *ae, long *status)
{
    tu_response r = get_ae(path, ae, NULL);
    char *ce = tu_header(&r, "Content-Encoding");
    *status = r.status;
    tu_response_free(&r);
    return ce ? ce : strdup("identity");
}

static char *inflate_gzip(const char *in, size_t len, size_t *out_len)
{
    z_stream z;
    char *out = malloc(sizeof text * 2);
    int rc;

    memset(&z, 0, sizeof z);
    ck_assert_int_eq(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out;
    z.avail_out = sizeof text * 2;
    rc = inflate(&z, Z_FINISH);
    *out_len = z.total_out;
    inflateEnd(&z);
    ck_assert_int_eq(rc, Z_STREAM_END);
    return out;
}

/* ---- Tests ---- */

START_TEST(test_gzip_round_trip)
{
    tu_response r = get_ae("/text?n=20000", "gzip", NULL);
    char *ce = tu_header(&r, "Content-Encoding"), *vary = tu_header(&r, "Vary");
    size_t n;
    char *plain;

    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(ce, "gzip");
    ck_assert_str_eq(vary, "Accept-Encoding");
    ck_assert_uint_lt(r.body_len, 20000 / 4);
    plain = inflate_gzip(r.body, r.body_len, &n);
    ck_assert_uint_eq(n, 20000);
    ck_assert(memcmp(plain, text, n) == 0);
    free(plain), free(ce), free(vary);
    tu_response_free(&r);
}
END_TEST

START_TEST(test_brotli_round_trip)
{
#ifdef HAVE_BROTLI
    tu_response r = get_ae("/text?n=20000", "br", NULL);
    char *ce = tu_header(&r, "Content-Encoding");
    uint8_t *plain = malloc(sizeof text);
    size_t n = sizeof text;

    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(ce, "br");
    ck_assert_int_eq(BrotliDecoderDecompress(r.body_len, (uint8_t *)r.body, &n,
                                             plain),
                     BROTLI_DECODER_RESULT_SUCCESS);
    ck_assert_uint_eq(n, 20000);
    ck_assert(memcmp(plain, text, n) == 0);
    free(plain), free(ce);
    tu_response_free(&r);
#else
    fprintf(stderr, "test_compress: built without brotli: br not tested\n");
    {
        long st;
        char *c = coding_for("/text", "br", &st);
        bool identity = strcmp(c, "identity") == 0;
        free(c);
        ck_assert(identity);
    }
#endif
}
END_TEST

START_TEST(test_zstd_round_trip)
{
#ifdef HAVE_ZSTD
    tu_response r = get_ae("/text?n=20000", "zstd", NULL);
    char *ce = tu_header(&r, "Content-Encoding"), *et;
    char *plain = malloc(sizeof text);
    size_t n;

    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(ce, "zstd");
    ck_assert_uint_lt(r.body_len, 20000 / 4);
    n = ZSTD_decompress(plain, sizeof text, r.body, r.body_len);
    ck_assert_msg(!ZSTD_isError(n), "%s", ZSTD_getErrorName(n));
    ck_assert_uint_eq(n, 20000);
    ck_assert(memcmp(plain, text, n) == 0);
    free(plain), free(ce);
    tu_response_free(&r);
    r = get_ae("/text?etag=%22v1%22", "zstd", NULL);
    et = tu_header(&r, "ETag");
    ck_assert_str_eq(et, "\"v1-zstd\"");
    free(et);
    tu_response_free(&r);
#else
    long st;
    char *c = coding_for("/text", "zstd", &st);
    bool identity = strcmp(c, "identity") == 0;

    fprintf(stderr, "test_compress: built without zstd: zstd not tested\n");
    free(c);
    ck_assert(identity);
#endif
}
END_TEST

/* What each Accept-Encoding gets, per what this build has: "B" is the
 * best of br > zstd > gzip built, "Z" zstd if built (else gzip). */
START_TEST(test_negotiation_table)
{
#if defined(HAVE_BROTLI)
    const char *br = "br";
#elif defined(HAVE_ZSTD)
    const char *br = "zstd";
#else
    const char *br = "gzip";
#endif
#ifdef HAVE_ZSTD
    const char *zs = "zstd";
#else
    const char *zs = "gzip";
#endif
#ifdef HAVE_BROTLI
    const char *br_or_gzip = "br";
#else
    const char *br_or_gzip = "gzip";
#endif
    struct {
        const char *ae, *want;
        long status;
    } rows[] = {
        {NULL, "identity", 200},
        {"", "identity", 200},
        {"gzip", "gzip", 200},
        {"GZIP", "gzip", 200},
        {"br, gzip", "B", 200}, /* br when we have it */
        {"gzip;q=1, br;q=0.5", "gzip", 200},
        {"gzip;q=0.4, br;q=0.5", "b", 200},
        {"gzip, deflate, br, zstd", "B", 200}, /* what Chromium sends */
        {"zstd, gzip", "Z", 200},
        {"gzip, zstd", "Z", 200},
        {"gzip;q=0.5, zstd", "Z", 200},
        {"zstd;q=0.2, gzip;q=0.9", "gzip", 200},
        {"zstd;q=0, gzip;q=0.1", "gzip", 200},
        {"br;q=0, gzip;q=0", "identity", 200},
        {"identity;q=0, gzip", "gzip", 200},
        {"identity;q=0", "identity", 406},
        {"*;q=0", "identity", 406},
        {"*;q=0, identity", "identity", 200},
        {"*;q=0, identity;q=0.1", "identity", 200},
        {"*", "B", 200},
        {"deflate", "identity", 200},
        {"gzip;q=bogus", "identity", 200},
        {"compress, x-unknown;q=1", "identity", 200},
    };
    size_t i;

    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        long st;
        char *got = coding_for("/text", rows[i].ae, &st);
        const char *want = strcmp(rows[i].want, "B") == 0   ? br
                           : strcmp(rows[i].want, "Z") == 0 ? zs
                           : strcmp(rows[i].want, "b") == 0 ? br_or_gzip
                                                            : rows[i].want;
        bool ok = strcmp(got, want) == 0 && st == rows[i].status;
        char g[64];
        snprintf(g, sizeof g, "%s", got);
        free(got);
        ck_assert_msg(ok, "Accept-Encoding \"%s\": %s %ld, want %s %ld",
                      rows[i].ae ? rows[i].ae : "(none)", g, st, want,
                      rows[i].status);
    }
}
END_TEST

START_TEST(test_min_size)
{
    long st;
    char *a = coding_for("/text?n=1023", "gzip", &st), *b;
    tu_response r = get_ae("/text?n=1023", "gzip", NULL);
    char *vary = tu_header(&r, "Vary");

    ck_assert_str_eq(a, "identity");
    ck_assert_ptr_null(vary); /* too small: never depends on the header */
    ck_assert_uint_eq(r.body_len, 1023);
    tu_response_free(&r);
    b = coding_for("/text?n=1024", "gzip", &st);
    ck_assert_str_eq(b, "gzip");
    free(a), free(b);
}
END_TEST

START_TEST(test_skip_rules)
{
    struct {
        const char *path, *extra;
    } rows[] = {
        {"/text?type=image/png", NULL},
        {"/text?type=text/event-stream", NULL},
        {"/text?enc=1", NULL},
        {"/204", NULL},
        {"/sse", NULL},
        {"/inline", NULL},
        {"/fast/site.css", NULL},           /* inline static route */
        {"/s/pic.png", NULL},
        {"/s/site.css", "Range: bytes=0-2999"},
    };
    size_t i;
    tu_response r;
    char *ce;

    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        long st;
        r = get_ae(rows[i].path, "gzip, br", rows[i].extra);
        ce = tu_header(&r, "Content-Encoding");
        st = r.status;
        /* The handler's own "gzip" (enc=1) is left as it was. */
        ck_assert_msg(ce == NULL || strstr(rows[i].path, "enc=") != NULL,
                      "%s was compressed (%s)", rows[i].path, ce);
        ck_assert_msg(st >= 200 && st < 300, "%s: %ld", rows[i].path, st);
        if (strstr(rows[i].path, "enc=") != NULL)
            ck_assert(r.body_len == 4096 && memcmp(r.body, text, 4096) == 0);
        free(ce);
        tu_response_free(&r);
    }
    r = tu_request(port, "HEAD", "/text", NULL, 0,
                   (const char *const[]){"Accept-Encoding: gzip", NULL});
    ce = tu_header(&r, "Content-Encoding");
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_null(ce);
    tu_response_free(&r);
    /* Refusing identity for what is never compressed is not a 406. */
    {
        long st;
        char *c = coding_for("/text?type=image/png", "identity;q=0", &st);
        ck_assert_int_eq(st, 200);
        free(c);
    }
}
END_TEST

START_TEST(test_etag_suffix)
{
    tu_response r = get_ae("/text?etag=%22v1%22", "gzip", NULL);
    char *et = tu_header(&r, "ETag");

    ck_assert_str_eq(et, "\"v1-gzip\"");
    free(et);
    tu_response_free(&r);
    r = get_ae("/text?etag=W/%22v1%22", "gzip", NULL);
    et = tu_header(&r, "ETag");
    ck_assert_str_eq(et, "W/\"v1\"");
    free(et);
    tu_response_free(&r);
    r = get_ae("/text?etag=%22v1%22", NULL, NULL);
    et = tu_header(&r, "ETag");
    ck_assert_str_eq(et, "\"v1\"");
    free(et);
    tu_response_free(&r);
}
END_TEST

START_TEST(test_static_on_workers_compressed_then_304)
{
    tu_response r = get_ae("/s/site.css", "gzip", NULL);
    char *ce = tu_header(&r, "Content-Encoding"), *et = tu_header(&r, "ETag"),
         h[200], *plain;
    size_t n;

    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(ce, "gzip");
    ck_assert_ptr_nonnull(strstr(et, "-gzip\""));
    /* One Vary, though both static files and vg_compress vary. */
    {
        char *first = strcasestr(r.headers, "\nVary:");
        ck_assert_ptr_nonnull(first);
        ck_assert_ptr_null(strcasestr(first + 1, "\nVary:"));
    }
    plain = inflate_gzip(r.body, r.body_len, &n);
    ck_assert_uint_eq(n, 8000);
    ck_assert(memcmp(plain, text, n) == 0);
    free(plain);
    tu_response_free(&r);
    snprintf(h, sizeof h, "If-None-Match: %s", et);
    r = get_ae("/s/site.css", "gzip", h);
    ck_assert_int_eq(r.status, 304);
    ck_assert_uint_eq(r.body_len, 0);
    tu_response_free(&r);
    free(ce), free(et);
}
END_TEST

static Suite *compress_suite(void)
{
    Suite *s = suite_create("compress");
    TCase *tc = tcase_create("compress");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_gzip_round_trip);
    tcase_add_test(tc, test_brotli_round_trip);
    tcase_add_test(tc, test_zstd_round_trip);
    tcase_add_test(tc, test_negotiation_table);
    tcase_add_test(tc, test_min_size);
    tcase_add_test(tc, test_skip_rules);
    tcase_add_test(tc, test_etag_suffix);
    tcase_add_test(tc, test_static_on_workers_compressed_then_304);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(compress_suite());
}
