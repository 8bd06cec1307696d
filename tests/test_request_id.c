/* test_request_id.c - request IDs (lib/web/request_id.c) on a real app on
 * 127.0.0.1:0: generated IDs (128 bits of hex, all different), trusted
 * and untrusted incoming X-Request-Id, what counts as sane, the ID on the
 * library's own answers and on a CORS preflight, and in the access log. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <volga.h>
#include "testutil.h"

#define WAIT_MS 10000

/* Answers with the ID the handler sees. */
static vg_result *echo_id(vg_request *req, void *arg)
{
    const char *id = vg_request_id(req);
    (void)arg;
    return vg_textf("%s", id ? id : "(none)");
}

static vg_app *id_app(bool trust)
{
    vg_app *app = tu_app_new();

    ck_assert_int_eq(vg_app_use_request_id(app, trust), 0);
    ck_assert_int_eq(vg_map_get(app, "/id", echo_id, NULL), 0);
    return app;
}

static bool is_generated(const char *id)
{
    size_t i;

    if (id == NULL || strlen(id) != 32)
        return false;
    for (i = 0; i < 32; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return true;
}

/* GETs /id with an optional X-Request-Id; returns the response's header
 * (malloc'd) and checks the handler saw the same. */
static char *get_id(unsigned short port, const char *incoming)
{
    char line[512];
    const char *h[] = {line, NULL};
    tu_response r;
    char *id;

    snprintf(line, sizeof line, "X-Request-Id: %s", incoming ? incoming : "");
    r = tu_request(port, "GET", "/id", NULL, 0, incoming ? h : NULL);
    ck_assert_int_eq(r.status, 200);
    id = tu_header(&r, "X-Request-Id");
    ck_assert_ptr_nonnull(id);
    ck_assert_str_eq(r.body, id);
    tu_response_free(&r);
    return id;
}

START_TEST(generated_ids_are_128_bits_of_hex_and_distinct)
{
    vg_app *app = id_app(true);
    enum { N = 300 };
    char *ids[N];
    int i, j;

    tu_start(app);
    for (i = 0; i < N; i++) {
        ids[i] = get_id(vg_app_port(app), NULL);
        ck_assert_msg(is_generated(ids[i]), "not 32 hex digits: %s", ids[i]);
    }
    for (i = 0; i < N; i++)
        for (j = i + 1; j < N; j++)
            ck_assert_str_ne(ids[i], ids[j]);
    for (i = 0; i < N; i++)
        free(ids[i]);
    vg_app_free(app);
}
END_TEST

START_TEST(trusted_incoming_id_is_kept)
{
    vg_app *app = id_app(true);
    char longest[129];
    char *id;

    memset(longest, 'x', 128);
    longest[128] = '\0';
    tu_start(app);
    id = get_id(vg_app_port(app), "req-42_a.b:c+d/e=f@g~h");
    ck_assert_str_eq(id, "req-42_a.b:c+d/e=f@g~h");
    free(id);
    id = get_id(vg_app_port(app), longest);
    ck_assert_str_eq(id, longest);
    free(id);
    vg_app_free(app);
}
END_TEST

START_TEST(insane_incoming_id_is_replaced)
{
    vg_app *app = id_app(true);
    static const char *const bad[] = {
        "has space", "quote\"d", "semi;colon", "comma,", "back\\slash",
        "<script>", "tab\there", "caf\xc3\xa9",
    };
    char toolong[130];
    size_t i;
    char *id;

    memset(toolong, 'y', 129);
    toolong[129] = '\0';
    tu_start(app);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        id = get_id(vg_app_port(app), bad[i]);
        ck_assert_msg(is_generated(id), "%s kept as %s", bad[i], id);
        free(id);
    }
    id = get_id(vg_app_port(app), toolong);
    ck_assert(is_generated(id));
    free(id);
    id = get_id(vg_app_port(app), "");
    ck_assert(is_generated(id));
    free(id);
    vg_app_free(app);
}
END_TEST

START_TEST(untrusted_incoming_id_is_ignored)
{
    vg_app *app = id_app(false);
    char *id;

    tu_start(app);
    id = get_id(vg_app_port(app), "from-the-client");
    ck_assert(is_generated(id));
    free(id);
    vg_app_free(app);
}
END_TEST

START_TEST(library_answers_and_preflights_carry_the_id)
{
    vg_app *app = id_app(true);
    vg_cors *c = vg_cors_new();
    const char *pre[] = {"Origin: http://a.example",
                         "Access-Control-Request-Method: GET",
                         "X-Request-Id: pre-1", NULL};
    const char *del[] = {"X-Request-Id: del-1", NULL};
    tu_response r;
    char *id;

    ck_assert_int_eq(vg_cors_allow_origin(c, "http://a.example"), 0);
    ck_assert_int_eq(vg_app_use_cors(app, c), 0);
    tu_start(app);
    r = tu_get(vg_app_port(app), "/nowhere");
    ck_assert_int_eq(r.status, 404);
    id = tu_header(&r, "X-Request-Id");
    ck_assert(is_generated(id));
    free(id);
    tu_response_free(&r);
    r = tu_request(vg_app_port(app), "DELETE", "/id", NULL, 0, del);
    ck_assert_int_eq(r.status, 405);
    id = tu_header(&r, "X-Request-Id");
    ck_assert_str_eq(id, "del-1");
    free(id);
    tu_response_free(&r);
    /* The CORS filter, registered after, answers the preflight itself. */
    r = tu_request(vg_app_port(app), "OPTIONS", "/id", NULL, 0, pre);
    ck_assert_int_eq(r.status, 204);
    id = tu_header(&r, "Access-Control-Allow-Origin");
    ck_assert_str_eq(id, "http://a.example");
    free(id);
    id = tu_header(&r, "X-Request-Id");
    ck_assert_str_eq(id, "pre-1");
    free(id);
    tu_response_free(&r);
    vg_app_free(app);
    vg_cors_free(c);
}
END_TEST

START_TEST(no_id_without_the_filter)
{
    vg_app *app = tu_app_new();
    tu_response r;

    ck_assert_int_eq(vg_map_get(app, "/id", echo_id, NULL), 0);
    tu_start(app);
    r = tu_get(vg_app_port(app), "/id");
    ck_assert_str_eq(r.body, "(none)");
    ck_assert_ptr_null(strcasestr(r.headers, "X-Request-Id"));
    tu_response_free(&r);
    vg_app_free(app);
    ck_assert_ptr_null(vg_request_id(NULL));
    ck_assert_int_eq(vg_app_use_request_id(NULL, true), -EINVAL);
}
END_TEST

/* ---- The access log ---- */

typedef struct {
    pthread_mutex_t lock;
    char lines[8192];
    tu_latch got;
} log_sink;

static void capture(vg_log_level level, const char *msg, void *arg)
{
    log_sink *s = arg;

    if (level != VG_LOG_INFO || strncmp(msg, "GET /id", 7) != 0)
        return;
    pthread_mutex_lock(&s->lock);
    strncat(s->lines, msg, sizeof s->lines - strlen(s->lines) - 2);
    strcat(s->lines, "\n");
    pthread_mutex_unlock(&s->lock);
    tu_latch_add(&s->got, 1);
}

START_TEST(access_log_line_shows_the_id)
{
    log_sink s;
    vg_app *app = tu_app_new();
    char *a, *b, want[128];

    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.lock, NULL);
    tu_latch_init(&s.got);
    ck_assert_int_eq(vg_app_set_logger(app, capture, &s, VG_LOG_INFO), 0);
    ck_assert_int_eq(vg_app_use_request_id(app, true), 0);
    ck_assert_int_eq(vg_map_get(app, "/id", echo_id, NULL), 0);
    tu_start(app);
    a = get_id(vg_app_port(app), "trace-7");
    b = get_id(vg_app_port(app), NULL);
    ck_assert(tu_latch_wait(&s.got, 2, WAIT_MS));
    pthread_mutex_lock(&s.lock);
    snprintf(want, sizeof want, "GET /id 200 ");
    ck_assert_ptr_nonnull(strstr(s.lines, want));
    snprintf(want, sizeof want, " ms id=%s\n", a);
    ck_assert_msg(strstr(s.lines, want) != NULL, "log:\n%s", s.lines);
    snprintf(want, sizeof want, " ms id=%s\n", b);
    ck_assert_msg(strstr(s.lines, want) != NULL, "log:\n%s", s.lines);
    pthread_mutex_unlock(&s.lock);
    vg_app_free(app);
    free(a);
    free(b);
    tu_latch_destroy(&s.got);
    pthread_mutex_destroy(&s.lock);
}
END_TEST

static Suite *request_id_suite(void)
{
    Suite *s = suite_create("request_id");
    TCase *tc = tcase_create("request_id");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, generated_ids_are_128_bits_of_hex_and_distinct);
    tcase_add_test(tc, trusted_incoming_id_is_kept);
    tcase_add_test(tc, insane_incoming_id_is_replaced);
    tcase_add_test(tc, untrusted_incoming_id_is_ignored);
    tcase_add_test(tc, library_answers_and_preflights_carry_the_id);
    tcase_add_test(tc, no_id_without_the_filter);
    tcase_add_test(tc, access_log_line_shows_the_id);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(request_id_suite());
}
