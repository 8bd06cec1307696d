/*
 * fuzz_http.c - libFuzzer target for whole HTTP requests against a real app.
 *
 * LLVMFuzzerInitialize starts one vg_app on 127.0.0.1:0 with a silent
 * logger at VG_LOG_DEBUG (so that the access log and libmicrohttpd's
 * messages are formatted, then dropped) and routes that reach most of the
 * library: an inline route, parameters and {*rest}, JSON in and out, query
 * and header echo into response headers, a status taken from the query,
 * NULL results, streams and Server-Sent Events, a deferred request finished
 * from another thread, and a route whose deadline fires.
 *
 * Each input is written as is to a fresh loopback connection, which is then
 * half-closed (shutdown(SHUT_WR)), and whatever comes back is read until
 * the server closes. A half-close means "client gone" to libvolga, so a
 * request that reaches a worker races the disconnect watcher and is usually
 * cancelled: that race is part of what is fuzzed. When this first pass got
 * no answer although the input holds a whole request head, a second pass
 * sends the input again and half-closes only once an answer starts (or
 * after ANSWER_MS), so that handlers' results and streams are reached too.
 *
 * The server must close within HANG_MS (2 s) of the start of a pass: the
 * idle timeout is set far above that, so a connection still open then is
 * one the library lost (suspended forever, say) and the input is reported
 * as a crash. Memory errors, undefined behaviour and leaks anywhere in the
 * library are caught by the sanitizers as usual.
 *
 * Environment: FUZZ_HTTP_HANG_MS and FUZZ_HTTP_ANSWER_MS override those two
 * limits; FUZZ_HTTP_VERBOSE=1 prints the first line of every answer.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, strndup; lib/ is built with it too */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <volga.h>

#define DEFAULT_HANG_MS 2000
#define DEFAULT_ANSWER_MS 20

static vg_app *app;
static unsigned short port;
static int hang_ms = DEFAULT_HANG_MS;
static int answer_ms = DEFAULT_ANSWER_MS;
static bool verbose; /* FUZZ_HTTP_VERBOSE=1: print each answer's first line */

/* Status lines seen, by class, reported at exit: a quick way to see how
 * much of the app the run reached. */
static unsigned long seen[6]; /* [0]: no status line; [1..5]: 1xx..5xx */
static unsigned long runs;

static void quiet(vg_log_level level, const char *msg, void *arg)
{
    (void)level;
    (void)msg;
    (void)arg;
}

/* ---- Handlers ---- */

static vg_result *h_root(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_text("hello\n");
}

static vg_result *h_user(vg_request *req, void *arg)
{
    const char *q = vg_request_query(req, "q");
    const char *ua = vg_request_header(req, "User-Agent");

    (void)arg;
    /* Values from the request go into response headers: one with CR or LF
     * must make the result NULL (a 500), never a split response. */
    return vg_result_set_header(
        vg_textf("user %s q=%s ua=%s\n", vg_request_param(req, "id"),
                 q ? q : "-", ua ? ua : "-"),
        "X-Echo", q ? q : "");
}

static vg_result *h_user_delete(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_status(204);
}

static vg_result *h_options(vg_request *req, void *arg)
{
    (void)arg;
    return vg_result_set_header(vg_status(204), "Allow",
                                vg_request_header(req, "X-Allow")
                                    ? vg_request_header(req, "X-Allow")
                                    : "GET, OPTIONS");
}

static vg_result *h_files(vg_request *req, void *arg)
{
    size_t len;

    (void)arg;
    vg_request_body(req, &len);
    return vg_textf("%s: %s (%zu bytes)\n", vg_request_param(req, "id"),
                    vg_request_param(req, "rest"), len);
}

static vg_result *h_static(vg_request *req, void *arg)
{
    (void)arg;
    return vg_result_set_header(vg_text(vg_request_param(req, "path")),
                                "Content-Type", "application/octet-stream");
}

static vg_result *h_json(vg_request *req, void *arg)
{
    json_t *in = vg_request_json(req);

    (void)arg;
    if (in == NULL)
        return vg_result_set_status(vg_text("bad json\n"), 400);
    return vg_json(json_pack("{s:O, s:s?}", "got", in, "q",
                             vg_request_query(req, "q")));
}

static vg_result *h_echo(vg_request *req, void *arg)
{
    size_t len;
    const char *body = vg_request_body(req, &len);

    (void)arg;
    return vg_textf("%zu %s", len, body);
}

static vg_result *h_status(vg_request *req, void *arg)
{
    const char *code = vg_request_query(req, "code");

    (void)arg;
    /* Any number: out of 100-999 gives NULL, a 500. */
    return vg_result_set_status(vg_text("status\n"),
                                code ? (unsigned)strtoul(code, NULL, 10) : 200);
}

static vg_result *h_null(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return NULL;
}

static vg_result *h_stream(vg_request *req, void *arg)
{
    vg_stream *s;
    vg_result *res = vg_stream_new(req, "text/plain", &s);
    const char *n = vg_request_query(req, "n");
    unsigned long count = n ? strtoul(n, NULL, 10) % 64 : 3;

    (void)arg;
    if (res == NULL)
        return NULL;
    for (unsigned long i = 0; i < count; i++)
        if (vg_stream_printf(s, "line %lu\n", i) != 0)
            break;
    vg_stream_end(s);
    return res;
}

static vg_result *h_sse(vg_request *req, void *arg)
{
    vg_stream *s;
    vg_result *res = vg_sse_new(req, &s);
    size_t len;
    const char *body = vg_request_body(req, &len);

    (void)arg;
    if (res == NULL)
        return NULL;
    /* Event name and id from the query: line breaks must be refused. */
    vg_sse_retry(s, 1000);
    vg_sse_comment(s, vg_request_query(req, "c") ? vg_request_query(req, "c")
                                                 : "hi");
    vg_sse_event(s, vg_request_query(req, "event"), body,
                 vg_request_query(req, "id"));
    vg_stream_end(s);
    return res;
}

static void *finisher(void *arg)
{
    vg_request *req = arg;
    /* The request may already be over (client gone): -ECANCELED. */
    vg_request_finish(req, vg_text("deferred\n"));
    return NULL;
}

static vg_result *h_defer(vg_request *req, void *arg)
{
    pthread_t t;
    pthread_attr_t attr;
    vg_result *d = vg_defer(req);

    (void)arg;
    if (d == NULL)
        return NULL;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, finisher, req) != 0)
        vg_request_finish(req, vg_status(503));
    pthread_attr_destroy(&attr);
    return d;
}

static vg_result *h_wait(vg_request *req, void *arg)
{
    (void)arg;
    /* Waits for the route's 5 ms deadline (504) or the client leaving. */
    vg_token_wait(vg_request_token(req), 1000);
    return vg_text("too late\n");
}

static void must(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "fuzz_http: %s: %s\n", what, strerror(-rc));
        abort();
    }
}

static void report(void)
{
    fprintf(stderr,
            "fuzz_http: %lu connections; status lines: none %lu, 1xx %lu, "
            "2xx %lu, 3xx %lu, 4xx %lu, 5xx %lu\n",
            runs, seen[0], seen[1], seen[2], seen[3], seen[4], seen[5]);
    vg_app_free(app); /* shutdown is part of the test too */
    app = NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *env = getenv("FUZZ_HTTP_HANG_MS");

    (void)argc;
    (void)argv;
    if (env != NULL && atoi(env) > 0)
        hang_ms = atoi(env);
    env = getenv("FUZZ_HTTP_ANSWER_MS");
    if (env != NULL && atoi(env) >= 0)
        answer_ms = atoi(env);
    env = getenv("FUZZ_HTTP_VERBOSE");
    verbose = env != NULL && atoi(env) > 0;
    app = vg_app_new("127.0.0.1:0");
    if (app == NULL) {
        perror("fuzz_http: vg_app_new");
        abort();
    }
    must(vg_app_set_logger(app, quiet, NULL, VG_LOG_DEBUG), "logger");
    must(vg_app_set_workers(app, 4), "workers");
    must(vg_app_set_queue_limit(app, 64), "queue limit");
    must(vg_app_set_body_limit(app, 16 * 1024), "body limit");
    must(vg_app_set_header_limit(app, 8 * 1024), "header limit");
    /* Far above the hang limit: only a lost connection stays that long. */
    must(vg_app_set_idle_timeout(app, 30), "idle timeout");
    must(vg_app_set_request_timeout(app, 1000), "request timeout");
    must(vg_app_set_shutdown_grace(app, 200), "shutdown grace");
    must(vg_app_set_max_connections(app, 256), "max connections");

    must(vg_map_get(app, "/", h_root, NULL), "map /");
    must(vg_map_inline(app, "GET", "/", true), "inline /");
    must(vg_map_get(app, "/users/{id}", h_user, NULL), "map user");
    must(vg_map_delete(app, "/users/{id}", h_user_delete, NULL), "map delete");
    must(vg_map(app, "OPTIONS", "/users/{id}", h_options, NULL), "map options");
    must(vg_map_put(app, "/users/{id}/files/{*rest}", h_files, NULL),
         "map files");
    must(vg_map_get(app, "/static/{*path}", h_static, NULL), "map static");
    must(vg_map_post(app, "/json", h_json, NULL), "map json");
    must(vg_map_patch(app, "/json/{id}", h_json, NULL), "map json id");
    must(vg_map_post(app, "/echo", h_echo, NULL), "map echo");
    must(vg_map_inline(app, "POST", "/echo", true), "inline echo");
    must(vg_map_get(app, "/status", h_status, NULL), "map status");
    must(vg_map_get(app, "/null", h_null, NULL), "map null");
    must(vg_map_get(app, "/stream", h_stream, NULL), "map stream");
    must(vg_map_post(app, "/sse", h_sse, NULL), "map sse");
    must(vg_map_get(app, "/defer", h_defer, NULL), "map defer");
    must(vg_map_get(app, "/wait", h_wait, NULL), "map wait");
    must(vg_map_timeout(app, "GET", "/wait", 5), "timeout wait");
    must(vg_app_start(app), "start");
    port = vg_app_port(app);
    atexit(report);
    return 0;
}

/* ---- The client ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int dial(void)
{
    struct sockaddr_in sa;
    int tries = 0;

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            perror("fuzz_http: socket");
            abort();
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
            return fd;
        }
        int err = errno;
        close(fd);
        /* Out of ports or a full backlog is the machine's problem, not a
         * finding: retry for a while before giving up loudly. */
        if (++tries == 200) {
            fprintf(stderr, "fuzz_http: connect: %s\n", strerror(err));
            abort();
        }
        usleep(10000);
    }
}

static void count_status(const char *buf, size_t len)
{
    /* "HTTP/1.x NNN" */
    if (len >= 12 && memcmp(buf, "HTTP/1.", 7) == 0 && buf[9] >= '1' &&
        buf[9] <= '5')
        seen[buf[9] - '0']++;
    else
        seen[0]++;
}

/* One exchange on a fresh connection: sends the input, half-closes (at
 * once, or once the first bytes of an answer arrived or `answer_ms`
 * passed), and reads until the server closes. Aborts if that takes more
 * than hang_ms. Returns the bytes received; the first ones in `head`. */
static size_t exchange(const uint8_t *data, size_t size, int answer_ms,
                       char *head, size_t head_size)
{
    char buf[16384];
    size_t sent = 0, got = 0;
    bool wr_open = true, sent_all = false;
    int fd = dial();
    double start = now_ms(), deadline = start + hang_ms, answer_by = 0;

    for (;;) {
        double t = now_ms();
        if (sent_all && wr_open && (got > 0 || t >= answer_by)) {
            shutdown(fd, SHUT_WR);
            wr_open = false;
        }
        if (t >= deadline) {
            fprintf(stderr,
                    "fuzz_http: HANG: the server neither answered nor closed "
                    "within %d ms (%zu of %zu bytes sent, %zu received, "
                    "half-closed: %s)\n",
                    hang_ms, sent, size, got, wr_open ? "no" : "yes");
            abort();
        }
        double until = sent_all && wr_open ? answer_by : deadline;
        short events = POLLIN | (wr_open && !sent_all ? POLLOUT : 0);
        struct pollfd pfd = {fd, events, 0};
        int n = poll(&pfd, 1, (int)(until - t) + 1);
        if (n <= 0)
            continue; /* EINTR, or a time limit: checked above */
        if (wr_open && !sent_all && (pfd.revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = size > sent ? send(fd, data + sent, size - sent,
                                           MSG_NOSIGNAL)
                                    : 0;
            if (w > 0)
                sent += (size_t)w;
            /* A server that answered early and closed (413, 431) stops
             * reading: what is left is simply not sent. */
            if (sent == size || (w < 0 && errno != EAGAIN && errno != EINTR)) {
                sent_all = true;
                answer_by = now_ms() + answer_ms;
            }
        }
        if (pfd.revents & (POLLIN | POLLERR | POLLHUP)) {
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r > 0) {
                if (got < head_size)
                    memcpy(head + got, buf,
                           (size_t)r < head_size - got ? (size_t)r
                                                       : head_size - got);
                got += (size_t)r;
                continue;
            }
            if (r == 0 || (errno != EAGAIN && errno != EINTR))
                break; /* closed or reset: done */
        }
    }
    close(fd);
    return got;
}

static void note(const char *pass, size_t size, const char *head, size_t got,
                 size_t head_size)
{
    size_t n = got < head_size ? got : head_size, eol = 0;

    count_status(head, n);
    if (!verbose)
        return;
    while (eol < n && head[eol] != '\r' && head[eol] != '\n')
        eol++;
    fprintf(stderr, "fuzz_http: %s: %zu bytes sent, %zu received: %.*s\n",
            pass, size, got, (int)eol, head);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char head[128];
    size_t got;

    /* Pass 1: half-close right after the input. To libvolga that is the
     * client leaving, so a request that reaches a worker races the
     * disconnect watcher; only inline answers (404, 405, 400, 413, 431,
     * inline routes) are sure to come back. */
    runs++;
    got = exchange(data, size, 0, head, sizeof head);
    note("at once", size, head, got, sizeof head);

    /* Pass 2, when pass 1 got nothing back but the input holds a whole
     * request head: the same bytes, half-closing only once an answer
     * starts (or answer_ms passed), so that the handlers' answers, the
     * results and streams are exercised too. */
    if (got == 0 && (memmem(data, size, "\r\n\r\n", 4) != NULL ||
                     memmem(data, size, "\n\n", 2) != NULL)) {
        runs++;
        got = exchange(data, size, answer_ms, head, sizeof head);
        note("answered", size, head, got, sizeof head);
    }
    return 0;
}
