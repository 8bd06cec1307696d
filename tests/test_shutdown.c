/* test_shutdown.c - graceful shutdown with a mixed crowd in flight: fast
 * requests, long ones that watch their token, long ones that ignore it, and
 * deferred ones. Every client gets an answer or a clean close, vg_app_run
 * returns 0, and (under the sanitizer and valgrind builds) nothing leaks. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <volga.h>
#include "testutil.h"

enum { CLIENTS = 50 };

typedef struct {
    tu_latch arrived;          /* handlers entered (deferred ones included) */
    atomic_int watching_cancelled, ignoring_done, fast_done;
    atomic_int finished_cancelled, finished_ok;
} crowd;

static vg_result *fast(vg_request *req, void *arg)
{
    crowd *c = arg;
    (void)req;
    tu_latch_add(&c->arrived, 1);
    atomic_fetch_add(&c->fast_done, 1);
    return vg_text("fast");
}

static vg_result *watching(vg_request *req, void *arg)
{
    crowd *c = arg;
    vg_token *tok = vg_request_token(req);

    tu_latch_add(&c->arrived, 1);
    if (vg_token_wait(tok, 30000))
        atomic_fetch_add(&c->watching_cancelled, 1);
    return vg_text("watching");
}

/* Works for 600 ms without ever looking at its token: longer than the
 * grace period, so shutdown must cope with a handler that outlives it. */
static vg_result *ignoring(vg_request *req, void *arg)
{
    crowd *c = arg;
    struct timespec ts = {0, 600 * 1000 * 1000};

    (void)req;
    tu_latch_add(&c->arrived, 1);
    nanosleep(&ts, NULL); /* the work itself, not a synchronisation */
    atomic_fetch_add(&c->ignoring_done, 1);
    return vg_text("ignoring");
}

typedef struct {
    crowd *c;
    vg_request *req;
} parked;

static void finish_parked(vg_token *tok, void *arg)
{
    parked *p = arg;
    int rc = vg_request_finish(p->req, vg_text("late"));

    (void)tok;
    atomic_fetch_add(rc == 0 ? &p->c->finished_ok : &p->c->finished_cancelled, 1);
    free(p);
}

static vg_result *deferred(vg_request *req, void *arg)
{
    parked *p = malloc(sizeof *p);
    vg_result *res;

    ck_assert_ptr_nonnull(p);
    p->c = arg;
    p->req = req;
    res = vg_defer(req);
    tu_latch_add(&p->c->arrived, 1);
    /* Last act: from here the callback may finish (and free) the request. */
    vg_token_on_cancel(vg_request_token(req), finish_parked, p);
    return res;
}

static void *run_app(void *arg)
{
    intptr_t rc = vg_app_run(arg);
    return (void *)rc;
}

START_TEST(stop_with_fifty_mixed_requests_in_flight)
{
    static const char *const paths[] = {"/fast", "/watching", "/ignoring",
                                        "/deferred"};
    vg_app *app = tu_app_new();
    crowd c;
    pthread_t runner;
    void *ret;
    int fds[CLIENTS], i, answered = 0, closed = 0;
    char buf[4096], req[128];
    vg_stats st;

    memset(&c, 0, sizeof c);
    tu_latch_init(&c.arrived);
    ck_assert_int_eq(vg_app_set_workers(app, 64), 0);
    ck_assert_int_eq(vg_app_set_shutdown_grace(app, 200), 0);
    ck_assert_int_eq(vg_map_get(app, "/fast", fast, &c), 0);
    ck_assert_int_eq(vg_map_get(app, "/watching", watching, &c), 0);
    ck_assert_int_eq(vg_map_get(app, "/ignoring", ignoring, &c), 0);
    ck_assert_int_eq(vg_map_get(app, "/deferred", deferred, &c), 0);
    tu_start(app);
    ck_assert_int_eq(pthread_create(&runner, NULL, run_app, app), 0);

    for (i = 0; i < CLIENTS; i++) {
        int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n",
                         paths[i % 4]);
        fds[i] = tu_connect(vg_app_port(app));
        ck_assert(tu_send_all(fds[i], req, (size_t)n));
    }
    ck_assert(tu_latch_wait(&c.arrived, CLIENTS, 10000));
    vg_app_stop(app);

    /* Each client: a whole response, or a clean close (EOF). Bounded by
     * the sockets' 10 s timeouts. */
    for (i = 0; i < CLIENTS; i++) {
        size_t n = tu_recv_response(fds[i], buf, sizeof buf);
        if (n > 0) {
            ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0 ||
                              strncmp(buf, "HTTP/1.1 503", 12) == 0,
                          "client %d (%s) got %s", i, paths[i % 4], buf);
            answered++;
        } else {
            closed++;
        }
    }
    ck_assert_int_eq(answered + closed, CLIENTS);
    ck_assert_int_eq(pthread_join(runner, &ret), 0);
    ck_assert_int_eq((intptr_t)ret, 0);
    vg_app_stats(app, &st);
    vg_app_free(app); /* waits for the ignoring handlers */
    for (i = 0; i < CLIENTS; i++)
        close(fds[i]);

    /* 13 watching handlers were woken by the shutdown, not by their 30 s. */
    ck_assert_int_eq(atomic_load(&c.watching_cancelled), 13);
    ck_assert_int_eq(atomic_load(&c.ignoring_done), 12);
    ck_assert_int_eq(atomic_load(&c.fast_done), 13);
    ck_assert_int_eq(atomic_load(&c.finished_cancelled) +
                         atomic_load(&c.finished_ok), 12);
    ck_assert_int_eq(atomic_load(&c.finished_ok), 0);
    ck_assert_uint_ge(st.cancelled_shutdown, 13 + 12);
    tu_latch_destroy(&c.arrived);
}
END_TEST

START_TEST(requests_after_stop_get_503_or_refused)
{
    vg_app *app = tu_app_new();
    crowd c;
    char buf[4096];
    int keep, fd;

    memset(&c, 0, sizeof c);
    tu_latch_init(&c.arrived);
    ck_assert_int_eq(vg_app_set_shutdown_grace(app, 2000), 0);
    ck_assert_int_eq(vg_map_get(app, "/fast", fast, &c), 0);
    ck_assert_int_eq(vg_map_get(app, "/watching", watching, &c), 0);
    tu_start(app);
    /* A keep-alive connection, then a long request that holds the grace. */
    keep = tu_connect(vg_app_port(app));
    ck_assert(tu_send_all(keep, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n", 31));
    ck_assert_uint_gt(tu_recv_response(keep, buf, sizeof buf), 0);
    fd = tu_connect(vg_app_port(app));
    ck_assert(tu_send_all(fd, "GET /watching HTTP/1.1\r\nHost: x\r\n\r\n", 35));
    ck_assert(tu_latch_wait(&c.arrived, 2, 5000));
    vg_app_stop(app);
    /* A new request on the open connection during the grace: 503 + close.
     * (It may race the stop's start; either way it must not reach /fast
     * after the 503 was decided, and must end cleanly.) */
    ck_assert(tu_send_all(keep, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n", 31));
    if (tu_recv_response(keep, buf, sizeof buf) > 0)
        ck_assert_msg(strncmp(buf, "HTTP/1.1 503", 12) == 0 ||
                          strncmp(buf, "HTTP/1.1 200", 12) == 0, "got %s", buf);
    vg_app_free(app);
    close(keep);
    close(fd);
    tu_latch_destroy(&c.arrived);
}
END_TEST

static Suite *shutdown_suite(void)
{
    Suite *s = suite_create("shutdown");
    TCase *tc = tcase_create("shutdown");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, stop_with_fifty_mixed_requests_in_flight);
    tcase_add_test(tc, requests_after_stop_get_503_or_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(shutdown_suite());
}
