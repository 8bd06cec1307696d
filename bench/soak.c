/* soak.c - mixed load for a set time against one libvolga app in this
 * process, then checks that nothing leaked.
 *
 * Usage: soak [--seconds S] [--clients C]     (default 600 s, 16 clients)
 *
 * Clients (threads, raw loopback sockets) loop until the time is up, each
 * round picking at random:
 *   - fast:     GET /fast, read the answer (keep-alive or a new connection);
 *   - long:     GET /long (a handler that waits on its token up to 200 ms),
 *               then abort at a random moment (FIN or RST) or read it;
 *   - deadline: GET /slow (waits on its token; the route has a 50 ms
 *               deadline) and read the 504.
 * Every request is sent whole before any abort, and the handlers count
 * themselves, so the totals can be reconciled.
 *
 * After a warm-up (a fifth of the run, at most 60 s) it records RSS; at the
 * end, once every client is done and the app idle, it checks:
 *   - RSS grew < 5% over the warm level;
 *   - the open fd count is back to the baseline taken after start;
 *   - vg_app_stats: requests == requests sent (less at most the ones clients
 *     aborted, see accounted()), in_flight == 0, and the
 *     cancel counters match what the handlers and clients saw: timeouts
 *     == 504s read (some of them before their handler could start, under
 *     load), every slow handler that ran saw its timeout, client_gone at
 *     least what the long handlers saw.
 * Prints the figures and "soak: PASS" or "soak: FAIL ..." (exit 0 or 1).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <volga.h>

static atomic_ullong sent, read_ok, aborted, h_fast, h_long, h_slow,
    h_long_gone, h_slow_timeout, bad;
/* Handlers still running. A 504 ends the request (in_flight drops) while
 * its handler may still be on its way out of vg_token_wait, and what the
 * handlers counted is only final once none is left. */
static atomic_int h_running;
/* 504s read by clients: one per request the deadline ended, whether or not
 * its handler had started (under load a request can wait in the worker
 * queue past its 50 ms, and a handler whose token is already cancelled is
 * not run). */
static atomic_ullong got_504;
static atomic_bool done;
static unsigned short port;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static vg_result *fast(vg_request *req, void *arg)
{
    (void)req, (void)arg;
    atomic_fetch_add(&h_fast, 1);
    return vg_text("fast");
}

static vg_result *waiter(vg_request *req, void *arg)
{
    vg_token *tok = vg_request_token(req);
    bool slow = arg != NULL;

    atomic_fetch_add(&h_running, 1);
    atomic_fetch_add(slow ? &h_slow : &h_long, 1);
    if (vg_token_wait(tok, slow ? 5000 : 200)) {
        vg_cancel_reason why = vg_token_reason(tok);
        if (why == VG_CANCEL_CLIENT_GONE)
            atomic_fetch_add(&h_long_gone, 1);
        else if (why == VG_CANCEL_TIMEOUT)
            atomic_fetch_add(&h_slow_timeout, 1);
        atomic_fetch_sub(&h_running, 1);
        return NULL;
    }
    atomic_fetch_sub(&h_running, 1);
    return vg_text("long");
}

static int connect_fd(void)
{
    struct sockaddr_in sa;
    struct timeval tv = {10, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads one response (Content-Length framed); returns its status or 0. */
static int read_response(int fd)
{
    char buf[2048];
    size_t got = 0;
    char *end, *cl;

    for (;;) {
        ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (n <= 0)
            return 0;
        got += (size_t)n;
        buf[got] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end == NULL)
            continue;
        cl = strcasestr(buf, "Content-Length:");
        if (cl && got < (size_t)(end + 4 - buf) + strtoul(cl + 15, NULL, 10))
            continue;
        return atoi(buf + 9);
    }
}

static bool send_request(int fd, const char *path, bool keep)
{
    char req[128];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: soak\r\n%s\r\n",
                     path, keep ? "" : "Connection: close\r\n");
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
        return false;
    atomic_fetch_add(&sent, 1);
    return true;
}

static void *client(void *arg)
{
    unsigned seed = (unsigned)(size_t)arg;
    int fd = -1;

    while (!atomic_load(&done)) {
        int kind = rand_r(&seed) % 10, status;
        bool keep = rand_r(&seed) % 2;
        const char *path = kind < 6 ? "/fast" : kind < 9 ? "/long" : "/slow";

        if (fd < 0 && (fd = connect_fd()) < 0) {
            atomic_fetch_add(&bad, 1);
            continue;
        }
        if (!send_request(fd, path, keep)) {
            close(fd);
            fd = -1;
            continue;
        }
        if (kind >= 6 && kind < 9 && rand_r(&seed) % 2) {
            /* Abort the long request at a random moment of its life. */
            struct timespec d = {0, (long)(5 + rand_r(&seed) % 150) * 1000000L};
            nanosleep(&d, NULL);
            if (rand_r(&seed) % 2) {
                struct linger lg = {1, 0};
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            }
            close(fd);
            fd = -1;
            atomic_fetch_add(&aborted, 1);
            continue;
        }
        status = read_response(fd);
        if (kind == 9 && status == 504)
            atomic_fetch_add(&got_504, 1);
        if (status == 200 || (kind == 9 && status == 504))
            atomic_fetch_add(&read_ok, 1);
        else
            atomic_fetch_add(&bad, 1);
        if (!keep || status == 0) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* Whether the server's request count adds up. Every request a client did
 * not abort must have been seen. An aborted one may not have been: the
 * client sent it whole, but if the server had not read it yet when the
 * client hung up, an RST discards it from the socket, and a FIN makes the
 * engine close the connection (the client is gone) before libmicrohttpd
 * parses it, which happens under load. */
static bool accounted(unsigned long long requests)
{
    unsigned long long all = atomic_load(&sent), gone = atomic_load(&aborted);

    return requests <= all && requests + gone >= all;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;

    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

static int fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    while (d && readdir(d))
        n++;
    if (d)
        closedir(d);
    return n;
}

int main(int argc, char **argv)
{
    double seconds = 600, warm, start;
    int clients = 16, i, fds0, fds1, failed = 0;
    long rss_warm, rss_end;
    pthread_t *threads;
    vg_app *app;
    vg_stats st;

    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--clients") == 0)
            clients = atoi(argv[i + 1]);
    }
    if (seconds <= 0 || clients <= 0) {
        fprintf(stderr, "usage: soak [--seconds S] [--clients C]\n");
        return 2;
    }
    app = vg_app_new("127.0.0.1:0");
    if (app == NULL || vg_app_set_logger(app, vg_log_stderr, NULL, VG_LOG_ERROR) ||
        vg_app_set_workers(app, 64) || vg_map_get(app, "/fast", fast, NULL) ||
        vg_map_get(app, "/long", waiter, NULL) ||
        vg_map_get(app, "/slow", waiter, (void *)1) ||
        vg_map_timeout(app, "GET", "/slow", 50) || vg_app_start(app)) {
        fprintf(stderr, "soak: cannot start the app\n");
        return 1;
    }
    port = vg_app_port(app);
    fds0 = fd_count();
    threads = calloc((size_t)clients, sizeof *threads);
    start = now_s();
    /* Long enough for every worker thread to have touched its malloc
     * arena: growth after that is what a leak looks like. */
    warm = seconds / 5 < 60 ? seconds / 5 : 60;
    for (i = 0; i < clients; i++)
        pthread_create(&threads[i], NULL, client, (void *)(size_t)(i + 1));
    while (now_s() - start < warm)
        usleep(100000);
    rss_warm = rss_kb();
    printf("soak: %d clients for %.0f s; warm RSS %ld kB after %.0f s\n",
           clients, seconds, rss_warm, warm);
    fflush(stdout);
    while (now_s() - start < seconds)
        usleep(100000);
    atomic_store(&done, true);
    for (i = 0; i < clients; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    /* Let the server finish what the last aborts left, and close the
     * connections the clients closed last (it learns of each from the
     * socket, a moment later): bounded (20 s, for a machine under heavy
     * load), so a leak still fails below. */
    for (i = 0; i < 400; i++) {
        vg_app_stats(app, &st);
        if (st.in_flight == 0 && accounted(st.requests) &&
            atomic_load(&h_running) == 0 && fd_count() <= fds0)
            break;
        usleep(50000);
    }
    rss_end = rss_kb();
    fds1 = fd_count();
    printf("soak: sent %llu requests: %llu answered, %llu aborted by clients, "
           "%llu unexpected\n",
           (unsigned long long)sent, (unsigned long long)read_ok,
           (unsigned long long)aborted, (unsigned long long)bad);
    printf("soak: handlers fast %llu long %llu slow %llu; tokens: client_gone "
           "%llu timeout %llu\n",
           (unsigned long long)h_fast, (unsigned long long)h_long,
           (unsigned long long)h_slow, (unsigned long long)h_long_gone,
           (unsigned long long)h_slow_timeout);
    printf("soak: 504s read %llu\n", (unsigned long long)got_504);
    printf("soak: stats requests %llu in_flight %llu client_gone %llu "
           "timeout %llu\n",
           st.requests, st.in_flight, st.cancelled_client_gone,
           st.cancelled_timeout);
    printf("soak: RSS warm %ld kB end %ld kB (%+.2f%%); fds baseline %d end %d\n",
           rss_warm, rss_end, 100.0 * (double)(rss_end - rss_warm) / (double)rss_warm,
           fds0, fds1);
    if (!accounted(st.requests) || st.in_flight != 0) {
        printf("soak: FAIL: the stats do not account for every request\n");
        failed = 1;
    }
    if (st.cancelled_client_gone < atomic_load(&h_long_gone) ||
        st.cancelled_timeout != atomic_load(&got_504) ||
        st.cancelled_timeout < atomic_load(&h_slow_timeout) ||
        atomic_load(&h_slow_timeout) != atomic_load(&h_slow)) {
        printf("soak: FAIL: cancel counters disagree with the handlers\n");
        failed = 1;
    }
    if ((double)rss_end > 1.05 * (double)rss_warm) {
        printf("soak: FAIL: RSS grew more than 5%%\n");
        failed = 1;
    }
    if (fds1 != fds0) {
        printf("soak: FAIL: fd count %d, baseline %d\n", fds1, fds0);
        failed = 1;
    }
    if (atomic_load(&bad) != 0) {
        printf("soak: FAIL: %llu unexpected answers\n", (unsigned long long)bad);
        failed = 1;
    }
    vg_app_free(app);
    printf("soak: %s\n", failed ? "FAIL" : "PASS");
    return failed;
}
