/* test_log.c - the app's log: configuration errors reach a custom sink,
 * levels filter, and one access-log line per request at VG_LOG_INFO. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <volga.h>
#include "testutil.h"

/* Collects log lines; completion lines are signalled through a latch. */
typedef struct {
    pthread_mutex_t lock;
    char lines[64][256];
    vg_log_level levels[64];
    int n;
    tu_latch access;      /* counts access-log lines */
} sink;

static void sink_fn(vg_log_level level, const char *msg, void *arg)
{
    sink *s = arg;

    pthread_mutex_lock(&s->lock);
    if (s->n < 64) {
        snprintf(s->lines[s->n], sizeof s->lines[0], "%s", msg);
        s->levels[s->n++] = level;
    }
    pthread_mutex_unlock(&s->lock);
    if (strstr(msg, " ms") != NULL)
        tu_latch_add(&s->access, 1);
}

static void sink_init(sink *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    tu_latch_init(&s->access);
}

static void sink_destroy(sink *s)
{
    pthread_mutex_destroy(&s->lock);
    tu_latch_destroy(&s->access);
}

/* True if some line contains every one of the NULL-terminated needles. */
static bool sink_has(sink *s, const char *a, const char *b, const char *c)
{
    bool found = false;
    int i;

    pthread_mutex_lock(&s->lock);
    for (i = 0; i < s->n && !found; i++)
        found = strstr(s->lines[i], a) && (!b || strstr(s->lines[i], b)) &&
                (!c || strstr(s->lines[i], c));
    pthread_mutex_unlock(&s->lock);
    return found;
}

static vg_result *hello(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_text("hello");
}

static vg_result *wait_gone(vg_request *req, void *arg)
{
    tu_latch *started = arg;

    tu_latch_add(started, 1);
    vg_token_wait(vg_request_token(req), 10000);
    return NULL;
}

START_TEST(config_errors_reach_the_sink)
{
    vg_app *app = vg_app_new("127.0.0.1:0");
    sink s;

    sink_init(&s);
    ck_assert_int_eq(vg_app_set_logger(app, sink_fn, &s, VG_LOG_ERROR), 0);
    ck_assert_int_eq(vg_map_get(app, "no-slash", hello, NULL), -EINVAL);
    ck_assert_int_eq(vg_map_get(app, "/a", hello, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/a", hello, NULL), -EEXIST);
    ck_assert(sink_has(&s, "no-slash", NULL, NULL));
    ck_assert(sink_has(&s, "/a", "already mapped", NULL));
    ck_assert_int_eq(s.levels[0], VG_LOG_ERROR);
    ck_assert_int_eq(vg_app_set_logger(app, sink_fn, &s, (vg_log_level)9), -EINVAL);
    vg_app_free(app);
    sink_destroy(&s);
}
END_TEST

START_TEST(access_log_lines_at_info)
{
    vg_app *app = vg_app_new("127.0.0.1:0");
    tu_latch started;
    tu_response r;
    sink s;
    int fd;

    sink_init(&s);
    tu_latch_init(&started);
    ck_assert_int_eq(vg_app_set_logger(app, sink_fn, &s, VG_LOG_INFO), 0);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/wait", wait_gone, &started), 0);
    tu_start(app);
    r = tu_get(vg_app_port(app), "/hello?x=1");
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    r = tu_get(vg_app_port(app), "/missing");
    ck_assert_int_eq(r.status, 404);
    tu_response_free(&r);
    fd = tu_connect(vg_app_port(app));
    ck_assert(tu_send_all(fd, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n", 31));
    ck_assert(tu_latch_wait(&started, 1, 5000));
    close(fd);
    ck_assert(tu_latch_wait(&s.access, 3, 5000));
    ck_assert(sink_has(&s, "GET /hello?x=1 200 ", " ms", NULL));
    ck_assert(sink_has(&s, "GET /missing 404 ", " ms", NULL));
    ck_assert(sink_has(&s, "GET /wait - ", " ms", "cancelled: client_gone"));
    vg_app_free(app);
    ck_assert(sink_has(&s, "stopped", NULL, NULL));
    tu_latch_destroy(&started);
    sink_destroy(&s);
}
END_TEST

START_TEST(levels_filter)
{
    vg_app *app = vg_app_new("127.0.0.1:0");
    tu_response r;
    sink s;

    sink_init(&s);
    ck_assert_int_eq(vg_app_set_logger(app, sink_fn, &s, VG_LOG_WARN), 0);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    tu_start(app);
    r = tu_get(vg_app_port(app), "/hello");
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    vg_app_free(app);
    /* Neither access lines nor lifecycle lines pass a WARN filter. */
    ck_assert_int_eq(s.n, 0);
    sink_destroy(&s);
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, config_errors_reach_the_sink);
    tcase_add_test(tc, access_log_lines_at_info);
    tcase_add_test(tc, levels_filter);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(log_suite());
}
