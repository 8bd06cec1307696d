/* test_cors.c - the CORS policy of lib/web/cors.c on a real app on
 * 127.0.0.1:0: every header of a simple request and of a preflight, with
 * libcurl and (for the bytes on the wire) a raw socket; preflights answered
 * on the event thread whether or not the path has an OPTIONS route, for
 * app and group policies; refused origins, methods and paths; Vary;
 * configuration errors (credentials with a wildcard). The browser's side
 * is tests/test_cors_browser.c. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_getname_np */
#endif
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <volga.h>
#include "testutil.h"

#define SITE "http://site.example:8080"
#define OTHER "http://evil.example"

/* ---- Helpers ---- */

/* How many times each kind of code ran, and where the filter-side answer
 * was made. */
typedef struct {
    atomic_int handler;   /* route handlers */
    atomic_int options;   /* the mapped OPTIONS handler */
    atomic_int middleware;
} counts;

static vg_result *hello(vg_request *req, void *arg)
{
    counts *n = arg;
    (void)req;
    atomic_fetch_add(&n->handler, 1);
    return vg_result_set_header(vg_text("hello\n"), "X-Secret", "42");
}

static vg_result *options_handler(vg_request *req, void *arg)
{
    counts *n = arg;
    (void)req;
    atomic_fetch_add(&n->options, 1);
    return vg_status(200);
}

static vg_result *null_handler(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return NULL;
}

static vg_result *counting_mw(vg_request *req, vg_next *next, void *arg)
{
    counts *n = arg;
    (void)req;
    atomic_fetch_add(&n->middleware, 1);
    return vg_next_run(next);
}

/* Asserts header `name` of `r` is exactly `want` (NULL: absent). */
static void header_is(const tu_response *r, const char *name, const char *want)
{
    char *v = tu_header(r, name);

    if (want == NULL)
        ck_assert_msg(v == NULL, "%s: unexpected \"%s\"", name, v);
    else {
        ck_assert_msg(v != NULL, "%s missing; headers:\n%s", name, r->headers);
        ck_assert_str_eq(v, want);
    }
    free(v);
}

/* Asserts that no Access-Control-* header is in the response. */
static void no_cors(const tu_response *r)
{
    ck_assert_msg(strcasestr(r->headers, "\r\naccess-control-") == NULL,
                  "CORS headers where none belong:\n%s", r->headers);
}

static tu_response get_from(unsigned short port, const char *path,
                            const char *origin)
{
    char line[256];
    const char *h[] = {line, NULL};

    if (origin == NULL)
        return tu_request(port, "GET", path, NULL, 0, NULL);
    snprintf(line, sizeof line, "Origin: %s", origin);
    return tu_request(port, "GET", path, NULL, 0, h);
}

static tu_response preflight(unsigned short port, const char *path,
                             const char *origin, const char *method,
                             const char *headers)
{
    char o[256], m[128], hh[256];
    const char *h[4] = {o, m, NULL, NULL};

    snprintf(o, sizeof o, "Origin: %s", origin);
    snprintf(m, sizeof m, "Access-Control-Request-Method: %s", method);
    if (headers != NULL) {
        snprintf(hh, sizeof hh, "Access-Control-Request-Headers: %s", headers);
        h[2] = hh;
    }
    return tu_request(port, "OPTIONS", path, NULL, 0, h);
}

/* An app with GET/PUT /items, GET /boom (handler returns NULL) and a CORS
 * policy for SITE built by `configure`. */
static vg_app *cors_app(counts *n, vg_cors *c)
{
    vg_app *app = tu_app_new();

    ck_assert_int_eq(vg_map_get(app, "/items", hello, n), 0);
    ck_assert_int_eq(vg_map_put(app, "/items", hello, n), 0);
    ck_assert_int_eq(vg_map_get(app, "/boom", null_handler, NULL), 0);
    ck_assert_int_eq(vg_app_use_cors(app, c), 0);
    return app;
}

/* ---- Simple (actual) requests ---- */

START_TEST(simple_request_from_allowed_origin)
{
    counts n = {0};
    vg_cors *c = vg_cors_new();
    vg_app *app;
    tu_response r;

    ck_assert_int_eq(vg_cors_allow_origin(c, "https://a.example"), 0);
    ck_assert_int_eq(vg_cors_allow_origin(c, SITE), 0);
    ck_assert_int_eq(vg_cors_set_expose_headers(c, "X-Secret, ETag"), 0);
    app = cors_app(&n, c);
    tu_start(app);
    r = get_from(vg_app_port(app), "/items", SITE);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "hello\n");
    header_is(&r, "Access-Control-Allow-Origin", SITE);
    header_is(&r, "Access-Control-Expose-Headers", "X-Secret, ETag");
    header_is(&r, "Vary", "Origin");
    header_is(&r, "Access-Control-Allow-Credentials", NULL);
    header_is(&r, "Access-Control-Allow-Methods", NULL);
    tu_response_free(&r);
    ck_assert_int_eq(atomic_load(&n.handler), 1);
    vg_app_free(app);
    vg_cors_free(c);
}
END_TEST

START_TEST(disallowed_or_missing_origin_gets_no_cors_headers)
{
    counts n = {0};
    vg_cors *c = vg_cors_new();
    vg_app *app;
    tu_response r;

    ck_assert_int_eq(vg_cors_allow_origin(c, SITE), 0);
    ck_assert_int_eq(vg_cors_set_credentials(c, true), 0);
    app = cors_app(&n, c);
    tu_start(app);
    /* Refused: the handler still answers (CORS is the browser's guard),
     * but nothing lets a page read it; Vary says the answer depends on
     * Origin. */
    r = get_from(vg_app_port(app), "/items", OTHER);
    ck_assert_int_eq(r.status, 200);
    no_cors(&r);
    header_is(&r, "Vary", "Origin");
    tu_response_free(&r);
    /* Near misses are other origins. */
    r = get_from(vg_app_port(app), "/items", SITE "/");
    no_cors(&r);
    tu_response_free(&r);
    r = get_from(vg_app_port(app), "/items", "http://site.example:8081");
    no_cors(&r);
    tu_response_free(&r);
    r = get_from(vg_app_port(app), "/items", "null");
    no_cors(&r);
    tu_response_free(&r);
    /* No Origin at all: not a CORS request. */
    r = get_from(vg_app_port(app), "/items", NULL);
    ck_assert_int_eq(r.status, 200);
    no_cors(&r);
    header_is(&r, "Vary", "Origin");
    tu_response_free(&r);
    vg_app_free(app);
    vg_cors_free(c);
}
END_TEST

START_TEST(credentials_echo_the_origin)
{
    counts n = {0};
    vg_cors *c = vg_cors_new();
    vg_app *app;
    tu_response r;

    ck_assert_int_eq(vg_cors_allow_origin(c, SITE), 0);
    ck_assert_int_eq(vg_cors_set_credentials(c, true), 0);
    app = cors_app(&n, c);
    tu_start(app);
    r = get_from(vg_app_port(app), "/items", SITE);
    header_is(&r, "Access-Control-Allow-Origin", SITE);
    header_is(&r, "Access-Control-Allow-Credentials", "true");
    header_is(&r, "Vary", "Origin");
    tu_response_free(&r);
    vg_app_free(app);
    vg_cors_free(c);
}
END_TEST

START_TEST(any_origin_is_a_wildcard_without_vary)
{
    counts n = {0};
    vg_cors *c = vg_cors_new();
    vg_app *app;
    tu_response r;

    ck_assert_int_eq(vg_cors_allow_any_origin(c), 0);
    app = cors_app(&n, c);
    tu_start(app);
    r = get_from(vg_app_port(app), "/items", OTHER);
    header_is(&r, "Access-Control-Allow-Origin", "*");
    header_is(&r, "Vary", NULL);
    header_is(&r, "Access-Control-Allow-Credentials", NULL);
    tu_response_free(&r);
    r = preflight(vg_app_port(app), "/items", OTHER, "PUT", NULL);
    ck_assert_int_eq(r.status, 204);
    header_is(&r, "Access-Control-Allow-Origin", "*");
    header_is(&r, "Vary", NULL);
    tu_response_free(&r);
    vg_app_free(app);
    vg_cors_free(c);
}
END_TEST

/* The headers reach answers the library makes itself, too. */
START_TEST(library_answers_carry_cors_headers)
{
    counts n = {0};
    vg_cors *c = vg_cors_new();
    vg_app *app;
    tu_response r;
    const char *h[] = {"Origin: " SITE, NULL};

    ck_assert_int_eq(vg_cors_allow_origin(c, SITE), 0);
    app = cors_app(&n, c);
    tu_start(app);
    r = get_from(vg_app_port(app), "/nowhere", SITE);
    ck_assert_int_eq(r.status, 404);
    header_is(&r, "Access-Control-Allow-Origin", SITE);
    tu_response_free(&r);
    r = get_from(vg_app_port(app), "/boom", SITE);
    ck_assert_int_eq(r.status, 500);
    header_is(&r, "Access-Control-Allow-Origin", SITE);
    tu_response_free(&r);
    r = tu_request(vg_app_port(app), "DELETE", "/items", NULL, 0, h);
    ck_assert_int_eq(r.status, 405);
    header_is(&r, "Access-Control-Allow-Origin", SITE);
    tu_response_free(&r);
    vg_app_free(app);
    vg_cors_free(c);
}
END_TEST

/* ---- Preflights ---- */

START_TEST(preflight_answered_without_options_route)
{
    counts n = {0};
    vg_cors *c = vg_cors_new();
    vg_app *app;
    tu_response r;

    ck_assert_int_eq(vg_cors_allow_origin(c, SITE), 0);
    ck_assert_int_eq(vg_cors_echo_headers(c), 0);
    ck_assert_int_eq(vg_cors_set_max_age(c, 600), 0);
    app = cors_app(&n, c);
    /* App middleware would put the library's own OPTIONS answer on a
     * worker: the preflight must not get that far. */
    ck_assert_int_eq(vg_app_use(app, counting_mw, &n), 0);
    tu_start(app);
    r = preflight(vg_app_port(app), "/items", SITE, "PUT", "x-token, content-type");
    ck_assert_int_eq(r.status, 204);
    ck_assert_uint_eq(r.body_len, 0);
    header_is(&r, "Access-Control-Allow-Origin", SITE);
    header_is(&r, "Access-Control-Allow-Methods", "GET, HEAD, PUT, OPTIONS");
    header_is(&r, "Access-Control-Allow-Headers", "x-token, content-type");
    header_is(&r, "Access-Control-Max-Age", "600");
    header_is(&r, "Vary", "Origin, Access-Control-Request-Headers");
    header_is(&r, "Access-Control-Allow-Credentials", NULL);
    tu_response_free(&r);
    ck_assert_int_eq(atomic_load(&n.middleware), 0);
    ck_assert_int_eq(atomic_load(&n.handler), 0);
    vg_app_free(app);
    vg_cors_free(c);
}
END_TEST

START_TEST(preflight_answered_before_options_route)
{
    counts n = {0};
    vg_cors *c = vg_cors_new();
    vg_app *app;
    tu_response r;

    ck_assert_int_eq(vg_cors_allow_origin(c, SITE), 0);
    ck_assert_int_eq(vg_cors_set_headers(c, "X-Token"), 0);
    app = cors_app(&n, c);
    ck_assert_int_eq(vg_map(app, "OPTIONS", "/items", options_handler, &n), 0);
    tu_start(app);
    r = preflight(vg_app_port(app), "/items", SITE, "PUT", "x-token");
    ck_assert_int_eq(r.status, 204);
    header_is(&r, "Access-Control-Allow-Methods", "GET, HEAD, PUT, OPTIONS");
    header_is(&r, "Access-Control-Allow-Headers", "X-Token");
    header_is(&r, "Access-Control-Max-Age", NULL);
    header_is(&r, "Vary", "Origin");
    tu_response_free(&r);
    ck_assert_int_eq(atomic_load(&n.options), 0);
    /* A plain OPTIONS (no Access-Control-Request-Method) is the route's. */
    r = get_from(vg_app_port(app), "/items", SITE);
    tu_response_free(&r);
    {
        const char *h[] = {"Origin: " SITE, NULL};
        r = tu_request(vg_app_port(app), "OPTIONS", "/items", NULL, 0, h);
    }
    ck_assert_int_eq(r.status, 200);
    header_is(&r, "Access-Control-Allow-Origin", SITE);
    tu_response_free(&r);
    ck_assert_int_eq(atomic_load(&n.options), 1);
    vg_app_free(app);
    vg_cors_free(c);
}
END_TEST

START_TEST(preflight_refused_for_unrouted_method_path_or_origin)
{
    counts n = {0};
    vg_cors *c = vg_cors_new();
    vg_app *app;
    tu_response r;

    ck_assert_int_eq(vg_cors_allow_origin(c, SITE), 0);
    ck_assert_int_eq(vg_cors_set_methods(c, "GET, PUT"), 0);
    app = cors_app(&n, c);
    ck_assert_int_eq(vg_map_delete(app, "/other", hello, &n), 0);
    tu_start(app);
    /* The path does not route DELETE: the library's OPTIONS answer, with
     * no CORS header. */
    r = preflight(vg_app_port(app), "/items", SITE, "DELETE", NULL);
    ck_assert_int_eq(r.status, 204);
    no_cors(&r);
    header_is(&r, "Allow", "GET, HEAD, PUT, OPTIONS");
    header_is(&r, "Vary", "Origin");
    tu_response_free(&r);
    /* Routed, but outside the policy's methods. */
    r = preflight(vg_app_port(app), "/other", SITE, "DELETE", NULL);
    no_cors(&r);
    tu_response_free(&r);
    /* No such path. */
    r = preflight(vg_app_port(app), "/nowhere", SITE, "GET", NULL);
    ck_assert_int_eq(r.status, 404);
    no_cors(&r);
    tu_response_free(&r);
    /* Disallowed origin. */
    r = preflight(vg_app_port(app), "/items", OTHER, "PUT", NULL);
    no_cors(&r);
    tu_response_free(&r);
    /* The policy's own list is what is allowed. */
    r = preflight(vg_app_port(app), "/items", SITE, "PUT", NULL);
    ck_assert_int_eq(r.status, 204);
    header_is(&r, "Access-Control-Allow-Methods", "GET, PUT");
    header_is(&r, "Access-Control-Allow-Headers", NULL);
    tu_response_free(&r);
    /* Method names are case-sensitive. */
    r = preflight(vg_app_port(app), "/items", SITE, "put", NULL);
    no_cors(&r);
    tu_response_free(&r);
    ck_assert_int_eq(atomic_load(&n.handler), 0);
    vg_app_free(app);
    vg_cors_free(c);
}
END_TEST

/* Echoing a header list that is not one would let anything into the
 * answer: such a preflight gets no CORS headers. */
START_TEST(preflight_with_bad_request_headers_not_echoed)
{
    counts n = {0};
    vg_cors *c = vg_cors_new();
    vg_app *app;
    tu_response r;

    ck_assert_int_eq(vg_cors_allow_origin(c, SITE), 0);
    ck_assert_int_eq(vg_cors_echo_headers(c), 0);
    app = cors_app(&n, c);
    tu_start(app);
    r = preflight(vg_app_port(app), "/items", SITE, "PUT", "x-a, , x-b");
    no_cors(&r);
    tu_response_free(&r);
    r = preflight(vg_app_port(app), "/items", SITE, "PUT", "x-a; evil=1");
    no_cors(&r);
    tu_response_free(&r);
    vg_app_free(app);
    vg_cors_free(c);
}
END_TEST

/* The exact bytes of a preflight's answer, read from a raw socket. */
START_TEST(preflight_bytes_on_the_wire)
{
    counts n = {0};
    vg_cors *c = vg_cors_new();
    vg_app *app;
    char buf[4096];
    static const char req[] =
        "OPTIONS /items HTTP/1.1\r\nHost: x\r\nOrigin: " SITE "\r\n"
        "Access-Control-Request-Method: PUT\r\n"
        "Access-Control-Request-Headers: X-Token\r\n"
        "Connection: close\r\n\r\n";
    int fd;

    ck_assert_int_eq(vg_cors_allow_origin(c, SITE), 0);
    ck_assert_int_eq(vg_cors_set_credentials(c, true), 0);
    ck_assert_int_eq(vg_cors_set_headers(c, "X-Token"), 0);
    ck_assert_int_eq(vg_cors_set_max_age(c, 0), 0);
    app = cors_app(&n, c);
    tu_start(app);
    fd = tu_connect(vg_app_port(app));
    ck_assert(tu_send_all(fd, req, sizeof req - 1));
    ck_assert_uint_gt(tu_recv_all(fd, buf, sizeof buf), 0);
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 204 ", 13) == 0, "%s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "\r\nAccess-Control-Allow-Origin: " SITE "\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "\r\nAccess-Control-Allow-Credentials: true\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "\r\nAccess-Control-Allow-Methods: GET, HEAD, PUT, OPTIONS\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "\r\nAccess-Control-Allow-Headers: X-Token\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "\r\nAccess-Control-Max-Age: 0\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "\r\nVary: Origin\r\n"));
    /* Exactly one of each: nothing is added twice. */
    ck_assert_ptr_null(strstr(strstr(buf, "Access-Control-Allow-Origin") + 1,
                              "Access-Control-Allow-Origin"));
    ck_assert_ptr_null(strstr(strstr(buf, "\r\nVary") + 1, "\r\nVary"));
    vg_app_free(app);
    vg_cors_free(c);
}
END_TEST

/* ---- Groups ---- */

START_TEST(group_policy_applies_to_its_routes_only)
{
    counts n = {0};
    vg_cors *c = vg_cors_new();
    vg_app *app = tu_app_new();
    vg_group *api = vg_app_group(app, "/api");
    vg_group *v1;
    tu_response r;

    ck_assert_ptr_nonnull(api);
    v1 = vg_group_group(api, "/v1");
    ck_assert_ptr_nonnull(v1);
    ck_assert_int_eq(vg_cors_allow_origin(c, SITE), 0);
    ck_assert_int_eq(vg_group_use_cors(api, c), 0);
    ck_assert_int_eq(vg_group_map_put(v1, "/items/{id}", hello, &n), 0);
    ck_assert_int_eq(vg_group_map_get(api, "/items", hello, &n), 0);
    ck_assert_int_eq(vg_map_put(app, "/items/{id}", hello, &n), 0);
    ck_assert_int_eq(vg_app_use(app, counting_mw, &n), 0);
    tu_start(app);
    /* A nested group's route, no OPTIONS route: answered by the group's
     * filter. */
    r = preflight(vg_app_port(app), "/api/v1/items/7", SITE, "PUT", NULL);
    ck_assert_int_eq(r.status, 204);
    header_is(&r, "Access-Control-Allow-Origin", SITE);
    header_is(&r, "Access-Control-Allow-Methods", "PUT, OPTIONS");
    tu_response_free(&r);
    r = get_from(vg_app_port(app), "/api/items", SITE);
    header_is(&r, "Access-Control-Allow-Origin", SITE);
    tu_response_free(&r);
    /* Outside the group: no policy. */
    r = preflight(vg_app_port(app), "/items/7", SITE, "PUT", NULL);
    ck_assert_int_eq(r.status, 204);
    no_cors(&r);
    tu_response_free(&r);
    r = get_from(vg_app_port(app), "/nowhere", SITE);
    no_cors(&r);
    tu_response_free(&r);
    /* Only the last two reached the app's middleware (the library's own
     * OPTIONS answer and the 404), never the group's preflight. */
    ck_assert_int_eq(atomic_load(&n.middleware), 3);
    vg_app_free(app);
    vg_cors_free(c);
}
END_TEST

/* ---- Configuration ---- */

START_TEST(credentials_with_wildcard_refused_at_configuration)
{
    vg_cors *c = vg_cors_new();

    ck_assert_int_eq(vg_cors_allow_any_origin(c), 0);
    ck_assert_int_eq(vg_cors_set_credentials(c, true), -EINVAL);
    vg_cors_free(c);

    c = vg_cors_new();
    ck_assert_int_eq(vg_cors_set_credentials(c, true), 0);
    ck_assert_int_eq(vg_cors_allow_any_origin(c), -EINVAL);
    ck_assert_int_eq(vg_cors_set_headers(c, "X-A, *"), -EINVAL);
    ck_assert_int_eq(vg_cors_set_methods(c, "*"), -EINVAL);
    ck_assert_int_eq(vg_cors_set_expose_headers(c, "*"), -EINVAL);
    ck_assert_int_eq(vg_cors_set_credentials(c, false), 0);
    ck_assert_int_eq(vg_cors_set_headers(c, "*"), 0);
    ck_assert_int_eq(vg_cors_set_credentials(c, true), -EINVAL);
    vg_cors_free(c);
}
END_TEST

START_TEST(bad_configuration_refused)
{
    vg_cors *c = vg_cors_new();
    vg_app *app = tu_app_new();
    counts n = {0};

    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(vg_cors_allow_origin(c, "*"), -EINVAL);
    ck_assert_int_eq(vg_cors_allow_origin(c, "site.example"), -EINVAL);
    ck_assert_int_eq(vg_cors_allow_origin(c, "https://a.example/path"), -EINVAL);
    ck_assert_int_eq(vg_cors_allow_origin(c, "https://a.example\r\nX: y"), -EINVAL);
    ck_assert_int_eq(vg_cors_allow_origin(c, "https://"), -EINVAL);
    ck_assert_int_eq(vg_cors_allow_origin(c, "://a.example"), -EINVAL);
    ck_assert_int_eq(vg_cors_allow_origin(c, NULL), -EINVAL);
    ck_assert_int_eq(vg_cors_set_methods(c, "GET,,PUT"), -EINVAL);
    ck_assert_int_eq(vg_cors_set_methods(c, "GET PUT"), -EINVAL);
    ck_assert_int_eq(vg_cors_set_methods(c, "GET ,PUT"), 0);
    ck_assert_int_eq(vg_cors_set_headers(c, "X-A\r\n"), -EINVAL);
    ck_assert_int_eq(vg_cors_set_headers(c, ""), -EINVAL);
    ck_assert_int_eq(vg_cors_set_max_age(c, -2), -EINVAL);
    ck_assert_int_eq(vg_cors_set_max_age(NULL, 5), -EINVAL);
    /* A policy allowing no origin is a mistake. */
    ck_assert_int_eq(vg_app_use_cors(app, c), -EINVAL);
    ck_assert_int_eq(vg_app_use_cors(app, NULL), -EINVAL);
    ck_assert_int_eq(vg_group_use_cors(NULL, c), -EINVAL);
    ck_assert_int_eq(vg_cors_allow_origin(c, SITE), 0);
    ck_assert_int_eq(vg_cors_set_methods(c, NULL), 0);
    ck_assert_int_eq(vg_app_use_cors(app, c), 0);
    /* Attached: frozen. */
    ck_assert_int_eq(vg_cors_allow_origin(c, OTHER), -EBUSY);
    ck_assert_int_eq(vg_cors_set_credentials(c, true), -EBUSY);
    ck_assert_int_eq(vg_cors_set_max_age(c, 1), -EBUSY);
    ck_assert_int_eq(vg_cors_echo_headers(c), -EBUSY);
    ck_assert_int_eq(vg_map_get(app, "/items", hello, &n), 0);
    tu_start(app);
    ck_assert_int_eq(vg_app_use_cors(app, c), -EBUSY);
    vg_app_free(app);
    vg_cors_free(c);
    vg_cors_free(NULL);
}
END_TEST

static Suite *cors_suite(void)
{
    Suite *s = suite_create("cors");
    TCase *tc = tcase_create("cors");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, simple_request_from_allowed_origin);
    tcase_add_test(tc, disallowed_or_missing_origin_gets_no_cors_headers);
    tcase_add_test(tc, credentials_echo_the_origin);
    tcase_add_test(tc, any_origin_is_a_wildcard_without_vary);
    tcase_add_test(tc, library_answers_carry_cors_headers);
    tcase_add_test(tc, preflight_answered_without_options_route);
    tcase_add_test(tc, preflight_answered_before_options_route);
    tcase_add_test(tc, preflight_refused_for_unrouted_method_path_or_origin);
    tcase_add_test(tc, preflight_with_bad_request_headers_not_echoed);
    tcase_add_test(tc, preflight_bytes_on_the_wire);
    tcase_add_test(tc, group_policy_applies_to_its_routes_only);
    tcase_add_test(tc, credentials_with_wildcard_refused_at_configuration);
    tcase_add_test(tc, bad_configuration_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(cors_suite());
}
