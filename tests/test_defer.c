/* test_defer.c - answering later: vg_defer frees the worker, the request
 * and its token stay valid until vg_request_finish from any thread, which
 * reports -ECANCELED once the client, a deadline or shutdown ended it. */
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
#include <sys/resource.h>
#include <unistd.h>

#include <volga.h>
#include "testutil.h"

/* A mailbox of parked requests, finished together by a /post request. */
typedef struct {
    pthread_mutex_t lock;
    vg_request **waiting;
    int n, cap;
    tu_latch parked;
    atomic_int finish_ok, finish_cancelled;
} mailbox;

static void mailbox_init(mailbox *m, int cap)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
    m->waiting = calloc((size_t)cap, sizeof *m->waiting);
    m->cap = cap;
    tu_latch_init(&m->parked);
}

static void mailbox_destroy(mailbox *m)
{
    free(m->waiting);
    pthread_mutex_destroy(&m->lock);
    tu_latch_destroy(&m->parked);
}

/* Finishes every parked request with `text`; returns how many. */
static int mailbox_finish_all(mailbox *m, const char *text)
{
    vg_request **list;
    int n, i;

    pthread_mutex_lock(&m->lock);
    list = m->waiting;
    n = m->n;
    m->waiting = calloc((size_t)m->cap, sizeof *m->waiting);
    m->n = 0;
    pthread_mutex_unlock(&m->lock);
    for (i = 0; i < n; i++) {
        int rc = vg_request_finish(list[i], vg_text(text));
        if (rc == 0)
            atomic_fetch_add(&m->finish_ok, 1);
        else if (rc == -ECANCELED)
            atomic_fetch_add(&m->finish_cancelled, 1);
    }
    free(list);
    return n;
}

static vg_result *wait_handler(vg_request *req, void *arg)
{
    mailbox *m = arg;
    vg_result *res;

    pthread_mutex_lock(&m->lock);
    ck_assert_int_lt(m->n, m->cap);
    m->waiting[m->n++] = req;
    /* Defer while holding the lock, so no finisher can see req first. */
    res = vg_defer(req);
    pthread_mutex_unlock(&m->lock);
    tu_latch_add(&m->parked, 1);
    return res;
}

static vg_result *post_handler(vg_request *req, void *arg)
{
    size_t len;
    const char *body = vg_request_body(req, &len);
    int n = mailbox_finish_all(arg, len ? body : "message");
    return vg_textf("%d", n);
}

static vg_result *hello(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_text("hello");
}

/* Finishing a request that was never deferred is refused. */
static vg_result *not_deferred(vg_request *req, void *arg)
{
    (void)arg;
    ck_assert_int_eq(vg_request_finish(req, vg_text("x")), -EINVAL);
    ck_assert_int_eq(vg_request_finish(NULL, vg_text("x")), -EINVAL);
    ck_assert_ptr_null(vg_defer(NULL));
    return vg_text("ok");
}

static vg_app *defer_app(mailbox *m, unsigned workers)
{
    vg_app *app = tu_app_new();

    ck_assert_int_eq(vg_app_set_workers(app, workers), 0);
    ck_assert_int_eq(vg_map_get(app, "/wait", wait_handler, m), 0);
    ck_assert_int_eq(vg_map_post(app, "/post", post_handler, m), 0);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/not-deferred", not_deferred, NULL), 0);
    return app;
}

static const char get_wait[] = "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n";

START_TEST(deferred_request_is_finished_from_another_request)
{
    mailbox m;
    vg_app *app;
    char buf[4096];
    tu_response r;
    vg_stats st;
    int fd;

    mailbox_init(&m, 4);
    app = defer_app(&m, 1);
    tu_start(app);
    fd = tu_connect(vg_app_port(app));
    ck_assert(tu_send_all(fd, get_wait, strlen(get_wait)));
    ck_assert(tu_latch_wait(&m.parked, 1, 5000));
    vg_app_stats(app, &st);
    ck_assert_uint_eq(st.in_flight, 1); /* deferred counts as in flight */
    /* The only worker is free again: this is answered while /wait waits. */
    r = tu_request(vg_app_port(app), "POST", "/post", "hi", 2, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "1");
    tu_response_free(&r);
    ck_assert_uint_gt(tu_recv_response(fd, buf, sizeof buf), 0);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "got %s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "\r\n\r\nhi"));
    ck_assert_int_eq(atomic_load(&m.finish_ok), 1);
    close(fd);
    r = tu_get(vg_app_port(app), "/not-deferred");
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    vg_app_free(app);
    mailbox_destroy(&m);
}
END_TEST

START_TEST(two_thousand_parked_with_two_workers)
{
    enum { N = 2000 };
    mailbox m;
    vg_app *app;
    struct rlimit rl;
    static int fds[N];
    char buf[4096];
    int i, ok = 0;

    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * N + 200) {
        rl.rlim_cur = rl.rlim_max < 2 * N + 200 ? rl.rlim_max : 2 * N + 200;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    ck_assert_msg(rl.rlim_cur >= 2 * N + 100, "RLIMIT_NOFILE too low");
    mailbox_init(&m, N);
    app = defer_app(&m, 2);
    tu_start(app);
    for (i = 0; i < N; i++) {
        fds[i] = tu_connect(vg_app_port(app));
        ck_assert(tu_send_all(fds[i], get_wait, strlen(get_wait)));
    }
    ck_assert(tu_latch_wait(&m.parked, N, 20000));
    /* Ordinary requests are still answered with 2 workers and N parked. */
    for (i = 0; i < 20; i++) {
        tu_response r = tu_get(vg_app_port(app), "/hello");
        ck_assert_int_eq(r.status, 200);
        tu_response_free(&r);
    }
    {
        tu_response r = tu_request(vg_app_port(app), "POST", "/post", "go", 2, NULL);
        ck_assert_int_eq(r.status, 200);
        ck_assert_int_eq(atoi(r.body), N);
        tu_response_free(&r);
    }
    for (i = 0; i < N; i++) {
        if (tu_recv_response(fds[i], buf, sizeof buf) > 0 &&
            strncmp(buf, "HTTP/1.1 200", 12) == 0 && strstr(buf, "\r\n\r\ngo"))
            ok++;
        close(fds[i]);
    }
    ck_assert_int_eq(ok, N);
    vg_app_free(app);
    mailbox_destroy(&m);
}
END_TEST

START_TEST(finish_after_client_left_is_cancelled)
{
    mailbox m;
    vg_app *app;
    tu_response r;
    vg_stats st;
    int fd;

    mailbox_init(&m, 4);
    app = defer_app(&m, 2);
    tu_start(app);
    fd = tu_connect(vg_app_port(app));
    ck_assert(tu_send_all(fd, get_wait, strlen(get_wait)));
    ck_assert(tu_latch_wait(&m.parked, 1, 5000));
    pthread_mutex_lock(&m.lock);
    vg_token *tok = vg_token_ref(vg_request_token(m.waiting[0]));
    pthread_mutex_unlock(&m.lock);
    close(fd);
    /* The token of the parked request fires when its client leaves. */
    ck_assert(vg_token_wait(tok, 5000));
    ck_assert_int_eq(vg_token_reason(tok), VG_CANCEL_CLIENT_GONE);
    vg_token_unref(tok);
    r = tu_request(vg_app_port(app), "POST", "/post", "late", 4, NULL);
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    ck_assert_int_eq(atomic_load(&m.finish_cancelled), 1);
    ck_assert_int_eq(atomic_load(&m.finish_ok), 0);
    vg_app_stats(app, &st);
    ck_assert_uint_eq(st.cancelled_client_gone, 1);
    vg_app_free(app);
    mailbox_destroy(&m);
}
END_TEST

START_TEST(deadline_applies_to_deferred)
{
    mailbox m;
    vg_app *app;
    tu_response r;

    mailbox_init(&m, 4);
    app = defer_app(&m, 2);
    ck_assert_int_eq(vg_app_set_request_timeout(app, 200), 0);
    tu_start(app);
    r = tu_get(vg_app_port(app), "/wait");
    ck_assert_int_eq(r.status, 504);
    tu_response_free(&r);
    ck_assert_int_eq(mailbox_finish_all(&m, "late"), 1);
    ck_assert_int_eq(atomic_load(&m.finish_cancelled), 1);
    vg_app_free(app);
    mailbox_destroy(&m);
}
END_TEST

/* Finishes the request its token belongs to as soon as it is cancelled. */
static void finish_on_cancel(vg_token *tok, void *arg)
{
    mailbox *m = arg;
    (void)tok;
    mailbox_finish_all(m, "bye");
}

static vg_result *wait_until_cancel(vg_request *req, void *arg)
{
    mailbox *m = arg;
    vg_result *res;

    pthread_mutex_lock(&m->lock);
    m->waiting[m->n++] = req;
    ck_assert_uint_gt(vg_token_on_cancel(vg_request_token(req), finish_on_cancel, m), 0);
    res = vg_defer(req);
    pthread_mutex_unlock(&m->lock);
    tu_latch_add(&m->parked, 1);
    return res;
}

START_TEST(shutdown_cancels_deferred_and_free_waits_for_finish)
{
    mailbox m;
    vg_app *app;
    vg_stats st;
    char buf[4096];
    int fd;

    mailbox_init(&m, 4);
    app = tu_app_new();
    ck_assert_int_eq(vg_app_set_shutdown_grace(app, 100), 0);
    ck_assert_int_eq(vg_map_get(app, "/wait", wait_until_cancel, &m), 0);
    tu_start(app);
    fd = tu_connect(vg_app_port(app));
    ck_assert(tu_send_all(fd, get_wait, strlen(get_wait)));
    ck_assert(tu_latch_wait(&m.parked, 1, 5000));
    vg_app_stop(app);
    /* The client is answered 503 (or the connection closed) once the grace
     * period ends; the callback's finish then reports -ECANCELED. */
    if (tu_recv_response(fd, buf, sizeof buf) > 0)
        ck_assert_msg(strncmp(buf, "HTTP/1.1 503", 12) == 0, "got %s", buf);
    vg_app_stats(app, &st);
    vg_app_free(app);
    ck_assert_int_eq(atomic_load(&m.finish_cancelled), 1);
    ck_assert_int_eq(atomic_load(&m.finish_ok), 0);
    ck_assert_uint_eq(st.cancelled_shutdown, 1);
    close(fd);
    mailbox_destroy(&m);
}
END_TEST

static Suite *defer_suite(void)
{
    Suite *s = suite_create("defer");
    TCase *tc = tcase_create("defer");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, deferred_request_is_finished_from_another_request);
    tcase_add_test(tc, two_thousand_parked_with_two_workers);
    tcase_add_test(tc, finish_after_client_left_is_cancelled);
    tcase_add_test(tc, deadline_applies_to_deferred);
    tcase_add_test(tc, shutdown_cancels_deferred_and_free_waits_for_finish);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(defer_suite());
}
