/* chain_bench.c - a client leaves the front; how long until the back's
 * token has fired?
 *
 * One process, two libvolga apps on 127.0.0.1:0. The back has GET /wait,
 * whose handler announces that it started, sleeps in vg_token_wait(tok,
 * WAIT_MS) and records CLOCK_MONOTONIC when it wakes, and the token's
 * reason. The front has GET /proxy, whose handler calls the back's /wait
 * with vg_curl_perform on its own request's token (libvolga-curl). The
 * client (main thread) connects a raw socket, sends the request, waits
 * until the back's handler has started plus --abort-after-ms, takes t0,
 * closes the socket (FIN) and waits until the back's handler woke at t1:
 * latency = t1 - t0, over the two hops client -> front (EPOLLRDHUP, token,
 * curl_multi_poll wakes, the upstream connection is closed) and front ->
 * back (EPOLLRDHUP, token). The next iteration starts once both apps have
 * nothing in flight, so iterations never overlap.
 *
 * In the same run, the anchor: the client leaves the back directly (one
 * hop), so the cost of the extra hop is the difference.
 *
 * Usage: chain_bench [--n N] [--abort-after-ms A] [--warmup W] [--no-batch]
 *   --n N               measured aborts per mode (default 300)
 *   --abort-after-ms A  how long the back's handler runs before the client
 *                       leaves (default 2: a request in its steady state)
 *   --warmup W          uncounted chain iterations first (default 5)
 *   --no-batch          both apps' threads under SCHED_OTHER
 *                       (vg_app_set_batch_scheduling(app, false))
 * Goal: chain p99 <= 5 ms, every back token cancelled with client_gone.
 * Exit status: 0, or 1 if the benchmark itself failed (an app did not
 * start, a handler never started or woke, a reason other than client_gone).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <volga.h>

#include "benchutil.h"
#include <volga-curl.h>

#define WAIT_MS 10000

/* What the back's handler of the current iteration reports. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;        /* on CLOCK_MONOTONIC */
    long want;                  /* the iteration the client waits for */
    bool started, woke;
    vg_cancel_reason reason;
    struct timespec t_wake;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER, .want = -1};

static unsigned short back_port;

static vg_result *back_wait(vg_request *req, void *arg)
{
    const char *q = vg_request_query(req, "i");
    long id = q != NULL ? strtol(q, NULL, 10) : -2;
    vg_token *tok = vg_request_token(req);
    struct timespec t1;

    (void)arg;
    pthread_mutex_lock(&g.lock);
    if (id == g.want) {
        g.started = true;
        pthread_cond_broadcast(&g.cond);
    }
    pthread_mutex_unlock(&g.lock);

    vg_token_wait(tok, WAIT_MS);
    clock_gettime(CLOCK_MONOTONIC, &t1);

    pthread_mutex_lock(&g.lock);
    if (id == g.want) {
        g.woke = true;
        g.t_wake = t1;
        g.reason = vg_token_reason(tok);
        pthread_cond_broadcast(&g.cond);
    }
    pthread_mutex_unlock(&g.lock);
    return vg_text("too late\n");
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

static vg_result *front_proxy(vg_request *req, void *arg)
{
    const char *q = vg_request_query(req, "i");
    char url[128];
    CURL *easy = curl_easy_init();
    CURLcode rc;

    (void)arg;
    if (easy == NULL)
        return vg_status(500);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/wait?i=%s",
             (unsigned)back_port, q ? q : "-1");
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
    rc = vg_curl_perform(easy, vg_request_token(req));
    curl_easy_cleanup(easy);
    return rc == CURLE_OK ? vg_text("answered\n") : NULL;
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
    int n, done;
    double *lat_ms;
    int bad_reason;      /* woke with a reason other than CLIENT_GONE */
    int errors;          /* connect/send failures, never started or woke */
} mode_result;

static int abort_after_ms = 2;
static bool no_batch;           /* --no-batch */

/* One iteration through `port` (front: path /proxy, back: /wait). */
static int one(vg_app *front, vg_app *back, unsigned short port,
               const char *path, long id, mode_result *mr, bool record)
{
    struct timespec t0, pause = {abort_after_ms / 1000,
                                 (long)(abort_after_ms % 1000) * 1000000L};
    char req[128];
    int fd, len;
    bool ok;

    pthread_mutex_lock(&g.lock);
    g.want = id;
    g.started = g.woke = false;
    g.reason = VG_CANCEL_NONE;
    pthread_mutex_unlock(&g.lock);

    fd = bu_connect(port);
    if (fd < 0)
        return -1;
    len = snprintf(req, sizeof req,
                   "GET %s?i=%ld HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path, id);
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
    if (abort_after_ms > 0)
        nanosleep(&pause, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    close(fd);
    pthread_mutex_lock(&g.lock);
    ok = wait_flag(&g.woke, WAIT_MS + 5000);
    pthread_mutex_unlock(&g.lock);
    if (!ok)
        return -1;
    if (record) {
        if (g.reason != VG_CANCEL_CLIENT_GONE)
            mr->bad_reason++;
        mr->lat_ms[mr->done++] = bu_ts_ms(&g.t_wake) - bu_ts_ms(&t0);
    }
    if (!bu_wait_idle(back, 5000) || (front != NULL && !bu_wait_idle(front, 5000)))
        return -1;
    return 0;
}

static double pct(const double *sorted, int n, double p)
{
    int i = (int)(p / 100.0 * (n - 1) + 0.5);

    return sorted[i < n ? i : n - 1];
}

static void report(mode_result *mr)
{
    qsort(mr->lat_ms, (size_t)mr->done, sizeof *mr->lat_ms, bu_cmp_double);
    if (mr->done == 0) {
        printf("%-8s %5d  (no samples)\n", mr->name, 0);
        return;
    }
    printf("%-8s %5d %8.3f %8.3f %8.3f %8.3f %8.3f %6d %6d\n", mr->name,
           mr->done, pct(mr->lat_ms, mr->done, 0), pct(mr->lat_ms, mr->done, 50),
           pct(mr->lat_ms, mr->done, 90), pct(mr->lat_ms, mr->done, 99),
           mr->lat_ms[mr->done - 1], mr->bad_reason, mr->errors);
}

static vg_app *start_app(const char *path, vg_handler fn)
{
    vg_app *app = vg_app_new("127.0.0.1:0");

    if (app == NULL)
        return NULL;
    vg_app_set_logger(app, vg_log_stderr, NULL, VG_LOG_ERROR);
    if (no_batch && vg_app_set_batch_scheduling(app, false) != 0) {
        vg_app_free(app);
        return NULL;
    }
    if (vg_map_get(app, path, fn, NULL) != 0 || vg_app_start(app) != 0) {
        vg_app_free(app);
        return NULL;
    }
    return app;
}

int main(int argc, char **argv)
{
    int n = 300, warmup = 5, i, failed = 0;
    mode_result chain = {.name = "chain"}, direct = {.name = "direct"};
    vg_app *back, *front;
    pthread_condattr_t ca;
    long id = 0;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--n") == 0 && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (strcmp(argv[i], "--abort-after-ms") == 0 && i + 1 < argc)
            abort_after_ms = atoi(argv[++i]);
        else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc)
            warmup = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-batch") == 0)
            no_batch = true;
        else {
            fprintf(stderr, "usage: %s [--n N] [--abort-after-ms A] [--warmup W] [--no-batch]\n",
                    argv[0]);
            return 2;
        }
    }
    if (n < 1 || abort_after_ms < 0 || warmup < 0) {
        fprintf(stderr, "chain_bench: bad arguments\n");
        return 2;
    }
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g.cond, &ca);
    pthread_condattr_destroy(&ca);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    back = start_app("/wait", back_wait);
    front = start_app("/proxy", front_proxy);
    if (back == NULL || front == NULL) {
        fprintf(stderr, "chain_bench: cannot start the apps\n");
        return 1;
    }
    back_port = vg_app_port(back);
    chain.n = direct.n = n;
    chain.lat_ms = calloc((size_t)n, sizeof(double));
    direct.lat_ms = calloc((size_t)n, sizeof(double));
    if (chain.lat_ms == NULL || direct.lat_ms == NULL)
        return 1;

    for (i = 0; i < warmup; i++)
        if (one(front, back, vg_app_port(front), "/proxy", id++, &chain, false) != 0)
            chain.errors++;
    /* Interleaved, so that both modes see the same machine. */
    for (i = 0; i < n; i++) {
        if (one(front, back, vg_app_port(front), "/proxy", id++, &chain, true) != 0)
            chain.errors++;
        if (one(NULL, back, back_port, "/wait", id++, &direct, true) != 0)
            direct.errors++;
    }

    printf("chain_bench: client leaves -> back token fired, %d aborts per mode, "
           "abort after %d ms%s\n", n, abort_after_ms,
           no_batch ? ", SCHED_OTHER threads" : "");
    printf("%-8s %5s %8s %8s %8s %8s %8s %6s %6s\n", "mode", "n", "min_ms",
           "p50_ms", "p90_ms", "p99_ms", "max_ms", "badrsn", "errors");
    report(&direct);
    report(&chain);
    if (chain.done > 0)
        printf("goal chain p99 <= 5 ms: %s\n",
               pct(chain.lat_ms, chain.done, 99) <= 5.0 ? "met" : "missed");
    failed = chain.errors + direct.errors + chain.bad_reason + direct.bad_reason;

    vg_app_free(front);
    vg_app_free(back);
    curl_global_cleanup();
    free(chain.lat_ms);
    free(direct.lat_ms);
    pthread_cond_destroy(&g.cond);
    return failed ? 1 : 0;
}
