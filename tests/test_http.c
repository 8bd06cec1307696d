/* test_http.c - routing and HTTP behaviour end to end: a real app on
 * 127.0.0.1:0 talked to with libcurl and raw sockets. Results, parameters,
 * queries, headers, 404/405/HEAD, bodies and their limit, malformed
 * targets, keep-alive, concurrency, many connections, HTTP/1.0 and a large
 * response. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <curl/curl.h>
#include <volga.h>
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BIG_LEN (1024 * 1024)
#define SMALL_LIMIT 1024

/* One app per test, built by the checked fixture. */
static vg_app *app;
static unsigned short port;

/* How often some handlers ran: requests refused before routing must leave
 * these at zero. */
static atomic_int hello_calls, name_calls, limit_calls, any_calls;
/* Whether vg_result_set_header refused a bad name in the handler. */
static atomic_int bad_header_was_null;

/* ---- Handlers ---- */

static vg_result *h_hello(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    atomic_fetch_add(&hello_calls, 1);
    return vg_text("hello");
}

static vg_result *h_name(vg_request *req, void *arg)
{
    (void)arg;
    atomic_fetch_add(&name_calls, 1);
    return vg_text(vg_request_param(req, "name"));
}

static vg_result *h_textf(vg_request *req, void *arg)
{
    (void)arg;
    return vg_textf("n=%d s=%s", atoi(vg_request_param(req, "n")), "x");
}

static vg_result *h_json(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_json(json_pack("{s:s, s:i, s:[i,i], s:b}", "name", "volga", "n",
                             42, "list", 1, 2, "ok", 1));
}

static vg_result *h_no_content(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_status(204);
}

static vg_result *h_custom(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_result_set_header(vg_result_set_status(vg_text("teapot"), 418),
                                "X-Custom", "yes");
}

static vg_result *h_ctype(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_result_set_header(vg_text("<p>hi</p>"), "Content-Type",
                                "text/html");
}

static vg_result *h_user_post(vg_request *req, void *arg)
{
    (void)arg;
    return vg_textf("%s|%s", vg_request_param(req, "id"),
                    vg_request_param(req, "post"));
}

static vg_result *h_files(vg_request *req, void *arg)
{
    const char *rest = vg_request_param(req, "rest");

    (void)arg;
    return vg_textf("[%s]", rest ? rest : "(null)");
}

static vg_result *h_path(vg_request *req, void *arg)
{
    (void)arg;
    return vg_text(vg_request_path(req));
}

static const char *or_null(const char *s)
{
    return s ? s : "(null)";
}

static vg_result *h_query(vg_request *req, void *arg)
{
    (void)arg;
    return vg_textf("a=%s;b=%s;flag=%s;none=%s",
                    or_null(vg_request_query(req, "a")),
                    or_null(vg_request_query(req, "b")),
                    or_null(vg_request_query(req, "flag")),
                    or_null(vg_request_query(req, "none")));
}

static vg_result *h_header(vg_request *req, void *arg)
{
    (void)arg;
    return vg_textf("%s|%s", or_null(vg_request_header(req, "x-test")),
                    or_null(vg_request_header(req, "X-ABSENT")));
}

static vg_result *h_method(vg_request *req, void *arg)
{
    (void)arg;
    return vg_result_set_header(vg_text(vg_request_method(req)), "X-Method",
                                vg_request_method(req));
}

static vg_result *h_users(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_text("users");
}

static vg_result *h_user_me(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_text("me");
}

static vg_result *h_user_id(vg_request *req, void *arg)
{
    (void)arg;
    return vg_textf("id:%s", vg_request_param(req, "id"));
}

static vg_result *h_echo(vg_request *req, void *arg)
{
    size_t len = 12345;
    const char *body = vg_request_body(req, &len);

    (void)arg;
    atomic_fetch_add(&limit_calls, 1);
    if (body == NULL)
        return vg_status(500);
    return vg_textf("%zu:%s", len, body);
}

static vg_result *h_post_json(vg_request *req, void *arg)
{
    json_t *j = vg_request_json(req);

    (void)arg;
    if (j == NULL)
        return vg_status(400);
    /* Parsed once: a second call hands back the same object. */
    if (vg_request_json(req) != j)
        return vg_status(500);
    return vg_json(json_incref(j));
}

static vg_result *h_any(vg_request *req, void *arg)
{
    (void)arg;
    atomic_fetch_add(&any_calls, 1);
    return vg_text(vg_request_method(req));
}

static vg_result *h_null(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return NULL;
}

static vg_result *h_bad_header(vg_request *req, void *arg)
{
    vg_result *res;

    (void)req;
    (void)arg;
    res = vg_result_set_header(vg_text("x"), "Bad\nName", "v");
    atomic_store(&bad_header_was_null, res == NULL);
    return vg_result_set_header(res, "X-After", "chained");
}

static char big_byte(size_t i)
{
    return (char)('a' + (i * 7 + i / 26) % 26);
}

static vg_result *h_big(vg_request *req, void *arg)
{
    char *text = malloc(BIG_LEN + 1);
    vg_result *res;
    size_t i;

    (void)req;
    (void)arg;
    if (text == NULL)
        return NULL;
    for (i = 0; i < BIG_LEN; i++)
        text[i] = big_byte(i);
    text[BIG_LEN] = '\0';
    res = vg_text(text);
    free(text);
    return res;
}

/* ---- Fixture ---- */

static void app_up(size_t body_limit)
{
    atomic_store(&hello_calls, 0);
    atomic_store(&name_calls, 0);
    atomic_store(&limit_calls, 0);
    atomic_store(&any_calls, 0);
    atomic_store(&bad_header_was_null, 0);
    app = tu_app_new();
    if (body_limit != 0)
        ck_assert_int_eq(vg_app_set_body_limit(app, body_limit), 0);
    ck_assert_int_eq(vg_map_get(app, "/hello", h_hello, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/hello/{name}", h_name, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/textf/{n}", h_textf, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/json", h_json, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/nocontent", h_no_content, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/custom", h_custom, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/ctype", h_ctype, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/users/{id}/posts/{post}", h_user_post,
                                NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/files/{*rest}", h_files, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/path/{*rest}", h_path, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/query", h_query, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/header", h_header, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/method", h_method, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/users", h_users, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/users/me", h_user_me, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/users/{id}", h_user_id, NULL), 0);
    ck_assert_int_eq(vg_map_post(app, "/echo", h_echo, NULL), 0);
    ck_assert_int_eq(vg_map_post(app, "/json", h_post_json, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/getonly", h_any, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/both", h_any, NULL), 0);
    ck_assert_int_eq(vg_map_post(app, "/both", h_any, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/null", h_null, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/badheader", h_bad_header, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/big", h_big, NULL), 0);
    tu_start(app);
    port = vg_app_port(app);
}

static void setup(void)
{
    app_up(0);
}

static void setup_small_limit(void)
{
    app_up(SMALL_LIMIT);
}

static void teardown(void)
{
    vg_app_free(app);
    app = NULL;
    port = 0;
}

/* ---- Helpers ---- */

/* GET `path`; asserts the status and, unless NULL, the exact body. The
 * response is freed before asserting so that a failure leaks nothing. */
static void expect_get(const char *path, long status, const char *body)
{
    tu_response r = tu_get(port, path);
    int code = r.curl_code;
    long got = r.status;
    bool body_ok = body == NULL || strcmp(r.body, body) == 0;
    char shown[256];

    snprintf(shown, sizeof shown, "%s", r.body);
    tu_response_free(&r);
    ck_assert_msg(code == CURLE_OK, "GET %s: curl error %d", path, code);
    ck_assert_msg(got == status, "GET %s: status %ld, expected %ld", path, got,
                  status);
    ck_assert_msg(body_ok, "GET %s: body \"%s\", expected \"%s\"", path,
                  shown, body);
}

/* Asserts header `name` of `r` equals `value` (NULL: is absent). */
static void expect_header(const tu_response *r, const char *name,
                          const char *value)
{
    char *got = tu_header(r, name);

    if (value == NULL)
        ck_assert_msg(got == NULL, "header %s: \"%s\", expected none", name,
                      got);
    else
        ck_assert_msg(got != NULL && strcmp(got, value) == 0,
                      "header %s: \"%s\", expected \"%s\"", name,
                      got ? got : "(none)", value);
    free(got);
}

/* How many header lines named `name` the response carries. */
static int header_count(const tu_response *r, const char *name)
{
    size_t nlen = strlen(name);
    const char *line = r->headers;
    int n = 0;

    while (line != NULL && *line) {
        const char *end = strstr(line, "\r\n");
        if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':')
            n++;
        line = end ? end + 2 : NULL;
    }
    return n;
}

/* ---- Results ---- */

START_TEST(test_text_result)
{
    tu_response r = tu_get(port, "/hello");

    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "hello");
    ck_assert_uint_eq(r.body_len, 5);
    expect_header(&r, "Content-Type", "text/plain; charset=utf-8");
    expect_header(&r, "Content-Length", "5");
    tu_response_free(&r);
    expect_get("/textf/41", 200, "n=41 s=x");
    expect_get("/textf/-7", 200, "n=-7 s=x");
}
END_TEST

START_TEST(test_json_result)
{
    tu_response r = tu_get(port, "/json");
    json_error_t err;
    json_t *got, *want;

    ck_assert_int_eq(r.status, 200);
    expect_header(&r, "Content-Type", "application/json");
    got = json_loadb(r.body, r.body_len, 0, &err);
    ck_assert_msg(got != NULL, "body \"%s\" is not JSON: %s", r.body, err.text);
    want = json_pack("{s:s, s:i, s:[i,i], s:b}", "name", "volga", "n", 42,
                     "list", 1, 2, "ok", 1);
    ck_assert(json_is_object(got));
    ck_assert_msg(json_equal(got, want), "unexpected JSON: %s", r.body);
    json_decref(got);
    json_decref(want);
    tu_response_free(&r);
}
END_TEST

START_TEST(test_status_result)
{
    tu_response r = tu_get(port, "/nocontent");

    ck_assert_int_eq(r.curl_code, CURLE_OK);
    ck_assert_int_eq(r.status, 204);
    ck_assert_uint_eq(r.body_len, 0);
    tu_response_free(&r);
}
END_TEST

START_TEST(test_custom_status_and_header)
{
    tu_response r = tu_get(port, "/custom");

    ck_assert_int_eq(r.status, 418);
    ck_assert_str_eq(r.body, "teapot");
    expect_header(&r, "X-Custom", "yes");
    tu_response_free(&r);
}
END_TEST

START_TEST(test_custom_content_type_replaces_default)
{
    tu_response r = tu_get(port, "/ctype");

    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "<p>hi</p>");
    expect_header(&r, "Content-Type", "text/html");
    ck_assert_int_eq(header_count(&r, "Content-Type"), 1);
    tu_response_free(&r);
}
END_TEST

START_TEST(test_handler_null_is_500)
{
    expect_get("/null", 500, NULL);
    /* The app survives it. */
    expect_get("/hello", 200, "hello");
}
END_TEST

START_TEST(test_bad_header_chain_is_500)
{
    tu_response r = tu_get(port, "/badheader");

    ck_assert_int_eq(r.status, 500);
    ck_assert_int_eq(atomic_load(&bad_header_was_null), 1);
    expect_header(&r, "X-After", NULL);
    tu_response_free(&r);
}
END_TEST

START_TEST(test_large_response)
{
    tu_response r = tu_get(port, "/big");
    size_t i, bad = 0;

    ck_assert_int_eq(r.curl_code, CURLE_OK);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body_len, BIG_LEN);
    for (i = 0; i < BIG_LEN; i++)
        if (r.body[i] != big_byte(i))
            bad++;
    ck_assert_uint_eq(bad, 0);
    tu_response_free(&r);
}
END_TEST

/* ---- Parameters, queries, headers ---- */

START_TEST(test_params)
{
    expect_get("/users/7/posts/abc", 200, "7|abc");
    expect_get("/files/a/b/c", 200, "[a/b/c]");
    expect_get("/files/", 200, "[]");
    expect_get("/files/x", 200, "[x]");
}
END_TEST

START_TEST(test_params_percent_decoded)
{
    expect_get("/hello/A%20B", 200, "A B");
    expect_get("/hello/a%2Fb", 200, "a/b");
    expect_get("/hello/%C3%A9t%C3%A9", 200, "\xC3\xA9t\xC3\xA9");
    expect_get("/path/a%20b/c?x=1", 200, "/path/a b/c");
}
END_TEST

START_TEST(test_query)
{
    expect_get("/query?a=1&b=x%20y&flag", 200, "a=1;b=x y;flag=;none=(null)");
    expect_get("/query", 200, "a=(null);b=(null);flag=(null);none=(null)");
    expect_get("/query?a=first&a=second", 200,
               "a=first;b=(null);flag=(null);none=(null)");
}
END_TEST

START_TEST(test_headers_case_insensitive)
{
    static const char *const h1[] = {"X-Test: v", NULL};
    static const char *const h2[] = {"X-TEST: upper", NULL};
    tu_response r = tu_request(port, "GET", "/header", NULL, 0, h1);

    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "v|(null)");
    tu_response_free(&r);
    r = tu_request(port, "GET", "/header", NULL, 0, h2);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "upper|(null)");
    tu_response_free(&r);
}
END_TEST

/* ---- Routing ---- */

START_TEST(test_unknown_path_404)
{
    expect_get("/nope", 404, NULL);
    expect_get("/hello/a/b", 404, NULL);
    expect_get("/users/7/posts", 404, NULL);
    ck_assert_int_eq(atomic_load(&hello_calls), 0);
    ck_assert_int_eq(atomic_load(&name_calls), 0);
}
END_TEST

START_TEST(test_method_not_allowed_405)
{
    tu_response r = tu_request(port, "POST", "/getonly", "x", 1, NULL);

    ck_assert_int_eq(r.status, 405);
    expect_header(&r, "Allow", "GET, HEAD, OPTIONS");
    tu_response_free(&r);

    r = tu_request(port, "DELETE", "/both", NULL, 0, NULL);
    ck_assert_int_eq(r.status, 405);
    expect_header(&r, "Allow", "GET, HEAD, POST, OPTIONS");
    tu_response_free(&r);

    r = tu_request(port, "PUT", "/getonly", NULL, 0, NULL);
    ck_assert_int_eq(r.status, 405);
    tu_response_free(&r);
    /* Refused before any handler ran. */
    ck_assert_int_eq(atomic_load(&any_calls), 0);

    r = tu_request(port, "POST", "/both", "x", 1, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "POST");
    tu_response_free(&r);
}
END_TEST

START_TEST(test_head_on_get_route)
{
    tu_response get = tu_get(port, "/hello");
    tu_response head = tu_request(port, "HEAD", "/hello", NULL, 0, NULL);
    char *get_len = tu_header(&get, "Content-Length");
    char *head_len = tu_header(&head, "Content-Length");

    ck_assert_int_eq(get.status, 200);
    ck_assert_int_eq(head.curl_code, CURLE_OK);
    ck_assert_int_eq(head.status, 200);
    ck_assert_uint_eq(head.body_len, 0);
    ck_assert_ptr_nonnull(get_len);
    ck_assert_ptr_nonnull(head_len);
    ck_assert_str_eq(head_len, get_len);
    ck_assert_str_eq(get_len, "5");
    free(get_len);
    free(head_len);
    tu_response_free(&get);
    tu_response_free(&head);

    /* The handler sees the method as sent. */
    head = tu_request(port, "HEAD", "/method", NULL, 0, NULL);
    ck_assert_int_eq(head.status, 200);
    expect_header(&head, "X-Method", "HEAD");
    expect_header(&head, "Content-Length", "4");
    tu_response_free(&head);
}
END_TEST

START_TEST(test_literal_beats_param)
{
    expect_get("/users/me", 200, "me");
    expect_get("/users/42", 200, "id:42");
    expect_get("/users/mee", 200, "id:mee");
}
END_TEST

START_TEST(test_trailing_slash)
{
    expect_get("/users/", 200, "users");
    expect_get("/users", 200, "users");
    expect_get("/users/me/", 200, "me");
    expect_get("/hello/", 200, "hello");
}
END_TEST

START_TEST(test_nul_in_path_or_query_is_400)
{
    expect_get("/hello%00x", 400, NULL);
    expect_get("/hello%00", 400, NULL);
    expect_get("/hello/a%00b", 400, NULL);
    expect_get("/hello?a=%00", 400, NULL);
    expect_get("/hello?a%00=1", 400, NULL);
    expect_get("/hello?a=1&b=%00", 400, NULL);
    expect_get("/hello?a=%00&b=1", 400, NULL);
    ck_assert_int_eq(atomic_load(&hello_calls), 0);
    ck_assert_int_eq(atomic_load(&name_calls), 0);
    expect_get("/hello", 200, "hello");
    ck_assert_int_eq(atomic_load(&hello_calls), 1);
}
END_TEST

START_TEST(test_dot_segments_do_not_escape)
{
    static const char *const paths[] = {
        "/../etc/passwd", "/../../../../etc/passwd", "/%2e%2e/etc/passwd",
        "/hello/../../etc/passwd",
    };
    size_t i;
    tu_response r;

    for (i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        r = tu_get(port, paths[i]);
        ck_assert_msg(r.status == 404 || r.status == 400,
                      "GET %s: status %ld", paths[i], r.status);
        tu_response_free(&r);
    }
    /* Routed literally when a {*rest} catches it: the handler sees the
     * dots, nothing resolves them against a file system. */
    r = tu_get(port, "/files/../../etc/passwd");
    ck_assert_msg(r.status == 404 || r.status == 400 ||
                      (r.status == 200 &&
                       strcmp(r.body, "[../../etc/passwd]") == 0),
                  "GET /files/../../etc/passwd: %ld \"%s\"", r.status, r.body);
    tu_response_free(&r);
    expect_get("/hello", 200, "hello");
}
END_TEST

/* ---- Bodies ---- */

START_TEST(test_post_body_echo)
{
    tu_response r = tu_request(port, "POST", "/echo", "some body", 9, NULL);

    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "9:some body");
    tu_response_free(&r);

    r = tu_request(port, "POST", "/echo", "", 0, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "0:");
    tu_response_free(&r);
}
END_TEST

START_TEST(test_post_json)
{
    static const char doc[] = "{\"a\":1,\"b\":[true,null],\"c\":\"x\"}";
    tu_response r = tu_request(port, "POST", "/json", doc, sizeof doc - 1, NULL);
    json_t *got, *want;

    ck_assert_int_eq(r.status, 200);
    got = json_loadb(r.body, r.body_len, 0, NULL);
    want = json_loads(doc, 0, NULL);
    ck_assert_ptr_nonnull(got);
    ck_assert_ptr_nonnull(want);
    ck_assert(json_equal(got, want));
    json_decref(got);
    json_decref(want);
    tu_response_free(&r);

    r = tu_request(port, "POST", "/json", "{\"a\":", 5, NULL);
    ck_assert_int_eq(r.status, 400);
    tu_response_free(&r);

    r = tu_request(port, "POST", "/json", "", 0, NULL);
    ck_assert_int_eq(r.status, 400);
    tu_response_free(&r);
}
END_TEST

/* A chunked upload of `len` bytes of 'x' (no Content-Length). */
typedef struct {
    size_t left;
} upload;

static size_t upload_read(char *buf, size_t size, size_t n, void *arg)
{
    upload *u = arg;
    size_t k = size * n;

    if (k > u->left)
        k = u->left;
    if (k > 700)
        k = 700; /* several chunks */
    memset(buf, 'x', k);
    u->left -= k;
    return k;
}

static tu_response post_chunked(const char *path, size_t len)
{
    CURL *c = curl_easy_init();
    struct curl_slist *list = NULL;
    upload u = {len};
    tu_response r;

    ck_assert_ptr_nonnull(c);
    list = curl_slist_append(list, "Transfer-Encoding: chunked");
    list = curl_slist_append(list, "Expect:");
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, upload_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &u);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    r = tu_curl_perform(c, port, path);
    curl_easy_cleanup(c);
    curl_slist_free_all(list);
    return r;
}

static char *x_string(size_t len)
{
    char *s = malloc(len + 1);

    ck_assert_ptr_nonnull(s);
    memset(s, 'x', len);
    s[len] = '\0';
    return s;
}

START_TEST(test_body_limit_content_length)
{
    char *body = x_string(4 * SMALL_LIMIT);
    tu_response r = tu_request(port, "POST", "/echo", body, 4 * SMALL_LIMIT,
                               NULL);

    ck_assert_msg(r.status == 413, "status %ld (curl %d)", r.status,
                  r.curl_code);
    ck_assert_int_eq(atomic_load(&limit_calls), 0);
    tu_response_free(&r);

    /* One byte over. */
    r = tu_request(port, "POST", "/echo", body, SMALL_LIMIT + 1, NULL);
    ck_assert_int_eq(r.status, 413);
    ck_assert_int_eq(atomic_load(&limit_calls), 0);
    tu_response_free(&r);

    /* Exactly at the limit is fine. */
    r = tu_request(port, "POST", "/echo", body, SMALL_LIMIT, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(strncmp(r.body, "1024:xxx", 8), 0);
    ck_assert_uint_eq(r.body_len, 5 + SMALL_LIMIT);
    ck_assert_int_eq(atomic_load(&limit_calls), 1);
    tu_response_free(&r);
    free(body);
}
END_TEST

START_TEST(test_body_limit_chunked)
{
    tu_response r = post_chunked("/echo", 4 * SMALL_LIMIT);

    /* 413, or a connection closed on the upload: never the handler. */
    ck_assert_msg(r.status == 413 || (r.status == 0 && r.curl_code != CURLE_OK),
                  "status %ld (curl %d)", r.status, r.curl_code);
    ck_assert_int_eq(atomic_load(&limit_calls), 0);
    tu_response_free(&r);

    r = post_chunked("/echo", SMALL_LIMIT);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(strncmp(r.body, "1024:xxx", 8), 0);
    ck_assert_uint_eq(r.body_len, 5 + SMALL_LIMIT);
    ck_assert_int_eq(atomic_load(&limit_calls), 1);
    tu_response_free(&r);

    r = post_chunked("/echo", 100);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(strncmp(r.body, "100:xxx", 7), 0);
    tu_response_free(&r);
}
END_TEST

START_TEST(test_default_body_limit)
{
    /* The default limit is 1 MiB: a 512 KiB body is accepted whole. */
    size_t len = 512 * 1024;
    char *body = x_string(BIG_LEN + 1);
    tu_response r = tu_request(port, "POST", "/echo", body, len, NULL);
    long status;
    int code;

    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(strncmp(r.body, "524288:xxx", 10), 0);
    ck_assert_uint_eq(r.body_len, 7 + len);
    ck_assert_int_eq(atomic_load(&limit_calls), 1);
    tu_response_free(&r);

    /* One byte over it is refused before the handler. The 413 goes out
     * while curl is still sending a megabyte, so the client may see the
     * connection reset instead of the answer. */
    r = tu_request(port, "POST", "/echo", body, BIG_LEN + 1, NULL);
    status = r.status;
    code = r.curl_code;
    tu_response_free(&r);
    free(body);
    ck_assert_msg(status == 413 || (status == 0 && code != CURLE_OK),
                  "status %ld (curl %d)", status, code);
    ck_assert_int_eq(atomic_load(&limit_calls), 1);
}
END_TEST

/* ---- Connections ---- */

START_TEST(test_keep_alive_reuse)
{
    CURL *c = curl_easy_init();
    long connects, total = 0;
    int i;

    ck_assert_ptr_nonnull(c);
    for (i = 0; i < 20; i++) {
        tu_response r = tu_curl_perform(c, port, "/hello");
        char *conn;

        ck_assert_int_eq(r.curl_code, CURLE_OK);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(r.body, "hello");
        conn = tu_header(&r, "Connection");
        ck_assert_msg(conn == NULL || strcasecmp(conn, "close") != 0,
                      "response %d says Connection: close", i);
        free(conn);
        ck_assert_int_eq(curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects),
                         CURLE_OK);
        total += connects;
        tu_response_free(&r);
    }
    ck_assert_int_eq(total, 1);
    curl_easy_cleanup(c);
}
END_TEST

#define CONC_THREADS 8
#define CONC_REQUESTS 200

typedef struct {
    int id;
    int ok, bad;
    long last_status;
    char last_body[128];
} conc_worker;

static void *conc_main(void *arg)
{
    conc_worker *w = arg;
    CURL *c = curl_easy_init();
    char path[96], want[64];
    int i;

    if (c == NULL) {
        w->bad = CONC_REQUESTS;
        return NULL;
    }
    for (i = 0; i < CONC_REQUESTS; i++) {
        tu_response r;
        snprintf(want, sizeof want, "t%d-%d", w->id, i);
        snprintf(path, sizeof path, "/hello/%s", want);
        r = tu_curl_perform(c, port, path);
        if (r.status == 200 && strcmp(r.body, want) == 0) {
            w->ok++;
        } else {
            w->bad++;
            w->last_status = r.status;
            snprintf(w->last_body, sizeof w->last_body, "%s", r.body);
        }
        tu_response_free(&r);
    }
    curl_easy_cleanup(c);
    return NULL;
}

START_TEST(test_concurrent_clients)
{
    conc_worker w[CONC_THREADS];
    pthread_t t[CONC_THREADS];
    int i;

    memset(w, 0, sizeof w);
    for (i = 0; i < CONC_THREADS; i++) {
        w[i].id = i;
        ck_assert_int_eq(pthread_create(&t[i], NULL, conc_main, &w[i]), 0);
    }
    for (i = 0; i < CONC_THREADS; i++)
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    for (i = 0; i < CONC_THREADS; i++) {
        ck_assert_msg(w[i].bad == 0,
                      "thread %d: %d bad answers, last %ld \"%s\"", i,
                      w[i].bad, w[i].last_status, w[i].last_body);
        ck_assert_int_eq(w[i].ok, CONC_REQUESTS);
    }
    ck_assert_int_eq(atomic_load(&name_calls), CONC_THREADS * CONC_REQUESTS);
}
END_TEST

#define MANY_CONNS 256

/* Two requests ready at once on each of 256 keep-alive connections: MHD in
 * single-thread epoll mode stalls here (DESIGN.md fact 11). */
START_TEST(test_many_keep_alive_connections)
{
    static const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    struct rlimit rl;
    int fds[MANY_CONNS], i, round;
    char buf[2048];

    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 2 * MANY_CONNS + 256) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ||
                              rl.rlim_max >= 2 * MANY_CONNS + 256
                          ? 2 * MANY_CONNS + 256 : rl.rlim_max;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
        ck_assert_uint_ge(rl.rlim_cur, 2 * MANY_CONNS + 64);
    }
    for (i = 0; i < MANY_CONNS; i++)
        fds[i] = tu_connect(port);
    for (round = 0; round < 2; round++) {
        for (i = 0; i < MANY_CONNS; i++)
            ck_assert(tu_send_all(fds[i], req, sizeof req - 1));
        for (i = 0; i < MANY_CONNS; i++) {
            size_t n = tu_recv_response(fds[i], buf, sizeof buf);
            ck_assert_msg(n > 0, "round %d, connection %d: no response",
                          round, i);
            ck_assert_msg(strncmp(buf, "HTTP/1.1 200 ", 13) == 0,
                          "round %d, connection %d: %s", round, i, buf);
            ck_assert_msg(strcmp(buf + n - 5, "hello") == 0,
                          "round %d, connection %d: %s", round, i, buf);
        }
    }
    for (i = 0; i < MANY_CONNS; i++)
        close(fds[i]);
    ck_assert_int_eq(atomic_load(&hello_calls), 2 * MANY_CONNS);
}
END_TEST

START_TEST(test_http_1_0)
{
    static const char req[] = "GET /hello HTTP/1.0\r\n\r\n";
    char buf[2048];
    int fd = tu_connect(port);
    size_t n;

    ck_assert(tu_send_all(fd, req, sizeof req - 1));
    n = tu_recv_response(fd, buf, sizeof buf);
    ck_assert_uint_gt(n, 0);
    ck_assert_msg(strncmp(buf, "HTTP/1.", 7) == 0 &&
                      strncmp(buf + 8, " 200 ", 5) == 0,
                  "got: %s", buf);
    ck_assert_str_eq(buf + n - 5, "hello");
    /* Without keep-alive asked for, the server closes after answering. */
    ck_assert_int_eq(recv(fd, buf, sizeof buf, 0), 0);
    close(fd);
}
END_TEST

/* ---- Suite ---- */

static TCase *http_tcase(const char *name, void (*up)(void), int timeout)
{
    TCase *tc = tcase_create(name);

    tcase_add_checked_fixture(tc, up, teardown);
    tcase_set_timeout(tc, timeout);
    return tc;
}

static Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc;

    tc = http_tcase("results", setup, 30);
    tcase_add_test(tc, test_text_result);
    tcase_add_test(tc, test_json_result);
    tcase_add_test(tc, test_status_result);
    tcase_add_test(tc, test_custom_status_and_header);
    tcase_add_test(tc, test_custom_content_type_replaces_default);
    tcase_add_test(tc, test_handler_null_is_500);
    tcase_add_test(tc, test_bad_header_chain_is_500);
    tcase_add_test(tc, test_large_response);
    suite_add_tcase(s, tc);

    tc = http_tcase("request", setup, 30);
    tcase_add_test(tc, test_params);
    tcase_add_test(tc, test_params_percent_decoded);
    tcase_add_test(tc, test_query);
    tcase_add_test(tc, test_headers_case_insensitive);
    tcase_add_test(tc, test_post_body_echo);
    tcase_add_test(tc, test_post_json);
    tcase_add_test(tc, test_default_body_limit);
    suite_add_tcase(s, tc);

    tc = http_tcase("routing", setup, 30);
    tcase_add_test(tc, test_unknown_path_404);
    tcase_add_test(tc, test_method_not_allowed_405);
    tcase_add_test(tc, test_head_on_get_route);
    tcase_add_test(tc, test_literal_beats_param);
    tcase_add_test(tc, test_trailing_slash);
    tcase_add_test(tc, test_nul_in_path_or_query_is_400);
    tcase_add_test(tc, test_dot_segments_do_not_escape);
    suite_add_tcase(s, tc);

    tc = http_tcase("body_limit", setup_small_limit, 30);
    tcase_add_test(tc, test_body_limit_content_length);
    tcase_add_test(tc, test_body_limit_chunked);
    suite_add_tcase(s, tc);

    tc = http_tcase("connections", setup, 60);
    tcase_add_test(tc, test_keep_alive_reuse);
    tcase_add_test(tc, test_concurrent_clients);
    tcase_add_test(tc, test_many_keep_alive_connections);
    tcase_add_test(tc, test_http_1_0);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return EXIT_FAILURE;
    sr = srunner_create(http_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
