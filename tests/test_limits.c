/* test_limits.c - the protective limits: a bounded worker queue (503 +
 * Retry-After), the idle timeout against slowloris, the header limit (431),
 * the per-IP connection limit and the connection limit. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <volga.h>
#include "testutil.h"

static const char get_block[] = "GET /block HTTP/1.1\r\nHost: x\r\n\r\n";

typedef struct {
    tu_latch started;
    vg_token *release;    /* handlers block until this is cancelled */
    atomic_int calls;
} blocker;

static vg_result *block_handler(vg_request *req, void *arg)
{
    blocker *b = arg;

    (void)req;
    atomic_fetch_add(&b->calls, 1);
    tu_latch_add(&b->started, 1);
    vg_token_wait(b->release, 10000);
    return vg_text("released");
}

static vg_result *hello(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_text("hello");
}

START_TEST(full_queue_answers_503_with_retry_after)
{
    vg_app *app = tu_app_new();
    blocker b = {0};
    int fds[3], i, shed;
    char buf[4096];

    tu_latch_init(&b.started);
    b.release = vg_token_new();
    ck_assert_int_eq(vg_app_set_workers(app, 1), 0);
    ck_assert_int_eq(vg_app_set_queue_limit(app, 1), 0);
    ck_assert_int_eq(vg_map_get(app, "/block", block_handler, &b), 0);
    tu_start(app);
    /* One request occupies the only worker... */
    fds[0] = tu_connect(vg_app_port(app));
    ck_assert(tu_send_all(fds[0], get_block, strlen(get_block)));
    ck_assert(tu_latch_wait(&b.started, 1, 5000));
    /* ...of the next two, whichever is dispatched first takes the only
     * queue place and the other is shed at once. */
    fds[1] = tu_connect(vg_app_port(app));
    fds[2] = tu_connect(vg_app_port(app));
    ck_assert(tu_send_all(fds[1], get_block, strlen(get_block)));
    ck_assert(tu_send_all(fds[2], get_block, strlen(get_block)));
    {
        struct pollfd p[2] = {{fds[1], POLLIN, 0}, {fds[2], POLLIN, 0}};
        ck_assert_int_eq(poll(p, 2, 5000), 1); /* exactly one answer */
        shed = (p[0].revents & POLLIN) ? 1 : 2;
    }
    ck_assert_uint_gt(tu_recv_response(fds[shed], buf, sizeof buf), 0);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 503", 12) == 0, "got %s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "Retry-After: 1"));
    /* Once released, the first and the queued one are answered normally. */
    vg_token_cancel(b.release);
    for (i = 0; i < 3; i++) {
        if (i == shed)
            continue;
        ck_assert_uint_gt(tu_recv_response(fds[i], buf, sizeof buf), 0);
        ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "got %s", buf);
    }
    ck_assert_int_eq(atomic_load(&b.calls), 2);
    for (i = 0; i < 3; i++)
        close(fds[i]);
    vg_app_free(app);
    vg_token_unref(b.release);
    tu_latch_destroy(&b.started);
}
END_TEST

START_TEST(idle_client_with_half_a_header_is_dropped)
{
    vg_app *app = tu_app_new();
    char buf[256];
    double t0, elapsed;
    int fd;

    ck_assert_int_eq(vg_app_set_idle_timeout(app, 1), 0);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    tu_start(app);
    fd = tu_connect(vg_app_port(app));
    ck_assert(tu_send_all(fd, "GET /hello HTTP/1.1\r\nHost:", 26));
    t0 = tu_now_ms();
    /* The server closes it: recv sees EOF (0 bytes) well before the
     * socket's own 10 s receive timeout. */
    tu_recv_all(fd, buf, sizeof buf);
    elapsed = tu_now_ms() - t0;
    ck_assert_msg(elapsed < 8000, "not dropped after %.0f ms", elapsed);
    ck_assert_msg(elapsed >= 500, "dropped too early: %.0f ms", elapsed);
    close(fd);
    /* The server still serves others. */
    {
        tu_response r = tu_get(vg_app_port(app), "/hello");
        ck_assert_int_eq(r.status, 200);
        tu_response_free(&r);
    }
    vg_app_free(app);
}
END_TEST

START_TEST(oversized_header_gets_431)
{
    vg_app *app = tu_app_new();
    size_t n = 16 * 1024;
    char *big = malloc(n + 1), *hdr = malloc(n + 32);
    const char *headers[2];
    tu_response r;

    ck_assert_int_eq(vg_app_set_header_limit(app, 8192), 0);
    ck_assert_int_eq(vg_app_set_header_limit(app, 100), -EINVAL);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    tu_start(app);
    memset(big, 'a', n);
    big[n] = '\0';
    snprintf(hdr, n + 32, "X-Big: %s", big);
    headers[0] = hdr;
    headers[1] = NULL;
    r = tu_request(vg_app_port(app), "GET", "/hello", NULL, 0, headers);
    ck_assert_int_eq(r.status, 431);
    tu_response_free(&r);
    r = tu_get(vg_app_port(app), "/hello");
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    free(big);
    free(hdr);
    vg_app_free(app);
}
END_TEST

START_TEST(per_ip_limit_refuses_extra_connections)
{
    vg_app *app = tu_app_new();
    char buf[4096];
    int a, b, c;

    ck_assert_int_eq(vg_app_set_per_ip_limit(app, 2), 0);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    tu_start(app);
    a = tu_connect(vg_app_port(app));
    b = tu_connect(vg_app_port(app));
    /* Both are served (and so surely accepted) before the third tries. */
    ck_assert(tu_send_all(a, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 32));
    ck_assert_uint_gt(tu_recv_response(a, buf, sizeof buf), 0);
    ck_assert(tu_send_all(b, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 32));
    ck_assert_uint_gt(tu_recv_response(b, buf, sizeof buf), 0);
    c = tu_connect(vg_app_port(app));
    tu_send_all(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 32);
    /* The third is closed without an answer. */
    ck_assert_uint_eq(tu_recv_all(c, buf, sizeof buf), 0);
    close(c);
    close(a);
    close(b);
    vg_app_free(app);
}
END_TEST

START_TEST(connection_limit_is_enforced)
{
    vg_app *app = tu_app_new();
    char buf[4096];
    int fds[4], extra, i;

    ck_assert_int_eq(vg_app_set_max_connections(app, 4), 0);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    tu_start(app);
    for (i = 0; i < 4; i++) {
        fds[i] = tu_connect(vg_app_port(app));
        ck_assert(tu_send_all(fds[i], "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 32));
        ck_assert_uint_gt(tu_recv_response(fds[i], buf, sizeof buf), 0);
    }
    extra = tu_connect(vg_app_port(app));
    tu_send_all(extra, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 32);
    ck_assert_uint_eq(tu_recv_all(extra, buf, sizeof buf), 0);
    close(extra);
    for (i = 0; i < 4; i++)
        close(fds[i]);
    vg_app_free(app);
}
END_TEST

START_TEST(limit_settings_validate)
{
    vg_app *app = tu_app_new();

    ck_assert_int_eq(vg_app_set_queue_limit(app, 0), -EINVAL);
    ck_assert_int_eq(vg_app_set_queue_limit(NULL, 5), -EINVAL);
    ck_assert_int_eq(vg_app_set_idle_timeout(app, 0), 0);
    ck_assert_int_eq(vg_app_set_per_ip_limit(app, 0), 0);
    ck_assert_int_eq(vg_app_set_header_limit(app, 17u * 1024 * 1024), -EINVAL);
    ck_assert_int_eq(vg_map_get(app, "/hello", hello, NULL), 0);
    tu_start(app);
    ck_assert_int_eq(vg_app_set_queue_limit(app, 5), -EBUSY);
    ck_assert_int_eq(vg_app_set_idle_timeout(app, 5), -EBUSY);
    ck_assert_int_eq(vg_app_set_per_ip_limit(app, 5), -EBUSY);
    ck_assert_int_eq(vg_app_set_header_limit(app, 8192), -EBUSY);
    vg_app_free(app);
}
END_TEST

static Suite *limits_suite(void)
{
    Suite *s = suite_create("limits");
    TCase *tc = tcase_create("limits");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, full_queue_answers_503_with_retry_after);
    tcase_add_test(tc, idle_client_with_half_a_header_is_dropped);
    tcase_add_test(tc, oversized_header_gets_431);
    tcase_add_test(tc, per_ip_limit_refuses_extra_connections);
    tcase_add_test(tc, connection_limit_is_enforced);
    tcase_add_test(tc, limit_settings_validate);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(limits_suite());
}
