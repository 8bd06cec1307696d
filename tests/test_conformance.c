/* test_conformance.c - what RFC 9110/9112 say a server MUST refuse (or
 * accept), over raw sockets against a real app (issue 15; the checks are
 * lib/model/http_strict.c). One case per rule: the status, whether the
 * connection closes (a refusal closes it; an accepted request leaves it
 * open, proved by a second request on it), and that no refused request
 * reached a handler. Also: the refusals go through the app's error
 * handler with a detail that does not end in a newline, several Cookie
 * fields read as one, and an absolute-form target's Host. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"

static atomic_int handler_calls;

static vg_result *h_hello(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    atomic_fetch_add(&handler_calls, 1);
    return vg_text("hello");
}

/* Echoes one header, named by the route parameter. */
static vg_result *h_header(vg_request *req, void *arg)
{
    const char *v = vg_request_header(req, vg_request_param(req, "name"));

    (void)arg;
    atomic_fetch_add(&handler_calls, 1);
    return vg_textf("%s|%s", v ? v : "(null)", vg_request_path(req));
}

static vg_app *conformance_app(void)
{
    vg_app *app = tu_app_new();

    ck_assert_int_eq(vg_map_get(app, "/hello", h_hello, NULL), 0);
    ck_assert_int_eq(vg_map_post(app, "/hello", h_hello, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/header/{name}", h_header, NULL), 0);
    tu_start(app);
    return app;
}

/* What one raw exchange gave: the first response and whether the server
 * then closed the connection. */
typedef struct {
    char text[8192];
    unsigned status;
    bool closed;
} answer;

static const char next_request[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";

/* Sends `len` bytes on a new connection and reads one response. A
 * refusal must be followed by the server's close (read to EOF); an
 * accepted request by an open connection, which a second request on it
 * proves (it must answer 200). */
static void exchange(unsigned short port, const char *data, size_t len,
                     bool expect_close, answer *a)
{
    char more[4096];
    size_t n;
    int fd = tu_connect(port);

    memset(a, 0, sizeof *a);
    ck_assert(tu_send_all(fd, data, len));
    n = tu_recv_response(fd, a->text, sizeof a->text);
    ck_assert_msg(n > 0, "no response");
    ck_assert_int_eq(sscanf(a->text, "HTTP/1.1 %u", &a->status), 1);
    if (expect_close) {
        /* EOF, not a timeout: tu_connect's 10 s receive timeout bounds it. */
        a->closed = tu_recv_all(fd, more, sizeof more) == 0;
        ck_assert_msg(a->closed, "connection left open after %.80s", a->text);
    } else {
        ck_assert(tu_send_all(fd, next_request, strlen(next_request)));
        n = tu_recv_response(fd, more, sizeof more);
        ck_assert_msg(n > 0 && strncmp(more, "HTTP/1.1 200", 12) == 0,
                      "the connection did not stay usable: %.80s", more);
    }
    close(fd);
}

typedef struct {
    const char *rule;
    const char *request;
    size_t len;          /* 0: strlen(request) */
    unsigned status;
    const char *body;    /* expected in the body, or NULL */
} conf_case;

#define ST(s) s, sizeof(s) - 1

/* Refused: status, Connection: close, the server closes, no handler. */
static const conf_case refused[] = {
    {"HTTP/1.1 without Host", ST("GET /hello HTTP/1.1\r\n\r\n"), 400,
     "without Host"},
    {"two Host fields, same value",
     ST("GET /hello HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n"), 400,
     "more than one Host"},
    {"two Host fields, different values",
     ST("GET /hello HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"), 400,
     "more than one Host"},
    {"Host with userinfo", ST("GET /hello HTTP/1.1\r\nHost: u@x\r\n\r\n"),
     400, "userinfo"},
    {"Host with a path", ST("GET /hello HTTP/1.1\r\nHost: x/y\r\n\r\n"), 400,
     "path in Host"},
    {"Host with a comma list", ST("GET /hello HTTP/1.1\r\nHost: x, y\r\n\r\n"),
     400, "more than one value"},
    {"empty Host", ST("GET /hello HTTP/1.1\r\nHost:\r\n\r\n"), 400,
     "empty Host"},
    {"empty header name", ST("GET /hello HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n"),
     400, "empty header name"},
    {"empty header name, not last",
     ST("GET /hello HTTP/1.1\r\n: v\r\nHost: x\r\n\r\n"), 400, NULL},
    {"header name not a token",
     ST("GET /hello HTTP/1.1\r\nHost: x\r\nX(y): v\r\n\r\n"), 400,
     "not a token"},
    {"non-ASCII header name",
     ST("GET /hello HTTP/1.1\r\nHost: x\r\nX\xc3\xa9: v\r\n\r\n"), 400,
     "non-ASCII byte in a header name"},
    {"NUL in a header value",
     ST("GET /hello HTTP/1.1\r\nX: a\0b\r\nHost: x\r\n\r\n"), 400, "NUL"},
    {"NUL in the last header value",
     ST("GET /hello HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n"), 400, "NUL"},
    {"bare CR in a header value",
     ST("GET /hello HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n"), 400, "bare CR"},
    {"control character in a header value",
     ST("GET /hello HTTP/1.1\r\nHost: x\r\nX: a\x01z\r\n\r\n"), 400,
     "control character"},
    {"DEL in a header value",
     ST("GET /hello HTTP/1.1\r\nHost: x\r\nX: a\x7fz\r\n\r\n"), 400,
     "control character"},
    {"raw space in the target", ST("GET /hel lo HTTP/1.1\r\nHost: x\r\n\r\n"),
     400, "space"},
    {"NUL in the target", ST("GET /hello\0x HTTP/1.1\r\nHost: x\r\n\r\n"), 400,
     "NUL in the request target"},
    {"non-ASCII byte in the target",
     ST("GET /h\xc3\xa9llo HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "non-ASCII"},
    {"control byte in the target",
     ST("GET /hel\x01lo HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "control"},
    {"overlong UTF-8 in the path",
     ST("GET /header/%C0%AE HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "overlong"},
    {"overlong UTF-8 in the query",
     ST("GET /hello?a=%E0%80%AF HTTP/1.1\r\nHost: x\r\n\r\n"), 400,
     "overlong"},
    /* RFC 9112 5.2 / 11.2: obs-fold, and smuggling through it. */
    {"obs-fold hiding Transfer-Encoding",
     ST("POST /hello HTTP/1.1\r\nHost: x\r\nX-A: b\r\n Transfer-Encoding: "
        "chunked\r\nContent-Length: 3\r\n\r\nabc"), 400, "obs-fold"},
    {"obs-fold with a token-like continuation",
     ST("GET /hello HTTP/1.1\r\nHost: x\r\nX-A: b\r\n\tchunked\r\n\r\n"), 400,
     "obs-fold"},
    {"obs-fold of the first header",
     ST("GET /hello HTTP/1.1\r\nX-A: b\r\n c\r\nHost: x\r\n\r\n"), 400,
     "obs-fold"},
    {"obs-fold, empty continuation",
     ST("GET /hello HTTP/1.1\r\nHost: x\r\nX-A: b\r\n \r\n\r\n"), 400,
     "obs-fold"},
    {"obs-fold, two continuations",
     ST("GET /hello HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n d\r\n\r\n"), 400,
     "obs-fold"},
    {"method not a token", ST("G(T /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 400,
     "method is not a token"},
    {"NUL in the method", ST("GE\0T /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 400,
     "NUL in the request line"},
    {"over-long unmapped method",
     ST("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJ /hello HTTP/1.1\r\nHost: x\r\n\r\n"),
     501, "method not implemented"},
    {"obs-fold in a chunked body's trailer",
     ST("POST /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n0\r\nX-T: a\r\n b\r\n\r\n"), 400, "obs-fold"},
    {"control character in a trailer value",
     ST("POST /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n0\r\nX-T: a\x01\r\n\r\n"), 400, "control character"},
    {"absolute-form with userinfo",
     ST("GET http://u@x/hello HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "userinfo"},
};

/* Accepted: the answer, and the connection stays open. */
static const conf_case accepted[] = {
    {"plain GET", ST("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "hello"},
    {"HTAB in a value", ST("GET /hello HTTP/1.1\r\nHost: x\r\nX: a\tb\r\n\r\n"),
     200, "hello"},
    {"obs-text in a value",
     ST("GET /hello HTTP/1.1\r\nHost: x\r\nX: caf\xc3\xa9\r\n\r\n"), 200,
     "hello"},
    {"bare LF line ends", ST("GET /hello HTTP/1.1\nHost: x\nX: y\n\n"), 200,
     "hello"},
    {"Host with a port and IPv6",
     ST("GET /header/Host HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), 200,
     "[::1]:8080|/header/Host"},
    {"several spaces after the colon",
     ST("GET /header/X HTTP/1.1\r\nHost: x\r\nX:   v\r\n\r\n"), 200, "v|"},
    {"valid UTF-8 percent-encoded",
     ST("GET /header/%C3%A9 HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "(null)|"},
    {"absolute-form target",
     ST("GET http://example.com:8080/header/Host HTTP/1.1\r\nHost: other\r\n\r\n"),
     200, "example.com:8080|/header/Host"},
    {"absolute-form, https scheme and query",
     ST("GET https://example.com/hello?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"),
     200, "hello"},
    {"chunked body with a trailer",
     ST("POST /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n0\r\nX-T: a\r\n\r\n"), 200, "hello"},
    {"two Cookie fields",
     ST("GET /header/Cookie HTTP/1.1\r\nHost: x\r\nCookie: a=1\r\nX: y\r\n"
        "Cookie: b=2; c=3\r\n\r\n"), 200, "a=1; b=2; c=3|"},
    {"over-long method that the app maps",
     ST("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJ /long HTTP/1.1\r\nHost: x\r\n\r\n"),
     200, "long"},
};

static vg_result *h_long(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_text("long");
}

START_TEST(refused_with_400_and_close)
{
    const conf_case *c = &refused[_i];
    vg_app *app = conformance_app();
    answer a;

    atomic_store(&handler_calls, 0);
    exchange(vg_app_port(app), c->request, c->len, true, &a);
    ck_assert_msg(a.status == c->status, "%s: %.120s", c->rule, a.text);
    ck_assert_msg(strcasestr(a.text, "\r\nConnection: close\r\n") != NULL,
                  "%s: no Connection: close: %.200s", c->rule, a.text);
    if (c->body != NULL)
        ck_assert_msg(strstr(strstr(a.text, "\r\n\r\n"), c->body) != NULL,
                      "%s: body lacks \"%s\": %.200s", c->rule, c->body, a.text);
    ck_assert_int_eq(atomic_load(&handler_calls), 0);
    vg_app_free(app);
}
END_TEST

START_TEST(accepted_and_kept_open)
{
    const conf_case *c = &accepted[_i];
    vg_app *app = tu_app_new();
    answer a;

    ck_assert_int_eq(vg_map_get(app, "/hello", h_hello, NULL), 0);
    ck_assert_int_eq(vg_map_post(app, "/hello", h_hello, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/header/{name}", h_header, NULL), 0);
    ck_assert_int_eq(vg_map(app, "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJ", "/long",
                            h_long, NULL), 0);
    tu_start(app);
    exchange(vg_app_port(app), c->request, c->len, false, &a);
    ck_assert_msg(a.status == c->status, "%s: %.200s", c->rule, a.text);
    ck_assert_msg(strstr(strstr(a.text, "\r\n\r\n"), c->body) != NULL,
                  "%s: body lacks \"%s\": %.300s", c->rule, c->body, a.text);
    vg_app_free(app);
}
END_TEST

/* A head that makes libmicrohttpd grow its read buffer (about 16 KiB of
 * fields), and a second request pipelined in the same write: where the
 * strings lie must still add up. */
START_TEST(large_and_pipelined_heads_are_accepted)
{
    vg_app *app = tu_app_new();
    size_t cap = 64 * 1024, len = 0, i, n;
    char *buf = malloc(cap), *resp = malloc(cap), *second;
    int fd;

    ck_assert_ptr_nonnull(buf);
    ck_assert_ptr_nonnull(resp);
    ck_assert_int_eq(vg_map_get(app, "/hello", h_hello, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/header/{name}", h_header, NULL), 0);
    tu_start(app);
    len += (size_t)snprintf(buf + len, cap - len, "GET /header/X-39 HTTP/1.1\r\nHost: x\r\n");
    for (i = 0; i < 40; i++) {
        len += (size_t)snprintf(buf + len, cap - len, "X-%zu: ", i);
        memset(buf + len, 'a' + (int)(i % 26), 400);
        len += 400;
        len += (size_t)snprintf(buf + len, cap - len, "\r\n");
    }
    len += (size_t)snprintf(buf + len, cap - len, "\r\n%s", next_request);
    fd = tu_connect(vg_app_port(app));
    ck_assert(tu_send_all(fd, buf, len));
    n = tu_recv_response(fd, resp, cap);
    ck_assert_msg(n > 0 && strncmp(resp, "HTTP/1.1 200", 12) == 0, "%.200s", resp);
    ck_assert_ptr_nonnull(strstr(resp, "\r\n\r\nnnnnnnnnnnnnn")); /* 'n's */
    /* The pipelined request may have come in the same read. */
    second = strstr(resp, "\r\n\r\n");
    second = strstr(second + 4, "HTTP/1.1 ");
    if (second == NULL) {
        n = tu_recv_response(fd, resp, cap);
        ck_assert_msg(n > 0, "no answer to the pipelined request");
        second = resp;
    }
    ck_assert_msg(strncmp(second, "HTTP/1.1 200", 12) == 0, "%.200s", second);
    close(fd);
    free(buf);
    free(resp);
    vg_app_free(app);
}
END_TEST

/* ---- The refusals go through the app's error handler ---- */

typedef struct {
    unsigned status;
    char detail[128];
    bool path_null;
} seen_error;

static vg_result *on_error(const vg_request *req, unsigned status,
                           const char *detail, void *arg)
{
    seen_error *e = arg;

    e->status = status;
    snprintf(e->detail, sizeof e->detail, "%s", detail);
    e->path_null = vg_request_path(req) == NULL;
    return vg_textf("custom: %s", detail);
}

START_TEST(refusals_reach_the_error_handler)
{
    vg_app *app = tu_app_new();
    seen_error e;
    answer a;
    static const char req[] = "GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";

    memset(&e, 0, sizeof e);
    ck_assert_int_eq(vg_map_get(app, "/hello", h_hello, NULL), 0);
    ck_assert_int_eq(vg_app_set_error_handler(app, on_error, &e), 0);
    tu_start(app);
    exchange(vg_app_port(app), req, strlen(req), true, &a);
    ck_assert_uint_eq(a.status, 400);
    ck_assert_uint_eq(e.status, 400);
    ck_assert_str_eq(e.detail, "more than one Host field");
    ck_assert(e.path_null); /* refused before the target was parsed */
    ck_assert_ptr_nonnull(strstr(a.text, "\r\n\r\ncustom: more than one Host field"));
    vg_app_free(app);
}
END_TEST

static Suite *conformance_suite(void)
{
    Suite *s = suite_create("conformance");
    TCase *tc = tcase_create("rfc9112");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, refused_with_400_and_close, 0,
                        (int)(sizeof refused / sizeof refused[0]));
    tcase_add_loop_test(tc, accepted_and_kept_open, 0,
                        (int)(sizeof accepted / sizeof accepted[0]));
    tcase_add_test(tc, large_and_pipelined_heads_are_accepted);
    tcase_add_test(tc, refusals_reach_the_error_handler);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(conformance_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
