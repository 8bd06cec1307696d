/*
 * test_cancel.c - integration tests for request cancellation: a real app on
 * 127.0.0.1:0, clients that leave (FIN, RST, half-close) while their
 * handler runs, and the ways a handler can notice (waiting on the token, its
 * file descriptor, a callback, a child token); plus the cases where nothing
 * must be cancelled (keep-alive, fast requests), results that come too late,
 * a client gone before its handler starts, a randomised race, and the
 * long_task sample driven by the curl tool.
 *
 * Nothing here sleeps to synchronise. Handlers and the test meet through
 * tu_latch, vg_token_wait, poll(), pthread_join and blocking socket reads;
 * every wait has a generous bound (seconds) that only catches hangs, and
 * every handler that blocks is bounded too (HANDLER_MS), so a library that
 * never cancels shows as a failed assertion rather than a hang. The app's
 * counters have no change notification: where a test must know that the
 * library is done with a request, it polls vg_app_stats in a bounded loop
 * (wait_stats). The stress test randomises the moment a client leaves with
 * nanosleep: there time itself is what is being varied.
 *
 * Helper threads never call ck_assert (Check cannot report from them in
 * no-fork mode); they record what they saw and the test thread asserts.
 * Run under ASan, TSan and valgrind (CK_FORK=no) for leaks and races too;
 * VG_STRESS_N scales the stress test.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "volga.h"
#include "testutil.h"


/* The longest any handler here blocks before giving up on its token. */
#define HANDLER_MS 10000
/* How long the test waits for something that should take milliseconds. */
#define HANG_MS 5000

#define WAIT_REQUEST "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n"

/* ------------------------------------------------------------------------
 * Helpers
 */

/* A counter, as a function so that a failed assertion prints a value. */
static int loadi(atomic_int *a)
{
    return atomic_load(a);
}

typedef enum { ST_REQUESTS, ST_IN_FLIGHT, ST_CLIENT_GONE } stat_field;

static unsigned long long stat_of(const vg_stats *st, stat_field f)
{
    switch (f) {
    case ST_REQUESTS:
        return st->requests;
    case ST_IN_FLIGHT:
        return st->in_flight;
    case ST_CLIENT_GONE:
    default:
        return st->cancelled_client_gone;
    }
}

/*
 * Polls the app's counters until `f` equals `want` (or, with `at_least`,
 * reaches it) and, if `settle` is set, nothing is in flight; at most `ms`.
 * The pause between looks is a wait on a private token that nobody
 * cancels. Leaves the last snapshot in *out (may be NULL).
 */
static bool wait_stats(vg_app *app, stat_field f, unsigned long long want,
                       bool at_least, bool settle, int ms, vg_stats *out)
{
    vg_token *tick = vg_token_new();
    double deadline = tu_now_ms() + ms;
    vg_stats st;
    bool ok;

    ck_assert_ptr_nonnull(tick);
    for (;;) {
        unsigned long long v;

        vg_app_stats(app, &st);
        v = stat_of(&st, f);
        ok = (at_least ? v >= want : v == want) &&
             (!settle || st.in_flight == 0);
        if (ok || tu_now_ms() > deadline)
            break;
        vg_token_wait(tick, 1);
    }
    vg_token_unref(tick);
    if (out != NULL)
        *out = st;
    return ok;
}

/* Waits until at least `requests` requests are accounted for and no
 * handler is running or queued: the library is done with them. */
static bool wait_settled(vg_app *app, unsigned long long requests, int ms,
                         vg_stats *out)
{
    return wait_stats(app, ST_REQUESTS, requests, true, true, ms, out);
}

static void send_str(int fd, const char *s)
{
    ck_assert_msg(tu_send_all(fd, s, strlen(s)), "send failed: %s",
                  strerror(errno));
}

/* The status code of a raw response, or 0. */
static int raw_status(const char *resp)
{
    int code = 0;

    if (sscanf(resp, "HTTP/1.1 %3d ", &code) != 1)
        return 0;
    return code;
}

/* True if `resp` (len bytes) is a 200 whose Content-Length frames exactly
 * `body`. */
static bool raw_is_200(const char *resp, size_t len, const char *body)
{
    const char *hend = strstr(resp, "\r\n\r\n");
    const char *cl = strcasestr(resp, "\r\nContent-Length:");
    size_t blen = strlen(body);

    if (len == 0 || raw_status(resp) != 200 || hend == NULL || cl == NULL ||
        cl > hend)
        return false;
    return strtoul(cl + 17, NULL, 10) == blen &&
           len == (size_t)(hend + 4 - resp) + blen &&
           memcmp(hend + 4, body, blen) == 0;
}

/* ------------------------------------------------------------------------
 * What a handler saw, and the driver of "a client leaves a running handler"
 */

typedef struct {
    tu_latch started;       /* the handler is running (and ready) */
    tu_latch finished;      /* the handler recorded what it saw */
    tu_latch client_left;   /* the test has made the client leave */
    atomic_int calls;

    /* Written by the handler before `finished`, read after it. */
    bool woke;              /* its wait ended because of cancellation */
    vg_cancel_reason reason; /* the request token's reason then */
    double woke_ms;         /* when it woke (tu_now_ms) */
    vg_token *req_tok;      /* the request's token, as a pointer */

    /* Token fd test. */
    int tok_fd, poll_rc;
    short revents;

    /* Callback test. */
    tu_latch fired;         /* the callback ran */
    atomic_int cb_calls;
    vg_token *cb_tok;
    vg_cancel_reason cb_reason;
    pthread_t handler_thread;
    bool cb_on_handler_thread;
    unsigned long cb_id;
    bool off_result;

    /* Child token test. */
    bool child_made;
    vg_cancel_reason child_reason;

    /* Late result test. */
    bool saw_client_left;

    double left_ms;         /* when the test made the client leave */
} probe;

static probe *probe_new(void)
{
    probe *p = calloc(1, sizeof *p);

    ck_assert_ptr_nonnull(p);
    tu_latch_init(&p->started);
    tu_latch_init(&p->finished);
    tu_latch_init(&p->client_left);
    tu_latch_init(&p->fired);
    p->tok_fd = -1;
    return p;
}

/* Only once no handler can touch `p` any more (after vg_app_free). On a
 * failed assertion the probe is leaked on purpose: a handler may still
 * hold it. */
static void probe_free(probe *p)
{
    tu_latch_destroy(&p->started);
    tu_latch_destroy(&p->finished);
    tu_latch_destroy(&p->client_left);
    tu_latch_destroy(&p->fired);
    free(p);
}

typedef enum { LEAVE_FIN, LEAVE_RST, LEAVE_HALF } leave_how;

/*
 * Serves GET /wait with `fn(req, p)`, sends one request on a raw socket,
 * waits until the handler runs, makes the client leave `how`, and waits for
 * the handler to report. Then checks what every such test expects: the
 * handler woke because of the cancellation, after the client left, with
 * VG_CANCEL_CLIENT_GONE; the request is accounted for; exactly one token
 * was counted as cancelled for a client gone, none for anything else; the
 * handler ran once. After a half-close the client can still read: it must
 * see the connection closed without a byte, the late result discarded.
 */
static void run_client_leaves(vg_handler fn, probe *p, leave_how how)
{
    vg_app *app = tu_app_new();
    vg_stats st;
    int fd;

    ck_assert_int_eq(vg_map_get(app, "/wait", fn, p), 0);
    tu_start(app);
    vg_app_stats(app, &st);
    ck_assert_uint_eq(st.cancelled_client_gone, 0);

    fd = tu_connect(vg_app_port(app));
    send_str(fd, WAIT_REQUEST);
    ck_assert_msg(tu_latch_wait(&p->started, 1, HANG_MS),
                  "the handler did not start within %d ms", HANG_MS);

    p->left_ms = tu_now_ms();
    switch (how) {
    case LEAVE_FIN:
        ck_assert_int_eq(close(fd), 0);
        fd = -1;
        break;
    case LEAVE_RST:
        tu_close_rst(fd);
        fd = -1;
        break;
    case LEAVE_HALF:
        ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
        break;
    }
    tu_latch_add(&p->client_left, 1);

    ck_assert_msg(tu_latch_wait(&p->finished, 1, HANG_MS),
                  "the handler was not woken within %d ms of the client "
                  "leaving", HANG_MS);
    ck_assert_msg(p->woke, "the handler's wait did not end by cancellation");
    ck_assert_int_eq(p->reason, VG_CANCEL_CLIENT_GONE);
    ck_assert_msg(p->woke_ms >= p->left_ms,
                  "the handler woke before the client left");

    ck_assert_msg(wait_settled(app, 1, HANG_MS, &st),
                  "the request was not finished: requests %llu, in flight %llu",
                  st.requests, st.in_flight);
    ck_assert_uint_eq(st.requests, 1);
    ck_assert_uint_eq(st.cancelled_client_gone, 1);
    ck_assert_uint_eq(st.cancelled_timeout, 0);
    ck_assert_uint_eq(st.cancelled_shutdown, 0);

    if (how == LEAVE_HALF) {
        struct timeval tv = {HANG_MS / 1000, 0};
        char buf[256];
        ssize_t n;

        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        do
            n = recv(fd, buf, sizeof buf - 1, 0);
        while (n < 0 && errno == EINTR);
        if (n > 0)
            buf[n] = '\0';
        ck_assert_msg(n == 0,
                      "after a half-close the server should close without an "
                      "answer; recv gave %zd (%s)", n,
                      n > 0 ? buf : strerror(errno));
        close(fd);
    }

    vg_app_free(app);
    ck_assert_int_eq(loadi(&p->calls), 1);
}

/* The basic pattern: block on the token, record why the wait ended. */
static vg_result *h_wait(vg_request *req, void *arg)
{
    probe *p = arg;
    vg_token *tok = vg_request_token(req);

    atomic_fetch_add(&p->calls, 1);
    p->req_tok = tok;
    tu_latch_add(&p->started, 1);
    p->woke = vg_token_wait(tok, HANDLER_MS);
    p->woke_ms = tu_now_ms();
    p->reason = vg_token_reason(tok);
    tu_latch_add(&p->finished, 1);
    return vg_text("woke\n");
}

/* ------------------------------------------------------------------------
 * A client that leaves cancels the running handler's token
 */

START_TEST(test_fin_cancels)
{
    probe *p = probe_new();

    run_client_leaves(h_wait, p, LEAVE_FIN);
    probe_free(p);
}
END_TEST

START_TEST(test_rst_cancels)
{
    probe *p = probe_new();

    run_client_leaves(h_wait, p, LEAVE_RST);
    probe_free(p);
}
END_TEST

/* DESIGN.md fact 13: shutdown(SHUT_WR) is a client gone, like a close. */
START_TEST(test_half_close_cancels)
{
    probe *p = probe_new();

    run_client_leaves(h_wait, p, LEAVE_HALF);
    probe_free(p);
}
END_TEST

/* Blocks in poll() on the token's fd, as a handler racing its own fds
 * would. */
static vg_result *h_poll_fd(vg_request *req, void *arg)
{
    probe *p = arg;
    vg_token *tok = vg_request_token(req);
    struct pollfd pfd;

    atomic_fetch_add(&p->calls, 1);
    p->req_tok = tok;
    p->tok_fd = vg_token_fd(tok);
    pfd.fd = p->tok_fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    tu_latch_add(&p->started, 1);
    if (p->tok_fd >= 0) {
        do
            p->poll_rc = poll(&pfd, 1, HANDLER_MS);
        while (p->poll_rc < 0 && errno == EINTR);
    }
    p->revents = pfd.revents;
    p->woke = p->poll_rc == 1 && (pfd.revents & POLLIN) != 0;
    p->woke_ms = tu_now_ms();
    p->reason = vg_token_reason(tok);
    tu_latch_add(&p->finished, 1);
    return vg_text("woke\n");
}

START_TEST(test_token_fd_wakes_poll)
{
    probe *p = probe_new();

    run_client_leaves(h_poll_fd, p, LEAVE_FIN);
    ck_assert_int_ge(p->tok_fd, 0);
    ck_assert_int_eq(p->poll_rc, 1);
    ck_assert_msg((p->revents & POLLIN) != 0, "revents 0x%x without POLLIN",
                  (unsigned)p->revents);
    probe_free(p);
}
END_TEST

static void on_cancel_record(vg_token *tok, void *arg)
{
    probe *p = arg;

    p->cb_tok = tok;
    p->cb_reason = vg_token_reason(tok);
    p->cb_on_handler_thread = pthread_equal(pthread_self(), p->handler_thread);
    atomic_fetch_add(&p->cb_calls, 1);
    tu_latch_add(&p->fired, 1);
}

/* Registers a callback, then waits on a condition variable that only the
 * callback signals. */
static vg_result *h_on_cancel(vg_request *req, void *arg)
{
    probe *p = arg;
    vg_token *tok = vg_request_token(req);

    atomic_fetch_add(&p->calls, 1);
    p->req_tok = tok;
    p->handler_thread = pthread_self();
    p->cb_id = vg_token_on_cancel(tok, on_cancel_record, p);
    tu_latch_add(&p->started, 1);
    p->woke = p->cb_id != 0 && tu_latch_wait(&p->fired, 1, HANDLER_MS);
    p->woke_ms = tu_now_ms();
    p->reason = vg_token_reason(tok);
    /* The callback already ran, so there is nothing left to remove. */
    p->off_result = vg_token_off(tok, p->cb_id);
    tu_latch_add(&p->finished, 1);
    return vg_text("woke\n");
}

START_TEST(test_on_cancel_callback)
{
    probe *p = probe_new();

    run_client_leaves(h_on_cancel, p, LEAVE_FIN);
    ck_assert_uint_ne(p->cb_id, 0);
    ck_assert_int_eq(loadi(&p->cb_calls), 1);
    ck_assert_ptr_eq(p->cb_tok, p->req_tok);
    ck_assert_int_eq(p->cb_reason, VG_CANCEL_CLIENT_GONE);
    ck_assert_msg(!p->cb_on_handler_thread,
                  "the callback ran on the handler's thread, not the "
                  "cancelling one");
    ck_assert_msg(!p->off_result, "vg_token_off removed a callback that ran");
    probe_free(p);
}
END_TEST

/* Waits on a child of the request's token, then drops it. */
static vg_result *h_child(vg_request *req, void *arg)
{
    probe *p = arg;
    vg_token *tok = vg_request_token(req);
    vg_token *child = vg_token_child(tok);

    atomic_fetch_add(&p->calls, 1);
    p->req_tok = tok;
    p->child_made = child != NULL;
    tu_latch_add(&p->started, 1);
    p->woke = child != NULL && vg_token_wait(child, HANDLER_MS);
    p->woke_ms = tu_now_ms();
    p->child_reason = vg_token_reason(child);
    p->reason = vg_token_reason(tok);
    vg_token_unref(child);
    tu_latch_add(&p->finished, 1);
    return vg_text("woke\n");
}

START_TEST(test_child_token_cancelled)
{
    probe *p = probe_new();

    run_client_leaves(h_child, p, LEAVE_FIN);
    ck_assert(p->child_made);
    ck_assert_int_eq(p->child_reason, VG_CANCEL_CLIENT_GONE);
    probe_free(p);
}
END_TEST

/* ------------------------------------------------------------------------
 * Results
 */

/* Waits until the test has closed the client, then for the token (which
 * must be cancelled by then or soon), and answers anyway. */
static vg_result *h_late(vg_request *req, void *arg)
{
    probe *p = arg;
    vg_token *tok = vg_request_token(req);

    atomic_fetch_add(&p->calls, 1);
    p->req_tok = tok;
    tu_latch_add(&p->started, 1);
    p->saw_client_left = tu_latch_wait(&p->client_left, 1, HANDLER_MS);
    p->woke = vg_token_wait(tok, HANG_MS);
    p->woke_ms = tu_now_ms();
    p->reason = vg_token_reason(tok);
    tu_latch_add(&p->finished, 1);
    return vg_text("late");
}

/* A result returned after the client left is discarded: the worker finishes
 * (nothing in flight), the request is counted once, nothing leaks (ASan,
 * valgrind) and the app frees cleanly. */
START_TEST(test_late_result_discarded)
{
    probe *p = probe_new();

    run_client_leaves(h_late, p, LEAVE_FIN);
    ck_assert(p->saw_client_left);
    probe_free(p);
}
END_TEST

typedef struct {
    vg_token *tok1;      /* request 1's token, referenced */
    bool tok1_manual;    /* request 1's token read MANUAL after cancelling */
    pthread_mutex_t mu;  /* guards the above */
    atomic_int calls1, calls2;
} keepalive_state;

/* Keeps a reference to its token, cancels it, and answers all the same. */
static vg_result *h_cancel_self(vg_request *req, void *arg)
{
    keepalive_state *ks = arg;
    vg_token *tok = vg_request_token(req);

    atomic_fetch_add(&ks->calls1, 1);
    pthread_mutex_lock(&ks->mu);
    ks->tok1 = vg_token_ref(tok);
    pthread_mutex_unlock(&ks->mu);
    vg_token_cancel(tok);
    pthread_mutex_lock(&ks->mu);
    ks->tok1_manual = vg_token_is_cancelled(tok) &&
                      vg_token_reason(tok) == VG_CANCEL_MANUAL;
    pthread_mutex_unlock(&ks->mu);
    return vg_text("cancelled myself");
}

/* Reports its own token's state and whether it is request 1's. */
static vg_result *h_report_token(vg_request *req, void *arg)
{
    keepalive_state *ks = arg;
    vg_token *tok = vg_request_token(req);
    bool same;

    atomic_fetch_add(&ks->calls2, 1);
    pthread_mutex_lock(&ks->mu);
    same = tok == ks->tok1;
    pthread_mutex_unlock(&ks->mu);
    return vg_textf("cancelled=%d reason=%d same=%d",
                    (int)vg_token_is_cancelled(tok), (int)vg_token_reason(tok),
                    (int)same);
}

/* A token is per request, not per connection: cancelling request 1's token
 * leaves request 2 on the same keep-alive connection untouched. And a
 * request whose handler cancelled its own token is still answered. */
START_TEST(test_keepalive_fresh_token)
{
    keepalive_state ks;
    vg_app *app = tu_app_new();
    vg_stats st;
    char buf[4096];
    size_t n;
    int fd;

    memset(&ks, 0, sizeof ks);
    pthread_mutex_init(&ks.mu, NULL);
    ck_assert_int_eq(vg_map_get(app, "/cancel-self", h_cancel_self, &ks), 0);
    ck_assert_int_eq(vg_map_get(app, "/report", h_report_token, &ks), 0);
    tu_start(app);
    fd = tu_connect(vg_app_port(app));

    send_str(fd, "GET /cancel-self HTTP/1.1\r\nHost: x\r\n\r\n");
    n = tu_recv_response(fd, buf, sizeof buf);
    ck_assert_msg(n > 0, "no answer to request 1");
    ck_assert_msg(raw_is_200(buf, n, "cancelled myself"),
                  "request 1 (token cancelled by its handler) got: %s", buf);
    ck_assert_msg(strcasestr(buf, "Connection: close") == NULL,
                  "request 1 closed the connection: %s", buf);

    send_str(fd, "GET /report HTTP/1.1\r\nHost: x\r\n\r\n");
    n = tu_recv_response(fd, buf, sizeof buf);
    ck_assert_msg(n > 0, "no answer to request 2 on the same connection");
    ck_assert_msg(raw_is_200(buf, n, "cancelled=0 reason=0 same=0"),
                  "request 2 did not get a fresh, live token: %s", buf);
    close(fd);

    ck_assert_msg(wait_settled(app, 2, HANG_MS, &st),
                  "requests %llu, in flight %llu", st.requests, st.in_flight);
    ck_assert_uint_eq(st.requests, 2);
    ck_assert_uint_eq(st.cancelled_client_gone, 0);
    ck_assert_uint_eq(st.cancelled_timeout, 0);
    ck_assert_uint_eq(st.cancelled_shutdown, 0);
    vg_app_free(app);

    ck_assert_int_eq(loadi(&ks.calls1), 1);
    ck_assert_int_eq(loadi(&ks.calls2), 1);
    ck_assert(ks.tok1_manual);
    /* The first reason sticks: the connection closing later changed
     * nothing. */
    ck_assert_ptr_nonnull(ks.tok1);
    ck_assert_int_eq(vg_token_reason(ks.tok1), VG_CANCEL_MANUAL);
    vg_token_unref(ks.tok1);
    pthread_mutex_destroy(&ks.mu);
}
END_TEST

/* ------------------------------------------------------------------------
 * A client gone before its handler starts
 */

typedef struct {
    tu_latch a_started, release;
    atomic_int a_calls, b_calls;
    bool a_released;
} queue_state;

/* Holds the only worker until the test releases it. */
static vg_result *h_hold_worker(vg_request *req, void *arg)
{
    queue_state *qs = arg;

    (void)req;
    atomic_fetch_add(&qs->a_calls, 1);
    tu_latch_add(&qs->a_started, 1);
    qs->a_released = tu_latch_wait(&qs->release, 1, HANDLER_MS);
    return vg_text("A");
}

static vg_result *h_count_b(vg_request *req, void *arg)
{
    queue_state *qs = arg;

    (void)req;
    atomic_fetch_add(&qs->b_calls, 1);
    return vg_text("B");
}

/* With one worker busy, request B waits in the queue; its client leaves;
 * the watcher cancels B's token and the worker, once free, skips B. */
START_TEST(test_gone_before_handler_starts)
{
    queue_state qs;
    vg_app *app = tu_app_new();
    vg_stats st;
    char buf[4096];
    size_t n;
    int fa, fb;

    memset(&qs, 0, sizeof qs);
    tu_latch_init(&qs.a_started);
    tu_latch_init(&qs.release);
    ck_assert_int_eq(vg_app_set_workers(app, 1), 0);
    ck_assert_int_eq(vg_map_get(app, "/a", h_hold_worker, &qs), 0);
    ck_assert_int_eq(vg_map_get(app, "/b", h_count_b, &qs), 0);
    tu_start(app);

    fa = tu_connect(vg_app_port(app));
    send_str(fa, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_msg(tu_latch_wait(&qs.a_started, 1, HANG_MS),
                  "handler A did not start");

    fb = tu_connect(vg_app_port(app));
    send_str(fb, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    /* B counts as in flight once it is suspended, watched and queued. */
    ck_assert_msg(wait_stats(app, ST_IN_FLIGHT, 2, false, false, HANG_MS, &st),
                  "request B was not queued: in flight %llu", st.in_flight);
    ck_assert_int_eq(close(fb), 0);
    ck_assert_msg(wait_stats(app, ST_CLIENT_GONE, 1, true, false, HANG_MS, &st),
                  "B's client left but no token was cancelled");

    tu_latch_add(&qs.release, 1);
    n = tu_recv_response(fa, buf, sizeof buf);
    ck_assert_msg(raw_is_200(buf, n, "A"), "request A got: %s", buf);
    close(fa);

    ck_assert_msg(wait_settled(app, 2, HANG_MS, &st),
                  "requests %llu, in flight %llu", st.requests, st.in_flight);
    ck_assert_uint_eq(st.requests, 2);
    ck_assert_uint_eq(st.cancelled_client_gone, 1);
    vg_app_free(app);

    ck_assert(qs.a_released);
    ck_assert_int_eq(loadi(&qs.a_calls), 1);
    ck_assert_msg(loadi(&qs.b_calls) == 0,
                  "B's handler ran %d times although its client had left",
                  loadi(&qs.b_calls));
    tu_latch_destroy(&qs.a_started);
    tu_latch_destroy(&qs.release);
}
END_TEST

/* ------------------------------------------------------------------------
 * Fast requests are never cancelled
 */

#define FAST_THREADS 4
#define FAST_PER_THREAD 250

typedef struct {
    atomic_int calls, cancelled_at_entry, cancelled_at_return;
} fast_state;

static vg_result *h_fast(vg_request *req, void *arg)
{
    fast_state *fs = arg;
    vg_token *tok = vg_request_token(req);
    vg_result *res;

    atomic_fetch_add(&fs->calls, 1);
    if (vg_token_is_cancelled(tok))
        atomic_fetch_add(&fs->cancelled_at_entry, 1);
    res = vg_text("fast");
    if (vg_token_is_cancelled(tok))
        atomic_fetch_add(&fs->cancelled_at_return, 1);
    return res;
}

typedef struct {
    unsigned short port;
    int ok, bad;
    long connects;       /* new connections libcurl opened */
    char first_bad[160];
} fast_client;

static void *fast_client_main(void *arg)
{
    fast_client *fc = arg;
    CURL *c = curl_easy_init();
    int i;

    if (c == NULL) {
        fc->bad = FAST_PER_THREAD;
        snprintf(fc->first_bad, sizeof fc->first_bad, "curl_easy_init failed");
        return NULL;
    }
    for (i = 0; i < FAST_PER_THREAD; i++) {
        tu_response r = tu_curl_perform(c, fc->port, "/fast");
        long nc = 0;

        if (r.status == 200 && strcmp(r.body, "fast") == 0) {
            fc->ok++;
        } else {
            if (fc->bad++ == 0)
                snprintf(fc->first_bad, sizeof fc->first_bad,
                         "curl code %d, status %ld, body '%.60s'",
                         r.curl_code, r.status, r.body);
        }
        if (curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &nc) == CURLE_OK)
            fc->connects += nc;
        tu_response_free(&r);
    }
    curl_easy_cleanup(c);
    return NULL;
}

START_TEST(test_fast_requests_never_cancelled)
{
    fast_state fs;
    fast_client fc[FAST_THREADS];
    pthread_t th[FAST_THREADS];
    vg_app *app = tu_app_new();
    vg_stats st;
    long connects = 0;
    int i, ok = 0;

    memset(&fs, 0, sizeof fs);
    memset(fc, 0, sizeof fc);
    ck_assert_int_eq(vg_map_get(app, "/fast", h_fast, &fs), 0);
    tu_start(app);
    for (i = 0; i < FAST_THREADS; i++) {
        fc[i].port = vg_app_port(app);
        ck_assert_int_eq(pthread_create(&th[i], NULL, fast_client_main, &fc[i]), 0);
    }
    for (i = 0; i < FAST_THREADS; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_msg(fc[i].bad == 0, "client %d: %d bad answers, first: %s",
                      i, fc[i].bad, fc[i].first_bad);
        ok += fc[i].ok;
        connects += fc[i].connects;
    }
    ck_assert_int_eq(ok, FAST_THREADS * FAST_PER_THREAD);
    /* Each handle kept its one connection: these were keep-alive requests,
     * each following another on a connection whose token was not shared. */
    ck_assert_int_eq(connects, FAST_THREADS);

    ck_assert_msg(wait_settled(app, FAST_THREADS * FAST_PER_THREAD, HANG_MS, &st),
                  "requests %llu, in flight %llu", st.requests, st.in_flight);
    ck_assert_uint_eq(st.requests, FAST_THREADS * FAST_PER_THREAD);
    ck_assert_uint_eq(st.cancelled_client_gone, 0);
    ck_assert_uint_eq(st.cancelled_timeout, 0);
    ck_assert_uint_eq(st.cancelled_shutdown, 0);
    vg_app_free(app);

    ck_assert_int_eq(loadi(&fs.calls), FAST_THREADS * FAST_PER_THREAD);
    ck_assert_int_eq(loadi(&fs.cancelled_at_entry), 0);
    ck_assert_int_eq(loadi(&fs.cancelled_at_return), 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * Stress: handlers racing clients that read, close or reset at random
 */

#define STRESS_THREADS 8
#define STRESS_DEFAULT_N 2000

/* What each request's handler saw when it returned. */
enum { SEEN_NOT_RUN = 0, SEEN_LIVE, SEEN_CLIENT_GONE, SEEN_OTHER };
/* What each request's client did. */
enum { MODE_READ = 0, MODE_FIN, MODE_RST };

typedef struct {
    unsigned n;
    unsigned short port;
    atomic_uint next;          /* next request id to send */
    atomic_int started, finished, bad_ids;
    _Atomic unsigned char *seen; /* per id, SEEN_* (handler side) */
    unsigned char *mode;       /* per id, MODE_* (client side) */

    atomic_int reads_ok, reads_bad, fins, rsts, sock_errors;
    pthread_mutex_t mu;        /* guards first_bad */
    char first_bad[300];
} stress_state;

static vg_result *h_stress(vg_request *req, void *arg)
{
    stress_state *ss = arg;
    vg_token *tok = vg_request_token(req);
    const char *ids = vg_request_param(req, "id");
    unsigned long id = ids ? strtoul(ids, NULL, 10) : ULONG_MAX;
    vg_cancel_reason why;

    atomic_fetch_add(&ss->started, 1);
    /* 0-3 ms, varied from request to request. */
    vg_token_wait(tok, (int)(((id * 2654435761u) >> 8) % 4));
    why = vg_token_reason(tok);
    if (id < ss->n)
        atomic_store(&ss->seen[id],
                     why == VG_CANCEL_NONE          ? SEEN_LIVE
                     : why == VG_CANCEL_CLIENT_GONE ? SEEN_CLIENT_GONE
                                                    : SEEN_OTHER);
    else
        atomic_fetch_add(&ss->bad_ids, 1);
    atomic_fetch_add(&ss->finished, 1);
    return vg_textf("stress %lu", id);
}

static void stress_bad(stress_state *ss, const char *what, unsigned id,
                       const char *resp)
{
    atomic_fetch_add(&ss->reads_bad, 1);
    pthread_mutex_lock(&ss->mu);
    if (ss->first_bad[0] == '\0')
        snprintf(ss->first_bad, sizeof ss->first_bad, "request %u: %s: %.200s",
                 id, what, resp);
    pthread_mutex_unlock(&ss->mu);
}

static void *stress_client_main(void *arg)
{
    stress_state *ss = arg;
    unsigned seed = (unsigned)(uintptr_t)&seed ^ (unsigned)time(NULL);
    char req[96], resp[1024], body[40];

    for (;;) {
        unsigned id = atomic_fetch_add(&ss->next, 1);
        int fd, mode;
        size_t n;

        if (id >= ss->n)
            break;
        fd = tu_try_connect(ss->port);
        if (fd < 0) {
            atomic_fetch_add(&ss->sock_errors, 1);
            continue;
        }
        snprintf(req, sizeof req, "GET /s/%u HTTP/1.1\r\nHost: x\r\n\r\n", id);
        if (!tu_send_all(fd, req, strlen(req))) {
            atomic_fetch_add(&ss->sock_errors, 1);
            close(fd);
            continue;
        }
        mode = (int)(rand_r(&seed) % 3);
        ss->mode[id] = (unsigned char)mode;
        if (mode == MODE_READ) {
            n = tu_recv_response(fd, resp, sizeof resp);
            snprintf(body, sizeof body, "stress %u", id);
            if (n == 0)
                stress_bad(ss, "no complete response", id, resp);
            else if (!raw_is_200(resp, n, body))
                stress_bad(ss, "bad response", id, resp);
            else
                atomic_fetch_add(&ss->reads_ok, 1);
            close(fd);
        } else {
            /* Leave at a random moment: before, while or after the handler
             * runs. */
            struct timespec d = {0, (long)(rand_r(&seed) % 3001) * 1000L};
            nanosleep(&d, NULL);
            if (mode == MODE_FIN) {
                close(fd);
                atomic_fetch_add(&ss->fins, 1);
            } else {
                tu_close_rst(fd);
                atomic_fetch_add(&ss->rsts, 1);
            }
        }
    }
    return NULL;
}

static unsigned stress_n(void)
{
    const char *s = getenv("VG_STRESS_N");
    unsigned long v;

    if (s == NULL || *s == '\0')
        return STRESS_DEFAULT_N;
    v = strtoul(s, NULL, 10);
    return v > 0 && v < 10000000 ? (unsigned)v : STRESS_DEFAULT_N;
}

START_TEST(test_stress_race)
{
    stress_state *ss = calloc(1, sizeof *ss);
    pthread_t th[STRESS_THREADS];
    vg_app *app = tu_app_new();
    unsigned i, n = stress_n(), early, handler_gone = 0;
    vg_stats st;
    double t0, t1;
    int reads;

    ck_assert_ptr_nonnull(ss);
    ss->n = n;
    ss->seen = calloc(n, sizeof *ss->seen);
    ss->mode = calloc(n, 1);
    ck_assert(ss->seen != NULL && ss->mode != NULL);
    pthread_mutex_init(&ss->mu, NULL);
    ck_assert_int_eq(vg_map_get(app, "/s/{id}", h_stress, ss), 0);
    tu_start(app);
    ss->port = vg_app_port(app);

    t0 = tu_now_ms();
    for (i = 0; i < STRESS_THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, stress_client_main, ss), 0);
    for (i = 0; i < STRESS_THREADS; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    t1 = tu_now_ms();

    reads = loadi(&ss->reads_ok);
    early = (unsigned)(loadi(&ss->fins) + loadi(&ss->rsts));
    fprintf(stderr,
            "test_cancel: stress: %u requests from %d threads in %.0f ms: "
            "%d read, %d FIN, %d RST\n",
            n, STRESS_THREADS, t1 - t0, reads, loadi(&ss->fins),
            loadi(&ss->rsts));
    ck_assert_int_eq(loadi(&ss->sock_errors), 0);
    ck_assert_msg(loadi(&ss->reads_bad) == 0, "%d bad responses; first: %s",
                  loadi(&ss->reads_bad), ss->first_bad);
    ck_assert_uint_eq((unsigned)reads + early, n);

    /* Every fully read response was answered (and counted), and nothing
     * is left running. */
    ck_assert_msg(wait_settled(app, (unsigned long long)reads, 10000, &st),
                  "requests %llu (>= %d expected), in flight %llu",
                  st.requests, reads, st.in_flight);
    for (i = 0; i < n; i++) {
        unsigned char seen = atomic_load(&ss->seen[i]);

        /* A client waiting for its answer is never reported gone. */
        if (ss->mode[i] == MODE_READ)
            ck_assert_msg(seen == SEEN_LIVE,
                          "request %u: the client was reading, yet the "
                          "handler saw %d", i, (int)seen);
        ck_assert_msg(seen != SEEN_OTHER,
                      "request %u: cancelled for another reason than client "
                      "gone", i);
        if (seen == SEEN_CLIENT_GONE)
            handler_gone++;
    }
    /* Every cancellation a handler saw was counted (the counter follows
     * the cancel by a few instructions, hence the wait), and only clients
     * that left early can have been counted. */
    ck_assert_msg(wait_stats(app, ST_CLIENT_GONE, handler_gone, true, false,
                             HANG_MS, &st),
                  "handlers saw %u tokens cancelled, the app counted %llu",
                  handler_gone, st.cancelled_client_gone);
    ck_assert_uint_le(st.cancelled_client_gone, early);
    ck_assert_uint_ge(st.requests, (unsigned long long)reads);
    ck_assert_uint_le(st.requests, n);
    ck_assert_uint_eq(st.cancelled_timeout, 0);
    ck_assert_uint_eq(st.cancelled_shutdown, 0);

    vg_app_free(app);
    ck_assert_int_eq(loadi(&ss->bad_ids), 0);
    ck_assert_int_eq(loadi(&ss->started), loadi(&ss->finished));
    ck_assert_int_ge(loadi(&ss->started), reads);
    ck_assert_int_le(loadi(&ss->started), (int)n);

    pthread_mutex_destroy(&ss->mu);
    free(ss->seen);
    free(ss->mode);
    free(ss);
}
END_TEST

/* ------------------------------------------------------------------------
 * The long_task sample and `curl --max-time 1`
 */

/* Buffered line reader over a pipe. */
typedef struct {
    int fd;
    size_t len;
    char buf[4096];
} line_reader;

/* Reads the next line (without its newline) into `out`: 1, 0 at EOF, -1
 * if nothing complete arrived within `ms`. */
static int read_line(line_reader *lr, char *out, size_t cap, int ms)
{
    for (;;) {
        char *nl = memchr(lr->buf, '\n', lr->len);
        struct pollfd pfd;
        ssize_t n;
        int r;

        if (nl != NULL || lr->len == sizeof lr->buf) {
            size_t take = nl ? (size_t)(nl - lr->buf) : lr->len;
            size_t copy = take < cap - 1 ? take : cap - 1;

            memcpy(out, lr->buf, copy);
            out[copy] = '\0';
            take += nl ? 1 : 0;
            memmove(lr->buf, lr->buf + take, lr->len - take);
            lr->len -= take;
            return 1;
        }
        pfd.fd = lr->fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        do
            r = poll(&pfd, 1, ms);
        while (r < 0 && errno == EINTR);
        if (r == 0)
            return -1;
        do
            n = read(lr->fd, lr->buf + lr->len, sizeof lr->buf - lr->len);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
            return 0;
        lr->len += (size_t)n;
    }
}

/* Runs curl on `url` with its output discarded; its exit status or -1. */
static int run_curl(const char *url)
{
    char *argv[] = {(char *)"/usr/bin/curl", (char *)"-s",
                    (char *)"--noproxy", (char *)"*",
                    (char *)"--max-time", (char *)"1", (char *)url, NULL};
    pid_t pid = tu_spawn(argv, -1, -1, 2);
    int status;

    if (pid < 0)
        return -1;
    if (!tu_wait_exit(pid, 10000, &status)) {
        tu_stop_child(pid, SIGKILL, 10000);
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The seed's scenario end to end: a client that gives up after a second
 * stops the job, which logs that it stopped because the client left; the
 * sample then shuts down cleanly on SIGTERM. */
START_TEST(test_long_task_sample_curl_max_time)
{
    const char *top = getenv("top_builddir");
    char path[PATH_MAX], url[80], line[512], seen[2048] = "";
    char *argv[3];
    line_reader out = {0}, err = {0};
    unsigned port = 0;
    int curl_rc = -2, status = 0, r, po[2], pe[2];
    bool stopped = false, exited;
    pid_t pid;

    if (access("/usr/bin/curl", X_OK) != 0) {
        fprintf(stderr, "test_cancel: /usr/bin/curl is absent: skipping the "
                        "long_task sample test\n");
        return;
    }
    snprintf(path, sizeof path, "%s/samples/long_task", top ? top : ".");
    ck_assert_msg(access(path, X_OK) == 0,
                  "%s is missing (it is built by make)", path);
    argv[0] = path;
    argv[1] = (char *)"127.0.0.1:0";
    argv[2] = NULL;
    ck_assert_int_eq(pipe2(po, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(pe, O_CLOEXEC), 0);
    pid = tu_spawn(argv, -1, po[1], pe[1]);
    close(po[1]);
    close(pe[1]);
    out.fd = po[0];
    err.fd = pe[0];
    ck_assert_msg(pid > 0, "cannot start %s: %s", path, strerror(errno));

    /* Everything below records; the child is stopped before any assert. */
    while ((r = read_line(&out, line, sizeof line, 10000)) == 1)
        if (sscanf(line, "long_task: listening on port %u", &port) == 1)
            break;
    if (port != 0) {
        snprintf(url, sizeof url, "http://127.0.0.1:%u/long-task", port);
        curl_rc = run_curl(url);
        while (!stopped && read_line(&err, line, sizeof line, HANG_MS) == 1) {
            if (strlen(seen) + strlen(line) + 2 < sizeof seen) {
                strcat(seen, line);
                strcat(seen, "\n");
            }
            stopped = strstr(line, "long_task: job stopped") != NULL &&
                      strstr(line, "client_gone") != NULL;
        }
    }
    status = tu_stop_child(pid, SIGTERM, 10000);
    exited = status != -1;
    close(out.fd);
    close(err.fd);

    ck_assert_msg(port != 0, "long_task did not say which port it listens on");
    ck_assert_msg(curl_rc == 28,
                  "curl --max-time 1 should time out (exit 28), got %d", curl_rc);
    ck_assert_msg(stopped,
                  "long_task did not report the job stopped for client_gone; "
                  "its stderr: %s", seen);
    ck_assert_msg(exited, "long_task did not exit within 10 s of SIGTERM");
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "long_task ended with status 0x%x", (unsigned)status);
}
END_TEST

/* ------------------------------------------------------------------------
 * Suite
 */

static Suite *cancel_suite(void)
{
    Suite *s = suite_create("cancel");
    TCase *tc;

    tc = tcase_create("client_gone");
    tcase_add_test(tc, test_fin_cancels);
    tcase_add_test(tc, test_rst_cancels);
    tcase_add_test(tc, test_half_close_cancels);
    tcase_add_test(tc, test_token_fd_wakes_poll);
    tcase_add_test(tc, test_on_cancel_callback);
    tcase_add_test(tc, test_child_token_cancelled);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);

    tc = tcase_create("results");
    tcase_add_test(tc, test_keepalive_fresh_token);
    tcase_add_test(tc, test_late_result_discarded);
    tcase_add_test(tc, test_gone_before_handler_starts);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);

    tc = tcase_create("load");
    tcase_add_test(tc, test_fast_requests_never_cancelled);
    tcase_add_test(tc, test_stress_race);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);

    tc = tcase_create("sample");
    tcase_add_test(tc, test_long_task_sample_curl_max_time);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "test_cancel: curl_global_init failed\n");
        return EXIT_FAILURE;
    }
    sr = srunner_create(cancel_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
