/* test_hostile.c - hostile input against a real app on 127.0.0.1:0, mostly
 * over raw sockets: garbage, malformed and oversized heads, lying or
 * truncated bodies, chunked abuse, deep JSON, tricky paths and targets,
 * connection floods, clients that never read and a slow trickle.
 *
 * Every case must end in a clear HTTP error or a clean close, never a hang
 * (each exchange must finish well inside the sockets' 10 s timeouts) or a
 * crash, and afterwards the server must still answer GET /hello with 200.
 * Handlers count their calls so that a case can assert that no handler ever
 * saw a request it should not have; those counts are checked after
 * vg_app_free, when every handler that was ever going to run has returned.
 *
 * Set HOSTILE_VERBOSE=1 to print what the server answered to each case. */
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
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <volga.h>
#include "testutil.h"

/* An exchange that takes this long was waiting on a socket timeout, not on
 * the server: count it as a hang. */
#define HANG_MS 9000.0

/* ---- The app under attack ---- */

typedef struct {
    vg_app *app;
    unsigned short port;
    atomic_int hello_calls;
    atomic_int echo_calls;
    atomic_int json_calls;
    atomic_int files_calls;
    atomic_int big_calls;
    atomic_size_t echo_last_len; /* body length the last /echo call saw */
} server;

static vg_result *hello(vg_request *req, void *arg)
{
    server *s = arg;

    (void)req;
    atomic_fetch_add(&s->hello_calls, 1);
    return vg_text("hello");
}

static vg_result *echo(vg_request *req, void *arg)
{
    server *s = arg;
    size_t len;

    vg_request_body(req, &len);
    atomic_store(&s->echo_last_len, len);
    atomic_fetch_add(&s->echo_calls, 1);
    return vg_textf("%zu", len);
}

static vg_result *json(vg_request *req, void *arg)
{
    server *s = arg;
    json_t *j = vg_request_json(req);

    atomic_fetch_add(&s->json_calls, 1);
    if (j == NULL)
        return vg_result_set_status(vg_text("invalid json\n"), 400);
    if (json_is_string(j))
        return vg_textf("string %zu", json_string_length(j));
    return vg_text("other");
}

static vg_result *files(vg_request *req, void *arg)
{
    server *s = arg;

    atomic_fetch_add(&s->files_calls, 1);
    return vg_text(vg_request_param(req, "rest"));
}

/* 512 KiB: fifty of them are more than the socket buffers of a client
 * that never reads can take, however far the kernel grows them. */
#define BIG_LEN (512 * 1024)

static vg_result *big(vg_request *req, void *arg)
{
    server *s = arg;
    char *body = malloc(BIG_LEN + 1);
    vg_result *res;

    (void)req;
    atomic_fetch_add(&s->big_calls, 1);
    if (body == NULL)
        return NULL;
    memset(body, 'b', BIG_LEN);
    body[BIG_LEN] = '\0';
    res = vg_text(body);
    free(body);
    return res;
}

/* Starts the app with every route; 0 keeps a setting's default. */
static void server_start_with(server *s, size_t body_limit,
                              unsigned max_connections, unsigned idle_s)
{
    memset(s, 0, sizeof *s);
    s->app = tu_app_new();
    if (idle_s != 0)
        ck_assert_int_eq(vg_app_set_idle_timeout(s->app, idle_s), 0);
    if (body_limit != 0)
        ck_assert_int_eq(vg_app_set_body_limit(s->app, body_limit), 0);
    if (max_connections != 0)
        ck_assert_int_eq(vg_app_set_max_connections(s->app, max_connections),
                         0);
    ck_assert_int_eq(vg_map_get(s->app, "/hello", hello, s), 0);
    ck_assert_int_eq(vg_map_post(s->app, "/echo", echo, s), 0);
    ck_assert_int_eq(vg_map_post(s->app, "/json", json, s), 0);
    ck_assert_int_eq(vg_map_get(s->app, "/files/{*rest}", files, s), 0);
    ck_assert_int_eq(vg_map_get(s->app, "/big", big, s), 0);
    tu_start(s->app);
    s->port = vg_app_port(s->app);
}

static void server_start(server *s, size_t body_limit)
{
    server_start_with(s, body_limit, 0, 0);
}

static void server_start_limited(server *s, unsigned max_connections)
{
    server_start_with(s, 0, max_connections, 0);
}

/* Like server_start, with an idle timeout in seconds. */
static void server_start_idle(server *s, unsigned idle_s)
{
    server_start_with(s, 0, 0, idle_s);
}

/* Frees the app and fails if that is not prompt: nothing hostile may leave
 * work behind that delays shutdown. */
static void server_free(server *s)
{
    double t0 = tu_now_ms(), elapsed;

    vg_app_free(s->app);
    s->app = NULL;
    elapsed = tu_now_ms() - t0;
    if (getenv("HOSTILE_VERBOSE") != NULL)
        fprintf(stderr, "hostile: vg_app_free took %.0f ms\n", elapsed);
    ck_assert_msg(elapsed < 5000, "vg_app_free took %.0f ms", elapsed);
}

/* The server still serves a normal request. */
static void still_alive(unsigned short port)
{
    tu_response r = tu_get(port, "/hello");

    ck_assert_msg(r.status == 200, "GET /hello after the case: status %ld, curl %d",
                  r.status, r.curl_code);
    ck_assert_str_eq(r.body, "hello");
    tu_response_free(&r);
}

/* ---- Raw exchanges ---- */

static bool verbose(void)
{
    return getenv("HOSTILE_VERBOSE") != NULL;
}

/* What the server did with one hostile request. */
typedef struct {
    int status;       /* of the first response; 0: none */
    bool closed;      /* the server closed or reset the connection */
    bool hung;        /* neither an answer nor a close: a socket timeout */
    double ms;        /* how long the exchange took */
    size_t len;
    char text[16384]; /* what arrived, NUL-terminated */
} reply;

/* True once `r` holds a whole response (Content-Length framing; a response
 * without one is whole once its head is). */
static bool reply_complete(const reply *r)
{
    const char *hend = strstr(r->text, "\r\n\r\n"), *cl;

    if (hend == NULL)
        return false;
    cl = strcasestr(r->text, "\r\nContent-Length:");
    if (cl == NULL || cl > hend)
        return true;
    return r->len >= (size_t)(hend + 4 - r->text) + strtoul(cl + 17, NULL, 10);
}

/* Reads until one whole response has arrived, the server closes (a reset
 * counts as a close) or the socket times out (a hang). */
static void read_reply(int fd, reply *r)
{
    memset(r, 0, sizeof *r);
    while (r->len + 1 < sizeof r->text) {
        ssize_t n = recv(fd, r->text + r->len, sizeof r->text - 1 - r->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            r->hung = true;
            break;
        }
        if (n <= 0) {
            r->closed = true;
            break;
        }
        r->len += (size_t)n;
        r->text[r->len] = '\0';
        if (reply_complete(r))
            break;
    }
    if (strncmp(r->text, "HTTP/1.", 7) == 0 && r->len >= 12)
        r->status = atoi(r->text + 9);
}

/* Sends `len` bytes on a new connection (the server may refuse them half
 * way, so a failed send is not an error) and reads the answer. The client
 * keeps its side open: every case here must be answered or closed by the
 * server on its own. */
static void exchange(unsigned short port, const char *data, size_t len,
                     reply *r)
{
    double t0 = tu_now_ms();
    int fd = tu_connect(port);

    tu_send_all(fd, data, len);
    read_reply(fd, r);
    r->ms = tu_now_ms() - t0;
    close(fd);
}

static void note(const char *what, const reply *r)
{
    if (verbose())
        fprintf(stderr, "hostile: %-44s -> %d%s (%.1f ms)\n", what, r->status,
                r->status == 0 ? (r->closed ? " closed" : " nothing") : "",
                r->ms);
}

/* Whether `status` is one of the 0-terminated list that follows. */
static bool one_of(int status, ...)
{
    va_list ap;
    int ok, found = 0;

    va_start(ap, status);
    while ((ok = va_arg(ap, int)) != 0)
        if (ok == status)
            found = 1;
    va_end(ap);
    return found;
}

/* The case ended well: no hang, and either one of the listed statuses or a
 * close without an answer. */
#define ck_refused(what, r, ...)                                              \
    do {                                                                      \
        note(what, r);                                                        \
        ck_assert_msg(!(r)->hung && (r)->ms < HANG_MS,                        \
                      "%s: no answer and no close after %.0f ms", what,       \
                      (r)->ms);                                               \
        ck_assert_msg((r)->status == 0 ? (r)->closed                          \
                                       : one_of((r)->status, __VA_ARGS__, 0), \
                      "%s: unexpected answer: %.200s", what, (r)->text);      \
    } while (0)

/* Sends a hostile request, checks the answer and that the server lives. */
#define hostile(s, what, data, len, ...)                                      \
    do {                                                                      \
        reply *r_ = malloc(sizeof *r_);                                       \
        ck_assert_ptr_nonnull(r_);                                            \
        exchange((s)->port, data, len, r_);                                   \
        ck_refused(what, r_, __VA_ARGS__);                                    \
        free(r_);                                                             \
        still_alive((s)->port);                                               \
    } while (0)

#define hostile_str(s, what, text, ...) \
    hostile(s, what, text, strlen(text), __VA_ARGS__)

/* A deterministic xorshift stream: failures must be reproducible. */
static void fill_random(char *buf, size_t len, unsigned long long seed)
{
    size_t i;

    for (i = 0; i < len; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        buf[i] = (char)(seed >> 24);
    }
}

/* ---- Cases ---- */

#define CHUNKED_POST \
    "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"

START_TEST(garbage_bytes)
{
    server s;
    char garbage[4096];
    int fd;

    server_start(&s, 0);
    fill_random(garbage, sizeof garbage, 0x9e3779b97f4a7c15ULL);
    /* Garbage and a close, with nobody left to answer. */
    fd = tu_connect(s.port);
    tu_send_all(fd, garbage, sizeof garbage);
    close(fd);
    still_alive(s.port);
    fd = tu_connect(s.port);
    tu_send_all(fd, garbage, sizeof garbage);
    tu_close_rst(fd);
    still_alive(s.port);
    /* Garbage, and then wait for whatever the server makes of it. */
    hostile(&s, "4 KiB of random bytes", garbage, sizeof garbage,
            400, 414, 431, 501, 505);
    fill_random(garbage, sizeof garbage, 42);
    hostile(&s, "4 KiB of other random bytes", garbage, sizeof garbage,
            400, 414, 431, 501, 505);
    hostile_str(&s, "request line of spaces", "                \r\n\r\n",
                400, 501, 505);
    hostile_str(&s, "request line of spaces, then a header",
                "                \r\nHost: x\r\n\r\n", 400, 501, 505);
    hostile(&s, "NUL inside the request target",
            "GET /hel\0lo HTTP/1.1\r\nHost: x\r\n\r\n", 34, 400, 404);
    hostile(&s, "NUL inside a header value",
            "GET /hello HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", 43, 400,
            200);
    server_free(&s);
    ck_assert_int_eq(atomic_load(&s.echo_calls), 0);
    ck_assert_int_eq(atomic_load(&s.json_calls), 0);
    ck_assert_int_eq(atomic_load(&s.files_calls), 0);
}
END_TEST

START_TEST(oversized_heads)
{
    server s;
    size_t cap = 128 * 1024, n;
    char *req = malloc(cap);
    int i;

    ck_assert_ptr_nonnull(req);
    server_start(&s, 0);
    /* One 64 KiB header line, twice the default head limit. */
    n = (size_t)snprintf(req, cap, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(req + n, 'a', 64 * 1024);
    n += 64 * 1024;
    n += (size_t)snprintf(req + n, cap - n, "\r\n\r\n");
    hostile(&s, "one 64 KiB header", req, n, 431, 400);
    /* 2000 small headers: within the limit they are served, else 431. */
    n = (size_t)snprintf(req, cap, "GET /hello HTTP/1.1\r\nHost: x\r\n");
    for (i = 0; i < 2000; i++)
        n += (size_t)snprintf(req + n, cap - n, "X-H%d: v\r\n", i);
    n += (size_t)snprintf(req + n, cap - n, "\r\n");
    hostile(&s, "2000 headers", req, n, 431, 200, 400);
    /* A 40 KiB request target. */
    n = (size_t)snprintf(req, cap, "GET /files/");
    memset(req + n, 'p', 40 * 1024);
    n += 40 * 1024;
    n += (size_t)snprintf(req + n, cap - n, " HTTP/1.1\r\nHost: x\r\n\r\n");
    hostile(&s, "40 KiB request target", req, n, 414, 431, 400);
    /* A header line that never ends. */
    n = (size_t)snprintf(req, cap, "GET /hello HTTP/1.1\r\nX-Endless: ");
    memset(req + n, 'e', 40 * 1024);
    n += 40 * 1024;
    hostile(&s, "unterminated 40 KiB header", req, n, 431, 400);
    server_free(&s);
    ck_assert_int_eq(atomic_load(&s.files_calls), 0);
    free(req);
}
END_TEST

START_TEST(bad_methods_and_versions)
{
    server s;
    size_t cap = 16 * 1024, n;
    char *req = malloc(cap);

    ck_assert_ptr_nonnull(req);
    server_start(&s, 0);
    hostile_str(&s, "method G@T", "G@T /hello HTTP/1.1\r\nHost: x\r\n\r\n",
                400, 405, 501);
    memset(req, 'M', 10 * 1024);
    n = 10 * 1024;
    n += (size_t)snprintf(req + n, cap - n, " /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    hostile(&s, "10 KiB method token", req, n, 400, 405, 431, 501);
    hostile_str(&s, "lowercase get", "get /hello HTTP/1.1\r\nHost: x\r\n\r\n",
                400, 404, 405, 501);
    hostile_str(&s, "HTTP/9.9", "GET /hello HTTP/9.9\r\nHost: x\r\n\r\n",
                400, 505);
    hostile_str(&s, "HTTP/1", "GET /hello HTTP/1\r\nHost: x\r\n\r\n",
                400, 505);
    hostile_str(&s, "FOO/1.1", "GET /hello FOO/1.1\r\nHost: x\r\n\r\n",
                400, 505);
    hostile_str(&s, "HTTP/0.9 style, no version", "GET /hello\r\n\r\n",
                400, 505);
    /* RFC 9112 3.2 asks for 400; libmicrohttpd checks only in its pedantic
     * mode. Nothing here routes by Host and framing does not depend on it,
     * so either answer will do. */
    hostile_str(&s, "HTTP/1.1 without Host", "GET /hello HTTP/1.1\r\n\r\n",
                400, 200);
    server_free(&s);
    free(req);
}
END_TEST

START_TEST(truncated_body)
{
    server s;
    static const char head[] =
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789";
    int fd;

    server_start(&s, 0);
    /* The client dies a tenth of the way through its body. (Whether the
     * server notices a mere half-close there is half_close_* below.) */
    fd = tu_connect(s.port);
    ck_assert(tu_send_all(fd, head, strlen(head)));
    close(fd);
    still_alive(s.port);
    fd = tu_connect(s.port);
    ck_assert(tu_send_all(fd, head, strlen(head)));
    tu_close_rst(fd);
    still_alive(s.port);
    server_free(&s);
    ck_assert_int_eq(atomic_load(&s.echo_calls), 0);
}
END_TEST

START_TEST(content_length_lies)
{
    server s;
    static const char lie[] =
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloWORLD";
    reply *r = malloc(sizeof *r);
    double t0;
    int fd;

    ck_assert_ptr_nonnull(r);
    server_start(&s, 0);
    /* Five bytes are the body; the other five start a second request,
     * which is garbage once the client says it is done. */
    fd = tu_connect(s.port);
    ck_assert(tu_send_all(fd, lie, strlen(lie)));
    read_reply(fd, r);
    note("CL 5 with 10 bytes: first request", r);
    ck_assert_int_eq(r->status, 200);
    ck_assert_ptr_nonnull(strstr(r->text, "\r\n\r\n5"));
    shutdown(fd, SHUT_WR);
    t0 = tu_now_ms();
    read_reply(fd, r);
    r->ms = tu_now_ms() - t0;
    ck_refused("CL 5 with 10 bytes: the extra 5", r, 400, 501, 505);
    close(fd);
    still_alive(s.port);
    hostile_str(&s, "Content-Length: -1",
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\nhello",
                400, 413);
    hostile_str(&s, "Content-Length: abc",
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\nhello",
                400, 413);
    hostile_str(&s, "Content-Length: 99999999999999999999",
                "POST /echo HTTP/1.1\r\nHost: x\r\n"
                "Content-Length: 99999999999999999999\r\n\r\nhello",
                400, 413);
    hostile_str(&s, "Content-Length over the limit",
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\nhello",
                413);
    server_free(&s);
    ck_assert_int_eq(atomic_load(&s.echo_calls), 1);
    ck_assert_uint_eq(atomic_load(&s.echo_last_len), 5);
    free(r);
}
END_TEST

START_TEST(chunked_abuse)
{
    server s;
    size_t cap = 16 * 1024, n;
    char *req = malloc(cap);
    reply *r = malloc(sizeof *r);
    double t0;
    int i, fd;

    ck_assert_ptr_nonnull(req);
    ck_assert_ptr_nonnull(r);
    server_start(&s, 1024);
    hostile_str(&s, "chunk size zz", CHUNKED_POST "\r\nzz\r\nhello\r\n0\r\n\r\n",
                400);
    hostile_str(&s, "chunk size ffffffffffffffffff",
                CHUNKED_POST "\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
                400, 413);
    hostile_str(&s, "chunk size -1", CHUNKED_POST "\r\n-1\r\nhello\r\n0\r\n\r\n",
                400);
    hostile_str(&s, "chunk longer than its size",
                CHUNKED_POST "\r\n2\r\nhello\r\n0\r\n\r\n", 400);
    /* 4000 bytes in 1000-byte chunks against a 1024-byte limit. */
    n = (size_t)snprintf(req, cap, CHUNKED_POST "\r\n");
    for (i = 0; i < 4; i++) {
        n += (size_t)snprintf(req + n, cap - n, "3e8\r\n");
        memset(req + n, 'c', 1000);
        n += 1000;
        n += (size_t)snprintf(req + n, cap - n, "\r\n");
    }
    n += (size_t)snprintf(req + n, cap - n, "0\r\n\r\n");
    hostile(&s, "chunked body over the limit", req, n, 413);
    /* 4 MiB of chunks: past what the server drains for a 413, it hangs up. */
    fd = tu_connect(s.port);
    t0 = tu_now_ms();
    {
        char chunk[8192 + 16];
        bool sent = tu_send_all(fd, CHUNKED_POST "\r\n", strlen(CHUNKED_POST "\r\n"));
        n = (size_t)snprintf(chunk, sizeof chunk, "2000\r\n");
        memset(chunk + n, 'd', 8192);
        n += 8192;
        n += (size_t)snprintf(chunk + n, sizeof chunk - n, "\r\n");
        for (i = 0; sent && i < 512; i++)
            sent = tu_send_all(fd, chunk, n);
        if (sent)
            tu_send_all(fd, "0\r\n\r\n", 5);
        read_reply(fd, r);
        r->ms = tu_now_ms() - t0;
        ck_refused("4 MiB chunked body, limit 1 KiB", r, 413);
    }
    close(fd);
    still_alive(s.port);
    server_free(&s);
    ck_assert_int_eq(atomic_load(&s.echo_calls), 0);
    free(req);
    free(r);
}
END_TEST

START_TEST(deep_and_large_json)
{
    server s;
    size_t depth = 100000, n;
    char *body = malloc(2 * depth + 1);
    char *str;
    tu_response r;

    ck_assert_ptr_nonnull(body);
    server_start(&s, 4u * 1024 * 1024);
    memset(body, '[', depth);
    memset(body + depth, ']', depth);
    r = tu_request(s.port, "POST", "/json", body, 2 * depth, NULL);
    if (verbose())
        fprintf(stderr, "hostile: %-44s -> %ld\n", "100000-deep JSON array", r.status);
    ck_assert_int_eq(r.status, 400);
    tu_response_free(&r);
    still_alive(s.port);
    /* Opened and never closed. */
    r = tu_request(s.port, "POST", "/json", body, depth, NULL);
    if (verbose())
        fprintf(stderr, "hostile: %-44s -> %ld\n", "100000 unclosed [", r.status);
    ck_assert_int_eq(r.status, 400);
    tu_response_free(&r);
    still_alive(s.port);
    /* A valid JSON string of 1 MiB - 1 bytes in all. */
    n = 1024 * 1024 - 1;
    str = malloc(n);
    ck_assert_ptr_nonnull(str);
    memset(str, 'a', n);
    str[0] = str[n - 1] = '"';
    r = tu_request(s.port, "POST", "/json", str, n, NULL);
    if (verbose())
        fprintf(stderr, "hostile: %-44s -> %ld %s\n", "1 MiB - 1 JSON string",
                r.status, r.body);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "string 1048573");
    tu_response_free(&r);
    still_alive(s.port);
    server_free(&s);
    ck_assert_int_eq(atomic_load(&s.json_calls), 3);
    free(str);
    free(body);
}
END_TEST

/* GETs `path` with libcurl and checks the status and, if given, the body. */
static void get_expect(unsigned short port, const char *path, long status,
                       const char *body)
{
    tu_response r = tu_get(port, path);

    if (verbose())
        fprintf(stderr, "hostile: GET %-40s -> %ld %s\n", path, r.status,
                r.status == 200 ? r.body : "");
    ck_assert_msg(r.status == status, "GET %s: %ld, expected %ld", path,
                  r.status, status);
    if (body != NULL)
        ck_assert_str_eq(r.body, body);
    tu_response_free(&r);
    still_alive(port);
}

START_TEST(tricky_paths)
{
    server s;

    server_start(&s, 0);
    get_expect(s.port, "/hello%00x", 400, NULL);
    get_expect(s.port, "/hello?a=%00", 400, NULL);
    get_expect(s.port, "/hello?%00=a", 400, NULL);
    get_expect(s.port, "/files/a%00b", 400, NULL);
    get_expect(s.port, "/../etc/passwd", 404, NULL);
    /* No file is ever opened: {*rest} is just the decoded text. */
    get_expect(s.port, "/files/../../etc/passwd", 200, "../../etc/passwd");
    get_expect(s.port, "/files/%2e%2e/x", 200, "../x");
    get_expect(s.port, "/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd", 200,
               "../../etc/passwd");
    get_expect(s.port, "//hello", 404, NULL);
    get_expect(s.port, "/hello/", 200, "hello");
    get_expect(s.port, "/hello//", 404, NULL);
    get_expect(s.port, "/%", 404, NULL);
    get_expect(s.port, "/files/%zz%", 200, "%zz%");
    server_free(&s);
    ck_assert_int_eq(atomic_load(&s.files_calls), 4);
}
END_TEST

START_TEST(odd_request_targets)
{
    server s;

    server_start(&s, 0);
    /* Absolute-form (RFC 9112 3.2.2): a server MUST accept it and route
     * by its path. */
    hostile_str(&s, "absolute-form target",
                "GET http://x/hello HTTP/1.1\r\nHost: x\r\n\r\n",
                200);
    /* Asterisk-form asks about the server: 200 with an Allow header. */
    hostile_str(&s, "OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
                200);
    hostile_str(&s, "GET *", "GET * HTTP/1.1\r\nHost: x\r\n\r\n",
                400, 404);
    hostile_str(&s, "target without a slash",
                "GET hello HTTP/1.1\r\nHost: x\r\n\r\n", 400, 404);
    hostile_str(&s, "target with a fragment",
                "GET /hello#x HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    hostile_str(&s, "CONNECT authority-form",
                "CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: x\r\n\r\n",
                400, 404, 405, 501);
    server_free(&s);
    /* still_alive's six and the absolute-form one: no odd target was
     * routed to /hello. */
    ck_assert_int_eq(atomic_load(&s.hello_calls), 7);
}
END_TEST

typedef struct {
    unsigned short port;
    int count;
    int salt;
    int failures;
} churn_arg;

/* Opens and drops connections at once, every third with a reset. */
static void *churn(void *p)
{
    churn_arg *a = p;
    int i;

    for (i = 0; i < a->count; i++) {
        int fd = tu_try_connect(a->port);
        if (fd < 0) {
            a->failures++;
            continue;
        }
        if ((i + a->salt) % 3 == 0)
            tu_close_rst(fd);
        else
            close(fd);
    }
    return NULL;
}

START_TEST(connection_churn)
{
    server s;
    pthread_t th[4];
    churn_arg args[4];
    int fds[200], i;
    double t0;

    server_start(&s, 0);
    t0 = tu_now_ms();
    for (i = 0; i < 4; i++) {
        args[i] = (churn_arg){s.port, 500, i, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, churn, &args[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_int_eq(args[i].failures, 0);
    }
    if (verbose())
        fprintf(stderr, "hostile: 2000 connect+drop in %.0f ms\n",
                tu_now_ms() - t0);
    still_alive(s.port);
    /* 200 clients start a request line, then reset. */
    for (i = 0; i < 200; i++) {
        fds[i] = tu_connect(s.port);
        ck_assert(tu_send_all(fds[i], "GET /hel", 8));
    }
    for (i = 0; i < 200; i++)
        tu_close_rst(fds[i]);
    still_alive(s.port);
    server_free(&s);
}
END_TEST

/* Sends `n` pipelined GETs of `path` on each of `nfd` new connections and
 * never reads an answer. */
static void pipeline_unread(unsigned short port, const char *path, int *fds,
                            int nfd, int n)
{
    char line[128];
    size_t len = (size_t)snprintf(line, sizeof line,
                                  "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    size_t total = len * (size_t)n, off;
    char *all = malloc(total);
    int i;

    ck_assert_ptr_nonnull(all);
    for (off = 0; off < total; off += len)
        memcpy(all + off, line, len);
    for (i = 0; i < nfd; i++) {
        fds[i] = tu_connect(port);
        ck_assert(tu_send_all(fds[i], all, total));
    }
    free(all);
}

START_TEST(clients_that_never_read)
{
    server s;
    int fds[20], i;

    server_start(&s, 0);
    pipeline_unread(s.port, "/hello", fds, 20, 50);
    still_alive(s.port);
    for (i = 0; i < 20; i++)
        close(fds[i]);
    still_alive(s.port);
    /* Answers big enough to fill the socket buffers leave the server with
     * writes it cannot finish; it keeps serving others meanwhile... */
    pipeline_unread(s.port, "/big", fds, 20, 50);
    still_alive(s.port);
    /* ...and shutting down must not wait for those readers. */
    server_free(&s);
    for (i = 0; i < 20; i++)
        close(fds[i]);
    ck_assert_int_le(atomic_load(&s.hello_calls), 20 * 50 + 3);
    ck_assert_int_lt(atomic_load(&s.big_calls), 20 * 50);
}
END_TEST

START_TEST(slow_trickle)
{
    server s;
    static const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    /* About 200 ms for the whole head: the slowness is the scenario. */
    struct timespec gap = {0, 200000000L / (long)(sizeof req - 1)};
    reply *r = malloc(sizeof *r);
    double t0;
    size_t i;
    int fd, one = 1;

    ck_assert_ptr_nonnull(r);
    server_start(&s, 0);
    fd = tu_connect(s.port);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    t0 = tu_now_ms();
    for (i = 0; i < sizeof req - 1; i++) {
        ck_assert(tu_send_all(fd, req + i, 1));
        nanosleep(&gap, NULL);
    }
    read_reply(fd, r);
    r->ms = tu_now_ms() - t0;
    note("head one byte at a time", r);
    ck_assert_int_eq(r->status, 200);
    ck_assert_ptr_nonnull(strstr(r->text, "\r\n\r\nhello"));
    ck_assert_double_ge(r->ms, 150);
    close(fd);
    server_free(&s);
    ck_assert_int_eq(atomic_load(&s.hello_calls), 1);
    free(r);
}
END_TEST

/* ---- Cases run side by side ----
 *
 * Some cases can only end when the server notices something (the client's
 * half-close, a framing it must refuse); a server that misses it keeps the
 * connection until its idle timeout (30 s). Those run together, each on
 * its own connection, so that a miss costs SIDE_BY_SIDE_MS once, and the
 * failure lists every case that missed. */

#define SIDE_BY_SIDE_MS 3000

typedef struct {
    const char *what;
    const char *data;
    size_t len;          /* 0: strlen(data) */
    const char *ok_body; /* a 200 with this body, then a close, is also
                            acceptable; NULL: only a 400 or a close is */
} side_case;

/* Sends every case, half-closing after each if `half_close` (corked, so
 * that the bytes and the FIN leave in one segment, as they often do from a
 * client that writes and half-closes at once: that makes the cases
 * deterministic), then reads all connections together until each is closed
 * or SIDE_BY_SIDE_MS pass. r[i].hung marks the ones still open. */
static void side_by_side(unsigned short port, const side_case *c, size_t n,
                         bool half_close, reply *r)
{
    struct pollfd *pfd = calloc(n, sizeof *pfd);
    int *fds = calloc(n, sizeof *fds), one = 1;
    size_t i, left = n;
    double t0;

    ck_assert_ptr_nonnull(pfd);
    ck_assert_ptr_nonnull(fds);
    memset(r, 0, n * sizeof *r);
    for (i = 0; i < n; i++) {
        fds[i] = tu_connect(port);
        if (half_close)
            ck_assert_int_eq(setsockopt(fds[i], IPPROTO_TCP, TCP_CORK, &one,
                                        sizeof one), 0);
        tu_send_all(fds[i], c[i].data, c[i].len ? c[i].len : strlen(c[i].data));
        if (half_close)
            ck_assert_int_eq(shutdown(fds[i], SHUT_WR), 0);
        pfd[i].fd = fds[i];
        pfd[i].events = POLLIN;
    }
    t0 = tu_now_ms();
    while (left > 0) {
        int wait = (int)(SIDE_BY_SIDE_MS - (tu_now_ms() - t0));
        if (wait <= 0 || poll(pfd, (nfds_t)n, wait) <= 0)
            break;
        for (i = 0; i < n; i++) {
            ssize_t got;
            if (pfd[i].fd < 0 || pfd[i].revents == 0)
                continue;
            got = recv(fds[i], r[i].text + r[i].len,
                       sizeof r[i].text - 1 - r[i].len, 0);
            if (got > 0) {
                r[i].len += (size_t)got;
                r[i].text[r[i].len] = '\0';
                if (r[i].len + 1 < sizeof r[i].text)
                    continue;
            }
            r[i].closed = true; /* EOF, a reset, or more than we keep */
            r[i].ms = tu_now_ms() - t0;
            pfd[i].fd = -1; /* poll skips it from now on */
            left--;
        }
    }
    for (i = 0; i < n; i++) {
        if (strncmp(r[i].text, "HTTP/1.", 7) == 0 && r[i].len >= 12)
            r[i].status = atoi(r[i].text + 9);
        if (pfd[i].fd >= 0) {
            r[i].hung = true;
            r[i].ms = tu_now_ms() - t0;
        }
        close(fds[i]);
    }
    free(pfd);
    free(fds);
}

/* Runs the cases side by side and fails, naming every case that went
 * wrong, unless each got a 400 or a close (or, where allowed, the 200 it
 * names), and the connection was closed within SIDE_BY_SIDE_MS. */
static void side_by_side_check(server *s, const side_case *c, size_t n,
                               bool half_close)
{
    reply *r = calloc(n, sizeof *r);
    char bad[2048] = "";
    size_t i;

    ck_assert_ptr_nonnull(r);
    side_by_side(s->port, c, n, half_close, r);
    for (i = 0; i < n; i++) {
        const char *body = strstr(r[i].text, "\r\n\r\n");
        bool ok = r[i].closed &&
                  (r[i].status == 0 || r[i].status == 400 ||
                   (r[i].status == 200 && c[i].ok_body != NULL &&
                    body != NULL && strcmp(body + 4, c[i].ok_body) == 0));
        note(c[i].what, &r[i]);
        if (!ok && r[i].status != 0)
            snprintf(bad + strlen(bad), sizeof bad - strlen(bad),
                     "\n  %s: answered %d \"%.20s\"%s", c[i].what,
                     r[i].status, body ? body + 4 : "",
                     r[i].closed ? ", then closed" : ", connection kept open");
        else if (!ok)
            snprintf(bad + strlen(bad), sizeof bad - strlen(bad),
                     "\n  %s: no answer, connection kept open", c[i].what);
    }
    free(r);
    ck_assert_msg(bad[0] == '\0', "%s:%s",
                  half_close ? "not closed after the client's half-close"
                             : "ambiguous framing not refused", bad);
    still_alive(s->port);
}

/* Requests cut short, after which the client half-closes: the server can
 * end them only by noticing the end of the stream. */
static const side_case cut_short[] = {
    {"empty lines alone", "\r\n\r\n", 0, NULL},
    {"NUL bytes and empty lines", "\0\0\0\0\r\n\r\n", 8, NULL},
    {"half a request line", "GET /hel", 0, NULL},
    {"a head without its blank line", "GET /hello HTTP/1.1\r\nHost: x\r\n", 0,
     NULL},
    {"Content-Length 100 with 10 bytes",
     "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",
     0, NULL},
    {"chunked, cut inside a chunk", CHUNKED_POST "\r\n5\r\nhel", 0, NULL},
    {"chunked, no last chunk", CHUNKED_POST "\r\n5\r\nhello\r\n", 0, NULL},
    {"chunked, no final CRLF", CHUNKED_POST "\r\n5\r\nhello\r\n0\r\n", 0, NULL},
};
#define N_CUT_SHORT (sizeof cut_short / sizeof cut_short[0])

/* The default connection limit (10,000) puts libmicrohttpd in epoll mode.
 * There 0.9.75 takes any short read as "socket drained" and clears the
 * connection's read-ready flag, so a FIN that came in with the last bytes
 * is never read: edge-triggered epoll does not report it again, and the
 * connection waits for its idle timeout. That is MHD's, not ours to fix
 * here; what we guarantee is the bound: with a 1 s idle timeout every such
 * connection is gone within the check's 3 s. */
START_TEST(half_close_mid_request_is_noticed)
{
    server s;

    server_start_idle(&s, 1);
    side_by_side_check(&s, cut_short, N_CUT_SHORT, true);
    server_free(&s);
    ck_assert_int_eq(atomic_load(&s.echo_calls), 0);
}
END_TEST

/* At most 1024 connections put libmicrohttpd in poll mode, which sees the
 * FIN at its next turn. */
START_TEST(half_close_mid_request_is_noticed_poll_mode)
{
    server s;

    server_start_limited(&s, 1000);
    side_by_side_check(&s, cut_short, N_CUT_SHORT, true);
    server_free(&s);
    ck_assert_int_eq(atomic_load(&s.echo_calls), 0);
}
END_TEST

/* Requests whose body length two parsers could read differently, the stuff
 * of request smuggling behind a proxy. RFC 9112 asks for a 400 and a close
 * (sections 5.1, 6.1, 6.3), except that a server may let chunked win over
 * Content-Length if it then closes. The server keeps its side open: each
 * must be refused, not waited on. */
static const side_case ambiguous[] = {
    {"Content-Length 5, then 3",
     "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
     "Content-Length: 3\r\n\r\nhello",
     0, NULL},
    {"Content-Length 3, then 5",
     "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
     "Content-Length: 5\r\n\r\nhello",
     0, NULL},
    {"chunked and Content-Length 3",
     CHUNKED_POST "Content-Length: 3\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 0, "5"},
    {"Content-Length 3 and chunked",
     "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
     "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     0, "5"},
    {"Transfer-Encoding gzip, chunked not last",
     "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n"
     "Content-Length: 5\r\n\r\nhello",
     0, NULL},
    {"Transfer-Encoding unknown",
     "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n"
     "Content-Length: 5\r\n\r\nhello",
     0, NULL},
    {"Transfer-Encoding gzip alone",
     "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nhello",
     0, NULL},
    {"space before the colon",
     "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello", 0,
     NULL},
    /* libmicrohttpd drops an obs-folded field, so this body reads as
     * empty; the close the client asked for means the bytes after the head
     * are never read as a next request, which is what matters here. */
    {"Content-Length folded onto a second line",
     "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
     "Content-Length:\r\n 5\r\n\r\nhello",
     0, "0"},
};
#define N_AMBIGUOUS (sizeof ambiguous / sizeof ambiguous[0])

START_TEST(ambiguous_framing_is_refused)
{
    server s;

    server_start(&s, 0);
    side_by_side_check(&s, ambiguous, N_AMBIGUOUS, false);
    server_free(&s);
}
END_TEST

static Suite *hostile_suite(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc = tcase_create("hostile");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, garbage_bytes);
    tcase_add_test(tc, oversized_heads);
    tcase_add_test(tc, bad_methods_and_versions);
    tcase_add_test(tc, truncated_body);
    tcase_add_test(tc, content_length_lies);
    tcase_add_test(tc, chunked_abuse);
    tcase_add_test(tc, deep_and_large_json);
    tcase_add_test(tc, tricky_paths);
    tcase_add_test(tc, odd_request_targets);
    tcase_add_test(tc, connection_churn);
    tcase_add_test(tc, clients_that_never_read);
    tcase_add_test(tc, slow_trickle);
    tcase_add_test(tc, half_close_mid_request_is_noticed);
    tcase_add_test(tc, half_close_mid_request_is_noticed_poll_mode);
    tcase_add_test(tc, ambiguous_framing_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hostile_suite());
    struct rlimit rl;
    int failed;

    /* Thousands of short-lived sockets on both ends of one process. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
