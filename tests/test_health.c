/* test_health.c - liveness and readiness (lib/web/health.c) on a real app:
 * the JSON reports, the cache, a hung check that watches its token and
 * one that ignores it (neither may hang the probe), configuration errors,
 * and the readiness flip at vg_app_stop observed by a polling client
 * while the drain delay keeps the app serving. */
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

#include <volga.h>
#include "testutil.h"

#define WAIT_MS 10000

static double scale(void)
{
    const char *s = getenv("VG_TIME_SCALE");
    double v = s ? atof(s) : 1;

    return v >= 1 ? v : 1;
}

static vg_result *hello(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_text("hello");
}

static atomic_int runs;

static int check_ok(vg_token *tok, void *arg)
{
    (void)tok;
    (void)arg;
    atomic_fetch_add(&runs, 1);
    return 0;
}

static int check_fails(vg_token *tok, void *arg)
{
    (void)tok;
    (void)arg;
    return -EIO;
}

static atomic_bool saw_cancel;
static atomic_int saw_reason;     /* vg_token_reason once woken */
static atomic_long saw_remaining; /* vg_token_remaining_ms at the start */

/* Hangs until its token is cancelled, as a stuck database ping would
 * until the probe gives up; notes what the token said. */
static int check_hangs_politely(vg_token *tok, void *arg)
{
    (void)arg;
    atomic_store(&saw_remaining, vg_token_remaining_ms(tok));
    if (vg_token_wait(tok, WAIT_MS))
        atomic_store(&saw_cancel, true);
    atomic_store(&saw_reason, (int)vg_token_reason(tok));
    return -ECANCELED;
}

static tu_latch release;

/* Hangs ignoring its token (bounded, so the test cannot hang). */
static int check_hangs_rudely(vg_token *tok, void *arg)
{
    (void)tok;
    (void)arg;
    tu_latch_wait(&release, 1, WAIT_MS);
    return 0;
}

START_TEST(test_live_and_ready_reports)
{
    vg_app *app = tu_app_new();
    vg_health *h = vg_health_new();
    unsigned short port;
    tu_response r;
    char *ct;

    ck_assert_int_eq(vg_health_add_check(h, "db", check_ok, NULL), 0);
    ck_assert_int_eq(vg_health_add_check(h, "cache", check_ok, NULL), 0);
    ck_assert_int_eq(vg_app_use_health(app, h, "/livez", "/readyz"), 0);
    tu_start(app);
    port = vg_app_port(app);
    r = tu_get(port, "/livez");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"status\":\"ok\"}");
    tu_response_free(&r);
    r = tu_get(port, "/readyz");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body,
                     "{\"checks\":{\"cache\":\"ok\",\"db\":\"ok\"},"
                     "\"status\":\"ok\"}");
    ct = tu_header(&r, "Content-Type");
    ck_assert_str_eq(ct, "application/json");
    free(ct);
    ct = tu_header(&r, "Cache-Control");
    ck_assert_str_eq(ct, "no-store");
    free(ct);
    tu_response_free(&r);
    vg_app_free(app);
    vg_health_free(h);
}
END_TEST

START_TEST(test_failing_check_is_503)
{
    vg_app *app = tu_app_new();
    vg_health *h = vg_health_new();
    tu_response r;

    ck_assert_int_eq(vg_health_add_check(h, "db", check_ok, NULL), 0);
    ck_assert_int_eq(vg_health_add_check(h, "queue", check_fails, NULL), 0);
    ck_assert_int_eq(vg_app_use_health(app, h, NULL, "/readyz"), 0);
    tu_start(app);
    r = tu_get(vg_app_port(app), "/readyz");
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq(r.body,
                     "{\"checks\":{\"db\":\"ok\",\"queue\":\"fail\"},"
                     "\"status\":\"fail\"}");
    tu_response_free(&r);
    /* No liveness mapped. */
    r = tu_get(vg_app_port(app), "/livez");
    ck_assert_int_eq(r.status, 404);
    tu_response_free(&r);
    vg_app_free(app);
    vg_health_free(h);
}
END_TEST

START_TEST(test_answer_cached)
{
    vg_app *app = tu_app_new();
    vg_health *h = vg_health_new();
    unsigned short port;
    tu_response r;
    int i;

    atomic_store(&runs, 0);
    ck_assert_int_eq(vg_health_add_check(h, "db", check_ok, NULL), 0);
    ck_assert_int_eq(vg_health_set_cache(h, 60000), 0);
    ck_assert_int_eq(vg_app_use_health(app, h, NULL, "/readyz"), 0);
    tu_start(app);
    port = vg_app_port(app);
    for (i = 0; i < 5; i++) {
        r = tu_get(port, "/readyz");
        ck_assert_int_eq(r.status, 200);
        tu_response_free(&r);
    }
    ck_assert_int_eq(atomic_load(&runs), 1);
    vg_app_free(app);
    vg_health_free(h);

    /* Without a cache every probe runs a round. */
    app = tu_app_new();
    h = vg_health_new();
    atomic_store(&runs, 0);
    ck_assert_int_eq(vg_health_add_check(h, "db", check_ok, NULL), 0);
    ck_assert_int_eq(vg_health_set_cache(h, 0), 0);
    ck_assert_int_eq(vg_app_use_health(app, h, NULL, "/readyz"), 0);
    tu_start(app);
    port = vg_app_port(app);
    for (i = 0; i < 3; i++) {
        r = tu_get(port, "/readyz");
        ck_assert_int_eq(r.status, 200);
        tu_response_free(&r);
    }
    ck_assert_int_eq(atomic_load(&runs), 3);
    vg_app_free(app);
    vg_health_free(h);
}
END_TEST

START_TEST(test_hung_check_watching_its_token_is_cancelled)
{
    vg_app *app = tu_app_new();
    vg_health *h = vg_health_new();
    unsigned short port;
    tu_response r;
    double t0, took;
    long remaining;
    int reason;

    atomic_store(&saw_cancel, false);
    atomic_store(&saw_reason, (int)VG_CANCEL_NONE);
    atomic_store(&saw_remaining, -2);
    ck_assert_int_eq(vg_health_add_check(h, "db", check_hangs_politely, NULL),
                     0);
    ck_assert_int_eq(vg_health_set_timeout(h, 200), 0);
    ck_assert_int_eq(vg_health_set_cache(h, 0), 0);
    ck_assert_int_eq(vg_app_use_health(app, h, NULL, "/readyz"), 0);
    tu_start(app);
    port = vg_app_port(app);
    t0 = tu_now_ms();
    r = tu_get(port, "/readyz");
    took = tu_now_ms() - t0;
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq(r.body, "{\"status\":\"timeout\"}");
    tu_response_free(&r);
    ck_assert_msg(took >= 190 && took < 3000 * scale(), "took %.0f ms", took);
    vg_app_free(app);
    /* vg_health_free waits for the round: the check saw its token fire
     * (it would have waited 10 s for nothing otherwise). */
    vg_health_free(h);
    ck_assert(atomic_load(&saw_cancel));
    /* A deadline, not a manual cancel: the check can tell (and could
     * forward the time it had, a statement timeout, say). */
    reason = atomic_load(&saw_reason);
    remaining = atomic_load(&saw_remaining);
    ck_assert_msg(reason == VG_CANCEL_TIMEOUT, "reason %s",
                  vg_cancel_reason_name((vg_cancel_reason)reason));
    ck_assert_msg(remaining > 0 && remaining <= 200, "remaining %ld ms",
                  remaining);
}
END_TEST

START_TEST(test_hung_check_ignoring_its_token_cannot_hang_probes)
{
    vg_app *app = tu_app_new();
    vg_health *h = vg_health_new();
    unsigned short port;
    tu_response r;
    double t0, took;
    int i;

    tu_latch_init(&release);
    ck_assert_int_eq(vg_health_add_check(h, "db", check_hangs_rudely, NULL),
                     0);
    ck_assert_int_eq(vg_health_set_timeout(h, 200), 0);
    ck_assert_int_eq(vg_app_use_health(app, h, "/livez", "/readyz"), 0);
    tu_start(app);
    port = vg_app_port(app);
    for (i = 0; i < 3; i++) {
        t0 = tu_now_ms();
        r = tu_get(port, "/readyz");
        took = tu_now_ms() - t0;
        ck_assert_int_eq(r.status, 503);
        tu_response_free(&r);
        ck_assert_msg(took < 3000 * scale(), "probe %d took %.0f ms", i, took);
    }
    r = tu_get(port, "/livez");
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    tu_latch_add(&release, 1);
    vg_app_free(app);
    vg_health_free(h);
    tu_latch_destroy(&release);
}
END_TEST

START_TEST(test_configuration_errors)
{
    vg_health *h = vg_health_new();
    vg_app *app = tu_app_new(), *other = tu_app_new();

    ck_assert_int_eq(vg_health_add_check(h, "", check_ok, NULL), -EINVAL);
    ck_assert_int_eq(vg_health_add_check(h, "x", NULL, NULL), -EINVAL);
    ck_assert_int_eq(vg_health_set_timeout(h, 0), -EINVAL);
    ck_assert_int_eq(vg_app_use_health(app, h, NULL, NULL), -EINVAL);
    ck_assert_int_eq(vg_app_use_health(app, NULL, "/l", NULL), -EINVAL);
    ck_assert_int_eq(vg_map_get(app, "/taken", hello, NULL), 0);
    ck_assert_int_eq(vg_app_use_health(app, h, "/taken", NULL), -EEXIST);
    ck_assert_int_eq(vg_app_use_health(app, h, "/livez", "/readyz"), 0);
    ck_assert_int_eq(vg_app_use_health(other, h, "/livez", NULL), -EBUSY);
    ck_assert_int_eq(vg_health_add_check(h, "late", check_ok, NULL), -EBUSY);
    ck_assert_int_eq(vg_app_set_drain_delay(NULL, 10), -EINVAL);
    ck_assert(!vg_app_stopping(NULL));
    ck_assert(!vg_app_stopping(app));
    vg_app_free(app);
    vg_app_free(other);
    vg_health_free(h);
    vg_health_free(NULL);
}
END_TEST

/* ---- The flip at shutdown ---- */

typedef struct {
    unsigned short port;
    tu_latch ready_seen;  /* a 200 was seen */
    atomic_bool stopped;  /* vg_app_stop was called */
    int before_stop_503;  /* 503s seen before the stop */
    bool flipped;         /* a 503 was seen after the stop */
    long hello_in_drain;  /* /hello's status right after the flip */
    double flip_ms;       /* from the stop to the first 503 */
    double stop_at;
} poller;

static void *poll_readiness(void *arg)
{
    poller *p = arg;
    double t0 = tu_now_ms();
    tu_response r;
    bool announced = false;

    while (tu_now_ms() - t0 < WAIT_MS * scale()) {
        bool stopped;

        r = tu_get(p->port, "/readyz");
        /* Read after the answer: a 503 with no stop asked by then really
         * came before it. */
        stopped = atomic_load(&p->stopped);
        if (r.status == 200 && !announced) {
            tu_latch_add(&p->ready_seen, 1);
            announced = true;
        } else if (r.status == 503 && !stopped) {
            p->before_stop_503++;
        } else if (r.status == 503) {
            p->flip_ms = tu_now_ms() - p->stop_at;
            p->flipped = true;
            tu_response_free(&r);
            /* Still draining: ordinary requests are served. */
            r = tu_get(p->port, "/hello");
            p->hello_in_drain = r.status;
            tu_response_free(&r);
            return NULL;
        }
        tu_response_free(&r);
    }
    return NULL;
}

START_TEST(test_readiness_flips_first_at_stop)
{
    vg_app *app = tu_app_new();
    vg_health *h = vg_health_new();
    poller p = {0};
    pthread_t th;

    ck_assert_int_eq(vg_health_add_check(h, "db", check_ok, NULL), 0);
    ck_assert_int_eq(vg_health_set_cache(h, 0), 0);
    ck_assert_int_eq(vg_app_use_health(app, h, "/livez", "/readyz"), 0);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    ck_assert_int_eq(vg_app_set_drain_delay(app, (unsigned)(3000 * scale())),
                     0);
    tu_start(app);
    p.port = vg_app_port(app);
    tu_latch_init(&p.ready_seen);
    ck_assert_int_eq(pthread_create(&th, NULL, poll_readiness, &p), 0);
    ck_assert(tu_latch_wait(&p.ready_seen, 1, WAIT_MS));
    p.stop_at = tu_now_ms();
    atomic_store(&p.stopped, true);
    vg_app_stop(app);
    ck_assert(vg_app_stopping(app));
    pthread_join(th, NULL);
    ck_assert_int_eq(p.before_stop_503, 0);
    ck_assert_msg(p.flipped, "readiness never turned 503");
    ck_assert_int_eq(p.hello_in_drain, 200);
    ck_assert_msg(p.flip_ms < 2000 * scale(), "flip after %.0f ms", p.flip_ms);
    vg_app_free(app);
    /* vg_app_free waited out the rest of the drain delay. */
    ck_assert_msg(tu_now_ms() - p.stop_at >= 2900 * scale(),
                  "stopped %.0f ms after the stop",
                  tu_now_ms() - p.stop_at);
    vg_health_free(h);
    tu_latch_destroy(&p.ready_seen);
}
END_TEST

static Suite *health_suite(void)
{
    Suite *s = suite_create("health");
    TCase *t = tcase_create("health");

    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_live_and_ready_reports);
    tcase_add_test(t, test_failing_check_is_503);
    tcase_add_test(t, test_answer_cached);
    tcase_add_test(t, test_hung_check_watching_its_token_is_cancelled);
    tcase_add_test(t, test_hung_check_ignoring_its_token_cannot_hang_probes);
    tcase_add_test(t, test_configuration_errors);
    tcase_add_test(t, test_readiness_flips_first_at_stop);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_main(health_suite());
}
