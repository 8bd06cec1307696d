/*
 * test_proxy.c - libvolga behind a reverse proxy: a real nginx (the Debian
 * package, started by the test on loopback with a configuration of its own)
 * in front of two in-process apps, balanced round-robin.
 *
 * What it proves: nginx, with proxy_ignore_client_abort off (its default),
 * closes its connection to the backend when its own client goes away before
 * the answer; libvolga's watcher sees that close like any other client
 * leaving, so the backend handler's token is cancelled with
 * VG_CANCEL_CLIENT_GONE and the job stops, whichever of the two backends
 * got the request, and whether the client left nginx with a FIN or a RST.
 * Requests that complete through nginx get their answer and cancel nothing.
 *
 * nginx runs as one process (master_process off), in the foreground, with
 * every file it writes (pid, logs, temporary bodies) inside a mkdtemp
 * directory, so it needs no root and does not meet a system nginx that the
 * Debian package may have started on port 80. It dies with the test process
 * (tu_spawn's death signal) if a test fails or times out. The test program
 * exits 77 (automake's SKIP) when /usr/sbin/nginx is absent.
 *
 * Nothing sleeps to synchronise: handlers and the test meet through
 * tu_latch, nginx's start and exit are waited for on its pid file and a
 * pidfd, and every wait has a bound of seconds that only catches hangs.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include <volga.h>
#include "testutil.h"

#define NGINX "/usr/sbin/nginx"
/* The longest a /long-task handler waits for its token before giving up,
 * so a proxy or library that never cancels fails an assertion instead of
 * hanging. */
#define HANDLER_MS 20000
/* How long the test waits for something that should take milliseconds. */
#define HANG_MS 10000

#define LONG_REQUEST "GET /long-task HTTP/1.1\r\nHost: volga\r\n\r\n"

/* One backend app and what its /long-task handlers saw. */
typedef struct {
    int id;
    vg_app *app;
    tu_latch *started;       /* shared by both: a /long-task handler started */
    atomic_int calls;        /* /long-task handlers started here */
    tu_latch finished;       /* /long-task handlers that are returning */
    /* Written by the last handler before `finished`, read after it. */
    bool woke;               /* its wait ended because of cancellation */
    vg_cancel_reason reason; /* its token's reason then */
    double woke_ms;
} backend;

/* The state of the running test, shared with its fixture. */
static struct {
    backend be[2];
    tu_latch started;
    char dir[320];         /* nginx's prefix: conf, pid, logs, temp files */
    pid_t nginx;
    unsigned short port;  /* where nginx listens */
    bool passed;          /* the test body reached its end */
} fx;

/* Waits on its token like a long job polling for cancellation; answers
 * only if the wait ran out, which no test here expects. */
static vg_result *h_long(vg_request *req, void *arg)
{
    backend *b = arg;
    vg_token *tok = vg_request_token(req);
    bool woke;

    atomic_fetch_add(&b->calls, 1);
    tu_latch_add(b->started, 1);
    woke = vg_token_wait(tok, HANDLER_MS);
    b->woke = woke;
    b->woke_ms = tu_now_ms();
    b->reason = vg_token_reason(tok);
    tu_latch_add(&b->finished, 1);
    return woke ? NULL : vg_textf("backend %d: nobody cancelled\n", b->id);
}

/* Says which backend answered, so that round-robin can be seen. */
static vg_result *h_who(vg_request *req, void *arg)
{
    backend *b = arg;

    (void)req;
    return vg_textf("backend %d\n", b->id);
}

/* ------------------------------------------------------------------------
 * nginx
 */

/* A loopback port that was free a moment ago. Another process may take it
 * before nginx binds it; nginx then never writes its pid file and exits,
 * and start_nginx tries again with another port. */
static unsigned short free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void write_conf(unsigned short port)
{
    char path[400];
    const char *d = fx.dir;
    FILE *f;

    snprintf(path, sizeof path, "%s/nginx.conf", d);
    f = fopen(path, "w");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    /* One foreground process: no daemon to lose track of, no workers that
     * switch to another user when run as root. */
    fprintf(f,
            "daemon off;\n"
            "master_process off;\n"
            "pid %s/nginx.pid;\n"
            "error_log %s/error.log info;\n"
            "events { worker_connections 64; }\n"
            "http {\n"
            "    access_log %s/access.log;\n"
            /* Every temporary path inside our directory: the compiled-in
             * ones are under /var/lib/nginx. */
            "    client_body_temp_path %s/client_body;\n"
            "    proxy_temp_path %s/proxy;\n"
            "    fastcgi_temp_path %s/fastcgi;\n"
            "    uwsgi_temp_path %s/uwsgi;\n"
            "    scgi_temp_path %s/scgi;\n"
            "    upstream volga {\n"
            "        server 127.0.0.1:%u;\n"
            "        server 127.0.0.1:%u;\n"
            "    }\n"
            "    server {\n"
            "        listen 127.0.0.1:%u;\n"
            "        location / {\n"
            "            proxy_pass http://volga;\n"
            "            proxy_http_version 1.1;\n"
            /* The default, spelled out because it is what is tested: a
             * client abort closes the upstream connection. */
            "            proxy_ignore_client_abort off;\n"
            "        }\n"
            "    }\n"
            "}\n",
            d, d, d, d, d, d, d, d, (unsigned)vg_app_port(fx.be[0].app),
            (unsigned)vg_app_port(fx.be[1].app), (unsigned)port);
    ck_assert_int_eq(fclose(f), 0);
}

/* The pid in nginx's pid file, or 0. nginx writes it after it has bound
 * its listening socket, so it says "listening" where a successful connect
 * alone could be some other program that took the port. */
static pid_t read_pid_file(void)
{
    char path[400];
    long pid = 0;
    FILE *f;

    snprintf(path, sizeof path, "%s/nginx.pid", fx.dir);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return (pid_t)pid;
}

/* Prints the end of file `name` in directory `dir`, for a failing test. */
static void dump_file(const char *dir, const char *name)
{
    char path[400], buf[4096];
    FILE *f;
    size_t n;
    long size;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "r");
    if (f == NULL)
        return;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, size > (long)sizeof buf - 1 ? size - (long)sizeof buf + 1 : 0,
          SEEK_SET);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    fprintf(stderr, "test_proxy: ---- end of %s\n%s\n", path, buf);
}

/* Starts nginx on a fresh port and waits until it listens. Returns true,
 * or false if nginx exited first (its port was taken: try again). */
static bool try_start_nginx(void)
{
    char conf[400], prefix[400], elog[400], out[400];
    char *argv[] = {(char *)NGINX, (char *)"-p", prefix, (char *)"-c", conf,
                    (char *)"-e", elog, NULL};
    double deadline = tu_now_ms() + HANG_MS;
    int out_fd, status, ino;
    bool exiting = false;

    fx.port = free_port();
    write_conf(fx.port);
    snprintf(prefix, sizeof prefix, "%s/", fx.dir);
    snprintf(conf, sizeof conf, "%s/nginx.conf", fx.dir);
    /* -e: the log nginx writes before it has read the configuration (the
     * compiled-in one may be unwritable). */
    snprintf(elog, sizeof elog, "%s/error.log", fx.dir);
    snprintf(out, sizeof out, "%s/stderr.log", fx.dir);
    out_fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ck_assert_int_ge(out_fd, 0);
    fx.nginx = tu_spawn(argv, -1, out_fd, out_fd);
    close(out_fd);
    ck_assert_msg(fx.nginx > 0, "cannot start %s: %s", NGINX, strerror(errno));

    /* nginx says it listens by writing its pid file; it reports failure by
     * exiting, which closes its stderr.log. Both are a close-after-write in
     * its directory: wait for those instead of looking at intervals. */
    ino = inotify_init1(IN_CLOEXEC);
    ck_assert_int_ge(ino, 0);
    ck_assert_int_ge(inotify_add_watch(ino, fx.dir, IN_CLOSE_WRITE | IN_MOVED_TO), 0);
    for (;;) {
        struct pollfd pfd = {ino, POLLIN, 0};
        char events[4096] __attribute__((aligned(8)));
        int fd;

        if (read_pid_file() == fx.nginx) {
            close(ino);
            fd = tu_try_connect(fx.port);
            ck_assert_msg(fd >= 0, "nginx wrote its pid file but refuses "
                                   "connections on port %u", fx.port);
            close(fd);
            return true;
        }
        /* Its stdout and stderr share one open file, released only when
         * the process ends: once that is closed, the exit is imminent. */
        if (tu_wait_exit(fx.nginx, exiting ? HANG_MS : 0, &status)) {
            close(ino);
            fx.nginx = 0;
            dump_file(fx.dir, "error.log");
            dump_file(fx.dir, "stderr.log");
            fprintf(stderr, "test_proxy: nginx exited (status 0x%x) before "
                            "listening on port %u\n", (unsigned)status,
                    fx.port);
            return false;
        }
        if (poll(&pfd, 1, (int)(deadline - tu_now_ms()) + 1) == 1) {
            ssize_t n = read(ino, events, sizeof events), at = 0;
            ck_assert_msg(n > 0 || errno == EINTR, "inotify read: %s",
                          strerror(errno));
            while (at < n) {
                const struct inotify_event *ev =
                    (const struct inotify_event *)(events + at);
                if (ev->len > 0 && strcmp(ev->name, "stderr.log") == 0)
                    exiting = true;
                at += (ssize_t)(sizeof *ev + ev->len);
            }
        }
        ck_assert_msg(tu_now_ms() < deadline,
                      "nginx did not listen within %d ms", HANG_MS);
    }
}

/* ------------------------------------------------------------------------
 * Fixture
 */

/* Shows the logs of a test's nginx directory that is still there: only a
 * failed test leaves one. */
static int dump_leftover(const char *path, const struct stat *st, int flag,
                         struct FTW *ftw)
{
    (void)st;
    if (flag == FTW_D && ftw->level == 1) {
        fprintf(stderr, "test_proxy: a failed test left %s\n", path);
        dump_file(path, "stderr.log");
        dump_file(path, "error.log");
        dump_file(path, "access.log");
    }
    return 0;
}

/*
 * The suite's directory is made and removed by an unchecked fixture, which
 * runs in Check's parent process: a failed assertion ends a forked test at
 * once, without its teardown, so only the parent can still show that
 * test's nginx logs and remove its files. (Its nginx died with it: see
 * tu_spawn.)
 */
static char suite_dir[256];

static void suite_setup(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(suite_dir, sizeof suite_dir, "%s/volga-proxy-XXXXXX",
             tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
    if (mkdtemp(suite_dir) == NULL) {
        fprintf(stderr, "test_proxy: mkdtemp %s: %s\n", suite_dir,
                strerror(errno));
        suite_dir[0] = '\0';
    }
}

static void suite_teardown(void)
{
    if (suite_dir[0] == '\0')
        return;
    nftw(suite_dir, dump_leftover, 16, FTW_PHYS);
    tu_remove_tree(suite_dir);
}

static void setup(void)
{
    int i, tries;

    memset(&fx, 0, sizeof fx);
    tu_latch_init(&fx.started);
    for (i = 0; i < 2; i++) {
        backend *b = &fx.be[i];

        b->id = i;
        b->started = &fx.started;
        tu_latch_init(&b->finished);
        b->app = tu_app_new();
        ck_assert_int_eq(vg_map_get(b->app, "/long-task", h_long, b), 0);
        ck_assert_int_eq(vg_map_get(b->app, "/who", h_who, b), 0);
        tu_start(b->app);
    }
    ck_assert_msg(suite_dir[0] != '\0', "no directory for nginx");
    snprintf(fx.dir, sizeof fx.dir, "%s/nginx-XXXXXX", suite_dir);
    ck_assert_msg(mkdtemp(fx.dir) != NULL, "mkdtemp %s: %s", fx.dir,
                  strerror(errno));
    for (tries = 0; tries < 2 && !try_start_nginx(); tries++)
        ;
    ck_assert_msg(tries < 2, "nginx did not start (twice); see its logs above");
}

/* Runs after a test that passed, and (CK_FORK=no) after one that failed. */
static void teardown(void)
{
    int i;

    /* nginx first: with it gone no upstream connection remains, so any
     * handler a failed test left waiting is cancelled and the apps free.
     * SIGTERM is nginx's fast shutdown, which does not wait for open
     * connections as SIGQUIT would. */
    if (fx.nginx > 0)
        tu_stop_child(fx.nginx, SIGTERM, HANG_MS);
    fx.nginx = 0;
    for (i = 0; i < 2; i++) {
        vg_app_free(fx.be[i].app);
        fx.be[i].app = NULL;
        tu_latch_destroy(&fx.be[i].finished);
    }
    tu_latch_destroy(&fx.started);
    /* A failed test's directory stays for suite_teardown to show. */
    if (fx.passed && fx.dir[0] != '\0')
        tu_remove_tree(fx.dir);
}

/* ------------------------------------------------------------------------
 * Tests
 */

/* Two plain requests through nginx: each is answered 200 with the body its
 * backend wrote, one by each backend (round-robin), and nginx closing its
 * upstream connection after a complete answer cancels nothing. */
START_TEST(test_requests_pass_through)
{
    bool seen[2] = {false, false};
    vg_stats st;
    int i;

    for (i = 0; i < 2; i++) {
        tu_response r = tu_get(fx.port, "/who");
        int id = -1;

        ck_assert_msg(r.curl_code == 0, "curl error %d through nginx",
                      r.curl_code);
        ck_assert_int_eq(r.status, 200);
        ck_assert_msg(sscanf(r.body, "backend %d", &id) == 1 && id >= 0 &&
                          id < 2,
                      "unexpected body through nginx: \"%s\"", r.body);
        ck_assert_str_eq(r.body, id == 0 ? "backend 0\n" : "backend 1\n");
        seen[id] = true;
        tu_response_free(&r);
    }
    ck_assert_msg(seen[0] && seen[1],
                  "nginx sent both requests to the same backend");
    for (i = 0; i < 2; i++) {
        ck_assert_msg(tu_wait_settled(fx.be[i].app, 1, HANG_MS, &st),
                      "backend %d: requests %llu, in flight %llu", i,
                      st.requests, st.in_flight);
        ck_assert_uint_eq(st.requests, 1);
        ck_assert_uint_eq(st.cancelled_client_gone, 0);
        ck_assert_uint_eq(st.cancelled_timeout, 0);
    }
    fx.passed = true;
}
END_TEST

/*
 * Twice: a client sends GET /long-task to nginx, waits until a backend's
 * handler runs, then leaves (`rst`: with a RST, else a FIN). The handler
 * that got the request must wake from its token wait with
 * VG_CANCEL_CLIENT_GONE and return; no other handler may have run (nginx
 * did not retry elsewhere); across the two requests both backends are
 * used, so the cancellation crosses the proxy to each.
 */
static void run_abort_through_nginx(bool rst)
{
    bool used[2] = {false, false};
    vg_stats st;
    int i;

    for (i = 0; i < 2; i++) {
        int before[2], fd, k;
        backend *b = NULL;
        double left_ms;

        for (k = 0; k < 2; k++)
            before[k] = atomic_load(&fx.be[k].calls);
        fd = tu_connect(fx.port);
        ck_assert(tu_send_all(fd, LONG_REQUEST, strlen(LONG_REQUEST)));
        ck_assert_msg(tu_latch_wait(&fx.started, i + 1, HANG_MS),
                      "request %d: no backend handler started within %d ms",
                      i, HANG_MS);
        for (k = 0; k < 2; k++)
            if (atomic_load(&fx.be[k].calls) > before[k])
                b = &fx.be[k];
        ck_assert_ptr_nonnull(b);

        left_ms = tu_now_ms();
        if (rst)
            tu_close_rst(fd);
        else
            ck_assert_int_eq(close(fd), 0);

        ck_assert_msg(tu_latch_wait(&b->finished, used[b->id] ? 2 : 1, HANG_MS),
                      "request %d: backend %d's handler was not woken within "
                      "%d ms of the client leaving nginx", i, b->id, HANG_MS);
        ck_assert_msg(b->woke, "backend %d: the handler's wait ran out: "
                               "nothing cancelled its token", b->id);
        ck_assert_msg(b->reason == VG_CANCEL_CLIENT_GONE,
                      "backend %d: token cancelled for %s, not client_gone",
                      b->id, vg_cancel_reason_name(b->reason));
        fprintf(stderr, "test_proxy: client %s to nginx: backend %d's token "
                        "cancelled after %.1f ms\n",
                rst ? "RST" : "FIN", b->id, b->woke_ms - left_ms);
        used[b->id] = true;
    }
    ck_assert_msg(used[0] && used[1],
                  "both aborted requests went to the same backend");
    ck_assert_int_eq(atomic_load(&fx.be[0].calls), 1);
    ck_assert_int_eq(atomic_load(&fx.be[1].calls), 1);
    for (i = 0; i < 2; i++) {
        ck_assert_msg(tu_wait_settled(fx.be[i].app, 1, HANG_MS, &st),
                      "backend %d: requests %llu, in flight %llu", i,
                      st.requests, st.in_flight);
        ck_assert_uint_eq(st.requests, 1);
        ck_assert_uint_eq(st.cancelled_client_gone, 1);
        ck_assert_uint_eq(st.cancelled_timeout, 0);
        ck_assert_uint_eq(st.cancelled_shutdown, 0);
    }
    fx.passed = true;
}

START_TEST(test_client_fin_cancels_backend)
{
    run_abort_through_nginx(false);
}
END_TEST

START_TEST(test_client_rst_cancels_backend)
{
    run_abort_through_nginx(true);
}
END_TEST

static Suite *proxy_suite(void)
{
    Suite *s = suite_create("proxy");
    TCase *tc = tcase_create("nginx");

    tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_requests_pass_through);
    tcase_add_test(tc, test_client_fin_cancels_backend);
    tcase_add_test(tc, test_client_rst_cancels_backend);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (access(NGINX, X_OK) != 0) {
        fprintf(stderr, "test_proxy: SKIP: %s is absent (Debian package "
                        "nginx; ./dev.sh check installs it)\n", NGINX);
        return 77;
    }
    return tu_main(proxy_suite());
}
