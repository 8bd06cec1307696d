/* test_compress_stream.c - vg_compress on streamed bodies: every
 * vg_stream_write reaches the client decodable before the next one is
 * written (the flush), through real decoders (zlib, brotli, zstd); the
 * end finishes the coding; identity without Accept-Encoding; event
 * streams only with vg_compress_options.sse; a client that leaves a
 * compressed stream still cancels it. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <curl/curl.h>
#include <volga.h>
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>
#ifdef HAVE_BROTLI
#include <brotli/decode.h>
#endif
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif

#define CHUNKS 6

static vg_app *app, *app_sse;
static unsigned short port, port_sse;

/* The client's count of pieces it has decoded; the producer waits on it
 * before writing the next piece. */
static tu_latch decoded;
static atomic_int missed;      /* pieces the client had not decoded in time */
static atomic_int write_error; /* the first failed write's return */
static pthread_t producer;
static atomic_bool producer_started;
static atomic_bool leave_early; /* the producer writes without waiting */

/* Piece i of a stream: text that compresses, ending in the separator. */
static void piece(char *buf, size_t cap, int i, bool sse)
{
    snprintf(buf, cap, "%spiece %d: volga streams compress repeated words, "
                       "repeated words, repeated words%s",
             sse ? "data: " : "", i, sse ? "\n\n" : "\n");
}

typedef struct {
    vg_stream *s;
    bool sse;
} job;

static void *produce(void *arg)
{
    job *j = arg;
    char buf[256];
    int i, rc;

    for (i = 1; i < CHUNKS || atomic_load(&leave_early); i++) {
        if (atomic_load(&leave_early)) {
            if (i > 2000)
                break; /* bounded: the write must fail well before */
            usleep(5000); /* pacing only: the failure is what is awaited */
        } else if (!tu_latch_wait(&decoded, i, 5000)) {
            atomic_fetch_add(&missed, 1);
        }
        piece(buf, sizeof buf, i, j->sse);
        rc = vg_stream_write(j->s, buf, strlen(buf));
        if (rc != 0) {
            atomic_store(&write_error, rc);
            break;
        }
    }
    if (!atomic_load(&leave_early) && !tu_latch_wait(&decoded, CHUNKS, 5000))
        atomic_fetch_add(&missed, 1);
    vg_stream_end(j->s);
    free(j);
    return NULL;
}

/* Writes piece 0 itself, before returning (so the coder must take what is
 * queued already), and hands the rest to a thread. */
static vg_result *h_stream(vg_request *req, void *arg)
{
    bool sse = arg != NULL;
    job *j = calloc(1, sizeof *j);
    char buf[256];
    vg_result *res;

    ck_assert_ptr_nonnull(j);
    res = sse ? vg_sse_new(req, &j->s) : vg_stream_new(req, "text/plain", &j->s);
    ck_assert_ptr_nonnull(res);
    j->sse = sse;
    piece(buf, sizeof buf, 0, sse);
    ck_assert_int_eq(vg_stream_write(j->s, buf, strlen(buf)), 0);
    ck_assert_int_eq(pthread_create(&producer, NULL, produce, j), 0);
    atomic_store(&producer_started, true);
    return res;
}

/* ---- The client: decodes as the bytes arrive ---- */

typedef struct {
    int coding; /* 0 identity, 1 gzip, 2 br, 3 zstd */
    z_stream z;
    bool z_end;
#ifdef HAVE_BROTLI
    BrotliDecoderState *br;
    bool br_end;
#endif
#ifdef HAVE_ZSTD
    ZSTD_DStream *zs;
    size_t zs_left;
#endif
    char out[1 << 16];
    size_t len;
    int pieces;
    bool sse, bad, leave_after_two;
    char encoding[32];
} client;

static void client_output(client *c, const char *p, size_t n)
{
    const char *sep = c->sse ? "\n\n" : "\n", *q = c->out;
    int k = 0;

    if (c->len + n >= sizeof c->out) {
        c->bad = true;
        return;
    }
    memcpy(c->out + c->len, p, n);
    c->len += n;
    c->out[c->len] = '\0';
    /* Count the pieces complete so far; each new one lets the producer
     * write the next. */
    while ((q = strstr(q, sep)) != NULL) {
        k++;
        q += strlen(sep);
    }
    if (k > c->pieces) {
        tu_latch_add(&decoded, k - c->pieces);
        c->pieces = k;
    }
}

static void client_decode(client *c, const char *p, size_t n)
{
    char buf[8192];

    if (c->coding == 0) {
        client_output(c, p, n);
        return;
    }
    if (c->coding == 1) {
        c->z.next_in = (Bytef *)(uintptr_t)p;
        c->z.avail_in = (uInt)n;
        while (c->z.avail_in > 0 && !c->z_end) {
            int rc;
            c->z.next_out = (Bytef *)buf;
            c->z.avail_out = sizeof buf;
            rc = inflate(&c->z, Z_SYNC_FLUSH);
            if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
                c->bad = true;
                return;
            }
            client_output(c, buf, sizeof buf - c->z.avail_out);
            c->z_end = rc == Z_STREAM_END;
        }
        return;
    }
#ifdef HAVE_BROTLI
    if (c->coding == 2) {
        const uint8_t *in = (const uint8_t *)p;
        size_t avail_in = n;
        BrotliDecoderResult r;
        do {
            uint8_t *out = (uint8_t *)buf;
            size_t avail_out = sizeof buf;
            r = BrotliDecoderDecompressStream(c->br, &avail_in, &in, &avail_out,
                                              &out, NULL);
            if (r == BROTLI_DECODER_RESULT_ERROR) {
                c->bad = true;
                return;
            }
            client_output(c, buf, sizeof buf - avail_out);
        } while (r == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT || avail_in > 0);
        c->br_end = r == BROTLI_DECODER_RESULT_SUCCESS;
        return;
    }
#endif
#ifdef HAVE_ZSTD
    if (c->coding == 3) {
        ZSTD_inBuffer ib = {p, n, 0};
        while (ib.pos < ib.size) {
            ZSTD_outBuffer ob = {buf, sizeof buf, 0};
            c->zs_left = ZSTD_decompressStream(c->zs, &ob, &ib);
            if (ZSTD_isError(c->zs_left)) {
                c->bad = true;
                return;
            }
            client_output(c, buf, ob.pos);
        }
        return;
    }
#endif
    c->bad = true;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    client *c = arg;

    client_decode(c, p, size * n);
    if (c->leave_after_two && c->pieces >= 2)
        return 0; /* curl aborts: the client is gone */
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    client *c = arg;
    size_t len = size * n;

    if (len > 17 && strncasecmp(p, "Content-Encoding:", 17) == 0) {
        snprintf(c->encoding, sizeof c->encoding, "%.*s", (int)(len - 17), p + 17);
        c->encoding[strcspn(c->encoding, "\r\n")] = '\0';
        memmove(c->encoding, c->encoding + strspn(c->encoding, " "),
                strlen(c->encoding + strspn(c->encoding, " ")) + 1);
    }
    return len;
}

static const char *coding_names[] = {"", "gzip", "br", "zstd"};

/* GET path on p with Accept-Encoding ae (NULL: none), decoded as coding
 * `want` announces; returns curl's status. */
static long fetch(unsigned short p, const char *path, const char *ae, client *c)
{
    CURL *e = curl_easy_init();
    struct curl_slist *h = NULL;
    char url[128], hdr[64];
    long status = 0;

    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)p, path);
    if (ae != NULL) {
        snprintf(hdr, sizeof hdr, "Accept-Encoding: %s", ae);
        h = curl_slist_append(h, hdr);
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 60L);
    curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    return status;
}

static void client_init(client *c, int coding, bool sse)
{
    memset(c, 0, sizeof *c);
    c->coding = coding;
    c->sse = sse;
    if (coding == 1)
        ck_assert_int_eq(inflateInit2(&c->z, 15 + 16), Z_OK);
#ifdef HAVE_BROTLI
    if (coding == 2)
        ck_assert_ptr_nonnull(c->br = BrotliDecoderCreateInstance(NULL, NULL, NULL));
#endif
#ifdef HAVE_ZSTD
    if (coding == 3)
        ck_assert_ptr_nonnull(c->zs = ZSTD_createDStream());
#endif
}

static void client_free(client *c)
{
    if (c->coding == 1)
        inflateEnd(&c->z);
#ifdef HAVE_BROTLI
    if (c->br != NULL)
        BrotliDecoderDestroyInstance(c->br);
#endif
#ifdef HAVE_ZSTD
    ZSTD_freeDStream(c->zs);
#endif
}

static void expected(char *buf, size_t cap, bool sse)
{
    size_t len = 0;
    int i;

    buf[0] = '\0';
    for (i = 0; i < CHUNKS; i++) {
        piece(buf + len, cap - len, i, sse);
        len += strlen(buf + len);
    }
}

static void reset(void)
{
    tu_latch_destroy(&decoded);
    tu_latch_init(&decoded);
    atomic_store(&missed, 0);
    atomic_store(&write_error, 0);
    atomic_store(&producer_started, false);
    atomic_store(&leave_early, false);
}

static void join_producer(void)
{
    ck_assert(atomic_load(&producer_started));
    ck_assert_int_eq(pthread_join(producer, NULL), 0);
}

/* One stream, `coding` asked for, decoded piece by piece. */
static void stream_case(unsigned short p, const char *path, int coding,
                        int want_coding, bool sse)
{
    client c;
    char want[4096];

    reset();
    client_init(&c, want_coding, sse);
    ck_assert_int_eq(fetch(p, path, coding ? coding_names[coding] : NULL, &c), 200);
    join_producer();
    ck_assert_str_eq(c.encoding, coding_names[want_coding]);
    ck_assert(!c.bad);
    /* Every piece was decodable before the next was written. */
    ck_assert_msg(atomic_load(&missed) == 0, "%d pieces not decodable in time",
                  atomic_load(&missed));
    ck_assert_msg(atomic_load(&write_error) == 0, "a write failed: %d",
                  atomic_load(&write_error));
    expected(want, sizeof want, sse);
    ck_assert_str_eq(c.out, want);
    /* vg_stream_end ended the coding: the decoder saw its end. */
    if (want_coding == 1)
        ck_assert(c.z_end);
#ifdef HAVE_BROTLI
    if (want_coding == 2)
        ck_assert(c.br_end);
#endif
#ifdef HAVE_ZSTD
    if (want_coding == 3)
        ck_assert_uint_eq(c.zs_left, 0);
#endif
    client_free(&c);
}

/* ---- Fixture ---- */

static vg_compress_options with_sse = {.sse = true};

static void setup(void)
{
    tu_latch_init(&decoded);
    app = tu_app_new();
    ck_assert_int_eq(vg_app_use(app, vg_compress, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/stream", h_stream, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/sse", h_stream, (void *)1), 0);
    tu_start(app);
    port = vg_app_port(app);
    app_sse = tu_app_new();
    ck_assert_int_eq(vg_app_use(app_sse, vg_compress, &with_sse), 0);
    ck_assert_int_eq(vg_map_get(app_sse, "/sse", h_stream, (void *)1), 0);
    tu_start(app_sse);
    port_sse = vg_app_port(app_sse);
}

static void teardown(void)
{
    vg_app_free(app);
    vg_app_free(app_sse);
    tu_latch_destroy(&decoded);
}

/* ---- Tests ---- */

START_TEST(test_gzip_stream_flushed_per_write)
{
    stream_case(port, "/stream", 1, 1, false);
}
END_TEST

START_TEST(test_brotli_stream_flushed_per_write)
{
#ifdef HAVE_BROTLI
    stream_case(port, "/stream", 2, 2, false);
#else
    fprintf(stderr, "SKIP: built without brotli\n");
#endif
}
END_TEST

START_TEST(test_zstd_stream_flushed_per_write)
{
#ifdef HAVE_ZSTD
    stream_case(port, "/stream", 3, 3, false);
#else
    fprintf(stderr, "SKIP: built without zstd\n");
#endif
}
END_TEST

START_TEST(test_stream_identity_without_accept_encoding)
{
    stream_case(port, "/stream", 0, 0, false);
}
END_TEST

START_TEST(test_sse_identity_by_default)
{
    stream_case(port, "/sse", 1, 0, true);
}
END_TEST

START_TEST(test_sse_compressed_when_asked)
{
    stream_case(port_sse, "/sse", 1, 1, true);
}
END_TEST

/* The client leaves a gzip stream after two pieces: the producer's writes
 * fail with -EPIPE, the request ends as client_gone, nothing leaks
 * (valgrind and ASan runs of this program check the coder is freed). */
START_TEST(test_client_leaving_compressed_stream)
{
    client c;
    vg_stats st;
    double until;

    reset();
    atomic_store(&leave_early, true);
    client_init(&c, 1, false);
    c.leave_after_two = true;
    fetch(port, "/stream", "gzip", &c);
    join_producer();
    ck_assert_msg(atomic_load(&write_error) == -EPIPE, "writes ended with %d",
                  atomic_load(&write_error));
    ck_assert_str_eq(c.encoding, "gzip");
    until = tu_now_ms() + 10000;
    do
        vg_app_stats(app, &st);
    while (st.cancelled_client_gone < 1 && tu_now_ms() < until && usleep(1000) == 0);
    ck_assert_uint_ge(st.cancelled_client_gone, 1);
    client_free(&c);
}
END_TEST

static Suite *compress_stream_suite(void)
{
    Suite *s = suite_create("compress_stream");
    TCase *tc = tcase_create("streams");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_gzip_stream_flushed_per_write);
    tcase_add_test(tc, test_brotli_stream_flushed_per_write);
    tcase_add_test(tc, test_zstd_stream_flushed_per_write);
    tcase_add_test(tc, test_stream_identity_without_accept_encoding);
    tcase_add_test(tc, test_sse_identity_by_default);
    tcase_add_test(tc, test_sse_compressed_when_asked);
    tcase_add_test(tc, test_client_leaving_compressed_stream);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return tu_main(compress_stream_suite());
}
