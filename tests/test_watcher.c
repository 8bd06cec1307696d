/* test_watcher.c - the watcher's timer: request deadlines cancel the token
 * with VG_CANCEL_TIMEOUT and answer 504 at once, and fast requests never
 * see them; plus the watcher switched off. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <errno.h>
#include <curl/curl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <volga.h>
#include "testutil.h"

typedef struct {
    tu_latch started, finished;
    atomic_int woke_cancelled;       /* vg_token_wait returned true */
    atomic_int reason;
    atomic_int calls;
    int wait_ms;
} waiter;

static void waiter_init(waiter *w, int wait_ms)
{
    memset(w, 0, sizeof *w);
    tu_latch_init(&w->started);
    tu_latch_init(&w->finished);
    w->wait_ms = wait_ms;
}

static void waiter_destroy(waiter *w)
{
    tu_latch_destroy(&w->started);
    tu_latch_destroy(&w->finished);
}

/* Waits on its token for w->wait_ms and reports what happened. */
static vg_result *wait_handler(vg_request *req, void *arg)
{
    waiter *w = arg;
    vg_token *tok = vg_request_token(req);
    bool cancelled;

    atomic_fetch_add(&w->calls, 1);
    tu_latch_add(&w->started, 1);
    cancelled = vg_token_wait(tok, w->wait_ms);
    atomic_store(&w->woke_cancelled, cancelled);
    atomic_store(&w->reason, (int)vg_token_reason(tok));
    tu_latch_add(&w->finished, 1);
    return vg_text("late");
}

static vg_result *fast_handler(vg_request *req, void *arg)
{
    (void)arg;
    return vg_token_is_cancelled(vg_request_token(req)) ? vg_status(500)
                                                        : vg_text("fast");
}

START_TEST(deadline_cancels_with_timeout_and_answers_504)
{
    vg_app *app = tu_app_new();
    waiter w;
    tu_response r;
    vg_stats st;
    double t0, elapsed;

    waiter_init(&w, 10000);
    ck_assert_int_eq(vg_app_set_request_timeout(app, 300), 0);
    ck_assert_int_eq(vg_map_get(app, "/wait", wait_handler, &w), 0);
    tu_start(app);
    t0 = tu_now_ms();
    r = tu_get(vg_app_port(app), "/wait");
    elapsed = tu_now_ms() - t0;
    ck_assert_int_eq(r.curl_code, 0);
    ck_assert_int_eq(r.status, 504);
    /* Well before the handler's own 10 s: the deadline answered, not the
     * handler (the bound is loose on purpose; latency is for bench/). */
    ck_assert_msg(elapsed < 5000, "504 took %.0f ms", elapsed);
    ck_assert_msg(elapsed >= 250, "504 after only %.0f ms", elapsed);
    ck_assert(tu_latch_wait(&w.finished, 1, 5000));
    ck_assert_int_eq(atomic_load(&w.woke_cancelled), 1);
    ck_assert_int_eq(atomic_load(&w.reason), VG_CANCEL_TIMEOUT);
    vg_app_stats(app, &st);
    ck_assert_uint_eq(st.cancelled_timeout, 1);
    ck_assert_uint_eq(st.cancelled_client_gone, 0);
    tu_response_free(&r);
    vg_app_free(app);
    waiter_destroy(&w);
}
END_TEST

START_TEST(deadline_keeps_connection_usable)
{
    vg_app *app = tu_app_new();
    waiter w;
    char buf[4096];
    int fd;

    waiter_init(&w, 10000);
    ck_assert_int_eq(vg_app_set_request_timeout(app, 200), 0);
    ck_assert_int_eq(vg_map_get(app, "/wait", wait_handler, &w), 0);
    ck_assert_int_eq(vg_map_get(app, "/fast", fast_handler, NULL), 0);
    tu_start(app);
    fd = tu_connect(vg_app_port(app));
    ck_assert(tu_send_all(fd, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n", 31));
    ck_assert_uint_gt(tu_recv_response(fd, buf, sizeof buf), 0);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 504", 12) == 0, "got %s", buf);
    /* The same keep-alive connection serves the next request. */
    ck_assert(tu_send_all(fd, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n", 31));
    ck_assert_uint_gt(tu_recv_response(fd, buf, sizeof buf), 0);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "got %s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "fast"));
    close(fd);
    ck_assert(tu_latch_wait(&w.finished, 1, 5000));
    vg_app_free(app);
    waiter_destroy(&w);
}
END_TEST

START_TEST(fast_requests_beat_their_deadline)
{
    vg_app *app = tu_app_new();
    vg_stats st;
    int i;

    ck_assert_int_eq(vg_app_set_request_timeout(app, 5000), 0);
    ck_assert_int_eq(vg_map_get(app, "/fast", fast_handler, NULL), 0);
    tu_start(app);
    for (i = 0; i < 200; i++) {
        tu_response r = tu_get(vg_app_port(app), "/fast");
        ck_assert_int_eq(r.status, 200);
        tu_response_free(&r);
    }
    vg_app_stats(app, &st);
    ck_assert_uint_eq(st.cancelled_timeout, 0);
    vg_app_free(app);
}
END_TEST

START_TEST(many_deadlines_expire_in_order)
{
    enum { N = 20 };
    vg_app *app = tu_app_new();
    waiter w;
    int fds[N], i;
    char buf[4096];
    vg_stats st;

    waiter_init(&w, 10000);
    ck_assert_int_eq(vg_app_set_workers(app, N), 0);
    ck_assert_int_eq(vg_app_set_request_timeout(app, 200), 0);
    ck_assert_int_eq(vg_map_get(app, "/wait", wait_handler, &w), 0);
    tu_start(app);
    for (i = 0; i < N; i++) {
        fds[i] = tu_connect(vg_app_port(app));
        ck_assert(tu_send_all(fds[i], "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n", 31));
    }
    for (i = 0; i < N; i++) {
        ck_assert_uint_gt(tu_recv_response(fds[i], buf, sizeof buf), 0);
        ck_assert_msg(strncmp(buf, "HTTP/1.1 504", 12) == 0, "got %s", buf);
        close(fds[i]);
    }
    ck_assert(tu_latch_wait(&w.finished, N, 5000));
    vg_app_stats(app, &st);
    ck_assert_uint_eq(st.cancelled_timeout, N);
    vg_app_free(app);
    waiter_destroy(&w);
}
END_TEST

START_TEST(without_watcher_client_gone_is_not_seen_while_waiting)
{
    vg_app *app = tu_app_new();
    waiter w;
    vg_stats st;
    int fd;

    /* With the watcher off, nothing polls a suspended connection: the
     * handler waits its full (short) time, then its result is dropped. */
    waiter_init(&w, 300);
    ck_assert_int_eq(vg_app_set_disconnect_watch(app, false), 0);
    ck_assert_int_eq(vg_map_get(app, "/wait", wait_handler, &w), 0);
    tu_start(app);
    fd = tu_connect(vg_app_port(app));
    ck_assert(tu_send_all(fd, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n", 31));
    ck_assert(tu_latch_wait(&w.started, 1, 5000));
    close(fd);
    ck_assert(tu_latch_wait(&w.finished, 1, 5000));
    ck_assert_int_eq(atomic_load(&w.woke_cancelled), 0);
    vg_app_stats(app, &st);
    ck_assert_uint_eq(st.cancelled_timeout, 0);
    vg_app_free(app);
    waiter_destroy(&w);
}
END_TEST

START_TEST(route_timeout_overrides_app_timeout)
{
    vg_app *app = tu_app_new();
    waiter slow, none;
    tu_response r;
    double t0;

    waiter_init(&slow, 10000);
    waiter_init(&none, 400);
    /* No app-wide deadline; /slow gets 200 ms; /none opts out of the
     * app-wide one once that is set too. */
    ck_assert_int_eq(vg_app_set_request_timeout(app, 100), 0);
    ck_assert_int_eq(vg_map_get(app, "/slow/{id}", wait_handler, &slow), 0);
    ck_assert_int_eq(vg_map_get(app, "/none", wait_handler, &none), 0);
    ck_assert_int_eq(vg_map_timeout(app, "GET", "/slow/{other}", 200), 0);
    ck_assert_int_eq(vg_map_timeout(app, "GET", "/none", 0), 0);
    ck_assert_int_eq(vg_map_timeout(app, "POST", "/none", 5), -ENOENT);
    ck_assert_int_eq(vg_map_timeout(app, "GET", "/missing", 5), -ENOENT);
    ck_assert_int_eq(vg_map_timeout(app, "GET", "bad", 5), -EINVAL);
    tu_start(app);
    ck_assert_int_eq(vg_map_timeout(app, "GET", "/none", 5), -EBUSY);

    t0 = tu_now_ms();
    r = tu_get(vg_app_port(app), "/slow/1");
    ck_assert_int_eq(r.status, 504);
    ck_assert_msg(tu_now_ms() - t0 >= 150, "the route's 200 ms was not used");
    tu_response_free(&r);
    ck_assert(tu_latch_wait(&slow.finished, 1, 5000));
    ck_assert_int_eq(atomic_load(&slow.reason), VG_CANCEL_TIMEOUT);

    r = tu_get(vg_app_port(app), "/none");
    ck_assert_int_eq(r.status, 200); /* ran its 400 ms without a deadline */
    ck_assert_int_eq(atomic_load(&none.woke_cancelled), 0);
    tu_response_free(&r);
    vg_app_free(app);
    waiter_destroy(&slow);
    waiter_destroy(&none);
}
END_TEST

static Suite *watcher_suite(void)
{
    Suite *s = suite_create("watcher");
    TCase *tc = tcase_create("deadlines");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, deadline_cancels_with_timeout_and_answers_504);
    tcase_add_test(tc, deadline_keeps_connection_usable);
    tcase_add_test(tc, fast_requests_beat_their_deadline);
    tcase_add_test(tc, many_deadlines_expire_in_order);
    tcase_add_test(tc, without_watcher_client_gone_is_not_seen_while_waiting);
    tcase_add_test(tc, route_timeout_overrides_app_timeout);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(watcher_suite());
}
