/* test_app.c - an app's life and configuration: address parsing, binding,
 * settings, route mapping errors, start/stop/free, vg_app_run with
 * vg_app_stop and signals, graceful shutdown, counters and the logger. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <curl/curl.h>
#include <volga.h>
#include "testutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* Generous upper bound for anything a test waits on. */
#define WAIT_MS 10000

/* ---- Handlers and helpers ---- */

static vg_result *hello(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_text("hello");
}

/* GET /hello on a fresh connection: 200 "hello" or the test fails. */
static void assert_hello(unsigned short port)
{
    tu_response r = tu_get(port, "/hello");

    ck_assert_int_eq(r.curl_code, CURLE_OK);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "hello");
    tu_response_free(&r);
}

/* Connects to host:port (IPv4 dotted quad) and returns the errno of the
 * failure, or 0 if the connection was accepted. */
static int connect_errno(const char *host, unsigned short port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), rc, err = 0;

    ck_assert_int_ge(fd, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    ck_assert_int_eq(inet_pton(AF_INET, host, &sa.sin_addr), 1);
    rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    if (rc != 0)
        err = errno;
    close(fd);
    return err;
}

/* A logger that counts messages per level; thread-safe. */
typedef struct {
    pthread_mutex_t lock;
    int counts[VG_LOG_DEBUG + 1];
    int out_of_range;
    char last_error[512];
} log_capture;

static void log_capture_init(log_capture *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
}

static void log_capture_destroy(log_capture *c)
{
    pthread_mutex_destroy(&c->lock);
}

static void capture_log(vg_log_level level, const char *msg, void *arg)
{
    log_capture *c = arg;

    pthread_mutex_lock(&c->lock);
    if ((unsigned)level <= VG_LOG_DEBUG)
        c->counts[level]++;
    else
        c->out_of_range++;
    if (level == VG_LOG_ERROR && msg != NULL)
        snprintf(c->last_error, sizeof c->last_error, "%s", msg);
    pthread_mutex_unlock(&c->lock);
}

static int log_count(log_capture *c, vg_log_level level)
{
    int n;

    pthread_mutex_lock(&c->lock);
    n = c->counts[level];
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* A client thread doing one GET. */
typedef struct {
    unsigned short port;
    const char *path;
    tu_response r;
    pthread_t thread;
} client;

static void *client_main(void *arg)
{
    client *c = arg;
    c->r = tu_get(c->port, c->path);
    return NULL;
}

static void client_start(client *c, unsigned short port, const char *path)
{
    c->port = port;
    c->path = path;
    ck_assert_int_eq(pthread_create(&c->thread, NULL, client_main, c), 0);
}

static void client_join(client *c)
{
    ck_assert_int_eq(pthread_join(c->thread, NULL), 0);
}

static void *stop_main(void *arg)
{
    vg_app_stop(arg);
    return NULL;
}

/* ---- Addresses ---- */

START_TEST(test_new_accepts_addresses)
{
    static const char *const good[] = {
        "127.0.0.1:0", "localhost:0", "[::1]:0", "0.0.0.0:80",
        "127.0.0.1:65535", "localhost:7878", "[::1]:8080",
    };
    size_t i;

    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        vg_app *app = vg_app_new(good[i]);
        ck_assert_msg(app != NULL, "vg_app_new(\"%s\") failed: %s", good[i],
                      strerror(errno));
        vg_app_free(app);
    }
}
END_TEST

START_TEST(test_new_rejects_addresses)
{
    static const char *const bad[] = {
        "", "nohost", "127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:99999",
        "127.0.0.1:-1", "127.0.0.1:8a", "::1:80", "[::1]80", "[::1",
    };
    vg_app *app;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        app = vg_app_new(bad[i]);
        ck_assert_msg(app == NULL, "vg_app_new(\"%s\") accepted it", bad[i]);
        ck_assert_msg(errno == EINVAL, "vg_app_new(\"%s\"): errno %d, not EINVAL",
                      bad[i], errno);
    }
}
END_TEST

START_TEST(test_localhost_serves_on_127_0_0_1)
{
    log_capture log;
    vg_app *app = vg_app_new("localhost:0");

    ck_assert_ptr_nonnull(app);
    log_capture_init(&log);
    ck_assert_int_eq(vg_app_set_logger(app, capture_log, &log, VG_LOG_ERROR), 0);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    tu_start(app);
    assert_hello(vg_app_port(app));
    vg_app_free(app);
    ck_assert_int_eq(log_count(&log, VG_LOG_ERROR), 0);
    log_capture_destroy(&log);
}
END_TEST

static bool have_ipv6_loopback(void)
{
    struct sockaddr_in6 sa;
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    bool ok;

    if (fd < 0)
        return false;
    memset(&sa, 0, sizeof sa);
    sa.sin6_family = AF_INET6;
    sa.sin6_addr = in6addr_loopback;
    ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

START_TEST(test_ipv6_loopback_serves)
{
    static const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    struct sockaddr_in6 sa;
    struct timeval tv = {10, 0};
    char buf[4096];
    vg_app *app;
    int fd;

    if (!have_ipv6_loopback()) {
        fprintf(stderr, "test_ipv6_loopback_serves: skipped, no IPv6 "
                        "loopback on this machine\n");
        return;
    }
    app = vg_app_new("[::1]:0");
    ck_assert_ptr_nonnull(app);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    tu_start(app);

    fd = socket(AF_INET6, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    memset(&sa, 0, sizeof sa);
    sa.sin6_family = AF_INET6;
    sa.sin6_addr = in6addr_loopback;
    sa.sin6_port = htons(vg_app_port(app));
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert(tu_send_all(fd, req, sizeof req - 1));
    ck_assert_uint_gt(tu_recv_response(fd, buf, sizeof buf), 0);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200 ", 13) == 0, "got: %s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "\r\n\r\nhello"));
    close(fd);
    vg_app_free(app);
}
END_TEST

START_TEST(test_binds_exactly_the_host)
{
    vg_app *app = tu_app_new();
    unsigned short port;

    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    tu_start(app);
    port = vg_app_port(app);
    assert_hello(port);
    /* 127.0.0.2 is loopback too on Linux, but a socket bound to 127.0.0.1
     * does not accept there: only a wildcard bind would. */
    ck_assert_int_eq(connect_errno("127.0.0.2", port), ECONNREFUSED);
    vg_app_free(app);
}
END_TEST

START_TEST(test_port_in_use)
{
    vg_app *a = tu_app_new(), *b, *c;
    log_capture log;
    char addr[64];

    ck_assert_int_eq(vg_map_get(a, "/hello", hello, NULL), 0);
    tu_start(a);
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)vg_app_port(a));

    log_capture_init(&log);
    b = vg_app_new(addr);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(vg_app_set_logger(b, capture_log, &log, VG_LOG_ERROR), 0);
    ck_assert_int_eq(vg_map_get(b, "/hello", hello, NULL), 0);
    ck_assert_int_eq(vg_app_start(b), -EADDRINUSE);
    ck_assert_uint_eq(vg_app_port(b), 0);
    ck_assert_int_ge(log_count(&log, VG_LOG_ERROR), 1);
    vg_app_free(b);

    /* vg_app_run reports the failure instead of serving forever. */
    c = vg_app_new(addr);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(vg_app_set_logger(c, NULL, NULL, VG_LOG_ERROR), 0);
    ck_assert_int_eq(vg_app_run(c), -EADDRINUSE);
    vg_app_free(c);

    /* The first app never noticed. */
    assert_hello(vg_app_port(a));
    vg_app_free(a);
    log_capture_destroy(&log);
}
END_TEST

/* ---- Settings ---- */

START_TEST(test_settings)
{
    log_capture log;
    vg_app *app = tu_app_new();
    unsigned short port;

    log_capture_init(&log);
    ck_assert_uint_eq(vg_app_port(app), 0);

    /* Good values before start. */
    ck_assert_int_eq(vg_app_set_workers(app, 1), 0);
    ck_assert_int_eq(vg_app_set_workers(app, 4), 0);
    ck_assert_int_eq(vg_app_set_request_timeout(app, 0), 0);
    ck_assert_int_eq(vg_app_set_request_timeout(app, 5000), 0);
    ck_assert_int_eq(vg_app_set_shutdown_grace(app, 0), 0);
    ck_assert_int_eq(vg_app_set_shutdown_grace(app, 500), 0);
    ck_assert_int_eq(vg_app_set_max_connections(app, 1), 0);
    ck_assert_int_eq(vg_app_set_max_connections(app, 512), 0);
    ck_assert_int_eq(vg_app_set_body_limit(app, 1), 0);
    ck_assert_int_eq(vg_app_set_body_limit(app, 65536), 0);
    ck_assert_int_eq(vg_app_set_disconnect_watch(app, false), 0);
    ck_assert_int_eq(vg_app_set_disconnect_watch(app, true), 0);
    ck_assert_int_eq(vg_app_set_batch_scheduling(app, false), 0);
    ck_assert_int_eq(vg_app_set_batch_scheduling(app, true), 0);
    ck_assert_int_eq(vg_app_set_logger(app, NULL, NULL, VG_LOG_DEBUG), 0);
    ck_assert_int_eq(vg_app_set_logger(app, capture_log, &log, VG_LOG_ERROR), 0);

    /* Bad values. */
    ck_assert_int_eq(vg_app_set_workers(app, 0), -EINVAL);
    ck_assert_int_eq(vg_app_set_max_connections(app, 0), -EINVAL);
    ck_assert_int_eq(vg_app_set_logger(app, capture_log, &log,
                                       (vg_log_level)42), -EINVAL);

    /* A NULL app. */
    ck_assert_int_eq(vg_app_set_workers(NULL, 4), -EINVAL);
    ck_assert_int_eq(vg_app_set_request_timeout(NULL, 100), -EINVAL);
    ck_assert_int_eq(vg_app_set_shutdown_grace(NULL, 100), -EINVAL);
    ck_assert_int_eq(vg_app_set_max_connections(NULL, 100), -EINVAL);
    ck_assert_int_eq(vg_app_set_body_limit(NULL, 100), -EINVAL);
    ck_assert_int_eq(vg_app_set_disconnect_watch(NULL, true), -EINVAL);
    ck_assert_int_eq(vg_app_set_batch_scheduling(NULL, true), -EINVAL);
    ck_assert_int_eq(vg_app_set_logger(NULL, NULL, NULL, VG_LOG_ERROR), -EINVAL);
    ck_assert_int_eq(vg_app_start(NULL), -EINVAL);
    ck_assert_int_eq(vg_app_run(NULL), -EINVAL);
    ck_assert_uint_eq(vg_app_port(NULL), 0);

    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    tu_start(app);
    port = vg_app_port(app);
    /* The settings taken hold: the app serves with them. */
    assert_hello(port);

    /* Frozen once started. */
    ck_assert_int_eq(vg_app_set_workers(app, 4), -EBUSY);
    ck_assert_int_eq(vg_app_set_request_timeout(app, 100), -EBUSY);
    ck_assert_int_eq(vg_app_set_shutdown_grace(app, 100), -EBUSY);
    ck_assert_int_eq(vg_app_set_max_connections(app, 100), -EBUSY);
    ck_assert_int_eq(vg_app_set_body_limit(app, 100), -EBUSY);
    ck_assert_int_eq(vg_app_set_disconnect_watch(app, true), -EBUSY);
    ck_assert_int_eq(vg_app_set_batch_scheduling(app, false), -EBUSY);
    ck_assert_int_eq(vg_app_set_logger(app, NULL, NULL, VG_LOG_ERROR), -EBUSY);
    /* Bad values are still refused, one way or the other. */
    ck_assert_int_lt(vg_app_set_workers(app, 0), 0);

    ck_assert_int_eq(vg_app_start(app), -EALREADY);
    ck_assert_uint_eq(vg_app_port(app), port);
    assert_hello(port);

    /* An app runs once. */
    vg_app_stop(app);
    ck_assert_int_eq(vg_app_start(app), -EINVAL);
    ck_assert_int_eq(vg_app_set_workers(app, 4), -EBUSY);
    vg_app_free(app);
    log_capture_destroy(&log);
}
END_TEST

/* Answers the scheduling policy of the thread the handler runs on. */
static vg_result *policy_name(vg_request *req, void *arg)
{
    struct sched_param sp;
    int policy = -1;

    (void)req;
    (void)arg;
    pthread_getschedparam(pthread_self(), &policy, &sp);
    return vg_text(policy == SCHED_BATCH   ? "batch"
                   : policy == SCHED_OTHER ? "other"
                                           : "something else");
}

/* GET `path` answers 200 with `want`. */
static void assert_policy(unsigned short port, const char *path,
                          const char *want)
{
    tu_response r = tu_get(port, path);

    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, want);
    tu_response_free(&r);
}

/* Threads of this process named `name`, and how many of them run under
 * `policy` (/proc/self/task/TID/comm and field 41 of .../stat). */
static int threads_named(const char *name, int policy, int *with_policy)
{
    DIR *dir = opendir("/proc/self/task");
    struct dirent *de;
    int n = 0;

    ck_assert_ptr_nonnull(dir);
    *with_policy = 0;
    while ((de = readdir(dir)) != NULL) {
        char path[300], buf[1024], *p;
        FILE *f;
        int field;

        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", de->d_name);
        if ((f = fopen(path, "r")) == NULL)
            continue; /* the thread ended meanwhile */
        p = fgets(buf, sizeof buf, f);
        fclose(f);
        if (p == NULL || strcspn(buf, "\n") != strlen(name) ||
            strncmp(buf, name, strlen(name)) != 0)
            continue;
        n++;
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", de->d_name);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        p = fgets(buf, sizeof buf, f);
        fclose(f);
        /* Fields after the ")" that closes the name start at field 3. */
        if (p == NULL || (p = strrchr(buf, ')')) == NULL)
            continue;
        for (field = 2; field < 41 && p != NULL; field++)
            p = strchr(p + 1, ' ');
        if (p != NULL && atoi(p + 1) == policy)
            (*with_policy)++;
    }
    closedir(dir);
    return n;
}

/* GET /meet: returns only once two requests are in handlers at the same
 * time, so that both workers of a two-worker app have surely started. */
static vg_result *meet(vg_request *req, void *arg)
{
    tu_latch *met = arg;

    (void)req;
    tu_latch_add(met, 1);
    return tu_latch_wait(met, 2, WAIT_MS) ? vg_text("met")
                                           : vg_status(504);
}

/* Both workers of a two-worker app are running, named, under `policy`. */
static void assert_workers(unsigned short port, int policy)
{
    client a, b;
    int with;

    client_start(&a, port, "/meet");
    client_start(&b, port, "/meet");
    client_join(&a);
    client_join(&b);
    ck_assert_int_eq(a.r.status, 200);
    ck_assert_int_eq(b.r.status, 200);
    tu_response_free(&a.r);
    tu_response_free(&b.r);
    ck_assert_int_eq(threads_named("vg-worker", policy, &with), 2);
    ck_assert_int_eq(with, 2);
}

/* Worker routes and inline routes (an event thread, which runs
 * libmicrohttpd) run under SCHED_BATCH by default and under SCHED_OTHER
 * when it is turned off; the thread that starts the app is never touched,
 * and the monitor and supervisor (named threads) keep the normal policy. */
START_TEST(test_batch_scheduling)
{
    for (int on = 1; on >= 0; on--) {
        vg_app *app = tu_app_new();
        const char *want = on ? "batch" : "other";
        struct sched_param sp;
        int policy = -1;

        tu_latch met;

        tu_latch_init(&met);
        if (!on)
            ck_assert_int_eq(vg_app_set_batch_scheduling(app, false), 0);
        ck_assert_int_eq(vg_app_set_workers(app, 2), 0);
        ck_assert_int_eq(vg_map_get(app, "/meet", meet, &met), 0);
        ck_assert_int_eq(vg_map_get(app, "/worker", policy_name, NULL), 0);
        ck_assert_int_eq(vg_map_get(app, "/inline", policy_name, NULL), 0);
        ck_assert_int_eq(vg_map_inline(app, "GET", "/inline", true), 0);
        tu_start(app);
        /* Several requests: each may land on another worker or MHD thread. */
        for (int i = 0; i < 8; i++) {
            assert_policy(vg_app_port(app), "/worker", want);
            assert_policy(vg_app_port(app), "/inline", want);
        }
        pthread_getschedparam(pthread_self(), &policy, &sp);
        ck_assert_int_eq(policy, SCHED_OTHER);
        assert_workers(vg_app_port(app), on ? SCHED_BATCH : SCHED_OTHER);
        {
            /* The watcher thread exists only for deadlines (none here). */
            static const char *const normal[] = {"vg-monitor",
                                                 "vg-supervisor"};
            int with;

            for (size_t i = 0; i < sizeof normal / sizeof normal[0]; i++) {
                ck_assert_int_eq(threads_named(normal[i], SCHED_OTHER, &with), 1);
                ck_assert_int_eq(with, 1);
            }
        }
        vg_app_free(app);
        tu_latch_destroy(&met);
    }
}
END_TEST

/* ---- Routes ---- */

START_TEST(test_map_errors)
{
    static const char *const bad[] = {
        "", "no-slash", "/a//b", "/a/", "/{", "/{}", "/{a}{b}", "/{*r}/x",
        "/x{a}",
    };
    log_capture log;
    vg_app *app = tu_app_new();
    unsigned short port;
    size_t i;

    log_capture_init(&log);
    ck_assert_int_eq(vg_app_set_logger(app, capture_log, &log, VG_LOG_ERROR), 0);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(vg_map_get(app, bad[i], hello, NULL) == -EINVAL,
                      "GET \"%s\" was not refused with -EINVAL", bad[i]);
        ck_assert_msg(vg_map_post(app, bad[i], hello, NULL) == -EINVAL,
                      "POST \"%s\" was not refused with -EINVAL", bad[i]);
        ck_assert_msg(vg_map(app, "OPTIONS", bad[i], hello, NULL) == -EINVAL,
                      "OPTIONS \"%s\" was not refused with -EINVAL", bad[i]);
    }
    ck_assert_int_ge(log_count(&log, VG_LOG_ERROR),
                     (int)(3 * (sizeof bad / sizeof bad[0])));

    /* NULL arguments and bad methods. */
    ck_assert_int_eq(vg_map_get(app, "/a", NULL, NULL), -EINVAL);
    ck_assert_int_eq(vg_map_get(app, NULL, hello, NULL), -EINVAL);
    ck_assert_int_eq(vg_map_get(NULL, "/a", hello, NULL), -EINVAL);
    ck_assert_int_eq(vg_map(app, NULL, "/a", hello, NULL), -EINVAL);
    ck_assert_int_eq(vg_map(app, "", "/a", hello, NULL), -EINVAL);
    ck_assert_int_eq(vg_map(app, "GE T", "/a", hello, NULL), -EINVAL);

    /* Good patterns, then duplicates. */
    ck_assert_int_eq(vg_map_get(app, "/", hello, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/a/{b}/c", hello, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/f/{*rest}", hello, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/x/{id}", hello, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), -EEXIST);
    ck_assert_int_eq(vg_map_get(app, "/x/{other}", hello, NULL), -EEXIST);
    ck_assert_int_eq(vg_map_post(app, "/hello", hello, NULL), 0);
    ck_assert_int_eq(vg_map_put(app, "/hello", hello, NULL), 0);
    ck_assert_int_eq(vg_map_patch(app, "/hello", hello, NULL), 0);
    ck_assert_int_eq(vg_map_delete(app, "/hello", hello, NULL), 0);
    ck_assert_int_eq(vg_map(app, "OPTIONS", "/hello", hello, NULL), 0);
    ck_assert_int_eq(vg_map(app, "POST", "/hello", hello, NULL), -EEXIST);

    tu_start(app);
    port = vg_app_port(app);
    ck_assert_int_eq(vg_map_get(app, "/new", hello, NULL), -EBUSY);
    ck_assert_int_eq(vg_map_post(app, "/new", hello, NULL), -EBUSY);
    ck_assert_int_eq(vg_map_put(app, "/new", hello, NULL), -EBUSY);
    ck_assert_int_eq(vg_map_patch(app, "/new", hello, NULL), -EBUSY);
    ck_assert_int_eq(vg_map_delete(app, "/new", hello, NULL), -EBUSY);
    ck_assert_int_eq(vg_map(app, "OPTIONS", "/new", hello, NULL), -EBUSY);

    /* What was mapped serves; what was refused does not exist. */
    assert_hello(port);
    {
        tu_response r = tu_get(port, "/a/1/c");
        ck_assert_int_eq(r.status, 200);
        tu_response_free(&r);
        r = tu_get(port, "/new");
        ck_assert_int_eq(r.status, 404);
        tu_response_free(&r);
    }
    vg_app_free(app);
    log_capture_destroy(&log);
}
END_TEST

/* ---- Logger ---- */

START_TEST(test_logger_gets_errors)
{
    log_capture log;
    vg_app *app = vg_app_new("127.0.0.1:0");
    int errors;

    ck_assert_ptr_nonnull(app);
    log_capture_init(&log);
    ck_assert_int_eq(vg_app_set_logger(app, capture_log, &log, VG_LOG_ERROR), 0);
    ck_assert_int_eq(log_count(&log, VG_LOG_ERROR), 0);
    ck_assert_int_eq(vg_map_get(app, "/a//b", hello, NULL), -EINVAL);
    errors = log_count(&log, VG_LOG_ERROR);
    ck_assert_int_ge(errors, 1);
    pthread_mutex_lock(&log.lock);
    ck_assert_str_ne(log.last_error, "");
    pthread_mutex_unlock(&log.lock);

    /* Nothing above the chosen level arrives, even through a whole life. */
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    tu_start(app);
    assert_hello(vg_app_port(app));
    vg_app_free(app);
    ck_assert_int_eq(log_count(&log, VG_LOG_ERROR), errors);
    ck_assert_int_eq(log_count(&log, VG_LOG_WARN), 0);
    ck_assert_int_eq(log_count(&log, VG_LOG_INFO), 0);
    ck_assert_int_eq(log_count(&log, VG_LOG_DEBUG), 0);
    ck_assert_int_eq(log.out_of_range, 0);
    log_capture_destroy(&log);
}
END_TEST

START_TEST(test_logger_lifecycle_info)
{
    log_capture log;
    vg_app *app = vg_app_new("127.0.0.1:0");

    ck_assert_ptr_nonnull(app);
    log_capture_init(&log);
    ck_assert_int_eq(vg_app_set_logger(app, capture_log, &log, VG_LOG_INFO), 0);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    tu_start(app);
    assert_hello(vg_app_port(app));
    vg_app_free(app);
    /* Started, stopping, stopped: lifecycle messages are INFO. */
    ck_assert_int_ge(log_count(&log, VG_LOG_INFO), 1);
    ck_assert_int_eq(log_count(&log, VG_LOG_ERROR), 0);
    ck_assert_int_eq(log_count(&log, VG_LOG_DEBUG), 0);
    log_capture_destroy(&log);
}
END_TEST

START_TEST(test_logger_null_discards)
{
    vg_app *app = vg_app_new("127.0.0.1:0");

    ck_assert_ptr_nonnull(app);
    ck_assert_int_eq(vg_app_set_logger(app, NULL, NULL, VG_LOG_DEBUG), 0);
    ck_assert_int_eq(vg_map_get(app, "/{", hello, NULL), -EINVAL);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    tu_start(app);
    assert_hello(vg_app_port(app));
    vg_app_free(app);
}
END_TEST

/* ---- Start, stop, free ---- */

START_TEST(test_start_stop_loop)
{
    int i;

    for (i = 0; i < 50; i++) {
        vg_app *app = tu_app_new();
        /* Few workers keep 50 rounds quick under valgrind; the default
         * pool is started by every other test. */
        ck_assert_int_eq(vg_app_set_workers(app, 2), 0);
        ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
        tu_start(app);
        assert_hello(vg_app_port(app));
        if (i % 2 == 0)
            vg_app_stop(app); /* stop then free, or free alone */
        vg_app_free(app);
    }
}
END_TEST

START_TEST(test_null_and_unstarted_noops)
{
    vg_app *app;

    vg_app_free(NULL);
    vg_app_stop(NULL);

    app = tu_app_new();
    vg_app_free(app); /* never started */

    app = tu_app_new();
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    vg_app_stop(app); /* a no-op: the app can still start */
    vg_app_stop(app);
    ck_assert_int_eq(vg_app_set_workers(app, 2), 0);
    tu_start(app);
    assert_hello(vg_app_port(app));
    vg_app_stop(app); /* idempotent */
    vg_app_stop(app);
    vg_app_free(app);
}
END_TEST

/* ---- vg_app_run ---- */

typedef struct {
    vg_app *app;
    unsigned short port;
    tu_response r;
} run_ctx;

static void *request_then_stop(void *arg)
{
    run_ctx *c = arg;

    c->r = tu_get(c->port, "/hello");
    vg_app_stop(c->app);
    return NULL;
}

START_TEST(test_run_returns_after_stop)
{
    run_ctx c;
    pthread_t t;
    vg_stats st;

    memset(&c, 0, sizeof c);
    c.app = tu_app_new();
    ck_assert_int_eq(vg_map_get(c.app, "/hello", hello, NULL), 0);
    /* Start first so the helper knows the port and its stop cannot come
     * before the app runs. */
    tu_start(c.app);
    c.port = vg_app_port(c.app);
    ck_assert_int_eq(pthread_create(&t, NULL, request_then_stop, &c), 0);
    ck_assert_int_eq(vg_app_run(c.app), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(c.r.status, 200);
    ck_assert_str_eq(c.r.body, "hello");
    tu_response_free(&c.r);

    /* Shut down: new connections are refused, and nothing is in flight. */
    ck_assert_int_eq(connect_errno("127.0.0.1", c.port), ECONNREFUSED);
    vg_app_stats(c.app, &st);
    ck_assert_uint_ge(st.requests, 1);
    ck_assert_uint_eq(st.in_flight, 0);
    vg_app_free(c.app);
}
END_TEST

static volatile sig_atomic_t prior_handler_hits;

static void prior_handler(int sig)
{
    (void)sig;
    prior_handler_hits++;
}

typedef struct {
    unsigned short port;
    int sig;
    tu_latch run_done;
    tu_response r;
} signal_ctx;

static void *request_then_signal(void *arg)
{
    signal_ctx *c = arg;
    int i;

    c->r = tu_get(c->port, "/hello");
    /* vg_app_run installs its handler after the main thread enters it,
     * which this thread cannot observe: a signal that lands before that
     * hits the test's own handler, so raise it again until run returns. */
    for (i = 0; i < 100; i++) {
        kill(getpid(), c->sig);
        if (tu_latch_wait(&c->run_done, 1, 100))
            break;
    }
    return NULL;
}

static const int run_signals[] = {SIGTERM, SIGINT};

START_TEST(test_run_returns_on_signal)
{
    struct sigaction sa, old, now;
    signal_ctx c;
    pthread_t t;
    vg_app *app;
    int sig = run_signals[_i], rc;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = prior_handler;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(sig, &sa, &old), 0);

    memset(&c, 0, sizeof c);
    c.sig = sig;
    tu_latch_init(&c.run_done);
    app = tu_app_new();
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    tu_start(app);
    c.port = vg_app_port(app);
    ck_assert_int_eq(pthread_create(&t, NULL, request_then_signal, &c), 0);
    rc = vg_app_run(app);
    tu_latch_add(&c.run_done, 1);
    ck_assert_int_eq(pthread_join(t, NULL), 0);

    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(c.r.status, 200);
    ck_assert_str_eq(c.r.body, "hello");
    tu_response_free(&c.r);
    /* The disposition in place before vg_app_run is back. */
    ck_assert_int_eq(sigaction(sig, NULL, &now), 0);
    ck_assert(now.sa_handler == prior_handler);
    ck_assert_int_eq(connect_errno("127.0.0.1", c.port), ECONNREFUSED);

    vg_app_free(app);
    tu_latch_destroy(&c.run_done);
    ck_assert_int_eq(sigaction(sig, &old, NULL), 0);
}
END_TEST

/* ---- Graceful shutdown ---- */

typedef struct {
    tu_latch entered;      /* handlers that have started */
    tu_latch stop_called;  /* the test has called vg_app_stop */
    tu_latch release;      /* lets the gate handler return */
    atomic_int block_woke; /* vg_token_wait's result in the blocking handler */
    atomic_int block_reason;
    atomic_int block_done;
    atomic_int fast_saw_stop;
} grace_ctx;

static void grace_init(grace_ctx *g)
{
    memset(g, 0, sizeof *g);
    tu_latch_init(&g->entered);
    tu_latch_init(&g->stop_called);
    tu_latch_init(&g->release);
    atomic_init(&g->block_woke, -1);
    atomic_init(&g->block_reason, -1);
    atomic_init(&g->block_done, 0);
    atomic_init(&g->fast_saw_stop, 0);
}

static void grace_destroy(grace_ctx *g)
{
    tu_latch_destroy(&g->entered);
    tu_latch_destroy(&g->stop_called);
    tu_latch_destroy(&g->release);
}

/* Waits on its token far longer than any test runs. */
static vg_result *block_handler(vg_request *req, void *arg)
{
    grace_ctx *g = arg;
    vg_token *tok = vg_request_token(req);
    bool woke;

    tu_latch_add(&g->entered, 1);
    woke = vg_token_wait(tok, 10000);
    atomic_store(&g->block_woke, woke ? 1 : 0);
    atomic_store(&g->block_reason, (int)vg_token_reason(tok));
    atomic_store(&g->block_done, 1);
    return vg_text("late");
}

/* In flight when the stop comes, then finishes at once. */
static vg_result *fast_handler(vg_request *req, void *arg)
{
    grace_ctx *g = arg;

    (void)req;
    tu_latch_add(&g->entered, 1);
    atomic_store(&g->fast_saw_stop,
                 tu_latch_wait(&g->stop_called, 1, WAIT_MS) ? 1 : 0);
    return vg_text("fast");
}

/* Returns when the test releases it, whatever its token says. */
static vg_result *gate_handler(vg_request *req, void *arg)
{
    grace_ctx *g = arg;

    (void)req;
    tu_latch_add(&g->entered, 1);
    tu_latch_wait(&g->release, 1, WAIT_MS);
    return vg_text("gate");
}

START_TEST(test_graceful_stop_inflight)
{
    grace_ctx g;
    client slow, fast;
    vg_stats st;
    vg_app *app = tu_app_new();
    unsigned short port;

    grace_init(&g);
    ck_assert_int_eq(vg_app_set_shutdown_grace(app, 200), 0);
    ck_assert_int_eq(vg_map_get(app, "/block", block_handler, &g), 0);
    ck_assert_int_eq(vg_map_get(app, "/fast", fast_handler, &g), 0);
    tu_start(app);
    port = vg_app_port(app);

    client_start(&slow, port, "/block");
    client_start(&fast, port, "/fast");
    ck_assert(tu_latch_wait(&g.entered, 2, WAIT_MS));
    vg_app_stats(app, &st);
    ck_assert_uint_eq(st.in_flight, 2);

    vg_app_stop(app);
    tu_latch_add(&g.stop_called, 1);
    client_join(&fast);
    client_join(&slow);

    /* The fast request finished within the grace period. */
    ck_assert_int_eq(atomic_load(&g.fast_saw_stop), 1);
    ck_assert_int_eq(fast.r.status, 200);
    ck_assert_str_eq(fast.r.body, "fast");
    /* The blocked one's client got a 503 or a closed connection, never the
     * late body. */
    ck_assert_msg(slow.r.status == 503 ||
                      (slow.r.status == 0 && slow.r.curl_code != CURLE_OK),
                  "blocked request answered %ld (curl %d)", slow.r.status,
                  slow.r.curl_code);
    ck_assert_ptr_null(strstr(slow.r.body, "late"));
    vg_app_stats(app, &st);
    ck_assert_uint_eq(st.cancelled_shutdown, 1);
    ck_assert_uint_eq(st.cancelled_client_gone, 0);
    ck_assert_uint_eq(st.cancelled_timeout, 0);

    /* The 503 does not wait for the handler to notice its token; free
     * waits for the handler: it was woken by its token, for shutdown. */
    vg_app_free(app);
    ck_assert_int_eq(atomic_load(&g.block_done), 1);
    ck_assert_int_eq(atomic_load(&g.block_woke), 1);
    ck_assert_int_eq(atomic_load(&g.block_reason), VG_CANCEL_SHUTDOWN);
    tu_response_free(&fast.r);
    tu_response_free(&slow.r);
    grace_destroy(&g);
}
END_TEST

START_TEST(test_free_cancels_inflight)
{
    grace_ctx g;
    client slow;
    vg_app *app = tu_app_new();

    grace_init(&g);
    ck_assert_int_eq(vg_app_set_shutdown_grace(app, 100), 0);
    ck_assert_int_eq(vg_map_get(app, "/block", block_handler, &g), 0);
    tu_start(app);
    client_start(&slow, vg_app_port(app), "/block");
    ck_assert(tu_latch_wait(&g.entered, 1, WAIT_MS));

    /* No explicit stop: free stops gracefully and waits for the handler. */
    vg_app_free(app);
    ck_assert_int_eq(atomic_load(&g.block_done), 1);
    ck_assert_int_eq(atomic_load(&g.block_woke), 1);
    ck_assert_int_eq(atomic_load(&g.block_reason), VG_CANCEL_SHUTDOWN);
    client_join(&slow);
    ck_assert_msg(slow.r.status == 503 ||
                      (slow.r.status == 0 && slow.r.curl_code != CURLE_OK),
                  "blocked request answered %ld (curl %d)", slow.r.status,
                  slow.r.curl_code);
    tu_response_free(&slow.r);
    grace_destroy(&g);
}
END_TEST

/* ---- Counters ---- */

START_TEST(test_stats)
{
    grace_ctx g;
    client gate;
    vg_stats st;
    pthread_t stopper;
    vg_app *app = tu_app_new();
    unsigned short port;
    int i;

    grace_init(&g);
    memset(&st, 0xff, sizeof st);
    vg_app_stats(NULL, &st);
    ck_assert_uint_eq(st.requests, 0);
    ck_assert_uint_eq(st.in_flight, 0);
    vg_app_stats(app, NULL); /* harmless */
    memset(&st, 0xff, sizeof st);
    vg_app_stats(app, &st);
    ck_assert_uint_eq(st.requests, 0);
    ck_assert_uint_eq(st.in_flight, 0);
    ck_assert_uint_eq(st.cancelled_client_gone, 0);
    ck_assert_uint_eq(st.cancelled_timeout, 0);
    ck_assert_uint_eq(st.cancelled_shutdown, 0);

    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/gate", gate_handler, &g), 0);
    tu_start(app);
    port = vg_app_port(app);

    /* One handler blocked: one in flight. */
    client_start(&gate, port, "/gate");
    ck_assert(tu_latch_wait(&g.entered, 1, WAIT_MS));
    vg_app_stats(app, &st);
    ck_assert_uint_eq(st.in_flight, 1);
    tu_latch_add(&g.release, 1);
    client_join(&gate);
    ck_assert_int_eq(gate.r.status, 200);
    ck_assert_str_eq(gate.r.body, "gate");
    tu_response_free(&gate.r);

    for (i = 0; i < 10; i++)
        assert_hello(port);
    {
        /* A routing miss is a request too. */
        tu_response r = tu_get(port, "/missing");
        ck_assert_int_eq(r.status, 404);
        tu_response_free(&r);
    }

    /* Once vg_app_run has returned the counters are final. */
    ck_assert_int_eq(pthread_create(&stopper, NULL, stop_main, app), 0);
    ck_assert_int_eq(vg_app_run(app), 0);
    ck_assert_int_eq(pthread_join(stopper, NULL), 0);
    vg_app_stats(app, &st);
    ck_assert_uint_ge(st.requests, 12);
    ck_assert_uint_eq(st.in_flight, 0);
    ck_assert_uint_eq(st.cancelled_client_gone, 0);
    ck_assert_uint_eq(st.cancelled_timeout, 0);
    ck_assert_uint_eq(st.cancelled_shutdown, 0);
    vg_app_free(app);
    grace_destroy(&g);
}
END_TEST

/* ---- Suite ---- */

/* ---- Given sockets, SO_REUSEPORT, socket activation ---- */

/* A listening TCP socket on 127.0.0.1:0; its port in *port. */
static int listening_socket(unsigned short *port)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static bool fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

START_TEST(test_listen_fd_serves)
{
    unsigned short port;
    int fd = listening_socket(&port), other;
    vg_app *app = vg_app_new(NULL);

    ck_assert_ptr_nonnull(app);
    ck_assert_int_eq(vg_app_set_logger(app, NULL, NULL, VG_LOG_ERROR), 0);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    ck_assert_int_eq(vg_app_set_listen_fd(app, fd), 0);
    /* One socket per app. */
    other = listening_socket(&(unsigned short){0});
    ck_assert_int_eq(vg_app_set_listen_fd(app, other), -EINVAL);
    close(other);
    /* The app made it non-blocking: libmicrohttpd's threads share it. */
    ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
    ck_assert_int_eq(vg_app_start(app), 0);
    ck_assert_uint_eq(vg_app_port(app), port);
    ck_assert_int_eq(vg_app_set_listen_fd(app, fd), -EBUSY);
    assert_hello(port);
    assert_hello(port);
    vg_app_free(app);
    /* Owned by the app, so closed by it. */
    ck_assert(!fd_is_open(fd));
}
END_TEST

START_TEST(test_listen_fd_rejects)
{
    vg_app *app = vg_app_new(NULL);
    unsigned short port;
    int p[2], udp, unbound, closed, fd;

    ck_assert_ptr_nonnull(app);
    ck_assert_int_eq(vg_app_set_logger(app, NULL, NULL, VG_LOG_ERROR), 0);
    ck_assert_int_eq(vg_app_set_listen_fd(NULL, 3), -EINVAL);
    ck_assert_int_eq(vg_app_set_listen_fd(app, -1), -EINVAL);
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(vg_app_set_listen_fd(app, p[0]), -ENOTSOCK);
    udp = socket(AF_INET, SOCK_DGRAM, 0);
    ck_assert_int_eq(vg_app_set_listen_fd(app, udp), -EINVAL);
    unbound = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(vg_app_set_listen_fd(app, unbound), -EINVAL);
    closed = socket(AF_INET, SOCK_STREAM, 0);
    close(closed);
    ck_assert_int_eq(vg_app_set_listen_fd(app, closed), -EBADF);
    /* A refused descriptor stays the caller's. */
    ck_assert(fd_is_open(p[0]) && fd_is_open(udp) && fd_is_open(unbound));
    close(p[0]);
    close(p[1]);
    close(udp);
    close(unbound);
    /* No address and no socket: nothing to serve on. */
    ck_assert_int_eq(vg_app_start(app), -EDESTADDRREQ);
    vg_app_free(app);

    /* An app freed without ever starting still closes what it owns. */
    app = vg_app_new(NULL);
    ck_assert_ptr_nonnull(app);
    fd = listening_socket(&port);
    ck_assert_int_eq(vg_app_set_listen_fd(app, fd), 0);
    vg_app_free(app);
    ck_assert(!fd_is_open(fd));
}
END_TEST

typedef struct {
    atomic_int hits;
} hit_counter;

static vg_result *count_hit(vg_request *req, void *arg)
{
    hit_counter *c = arg;

    (void)req;
    atomic_fetch_add(&c->hits, 1);
    return vg_text("hello");
}

START_TEST(test_reuse_port_shares)
{
    hit_counter ca = {0}, cb = {0};
    vg_app *a = tu_app_new(), *b, *c;
    char addr[64];
    int i;

    ck_assert_int_eq(vg_app_set_reuse_port(a, true), 0);
    ck_assert_int_eq(vg_map_get(a, "/hello", count_hit, &ca), 0);
    tu_start(a);
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)vg_app_port(a));

    b = vg_app_new(addr);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(vg_app_set_logger(b, NULL, NULL, VG_LOG_ERROR), 0);
    ck_assert_int_eq(vg_app_set_reuse_port(b, true), 0);
    ck_assert_int_eq(vg_map_get(b, "/hello", count_hit, &cb), 0);
    ck_assert_int_eq(vg_app_start(b), 0);
    ck_assert_uint_eq(vg_app_port(b), vg_app_port(a));

    /* Without the option the port is taken, as before. */
    c = vg_app_new(addr);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(vg_app_set_logger(c, NULL, NULL, VG_LOG_ERROR), 0);
    ck_assert_int_eq(vg_app_start(c), -EADDRINUSE);
    vg_app_free(c);

    /* The kernel spreads connections by their addresses' hash: 64 fresh
     * connections all landing on one app has odds of 2^-63. */
    for (i = 0; i < 64; i++)
        assert_hello(vg_app_port(a));
    ck_assert_int_eq(atomic_load(&ca.hits) + atomic_load(&cb.hits), 64);
    ck_assert_int_gt(atomic_load(&ca.hits), 0);
    ck_assert_int_gt(atomic_load(&cb.hits), 0);
    vg_app_free(b);
    vg_app_free(a);
}
END_TEST

/* What vg_systemd_listen_fd answers in a child whose descriptor 3 is a
 * listening socket, for the given LISTEN_PID and LISTEN_FDS values (NULL:
 * unset; "self": the child's pid). The child exits with the answer + 10. */
static int systemd_answer(const char *pid, const char *fds, bool listening)
{
    pid_t child;
    int status;

    child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        char self[32];
        unsigned short port;
        int s = listening ? listening_socket(&port)
                          : socket(AF_INET, SOCK_STREAM, 0);
        int rc;

        if (s < 0 || dup2(s, 3) != 3)
            _exit(1);
        snprintf(self, sizeof self, "%ld", (long)getpid());
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        if (pid != NULL)
            setenv("LISTEN_PID", strcmp(pid, "self") == 0 ? self : pid, 1);
        if (fds != NULL)
            setenv("LISTEN_FDS", fds, 1);
        rc = vg_systemd_listen_fd();
        _exit(rc == 3 ? 13 : rc == -ENOENT ? 2 : 3);
    }
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

START_TEST(test_systemd_listen_fd)
{
    ck_assert_int_eq(systemd_answer("self", "1", true), 13);
    ck_assert_int_eq(systemd_answer("self", "2", true), 13);
    /* Meant for another process (the parent before exec, say). */
    ck_assert_int_eq(systemd_answer("1", "1", true), 2);
    ck_assert_int_eq(systemd_answer(NULL, "1", true), 2);
    ck_assert_int_eq(systemd_answer("self", NULL, true), 2);
    ck_assert_int_eq(systemd_answer("self", "0", true), 2);
    ck_assert_int_eq(systemd_answer("self", "x", true), 2);
    ck_assert_int_eq(systemd_answer("self x", "1", true), 2);
    /* Descriptor 3 is a socket but not a listening one. */
    ck_assert_int_eq(systemd_answer("self", "1", false), 2);
}
END_TEST

static Suite *app_suite(void)
{
    Suite *s = suite_create("app");
    TCase *tc;

    tc = tcase_create("address");
    tcase_add_test(tc, test_new_accepts_addresses);
    tcase_add_test(tc, test_new_rejects_addresses);
    tcase_add_test(tc, test_localhost_serves_on_127_0_0_1);
    tcase_add_test(tc, test_ipv6_loopback_serves);
    tcase_add_test(tc, test_binds_exactly_the_host);
    tcase_add_test(tc, test_port_in_use);
    tcase_add_test(tc, test_listen_fd_serves);
    tcase_add_test(tc, test_listen_fd_rejects);
    tcase_add_test(tc, test_reuse_port_shares);
    tcase_add_test(tc, test_systemd_listen_fd);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);

    tc = tcase_create("config");
    tcase_add_test(tc, test_settings);
    tcase_add_test(tc, test_batch_scheduling);
    tcase_add_test(tc, test_map_errors);
    tcase_add_test(tc, test_logger_gets_errors);
    tcase_add_test(tc, test_logger_lifecycle_info);
    tcase_add_test(tc, test_logger_null_discards);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifecycle");
    tcase_add_test(tc, test_start_stop_loop);
    tcase_add_test(tc, test_null_and_unstarted_noops);
    tcase_add_test(tc, test_run_returns_after_stop);
    tcase_add_loop_test(tc, test_run_returns_on_signal, 0,
                        (int)(sizeof run_signals / sizeof run_signals[0]));
    tcase_add_test(tc, test_graceful_stop_inflight);
    tcase_add_test(tc, test_free_cancels_inflight);
    tcase_add_test(tc, test_stats);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return EXIT_FAILURE;
    sr = srunner_create(app_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
