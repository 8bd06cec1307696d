/*
 * test_curl.c - libvolga-curl (curl/curl.c): transfers that stop with a
 * token. Real libvolga apps on loopback: a "back" app whose handlers
 * record how their tokens ended, a "front" app whose handler calls the
 * back with vg_curl_perform on its request's token, and clients that
 * leave. Also the fan-out (vg_curl_perform_all), deadline forwarding,
 * connection reuse, a call from inside a transfer's callback, and
 * samples/gateway run as a process.
 *
 * Threads meet through latches and joins; time bounds only catch hangs.
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
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <curl/curl.h>
#include <volga.h>
#include <volga-curl.h>
#include "core/clock.h"
#include "core/token.h"
#include "testutil.h"

#define MAX_SLOW 16
#define FILL_LIMIT 512

/* ------------------------------------------------------------------------
 * The back app
 */

typedef struct {
    vg_app *app;
    unsigned short port;
    tu_latch started, ended;
    atomic_int n;                    /* slow requests seen */
    atomic_int reasons[MAX_SLOW];    /* how each slow request's token ended */
    atomic_int fast_cancelled;       /* fast requests whose token fired */
} back;

/* Works until its token fires (30 s at most) and records why it stopped. */
static vg_result *back_slow(vg_request *req, void *arg)
{
    back *b = arg;
    vg_token *tok = vg_request_token(req);
    int i = atomic_fetch_add(&b->n, 1);

    tu_latch_add(&b->started, 1);
    vg_token_wait(tok, 30000);
    if (i < MAX_SLOW)
        atomic_store(&b->reasons[i], (int)vg_token_reason(tok));
    tu_latch_add(&b->ended, 1);
    return vg_text("slow");
}

/* Answers after ?ms= (default 0) of work, which must not be cancelled. */
static vg_result *back_fast(vg_request *req, void *arg)
{
    back *b = arg;
    const char *ms = vg_request_query(req, "ms");

    if (vg_token_wait(vg_request_token(req), ms ? atoi(ms) : 0))
        atomic_fetch_add(&b->fast_cancelled, 1);
    return vg_text("fast");
}

static void back_start(back *b)
{
    memset(b, 0, sizeof *b);
    tu_latch_init(&b->started);
    tu_latch_init(&b->ended);
    b->app = tu_app_new();
    ck_assert_int_eq(vg_map_get(b->app, "/slow", back_slow, b), 0);
    ck_assert_int_eq(vg_map_get(b->app, "/fast", back_fast, b), 0);
    tu_start(b->app);
    b->port = vg_app_port(b->app);
}

static void back_stop(back *b)
{
    vg_app_free(b->app);
    tu_latch_destroy(&b->started);
    tu_latch_destroy(&b->ended);
}

static CURL *easy_for(unsigned short port, const char *path)
{
    CURL *e = curl_easy_init();
    char url[128];

    ck_assert_ptr_nonnull(e);
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)port, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 20000L);
    return e;
}

/* Discards a body (tests that only look at codes). */
static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* ------------------------------------------------------------------------
 * The front app: /proxy/{path} calls the back's /{path}
 */

typedef struct {
    unsigned short back_port;
    atomic_int rc;                   /* the last vg_curl_perform result */
    atomic_int reason;               /* its token's reason afterwards */
    tu_latch done;
} front;

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    char *buf = arg;
    size_t have = strlen(buf), take = size * n;

    if (have + take >= 256)
        return 0;
    memcpy(buf + have, p, take);
    buf[have + take] = '\0';
    return take;
}

static vg_result *front_proxy(vg_request *req, void *arg)
{
    front *f = arg;
    char path[128], body[256] = "";
    const char *ms = vg_request_query(req, "ms");
    CURL *e;
    CURLcode rc;

    snprintf(path, sizeof path, "/%s%s%s", vg_request_param(req, "path"),
             ms ? "?ms=" : "", ms ? ms : "");
    e = easy_for(f->back_port, path);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, body);
    rc = vg_curl_perform(e, vg_request_token(req));
    curl_easy_cleanup(e);
    atomic_store(&f->rc, (int)rc);
    atomic_store(&f->reason, (int)vg_token_reason(vg_request_token(req)));
    tu_latch_add(&f->done, 1);
    if (rc != CURLE_OK)
        return vg_status(502);
    return vg_textf("front got: %s", body);
}

static vg_app *front_start(front *f, unsigned short back_port)
{
    vg_app *app = tu_app_new();

    memset(f, 0, sizeof *f);
    f->back_port = back_port;
    tu_latch_init(&f->done);
    ck_assert_int_eq(vg_map_get(app, "/proxy/{path}", front_proxy, f), 0);
    tu_start(app);
    return app;
}

/* ------------------------------------------------------------------------
 * The chain: client -> front -> back
 */

START_TEST(chain_client_leaves_back_token_fires_client_gone)
{
    static const char req[] = "GET /proxy/slow HTTP/1.1\r\nHost: t\r\n\r\n";
    back b;
    front f;
    vg_app *fa;
    int fd;

    back_start(&b);
    fa = front_start(&f, b.port);
    fd = tu_connect(vg_app_port(fa));
    ck_assert(tu_send_all(fd, req, sizeof req - 1));
    ck_assert(tu_latch_wait(&b.started, 1, 10000));
    close(fd);  /* the client leaves the front */
    ck_assert_msg(tu_latch_wait(&b.ended, 1, 10000),
                  "the back's work went on after the client left the front");
    ck_assert_int_eq(atomic_load(&b.reasons[0]), VG_CANCEL_CLIENT_GONE);
    ck_assert(tu_latch_wait(&f.done, 1, 10000));
    ck_assert_int_eq(atomic_load(&f.rc), CURLE_ABORTED_BY_CALLBACK);
    ck_assert_int_eq(atomic_load(&f.reason), VG_CANCEL_CLIENT_GONE);
    vg_app_free(fa);
    tu_latch_destroy(&f.done);
    back_stop(&b);
}
END_TEST

/* A front request cut by its deadline: the back sees its client leave. */
START_TEST(chain_front_deadline_reaches_back)
{
    back b;
    front f;
    vg_app *fa;
    tu_response r;

    back_start(&b);
    fa = tu_app_new();
    memset(&f, 0, sizeof f);
    f.back_port = b.port;
    tu_latch_init(&f.done);
    ck_assert_int_eq(vg_app_set_request_timeout(fa, 200), 0);
    ck_assert_int_eq(vg_map_get(fa, "/proxy/{path}", front_proxy, &f), 0);
    tu_start(fa);
    r = tu_get(vg_app_port(fa), "/proxy/slow");
    ck_assert_int_eq(r.status, 504);
    tu_response_free(&r);
    ck_assert(tu_latch_wait(&b.ended, 1, 10000));
    ck_assert_int_eq(atomic_load(&b.reasons[0]), VG_CANCEL_CLIENT_GONE);
    ck_assert(tu_latch_wait(&f.done, 1, 10000));
    ck_assert_int_eq(atomic_load(&f.rc), CURLE_ABORTED_BY_CALLBACK);
    ck_assert_int_eq(atomic_load(&f.reason), VG_CANCEL_TIMEOUT);
    vg_app_free(fa);
    tu_latch_destroy(&f.done);
    back_stop(&b);
}
END_TEST

/* Normal answers through the chain: the back is never cancelled, over
 * many requests on one kept-alive client connection. */
START_TEST(chain_normal_answers_never_cancelled)
{
    back b;
    front f;
    vg_app *fa;
    CURL *client = curl_easy_init();
    vg_stats st;
    int i;

    back_start(&b);
    fa = front_start(&f, b.port);
    for (i = 0; i < 40; i++) {
        tu_response r = tu_curl_perform(client, vg_app_port(fa),
                                        i % 4 == 0 ? "/proxy/fast?ms=20"
                                                   : "/proxy/fast");
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(r.body, "front got: fast");
        tu_response_free(&r);
    }
    curl_easy_cleanup(client);
    ck_assert_int_eq(atomic_load(&b.fast_cancelled), 0);
    ck_assert(tu_wait_settled(b.app, 40, 10000, &st));
    ck_assert_uint_eq(st.cancelled_client_gone, 0);
    ck_assert_uint_eq(st.cancelled_timeout, 0);
    vg_app_free(fa);
    tu_latch_destroy(&f.done);
    back_stop(&b);
}
END_TEST

/* The request ID travels down the chain: the front forwards its request's
 * ID with vg_curl_add_request_id and the back, trusting it, answers with
 * the same one. */
static vg_result *back_echo_id(vg_request *req, void *arg)
{
    const char *id = vg_request_id(req);

    (void)arg;
    return vg_text(id != NULL ? id : "(none)");
}

static vg_result *front_forward_id(vg_request *req, void *arg)
{
    unsigned short port = *(unsigned short *)arg;
    struct curl_slist *hdrs = vg_curl_add_request_id(NULL, req);
    char body[256] = "";
    CURL *e = easy_for(port, "/id");
    CURLcode rc;

    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, body);
    rc = vg_curl_perform(e, vg_request_token(req));
    curl_easy_cleanup(e);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK)
        return vg_status(502);
    return vg_textf("%s %s", vg_request_id(req), body);
}

START_TEST(chain_forwards_request_id)
{
    static const char *const given[] = {"X-Request-Id: trace-42", NULL};
    vg_app *ba = tu_app_new(), *fa = tu_app_new();
    unsigned short back_port;
    tu_response r;
    char own[64], seen[64];

    ck_assert_int_eq(vg_app_use_request_id(ba, true), 0);
    ck_assert_int_eq(vg_map_get(ba, "/id", back_echo_id, NULL), 0);
    tu_start(ba);
    back_port = vg_app_port(ba);
    ck_assert_int_eq(vg_app_use_request_id(fa, true), 0);
    ck_assert_int_eq(vg_map_get(fa, "/fwd", front_forward_id, &back_port), 0);
    tu_start(fa);

    r = tu_request(vg_app_port(fa), "GET", "/fwd", NULL, 0, given);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "trace-42 trace-42");
    tu_response_free(&r);
    /* A generated ID travels the same way. */
    r = tu_get(vg_app_port(fa), "/fwd");
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(sscanf(r.body, "%63s %63s", own, seen), 2);
    ck_assert_uint_eq(strlen(own), 32);
    ck_assert_str_eq(own, seen);
    tu_response_free(&r);
    /* No ID, no header. */
    ck_assert_ptr_null(vg_curl_add_request_id(NULL, NULL));
    vg_app_free(fa);
    vg_app_free(ba);
}
END_TEST

/* ------------------------------------------------------------------------
 * vg_curl_perform on the test's own thread
 */

START_TEST(perform_returns_transfer_result)
{
    back b;
    vg_token *tok = vg_token_new();
    CURL *e;
    long code = 0;

    back_start(&b);
    e = easy_for(b.port, "/fast");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    ck_assert_int_eq(vg_curl_perform(e, tok), CURLE_OK);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    ck_assert_int_eq(code, 200);
    curl_easy_cleanup(e);
    /* A 404 is a finished transfer; a refused connection is its error. */
    e = easy_for(b.port, "/nowhere");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    ck_assert_int_eq(vg_curl_perform(e, tok), CURLE_OK);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    ck_assert_int_eq(code, 404);
    curl_easy_setopt(e, CURLOPT_URL, "http://127.0.0.1:1/");
    ck_assert_int_eq(vg_curl_perform(e, tok), CURLE_COULDNT_CONNECT);
    curl_easy_cleanup(e);
    ck_assert(!vg_token_is_cancelled(tok));
    vg_token_unref(tok);
    vg_curl_thread_cleanup();
    back_stop(&b);
}
END_TEST

/* Two calls on one thread share a connection (the thread's multi handle
 * keeps it), even with different easy handles. */
START_TEST(perform_reuses_connections_on_a_thread)
{
    back b;
    vg_token *tok = vg_token_new();
    long connects = -1;
    int i;

    back_start(&b);
    for (i = 0; i < 3; i++) {
        CURL *e = easy_for(b.port, "/fast");

        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        ck_assert_int_eq(vg_curl_perform(e, tok), CURLE_OK);
        curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
        ck_assert_int_eq(connects, i == 0 ? 1 : 0);
        curl_easy_cleanup(e);
    }
    vg_token_unref(tok);
    vg_curl_thread_cleanup();
    back_stop(&b);
}
END_TEST

START_TEST(perform_already_cancelled_never_connects)
{
    back b;
    vg_token *tok = vg_token_new();
    vg_stats st;
    CURL *e;

    back_start(&b);
    vg_token_cancel(tok);
    e = easy_for(b.port, "/fast");
    ck_assert_int_eq(vg_curl_perform(e, tok), CURLE_ABORTED_BY_CALLBACK);
    curl_easy_cleanup(e);
    vg_app_stats(b.app, &st);
    ck_assert_uint_eq(st.requests, 0);
    vg_token_unref(tok);
    vg_curl_thread_cleanup();
    back_stop(&b);
}
END_TEST

/* A transfer waiting on the back, cancelled from another thread: it
 * returns at once, the back's token fires, and the next call on the same
 * thread (whose multi handle held the aborted connection) works. */
typedef struct {
    back *b;
    vg_token *tok;
    int idle_stat;       /* if >= 0: /proc/self/task/TID/stat of a thread
                            to wait for, opened beforehand, until it sleeps */
} canceller;

/* Waits until the thread whose /proc stat file is open at `fd` sleeps in
 * the kernel (state S: here, in curl_multi_poll with nothing left to
 * send); false after 10 s. Reads with pread, needing no new descriptor. */
static bool thread_sleeps(int fd)
{
    char buf[256], *p;
    double t0 = tu_now_ms();

    while (tu_now_ms() - t0 < 10000) {
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);

        if (n <= 0)
            return false;
        buf[n] = '\0';
        p = strrchr(buf, ')');
        if (p != NULL && p[1] == ' ' && p[2] == 'S')
            return true;
        sched_yield();
    }
    return false;
}

static void *cancel_when_started(void *arg)
{
    canceller *c = arg;

    if (tu_latch_wait(&c->b->started, 1, 10000) &&
        (c->idle_stat < 0 || thread_sleeps(c->idle_stat)))
        vg_token_cancel(c->tok);
    return NULL;
}

START_TEST(perform_cancelled_while_waiting_closes_connection)
{
    back b;
    vg_token *tok = vg_token_new(), *next = vg_token_new();
    canceller c;
    pthread_t th;
    CURL *e;
    char url[64];
    double t0;

    back_start(&b);
    c.b = &b;
    c.tok = tok;
    c.idle_stat = -1;
    ck_assert_int_eq(pthread_create(&th, NULL, cancel_when_started, &c), 0);
    e = easy_for(b.port, "/slow");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    t0 = tu_now_ms();
    ck_assert_int_eq(vg_curl_perform(e, tok), CURLE_ABORTED_BY_CALLBACK);
    ck_assert_msg(tu_now_ms() - t0 < 10000, "took %.0f ms", tu_now_ms() - t0);
    pthread_join(th, NULL);
    ck_assert(tu_latch_wait(&b.ended, 1, 10000));
    ck_assert_int_eq(atomic_load(&b.reasons[0]), VG_CANCEL_CLIENT_GONE);
    /* The same handle, the same thread: a fresh connection, a good answer. */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/fast", (unsigned)b.port);
    curl_easy_setopt(e, CURLOPT_URL, url);
    ck_assert_int_eq(vg_curl_perform(e, next), CURLE_OK);
    curl_easy_cleanup(e);
    vg_token_unref(next);
    vg_token_unref(tok);
    vg_curl_thread_cleanup();
    back_stop(&b);
}
END_TEST

/* Out of descriptors, the token has no fd for curl_multi_poll: a cancel
 * callback wakes the poll instead (curl_multi_wakeup). The connection is
 * kept alive from a first call, so the transfer itself needs no new fd.
 * Without the wake-up the poll would sleep past the back's 30 s of work,
 * and the back would finish uncancelled. */
START_TEST(perform_cancelled_without_a_token_fd)
{
    back b;
    vg_token *warm = vg_token_new(), *tok = vg_token_new();
    struct rlimit saved, none;
    canceller c;
    pthread_t th;
    CURL *e;
    CURLcode rc;
    long connects = -1;
    char url[64];
    int fd, fill[FILL_LIMIT], nfill = 0;

    back_start(&b);
    e = easy_for(b.port, "/fast");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    ck_assert_int_eq(vg_curl_perform(e, warm), CURLE_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/slow", (unsigned)b.port);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 0L);   /* no timer to wake it */
    c.b = &b;
    c.tok = tok;
    /* Only once this thread sleeps in the poll: then nothing but the
     * cancel callback's wake-up can end the wait in time. Its stat file is
     * opened now, before the descriptors run out. */
    snprintf(url, sizeof url, "/proc/self/task/%d/stat", (int)syscall(SYS_gettid));
    c.idle_stat = open(url, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(c.idle_stat, 0);
    ck_assert_int_eq(pthread_create(&th, NULL, cancel_when_started, &c), 0);

    /* Every descriptor below a limit of FILL_LIMIT in use (a limit of 0
     * would also make poll() fail, which a real shortage does not). */
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
    none = saved;
    if (none.rlim_cur > FILL_LIMIT)
        none.rlim_cur = FILL_LIMIT;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &none), 0);
    while (nfill < FILL_LIMIT && (fill[nfill] = dup(0)) >= 0)
        nfill++;
    fd = vg_token_fd(tok);
    rc = vg_curl_perform(e, tok);
    while (nfill > 0)
        close(fill[--nfill]);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);

    ck_assert_int_eq(fd, -EMFILE);      /* the fallback really ran */
    ck_assert_int_eq(rc, CURLE_ABORTED_BY_CALLBACK);
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
    ck_assert_int_eq(connects, 0);      /* on the kept-alive connection */
    pthread_join(th, NULL);
    close(c.idle_stat);
    ck_assert(tu_latch_wait(&b.ended, 1, 10000));
    ck_assert_int_eq(atomic_load(&b.reasons[0]), VG_CANCEL_CLIENT_GONE);
    curl_easy_cleanup(e);
    vg_token_unref(tok);
    vg_token_unref(warm);
    vg_curl_thread_cleanup();
    back_stop(&b);
}
END_TEST

/* VG_CURL_DEADLINE: the token's remaining time becomes libcurl's timeout.
 * The token here records a deadline that nobody enforces, so only libcurl
 * can end the transfer. */
START_TEST(perform_forwards_deadline)
{
    back b;
    vg_token *tok = vg_token_new();
    CURL *e;
    double t0, elapsed;

    back_start(&b);
    vg__token_set_deadline(tok, vg__clock_ns() + 200 * 1000000ull);
    e = easy_for(b.port, "/slow");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    t0 = tu_now_ms();
    ck_assert_int_eq(vg_curl_perform_ex(e, tok, VG_CURL_DEADLINE),
                     CURLE_OPERATION_TIMEDOUT);
    elapsed = tu_now_ms() - t0;
    ck_assert_msg(elapsed >= 150 && elapsed < 10000, "%.0f ms", elapsed);
    ck_assert(tu_latch_wait(&b.ended, 1, 10000));
    ck_assert_int_eq(atomic_load(&b.reasons[0]), VG_CANCEL_CLIENT_GONE);
    /* Passed already: not even started. */
    vg__token_set_deadline(tok, vg__clock_ns() - 1);
    ck_assert_int_eq(vg_curl_perform_ex(e, tok, VG_CURL_DEADLINE),
                     CURLE_OPERATION_TIMEDOUT);
    ck_assert_int_eq(atomic_load(&b.n), 1);
    curl_easy_cleanup(e);
    vg_token_unref(tok);
    vg_curl_thread_cleanup();
    back_stop(&b);
}
END_TEST

START_TEST(perform_bad_arguments)
{
    vg_token *tok = vg_token_new();
    CURL *e = curl_easy_init();
    CURL *two[2] = {e, e};
    CURLcode res[2];

    ck_assert_int_eq(vg_curl_perform(NULL, tok), CURLE_BAD_FUNCTION_ARGUMENT);
    ck_assert_int_eq(vg_curl_perform(e, NULL), CURLE_BAD_FUNCTION_ARGUMENT);
    ck_assert_int_eq(vg_curl_perform_all(two, 0, tok, 0, res),
                     CURLE_BAD_FUNCTION_ARGUMENT);
    ck_assert_int_eq(vg_curl_perform_all(two, 2, tok, 0, res),
                     CURLE_BAD_FUNCTION_ARGUMENT);
    ck_assert_int_eq(vg_curl_perform_all(NULL, 1, tok, 0, res),
                     CURLE_BAD_FUNCTION_ARGUMENT);
    curl_easy_cleanup(e);
    vg_token_unref(tok);
    vg_curl_thread_cleanup();
}
END_TEST

/* A call from inside another transfer's write callback (on the thread
 * whose multi handle is busy) runs on a multi handle of its own. */
typedef struct {
    unsigned short port;
    vg_token *tok;
    int inner_rc;
    long inner_code;
    bool ran;
} nested;

static size_t nested_write(char *p, size_t size, size_t n, void *arg)
{
    nested *x = arg;

    (void)p;
    if (!x->ran) {
        CURL *e = easy_for(x->port, "/fast");

        x->ran = true;
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        x->inner_rc = vg_curl_perform(e, x->tok);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &x->inner_code);
        curl_easy_cleanup(e);
    }
    return size * n;
}

START_TEST(perform_nested_in_a_callback)
{
    back b;
    nested x;
    CURL *e;

    back_start(&b);
    memset(&x, 0, sizeof x);
    x.port = b.port;
    x.tok = vg_token_new();
    e = easy_for(b.port, "/fast");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, nested_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &x);
    ck_assert_int_eq(vg_curl_perform(e, x.tok), CURLE_OK);
    ck_assert(x.ran);
    ck_assert_int_eq(x.inner_rc, CURLE_OK);
    ck_assert_int_eq(x.inner_code, 200);
    curl_easy_cleanup(e);
    vg_token_unref(x.tok);
    vg_curl_thread_cleanup();
    back_stop(&b);
}
END_TEST

/* ------------------------------------------------------------------------
 * Fan-out
 */

/* Every transfer runs to its end; each keeps its own result, a refused
 * connection included, and the call as a whole is CURLE_OK. */
START_TEST(fanout_all_finish)
{
    back b;
    vg_token *tok = vg_token_new();
    CURL *e[4];
    CURLcode res[4];
    long code;
    int i;

    back_start(&b);
    e[0] = easy_for(b.port, "/fast?ms=50");
    e[1] = easy_for(b.port, "/fast");
    e[2] = easy_for(b.port, "/nowhere");
    e[3] = easy_for(1, "/");            /* refused: its own error */
    for (i = 0; i < 4; i++)
        curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, discard);
    ck_assert_int_eq(vg_curl_perform_all(e, 4, tok, 0, res), CURLE_OK);
    ck_assert_int_eq(res[3], CURLE_COULDNT_CONNECT);
    curl_easy_cleanup(e[3]);
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(res[i], CURLE_OK);
        curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &code);
        ck_assert_int_eq(code, i == 2 ? 404 : 200);
        curl_easy_cleanup(e[i]);
    }
    ck_assert_int_eq(atomic_load(&b.fast_cancelled), 0);
    vg_token_unref(tok);
    vg_curl_thread_cleanup();
    back_stop(&b);
}
END_TEST

/* Three transfers at once, all stopped by one cancel (of the token's
 * parent): each gets
 * CURLE_ABORTED_BY_CALLBACK and each back request sees its client go. */
typedef struct {
    back *b;
    vg_token *tok;
    int want;
} fan_canceller;

static void *cancel_when_all_started(void *arg)
{
    fan_canceller *c = arg;

    if (tu_latch_wait(&c->b->started, c->want, 10000))
        vg_token_cancel(c->tok);
    return NULL;
}

START_TEST(fanout_cancelled_as_a_whole)
{
    enum { N = 3 };
    back b;
    vg_token *root = vg_token_new(), *tok = vg_token_child(root);
    fan_canceller c;
    pthread_t th;
    CURL *e[N];
    CURLcode res[N];
    int i;

    back_start(&b);
    for (i = 0; i < N; i++) {
        e[i] = easy_for(b.port, "/slow");
        curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, discard);
    }
    c.b = &b;
    c.tok = root;
    c.want = N;
    ck_assert_int_eq(pthread_create(&th, NULL, cancel_when_all_started, &c), 0);
    ck_assert_int_eq(vg_curl_perform_all(e, N, tok, 0, res),
                     CURLE_ABORTED_BY_CALLBACK);
    pthread_join(th, NULL);
    for (i = 0; i < N; i++)
        ck_assert_int_eq(res[i], CURLE_ABORTED_BY_CALLBACK);
    ck_assert(tu_latch_wait(&b.ended, N, 10000));
    for (i = 0; i < N; i++)
        ck_assert_int_eq(atomic_load(&b.reasons[i]), VG_CANCEL_CLIENT_GONE);
    for (i = 0; i < N; i++)
        curl_easy_cleanup(e[i]);
    vg_token_unref(tok);
    vg_token_unref(root);
    vg_curl_thread_cleanup();
    back_stop(&b);
}
END_TEST

/* ------------------------------------------------------------------------
 * samples/gateway
 */

/* Reads the sample's stderr until `needle` has appeared `count` times
 * (10 s at most); acc keeps what was read across calls. */
static bool log_has(int fd, char *acc, size_t cap, size_t *len,
                    const char *needle, int count)
{
    double t0 = tu_now_ms();

    for (;;) {
        const char *p = acc;
        int seen = 0;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        ssize_t n;

        while ((p = strstr(p, needle)) != NULL) {
            seen++;
            p++;
        }
        if (seen >= count)
            return true;
        if (tu_now_ms() - t0 > 10000)
            return false;
        if (poll(&pf, 1, 100) <= 0)
            continue;
        n = read(fd, acc + *len, cap - 1 - *len);
        if (n <= 0)
            return false;
        *len += (size_t)n;
        acc[*len] = '\0';
    }
}

START_TEST(gateway_fans_out_and_stops_both_upstreams)
{
    static const char req[] = "GET /compare?ms=30000 HTTP/1.1\r\nHost: t\r\n\r\n";
    char acc[16384] = "";
    size_t len = 0;
    tu_sample s;
    tu_response r;
    json_t *j;
    int fd;

    tu_sample_start(&s, "gateway", true);
    r = tu_get(s.port, "/compare?ms=20");
    ck_assert_int_eq(r.status, 200);
    j = json_loads(r.body, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "a"), "body")),
                     "a after 20 ms");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "b"), "body")),
                     "b after 20 ms");
    json_decref(j);
    tu_response_free(&r);

    fd = tu_connect(s.port);
    ck_assert(tu_send_all(fd, req, sizeof req - 1));
    ck_assert_msg(log_has(s.err, acc, sizeof acc, &len, "working for 30000 ms", 2),
                  "both upstreams did not start: %s", acc);
    /* Both upstreams name the gateway's request ID. */
    {
        const char *a = strstr(acc, "upstream a: working for 30000 ms (request ");
        const char *b = strstr(acc, "upstream b: working for 30000 ms (request ");
        char ida[64] = "", idb[64] = "";

        ck_assert(a != NULL && b != NULL);
        ck_assert_int_eq(sscanf(strstr(a, "(request ") + 9, "%63[^)]", ida), 1);
        ck_assert_int_eq(sscanf(strstr(b, "(request ") + 9, "%63[^)]", idb), 1);
        ck_assert_uint_eq(strlen(ida), 32);
        ck_assert_str_eq(ida, idb);
    }
    close(fd);
    ck_assert_msg(log_has(s.err, acc, sizeof acc, &len,
                          "upstream a: stopped: client_gone", 1) &&
                  log_has(s.err, acc, sizeof acc, &len,
                          "upstream b: stopped: client_gone", 1),
                  "both upstreams did not stop: %s", acc);
    ck_assert(log_has(s.err, acc, sizeof acc, &len, "fan-out stopped: client_gone", 1));
    tu_sample_stop(&s);
}
END_TEST

static Suite *curl_suite(void)
{
    Suite *s = suite_create("curl");
    TCase *tc;

    tc = tcase_create("chain");
    tcase_add_test(tc, chain_client_leaves_back_token_fires_client_gone);
    tcase_add_test(tc, chain_front_deadline_reaches_back);
    tcase_add_test(tc, chain_normal_answers_never_cancelled);
    tcase_add_test(tc, chain_forwards_request_id);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("perform");
    tcase_add_test(tc, perform_returns_transfer_result);
    tcase_add_test(tc, perform_reuses_connections_on_a_thread);
    tcase_add_test(tc, perform_already_cancelled_never_connects);
    tcase_add_test(tc, perform_cancelled_while_waiting_closes_connection);
    tcase_add_test(tc, perform_cancelled_without_a_token_fd);
    tcase_add_test(tc, perform_forwards_deadline);
    tcase_add_test(tc, perform_bad_arguments);
    tcase_add_test(tc, perform_nested_in_a_callback);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("fanout");
    tcase_add_test(tc, fanout_all_finish);
    tcase_add_test(tc, fanout_cancelled_as_a_whole);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("sample");
    tcase_add_test(tc, gateway_fans_out_and_stops_both_upstreams);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(curl_suite());
}
