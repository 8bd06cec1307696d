/* test_stream.c - streamed (chunked) responses and Server-Sent Events:
 * writes from another thread, exact SSE framing, -EPIPE and a cancelled
 * token once the client leaves, bounded memory with a client that never
 * reads, and shutdown. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <volga.h>
#include "testutil.h"

/* Hands the stream of the latest request to the test thread. */
typedef struct {
    pthread_mutex_t lock;
    vg_stream *stream;
    tu_latch opened;
    bool sse;
    bool drop_result;     /* free the result instead of returning it */
} handoff;

static void handoff_init(handoff *h)
{
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->lock, NULL);
    tu_latch_init(&h->opened);
}

static void handoff_destroy(handoff *h)
{
    pthread_mutex_destroy(&h->lock);
    tu_latch_destroy(&h->opened);
}

static vg_stream *handoff_take(handoff *h)
{
    vg_stream *s;

    ck_assert(tu_latch_wait(&h->opened, 1, 5000));
    pthread_mutex_lock(&h->lock);
    s = h->stream;
    h->stream = NULL;
    pthread_mutex_unlock(&h->lock);
    ck_assert_ptr_nonnull(s);
    return s;
}

static vg_result *open_stream(vg_request *req, void *arg)
{
    handoff *h = arg;
    vg_stream *s = NULL;
    vg_result *res = h->sse ? vg_sse_new(req, &s)
                            : vg_stream_new(req, "text/plain", &s);

    if (res == NULL)
        return NULL;
    pthread_mutex_lock(&h->lock);
    h->stream = s;
    pthread_mutex_unlock(&h->lock);
    tu_latch_add(&h->opened, 1);
    if (h->drop_result) {
        vg_result_free(res);
        return vg_text("no stream");
    }
    return res;
}

static vg_app *stream_app(handoff *h)
{
    vg_app *app = tu_app_new();
    ck_assert_int_eq(vg_map_get(app, "/stream", open_stream, h), 0);
    tu_start(app);
    return app;
}

/* Reads from a raw socket until `needle` appears (or EOF / 5 s). */
static bool read_until(int fd, char *buf, size_t cap, size_t *got,
                       const char *needle)
{
    while (strstr(buf, needle) == NULL) {
        ssize_t n = recv(fd, buf + *got, cap - 1 - *got, 0);
        if (n <= 0)
            return false;
        *got += (size_t)n;
        buf[*got] = '\0';
    }
    return true;
}

typedef struct {
    unsigned short port;
    tu_response r;
} fetch_arg;

static void *fetch(void *arg)
{
    fetch_arg *f = arg;
    f->r = tu_get(f->port, "/stream");
    return NULL;
}

START_TEST(body_written_from_another_thread)
{
    handoff h;
    vg_app *app;
    vg_stream *s;
    fetch_arg f;
    pthread_t t;
    char *te;

    handoff_init(&h);
    app = stream_app(&h);
    f.port = vg_app_port(app);
    pthread_create(&t, NULL, fetch, &f);
    s = handoff_take(&h);
    ck_assert_int_eq(vg_stream_write(s, "abc", 3), 0);
    ck_assert_int_eq(vg_stream_printf(s, "%d-%s", 42, "def"), 0);
    ck_assert_int_eq(vg_stream_write(s, NULL, 0), 0);
    ck_assert_int_eq(vg_stream_write(s, NULL, 3), -EINVAL);
    vg_stream_end(s);
    pthread_join(t, NULL);
    ck_assert_int_eq(f.r.status, 200);
    ck_assert_str_eq(f.r.body, "abc42-def");
    te = tu_header(&f.r, "Transfer-Encoding");
    ck_assert_ptr_nonnull(te);
    ck_assert_str_eq(te, "chunked");
    free(te);
    tu_response_free(&f.r);
    vg_app_free(app);
    handoff_destroy(&h);
}
END_TEST

START_TEST(sse_framing_is_exact)
{
    handoff h;
    vg_app *app;
    vg_stream *s;
    fetch_arg f;
    pthread_t t;
    char *ct, *cc;

    handoff_init(&h);
    h.sse = true;
    app = stream_app(&h);
    f.port = vg_app_port(app);
    pthread_create(&t, NULL, fetch, &f);
    s = handoff_take(&h);
    ck_assert_int_eq(vg_sse_retry(s, 1500), 0);
    ck_assert_int_eq(vg_sse_event(s, "tick", "line one\nline two", "7"), 0);
    ck_assert_int_eq(vg_sse_event(s, NULL, "", NULL), 0);
    ck_assert_int_eq(vg_sse_comment(s, "keep-alive"), 0);
    ck_assert_int_eq(vg_sse_event(s, "bad\nname", "x", NULL), -EINVAL);
    ck_assert_int_eq(vg_sse_event(s, NULL, "x", "bad\rid"), -EINVAL);
    ck_assert_int_eq(vg_sse_comment(s, "two\nlines"), -EINVAL);
    ck_assert_int_eq(vg_sse_event(s, NULL, NULL, NULL), -EINVAL);
    vg_stream_end(s);
    pthread_join(t, NULL);
    ck_assert_int_eq(f.r.status, 200);
    ck_assert_str_eq(f.r.body, "retry: 1500\n\n"
                               "event: tick\nid: 7\ndata: line one\ndata: line two\n\n"
                               "data: \n\n"
                               ": keep-alive\n\n");
    ct = tu_header(&f.r, "Content-Type");
    cc = tu_header(&f.r, "Cache-Control");
    ck_assert_str_eq(ct, "text/event-stream");
    ck_assert_str_eq(cc, "no-cache");
    free(ct);
    free(cc);
    tu_response_free(&f.r);
    vg_app_free(app);
    handoff_destroy(&h);
}
END_TEST

START_TEST(writes_fail_and_token_fires_when_client_leaves)
{
    handoff h;
    vg_app *app;
    vg_stream *s;
    vg_token *tok;
    char buf[8192] = "";
    size_t got = 0;
    vg_stats st;
    int fd, rc, i;

    handoff_init(&h);
    h.sse = true;
    app = stream_app(&h);
    fd = tu_connect(vg_app_port(app));
    ck_assert(tu_send_all(fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", 33));
    s = handoff_take(&h);
    tok = vg_token_ref(vg_stream_token(s));
    ck_assert_int_eq(vg_sse_event(s, NULL, "first", NULL), 0);
    ck_assert(read_until(fd, buf, sizeof buf, &got, "data: first"));
    /* Now the connection is parked (nothing buffered); the client leaves. */
    close(fd);
    ck_assert(vg_token_wait(tok, 5000));
    ck_assert_int_eq(vg_token_reason(tok), VG_CANCEL_CLIENT_GONE);
    /* Writes fail from now on (the first may still be accepted while the
     * connection unwinds, never more than a few). */
    for (i = 0, rc = 0; i < 100 && rc == 0; i++)
        rc = vg_sse_event(s, NULL, "late", NULL);
    ck_assert_int_eq(rc, -EPIPE);
    vg_stream_end(s);
    vg_app_stats(app, &st);
    ck_assert_uint_eq(st.cancelled_client_gone, 1);
    vg_token_unref(tok);
    vg_app_free(app);
    handoff_destroy(&h);
}
END_TEST

START_TEST(backpressure_bounds_memory_with_a_client_that_never_reads)
{
    handoff h;
    vg_app *app;
    vg_stream *s;
    char chunk[4096];
    size_t accepted = 0;
    int fd, rc = 0, i, small = 4096;

    handoff_init(&h);
    app = stream_app(&h);
    fd = tu_connect(vg_app_port(app));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    ck_assert(tu_send_all(fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", 33));
    s = handoff_take(&h);
    ck_assert_int_eq(vg_stream_set_limit(s, 32 * 1024), 0);
    ck_assert_int_eq(vg_stream_set_limit(s, 0), -EINVAL);
    memset(chunk, 'x', sizeof chunk);
    /* Keep writing until refused: the socket buffers fill, then ours. */
    for (i = 0; i < 100000; i++) {
        rc = vg_stream_write(s, chunk, sizeof chunk);
        if (rc != 0)
            break;
        accepted += sizeof chunk;
    }
    ck_assert_int_eq(rc, -EAGAIN);
    ck_assert_uint_le(vg_stream_buffered(s), 32 * 1024);
    /* Bounded: our 32 KiB plus what the kernel's socket buffers hold. */
    ck_assert_msg(accepted < 16 * 1024 * 1024, "accepted %zu bytes", accepted);
    close(fd);
    ck_assert(vg_token_wait(vg_stream_token(s), 5000));
    ck_assert_int_eq(vg_stream_write(s, chunk, 1), -EPIPE);
    vg_stream_end(s);
    vg_app_free(app);
    handoff_destroy(&h);
}
END_TEST

START_TEST(a_stream_whose_result_is_dropped_refuses_writes)
{
    handoff h;
    vg_app *app;
    vg_stream *s;
    tu_response r;

    handoff_init(&h);
    h.drop_result = true;
    app = stream_app(&h);
    r = tu_get(vg_app_port(app), "/stream");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "no stream");
    s = handoff_take(&h);
    ck_assert_int_eq(vg_stream_write(s, "x", 1), -EPIPE);
    vg_stream_end(s);
    tu_response_free(&r);
    vg_app_free(app);
    handoff_destroy(&h);
}
END_TEST

START_TEST(shutdown_ends_open_streams)
{
    handoff h;
    vg_app *app;
    vg_stream *s;
    vg_token *tok;
    char buf[8192] = "";
    size_t got = 0;
    int fd, i, rc = 0;

    handoff_init(&h);
    app = tu_app_new();
    ck_assert_int_eq(vg_app_set_shutdown_grace(app, 50), 0);
    ck_assert_int_eq(vg_map_get(app, "/stream", open_stream, &h), 0);
    tu_start(app);
    fd = tu_connect(vg_app_port(app));
    ck_assert(tu_send_all(fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", 33));
    s = handoff_take(&h);
    tok = vg_token_ref(vg_stream_token(s));
    ck_assert_int_eq(vg_stream_write(s, "hello", 5), 0);
    ck_assert(read_until(fd, buf, sizeof buf, &got, "hello"));
    vg_app_stop(app);
    ck_assert(vg_token_wait(tok, 5000));
    ck_assert_int_eq(vg_token_reason(tok), VG_CANCEL_SHUTDOWN);
    for (i = 0; i < 100 && rc == 0; i++)
        rc = vg_stream_write(s, "x", 1);
    ck_assert_int_eq(rc, -EPIPE);
    vg_stream_end(s);
    vg_token_unref(tok);
    vg_app_free(app);
    close(fd);
    handoff_destroy(&h);
}
END_TEST

static Suite *stream_suite(void)
{
    Suite *s = suite_create("stream");
    TCase *tc = tcase_create("stream");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, body_written_from_another_thread);
    tcase_add_test(tc, sse_framing_is_exact);
    tcase_add_test(tc, writes_fail_and_token_fires_when_client_leaves);
    tcase_add_test(tc, backpressure_bounds_memory_with_a_client_that_never_reads);
    tcase_add_test(tc, a_stream_whose_result_is_dropped_refuses_writes);
    tcase_add_test(tc, shutdown_ends_open_streams);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(stream_suite());
}
