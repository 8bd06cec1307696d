/* cancel_bench.c - how long after a client closes its connection does the
 * handler serving it learn that it was cancelled?
 *
 * One process: a libvolga app on 127.0.0.1:0 with a route GET /wait whose
 * handler announces that it started, then sleeps in vg_token_wait(tok,
 * WAIT_MS) and records CLOCK_MONOTONIC when it wakes (and the token's
 * reason). The client (main thread), N times per close mode: connects a raw
 * socket, sends the request, waits until the handler has started, takes t0,
 * closes the socket -- with a FIN (plain close) or an RST (SO_LINGER {1,0}
 * then close) -- and waits until the handler woke at t1. Latency = t1 - t0.
 * The next iteration starts only once the previous handler has returned
 * (vg_app_stats in_flight back to 0), so iterations never overlap.
 *
 * Usage: cancel_bench [--n N] [--no-watch] [--wait-ms MS] [--warmup W]
 *                     [--abort-after-ms A] [--no-batch]
 *   --abort-after-ms A  let the handler run A ms before the client leaves
 *                (default 0: at once). The watcher arms a socket after its
 *                request has been suspended 1 ms, so A >= 2 measures the
 *                steady state of a long request, A = 0 the worst case.
 *   --n N        iterations per close mode (default 300; 3 with --no-watch)
 *   --no-watch   vg_app_set_disconnect_watch(app, false): the handler is
 *                then never told while it waits, so every iteration times
 *                out after WAIT_MS; the report counts those timeouts
 *   --wait-ms MS how long the handler waits on its token (default 5000)
 *   --warmup W   uncounted FIN iterations first (default 5)
 *   --no-batch   vg_app_set_batch_scheduling(app, false), for comparison
 * Goal (watcher on): p99 <= 5 ms, no timeouts, every reason CLIENT_GONE.
 * Exit status: 0, or 1 if the benchmark itself failed (could not start,
 * a handler never started, or -- with the watcher on -- a timeout or a
 * reason other than CLIENT_GONE).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <volga.h>

#include "benchutil.h"

static int abort_after_ms; /* --abort-after-ms */

/* What the handler of the current iteration reports to the client. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;        /* on CLOCK_MONOTONIC */
    long want;                  /* the iteration the client waits for */
    bool started, woke;
    bool cancelled;             /* vg_token_wait's answer */
    vg_cancel_reason reason;
    struct timespec t_wake;
    int wait_ms;
} g = { .lock = PTHREAD_MUTEX_INITIALIZER, .want = -1 };

static vg_result *wait_handler(vg_request *req, void *arg)
{
    const char *q = vg_request_query(req, "i");
    long id = q != NULL ? strtol(q, NULL, 10) : -2;
    vg_token *tok = vg_request_token(req);
    struct timespec t1;
    bool cancelled;

    (void)arg;
    pthread_mutex_lock(&g.lock);
    if (id == g.want) {
        g.started = true;
        pthread_cond_broadcast(&g.cond);
    }
    pthread_mutex_unlock(&g.lock);

    cancelled = vg_token_wait(tok, g.wait_ms);
    clock_gettime(CLOCK_MONOTONIC, &t1);

    pthread_mutex_lock(&g.lock);
    if (id == g.want) {
        g.woke = true;
        g.t_wake = t1;
        g.cancelled = cancelled;
        g.reason = vg_token_reason(tok);
        pthread_cond_broadcast(&g.cond);
    }
    pthread_mutex_unlock(&g.lock);
    return vg_text("too late\n");
}

/* Waits (g.lock held) until *flag or `ms` pass; returns *flag. */
static bool wait_flag(const bool *flag, int ms)
{
    struct timespec dl;

    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    while (!*flag)
        if (pthread_cond_timedwait(&g.cond, &g.lock, &dl) == ETIMEDOUT)
            break;
    return *flag;
}

typedef struct {
    const char *name;
    bool rst;
    int n;
    double *lat_ms;      /* n latencies */
    int done;            /* iterations measured */
    int timeouts;        /* handler woke by its own timeout, not cancelled */
    int bad_reason;      /* woke cancelled with a reason other than CLIENT_GONE */
    int errors;          /* connect/send failures, handler never started/woke */
} mode_result;

/* One iteration: returns 0 and stores the latency, or -1 on a failure. */
static int one(vg_app *app, long id, bool rst, mode_result *mr, bool record)
{
    unsigned short port = vg_app_port(app);
    char req[128];
    struct timespec t0;
    int fd, len;
    bool ok;

    pthread_mutex_lock(&g.lock);
    g.want = id;
    g.started = g.woke = g.cancelled = false;
    g.reason = VG_CANCEL_NONE;
    pthread_mutex_unlock(&g.lock);

    fd = bu_connect(port);
    if (fd < 0)
        return -1;
    len = snprintf(req, sizeof req,
                   "GET /wait?i=%ld HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", id);
    if (!bu_send_all(fd, req, (size_t)len)) {
        close(fd);
        return -1;
    }
    pthread_mutex_lock(&g.lock);
    ok = wait_flag(&g.started, 5000);
    pthread_mutex_unlock(&g.lock);
    if (!ok) {
        close(fd);
        return -1;
    }
    if (abort_after_ms > 0) {
        /* The scenario itself: a client that leaves a running request. */
        struct timespec d = {abort_after_ms / 1000,
                             (long)(abort_after_ms % 1000) * 1000000L};
        nanosleep(&d, NULL);
    }
    if (rst) {
        struct linger lg = { 1, 0 };
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    close(fd);

    pthread_mutex_lock(&g.lock);
    ok = wait_flag(&g.woke, g.wait_ms + 5000);
    if (ok && record) {
        double ms = bu_ts_ms(&g.t_wake) - bu_ts_ms(&t0);
        mr->lat_ms[mr->done++] = ms < 0 ? 0 : ms;
        if (!g.cancelled)
            mr->timeouts++;
        else if (g.reason != VG_CANCEL_CLIENT_GONE)
            mr->bad_reason++;
    }
    g.want = -1;
    pthread_mutex_unlock(&g.lock);
    if (!ok)
        return -1;
    return bu_wait_idle(app, g.wait_ms + 5000) ? 0 : -1;
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *v, int n, double p)
{
    int k;

    if (n == 0)
        return 0;
    k = (int)(p / 100.0 * n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

static void usage(void)
{
    fprintf(stderr, "usage: cancel_bench [--n N] [--no-watch] [--wait-ms MS]"
                    " [--warmup W] [--abort-after-ms A] [--no-batch]\n");
}

static bool arg_int(int argc, char **argv, int *i, const char *name, int lo,
                    int *out)
{
    char *end;
    long v;

    if (strcmp(argv[*i], name) != 0)
        return false;
    if (*i + 1 >= argc) {
        usage();
        exit(2);
    }
    v = strtol(argv[*i + 1], &end, 10);
    if (*end != '\0' || end == argv[*i + 1] || v < lo || v > 1000000) {
        usage();
        exit(2);
    }
    *out = (int)v;
    (*i)++;
    return true;
}

int main(int argc, char **argv)
{
    int n = -1, warmup = 5, i, m, rc, status = 0;
    bool watch = true, batch = true;
    pthread_condattr_t ca;
    mode_result modes[2] = { { .name = "fin", .rst = false },
                             { .name = "rst", .rst = true } };
    vg_app *app;
    long id = 0;

    g.wait_ms = 5000;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-watch") == 0)
            watch = false;
        else if (strcmp(argv[i], "--no-batch") == 0)
            batch = false;
        else if (!arg_int(argc, argv, &i, "--n", 1, &n) &&
                 !arg_int(argc, argv, &i, "--wait-ms", 1, &g.wait_ms) &&
                 !arg_int(argc, argv, &i, "--warmup", 0, &warmup) &&
                 !arg_int(argc, argv, &i, "--abort-after-ms", 0, &abort_after_ms)) {
            usage();
            return 2;
        }
    }
    if (n < 0)
        n = watch ? 300 : 3;
    if (!watch)
        warmup = 0;
    signal(SIGPIPE, SIG_IGN);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g.cond, &ca);
    pthread_condattr_destroy(&ca);

    app = vg_app_new("127.0.0.1:0");
    if (app == NULL || vg_app_set_disconnect_watch(app, watch) != 0 ||
        vg_app_set_batch_scheduling(app, batch) != 0 ||
        vg_app_set_shutdown_grace(app, 1000) != 0 ||
        vg_map_get(app, "/wait", wait_handler, NULL) != 0) {
        fprintf(stderr, "cancel_bench: cannot configure the app\n");
        vg_app_free(app);
        return 1;
    }
    rc = vg_app_start(app);
    if (rc != 0) {
        fprintf(stderr, "cancel_bench: cannot start: %s\n", strerror(-rc));
        vg_app_free(app);
        return 1;
    }
    printf("cancel_bench: port %u, watcher %s, %d iterations per close mode"
           " (+%d warm-up), handler waits up to %d ms\n",
           (unsigned)vg_app_port(app), watch ? "on" : "OFF", n, warmup,
           g.wait_ms);
    if (!watch)
        printf("cancel_bench: without the watcher each iteration lasts the"
               " full %d ms wait: about %d s in all\n", g.wait_ms,
               (int)(2LL * n * g.wait_ms / 1000));
    fflush(stdout);

    for (i = 0; i < warmup; i++)
        if (one(app, id++, false, &modes[0], false) != 0)
            modes[0].errors++;
    for (m = 0; m < 2; m++) {
        modes[m].n = n;
        modes[m].lat_ms = calloc((size_t)n, sizeof(double));
        if (modes[m].lat_ms == NULL) {
            fprintf(stderr, "cancel_bench: no memory\n");
            vg_app_free(app);
            return 1;
        }
    }
    /* Alternate FIN and RST so that both see the same noise. */
    for (i = 0; i < n; i++)
        for (m = 0; m < 2; m++)
            if (one(app, id++, modes[m].rst, &modes[m], true) != 0)
                modes[m].errors++;
    vg_app_free(app);

    printf("%-4s %5s %9s %9s %9s %9s %9s %10s %6s\n", "mode", "n", "p50_ms",
           "p90_ms", "p99_ms", "max_ms", "timeouts", "bad_reason", "errors");
    for (m = 0; m < 2; m++) {
        mode_result *r = &modes[m];
        qsort(r->lat_ms, (size_t)r->done, sizeof(double), bu_cmp_double);
        printf("%-4s %5d %9.3f %9.3f %9.3f %9.3f %9d %10d %6d\n", r->name,
               r->done, pct(r->lat_ms, r->done, 50), pct(r->lat_ms, r->done, 90),
               pct(r->lat_ms, r->done, 99),
               r->done ? r->lat_ms[r->done - 1] : 0.0, r->timeouts,
               r->bad_reason, r->errors);
    }
    printf("watch=%d\n", watch ? 1 : 0);
    for (m = 0; m < 2; m++) {
        mode_result *r = &modes[m];
        printf("%s_n=%d\n%s_p50_ms=%.3f\n%s_p90_ms=%.3f\n%s_p99_ms=%.3f\n"
               "%s_max_ms=%.3f\n%s_timeouts=%d\n%s_bad_reason=%d\n"
               "%s_errors=%d\n",
               r->name, r->done, r->name, pct(r->lat_ms, r->done, 50), r->name,
               pct(r->lat_ms, r->done, 90), r->name,
               pct(r->lat_ms, r->done, 99), r->name,
               r->done ? r->lat_ms[r->done - 1] : 0.0, r->name, r->timeouts,
               r->name, r->bad_reason, r->name, r->errors);
        if (r->errors > 0 || r->done == 0)
            status = 1;
        if (watch && (r->timeouts > 0 || r->bad_reason > 0))
            status = 1;
    }
    if (watch) {
        bool met = status == 0 && pct(modes[0].lat_ms, modes[0].done, 99) <= 5.0 &&
                   pct(modes[1].lat_ms, modes[1].done, 99) <= 5.0;
        printf("goal_p99_le_5ms=%s\n", met ? "met" : "MISSED");
    } else {
        printf("no_watch_timed_out=%d/%d (expected: all; the handler is not"
               " told while it waits)\n",
               modes[0].timeouts + modes[1].timeouts,
               modes[0].done + modes[1].done);
    }
    for (m = 0; m < 2; m++)
        free(modes[m].lat_ms);
    pthread_cond_destroy(&g.cond);
    return status;
}
