/*
 * test_reach.c - the token's side of "cancellation that reaches the work":
 * vg_token_poll (waiting on an fd or the token), vg_token_remaining_ms
 * (deadlines travel with tokens, a request's included) and
 * vg_token_child_timeout (a child that times itself out on the shared
 * timer thread, lib/timer.c).
 *
 * Threads meet through latches, pthread_join and the tokens themselves;
 * time bounds are generous upper limits that catch hangs, and lower bounds
 * check that nothing fires early. Helper threads record what they saw and
 * the test thread asserts.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <volga.h>
#include "testutil.h"
#include "core/timer.h"

/* ------------------------------------------------------------------------
 * Helpers
 */

/* A thread blocked in vg_token_poll, and what it returned. */
typedef struct {
    vg_token *tok;
    int fd;
    int timeout_ms;
    atomic_int tid;
    int rc;
    double elapsed_ms;
    tu_latch entered;
} poller;

static void *poller_main(void *arg)
{
    poller *p = arg;
    double t0;

    atomic_store(&p->tid, (int)syscall(SYS_gettid));
    tu_latch_add(&p->entered, 1);
    t0 = tu_now_ms();
    p->rc = vg_token_poll(p->tok, p->fd, POLLIN, p->timeout_ms);
    p->elapsed_ms = tu_now_ms() - t0;
    return NULL;
}

static void poller_start(poller *p, pthread_t *th, vg_token *tok, int fd,
                         int timeout_ms)
{
    memset(p, 0, sizeof *p);
    p->tok = tok;
    p->fd = fd;
    p->timeout_ms = timeout_ms;
    tu_latch_init(&p->entered);
    ck_assert_int_eq(pthread_create(th, NULL, poller_main, p), 0);
    ck_assert(tu_latch_wait(&p->entered, 1, 10000));
}

/* Waits until thread `tid` of this process sleeps in the kernel (state S
 * in /proc), i.e. has reached its poll(); false after 10 s. */
static bool thread_sleeps(int tid)
{
    char path[64], buf[256], *p;
    double t0 = tu_now_ms();

    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    while (tu_now_ms() - t0 < 10000) {
        FILE *f = fopen(path, "r");
        size_t n;

        if (f == NULL)
            return false;
        n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        p = strrchr(buf, ')');
        if (p != NULL && p[1] == ' ' && p[2] == 'S')
            return true;
        sched_yield();
    }
    return false;
}

static atomic_int signals_seen;

static void count_signal(int sig)
{
    (void)sig;
    atomic_fetch_add(&signals_seen, 1);
}

/* ------------------------------------------------------------------------
 * vg_token_poll
 */

START_TEST(poll_returns_revents_when_fd_ready)
{
    vg_token *tok = vg_token_new();
    int pfd[2];

    ck_assert_int_eq(pipe(pfd), 0);
    ck_assert_int_eq(write(pfd[1], "x", 1), 1);
    ck_assert_int_eq(vg_token_poll(tok, pfd[0], POLLIN, 5000), POLLIN);
    /* Not ready for the event asked: a zero timeout just looks. */
    ck_assert_int_eq(vg_token_poll(tok, pfd[1], POLLIN, 0), 0);
    ck_assert_int_eq(vg_token_poll(tok, pfd[1], POLLOUT, 0), POLLOUT);
    close(pfd[0]);
    close(pfd[1]);
    vg_token_unref(tok);
}
END_TEST

START_TEST(poll_reports_hangup)
{
    vg_token *tok = vg_token_new();
    int pfd[2], rc;

    ck_assert_int_eq(pipe(pfd), 0);
    close(pfd[1]);
    rc = vg_token_poll(tok, pfd[0], POLLIN, 5000);
    ck_assert_int_gt(rc, 0);
    ck_assert(rc & POLLHUP);
    close(pfd[0]);
    vg_token_unref(tok);
}
END_TEST

START_TEST(poll_times_out_not_early)
{
    vg_token *tok = vg_token_new();
    int pfd[2];
    double t0, elapsed;

    ck_assert_int_eq(pipe(pfd), 0);
    t0 = tu_now_ms();
    ck_assert_int_eq(vg_token_poll(tok, pfd[0], POLLIN, 60), 0);
    elapsed = tu_now_ms() - t0;
    ck_assert_msg(elapsed >= 59, "timed out after %.1f ms, asked 60", elapsed);
    ck_assert_msg(elapsed < 5000, "timed out after %.1f ms, asked 60", elapsed);
    close(pfd[0]);
    close(pfd[1]);
    vg_token_unref(tok);
}
END_TEST

START_TEST(poll_cancelled_while_waiting)
{
    vg_token *tok = vg_token_new();
    pthread_t th;
    poller p;
    int pfd[2];

    ck_assert_int_eq(pipe(pfd), 0);
    poller_start(&p, &th, tok, pfd[0], -1);
    ck_assert(thread_sleeps(atomic_load(&p.tid)));
    vg_token_cancel(tok);
    pthread_join(th, NULL);
    ck_assert_int_eq(p.rc, -ECANCELED);
    tu_latch_destroy(&p.entered);
    close(pfd[0]);
    close(pfd[1]);
    vg_token_unref(tok);
}
END_TEST

START_TEST(poll_woken_by_parent_cancel)
{
    vg_token *root = vg_token_new();
    vg_token *kid = vg_token_child(root);
    pthread_t th;
    poller p;
    int pfd[2];

    ck_assert_int_eq(pipe(pfd), 0);
    poller_start(&p, &th, kid, pfd[0], 10000);
    ck_assert(thread_sleeps(atomic_load(&p.tid)));
    vg_token_cancel(root);
    pthread_join(th, NULL);
    ck_assert_int_eq(p.rc, -ECANCELED);
    ck_assert_msg(p.elapsed_ms < 5000, "woke after %.1f ms", p.elapsed_ms);
    tu_latch_destroy(&p.entered);
    close(pfd[0]);
    close(pfd[1]);
    vg_token_unref(kid);
    vg_token_unref(root);
}
END_TEST

START_TEST(poll_already_cancelled_wins_over_ready_fd)
{
    vg_token *tok = vg_token_new();
    int pfd[2];

    ck_assert_int_eq(pipe(pfd), 0);
    ck_assert_int_eq(write(pfd[1], "x", 1), 1);
    vg_token_cancel(tok);
    ck_assert_int_eq(vg_token_poll(tok, pfd[0], POLLIN, -1), -ECANCELED);
    ck_assert_int_eq(vg_token_poll(tok, pfd[0], POLLIN, 0), -ECANCELED);
    close(pfd[0]);
    close(pfd[1]);
    vg_token_unref(tok);
}
END_TEST

START_TEST(poll_bad_arguments)
{
    vg_token *tok = vg_token_new();
    int pfd[2];

    ck_assert_int_eq(vg_token_poll(NULL, 0, POLLIN, 0), -EINVAL);
    ck_assert_int_eq(vg_token_poll(tok, -1, POLLIN, 0), -EBADF);
    /* The token's own fd first, so that it cannot take the number of the
     * pipe end closed below. */
    ck_assert_int_ge(vg_token_fd(tok), 0);
    ck_assert_int_eq(pipe(pfd), 0);
    close(pfd[0]);
    close(pfd[1]);
    /* A closed descriptor: poll() says POLLNVAL, we say -EBADF. */
    ck_assert_int_eq(vg_token_poll(tok, pfd[0], POLLIN, 1000), -EBADF);
    vg_token_unref(tok);
}
END_TEST

/* A signal handled by the process interrupts poll() with EINTR; the wait
 * must go on until the token, not end with an error. */
START_TEST(poll_survives_signals)
{
    struct sigaction sa, old;
    vg_token *tok = vg_token_new();
    pthread_t th;
    poller p;
    int pfd[2], i;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = count_signal;   /* no SA_RESTART: poll sees EINTR */
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old), 0);
    atomic_store(&signals_seen, 0);
    ck_assert_int_eq(pipe(pfd), 0);
    poller_start(&p, &th, tok, pfd[0], 20000);
    for (i = 0; i < 3; i++) {
        ck_assert(thread_sleeps(atomic_load(&p.tid)));
        ck_assert_int_eq(pthread_kill(th, SIGUSR1), 0);
        while (atomic_load(&signals_seen) <= i)
            sched_yield();
    }
    ck_assert(thread_sleeps(atomic_load(&p.tid)));
    vg_token_cancel(tok);
    pthread_join(th, NULL);
    ck_assert_int_eq(p.rc, -ECANCELED);
    ck_assert_int_eq(atomic_load(&signals_seen), 3);
    sigaction(SIGUSR1, &old, NULL);
    tu_latch_destroy(&p.entered);
    close(pfd[0]);
    close(pfd[1]);
    vg_token_unref(tok);
}
END_TEST

/* ------------------------------------------------------------------------
 * vg_token_remaining_ms and vg_token_child_timeout
 */

START_TEST(remaining_none_without_deadline)
{
    vg_token *tok = vg_token_new();
    vg_token *kid = vg_token_child(tok);

    ck_assert_int_eq(vg_token_remaining_ms(tok), -1);
    ck_assert_int_eq(vg_token_remaining_ms(kid), -1);
    ck_assert_int_eq(vg_token_remaining_ms(NULL), -1);
    vg_token_unref(kid);
    vg_token_unref(tok);
}
END_TEST

START_TEST(child_timeout_has_its_deadline)
{
    vg_token *tok = vg_token_new();
    vg_token *kid = vg_token_child_timeout(tok, 30000);
    long left;

    ck_assert_ptr_nonnull(kid);
    left = vg_token_remaining_ms(kid);
    ck_assert_int_gt(left, 25000);
    ck_assert_int_le(left, 30000);
    ck_assert_int_eq(vg_token_remaining_ms(tok), -1);  /* not the parent's */
    ck_assert(!vg_token_is_cancelled(kid));
    vg_token_unref(kid);
    vg_token_unref(tok);
}
END_TEST

START_TEST(child_inherits_nearer_deadline)
{
    vg_token *root = vg_token_new();
    vg_token *near = vg_token_child_timeout(root, 20000);
    vg_token *far = vg_token_child_timeout(near, 60000);
    vg_token *plain = vg_token_child(near);
    vg_token *nearer = vg_token_child_timeout(near, 5000);

    ck_assert_int_le(vg_token_remaining_ms(far), 20000);
    ck_assert_int_gt(vg_token_remaining_ms(far), 15000);
    ck_assert_int_le(vg_token_remaining_ms(plain), 20000);
    ck_assert_int_gt(vg_token_remaining_ms(plain), 15000);
    ck_assert_int_le(vg_token_remaining_ms(nearer), 5000);
    ck_assert_int_gt(vg_token_remaining_ms(nearer), 1000);
    vg_token_unref(nearer);
    vg_token_unref(plain);
    vg_token_unref(far);
    vg_token_unref(near);
    vg_token_unref(root);
}
END_TEST

START_TEST(child_timeout_fires_with_timeout)
{
    vg_token *root = vg_token_new();
    double t0 = tu_now_ms(), elapsed;
    vg_token *kid = vg_token_child_timeout(root, 80);
    vg_token *grandkid = vg_token_child(kid);

    ck_assert(vg_token_wait(grandkid, 10000));
    elapsed = tu_now_ms() - t0;
    ck_assert_msg(elapsed >= 79, "fired after %.1f ms, asked 80", elapsed);
    ck_assert_int_eq(vg_token_reason(kid), VG_CANCEL_TIMEOUT);
    ck_assert_int_eq(vg_token_reason(grandkid), VG_CANCEL_TIMEOUT);
    ck_assert_int_eq(vg_token_remaining_ms(kid), 0);
    /* The timeout never reaches up. */
    ck_assert(!vg_token_is_cancelled(root));
    ck_assert_uint_eq(vg__timer_pending(), 0);
    vg_token_unref(grandkid);
    vg_token_unref(kid);
    vg_token_unref(root);
}
END_TEST

START_TEST(child_timeout_fd_readable_on_timeout)
{
    vg_token *root = vg_token_new();
    vg_token *kid = vg_token_child_timeout(root, 30);
    struct pollfd p;

    p.fd = vg_token_fd(kid);
    p.events = POLLIN;
    ck_assert_int_ge(p.fd, 0);
    ck_assert_int_eq(poll(&p, 1, 10000), 1);
    ck_assert_int_eq(vg_token_reason(kid), VG_CANCEL_TIMEOUT);
    vg_token_unref(kid);
    vg_token_unref(root);
}
END_TEST

START_TEST(child_timeout_zero_born_cancelled)
{
    vg_token *root = vg_token_new();
    vg_token *kid = vg_token_child_timeout(root, 0);

    ck_assert_int_eq(vg_token_reason(kid), VG_CANCEL_TIMEOUT);
    ck_assert_int_eq(vg_token_remaining_ms(kid), 0);
    ck_assert(!vg_token_is_cancelled(root));
    vg_token_unref(kid);
    vg_token_cancel(root);
    kid = vg_token_child_timeout(root, 0);
    ck_assert_int_eq(vg_token_reason(kid), VG_CANCEL_MANUAL);
    vg_token_unref(kid);
    vg_token_unref(root);
}
END_TEST

START_TEST(child_timeout_of_cancelled_parent)
{
    vg_token *root = vg_token_new();
    vg_token *kid;

    vg_token_cancel(root);
    kid = vg_token_child_timeout(root, 10000);
    ck_assert_int_eq(vg_token_reason(kid), VG_CANCEL_MANUAL);
    ck_assert_uint_eq(vg__timer_pending(), 0);
    vg_token_unref(kid);
    vg_token_unref(root);
}
END_TEST

START_TEST(child_timeout_null_parent)
{
    errno = 0;
    ck_assert_ptr_null(vg_token_child_timeout(NULL, 100));
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* A parent cancelled first: the child takes the parent's reason, its timer
 * leaves the heap at once, and nothing changes when the time comes. */
START_TEST(parent_cancel_before_timeout_keeps_parent_reason)
{
    vg_token *root = vg_token_new();
    vg_token *kid = vg_token_child_timeout(root, 60);

    ck_assert_uint_eq(vg__timer_pending(), 1);
    vg_token_cancel(root);
    ck_assert_int_eq(vg_token_reason(kid), VG_CANCEL_MANUAL);
    ck_assert_uint_eq(vg__timer_pending(), 0);
    ck_assert(vg_token_wait(kid, 0));
    vg_token_unref(kid);
    vg_token_unref(root);
}
END_TEST

/* The common case: the work ends in time and drops its token; the timer
 * goes with it and never fires. */
START_TEST(unref_before_timeout_removes_timer)
{
    vg_token *root = vg_token_new();
    int i;

    for (i = 0; i < 100; i++) {
        vg_token *kid = vg_token_child_timeout(root, 50 + (unsigned)i);
        ck_assert_ptr_nonnull(kid);
        vg_token_unref(kid);
    }
    ck_assert_uint_eq(vg__timer_pending(), 0);
    /* A canary armed after them, due later than all, fires alone. */
    {
        vg_token *canary = vg_token_child_timeout(root, 200);
        ck_assert(vg_token_wait(canary, 10000));
        ck_assert_int_eq(vg_token_reason(canary), VG_CANCEL_TIMEOUT);
        vg_token_unref(canary);
    }
    ck_assert(!vg_token_is_cancelled(root));
    vg_token_unref(root);
}
END_TEST

/* Every timer fires no earlier than its deadline (its remaining time is 0
 * when its callback runs), whatever order they were armed in. */
typedef struct {
    atomic_int early;
    atomic_int fired;
    atomic_int wrong_reason;
    tu_latch done;   /* callbacks run after waiters wake: count them here */
} fire_log;

static void record_fire(vg_token *tok, void *arg)
{
    fire_log *log = arg;

    if (vg_token_remaining_ms(tok) != 0)
        atomic_fetch_add(&log->early, 1);
    if (vg_token_reason(tok) != VG_CANCEL_TIMEOUT)
        atomic_fetch_add(&log->wrong_reason, 1);
    atomic_fetch_add(&log->fired, 1);
    tu_latch_add(&log->done, 1);
}

START_TEST(many_timers_fire_on_time)
{
    enum { N = 300 };
    vg_token *root = vg_token_new();
    vg_token *kids[N];
    fire_log log;
    unsigned seed = 12345;
    int i;

    memset(&log, 0, sizeof log);
    tu_latch_init(&log.done);
    for (i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        kids[i] = vg_token_child_timeout(root, 1 + (seed >> 16) % 150);
        ck_assert_ptr_nonnull(kids[i]);
        ck_assert_uint_ne(vg_token_on_cancel(kids[i], record_fire, &log), 0);
    }
    for (i = 0; i < N; i++)
        ck_assert(vg_token_wait(kids[i], 20000));
    /* A woken waiter may run before its token's callbacks have (volga.h:
     * the order of a cancellation), so wait for the callbacks too. */
    ck_assert(tu_latch_wait(&log.done, N, 20000));
    ck_assert_int_eq(atomic_load(&log.fired), N);
    ck_assert_int_eq(atomic_load(&log.early), 0);
    ck_assert_int_eq(atomic_load(&log.wrong_reason), 0);
    ck_assert_uint_eq(vg__timer_pending(), 0);
    for (i = 0; i < N; i++)
        vg_token_unref(kids[i]);
    tu_latch_destroy(&log.done);
    vg_token_unref(root);
}
END_TEST

/* Dropping the last reference while the timer thread is firing the timer:
 * under ASan/TSan/valgrind this catches a use after free or a race. */
static void *drop_after(void *arg)
{
    vg_token_unref(arg);
    return NULL;
}

START_TEST(race_unref_vs_timer_fire)
{
    vg_token *root = vg_token_new();
    int i;

    for (i = 0; i < 2000; i++) {
        vg_token *kid = vg_token_child_timeout(root, (unsigned)(i % 2));
        pthread_t th;

        ck_assert_ptr_nonnull(kid);
        ck_assert_int_eq(pthread_create(&th, NULL, drop_after, kid), 0);
        pthread_join(th, NULL);
    }
    ck_assert_uint_eq(vg__timer_pending(), 0);
    ck_assert(!vg_token_is_cancelled(root));
    vg_token_unref(root);
}
END_TEST

/* A callback run by the timeout drops the last reference to its token:
 * the token is freed on the timer thread, inside its own timer's firing. */
static void drop_in_callback(vg_token *tok, void *arg)
{
    tu_latch *done = arg;

    vg_token_unref(tok);
    tu_latch_add(done, 1);
}

START_TEST(callback_frees_token_on_timer_thread)
{
    vg_token *root = vg_token_new();
    tu_latch done;
    int i;

    tu_latch_init(&done);
    for (i = 0; i < 50; i++) {
        vg_token *kid = vg_token_child_timeout(root, 5);
        ck_assert_uint_ne(vg_token_on_cancel(kid, drop_in_callback, &done), 0);
    }
    ck_assert(tu_latch_wait(&done, 50, 20000));
    ck_assert_uint_eq(vg__timer_pending(), 0);
    tu_latch_destroy(&done);
    vg_token_unref(root);
}
END_TEST

/* ------------------------------------------------------------------------
 * A request's token knows the request's deadline
 */

static vg_result *remaining_handler(vg_request *req, void *arg)
{
    vg_token *kid;
    long own, child;

    (void)arg;
    own = vg_token_remaining_ms(vg_request_token(req));
    kid = vg_token_child_timeout(vg_request_token(req), 60000);
    if (kid == NULL)
        return vg_status(500);
    child = vg_token_remaining_ms(kid);
    vg_token_unref(kid);
    return vg_textf("%ld %ld", own, child);
}

static void get_remaining(unsigned short port, const char *path, long *own,
                          long *child)
{
    tu_response r = tu_get(port, path);

    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(sscanf(r.body, "%ld %ld", own, child), 2);
    tu_response_free(&r);
}

START_TEST(request_token_knows_app_deadline)
{
    vg_app *app = tu_app_new();
    long own, child;

    ck_assert_int_eq(vg_app_set_request_timeout(app, 40000), 0);
    ck_assert_int_eq(vg_map_get(app, "/r", remaining_handler, NULL), 0);
    tu_start(app);
    get_remaining(vg_app_port(app), "/r", &own, &child);
    ck_assert_int_gt(own, 30000);
    ck_assert_int_le(own, 40000);
    /* The child asked for 60 s but inherits the request's nearer 40. */
    ck_assert_int_gt(child, 30000);
    ck_assert_int_le(child, own);
    vg_app_free(app);
}
END_TEST

START_TEST(request_token_knows_group_deadline)
{
    vg_app *app = tu_app_new();
    vg_group *g = vg_app_group(app, "/slow");
    long own, child;

    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(vg_app_set_request_timeout(app, 40000), 0);
    ck_assert_int_eq(vg_group_set_timeout(g, 20000), 0);
    ck_assert_int_eq(vg_group_map_get(g, "/r", remaining_handler, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/r", remaining_handler, NULL), 0);
    tu_start(app);
    get_remaining(vg_app_port(app), "/slow/r", &own, &child);
    ck_assert_int_gt(own, 15000);
    ck_assert_int_le(own, 20000);
    get_remaining(vg_app_port(app), "/r", &own, &child);
    ck_assert_int_gt(own, 30000);
    ck_assert_int_le(own, 40000);
    vg_app_free(app);
}
END_TEST

START_TEST(request_token_without_deadline)
{
    vg_app *app = tu_app_new();
    long own, child;

    ck_assert_int_eq(vg_map_get(app, "/r", remaining_handler, NULL), 0);
    tu_start(app);
    get_remaining(vg_app_port(app), "/r", &own, &child);
    ck_assert_int_eq(own, -1);
    ck_assert_int_gt(child, 50000);
    ck_assert_int_le(child, 60000);
    vg_app_free(app);
}
END_TEST

/* A handler bounding one step of its work with a child_timeout: the step
 * is cut short with VG_CANCEL_TIMEOUT while the request goes on. */
static vg_result *step_handler(vg_request *req, void *arg)
{
    vg_token *step = vg_token_child_timeout(vg_request_token(req), 50);
    int pfd[2], rc;
    vg_cancel_reason why;

    (void)arg;
    if (step == NULL || pipe(pfd) != 0) {
        vg_token_unref(step);
        return vg_status(500);
    }
    rc = vg_token_poll(step, pfd[0], POLLIN, 20000);
    why = vg_token_reason(step);
    vg_token_unref(step);
    close(pfd[0]);
    close(pfd[1]);
    return vg_textf("%d %s %d", rc, vg_cancel_reason_name(why),
                    (int)vg_token_is_cancelled(vg_request_token(req)));
}

START_TEST(child_timeout_bounds_a_step_of_a_request)
{
    vg_app *app = tu_app_new();
    tu_response r;
    char want[64];

    ck_assert_int_eq(vg_map_get(app, "/step", step_handler, NULL), 0);
    tu_start(app);
    r = tu_get(vg_app_port(app), "/step");
    ck_assert_int_eq(r.status, 200);
    snprintf(want, sizeof want, "%d timeout 0", -ECANCELED);
    ck_assert_str_eq(r.body, want);
    tu_response_free(&r);
    vg_app_free(app);
}
END_TEST

static Suite *reach_suite(void)
{
    Suite *s = suite_create("reach");
    TCase *tc;

    tc = tcase_create("poll");
    tcase_add_test(tc, poll_returns_revents_when_fd_ready);
    tcase_add_test(tc, poll_reports_hangup);
    tcase_add_test(tc, poll_times_out_not_early);
    tcase_add_test(tc, poll_cancelled_while_waiting);
    tcase_add_test(tc, poll_woken_by_parent_cancel);
    tcase_add_test(tc, poll_already_cancelled_wins_over_ready_fd);
    tcase_add_test(tc, poll_bad_arguments);
    tcase_add_test(tc, poll_survives_signals);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("deadlines");
    tcase_add_test(tc, remaining_none_without_deadline);
    tcase_add_test(tc, child_timeout_has_its_deadline);
    tcase_add_test(tc, child_inherits_nearer_deadline);
    tcase_add_test(tc, child_timeout_fires_with_timeout);
    tcase_add_test(tc, child_timeout_fd_readable_on_timeout);
    tcase_add_test(tc, child_timeout_zero_born_cancelled);
    tcase_add_test(tc, child_timeout_of_cancelled_parent);
    tcase_add_test(tc, child_timeout_null_parent);
    tcase_add_test(tc, parent_cancel_before_timeout_keeps_parent_reason);
    tcase_add_test(tc, unref_before_timeout_removes_timer);
    tcase_add_test(tc, many_timers_fire_on_time);
    tcase_add_test(tc, race_unref_vs_timer_fire);
    tcase_add_test(tc, callback_frees_token_on_timer_thread);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("request");
    tcase_add_test(tc, request_token_knows_app_deadline);
    tcase_add_test(tc, request_token_knows_group_deadline);
    tcase_add_test(tc, request_token_without_deadline);
    tcase_add_test(tc, child_timeout_bounds_a_step_of_a_request);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(reach_suite());
}
