/* test_ratelimit.c - rate limiting (lib/web/ratelimit.c): GCRA's
 * arithmetic on the table with an injected clock (exactly N allowed, the
 * N+1-th refused, Retry-After, replenishment), a bounded table under
 * 1,000,000 distinct keys, exactness with 16 threads; then over HTTP on a
 * real app: 16 client threads, the 429's headers, problem documents, keys
 * from a header or a callback, per-route limits, refusals that never
 * reach a worker, and X-Forwarded-For that cannot buy a fresh budget. */
#ifdef HAVE_CONFIG_H
#include "config.h"
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
#include "web/ratelimit.h"
#include "testutil.h"

#define WAIT_MS 10000
#define S 1000000000ull /* one second in ns */

/* ---- The table, with an injected clock ---- */

START_TEST(test_exactly_limit_allowed_then_refused)
{
    vg_ratelimit *rl = vg_ratelimit_new(5, 10000);
    vg_ratelimit_info in;
    uint64_t t0 = 1000 * S;
    unsigned i;

    ck_assert_ptr_nonnull(rl);
    for (i = 0; i < 5; i++) {
        ck_assert_int_eq(vg__ratelimit_take_at(rl, "k", 1, t0, &in), 0);
        ck_assert_uint_eq(in.remaining, 4 - i);
        ck_assert_uint_eq(in.limit, 5);
        ck_assert_uint_eq(in.window_ms, 10000);
    }
    ck_assert_int_eq(vg__ratelimit_take_at(rl, "k", 1, t0, &in), -EAGAIN);
    ck_assert_uint_eq(in.remaining, 0);
    /* One request's worth (10 s / 5) must pass before the next. */
    ck_assert_uint_eq(in.retry_after_ms, 2000);
    ck_assert_uint_eq(in.reset_ms, 10000);
    ck_assert_int_eq(vg__ratelimit_take_at(rl, "k", 1, t0 + S, &in), -EAGAIN);
    ck_assert_uint_eq(in.retry_after_ms, 1000);
    ck_assert_int_eq(vg__ratelimit_take_at(rl, "k", 1, t0 + 2 * S, &in), 0);
    ck_assert_uint_eq(in.remaining, 0);
    ck_assert_int_eq(vg__ratelimit_take_at(rl, "k", 1, t0 + 2 * S, &in),
                     -EAGAIN);
    /* Another key has its own budget. */
    ck_assert_int_eq(vg__ratelimit_take_at(rl, "j", 1, t0, &in), 0);
    ck_assert_uint_eq(in.remaining, 4);
    /* After a whole window the budget is whole again. */
    ck_assert_int_eq(vg__ratelimit_take_at(rl, "k", 1, t0 + 12 * S, &in), 0);
    ck_assert_uint_eq(in.remaining, 4);
    vg_ratelimit_free(rl);
}
END_TEST

START_TEST(test_refused_take_costs_nothing)
{
    vg_ratelimit *rl = vg_ratelimit_new(1, 1000);
    vg_ratelimit_info in;
    unsigned long long ok, no;
    int i;

    ck_assert_int_eq(vg__ratelimit_take_at(rl, "a", 1, 5 * S, &in), 0);
    for (i = 0; i < 100; i++)
        ck_assert_int_eq(vg__ratelimit_take_at(rl, "a", 1, 5 * S, &in),
                         -EAGAIN);
    /* Hammering while refused does not push the next allowance away. */
    ck_assert_int_eq(vg__ratelimit_take_at(rl, "a", 1, 6 * S, &in), 0);
    vg_ratelimit_counts(rl, &ok, &no);
    ck_assert_uint_eq(ok, 2);
    ck_assert_uint_eq(no, 100);
    vg_ratelimit_free(rl);
}
END_TEST

/* Resident set size in bytes, from /proc/self/statm. */
static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%lu %lu", &size, &resident), 2);
    fclose(f);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

START_TEST(test_million_keys_leave_memory_bounded)
{
    vg_ratelimit *rl = vg_ratelimit_new(1, 60000);
    size_t before, warm = 0, after, table;
    char key[32];
    unsigned i, refused = 0;
    int n;

    ck_assert_int_eq(vg_ratelimit_set_capacity(rl, 65536), 0);
    table = vg__ratelimit_table_bytes(rl);
    ck_assert_uint_eq(table, 65536 * 16);
    before = rss_bytes();
    for (i = 0; i < 1000000; i++) {
        if (i == 200000)
            warm = rss_bytes(); /* every set of the table touched by now */
        n = snprintf(key, sizeof key, "10.%u.%u.%u", i >> 16, (i >> 8) & 255,
                     i & 255);
        /* Counted, not asserted here: each Check assertion allocates
         * (its location message), which would be measured as growth. */
        if (vg__ratelimit_take_at(rl, key, (size_t)n, S + i * 1000ull,
                                  NULL) != 0)
            refused++;
    }
    ck_assert_uint_eq(refused, 0);
    after = rss_bytes();
    /* The table is the only thing that grows, and it never grows. */
    ck_assert_uint_eq(vg__ratelimit_table_bytes(rl), table);
    /* 800,000 more keys after the table was full cost nothing... */
    ck_assert_msg(after < warm + 512 * 1024,
                  "RSS grew by %zu bytes from key 200,000 to 1,000,000",
                  after - warm);
    /* ...and the whole run no more than the table (times the shadow
     * memory a sanitizer keeps for it). */
    ck_assert_msg(after < before + 5 * table + 1024 * 1024,
                  "RSS grew by %zu bytes for a %zu-byte table",
                  after - before, table);
    /* Recent keys are still remembered: their budget is spent. */
    n = snprintf(key, sizeof key, "10.%u.%u.%u", 999999u >> 16,
                 (999999u >> 8) & 255, 999999u & 255);
    ck_assert_int_eq(vg__ratelimit_take_at(rl, key, (size_t)n,
                                           S + 1000000 * 1000ull, NULL),
                     -EAGAIN);
    vg_ratelimit_free(rl);
}
END_TEST

static atomic_uint thread_allowed;

static void *take_many(void *arg)
{
    vg_ratelimit *rl = arg;
    int i;

    for (i = 0; i < 1000; i++)
        if (vg_ratelimit_take(rl, "shared", 6, NULL) == 0)
            atomic_fetch_add(&thread_allowed, 1);
    return NULL;
}

START_TEST(test_sixteen_threads_share_one_budget_exactly)
{
    /* An hour's window: the test's few milliseconds earn no extra. */
    vg_ratelimit *rl = vg_ratelimit_new(777, 3600 * 1000);
    pthread_t th[16];
    int i;

    atomic_store(&thread_allowed, 0);
    for (i = 0; i < 16; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, take_many, rl), 0);
    for (i = 0; i < 16; i++)
        pthread_join(th[i], NULL);
    ck_assert_uint_eq(atomic_load(&thread_allowed), 777);
    vg_ratelimit_free(rl);
}
END_TEST

START_TEST(test_configuration_errors)
{
    vg_ratelimit *rl;
    vg_app *app;

    errno = 0;
    ck_assert_ptr_null(vg_ratelimit_new(0, 1000));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(vg_ratelimit_new(10, 0));
    rl = vg_ratelimit_new(10, 1000);
    ck_assert_int_eq(vg_ratelimit_set_key_header(rl, "Bad Name"), -EINVAL);
    ck_assert_int_eq(vg_ratelimit_set_key_header(rl, ""), -EINVAL);
    ck_assert_int_eq(vg_ratelimit_set_key_fn(rl, NULL, NULL), -EINVAL);
    ck_assert_int_eq(vg_ratelimit_set_name(rl, "a\"b"), -EINVAL);
    ck_assert_int_eq(vg_ratelimit_set_capacity(rl, 0), -EINVAL);
    ck_assert_int_eq(vg_ratelimit_take(NULL, "k", 1, NULL), -EINVAL);
    ck_assert_int_eq(vg_ratelimit_take(rl, NULL, 0, NULL), -EINVAL);
    app = tu_app_new();
    ck_assert_int_eq(vg_app_use_ratelimit(app, NULL), -EINVAL);
    ck_assert_int_eq(vg_app_use_ratelimit(app, rl), 0);
    /* Attached: frozen. */
    ck_assert_int_eq(vg_ratelimit_set_name(rl, "other"), -EBUSY);
    ck_assert_int_eq(vg_ratelimit_set_capacity(rl, 10), -EBUSY);
    /* A limiter already serving the app cannot be bound to one route. */
    ck_assert_int_eq(vg_map_ratelimit(app, "GET", "/x", rl), -EBUSY);
    vg_app_free(app);
    vg_ratelimit_free(rl);
    vg_ratelimit_free(NULL);
}
END_TEST

/* ---- Over HTTP ---- */

static atomic_uint handled;

static vg_result *hello(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    atomic_fetch_add(&handled, 1);
    return vg_text("hello");
}

typedef struct {
    unsigned short port;
    atomic_uint ok, refused, other;
} flood;

static void *get_five(void *arg)
{
    flood *f = arg;
    tu_response r;
    int i;

    for (i = 0; i < 5; i++) {
        r = tu_get(f->port, "/hello");
        if (r.status == 200)
            atomic_fetch_add(&f->ok, 1);
        else if (r.status == 429)
            atomic_fetch_add(&f->refused, 1);
        else
            atomic_fetch_add(&f->other, 1);
        tu_response_free(&r);
    }
    return NULL;
}

START_TEST(test_http_sixteen_clients_nth_plus_one_refused)
{
    vg_app *app = tu_app_new();
    vg_ratelimit *rl = vg_ratelimit_new(50, 3600 * 1000);
    pthread_t th[16];
    flood f = {0};
    int i;

    atomic_store(&handled, 0);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    ck_assert_int_eq(vg_app_use_ratelimit(app, rl), 0);
    tu_start(app);
    f.port = vg_app_port(app);
    for (i = 0; i < 16; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, get_five, &f), 0);
    for (i = 0; i < 16; i++)
        pthread_join(th[i], NULL);
    ck_assert_uint_eq(atomic_load(&f.ok), 50);
    ck_assert_uint_eq(atomic_load(&f.refused), 30);
    ck_assert_uint_eq(atomic_load(&f.other), 0);
    /* Refused requests never reached the handler. */
    ck_assert_uint_eq(atomic_load(&handled), 50);
    vg_app_free(app);
    vg_ratelimit_free(rl);
}
END_TEST

START_TEST(test_http_429_headers)
{
    vg_app *app = tu_app_new();
    vg_ratelimit *rl = vg_ratelimit_new(2, 10000);
    tu_response r;
    char *h;

    ck_assert_int_eq(vg_ratelimit_set_headers(rl, true), 0);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    ck_assert_int_eq(vg_app_use_ratelimit(app, rl), 0);
    tu_start(app);
    r = tu_get(vg_app_port(app), "/hello");
    ck_assert_int_eq(r.status, 200);
    h = tu_header(&r, "RateLimit-Policy");
    ck_assert_str_eq(h, "\"default\";q=2;w=10");
    free(h);
    h = tu_header(&r, "RateLimit");
    ck_assert_str_eq(h, "\"default\";r=1;t=5");
    free(h);
    ck_assert_ptr_null(tu_header(&r, "Retry-After"));
    tu_response_free(&r);
    r = tu_get(vg_app_port(app), "/hello");
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    r = tu_get(vg_app_port(app), "/hello");
    ck_assert_int_eq(r.status, 429);
    /* 5 s (10 s / 2) from the first request, ceiled to whole seconds. */
    h = tu_header(&r, "Retry-After");
    ck_assert_str_eq(h, "5");
    free(h);
    h = tu_header(&r, "RateLimit");
    ck_assert_str_eq(h, "\"default\";r=0;t=10");
    free(h);
    h = tu_header(&r, "RateLimit-Policy");
    ck_assert_str_eq(h, "\"default\";q=2;w=10");
    free(h);
    ck_assert_str_eq(r.body, "too many requests\n");
    tu_response_free(&r);
    vg_app_free(app);
    vg_ratelimit_free(rl);
}
END_TEST

START_TEST(test_http_429_is_a_problem_document)
{
    vg_app *app = tu_app_new();
    vg_ratelimit *rl = vg_ratelimit_new(1, 60000);
    tu_response r;
    json_t *doc;
    char *h;

    ck_assert_int_eq(vg_ratelimit_set_name(rl, "api"), 0);
    ck_assert_int_eq(vg_ratelimit_set_headers(rl, false), 0);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    ck_assert_int_eq(vg_app_use_problem_details(app), 0);
    ck_assert_int_eq(vg_app_use_ratelimit(app, rl), 0);
    tu_start(app);
    r = tu_get(vg_app_port(app), "/hello");
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_null(tu_header(&r, "RateLimit")); /* turned off */
    tu_response_free(&r);
    r = tu_get(vg_app_port(app), "/hello");
    ck_assert_int_eq(r.status, 429);
    h = tu_header(&r, "Content-Type");
    ck_assert_str_eq(h, "application/problem+json");
    free(h);
    h = tu_header(&r, "Retry-After");
    ck_assert_str_eq(h, "60");
    free(h);
    h = tu_header(&r, "RateLimit-Policy");
    ck_assert_str_eq(h, "\"api\";q=1;w=60");
    free(h);
    doc = json_loads(r.body, 0, NULL);
    ck_assert_ptr_nonnull(doc);
    ck_assert_int_eq(json_integer_value(json_object_get(doc, "status")), 429);
    json_decref(doc);
    tu_response_free(&r);
    vg_app_free(app);
    vg_ratelimit_free(rl);
}
END_TEST

START_TEST(test_http_forwarded_for_buys_no_fresh_budget)
{
    vg_app *app = tu_app_new();
    vg_ratelimit *rl = vg_ratelimit_new(1, 60000);
    const char *h1[] = {"X-Forwarded-For: 203.0.113.1", NULL};
    const char *h2[] = {"X-Forwarded-For: 203.0.113.2",
                        "Forwarded: for=198.51.100.7", NULL};
    tu_response r;

    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    ck_assert_int_eq(vg_app_use_ratelimit(app, rl), 0);
    tu_start(app);
    r = tu_request(vg_app_port(app), "GET", "/hello", NULL, 0, h1);
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    /* No proxy is trusted: the key is the peer, 127.0.0.1, whatever the
     * client claims. */
    r = tu_request(vg_app_port(app), "GET", "/hello", NULL, 0, h2);
    ck_assert_int_eq(r.status, 429);
    tu_response_free(&r);
    vg_app_free(app);
    vg_ratelimit_free(rl);
}
END_TEST

START_TEST(test_http_key_from_header)
{
    vg_app *app = tu_app_new();
    vg_ratelimit *rl = vg_ratelimit_new(1, 60000);
    const char *a[] = {"X-Api-Key: alice", NULL};
    const char *b[] = {"X-Api-Key: bob", NULL};
    unsigned short port;
    tu_response r;

    ck_assert_int_eq(vg_ratelimit_set_key_header(rl, "X-Api-Key"), 0);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    ck_assert_int_eq(vg_app_use_ratelimit(app, rl), 0);
    tu_start(app);
    port = vg_app_port(app);
    r = tu_request(port, "GET", "/hello", NULL, 0, a);
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    r = tu_request(port, "GET", "/hello", NULL, 0, b);
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    r = tu_request(port, "GET", "/hello", NULL, 0, a);
    ck_assert_int_eq(r.status, 429);
    tu_response_free(&r);
    /* Without the header: the address, a budget of its own. */
    r = tu_get(port, "/hello");
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    r = tu_get(port, "/hello");
    ck_assert_int_eq(r.status, 429);
    tu_response_free(&r);
    vg_app_free(app);
    vg_ratelimit_free(rl);
}
END_TEST

/* Exempts /free; everything else shares one key. */
static const char *key_by_path(vg_request *req, void *arg)
{
    (void)arg;
    return strcmp(vg_request_path(req), "/free") == 0 ? NULL : "everyone";
}

START_TEST(test_http_key_callback_and_exemption)
{
    vg_app *app = tu_app_new();
    vg_ratelimit *rl = vg_ratelimit_new(1, 60000);
    unsigned short port;
    tu_response r;
    char *h;
    int i;

    ck_assert_int_eq(vg_ratelimit_set_key_fn(rl, key_by_path, NULL), 0);
    ck_assert_int_eq(vg_ratelimit_set_headers(rl, true), 0);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/free", hello, NULL), 0);
    ck_assert_int_eq(vg_app_use_ratelimit(app, rl), 0);
    tu_start(app);
    port = vg_app_port(app);
    for (i = 0; i < 5; i++) {
        r = tu_get(port, "/free");
        ck_assert_int_eq(r.status, 200);
        ck_assert_ptr_null(tu_header(&r, "RateLimit"));
        tu_response_free(&r);
    }
    r = tu_get(port, "/hello");
    ck_assert_int_eq(r.status, 200);
    h = tu_header(&r, "RateLimit"); /* limited: its headers */
    ck_assert_ptr_nonnull(h);
    free(h);
    tu_response_free(&r);
    r = tu_get(port, "/hello");
    ck_assert_int_eq(r.status, 429);
    tu_response_free(&r);
    vg_app_free(app);
    vg_ratelimit_free(rl);
}
END_TEST

START_TEST(test_http_route_and_group_limits)
{
    vg_app *app = tu_app_new();
    vg_ratelimit *login = vg_ratelimit_new(1, 60000);
    vg_ratelimit *api = vg_ratelimit_new(2, 60000);
    vg_group *g;
    unsigned short port;
    tu_response r;
    int i;

    g = vg_app_group(app, "/api");
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(vg_group_map_get(g, "/items", hello, NULL), 0);
    ck_assert_int_eq(vg_map_post(app, "/login", hello, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/login", hello, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    ck_assert_int_eq(vg_map_ratelimit(app, "POST", "/login", login), 0);
    ck_assert_int_eq(vg_group_use_ratelimit(g, api), 0);
    tu_start(app);
    port = vg_app_port(app);
    r = tu_request(port, "POST", "/login", "x", 1, NULL);
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    r = tu_request(port, "POST", "/login", "x", 1, NULL);
    ck_assert_int_eq(r.status, 429);
    tu_response_free(&r);
    /* Other methods of the path, and other routes, are not limited. */
    for (i = 0; i < 3; i++) {
        r = tu_get(port, "/login");
        ck_assert_int_eq(r.status, 200);
        tu_response_free(&r);
        r = tu_get(port, "/hello");
        ck_assert_int_eq(r.status, 200);
        tu_response_free(&r);
    }
    for (i = 0; i < 2; i++) {
        r = tu_get(port, "/api/items");
        ck_assert_int_eq(r.status, 200);
        tu_response_free(&r);
    }
    r = tu_get(port, "/api/items");
    ck_assert_int_eq(r.status, 429);
    tu_response_free(&r);
    vg_app_free(app);
    vg_ratelimit_free(login);
    vg_ratelimit_free(api);
}
END_TEST

static tu_latch entered, release;

static vg_result *blocking(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    tu_latch_add(&entered, 1);
    tu_latch_wait(&release, 1, WAIT_MS);
    return vg_text("done");
}

static void *get_slow(void *arg)
{
    unsigned short port = *(unsigned short *)arg;
    tu_response r = tu_get(port, "/slow");

    tu_response_free(&r);
    return NULL;
}

START_TEST(test_http_flood_refused_before_the_worker_queue)
{
    vg_app *app = tu_app_new();
    vg_ratelimit *rl = vg_ratelimit_new(1, 60000);
    unsigned short port;
    pthread_t th;
    tu_response r;
    int i;

    tu_latch_init(&entered);
    tu_latch_init(&release);
    /* One worker, no room to queue: a request that reached the worker
     * queue while the worker is busy would get 503. */
    ck_assert_int_eq(vg_app_set_workers(app, 1), 0);
    ck_assert_int_eq(vg_app_set_queue_limit(app, 1), 0);
    ck_assert_int_eq(vg_map_get(app, "/slow", blocking, NULL), 0);
    ck_assert_int_eq(vg_app_use_ratelimit(app, rl), 0);
    tu_start(app);
    port = vg_app_port(app);
    ck_assert_int_eq(pthread_create(&th, NULL, get_slow, &port), 0);
    ck_assert(tu_latch_wait(&entered, 1, WAIT_MS));
    for (i = 0; i < 200; i++) {
        r = tu_get(port, "/slow");
        ck_assert_int_eq(r.status, 429);
        tu_response_free(&r);
    }
    tu_latch_add(&release, 1);
    pthread_join(th, NULL);
    vg_app_free(app);
    vg_ratelimit_free(rl);
    tu_latch_destroy(&entered);
    tu_latch_destroy(&release);
}
END_TEST

static Suite *ratelimit_suite(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *t = tcase_create("table");
    TCase *h = tcase_create("http");

    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_exactly_limit_allowed_then_refused);
    tcase_add_test(t, test_refused_take_costs_nothing);
    tcase_add_test(t, test_million_keys_leave_memory_bounded);
    tcase_add_test(t, test_sixteen_threads_share_one_budget_exactly);
    tcase_add_test(t, test_configuration_errors);
    suite_add_tcase(s, t);
    tcase_set_timeout(h, 60);
    tcase_add_test(h, test_http_sixteen_clients_nth_plus_one_refused);
    tcase_add_test(h, test_http_429_headers);
    tcase_add_test(h, test_http_429_is_a_problem_document);
    tcase_add_test(h, test_http_forwarded_for_buys_no_fresh_budget);
    tcase_add_test(h, test_http_key_from_header);
    tcase_add_test(h, test_http_key_callback_and_exemption);
    tcase_add_test(h, test_http_route_and_group_limits);
    tcase_add_test(h, test_http_flood_refused_before_the_worker_queue);
    suite_add_tcase(s, h);
    return s;
}

int main(void)
{
    return tu_main(ratelimit_suite());
}
