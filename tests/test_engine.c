/* test_engine.c - libvolga's own event threads (lib/engine/engine.c): no stall at
 * any connection count, connection limits counted across threads, a body
 * cut short closed at once, shutdown with requests in flight on every
 * thread.
 *
 * VG_TIME_SCALE (default 1; tests/run-all raises it under sanitizers and
 * valgrind) multiplies the latency bounds, which are there to catch
 * stalls of seconds, not to measure; the stall bound (1 s) also grows with
 * the machine's load per CPU, see load_factor. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <volga.h>
#include "app.h"
#include "engine/engine.h"
#include "testutil.h"

static double time_scale(void)
{
    const char *s = getenv("VG_TIME_SCALE");
    double v = s ? atof(s) : 1.0;
    return v >= 1.0 ? v : 1.0;
}

/* How oversubscribed the machine is: the 1-minute load average per CPU,
 * at least 1. The stall bound below is a bound on waiting, and on a machine
 * running several times more threads than it has CPUs a request may wait
 * that many times longer without anything stalling. A real stall (the
 * connections of a full batch left unserved) leaves requests that are
 * never answered at all, which the test checks at any load. */
static double load_factor(void)
{
    double load1 = 0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    FILE *f = fopen("/proc/loadavg", "r");

    if (f != NULL) {
        if (fscanf(f, "%lf", &load1) != 1)
            load1 = 0;
        fclose(f);
    }
    if (cpus < 1)
        cpus = 1;
    return load1 / (double)cpus > 1.0 ? load1 / (double)cpus : 1.0;
}

static vg_result *hello(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_text("hello");
}

/* Room for `n` client and `n` server descriptors in this process. */
static void raise_nofile(unsigned n)
{
    struct rlimit rl;
    rlim_t want = 2 * (rlim_t)n + 256;

    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want
                          ? want : rl.rlim_max;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
        ck_assert_uint_ge(rl.rlim_cur, want);
    }
}

/* A non-blocking connection to 127.0.0.1:port, or -1. */
static int connect_nonblocking(unsigned short port)
{
    int fd = tu_try_connect(port);

    if (fd >= 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- A closed-loop load: every connection sends its next request as
 * soon as the answer to its last one has arrived. ---- */

typedef struct {
    int fd;
    char buf[1024];
    size_t have;
    double sent_ms;
    unsigned long done;
} load_conn;

typedef struct {
    unsigned long requests, errors;
    double worst_ms;
    unsigned idle_conns; /* connections that never got an answer */
} load_result;

static const char load_req[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";

static bool load_send(load_conn *c)
{
    c->have = 0;
    c->sent_ms = tu_now_ms();
    return send(c->fd, load_req, sizeof load_req - 1, MSG_NOSIGNAL) ==
           (ssize_t)(sizeof load_req - 1);
}

/* Whether `c` holds one whole "hello" answer (Content-Length framing). */
static bool load_complete(const load_conn *c)
{
    const char *end = memmem(c->buf, c->have, "\r\n\r\n", 4);
    const char *cl;

    if (end == NULL)
        return false;
    cl = memmem(c->buf, (size_t)(end - c->buf), "Content-Length: ", 16);
    return cl != NULL &&
           c->have >= (size_t)(end + 4 - c->buf) + (size_t)atoi(cl + 16);
}

static void run_load(unsigned short port, unsigned nconns, double seconds,
                     load_result *out)
{
    load_conn *c = calloc(nconns, sizeof *c);
    struct epoll_event ev, evs[64];
    int ep = epoll_create1(EPOLL_CLOEXEC), n, i;
    double stop_at, now;
    unsigned k, waiting = 0;
    bool sending = true;

    ck_assert_ptr_nonnull(c);
    ck_assert_int_ge(ep, 0);
    memset(out, 0, sizeof *out);
    for (k = 0; k < nconns; k++) {
        c[k].fd = connect_nonblocking(port);
        ck_assert_msg(c[k].fd >= 0, "connection %u refused", k);
        memset(&ev, 0, sizeof ev);
        ev.events = EPOLLIN;
        ev.data.u32 = k;
        ck_assert_int_eq(epoll_ctl(ep, EPOLL_CTL_ADD, c[k].fd, &ev), 0);
    }
    for (k = 0; k < nconns; k++) {
        ck_assert(load_send(&c[k]));
        waiting++;
    }
    stop_at = tu_now_ms() + seconds * 1000;
    /* After the time is up, the answers still owed get as long again. */
    while (waiting > 0 && tu_now_ms() < stop_at + seconds * 1000 +
                                            5000 * time_scale()) {
        now = tu_now_ms();
        if (sending && now >= stop_at)
            sending = false;
        n = epoll_wait(ep, evs, 64, 100);
        for (i = 0; i < n; i++) {
            load_conn *lc = &c[evs[i].data.u32];
            ssize_t r = recv(lc->fd, lc->buf + lc->have,
                             sizeof lc->buf - 1 - lc->have, 0);
            if (r <= 0) {
                out->errors++;
                epoll_ctl(ep, EPOLL_CTL_DEL, lc->fd, NULL);
                waiting--;
                continue;
            }
            lc->have += (size_t)r;
            if (!load_complete(lc))
                continue;
            now = tu_now_ms();
            if (now - lc->sent_ms > out->worst_ms)
                out->worst_ms = now - lc->sent_ms;
            if (memcmp(lc->buf, "HTTP/1.1 200 ", 13) != 0)
                out->errors++;
            out->requests++;
            lc->done++;
            if (!sending || !load_send(lc)) {
                epoll_ctl(ep, EPOLL_CTL_DEL, lc->fd, NULL);
                waiting--;
            }
        }
    }
    /* What is still waiting never got its answer: a stall. */
    for (k = 0; k < nconns; k++) {
        if (c[k].done == 0)
            out->idle_conns++;
        close(c[k].fd);
    }
    out->errors += waiting;
    close(ep);
    free(c);
}

static void stall_case(unsigned nconns, bool inline_route)
{
    vg_app *app = tu_app_new();
    load_result r;
    double bound = 1000 * time_scale() * load_factor();

    raise_nofile(nconns);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    if (inline_route)
        ck_assert_int_eq(vg_map_inline(app, "GET", "/hello", true), 0);
    tu_start(app);
    run_load(vg_app_port(app), nconns, 2.0, &r);
    vg_app_free(app);
    ck_assert_msg(r.errors == 0, "%u connections, %s: %lu errors", nconns,
                  inline_route ? "inline" : "worker", r.errors);
    ck_assert_msg(r.idle_conns == 0, "%u connections never answered",
                  r.idle_conns);
    ck_assert_msg(r.worst_ms < bound,
                  "%u connections, %s: a request waited %.0f ms, bound %.0f "
                  "(%lu served)", nconns, inline_route ? "inline" : "worker",
                  r.worst_ms, bound, r.requests);
    ck_assert_uint_ge(r.requests, nconns);
}

/* The default connection limit, 256 and 1,000 keep-alive connections each
 * sending again at once: libmicrohttpd's own epoll threads stalled whole
 * seconds here (bench/RESULTS.md, "Stalls"). */
START_TEST(no_stall_inline_256)
{
    stall_case(256, true);
}
END_TEST

START_TEST(no_stall_worker_256)
{
    stall_case(256, false);
}
END_TEST

START_TEST(no_stall_inline_1000)
{
    stall_case(1000, true);
}
END_TEST

START_TEST(no_stall_worker_1000)
{
    stall_case(1000, false);
}
END_TEST

/* ---- Limits across threads ---- */

/* Waits up to `ms` for the engine to count exactly `n` connections. */
static bool wait_connections(vg_app *app, unsigned n, int ms)
{
    double until = tu_now_ms() + ms;

    /* The count changes on the event threads without a notification a
     * test could wait on: look every millisecond, as tu_wait_settled. */
    while (vg__engine_connections(app->engine) != n) {
        if (tu_now_ms() > until)
            return false;
        usleep(1000);
    }
    return true;
}

/* Connections land on every event thread; the engine counts them all, and
 * gives each back when it closes. */
START_TEST(connections_are_counted_across_threads)
{
    enum { N = 40 };
    vg_app *app = tu_app_new();
    int fds[N], i;
    char buf[512];

    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    tu_start(app);
    for (i = 0; i < N; i++) {
        fds[i] = tu_connect(vg_app_port(app));
        ck_assert(tu_send_all(fds[i], load_req, sizeof load_req - 1));
        ck_assert_uint_gt(tu_recv_response(fds[i], buf, sizeof buf), 0);
    }
    ck_assert_uint_eq(vg__engine_connections(app->engine), N);
    for (i = 0; i < N; i++)
        close(fds[i]);
    ck_assert(wait_connections(app, 0, 5000 * (int)time_scale()));
    vg_app_free(app);
}
END_TEST

/* With a limit of 6, the 7th connection is closed at once, whichever
 * thread accepts it, and a freed place can be taken again. */
START_TEST(total_limit_holds_across_threads)
{
    enum { LIMIT = 6 };
    vg_app *app = tu_app_new();
    int fds[LIMIT], extra, i;
    char buf[512];

    ck_assert_int_eq(vg_app_set_max_connections(app, LIMIT), 0);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    tu_start(app);
    for (i = 0; i < LIMIT; i++) {
        fds[i] = tu_connect(vg_app_port(app));
        ck_assert(tu_send_all(fds[i], load_req, sizeof load_req - 1));
        ck_assert_uint_gt(tu_recv_response(fds[i], buf, sizeof buf), 0);
    }
    for (i = 0; i < 3; i++) {
        extra = tu_connect(vg_app_port(app));
        tu_send_all(extra, load_req, sizeof load_req - 1);
        ck_assert_uint_eq(tu_recv_all(extra, buf, sizeof buf), 0);
        close(extra);
    }
    close(fds[0]);
    ck_assert(wait_connections(app, LIMIT - 1, 5000 * (int)time_scale()));
    fds[0] = tu_connect(vg_app_port(app));
    ck_assert(tu_send_all(fds[0], load_req, sizeof load_req - 1));
    ck_assert_uint_gt(tu_recv_response(fds[0], buf, sizeof buf), 0);
    for (i = 0; i < LIMIT; i++)
        close(fds[i]);
    vg_app_free(app);
}
END_TEST

/* The per-IP limit counts connections from 127.0.0.1 on every thread. */
START_TEST(per_ip_limit_holds_across_threads)
{
    enum { LIMIT = 5 };
    vg_app *app = tu_app_new();
    int fds[LIMIT], extra, i;
    char buf[512];

    ck_assert_int_eq(vg_app_set_per_ip_limit(app, LIMIT), 0);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    tu_start(app);
    for (i = 0; i < LIMIT; i++) {
        fds[i] = tu_connect(vg_app_port(app));
        ck_assert(tu_send_all(fds[i], load_req, sizeof load_req - 1));
        ck_assert_uint_gt(tu_recv_response(fds[i], buf, sizeof buf), 0);
    }
    extra = tu_connect(vg_app_port(app));
    tu_send_all(extra, load_req, sizeof load_req - 1);
    ck_assert_uint_eq(tu_recv_all(extra, buf, sizeof buf), 0);
    close(extra);
    for (i = 0; i < LIMIT; i++)
        close(fds[i]);
    ck_assert(wait_connections(app, 0, 5000 * (int)time_scale()));
    vg_app_free(app);
}
END_TEST

/* ---- A body cut short ---- */

static unsigned count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    unsigned n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static vg_result *echo(vg_request *req, void *arg)
{
    size_t len;

    (void)arg;
    vg_request_body(req, &len);
    return vg_textf("%zu", len);
}

/* 100 uploads that stop halfway and close: libmicrohttpd 0.9.75 in epoll
 * mode would leave each socket in CLOSE_WAIT until the idle timeout (30 s
 * here); the event threads see the FIN and every descriptor is back
 * within a second. No handler runs. */
START_TEST(cut_short_uploads_are_closed_at_once)
{
    enum { N = 100 };
    static const char head[] =
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n";
    char part[4096];
    vg_app *app = tu_app_new();
    unsigned base;
    double until;
    vg_stats st;
    int i;

    memset(part, 'u', sizeof part);
    ck_assert_int_eq(vg_map_post(app, "/echo", echo, NULL), 0);
    tu_start(app);
    base = count_fds();
    for (i = 0; i < N; i++) {
        int fd = tu_connect(vg_app_port(app));
        ck_assert(tu_send_all(fd, head, sizeof head - 1));
        ck_assert(tu_send_all(fd, part, sizeof part));
        close(fd);
    }
    until = tu_now_ms() + 1000 * time_scale();
    while (count_fds() > base && tu_now_ms() < until)
        usleep(1000); /* the kernel's fd table has no notification */
    ck_assert_msg(count_fds() <= base, "%u descriptors left after %.0f ms",
                  count_fds() - base, 1000 * time_scale());
    vg_app_stats(app, &st);
    ck_assert_uint_eq(st.in_flight, 0);
    vg_app_free(app);
}
END_TEST

/* ---- Shutdown ---- */

typedef struct {
    tu_latch started;
} hold;

static vg_result *held(vg_request *req, void *arg)
{
    hold *h = arg;

    tu_latch_add(&h->started, 1);
    vg_token_wait(vg_request_token(req), 30000);
    return vg_text(vg_cancel_reason_name(vg_token_reason(vg_request_token(req))));
}

/* Requests held on many connections (spread over every event thread)
 * when the app stops: each gets the shutdown's 503, and the app stops. */
START_TEST(shutdown_with_requests_on_every_thread)
{
    enum { N = 16 };
    vg_app *app = tu_app_new();
    hold h;
    int fds[N], i;
    char buf[2048];

    tu_latch_init(&h.started);
    ck_assert_int_eq(vg_app_set_workers(app, N), 0);
    ck_assert_int_eq(vg_app_set_shutdown_grace(app, 100), 0);
    ck_assert_int_eq(vg_map_get(app, "/hold", held, &h), 0);
    tu_start(app);
    for (i = 0; i < N; i++) {
        fds[i] = tu_connect(vg_app_port(app));
        ck_assert(tu_send_all(fds[i], "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n",
                              31));
    }
    ck_assert(tu_latch_wait(&h.started, N, 10000));
    vg_app_stop(app);
    for (i = 0; i < N; i++) {
        ck_assert_uint_gt(tu_recv_response(fds[i], buf, sizeof buf), 0);
        ck_assert_msg(strncmp(buf, "HTTP/1.1 503", 12) == 0, "got %s", buf);
        close(fds[i]);
    }
    vg_app_free(app);
    tu_latch_destroy(&h.started);
}
END_TEST

static Suite *engine_suite(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("stalls");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, no_stall_inline_256);
    tcase_add_test(tc, no_stall_worker_256);
    tcase_add_test(tc, no_stall_inline_1000);
    tcase_add_test(tc, no_stall_worker_1000);
    suite_add_tcase(s, tc);
    tc = tcase_create("limits");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, connections_are_counted_across_threads);
    tcase_add_test(tc, total_limit_holds_across_threads);
    tcase_add_test(tc, per_ip_limit_holds_across_threads);
    suite_add_tcase(s, tc);
    tc = tcase_create("closing");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, cut_short_uploads_are_closed_at_once);
    tcase_add_test(tc, shutdown_with_requests_on_every_thread);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(engine_suite());
}
