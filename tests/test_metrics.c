/* test_metrics.c - Prometheus metrics (lib/web/metrics.c): a real app's
 * /metrics parsed by a real Prometheus text parser (python3-prometheus-
 * client's) and its series matched against what was sent and against
 * vg_app_stats and vg_app_load; user counters, gauges and histograms,
 * exact under 16 threads; configuration errors. Skipped (77) where
 * python3 or its prometheus_client module is missing. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <volga.h>
#include "testutil.h"

#define WAIT_MS 10000

/* Parses the exposition in argv[1] with prometheus_client's parser (which
 * raises on anything malformed) and prints one line per family type, help
 * and sample, plus the sum of each family's samples: what the C side
 * checks. */
static const char parser_py[] =
    "import sys\n"
    "from prometheus_client.parser import text_string_to_metric_families\n"
    "text = open(sys.argv[1]).read()\n"
    "for fam in text_string_to_metric_families(text):\n"
    "    print('TYPE %s %s' % (fam.name, fam.type))\n"
    "    print('HELP %s %r' % (fam.name, fam.documentation))\n"
    "    total = 0.0\n"
    "    for s in fam.samples:\n"
    "        labels = ','.join('%s=\"%s\"' % (k, s.labels[k])\n"
    "                          for k in sorted(s.labels))\n"
    "        print('%s{%s} %r' % (s.name, labels, s.value))\n"
    "        total += s.value\n"
    "    print('SUM %s %r' % (fam.name, total))\n";

static bool have_parser(void)
{
    char *argv[] = {"/usr/bin/python3", "-c", "import prometheus_client",
                    NULL};
    pid_t pid;
    int st;

    if (access(argv[0], X_OK) != 0)
        return false;
    pid = tu_spawn(argv, -1, -1, -1);
    return pid > 0 && tu_wait_exit(pid, WAIT_MS, &st) && WIFEXITED(st) &&
           WEXITSTATUS(st) == 0;
}

/* The parser's lines for `text`, malloc'd; fails the test if it rejects
 * the text. */
static char *parse(const char *text)
{
    char path[] = "/tmp/vg-metrics-XXXXXX";
    char *argv[] = {"/usr/bin/python3", "-c", (char *)parser_py, path, NULL};
    char *out = malloc(1 << 20);
    int fd = mkstemp(path), p[2], st;
    size_t len;
    ssize_t got;
    pid_t pid;
    FILE *f;

    ck_assert_int_ge(fd, 0);
    f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(pipe(p), 0);
    pid = tu_spawn(argv, -1, p[1], -1);
    ck_assert_int_gt(pid, 0);
    close(p[1]);
    for (len = 0; len < (1 << 20) - 1; len += (size_t)got) {
        got = read(p[0], out + len, (1 << 20) - 1 - len);
        if (got <= 0)
            break;
    }
    close(p[0]);
    ck_assert(tu_wait_exit(pid, WAIT_MS, &st));
    unlink(path);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "the Prometheus parser rejected:\n%s", text);
    out[len] = '\0';
    return out;
}

/* Whether the parser printed exactly this line. */
static bool has_line(const char *out, const char *line)
{
    size_t n = strlen(line);
    const char *p = out;

    while ((p = strstr(p, line)) != NULL) {
        if ((p == out || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return true;
        p += n;
    }
    return false;
}

#define ck_line(out, ...)                                                   \
    do {                                                                    \
        char want_[512];                                                    \
        snprintf(want_, sizeof want_, __VA_ARGS__);                         \
        ck_assert_msg(has_line(out, want_), "no line \"%s\" in:\n%s",       \
                      want_, out);                                          \
    } while (0)

/* ---- Handlers ---- */

static vg_result *hello(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_text("hello");
}

static vg_result *failing(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return NULL;
}

static vg_result *slow(vg_request *req, void *arg)
{
    (void)arg;
    vg_token_wait(vg_request_token(req), WAIT_MS);
    return vg_text("late");
}

START_TEST(test_scrape_parsed_and_matches_stats)
{
    vg_app *app = tu_app_new();
    vg_metrics *m = vg_metrics_new();
    vg_counter *jobs;
    vg_gauge *temp;
    vg_histogram *js;
    const double bounds[] = {0.1, 1};
    vg_group *g;
    unsigned short port;
    tu_response r;
    vg_stats st;
    vg_load ld;
    char *out, *ct;
    int i;

    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/fail", failing, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/slow", slow, NULL), 0);
    ck_assert_int_eq(vg_map_timeout(app, "GET", "/slow", 50), 0);
    g = vg_app_group(app, "/api");
    ck_assert_int_eq(vg_group_map_get(g, "/items/{id}", hello, NULL), 0);
    ck_assert_int_eq(vg_app_use_metrics(app, m, "/metrics"), 0);
    jobs = vg_metrics_counter(m, "jobs_total", "Jobs done.");
    temp = vg_metrics_gauge(m, "temperature",
                            "Degrees \\ Celsius,\nmeasured.");
    js = vg_metrics_histogram(m, "job_seconds", NULL, bounds, 2);
    ck_assert_ptr_nonnull(jobs);
    ck_assert_ptr_nonnull(temp);
    ck_assert_ptr_nonnull(js);
    vg_counter_add(jobs, 5);
    vg_gauge_set(temp, 20);
    vg_gauge_add(temp, 1.5);
    vg_histogram_observe(js, 0.0625);
    vg_histogram_observe(js, 0.5);
    vg_histogram_observe(js, 3);
    vg_histogram_observe(js, 1); /* le is inclusive */
    tu_start(app);
    port = vg_app_port(app);

    for (i = 0; i < 3; i++) {
        r = tu_get(port, "/hello");
        ck_assert_int_eq(r.status, 200);
        tu_response_free(&r);
    }
    r = tu_request(port, "POST", "/hello", "x", 1, NULL);
    ck_assert_int_eq(r.status, 405);
    tu_response_free(&r);
    for (i = 0; i < 2; i++) {
        r = tu_get(port, "/nope");
        ck_assert_int_eq(r.status, 404);
        tu_response_free(&r);
    }
    r = tu_get(port, "/fail");
    ck_assert_int_eq(r.status, 500);
    tu_response_free(&r);
    r = tu_get(port, "/slow");
    ck_assert_int_eq(r.status, 504);
    tu_response_free(&r);
    r = tu_get(port, "/api/items/7");
    tu_response_free(&r);
    r = tu_get(port, "/api/items/8");
    tu_response_free(&r);
    ck_assert(tu_wait_settled(app, 10, WAIT_MS, &st));
    vg_app_load(app, &ld);

    r = tu_get(port, "/metrics");
    ck_assert_int_eq(r.status, 200);
    ct = tu_header(&r, "Content-Type");
    ck_assert_str_eq(ct, "text/plain; version=0.0.4; charset=utf-8");
    free(ct);
    out = parse(r.body);
    tu_response_free(&r);

    ck_line(out, "TYPE volga_requests counter");
    ck_line(out, "volga_requests_total{method=\"GET\",route=\"/hello\","
                 "status=\"200\"} 3.0");
    ck_line(out, "volga_requests_total{method=\"POST\",route=\"none\","
                 "status=\"405\"} 1.0");
    ck_line(out, "volga_requests_total{method=\"GET\",route=\"none\","
                 "status=\"404\"} 2.0");
    ck_line(out, "volga_requests_total{method=\"GET\",route=\"/fail\","
                 "status=\"500\"} 1.0");
    ck_line(out, "volga_requests_total{method=\"GET\",route=\"/slow\","
                 "status=\"504\"} 1.0");
    ck_line(out, "volga_requests_total{method=\"GET\",route=\"/api/items/{id}\","
                 "status=\"200\"} 2.0");
    ck_line(out, "volga_requests_total{method=\"other\",route=\"overflow\","
                 "status=\"0\"} 0.0");
    /* Every request the app accounted for, and nothing else. */
    ck_assert_uint_eq(st.requests, 10);
    ck_line(out, "SUM volga_requests %llu.0", st.requests);
    ck_line(out, "volga_app_requests_total{} %llu.0", st.requests);
    ck_line(out, "TYPE volga_request_duration_seconds histogram");
    ck_line(out, "volga_request_duration_seconds_count{} %llu.0",
            st.requests);
    ck_line(out, "volga_request_duration_seconds_bucket{le=\"+Inf\"} %llu.0",
            st.requests);
    ck_assert_uint_eq(st.cancelled_timeout, 1);
    ck_line(out, "volga_cancellations_total{reason=\"timeout\"} %llu.0",
            st.cancelled_timeout);
    ck_line(out, "volga_cancellations_total{reason=\"client_gone\"} %llu.0",
            st.cancelled_client_gone);
    ck_line(out, "volga_cancellations_total{reason=\"shutdown\"} %llu.0",
            st.cancelled_shutdown);
    ck_line(out, "TYPE volga_workers gauge");
    ck_line(out, "volga_workers{} %u.0", ld.workers);
    ck_line(out, "volga_queue_depth{} 0.0");
    /* A gauge of the moment: the worker that ran the last request may
     * not be back waiting yet, so only its range is certain. */
    for (i = 0; i <= (int)ld.workers; i++) {
        char want[64];
        snprintf(want, sizeof want, "volga_busy_workers{} %d.0", i);
        if (has_line(out, want))
            break;
    }
    ck_assert_msg(i <= (int)ld.workers, "no busy_workers in range:\n%s", out);
    /* The scrape's own connection is open while it is answered. */
    ck_assert_msg(strstr(out, "volga_open_connections{} 0.0") == NULL,
                  "%s", out);
    ck_line(out, "TYPE volga_in_flight gauge");

    ck_line(out, "TYPE jobs counter");
    ck_line(out, "jobs_total{} 5.0");
    ck_line(out, "TYPE temperature gauge");
    ck_line(out, "HELP temperature 'Degrees \\\\ Celsius,\\nmeasured.'");
    ck_line(out, "temperature{} 21.5");
    ck_line(out, "TYPE job_seconds histogram");
    ck_line(out, "job_seconds_bucket{le=\"0.1\"} 1.0");
    ck_line(out, "job_seconds_bucket{le=\"1\"} 3.0");
    ck_line(out, "job_seconds_bucket{le=\"+Inf\"} 4.0");
    ck_line(out, "job_seconds_count{} 4.0");
    ck_line(out, "job_seconds_sum{} 4.5625");
    free(out);
    vg_app_free(app);
    vg_metrics_free(m);
}
END_TEST

typedef struct {
    vg_counter *c;
    vg_gauge *g;
    vg_histogram *h;
} user_metrics;

static void *update_many(void *arg)
{
    user_metrics *u = arg;
    int i;

    for (i = 0; i < 10000; i++) {
        vg_counter_add(u->c, 1);
        vg_gauge_add(u->g, 0.5);
        vg_histogram_observe(u->h, (i % 4) * 1.0);
    }
    return NULL;
}

START_TEST(test_updates_exact_under_sixteen_threads)
{
    vg_metrics *m = vg_metrics_new();
    const double bounds[] = {0.5, 1.5, 2.5};
    user_metrics u;
    pthread_t th[16];
    char *text, *out;
    int i;

    u.c = vg_metrics_counter(m, "ops_total", "Operations.");
    u.g = vg_metrics_gauge(m, "level", NULL);
    u.h = vg_metrics_histogram(m, "sizes", "Sizes.", bounds, 3);
    for (i = 0; i < 16; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, update_many, &u), 0);
    for (i = 0; i < 16; i++)
        pthread_join(th[i], NULL);
    text = vg_metrics_text(m);
    ck_assert_ptr_nonnull(text);
    /* No app attached: only the user's metrics. */
    ck_assert_ptr_null(strstr(text, "volga_"));
    out = have_parser() ? parse(text) : NULL;
    if (out != NULL) {
        ck_line(out, "ops_total{} 160000.0");
        ck_line(out, "level{} 80000.0");
        ck_line(out, "sizes_bucket{le=\"0.5\"} 40000.0");
        ck_line(out, "sizes_bucket{le=\"1.5\"} 80000.0");
        ck_line(out, "sizes_bucket{le=\"2.5\"} 120000.0");
        ck_line(out, "sizes_count{} 160000.0");
        ck_line(out, "sizes_sum{} 240000.0");
    }
    free(out);
    free(text);
    vg_metrics_free(m);
}
END_TEST

START_TEST(test_configuration_errors)
{
    vg_metrics *m = vg_metrics_new();
    vg_app *app = tu_app_new(), *other = tu_app_new();
    const double bad[] = {1, 1}, good[] = {1};

    errno = 0;
    ck_assert_ptr_null(vg_metrics_counter(m, "1abc", NULL));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(vg_metrics_counter(m, "a-b", NULL));
    ck_assert_ptr_null(vg_metrics_counter(m, "", NULL));
    ck_assert_ptr_null(vg_metrics_counter(m, "volga_requests_total", NULL));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(vg_metrics_counter(NULL, "a", NULL));
    ck_assert_ptr_nonnull(vg_metrics_counter(m, "a:b_c", NULL));
    ck_assert_ptr_null(vg_metrics_gauge(m, "a:b_c", NULL));
    ck_assert_int_eq(errno, EEXIST);
    ck_assert_ptr_null(vg_metrics_histogram(m, "h", NULL, bad, 2));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(vg_metrics_histogram(m, "h", NULL, good, 0));
    ck_assert_ptr_nonnull(vg_metrics_histogram(m, "h", NULL, good, 1));
    vg_counter_add(NULL, 1);
    vg_gauge_set(NULL, 1);
    vg_histogram_observe(NULL, 1);
    ck_assert_int_eq(vg_app_use_metrics(NULL, m, NULL), -EINVAL);
    ck_assert_int_eq(vg_app_use_metrics(app, m, "/metrics"), 0);
    ck_assert_int_eq(vg_app_use_metrics(other, m, NULL), -EBUSY);
    ck_assert_ptr_null(vg_metrics_text(NULL));
    vg_app_free(app);
    vg_app_free(other);
    vg_metrics_free(m);
    vg_metrics_free(NULL);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *t = tcase_create("metrics");

    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_scrape_parsed_and_matches_stats);
    tcase_add_test(t, test_updates_exact_under_sixteen_threads);
    tcase_add_test(t, test_configuration_errors);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    if (!have_parser()) {
        fprintf(stderr, "SKIP: python3 with prometheus_client is needed "
                        "(apt-get install python3-prometheus-client)\n");
        return 77;
    }
    return tu_main(metrics_suite());
}
