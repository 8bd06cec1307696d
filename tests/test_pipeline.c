/* test_pipeline.c - what runs around a handler: middleware (order,
 * unwinding, short-circuits, decoration, replacement, EALREADY), route
 * groups (prefixes, deadlines), the library's own answers through app
 * middleware (404, 405, OPTIONS, the fallback), deferred and streamed
 * results through a chain, problem documents, the error handler, filters,
 * completion hooks, header iteration, request data and configuration
 * errors. Integration tests on a real app on 127.0.0.1:0, with libcurl
 * and raw sockets; every wait is on a latch or a token, bounded. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_getname_np */
#endif
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <volga.h>
#include "model/result.h" /* vg__result_take_body, to read a problem's body */
#include "testutil.h"

/* Generous upper bound for anything a test waits on. */
#define WAIT_MS 10000

/* ---- Small helpers ---- */

/* The calling thread's name ("vg-worker", "vg-event"...). */
static void thread_name(char *buf, size_t len)
{
    if (pthread_getname_np(pthread_self(), buf, len) != 0)
        snprintf(buf, len, "?");
}

static bool on_worker_thread(void)
{
    char name[32];

    thread_name(name, sizeof name);
    return strcmp(name, "vg-worker") == 0;
}

/* The event threads that run libmicrohttpd are "vg-event" (lib/engine/engine.c). */
static bool on_mhd_thread(void)
{
    char name[32];

    thread_name(name, sizeof name);
    return strcmp(name, "vg-event") == 0;
}

/* Asserts GET/... `path` answers `status`; returns the response. */
static tu_response expect(unsigned short port, const char *method,
                          const char *path, long status)
{
    tu_response r = tu_request(port, method, path, NULL, 0, NULL);

    ck_assert_msg(r.status == status, "%s %s: got %ld, want %ld (%s)",
                  method, path, r.status, status, r.body);
    return r;
}

/* Asserts header `name` of `r` is `want` (NULL: absent). */
static void expect_header(const tu_response *r, const char *name,
                          const char *want)
{
    char *v = tu_header(r, name);

    if (want == NULL)
        ck_assert_msg(v == NULL, "%s: unexpected value %s", name, v);
    else {
        ck_assert_msg(v != NULL, "%s: missing", name);
        ck_assert_str_eq(v, want);
    }
    free(v);
}

/* expect() for a response whose one header `name` is all that matters
 * (`want` NULL: absent). */
static void expect_with(unsigned short port, const char *method,
                        const char *path, long status, const char *name,
                        const char *want)
{
    tu_response r = expect(port, method, path, status);

    expect_header(&r, name, want);
    tu_response_free(&r);
}

/* expect() for a response whose status is all that matters. */
static void expect_status(unsigned short port, const char *method,
                          const char *path, long status)
{
    tu_response r = expect(port, method, path, status);

    tu_response_free(&r);
}

/* The value of header `name` in a raw response (up to its blank line),
 * malloc'd, or NULL. */
static char *raw_header(const char *resp, const char *name)
{
    const char *end = strstr(resp, "\r\n\r\n");
    tu_response r = {0};
    char *head, *v;

    ck_assert_ptr_nonnull(end);
    head = strndup(resp, (size_t)(end - resp) + 2);
    ck_assert_ptr_nonnull(head);
    r.headers = head;
    v = tu_header(&r, name);
    free(head);
    return v;
}

/* Sends `request` on `fd` and reads one whole response into buf. */
static void raw_exchange(int fd, const char *request, char *buf, size_t cap)
{
    ck_assert(tu_send_all(fd, request, strlen(request)));
    ck_assert_msg(tu_recv_response(fd, buf, cap) > 0,
                  "no response to %s", request);
}

static vg_result *hello(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_text("hello");
}

/* Waits on its token (at most WAIT_MS) and returns NULL: a slow handler
 * whose answer is whatever the library makes of its cancellation. The
 * reason is stored in `arg` (an atomic_int) when given. */
static vg_result *wait_for_cancel(vg_request *req, void *arg)
{
    vg_token *tok = vg_request_token(req);

    vg_token_wait(tok, WAIT_MS);
    if (arg != NULL)
        atomic_store((atomic_int *)arg, (int)vg_token_reason(tok));
    return NULL;
}

/* A handler that counts its calls in `arg` (an atomic_int). */
static vg_result *counted(vg_request *req, void *arg)
{
    (void)req;
    atomic_fetch_add((atomic_int *)arg, 1);
    return vg_result_set_header(vg_text("handled"), "X-Handler", "yes");
}

/* A middleware that counts its calls in `arg` and passes through. */
static vg_result *mw_count(vg_request *req, vg_next *next, void *arg)
{
    (void)req;
    atomic_fetch_add((atomic_int *)arg, 1);
    return vg_next_run(next);
}

/* ---- A trace of the chain, kept in request data ---- */

typedef struct {
    char text[512];
} trace;

static const char trace_key = 't';

static trace *trace_of(vg_request *req)
{
    trace *t = vg_request_data(req, &trace_key);

    if (t == NULL) {
        t = calloc(1, sizeof *t);
        if (t == NULL || vg_request_set_data(req, &trace_key, t, free) != 0)
            return NULL;
    }
    return t;
}

static void trace_add(vg_request *req, const char *step)
{
    trace *t = trace_of(req);
    size_t n;

    if (t == NULL)
        return;
    n = strlen(t->text);
    snprintf(t->text + n, sizeof t->text - n, "%s%s", n ? " " : "", step);
}

/* Records ">name" before the rest of the chain and "<name" after it. */
static vg_result *mw_trace(vg_request *req, vg_next *next, void *arg)
{
    char step[64];
    vg_result *res;

    snprintf(step, sizeof step, ">%s", (const char *)arg);
    trace_add(req, step);
    res = vg_next_run(next);
    snprintf(step, sizeof step, "<%s", (const char *)arg);
    trace_add(req, step);
    return res;
}

/* The outermost: traces like mw_trace, then puts the trace in X-Trace. */
static vg_result *mw_trace_outer(vg_request *req, vg_next *next, void *arg)
{
    vg_result *res = mw_trace(req, next, arg);
    trace *t = trace_of(req);

    return vg_result_set_header(res, "X-Trace", t ? t->text : "?");
}

static vg_result *h_trace(vg_request *req, void *arg)
{
    (void)arg;
    trace_add(req, "handler");
    return vg_text("traced");
}

static void expect_trace(unsigned short port, const char *path,
                         const char *want)
{
    tu_response r = expect(port, "GET", path, 200);

    ck_assert_str_eq(r.body, "traced");
    expect_header(&r, "X-Trace", want);
    tu_response_free(&r);
}

START_TEST(middleware_runs_app_then_outer_then_inner_group_and_unwinds)
{
    vg_app *app = tu_app_new();
    vg_group *api, *v1, *other;
    unsigned short port;

    ck_assert_int_eq(vg_app_use(app, mw_trace_outer, "app1"), 0);
    ck_assert_int_eq(vg_app_use(app, mw_trace, "app2"), 0);
    ck_assert_int_eq(vg_app_use(app, mw_trace, "app3"), 0);
    api = vg_app_group(app, "/api");
    ck_assert_ptr_nonnull(api);
    ck_assert_int_eq(vg_group_use(api, mw_trace, "api"), 0);
    v1 = vg_group_group(api, "/v1");
    ck_assert_ptr_nonnull(v1);
    ck_assert_int_eq(vg_group_use(v1, mw_trace, "v1a"), 0);
    ck_assert_int_eq(vg_group_use(v1, mw_trace, "v1b"), 0);
    other = vg_app_group(app, "/other");
    ck_assert_ptr_nonnull(other);
    ck_assert_int_eq(vg_group_use(other, mw_trace, "other"), 0);
    ck_assert_int_eq(vg_group_map_get(v1, "/users/{id}", h_trace, NULL), 0);
    ck_assert_int_eq(vg_group_map_get(api, "/ping", h_trace, NULL), 0);
    ck_assert_int_eq(vg_group_map_get(other, "/x", h_trace, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/plain", h_trace, NULL), 0);
    tu_start(app);
    port = vg_app_port(app);

    expect_trace(port, "/api/v1/users/7",
                 ">app1 >app2 >app3 >api >v1a >v1b handler "
                 "<v1b <v1a <api <app3 <app2 <app1");
    expect_trace(port, "/api/ping",
                 ">app1 >app2 >app3 >api handler <api <app3 <app2 <app1");
    expect_trace(port, "/other/x",
                 ">app1 >app2 >app3 >other handler <other <app3 <app2 <app1");
    expect_trace(port, "/plain", ">app1 >app2 >app3 handler <app3 <app2 <app1");
    vg_app_free(app);
}
END_TEST

/* Answers 401 (a problem document) without calling the rest of the chain
 * unless the request carries an Authorization header. */
static vg_result *mw_auth(vg_request *req, vg_next *next, void *arg)
{
    (void)arg;
    if (vg_request_header(req, "Authorization") == NULL)
        return vg_result_set_header(vg_problem(401, "no credentials"),
                                    "WWW-Authenticate", "Bearer");
    return vg_next_run(next);
}

START_TEST(middleware_short_circuits_with_401_and_handler_never_runs)
{
    vg_app *app = tu_app_new();
    atomic_int handled = 0, inner = 0;
    const char *auth[] = {"Authorization: Bearer x", NULL};
    unsigned short port;
    tu_response r;

    ck_assert_int_eq(vg_app_use(app, mw_auth, NULL), 0);
    ck_assert_int_eq(vg_app_use(app, mw_count, &inner), 0);
    ck_assert_int_eq(vg_map_get(app, "/secret", counted, &handled), 0);
    tu_start(app);
    port = vg_app_port(app);

    r = expect(port, "GET", "/secret", 401);
    expect_header(&r, "WWW-Authenticate", "Bearer");
    expect_header(&r, "Content-Type", "application/problem+json");
    expect_header(&r, "X-Handler", NULL);
    tu_response_free(&r);
    ck_assert_int_eq(atomic_load(&handled), 0);
    ck_assert_int_eq(atomic_load(&inner), 0);

    r = tu_request(port, "GET", "/secret", NULL, 0, auth);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "handled");
    tu_response_free(&r);
    ck_assert_int_eq(atomic_load(&handled), 1);
    ck_assert_int_eq(atomic_load(&inner), 1);
    vg_app_free(app);
}
END_TEST

/* Adds a header to whatever came back, saying which status it saw. */
static vg_result *mw_decorate(vg_request *req, vg_next *next, void *arg)
{
    vg_result *res = vg_next_run(next);
    char seen[16];

    (void)req;
    (void)arg;
    snprintf(seen, sizeof seen, "%u", vg_result_status(res));
    return vg_result_set_header(res, "X-Decorated", seen);
}

START_TEST(middleware_decorates_the_result_that_came_back)
{
    vg_app *app = tu_app_new();
    atomic_int handled = 0;
    tu_response r;

    ck_assert_int_eq(vg_app_use(app, mw_decorate, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/x", counted, &handled), 0);
    tu_start(app);
    r = expect(vg_app_port(app), "GET", "/x", 200);
    ck_assert_str_eq(r.body, "handled");
    expect_header(&r, "X-Handler", "yes");
    expect_header(&r, "X-Decorated", "200");
    tu_response_free(&r);
    ck_assert_int_eq(atomic_load(&handled), 1);
    vg_app_free(app);
}
END_TEST

/* Frees what came back and answers something else. */
static vg_result *mw_replace(vg_request *req, vg_next *next, void *arg)
{
    vg_result *res = vg_next_run(next);
    unsigned status = vg_result_status(res);

    (void)req;
    (void)arg;
    vg_result_free(res);
    return vg_result_set_status(vg_textf("replaced %u", status), 202);
}

START_TEST(middleware_replaces_the_result_and_frees_the_old_one)
{
    vg_app *app = tu_app_new();
    atomic_int handled = 0;
    tu_response r;

    ck_assert_int_eq(vg_app_use(app, mw_replace, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/x", counted, &handled), 0);
    tu_start(app);
    r = expect(vg_app_port(app), "GET", "/x", 202);
    ck_assert_str_eq(r.body, "replaced 200");
    expect_header(&r, "X-Handler", NULL);
    tu_response_free(&r);
    ck_assert_int_eq(atomic_load(&handled), 1);
    vg_app_free(app);
}
END_TEST

/* Calls vg_next_run a second time and with NULL, and reports the errno of
 * each in a header. */
static vg_result *mw_twice(vg_request *req, vg_next *next, void *arg)
{
    vg_result *res = vg_next_run(next), *again, *none;
    int e_again, e_none;

    (void)req;
    (void)arg;
    errno = 0;
    again = vg_next_run(next);
    e_again = errno;
    errno = 0;
    none = vg_next_run(NULL);
    e_none = errno;
    res = vg_result_set_header(res, "X-Again",
                               again == NULL && e_again == EALREADY
                                   ? "EALREADY" : "wrong");
    return vg_result_set_header(res, "X-Null",
                                none == NULL && e_none == EINVAL ? "EINVAL"
                                                                 : "wrong");
}

START_TEST(next_run_twice_is_ealready_and_null_next_is_einval)
{
    vg_app *app = tu_app_new();
    atomic_int handled = 0;
    tu_response r;

    ck_assert_int_eq(vg_app_use(app, mw_twice, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/x", counted, &handled), 0);
    tu_start(app);
    r = expect(vg_app_port(app), "GET", "/x", 200);
    expect_header(&r, "X-Again", "EALREADY");
    expect_header(&r, "X-Null", "EINVAL");
    tu_response_free(&r);
    ck_assert_int_eq(atomic_load(&handled), 1); /* never twice */
    vg_app_free(app);
}
END_TEST

/* Returns NULL: after freeing what came back, or without calling next. */
static vg_result *mw_null_after(vg_request *req, vg_next *next, void *arg)
{
    (void)req;
    (void)arg;
    vg_result_free(vg_next_run(next));
    return NULL;
}

static vg_result *mw_null_before(vg_request *req, vg_next *next, void *arg)
{
    (void)req;
    (void)next;
    (void)arg;
    return NULL;
}

START_TEST(middleware_returning_null_answers_500)
{
    vg_app *app = tu_app_new();
    atomic_int handled = 0;
    vg_group *after = vg_app_group(app, "/after");
    vg_group *before = vg_app_group(app, "/before");

    ck_assert_int_eq(vg_group_use(after, mw_null_after, NULL), 0);
    ck_assert_int_eq(vg_group_use(before, mw_null_before, NULL), 0);
    ck_assert_int_eq(vg_group_map_get(after, "/x", counted, &handled), 0);
    ck_assert_int_eq(vg_group_map_get(before, "/x", counted, &handled), 0);
    tu_start(app);
    expect_with(vg_app_port(app), "GET", "/after/x", 500, "X-Handler", NULL);
    ck_assert_int_eq(atomic_load(&handled), 1);
    expect_status(vg_app_port(app), "GET", "/before/x", 500);
    ck_assert_int_eq(atomic_load(&handled), 1);
    vg_app_free(app);
}
END_TEST

/* ---- Groups ---- */

/* Answers with its route and its {id}, if any. */
static vg_result *h_route(vg_request *req, void *arg)
{
    const char *id = vg_request_param(req, "id");

    (void)arg;
    return vg_textf("%s id=%s", vg_request_route(req), id ? id : "-");
}

static void expect_body(unsigned short port, const char *path,
                        const char *want)
{
    tu_response r = expect(port, "GET", path, 200);

    ck_assert_str_eq(r.body, want);
    tu_response_free(&r);
}

START_TEST(nested_group_prefixes_are_joined)
{
    vg_app *app = tu_app_new();
    vg_group *api, *v1, *root, *v2;
    unsigned short port;

    api = vg_app_group(app, "/api");
    v1 = vg_group_group(api, "/v1");
    root = vg_app_group(app, "/");
    ck_assert_ptr_nonnull(api);
    ck_assert_ptr_nonnull(v1);
    ck_assert_ptr_nonnull(root);
    v2 = vg_group_group(root, "/v2");
    ck_assert_ptr_nonnull(v2);
    ck_assert_int_eq(vg_group_map_get(v1, "/users/{id}", h_route, NULL), 0);
    ck_assert_int_eq(vg_group_map_get(v1, "/", h_route, NULL), 0);
    ck_assert_int_eq(vg_group_map_get(api, "/", h_route, NULL), 0);
    ck_assert_int_eq(vg_group_map_get(root, "/health", h_route, NULL), 0);
    ck_assert_int_eq(vg_group_map_get(v2, "/x", h_route, NULL), 0);
    tu_start(app);
    port = vg_app_port(app);

    expect_body(port, "/api/v1/users/7", "/api/v1/users/{id} id=7");
    expect_body(port, "/api/v1", "/api/v1 id=-");
    expect_body(port, "/api/v1/", "/api/v1 id=-"); /* one trailing slash */
    expect_body(port, "/api", "/api id=-");
    expect_body(port, "/health", "/health id=-");
    expect_body(port, "/v2/x", "/v2/x id=-");
    expect_status(port, "GET", "/api/users/7", 404);
    expect_status(port, "GET", "/v1/users/7", 404);
    vg_app_free(app);
}
END_TEST

START_TEST(group_timeout_answers_504_for_a_slow_handler)
{
    vg_app *app = tu_app_new();
    vg_group *g = vg_app_group(app, "/slow");
    atomic_int reason = -1;

    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(vg_group_set_timeout(g, 100), 0);
    ck_assert_int_eq(vg_group_map_get(g, "/x", wait_for_cancel, &reason), 0);
    ck_assert_int_eq(vg_map_get(app, "/fast", hello, NULL), 0);
    tu_start(app);
    expect_status(vg_app_port(app), "GET", "/slow/x", 504);
    expect_status(vg_app_port(app), "GET", "/fast", 200);
    vg_app_free(app); /* waits for the handler */
    ck_assert_int_eq(atomic_load(&reason), VG_CANCEL_TIMEOUT);
}
END_TEST

/* Holds the request until `release` is cancelled or its own token fires
 * (both watched with poll()), then says whether its own token fired. */
typedef struct {
    tu_latch started;
    vg_token *release;
} holder;

static vg_result *h_hold(vg_request *req, void *arg)
{
    holder *h = arg;
    vg_token *tok = vg_request_token(req);
    struct pollfd fds[2];

    fds[0].fd = vg_token_fd(tok);
    fds[1].fd = vg_token_fd(h->release);
    fds[0].events = fds[1].events = POLLIN;
    tu_latch_add(&h->started, 1);
    if (fds[0].fd < 0 || fds[1].fd < 0)
        return NULL;
    poll(fds, 2, WAIT_MS);
    return vg_text(vg_token_is_cancelled(tok) ? "cancelled" : "no deadline");
}

/* A request made on a thread of its own. */
typedef struct {
    unsigned short port;
    const char *method, *path;
    tu_response r;
    pthread_t thread;
} client;

static void *client_main(void *arg)
{
    client *c = arg;

    c->r = tu_request(c->port, c->method, c->path, NULL, 0, NULL);
    return NULL;
}

static void client_start(client *c, unsigned short port, const char *method,
                         const char *path)
{
    memset(c, 0, sizeof *c);
    c->port = port;
    c->method = method;
    c->path = path;
    ck_assert_int_eq(pthread_create(&c->thread, NULL, client_main, c), 0);
}

static void client_join(client *c)
{
    pthread_join(c->thread, NULL);
}

/* App: no deadline. Group /to: 100 ms. Its nested group /to/none: 0 (none)
 * of its own, which wins over /to's; a route of /to given 0 by
 * vg_map_timeout on its joined pattern is exempt; a route of /to/none given
 * 100 ms the same way gets 504. The held requests are released only after
 * two 100 ms deadlines that started after them have passed, so their
 * having no deadline shows without a sleep. */
START_TEST(nested_group_timeout_and_route_timeout_win)
{
    vg_app *app = tu_app_new();
    vg_group *to, *none;
    holder h;
    unsigned short port;
    client held[2];
    int i;

    tu_latch_init(&h.started);
    h.release = vg_token_new();
    ck_assert_ptr_nonnull(h.release);
    ck_assert_int_eq(vg_app_set_workers(app, 4), 0);
    to = vg_app_group(app, "/to");
    ck_assert_ptr_nonnull(to);
    ck_assert_int_eq(vg_group_set_timeout(to, 100), 0);
    none = vg_group_group(to, "/none");
    ck_assert_ptr_nonnull(none);
    ck_assert_int_eq(vg_group_set_timeout(none, 0), 0);
    ck_assert_int_eq(vg_group_map_get(to, "/slow", wait_for_cancel, NULL), 0);
    ck_assert_int_eq(vg_group_map_get(to, "/exempt", h_hold, &h), 0);
    ck_assert_int_eq(vg_map_timeout(app, "GET", "/to/exempt", 0), 0);
    ck_assert_int_eq(vg_group_map_get(none, "/held", h_hold, &h), 0);
    ck_assert_int_eq(vg_group_map_get(none, "/mapped", wait_for_cancel, NULL),
                     0);
    ck_assert_int_eq(vg_map_timeout(app, "GET", "/to/none/mapped", 100), 0);
    tu_start(app);
    port = vg_app_port(app);

    client_start(&held[0], port, "GET", "/to/exempt");
    client_start(&held[1], port, "GET", "/to/none/held");
    ck_assert(tu_latch_wait(&h.started, 2, WAIT_MS));
    expect_status(port, "GET", "/to/slow", 504);
    expect_status(port, "GET", "/to/none/mapped", 504);
    vg_token_cancel(h.release);
    for (i = 0; i < 2; i++) {
        client_join(&held[i]);
        ck_assert_msg(held[i].r.status == 200, "%s: %ld", held[i].path,
                      held[i].r.status);
        ck_assert_str_eq(held[i].r.body, "no deadline");
        tu_response_free(&held[i].r);
    }
    vg_app_free(app);
    vg_token_unref(h.release);
    tu_latch_destroy(&h.started);
}
END_TEST

/* ---- Inline routes ---- */

/* Where a middleware ran, kept in request data for the handler. */
typedef struct {
    pthread_t thread;
    char name[32];
} where;

static const char where_key = 'w';

static vg_result *mw_where(vg_request *req, vg_next *next, void *arg)
{
    where *w = calloc(1, sizeof *w);

    (void)arg;
    if (w == NULL)
        return NULL;
    w->thread = pthread_self();
    thread_name(w->name, sizeof w->name);
    if (vg_request_set_data(req, &where_key, w, free) != 0)
        return NULL;
    return vg_next_run(next);
}

/* "same NAME" when it runs on the thread its middleware ran on. */
static vg_result *h_where(vg_request *req, void *arg)
{
    where *w = vg_request_data(req, &where_key);
    char name[32];

    (void)arg;
    thread_name(name, sizeof name);
    if (w == NULL)
        return vg_text("no middleware ran");
    return vg_textf("%s %s %s", pthread_equal(w->thread, pthread_self())
                                    ? "same" : "other", w->name, name);
}

START_TEST(inline_route_middleware_runs_on_the_handler_mhd_thread)
{
    vg_app *app = tu_app_new();
    vg_group *g = vg_app_group(app, "/g");
    unsigned short port;
    tu_response r;

    ck_assert_int_eq(vg_app_use(app, mw_where, NULL), 0);
    ck_assert_int_eq(vg_group_use(g, mw_decorate, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/inline", h_where, NULL), 0);
    ck_assert_int_eq(vg_map_inline(app, "GET", "/inline", true), 0);
    ck_assert_int_eq(vg_group_map_get(g, "/inline", h_where, NULL), 0);
    ck_assert_int_eq(vg_map_inline(app, "GET", "/g/inline", true), 0);
    ck_assert_int_eq(vg_map_get(app, "/worker", h_where, NULL), 0);
    tu_start(app);
    port = vg_app_port(app);

    r = expect(port, "GET", "/inline", 200);
    ck_assert_msg(strcmp(r.body, "same vg-event vg-event") == 0, "%s", r.body);
    tu_response_free(&r);
    r = expect(port, "GET", "/g/inline", 200);
    ck_assert_msg(strcmp(r.body, "same vg-event vg-event") == 0, "%s", r.body);
    expect_header(&r, "X-Decorated", "200"); /* the group's middleware ran */
    tu_response_free(&r);
    /* The contrast: a worker route's middleware runs on its worker. */
    expect_body(port, "/worker", "same vg-worker vg-worker");
    vg_app_free(app);
}
END_TEST

/* ---- The library's own answers through app middleware ---- */

/* Counts its calls in `arg`, and marks what came back with the status it
 * saw and whether it ran on a worker. */
static vg_result *mw_seen(vg_request *req, vg_next *next, void *arg)
{
    vg_result *res;
    char seen[48];

    (void)req;
    atomic_fetch_add((atomic_int *)arg, 1);
    res = vg_next_run(next);
    snprintf(seen, sizeof seen, "%u %s", vg_result_status(res),
             on_worker_thread() ? "worker" : "not-worker");
    return vg_result_set_header(res, "X-Seen", seen);
}

START_TEST(app_middleware_sees_404_and_405_on_a_worker)
{
    vg_app *app = tu_app_new();
    atomic_int seen = 0;
    unsigned short port;
    tu_response r;

    ck_assert_int_eq(vg_app_use(app, mw_seen, &seen), 0);
    ck_assert_int_eq(vg_map_get(app, "/users", hello, NULL), 0);
    tu_start(app);
    port = vg_app_port(app);

    expect_with(port, "GET", "/nope", 404, "X-Seen", "404 worker");
    r = expect(port, "POST", "/users", 405);
    expect_header(&r, "X-Seen", "405 worker");
    expect_header(&r, "Allow", "GET, HEAD, OPTIONS");
    tu_response_free(&r);
    ck_assert_int_eq(atomic_load(&seen), 2);
    vg_app_free(app);
}
END_TEST

/* The fallback: on a worker, with a live token and no route. */
static vg_result *h_fallback(vg_request *req, void *arg)
{
    vg_token *tok = vg_request_token(req);

    (void)arg;
    return vg_result_set_status(
        vg_textf("fallback %s worker=%d token=%d route=%s",
                 vg_request_path(req), on_worker_thread(),
                 tok != NULL && !vg_token_wait(tok, 0) && vg_token_fd(tok) >= 0,
                 vg_request_route(req) ? vg_request_route(req) : "none"),
        404);
}

START_TEST(app_middleware_sees_the_fallback_which_runs_on_a_worker)
{
    vg_app *app = tu_app_new();
    atomic_int seen = 0;
    unsigned short port;
    tu_response r;

    ck_assert_int_eq(vg_app_use(app, mw_seen, &seen), 0);
    ck_assert_int_eq(vg_app_set_fallback(app, h_fallback, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/users", hello, NULL), 0);
    tu_start(app);
    port = vg_app_port(app);

    r = expect(port, "GET", "/some/where", 404);
    ck_assert_str_eq(r.body,
                     "fallback /some/where worker=1 token=1 route=none");
    expect_header(&r, "X-Seen", "404 worker");
    tu_response_free(&r);
    /* A path with routes for other methods still gets 405. */
    expect_with(port, "POST", "/users", 405, "X-Seen", "405 worker");
    ck_assert_int_eq(atomic_load(&seen), 2);
    vg_app_free(app);
}
END_TEST

START_TEST(misses_without_app_middleware_are_still_404_and_405)
{
    vg_app *app = tu_app_new();
    vg_group *api = vg_app_group(app, "/api");
    atomic_int group_seen = 0;
    unsigned short port;
    tu_response r;

    ck_assert_int_eq(vg_group_use(api, mw_seen, &group_seen), 0);
    ck_assert_int_eq(vg_group_map_get(api, "/users", hello, NULL), 0);
    tu_start(app);
    port = vg_app_port(app);

    r = expect(port, "GET", "/api/nope", 404);
    ck_assert_str_eq(r.body, "not found\n");
    expect_header(&r, "Content-Type", "text/plain; charset=utf-8");
    expect_header(&r, "X-Seen", NULL);
    tu_response_free(&r);
    r = expect(port, "POST", "/api/users", 405);
    expect_header(&r, "Allow", "GET, HEAD, OPTIONS");
    expect_header(&r, "X-Seen", NULL);
    tu_response_free(&r);
    expect_with(port, "GET", "/api/users", 200, "X-Seen", "200 worker");
    ck_assert_int_eq(atomic_load(&group_seen), 1);
    vg_app_free(app);
}
END_TEST

START_TEST(group_middleware_does_not_run_for_misses)
{
    vg_app *app = tu_app_new();
    vg_group *api = vg_app_group(app, "/api");
    atomic_int app_seen = 0, group_seen = 0;
    unsigned short port;

    ck_assert_int_eq(vg_app_use(app, mw_count, &app_seen), 0);
    ck_assert_int_eq(vg_group_use(api, mw_count, &group_seen), 0);
    ck_assert_int_eq(vg_group_map_get(api, "/users", hello, NULL), 0);
    tu_start(app);
    port = vg_app_port(app);

    expect_status(port, "GET", "/api/nope", 404);
    expect_status(port, "DELETE", "/api/users", 405);
    expect_status(port, "OPTIONS", "/api/users", 204);
    ck_assert_int_eq(atomic_load(&app_seen), 3);
    ck_assert_int_eq(atomic_load(&group_seen), 0);
    expect_status(port, "GET", "/api/users", 200);
    ck_assert_int_eq(atomic_load(&app_seen), 4);
    ck_assert_int_eq(atomic_load(&group_seen), 1);
    vg_app_free(app);
}
END_TEST

/* ---- OPTIONS ---- */

/* A comma-separated Allow value as a sorted, checked set: every method
 * once. Returns the methods joined by ' ' in sorted order. */
static char *allow_set(const char *allow)
{
    char *copy = strdup(allow), *save = NULL, *tok, *items[32], *out;
    size_t n = 0, i, j, len = 1;

    ck_assert_ptr_nonnull(copy);
    for (tok = strtok_r(copy, ", ", &save); tok != NULL;
         tok = strtok_r(NULL, ", ", &save)) {
        ck_assert_uint_lt(n, 32);
        items[n++] = tok;
        len += strlen(tok) + 1;
    }
    for (i = 1; i < n; i++)
        for (j = i; j > 0 && strcmp(items[j - 1], items[j]) > 0; j--) {
            char *t = items[j];
            items[j] = items[j - 1];
            items[j - 1] = t;
        }
    out = calloc(1, len);
    ck_assert_ptr_nonnull(out);
    for (i = 0; i < n; i++) {
        ck_assert_msg(i == 0 || strcmp(items[i - 1], items[i]) != 0,
                      "%s listed twice in %s", items[i], allow);
        if (i > 0)
            strcat(out, " ");
        strcat(out, items[i]);
    }
    free(copy);
    return out;
}

static vg_result *h_options(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_result_set_header(vg_text("my options"), "Allow", "OPTIONS");
}

/* An app with GET+POST /users, DELETE /users/{id}, PUT /x and PATCH in a
 * group; with or without an app middleware counting in `seen` (the
 * library's answers are then made on a worker). */
static vg_app *options_app(bool middleware, atomic_int *seen)
{
    vg_app *app = tu_app_new();
    vg_group *g = vg_app_group(app, "/g");

    if (middleware)
        ck_assert_int_eq(vg_app_use(app, mw_seen, seen), 0);
    ck_assert_int_eq(vg_map_get(app, "/users", hello, NULL), 0);
    ck_assert_int_eq(vg_map_post(app, "/users", hello, NULL), 0);
    ck_assert_int_eq(vg_map_delete(app, "/users/{id}", hello, NULL), 0);
    ck_assert_int_eq(vg_map_put(app, "/x", hello, NULL), 0);
    ck_assert_int_eq(vg_group_map_patch(g, "/y", hello, NULL), 0);
    return app;
}

/* The connection is still usable: a GET on it is answered. */
static void expect_keep_alive(int fd)
{
    char buf[4096];

    raw_exchange(fd, "GET /users HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof buf);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "%s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "\r\n\r\nhello"));
}

/* Sends `request` on `fd`, checks the status line begins with `status`
 * ("HTTP/1.1 204") and returns the Allow header (malloc'd) or NULL. */
static char *options_exchange(int fd, const char *request, const char *status,
                              char *buf, size_t cap)
{
    raw_exchange(fd, request, buf, cap);
    ck_assert_msg(strncmp(buf, status, strlen(status)) == 0, "%s", buf);
    return raw_header(buf, "Allow");
}

/* One OPTIONS case on a kept-alive connection: returns how many requests
 * it sent. `mw`: the app has a middleware (answers made on a worker). */
typedef int (*options_case)(int fd, bool mw);

/* Runs `fn` against options_app with and without an app middleware (and
 * a mapped OPTIONS /users route if asked), then checks that the
 * connection is still usable and the middleware saw every request. */
static void run_options_case(options_case fn, bool map_options)
{
    for (int mw = 0; mw <= 1; mw++) {
        atomic_int seen = 0;
        vg_app *app = options_app(mw, &seen);
        int fd, sent;

        if (map_options)
            ck_assert_int_eq(vg_map(app, "OPTIONS", "/users", h_options, NULL),
                             0);
        tu_start(app);
        fd = tu_connect(vg_app_port(app));
        sent = fn(fd, mw);
        expect_keep_alive(fd);
        close(fd);
        ck_assert_int_eq(atomic_load(&seen), mw ? sent + 1 : 0);
        vg_app_free(app);
    }
}

static int options_asterisk(int fd, bool mw)
{
    char buf[4096], *allow, *set;

    (void)mw;
    allow = options_exchange(fd, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
                             "HTTP/1.1 200", buf, sizeof buf);
    ck_assert_ptr_nonnull(allow);
    set = allow_set(allow);
    ck_assert_str_eq(set, "DELETE GET HEAD OPTIONS PATCH POST PUT");
    free(set);
    free(allow);
    return 1;
}

START_TEST(options_asterisk_lists_every_mapped_method)
{
    run_options_case(options_asterisk, false);
}
END_TEST

static int options_routed(int fd, bool mw)
{
    char buf[4096], *allow, *x;

    allow = options_exchange(fd, "OPTIONS /users HTTP/1.1\r\nHost: x\r\n\r\n",
                             "HTTP/1.1 204", buf, sizeof buf);
    ck_assert_ptr_nonnull(allow);
    ck_assert_str_eq(allow, "GET, HEAD, POST, OPTIONS");
    free(allow);
    x = raw_header(buf, "X-Seen");
    ck_assert_msg(mw ? x != NULL && strcmp(x, "204 worker") == 0 : x == NULL,
                  "X-Seen: %s", x ? x : "(none)");
    free(x);
    allow = options_exchange(fd,
                             "OPTIONS /users/7 HTTP/1.1\r\nHost: x\r\n\r\n",
                             "HTTP/1.1 204", buf, sizeof buf);
    ck_assert_ptr_nonnull(allow);
    ck_assert_str_eq(allow, "DELETE, OPTIONS");
    free(allow);
    return 2;
}

START_TEST(options_on_a_routed_path_answers_204_with_its_allow)
{
    run_options_case(options_routed, false);
}
END_TEST

static int options_mapped(int fd, bool mw)
{
    char buf[4096], *allow;

    (void)mw;
    allow = options_exchange(fd, "OPTIONS /users HTTP/1.1\r\nHost: x\r\n\r\n",
                             "HTTP/1.1 200", buf, sizeof buf);
    ck_assert_ptr_nonnull(strstr(buf, "\r\n\r\nmy options"));
    ck_assert_ptr_nonnull(allow);
    ck_assert_str_eq(allow, "OPTIONS");
    free(allow);
    return 1;
}

START_TEST(mapped_options_route_wins)
{
    run_options_case(options_mapped, true);
}
END_TEST

static int options_unknown(int fd, bool mw)
{
    char buf[4096];

    (void)mw;
    ck_assert_ptr_null(options_exchange(
        fd, "OPTIONS /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404",
        buf, sizeof buf));
    return 1;
}

START_TEST(options_on_an_unknown_path_is_404)
{
    run_options_case(options_unknown, false);
}
END_TEST

/* ---- Deferred and streamed results through a chain ---- */

/* Hands the latest deferred request or stream to the test thread, and
 * counts what the middleware around it saw on the way back. */
typedef struct {
    pthread_mutex_t lock;
    vg_request *req;
    vg_stream *stream;
    tu_latch parked;        /* the handler deferred or opened its stream */
    tu_latch unwound;       /* the outermost middleware returned */
    atomic_int saw_deferred; /* middlewares that saw vg_result_is_deferred */
    atomic_int kept;        /* ... whose vg_result_set_header returned res */
    atomic_int statuses;    /* sum of the statuses they saw */
} handoff;

static void handoff_init(handoff *h)
{
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->lock, NULL);
    tu_latch_init(&h->parked);
    tu_latch_init(&h->unwound);
}

static void handoff_destroy(handoff *h)
{
    pthread_mutex_destroy(&h->lock);
    tu_latch_destroy(&h->parked);
    tu_latch_destroy(&h->unwound);
}

static vg_request *handoff_request(handoff *h)
{
    vg_request *req;

    ck_assert(tu_latch_wait(&h->parked, 1, WAIT_MS));
    pthread_mutex_lock(&h->lock);
    req = h->req;
    h->req = NULL;
    pthread_mutex_unlock(&h->lock);
    ck_assert_ptr_nonnull(req);
    return req;
}

static vg_stream *handoff_stream(handoff *h)
{
    vg_stream *s;

    ck_assert(tu_latch_wait(&h->parked, 1, WAIT_MS));
    pthread_mutex_lock(&h->lock);
    s = h->stream;
    h->stream = NULL;
    pthread_mutex_unlock(&h->lock);
    ck_assert_ptr_nonnull(s);
    return s;
}

static vg_result *h_defer(vg_request *req, void *arg)
{
    handoff *h = arg;
    vg_result *res;

    /* Defer under the lock, so that no finisher sees req first. */
    pthread_mutex_lock(&h->lock);
    h->req = req;
    res = vg_defer(req);
    pthread_mutex_unlock(&h->lock);
    tu_latch_add(&h->parked, 1);
    return res;
}

static vg_result *h_stream(vg_request *req, void *arg)
{
    handoff *h = arg;
    vg_stream *s = NULL;
    vg_result *res = vg_stream_new(req, "text/plain", &s);

    if (res == NULL)
        return NULL;
    pthread_mutex_lock(&h->lock);
    h->stream = s;
    pthread_mutex_unlock(&h->lock);
    tu_latch_add(&h->parked, 1);
    return res;
}

/* One of three pass-through middlewares: notes what came back and tries to
 * put its header on it. */
typedef struct {
    handoff *h;
    const char *header;
    bool outermost;
} passer;

static vg_result *mw_pass(vg_request *req, vg_next *next, void *arg)
{
    const passer *p = arg;
    vg_result *res = vg_next_run(next), *out;

    (void)req;
    if (vg_result_is_deferred(res))
        atomic_fetch_add(&p->h->saw_deferred, 1);
    atomic_fetch_add(&p->h->statuses, (int)vg_result_status(res));
    out = vg_result_set_header(res, p->header, "1");
    if (out == res)
        atomic_fetch_add(&p->h->kept, 1);
    if (p->outermost)
        tu_latch_add(&p->h->unwound, 1);
    return out;
}

/* App middleware, then /d's, then /d/e's, around `fn` at /d/e/x. */
static vg_app *three_middleware_app(handoff *h, passer p[3], vg_handler fn)
{
    vg_app *app = tu_app_new();
    vg_group *d = vg_app_group(app, "/d"), *e;

    ck_assert_ptr_nonnull(d);
    e = vg_group_group(d, "/e");
    ck_assert_ptr_nonnull(e);
    p[0] = (passer){h, "X-Mw-App", true};
    p[1] = (passer){h, "X-Mw-Outer", false};
    p[2] = (passer){h, "X-Mw-Inner", false};
    ck_assert_int_eq(vg_app_use(app, mw_pass, &p[0]), 0);
    ck_assert_int_eq(vg_group_use(d, mw_pass, &p[1]), 0);
    ck_assert_int_eq(vg_group_use(e, mw_pass, &p[2]), 0);
    ck_assert_int_eq(vg_group_map_get(e, "/x", fn, h), 0);
    tu_start(app);
    return app;
}

START_TEST(deferred_result_passes_three_middlewares_unchanged)
{
    handoff h;
    passer p[3];
    vg_app *app;
    vg_request *req;
    char buf[4096], *x;
    int fd;

    handoff_init(&h);
    app = three_middleware_app(&h, p, h_defer);
    fd = tu_connect(vg_app_port(app));
    ck_assert(tu_send_all(fd, "GET /d/e/x HTTP/1.1\r\nHost: x\r\n\r\n", 33));
    req = handoff_request(&h);
    ck_assert(tu_latch_wait(&h.unwound, 1, WAIT_MS));
    ck_assert_int_eq(atomic_load(&h.saw_deferred), 3);
    ck_assert_int_eq(atomic_load(&h.kept), 3); /* a no-op on the marker */
    ck_assert_int_eq(atomic_load(&h.statuses), 0);
    ck_assert_int_eq(vg_request_finish(req, vg_text("finished")), 0);
    ck_assert_uint_gt(tu_recv_response(fd, buf, sizeof buf), 0);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "%s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "\r\n\r\nfinished"));
    x = raw_header(buf, "X-Mw-App");
    ck_assert_ptr_null(x);
    close(fd);
    vg_app_free(app);
    handoff_destroy(&h);
}
END_TEST

START_TEST(streamed_result_is_decorated_by_middleware_and_streams)
{
    handoff h;
    passer p[3];
    vg_app *app;
    vg_stream *s;
    client c;

    handoff_init(&h);
    app = three_middleware_app(&h, p, h_stream);
    client_start(&c, vg_app_port(app), "GET", "/d/e/x");
    s = handoff_stream(&h);
    ck_assert(tu_latch_wait(&h.unwound, 1, WAIT_MS));
    ck_assert_int_eq(atomic_load(&h.saw_deferred), 0);
    ck_assert_int_eq(atomic_load(&h.kept), 3);
    ck_assert_int_eq(atomic_load(&h.statuses), 3 * 200);
    ck_assert_int_eq(vg_stream_write(s, "first ", 6), 0);
    ck_assert_int_eq(vg_stream_printf(s, "second %d", 2), 0);
    vg_stream_end(s);
    client_join(&c);
    ck_assert_int_eq(c.r.status, 200);
    ck_assert_str_eq(c.r.body, "first second 2");
    expect_header(&c.r, "X-Mw-App", "1");
    expect_header(&c.r, "X-Mw-Outer", "1");
    expect_header(&c.r, "X-Mw-Inner", "1");
    expect_header(&c.r, "Transfer-Encoding", "chunked");
    tu_response_free(&c.r);
    vg_app_free(app);
    handoff_destroy(&h);
}
END_TEST

/* ---- A client leaving while a middleware blocks ---- */

typedef struct {
    tu_latch blocked, woke;
    atomic_int reason;
} blocker;

/* Blocks on the request's token before letting the request through. */
static vg_result *mw_block(vg_request *req, vg_next *next, void *arg)
{
    blocker *b = arg;
    vg_token *tok = vg_request_token(req);

    tu_latch_add(&b->blocked, 1);
    if (vg_token_wait(tok, WAIT_MS)) {
        atomic_store(&b->reason, (int)vg_token_reason(tok));
        tu_latch_add(&b->woke, 1);
        return vg_text("nobody reads this");
    }
    tu_latch_add(&b->woke, 1);
    return vg_next_run(next);
}

START_TEST(client_leaving_while_middleware_blocks_cancels_its_token)
{
    vg_app *app = tu_app_new();
    atomic_int handled = 0;
    blocker b;
    vg_stats st;
    int fd;

    tu_latch_init(&b.blocked);
    tu_latch_init(&b.woke);
    atomic_init(&b.reason, -1);
    ck_assert_int_eq(vg_app_use(app, mw_block, &b), 0);
    ck_assert_int_eq(vg_map_get(app, "/x", counted, &handled), 0);
    tu_start(app);
    fd = tu_connect(vg_app_port(app));
    ck_assert(tu_send_all(fd, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n", 28));
    ck_assert(tu_latch_wait(&b.blocked, 1, WAIT_MS));
    close(fd);
    ck_assert(tu_latch_wait(&b.woke, 1, WAIT_MS));
    ck_assert_int_eq(atomic_load(&b.reason), VG_CANCEL_CLIENT_GONE);
    ck_assert(tu_wait_settled(app, 1, WAIT_MS, &st));
    ck_assert_uint_eq(st.cancelled_client_gone, 1);
    ck_assert_int_eq(atomic_load(&handled), 0);
    vg_app_free(app);
    tu_latch_destroy(&b.blocked);
    tu_latch_destroy(&b.woke);
}
END_TEST

/* ---- Problem documents ---- */

/* The string member `name` of `doc`, or NULL (absent or not a string). */
static const char *member_str(json_t *doc, const char *name)
{
    return json_string_value(json_object_get(doc, name));
}

/* Parses r's body as a problem document and checks it member by member;
 * `cancelled` NULL: no such member. Returns the document for more checks
 * (the caller decrefs). */
static json_t *expect_problem(const tu_response *r, unsigned status,
                              const char *title, const char *detail,
                              const char *cancelled)
{
    json_error_t err;
    json_t *doc = json_loads(r->body, 0, &err), *st;

    ck_assert_msg(doc != NULL, "not JSON: %s (%s)", r->body, err.text);
    ck_assert(json_is_object(doc));
    expect_header(r, "Content-Type", "application/problem+json");
    ck_assert_ptr_nonnull(member_str(doc, "type"));
    ck_assert_str_eq(member_str(doc, "type"), "about:blank");
    ck_assert_ptr_nonnull(member_str(doc, "title"));
    ck_assert_str_eq(member_str(doc, "title"), title);
    st = json_object_get(doc, "status");
    ck_assert(json_is_integer(st));
    ck_assert_int_eq(json_integer_value(st), status);
    ck_assert_ptr_nonnull(member_str(doc, "detail"));
    ck_assert_str_eq(member_str(doc, "detail"), detail);
    if (cancelled == NULL) {
        ck_assert_ptr_null(json_object_get(doc, "cancelled"));
    } else {
        ck_assert_ptr_nonnull(member_str(doc, "cancelled"));
        ck_assert_str_eq(member_str(doc, "cancelled"), cancelled);
    }
    return doc;
}

/* Adds an "instance" member to problem documents that come back: members
 * can be added until the response is built. */
static vg_result *mw_instance(vg_request *req, vg_next *next, void *arg)
{
    vg_result *res = vg_next_run(next);
    const char *ct = vg_result_header(res, "Content-Type");

    (void)arg;
    if (ct != NULL && strcmp(ct, "application/problem+json") == 0)
        res = vg_problem_set(res, "instance",
                             json_string(vg_request_target(req)));
    return res;
}

START_TEST(problem_document_for_404)
{
    vg_app *app = tu_app_new();
    tu_response r;
    json_t *doc;

    ck_assert_int_eq(vg_app_use_problem_details(app), 0);
    ck_assert_int_eq(vg_app_use(app, mw_instance, NULL), 0);
    tu_start(app);
    r = expect(vg_app_port(app), "GET", "/nope?x=1", 404);
    doc = expect_problem(&r, 404, "Not Found", "not found", NULL);
    ck_assert_ptr_nonnull(member_str(doc, "instance"));
    ck_assert_str_eq(member_str(doc, "instance"), "/nope?x=1");
    ck_assert_uint_eq(json_object_size(doc), 5);
    json_decref(doc);
    tu_response_free(&r);
    vg_app_free(app);
}
END_TEST

START_TEST(problem_document_for_405_keeps_allow)
{
    vg_app *app = tu_app_new();
    tu_response r;

    ck_assert_int_eq(vg_app_use_problem_details(app), 0);
    ck_assert_int_eq(vg_map_get(app, "/users", hello, NULL), 0);
    tu_start(app);
    r = expect(vg_app_port(app), "PUT", "/users", 405);
    json_decref(expect_problem(&r, 405, "Method Not Allowed",
                               "method not allowed", NULL));
    expect_header(&r, "Allow", "GET, HEAD, OPTIONS");
    tu_response_free(&r);
    vg_app_free(app);
}
END_TEST

START_TEST(problem_document_for_413_over_the_body_limit)
{
    vg_app *app = tu_app_new();
    const char *chunked[] = {"Transfer-Encoding: chunked", NULL};
    char body[100];
    tu_response r;

    memset(body, 'b', sizeof body);
    ck_assert_int_eq(vg_app_use_problem_details(app), 0);
    ck_assert_int_eq(vg_app_set_body_limit(app, 16), 0);
    ck_assert_int_eq(vg_map_post(app, "/upload", hello, NULL), 0);
    tu_start(app);
    /* A declared length over the limit is refused before the body. */
    r = tu_request(vg_app_port(app), "POST", "/upload", body, sizeof body,
                   NULL);
    ck_assert_int_eq(r.status, 413);
    json_decref(expect_problem(&r, 413, MHD_get_reason_phrase_for(413),
                               "request body too large", NULL));
    tu_response_free(&r);
    /* A chunked body is refused once it grows past the limit. */
    r = tu_request(vg_app_port(app), "POST", "/upload", body, sizeof body,
                   chunked);
    ck_assert_int_eq(r.status, 413);
    json_decref(expect_problem(&r, 413, MHD_get_reason_phrase_for(413),
                               "request body too large", NULL));
    tu_response_free(&r);
    r = tu_request(vg_app_port(app), "POST", "/upload", body, 16, NULL);
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    vg_app_free(app);
}
END_TEST

START_TEST(problem_document_for_504_says_cancelled_timeout)
{
    vg_app *app = tu_app_new();
    tu_response r;

    ck_assert_int_eq(vg_app_use_problem_details(app), 0);
    ck_assert_int_eq(vg_map_get(app, "/slow", wait_for_cancel, NULL), 0);
    ck_assert_int_eq(vg_map_timeout(app, "GET", "/slow", 100), 0);
    tu_start(app);
    r = expect(vg_app_port(app), "GET", "/slow", 504);
    json_decref(expect_problem(&r, 504, "Gateway Timeout", "request timed out",
                               "timeout"));
    tu_response_free(&r);
    vg_app_free(app);
}
END_TEST

/* A request in flight (its handler waits on its token) when the app is
 * stopped; the response read from `fd` once the grace has passed. */
static void stop_with_request_in_flight(vg_app *app, holder *h, char *buf,
                                        size_t cap)
{
    int fd = tu_connect(vg_app_port(app));

    ck_assert(tu_send_all(fd, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n", 31));
    ck_assert(tu_latch_wait(&h->started, 1, WAIT_MS));
    vg_app_stop(app);
    ck_assert_msg(tu_recv_response(fd, buf, cap) > 0, "no answer at shutdown");
    close(fd);
}

START_TEST(problem_document_for_503_at_shutdown_says_cancelled_shutdown)
{
    vg_app *app = tu_app_new();
    holder h;
    char buf[4096], *body, *conn;
    tu_response r = {0};
    json_t *doc;

    tu_latch_init(&h.started);
    h.release = vg_token_new(); /* never cancelled: shutdown ends it */
    ck_assert_int_eq(vg_app_use_problem_details(app), 0);
    ck_assert_int_eq(vg_app_set_shutdown_grace(app, 100), 0);
    ck_assert_int_eq(vg_map_get(app, "/hold", h_hold, &h), 0);
    tu_start(app);
    stop_with_request_in_flight(app, &h, buf, sizeof buf);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 503", 12) == 0, "%s", buf);
    conn = raw_header(buf, "Connection");
    ck_assert_ptr_nonnull(conn);
    ck_assert_str_eq(conn, "close");
    free(conn);
    body = strstr(buf, "\r\n\r\n");
    ck_assert_ptr_nonnull(body);
    r.body = body + 4;
    r.headers = strndup(buf, (size_t)(body - buf) + 2);
    doc = expect_problem(&r, 503, "Service Unavailable", "shutting down",
                         "shutdown");
    json_decref(doc);
    free(r.headers);
    vg_app_free(app);
    vg_token_unref(h.release);
    tu_latch_destroy(&h.started);
}
END_TEST

/* The serialized body of a problem result (consumed). */
static json_t *problem_body(vg_result *res)
{
    char *body = NULL;
    size_t len = 0;
    json_t *doc;

    ck_assert_int_eq(vg__result_take_body(res, &body, &len), 0);
    ck_assert_ptr_nonnull(body);
    doc = json_loadb(body, len, 0, NULL);
    ck_assert_ptr_nonnull(doc);
    free(body);
    vg_result_free(res);
    return doc;
}

START_TEST(problem_and_problem_set_build_documents)
{
    vg_result *res, *text;
    json_t *doc, *extra;

    res = vg_problem(422, "bad field");
    ck_assert_ptr_nonnull(res);
    ck_assert_uint_eq(vg_result_status(res), 422);
    ck_assert_str_eq(vg_result_header(res, "Content-Type"),
                     "application/problem+json");
    res = vg_problem_set(res, "field", json_string("email"));
    ck_assert_ptr_nonnull(res);
    res = vg_problem_set(res, "detail", json_string("replaced"));
    ck_assert_ptr_nonnull(res);
    doc = problem_body(res);
    ck_assert_str_eq(member_str(doc, "type"), "about:blank");
    ck_assert_str_eq(member_str(doc, "title"),
                     MHD_get_reason_phrase_for(422));
    ck_assert_int_eq(json_integer_value(json_object_get(doc, "status")), 422);
    ck_assert_str_eq(member_str(doc, "detail"), "replaced");
    ck_assert_str_eq(member_str(doc, "field"), "email");
    ck_assert_uint_eq(json_object_size(doc), 5);
    json_decref(doc);

    /* No detail: no "detail" member. */
    doc = problem_body(vg_problem(404, NULL));
    ck_assert_ptr_null(json_object_get(doc, "detail"));
    ck_assert_str_eq(member_str(doc, "title"), "Not Found");
    ck_assert_uint_eq(json_object_size(doc), 3);
    json_decref(doc);

    errno = 0;
    ck_assert_ptr_null(vg_problem(99, "x"));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(vg_problem(1000, "x"));
    ck_assert_int_eq(errno, EINVAL);

    /* Refusals free the result and steal the value (valgrind and ASan
     * see a leak otherwise). */
    errno = 0;
    ck_assert_ptr_null(vg_problem_set(vg_problem(400, "x"), "status",
                                      json_integer(200)));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(vg_problem_set(vg_problem(400, "x"), NULL,
                                      json_string("v")));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(vg_problem_set(vg_problem(400, "x"), "m", NULL));
    text = vg_text("not a problem");
    errno = 0;
    ck_assert_ptr_null(vg_problem_set(text, "m", json_string("v")));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(vg_problem_set(NULL, "m", json_string("v")));
    /* A value already referenced elsewhere keeps that reference. */
    extra = json_string("shared");
    json_incref(extra);
    res = vg_problem_set(vg_problem(400, "x"), "shared", extra);
    ck_assert_ptr_nonnull(res);
    ck_assert_int_eq(extra->refcount, 2);
    vg_result_free(res);
    ck_assert_int_eq(extra->refcount, 1);
    json_decref(extra);
}
END_TEST

/* ---- The error handler ---- */

typedef struct {
    pthread_mutex_t lock;
    unsigned seen[32];
    int n;
    bool answer_null;
} errlog;

static void errlog_init(errlog *e, bool answer_null)
{
    memset(e, 0, sizeof *e);
    pthread_mutex_init(&e->lock, NULL);
    e->answer_null = answer_null;
}

/* The statuses the error handler was called with, in order: "404 405". */
static void errlog_expect(errlog *e, const char *want)
{
    char got[256] = "";
    int i;

    pthread_mutex_lock(&e->lock);
    for (i = 0; i < e->n; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%u",
                 i ? " " : "", e->seen[i]);
    pthread_mutex_unlock(&e->lock);
    ck_assert_str_eq(got, want);
}

/* Answers every library error with a text of its own and status 418,
 * which the library must overrule. */
static vg_result *on_error(const vg_request *req, unsigned status,
                           const char *detail, void *arg)
{
    errlog *e = arg;

    (void)req;
    pthread_mutex_lock(&e->lock);
    if (e->n < 32)
        e->seen[e->n++] = status;
    pthread_mutex_unlock(&e->lock);
    if (e->answer_null)
        return NULL;
    return vg_result_set_header(
        vg_result_set_status(vg_textf("custom %u %s", status, detail), 418),
        "X-Error-Handler", "yes");
}

static vg_result *h_null(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return NULL;
}

static void expect_custom(tu_response *r, long status, const char *body)
{
    ck_assert_int_eq(r->status, status);
    ck_assert_str_eq(r->body, body);
    expect_header(r, "X-Error-Handler", "yes");
    tu_response_free(r);
}

START_TEST(error_handler_shapes_every_library_error)
{
    vg_app *app = tu_app_new();
    errlog e;
    holder h;
    char body[100], buf[4096];
    unsigned short port;
    tu_response r;
    int fd;

    errlog_init(&e, false);
    tu_latch_init(&h.started);
    h.release = vg_token_new();
    memset(body, 'b', sizeof body);
    ck_assert_int_eq(vg_app_set_error_handler(app, on_error, &e), 0);
    ck_assert_int_eq(vg_app_set_body_limit(app, 16), 0);
    ck_assert_int_eq(vg_app_set_shutdown_grace(app, 100), 0);
    ck_assert_int_eq(vg_map_get(app, "/users", hello, NULL), 0);
    ck_assert_int_eq(vg_map_post(app, "/upload", hello, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/null", h_null, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/slow", wait_for_cancel, NULL), 0);
    ck_assert_int_eq(vg_map_timeout(app, "GET", "/slow", 100), 0);
    ck_assert_int_eq(vg_map_get(app, "/hold", h_hold, &h), 0);
    tu_start(app);
    port = vg_app_port(app);

    /* 400: a path that decodes to a NUL byte. */
    fd = tu_connect(port);
    raw_exchange(fd, "GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof buf);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 400", 12) == 0, "%s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "\r\n\r\ncustom 400 bad request"));
    close(fd);
    r = tu_get(port, "/nope");
    expect_custom(&r, 404, "custom 404 not found");
    r = tu_request(port, "DELETE", "/users", NULL, 0, NULL);
    expect_header(&r, "Allow", "GET, HEAD, OPTIONS");
    expect_custom(&r, 405, "custom 405 method not allowed");
    r = tu_request(port, "POST", "/upload", body, sizeof body, NULL);
    expect_custom(&r, 413, "custom 413 request body too large");
    r = tu_get(port, "/null");
    expect_custom(&r, 500, "custom 500 internal server error");
    r = tu_get(port, "/slow");
    expect_custom(&r, 504, "custom 504 request timed out");
    stop_with_request_in_flight(app, &h, buf, sizeof buf);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 503", 12) == 0, "%s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "\r\n\r\ncustom 503 shutting down"));
    vg_app_free(app);
    /* Once each, and never for an answer nobody sends (the /slow handler
     * returning NULL after its 504 went). */
    errlog_expect(&e, "400 404 405 413 500 504 503");
    vg_token_unref(h.release);
    tu_latch_destroy(&h.started);
    pthread_mutex_destroy(&e.lock);
}
END_TEST

START_TEST(error_handler_returning_null_gives_the_built_in_text)
{
    vg_app *app = tu_app_new();
    errlog e;
    unsigned short port;
    tu_response r;

    errlog_init(&e, true);
    ck_assert_int_eq(vg_app_set_error_handler(app, on_error, &e), 0);
    ck_assert_int_eq(vg_map_get(app, "/users", hello, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/null", h_null, NULL), 0);
    tu_start(app);
    port = vg_app_port(app);

    r = expect(port, "GET", "/nope", 404);
    ck_assert_str_eq(r.body, "not found\n");
    expect_header(&r, "Content-Type", "text/plain; charset=utf-8");
    tu_response_free(&r);
    r = expect(port, "POST", "/users", 405);
    ck_assert_str_eq(r.body, "method not allowed\n");
    expect_header(&r, "Allow", "GET, HEAD, OPTIONS");
    tu_response_free(&r);
    r = expect(port, "GET", "/null", 500);
    ck_assert_str_eq(r.body, "internal server error\n");
    tu_response_free(&r);
    vg_app_free(app);
    errlog_expect(&e, "404 405 500");
    pthread_mutex_destroy(&e.lock);
}
END_TEST

/* ---- Filters ---- */

/* A filter that traces its name (from libmicrohttpd's thread) and counts
 * in `count` when given. */
typedef struct {
    const char *name;
    atomic_int count;
    atomic_int on_mhd;
} filter_probe;

static vg_result *f_trace(vg_request *req, void *arg)
{
    filter_probe *p = arg;

    atomic_fetch_add(&p->count, 1);
    if (on_mhd_thread())
        atomic_fetch_add(&p->on_mhd, 1);
    trace_add(req, p->name);
    return NULL;
}

START_TEST(filters_run_app_then_groups_in_order_before_middleware)
{
    vg_app *app = tu_app_new();
    filter_probe f1 = {"f1", 0, 0}, f2 = {"f2", 0, 0}, ga = {"ga", 0, 0},
                 gb = {"gb", 0, 0};
    vg_group *a = vg_app_group(app, "/a"), *b;
    unsigned short port;

    ck_assert_ptr_nonnull(a);
    b = vg_group_group(a, "/b");
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(vg_app_filter(app, f_trace, &f1), 0);
    ck_assert_int_eq(vg_app_filter(app, f_trace, &f2), 0);
    ck_assert_int_eq(vg_group_filter(a, f_trace, &ga), 0);
    ck_assert_int_eq(vg_group_filter(b, f_trace, &gb), 0);
    ck_assert_int_eq(vg_app_use(app, mw_trace_outer, "mw"), 0);
    ck_assert_int_eq(vg_group_map_get(b, "/x", h_trace, NULL), 0);
    ck_assert_int_eq(vg_group_map_get(a, "/x", h_trace, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/x", h_trace, NULL), 0);
    tu_start(app);
    port = vg_app_port(app);

    expect_trace(port, "/a/b/x", "f1 f2 ga gb >mw handler <mw");
    expect_trace(port, "/a/x", "f1 f2 ga >mw handler <mw");
    expect_trace(port, "/x", "f1 f2 >mw handler <mw");
    /* A miss passes the app's filters only. */
    expect_with(port, "GET", "/a/nope", 404, "X-Trace", "f1 f2 >mw <mw");
    ck_assert_int_eq(atomic_load(&f1.count), 4);
    ck_assert_int_eq(atomic_load(&f2.count), 4);
    ck_assert_int_eq(atomic_load(&ga.count), 2);
    ck_assert_int_eq(atomic_load(&gb.count), 1);
    ck_assert_int_eq(atomic_load(&f1.on_mhd), 4);
    ck_assert_int_eq(atomic_load(&gb.on_mhd), 1);
    vg_app_free(app);
}
END_TEST

/* Answers 403 at once for requests carrying X-Deny. */
static vg_result *f_deny(vg_request *req, void *arg)
{
    filter_probe *p = arg;

    atomic_fetch_add(&p->count, 1);
    if (on_mhd_thread())
        atomic_fetch_add(&p->on_mhd, 1);
    if (vg_request_header(req, "X-Deny") == NULL)
        return NULL;
    return vg_result_set_status(vg_text("denied by filter"), 403);
}

START_TEST(filter_answers_at_once_on_the_mhd_thread)
{
    vg_app *app = tu_app_new();
    filter_probe deny = {"deny", 0, 0}, after = {"after", 0, 0};
    atomic_int mw = 0, handled = 0;
    const char *hdr[] = {"X-Deny: 1", NULL};
    unsigned short port;
    tu_response r;

    ck_assert_int_eq(vg_app_filter(app, f_deny, &deny), 0);
    ck_assert_int_eq(vg_app_filter(app, f_trace, &after), 0);
    ck_assert_int_eq(vg_app_use(app, mw_count, &mw), 0);
    ck_assert_int_eq(vg_map_get(app, "/x", counted, &handled), 0);
    tu_start(app);
    port = vg_app_port(app);

    r = tu_request(port, "GET", "/x", NULL, 0, hdr);
    ck_assert_int_eq(r.status, 403);
    ck_assert_str_eq(r.body, "denied by filter");
    tu_response_free(&r);
    ck_assert_int_eq(atomic_load(&deny.on_mhd), 1);
    ck_assert_int_eq(atomic_load(&after.count), 0);
    ck_assert_int_eq(atomic_load(&mw), 0);
    ck_assert_int_eq(atomic_load(&handled), 0);
    /* Denying a miss too: the filter runs before the library's 404. */
    r = tu_request(port, "GET", "/nope", NULL, 0, hdr);
    ck_assert_int_eq(r.status, 403);
    tu_response_free(&r);
    ck_assert_int_eq(atomic_load(&mw), 0);
    expect_status(port, "GET", "/x", 200);
    ck_assert_int_eq(atomic_load(&after.count), 1);
    ck_assert_int_eq(atomic_load(&mw), 1);
    ck_assert_int_eq(atomic_load(&handled), 1);
    ck_assert_int_eq(atomic_load(&deny.on_mhd), 3);
    vg_app_free(app);
}
END_TEST

/* Gives every request an X-Request-Id header through the request. */
static vg_result *f_request_id(vg_request *req, void *arg)
{
    atomic_int *n = arg;
    char id[32];

    snprintf(id, sizeof id, "req-%d", atomic_fetch_add(n, 1));
    if (vg_request_add_response_header(req, "X-Request-Id", id) != 0)
        return vg_status(500);
    /* Bad headers are refused. */
    if (vg_request_add_response_header(req, "Bad Name", "x") != -EINVAL ||
        vg_request_add_response_header(req, "X-Ok", "a\r\nb") != -EINVAL ||
        vg_request_add_response_header(req, "Content-Length", "1") != -EINVAL ||
        vg_request_add_response_header(NULL, "X-Ok", "x") != -EINVAL)
        return vg_status(500);
    return NULL;
}

START_TEST(filter_response_header_reaches_every_answer)
{
    vg_app *app = tu_app_new();
    atomic_int ids = 0;
    handoff h;
    vg_request *req;
    unsigned short port;
    char buf[4096], *id;
    int fd;

    handoff_init(&h);
    ck_assert_int_eq(vg_app_filter(app, f_request_id, &ids), 0);
    ck_assert_int_eq(vg_map_get(app, "/ok", hello, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/slow", wait_for_cancel, NULL), 0);
    ck_assert_int_eq(vg_map_timeout(app, "GET", "/slow", 100), 0);
    ck_assert_int_eq(vg_map_get(app, "/defer", h_defer, &h), 0);
    tu_start(app);
    port = vg_app_port(app);

    expect_with(port, "GET", "/ok", 200, "X-Request-Id", "req-0");
    expect_with(port, "GET", "/nope", 404, "X-Request-Id", "req-1");
    expect_with(port, "POST", "/ok", 405, "X-Request-Id", "req-2");
    expect_with(port, "GET", "/slow", 504, "X-Request-Id", "req-3");
    fd = tu_connect(port);
    ck_assert(tu_send_all(fd, "GET /defer HTTP/1.1\r\nHost: x\r\n\r\n", 32));
    req = handoff_request(&h);
    ck_assert_int_eq(vg_request_finish(req, vg_text("later")), 0);
    ck_assert_uint_gt(tu_recv_response(fd, buf, sizeof buf), 0);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "%s", buf);
    id = raw_header(buf, "X-Request-Id");
    ck_assert_ptr_nonnull(id);
    ck_assert_str_eq(id, "req-4");
    free(id);
    close(fd);
    vg_app_free(app);
    handoff_destroy(&h);
}
END_TEST

/* ---- Completion hooks ---- */

typedef struct {
    char method[16], target[128], route[128];
    bool has_route, accessor_agrees;
    unsigned status;
    unsigned long long bytes;
    vg_cancel_reason why;
} done_entry;

typedef struct {
    pthread_mutex_t lock;
    done_entry e[32];
    int n;
    tu_latch count;
} done_log;

static void done_init(done_log *d)
{
    memset(d, 0, sizeof *d);
    pthread_mutex_init(&d->lock, NULL);
    tu_latch_init(&d->count);
}

static void done_destroy(done_log *d)
{
    pthread_mutex_destroy(&d->lock);
    tu_latch_destroy(&d->count);
}

static void on_done(const vg_completion *c, void *arg)
{
    done_log *d = arg;
    done_entry *e;

    pthread_mutex_lock(&d->lock);
    if (d->n < 32) {
        e = &d->e[d->n++];
        snprintf(e->method, sizeof e->method, "%s", c->method);
        snprintf(e->target, sizeof e->target, "%s", c->target);
        e->has_route = c->route != NULL;
        snprintf(e->route, sizeof e->route, "%s", c->route ? c->route : "");
        e->accessor_agrees =
            c->req != NULL && vg_request_route(c->req) == c->route;
        e->status = c->status;
        e->bytes = c->body_bytes;
        e->why = c->cancelled;
    }
    pthread_mutex_unlock(&d->lock);
    tu_latch_add(&d->count, 1);
}

static int done_count(done_log *d)
{
    int n;

    pthread_mutex_lock(&d->lock);
    n = d->n;
    pthread_mutex_unlock(&d->lock);
    return n;
}

/* The i-th completion (0-based), once it has happened. */
static done_entry done_get(done_log *d, int i)
{
    done_entry e;

    ck_assert_msg(tu_latch_wait(&d->count, i + 1, WAIT_MS),
                  "completion %d never came", i);
    pthread_mutex_lock(&d->lock);
    e = d->e[i];
    pthread_mutex_unlock(&d->lock);
    ck_assert(e.accessor_agrees);
    return e;
}

static vg_app *hooked_app(done_log *d)
{
    vg_app *app = tu_app_new();

    done_init(d);
    ck_assert_int_eq(vg_app_on_complete(app, on_done, d), 0);
    return app;
}

START_TEST(completion_hook_reports_status_bytes_and_route)
{
    done_log d;
    vg_app *app = hooked_app(&d);
    vg_group *api = vg_app_group(app, "/api"), *v1;
    unsigned short port;
    tu_response r;
    done_entry e;

    ck_assert_ptr_nonnull(api);
    v1 = vg_group_group(api, "/v1");
    ck_assert_ptr_nonnull(v1);
    ck_assert_int_eq(vg_map_get(app, "/text", hello, NULL), 0);
    ck_assert_int_eq(vg_group_map_get(v1, "/users/{id}", h_route, NULL), 0);
    tu_start(app);
    port = vg_app_port(app);

    expect_status(port, "GET", "/text?q=1", 200);
    e = done_get(&d, 0);
    ck_assert_str_eq(e.method, "GET");
    ck_assert_str_eq(e.target, "/text?q=1");
    ck_assert_str_eq(e.route, "/text");
    ck_assert_uint_eq(e.status, 200);
    ck_assert_uint_eq(e.bytes, 5);
    ck_assert_int_eq(e.why, VG_CANCEL_NONE);

    expect_status(port, "HEAD", "/text", 200);
    e = done_get(&d, 1);
    ck_assert_str_eq(e.method, "HEAD");
    ck_assert_str_eq(e.route, "/text");
    ck_assert_uint_eq(e.status, 200);
    ck_assert_uint_eq(e.bytes, 0); /* no body goes out for HEAD */

    r = expect(port, "GET", "/api/v1/users/7", 200);
    ck_assert_str_eq(r.body, "/api/v1/users/{id} id=7");
    tu_response_free(&r);
    e = done_get(&d, 2);
    ck_assert(e.has_route);
    ck_assert_str_eq(e.route, "/api/v1/users/{id}");
    ck_assert_uint_eq(e.bytes, strlen("/api/v1/users/{id} id=7"));

    expect_status(port, "GET", "/nope", 404);
    e = done_get(&d, 3);
    ck_assert(!e.has_route);
    ck_assert_uint_eq(e.status, 404);
    ck_assert_uint_eq(e.bytes, strlen("not found\n"));
    vg_app_free(app);
    done_destroy(&d);
}
END_TEST

START_TEST(completion_hook_runs_for_a_stream_once_it_ended)
{
    done_log d;
    vg_app *app = hooked_app(&d);
    handoff h;
    vg_stream *s;
    client c;
    done_entry e;

    handoff_init(&h);
    ck_assert_int_eq(vg_map_get(app, "/stream", h_stream, &h), 0);
    tu_start(app);
    client_start(&c, vg_app_port(app), "GET", "/stream");
    s = handoff_stream(&h);
    ck_assert_int_eq(vg_stream_write(s, "0123456789", 10), 0);
    ck_assert_int_eq(vg_stream_write(s, "abcde", 5), 0);
    ck_assert_int_eq(done_count(&d), 0);
    vg_stream_end(s);
    client_join(&c);
    ck_assert_str_eq(c.r.body, "0123456789abcde");
    tu_response_free(&c.r);
    e = done_get(&d, 0);
    ck_assert_uint_eq(e.status, 200);
    ck_assert_uint_eq(e.bytes, 15);
    ck_assert_str_eq(e.route, "/stream");
    ck_assert_int_eq(e.why, VG_CANCEL_NONE);
    vg_app_free(app);
    ck_assert_int_eq(done_count(&d), 1);
    handoff_destroy(&h);
    done_destroy(&d);
}
END_TEST

START_TEST(completion_hook_runs_for_deferred_only_when_finished)
{
    done_log d;
    vg_app *app = hooked_app(&d);
    handoff h;
    vg_request *req;
    char buf[4096];
    done_entry e;
    int fd;

    handoff_init(&h);
    ck_assert_int_eq(vg_map_get(app, "/defer", h_defer, &h), 0);
    tu_start(app);
    fd = tu_connect(vg_app_port(app));
    ck_assert(tu_send_all(fd, "GET /defer HTTP/1.1\r\nHost: x\r\n\r\n", 32));
    req = handoff_request(&h);
    ck_assert_int_eq(done_count(&d), 0);
    ck_assert_int_eq(vg_request_finish(req, vg_text("done!")), 0);
    ck_assert_uint_gt(tu_recv_response(fd, buf, sizeof buf), 0);
    e = done_get(&d, 0);
    ck_assert_uint_eq(e.status, 200);
    ck_assert_uint_eq(e.bytes, 5);
    ck_assert_str_eq(e.route, "/defer");
    close(fd);
    vg_app_free(app);
    ck_assert_int_eq(done_count(&d), 1);
    handoff_destroy(&h);
    done_destroy(&d);
}
END_TEST

START_TEST(completion_hook_reports_client_gone_for_an_aborted_request)
{
    done_log d;
    vg_app *app = hooked_app(&d);
    holder h;
    done_entry e;
    int fd;

    tu_latch_init(&h.started);
    h.release = vg_token_new();
    ck_assert_int_eq(vg_map_get(app, "/hold", h_hold, &h), 0);
    tu_start(app);
    fd = tu_connect(vg_app_port(app));
    ck_assert(tu_send_all(fd, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n", 31));
    ck_assert(tu_latch_wait(&h.started, 1, WAIT_MS));
    tu_close_rst(fd);
    e = done_get(&d, 0);
    ck_assert_int_eq(e.why, VG_CANCEL_CLIENT_GONE);
    ck_assert_uint_eq(e.status, 0);
    ck_assert_uint_eq(e.bytes, 0);
    ck_assert_str_eq(e.route, "/hold");
    vg_app_free(app);
    vg_token_unref(h.release);
    tu_latch_destroy(&h.started);
    done_destroy(&d);
}
END_TEST

/* ---- What a request tells ---- */

typedef struct {
    char text[512];
    int calls, stop_at;
} header_walk;

static int collect_header(const char *name, const char *value, void *arg)
{
    header_walk *w = arg;
    size_t n = strlen(w->text);

    snprintf(w->text + n, sizeof w->text - n, "%s=%s|", name, value);
    return ++w->calls == w->stop_at ? 7 : 0;
}

static vg_result *h_describe(vg_request *req, void *arg)
{
    header_walk all = {"", 0, 0}, two = {"", 0, 2};
    int rc_all, rc_two, rc_null;
    const char *addr = vg_request_client_addr(req);
    const char *allow = vg_request_allow(req);

    (void)arg;
    rc_all = vg_request_headers(req, collect_header, &all);
    rc_two = vg_request_headers(req, collect_header, &two);
    rc_null = vg_request_headers(req, NULL, NULL);
    return vg_textf("all=%d:%s\ntwo=%d:%s\nnull=%d\naddr=%s\ntarget=%s\n"
                    "route=%s\nallow=%s\n",
                    rc_all, all.text, rc_two, two.text, rc_null,
                    addr ? addr : "(null)", vg_request_target(req),
                    vg_request_route(req), allow ? allow : "(null)");
}

START_TEST(request_headers_arrive_in_order_with_duplicates)
{
    vg_app *app = tu_app_new();
    char buf[8192], *body;
    int fd;

    ck_assert_int_eq(vg_map_get(app, "/h/{id}", h_describe, NULL), 0);
    ck_assert_int_eq(vg_map_post(app, "/h/{id}", h_describe, NULL), 0);
    tu_start(app);
    fd = tu_connect(vg_app_port(app));
    raw_exchange(fd,
                 "GET /h/7?x=%41&y HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n"
                 "Cookie: c=1\r\nX-B: b\r\nX-A: 2\r\nCookie: d=2\r\n\r\n",
                 buf, sizeof buf);
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "%s", buf);
    body = strstr(buf, "\r\n\r\n");
    ck_assert_ptr_nonnull(body);
    ck_assert_str_eq(body + 4,
                     "all=0:Host=x|X-A=1|Cookie=c=1|X-B=b|X-A=2|Cookie=d=2|\n"
                     "two=7:Host=x|X-A=1|\n"
                     "null=-22\n"
                     "addr=127.0.0.1\n"
                     "target=/h/7?x=%41&y\n"
                     "route=/h/{id}\n"
                     "allow=GET, HEAD, POST, OPTIONS\n");
    ck_assert_int_eq(vg_request_headers(NULL, collect_header, NULL), -EINVAL);
    ck_assert_ptr_null(vg_request_client_addr(NULL));
    vg_app_free(app);
}
END_TEST

/* ---- Request data ---- */

/* Counts frees per tag; a latch for the total. */
typedef struct {
    atomic_int frees[4];
    tu_latch freed;
} tracker;

typedef struct {
    tracker *t;
    int tag;
} datum;

static void tracker_init(tracker *t)
{
    int i;

    for (i = 0; i < 4; i++)
        atomic_init(&t->frees[i], 0);
    tu_latch_init(&t->freed);
}

static datum *datum_new(tracker *t, int tag)
{
    datum *d = malloc(sizeof *d);

    if (d != NULL) {
        d->t = t;
        d->tag = tag;
    }
    return d;
}

static void datum_free(void *p)
{
    datum *d = p;
    tracker *t = d->t;

    atomic_fetch_add(&t->frees[d->tag], 1);
    free(d);
    tu_latch_add(&t->freed, 1);
}

static const char key_a = 'a', key_b = 'b', key_filter = 'f';

/* Sets, replaces and reads data; answers "ok" or what went wrong. */
static vg_result *h_data(vg_request *req, void *arg)
{
    tracker *t = arg;
    datum *a = datum_new(t, 0), *b = datum_new(t, 1), *c = datum_new(t, 2);
    static int not_owned;

    if (a == NULL || b == NULL || c == NULL)
        return NULL;
    if (vg_request_set_data(req, &key_a, a, datum_free) != 0 ||
        vg_request_data(req, &key_a) != a)
        return vg_text("set");
    if (vg_request_set_data(req, &key_a, b, datum_free) != 0 ||
        vg_request_data(req, &key_a) != b)
        return vg_text("replace");
    if (atomic_load(&t->frees[0]) != 1) /* the old value, at once */
        return vg_text("old value not freed");
    if (vg_request_set_data(req, &key_a, b, datum_free) != 0 ||
        atomic_load(&t->frees[1]) != 0) /* the same value again: kept */
        return vg_text("same value freed");
    if (vg_request_set_data(req, &key_b, c, datum_free) != 0 ||
        vg_request_data(req, &key_b) != c || vg_request_data(req, &key_a) != b)
        return vg_text("second key");
    if (vg_request_data(req, &key_filter) != NULL)
        return vg_text("unknown key");
    if (vg_request_set_data(NULL, &key_a, &not_owned, NULL) != -EINVAL ||
        vg_request_set_data(req, NULL, &not_owned, NULL) != -EINVAL ||
        vg_request_data(NULL, &key_a) != NULL)
        return vg_text("einval");
    return vg_text("ok");
}

START_TEST(request_data_set_replace_and_get)
{
    vg_app *app = tu_app_new();
    tracker t;
    tu_response r;

    tracker_init(&t);
    ck_assert_int_eq(vg_map_get(app, "/data", h_data, &t), 0);
    tu_start(app);
    r = expect(vg_app_port(app), "GET", "/data", 200);
    ck_assert_str_eq(r.body, "ok");
    tu_response_free(&r);
    ck_assert(tu_latch_wait(&t.freed, 3, WAIT_MS));
    vg_app_free(app);
    ck_assert_int_eq(atomic_load(&t.frees[0]), 1);
    ck_assert_int_eq(atomic_load(&t.frees[1]), 1);
    ck_assert_int_eq(atomic_load(&t.frees[2]), 1);
    tu_latch_destroy(&t.freed);
}
END_TEST

/* Data set by a filter (libmicrohttpd's thread, tag 0) and by the route's
 * handler (tag 1) before it answers as `inner` does. */
typedef struct {
    tracker t;
    handoff h;
    vg_handler inner;
} data_ctx;

static vg_result *f_data(vg_request *req, void *arg)
{
    data_ctx *ctx = arg;

    if (vg_request_set_data(req, &key_filter, datum_new(&ctx->t, 0),
                            datum_free) != 0)
        return vg_status(500);
    return NULL;
}

static vg_result *h_data_then(vg_request *req, void *arg)
{
    data_ctx *ctx = arg;

    if (vg_request_data(req, &key_filter) == NULL ||
        vg_request_set_data(req, &key_a, datum_new(&ctx->t, 1),
                            datum_free) != 0)
        return NULL;
    return ctx->inner(req, &ctx->h);
}

static vg_app *data_app(data_ctx *ctx, vg_handler inner)
{
    vg_app *app = tu_app_new();

    memset(ctx, 0, sizeof *ctx);
    tracker_init(&ctx->t);
    handoff_init(&ctx->h);
    ctx->inner = inner;
    ck_assert_int_eq(vg_app_filter(app, f_data, ctx), 0);
    ck_assert_int_eq(vg_app_use(app, mw_count, &ctx->h.kept), 0);
    ck_assert_int_eq(vg_map_get(app, "/x", h_data_then, ctx), 0);
    tu_start(app);
    return app;
}

/* Both values freed exactly once, also after the app is gone. */
static void expect_freed_once(vg_app *app, data_ctx *ctx)
{
    ck_assert(tu_latch_wait(&ctx->t.freed, 2, WAIT_MS));
    vg_app_free(app);
    ck_assert_int_eq(atomic_load(&ctx->t.frees[0]), 1);
    ck_assert_int_eq(atomic_load(&ctx->t.frees[1]), 1);
    tu_latch_destroy(&ctx->t.freed);
    handoff_destroy(&ctx->h);
}

START_TEST(request_data_freed_once_after_a_normal_request)
{
    data_ctx ctx;
    vg_app *app = data_app(&ctx, hello);
    tu_response r = expect(vg_app_port(app), "GET", "/x", 200);

    ck_assert_str_eq(r.body, "hello");
    tu_response_free(&r);
    expect_freed_once(app, &ctx);
}
END_TEST

START_TEST(request_data_freed_once_after_a_deferred_request)
{
    data_ctx ctx;
    vg_app *app = data_app(&ctx, h_defer);
    vg_request *req;
    char buf[4096];
    int fd = tu_connect(vg_app_port(app));

    ck_assert(tu_send_all(fd, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n", 28));
    req = handoff_request(&ctx.h);
    /* Still held by the deferred request. */
    ck_assert_int_eq(atomic_load(&ctx.t.frees[0]), 0);
    ck_assert_int_eq(atomic_load(&ctx.t.frees[1]), 0);
    ck_assert_int_eq(vg_request_finish(req, vg_text("finished")), 0);
    ck_assert_uint_gt(tu_recv_response(fd, buf, sizeof buf), 0);
    ck_assert_ptr_nonnull(strstr(buf, "\r\n\r\nfinished"));
    close(fd);
    expect_freed_once(app, &ctx);
}
END_TEST

START_TEST(request_data_freed_once_after_a_streamed_request)
{
    data_ctx ctx;
    vg_app *app = data_app(&ctx, h_stream);
    vg_stream *s;
    client c;

    client_start(&c, vg_app_port(app), "GET", "/x");
    s = handoff_stream(&ctx.h);
    ck_assert_int_eq(vg_stream_write(s, "streamed", 8), 0);
    /* Still held while the stream is open. */
    ck_assert_int_eq(atomic_load(&ctx.t.frees[0]), 0);
    ck_assert_int_eq(atomic_load(&ctx.t.frees[1]), 0);
    vg_stream_end(s);
    client_join(&c);
    ck_assert_str_eq(c.r.body, "streamed");
    tu_response_free(&c.r);
    expect_freed_once(app, &ctx);
}
END_TEST

/* ---- Configuration errors ---- */

/* Keeps every error line the app logs. */
typedef struct {
    pthread_mutex_t lock;
    char text[4096];
} log_lines;

static void log_keep(vg_log_level level, const char *msg, void *arg)
{
    log_lines *l = arg;
    size_t n;

    if (level != VG_LOG_ERROR)
        return;
    pthread_mutex_lock(&l->lock);
    n = strlen(l->text);
    snprintf(l->text + n, sizeof l->text - n, "%s\n", msg);
    pthread_mutex_unlock(&l->lock);
}

static vg_app *logged_app(log_lines *l)
{
    vg_app *app = vg_app_new("127.0.0.1:0");

    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->lock, NULL);
    ck_assert_ptr_nonnull(app);
    ck_assert_int_eq(vg_app_set_logger(app, log_keep, l, VG_LOG_ERROR), 0);
    return app;
}

static bool logged(log_lines *l, const char *needle)
{
    bool found;

    pthread_mutex_lock(&l->lock);
    found = strstr(l->text, needle) != NULL;
    pthread_mutex_unlock(&l->lock);
    return found;
}

static void expect_no_group(vg_group *g)
{
    int e = errno;

    ck_assert_ptr_null(g);
    ck_assert_int_eq(e, EINVAL);
}

START_TEST(invalid_group_prefixes_are_refused)
{
    log_lines l;
    vg_app *app = logged_app(&l);
    vg_group *api;

    errno = 0;
    expect_no_group(vg_app_group(app, NULL));
    errno = 0;
    expect_no_group(vg_app_group(app, "api"));
    errno = 0;
    expect_no_group(vg_app_group(app, "/api/"));
    errno = 0;
    expect_no_group(vg_app_group(app, "/a/{*r}"));
    errno = 0;
    expect_no_group(vg_app_group(app, ""));
    errno = 0;
    expect_no_group(vg_app_group(NULL, "/api"));
    errno = 0;
    expect_no_group(vg_group_group(NULL, "/v1"));
    api = vg_app_group(app, "/api");
    ck_assert_ptr_nonnull(api);
    errno = 0;
    expect_no_group(vg_group_group(api, "v1"));
    errno = 0;
    expect_no_group(vg_group_group(api, "/v1/{*rest}"));
    ck_assert(logged(&l, "/api/a/{*r}") || logged(&l, "/a/{*r}"));
    ck_assert(logged(&l, "/apiv1"));
    ck_assert_int_eq(vg_group_use(NULL, mw_count, NULL), -EINVAL);
    ck_assert_int_eq(vg_group_use(api, NULL, NULL), -EINVAL);
    ck_assert_int_eq(vg_group_filter(api, NULL, NULL), -EINVAL);
    ck_assert_int_eq(vg_group_set_timeout(NULL, 10), -EINVAL);
    ck_assert_int_eq(vg_app_use(NULL, mw_count, NULL), -EINVAL);
    ck_assert_int_eq(vg_app_use(app, NULL, NULL), -EINVAL);
    ck_assert_int_eq(vg_app_filter(app, NULL, NULL), -EINVAL);
    ck_assert_int_eq(vg_app_on_complete(app, NULL, NULL), -EINVAL);
    ck_assert_int_eq(vg_group_map_get(api, "users", hello, NULL), -EINVAL);
    ck_assert_int_eq(vg_group_map_get(api, "/users/", hello, NULL), -EINVAL);
    ck_assert(logged(&l, "/api/users/"));
    vg_app_free(app);
    pthread_mutex_destroy(&l.lock);
}
END_TEST

START_TEST(duplicate_route_in_a_group_is_eexist_naming_the_joined_pattern)
{
    log_lines l;
    vg_app *app = logged_app(&l);
    vg_group *api = vg_app_group(app, "/api"), *v1;

    ck_assert_ptr_nonnull(api);
    v1 = vg_group_group(api, "/v1");
    ck_assert_ptr_nonnull(v1);
    ck_assert_int_eq(vg_group_map_get(v1, "/users/{id}", hello, NULL), 0);
    ck_assert(!logged(&l, "/api/v1/users"));
    ck_assert_int_eq(vg_group_map_get(v1, "/users/{id}", hello, NULL), -EEXIST);
    ck_assert(logged(&l, "GET /api/v1/users/{id}"));
    /* The same shape with another parameter name, and on the app. */
    ck_assert_int_eq(vg_group_map_get(v1, "/users/{name}", hello, NULL),
                     -EEXIST);
    ck_assert(logged(&l, "GET /api/v1/users/{name}"));
    ck_assert_int_eq(vg_map_get(app, "/api/v1/users/{x}", hello, NULL),
                     -EEXIST);
    /* Another method on the same pattern is fine. */
    ck_assert_int_eq(vg_group_map_post(v1, "/users/{id}", hello, NULL), 0);
    vg_app_free(app);
    pthread_mutex_destroy(&l.lock);
}
END_TEST

static void ignore_done(const vg_completion *c, void *arg)
{
    (void)c;
    (void)arg;
}

START_TEST(registration_after_start_is_ebusy)
{
    vg_app *app = tu_app_new();
    vg_group *g = vg_app_group(app, "/g");

    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(vg_group_map_get(g, "/x", hello, NULL), 0);
    tu_start(app);
    ck_assert_int_eq(vg_app_use(app, mw_count, NULL), -EBUSY);
    ck_assert_int_eq(vg_app_filter(app, f_trace, NULL), -EBUSY);
    ck_assert_int_eq(vg_app_on_complete(app, ignore_done, NULL), -EBUSY);
    ck_assert_int_eq(vg_app_set_fallback(app, hello, NULL), -EBUSY);
    ck_assert_int_eq(vg_app_set_error_handler(app, on_error, NULL), -EBUSY);
    ck_assert_int_eq(vg_app_use_problem_details(app), -EBUSY);
    ck_assert_int_eq(vg_group_use(g, mw_count, NULL), -EBUSY);
    ck_assert_int_eq(vg_group_filter(g, f_trace, NULL), -EBUSY);
    ck_assert_int_eq(vg_group_set_timeout(g, 10), -EBUSY);
    ck_assert_int_eq(vg_group_map_get(g, "/y", hello, NULL), -EBUSY);
    ck_assert_int_eq(vg_group_map_post(g, "/x", hello, NULL), -EBUSY);
    errno = 0;
    ck_assert_ptr_null(vg_app_group(app, "/late"));
    ck_assert_int_eq(errno, EBUSY);
    errno = 0;
    ck_assert_ptr_null(vg_group_group(g, "/late"));
    ck_assert_int_eq(errno, EBUSY);
    /* What was registered before still serves. */
    expect_status(vg_app_port(app), "GET", "/g/x", 200);
    expect_status(vg_app_port(app), "GET", "/g/y", 404);
    vg_app_free(app);
}
END_TEST

static Suite *pipeline_suite(void)
{
    Suite *s = suite_create("pipeline");
    TCase *mw = tcase_create("middleware"), *groups = tcase_create("groups"),
          *lib = tcase_create("library answers"),
          *later = tcase_create("deferred and streamed"),
          *errs = tcase_create("errors"), *filters = tcase_create("filters"),
          *hooks = tcase_create("completion hooks"),
          *reqs = tcase_create("requests"),
          *conf = tcase_create("configuration");
    TCase *all[] = {mw, groups, lib, later, errs, filters, hooks, reqs, conf};
    size_t i;

    tcase_add_test(mw, middleware_runs_app_then_outer_then_inner_group_and_unwinds);
    tcase_add_test(mw, middleware_short_circuits_with_401_and_handler_never_runs);
    tcase_add_test(mw, middleware_decorates_the_result_that_came_back);
    tcase_add_test(mw, middleware_replaces_the_result_and_frees_the_old_one);
    tcase_add_test(mw, next_run_twice_is_ealready_and_null_next_is_einval);
    tcase_add_test(mw, middleware_returning_null_answers_500);
    tcase_add_test(mw, inline_route_middleware_runs_on_the_handler_mhd_thread);
    tcase_add_test(mw, client_leaving_while_middleware_blocks_cancels_its_token);

    tcase_add_test(groups, nested_group_prefixes_are_joined);
    tcase_add_test(groups, group_timeout_answers_504_for_a_slow_handler);
    tcase_add_test(groups, nested_group_timeout_and_route_timeout_win);

    tcase_add_test(lib, app_middleware_sees_404_and_405_on_a_worker);
    tcase_add_test(lib, app_middleware_sees_the_fallback_which_runs_on_a_worker);
    tcase_add_test(lib, misses_without_app_middleware_are_still_404_and_405);
    tcase_add_test(lib, group_middleware_does_not_run_for_misses);
    tcase_add_test(lib, options_asterisk_lists_every_mapped_method);
    tcase_add_test(lib, options_on_a_routed_path_answers_204_with_its_allow);
    tcase_add_test(lib, mapped_options_route_wins);
    tcase_add_test(lib, options_on_an_unknown_path_is_404);

    tcase_add_test(later, deferred_result_passes_three_middlewares_unchanged);
    tcase_add_test(later, streamed_result_is_decorated_by_middleware_and_streams);

    tcase_add_test(errs, problem_document_for_404);
    tcase_add_test(errs, problem_document_for_405_keeps_allow);
    tcase_add_test(errs, problem_document_for_413_over_the_body_limit);
    tcase_add_test(errs, problem_document_for_504_says_cancelled_timeout);
    tcase_add_test(errs, problem_document_for_503_at_shutdown_says_cancelled_shutdown);
    tcase_add_test(errs, problem_and_problem_set_build_documents);
    tcase_add_test(errs, error_handler_shapes_every_library_error);
    tcase_add_test(errs, error_handler_returning_null_gives_the_built_in_text);

    tcase_add_test(filters, filters_run_app_then_groups_in_order_before_middleware);
    tcase_add_test(filters, filter_answers_at_once_on_the_mhd_thread);
    tcase_add_test(filters, filter_response_header_reaches_every_answer);

    tcase_add_test(hooks, completion_hook_reports_status_bytes_and_route);
    tcase_add_test(hooks, completion_hook_runs_for_a_stream_once_it_ended);
    tcase_add_test(hooks, completion_hook_runs_for_deferred_only_when_finished);
    tcase_add_test(hooks, completion_hook_reports_client_gone_for_an_aborted_request);

    tcase_add_test(reqs, request_headers_arrive_in_order_with_duplicates);
    tcase_add_test(reqs, request_data_set_replace_and_get);
    tcase_add_test(reqs, request_data_freed_once_after_a_normal_request);
    tcase_add_test(reqs, request_data_freed_once_after_a_deferred_request);
    tcase_add_test(reqs, request_data_freed_once_after_a_streamed_request);

    tcase_add_test(conf, invalid_group_prefixes_are_refused);
    tcase_add_test(conf, duplicate_route_in_a_group_is_eexist_naming_the_joined_pattern);
    tcase_add_test(conf, registration_after_start_is_ebusy);

    for (i = 0; i < sizeof all / sizeof all[0]; i++) {
        tcase_set_timeout(all[i], 60);
        suite_add_tcase(s, all[i]);
    }
    return s;
}

int main(void)
{
    return tu_main(pipeline_suite());
}
