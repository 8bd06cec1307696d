/* test_inline.c - inline routes: answered on libmicrohttpd's thread with no
 * hand-off (so even with every worker busy), deadlines still reach their
 * token, and what needs a suspended connection is refused. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <volga.h>
#include "testutil.h"

typedef struct {
    tu_latch started;
    vg_token *release;
} blocker;

static vg_result *block(vg_request *req, void *arg)
{
    blocker *b = arg;
    (void)req;
    tu_latch_add(&b->started, 1);
    vg_token_wait(b->release, 10000);
    return vg_text("released");
}

static vg_result *fast(vg_request *req, void *arg)
{
    (void)arg;
    return vg_textf("inline %s", vg_request_param(req, "name"));
}

/* Spins (never blocks) until its token fires, at most 5 s. */
static vg_result *spin_until_cancelled(vg_request *req, void *arg)
{
    vg_token *tok = vg_request_token(req);
    atomic_int *reason = arg;
    double end = tu_now_ms() + 5000;

    /* Yielding keeps it non-blocking while letting the watcher run on a
     * scheduler that runs one thread at a time (valgrind's). */
    while (!vg_token_is_cancelled(tok) && tu_now_ms() < end)
        sched_yield();
    atomic_store(reason, (int)vg_token_reason(tok));
    return vg_text("finished");
}

static vg_result *try_defer(vg_request *req, void *arg)
{
    vg_stream *s = (vg_stream *)1;
    (void)arg;
    ck_assert_ptr_null(vg_stream_new(req, "text/plain", &s));
    ck_assert_ptr_null(s);
    return vg_defer(req); /* NULL: answered 500 */
}

START_TEST(inline_route_answers_while_every_worker_is_busy)
{
    vg_app *app = tu_app_new();
    blocker b;
    tu_response r;
    char buf[4096];
    int fd;

    tu_latch_init(&b.started);
    b.release = vg_token_new();
    ck_assert_int_eq(vg_app_set_workers(app, 1), 0);
    ck_assert_int_eq(vg_map_get(app, "/block", block, &b), 0);
    ck_assert_int_eq(vg_map_get(app, "/fast/{name}", fast, NULL), 0);
    ck_assert_int_eq(vg_map_inline(app, "GET", "/fast/{x}", true), 0);
    ck_assert_int_eq(vg_map_inline(app, "GET", "/nope", true), -ENOENT);
    tu_start(app);
    fd = tu_connect(vg_app_port(app));
    ck_assert(tu_send_all(fd, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n", 32));
    ck_assert(tu_latch_wait(&b.started, 1, 5000));
    /* The only worker is blocked, yet the inline route answers. */
    r = tu_get(vg_app_port(app), "/fast/ada");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "inline ada");
    tu_response_free(&r);
    r = tu_request(vg_app_port(app), "HEAD", "/fast/ada", NULL, 0, NULL);
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    vg_token_cancel(b.release);
    ck_assert_uint_gt(tu_recv_response(fd, buf, sizeof buf), 0);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "got %s", buf);
    close(fd);
    vg_app_free(app);
    vg_token_unref(b.release);
    tu_latch_destroy(&b.started);
}
END_TEST

START_TEST(deadline_reaches_an_inline_token)
{
    vg_app *app = tu_app_new();
    atomic_int reason = 0;
    tu_response r;
    vg_stats st;

    ck_assert_int_eq(vg_map_get(app, "/spin", spin_until_cancelled, &reason), 0);
    ck_assert_int_eq(vg_map_inline(app, "GET", "/spin", true), 0);
    ck_assert_int_eq(vg_map_timeout(app, "GET", "/spin", 100), 0);
    tu_start(app);
    r = tu_get(vg_app_port(app), "/spin");
    ck_assert_int_eq(r.status, 504);
    ck_assert_int_eq(atomic_load(&reason), VG_CANCEL_TIMEOUT);
    vg_app_stats(app, &st);
    ck_assert_uint_eq(st.cancelled_timeout, 1);
    ck_assert_uint_eq(st.in_flight, 0);
    tu_response_free(&r);
    vg_app_free(app);
}
END_TEST

START_TEST(defer_and_streams_are_refused_inline)
{
    vg_app *app = tu_app_new();
    tu_response r;

    ck_assert_int_eq(vg_map_get(app, "/defer", try_defer, NULL), 0);
    ck_assert_int_eq(vg_map_inline(app, "GET", "/defer", true), 0);
    tu_start(app);
    r = tu_get(vg_app_port(app), "/defer");
    ck_assert_int_eq(r.status, 500);
    tu_response_free(&r);
    vg_app_free(app);
}
END_TEST

START_TEST(inline_can_be_switched_off_again)
{
    vg_app *app = tu_app_new();
    tu_response r;

    ck_assert_int_eq(vg_map_get(app, "/fast/{name}", fast, NULL), 0);
    ck_assert_int_eq(vg_map_inline(app, "GET", "/fast/{name}", true), 0);
    ck_assert_int_eq(vg_map_inline(app, "GET", "/fast/{name}", false), 0);
    ck_assert_int_eq(vg_map_inline(NULL, "GET", "/fast/{name}", true), -EINVAL);
    tu_start(app);
    ck_assert_int_eq(vg_map_inline(app, "GET", "/fast/{name}", true), -EBUSY);
    r = tu_get(vg_app_port(app), "/fast/bo");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "inline bo");
    tu_response_free(&r);
    vg_app_free(app);
}
END_TEST

static Suite *inline_suite(void)
{
    Suite *s = suite_create("inline");
    TCase *tc = tcase_create("inline");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, inline_route_answers_while_every_worker_is_busy);
    tcase_add_test(tc, deadline_reaches_an_inline_token);
    tcase_add_test(tc, defer_and_streams_are_refused_inline);
    tcase_add_test(tc, inline_can_be_switched_off_again);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(inline_suite());
}
