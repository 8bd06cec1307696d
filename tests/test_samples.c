/* test_samples.c - the samples as users run them: samples/todo started as
 * a process, driven over HTTP (201 + Location, 200, 204, 400, 404), then
 * stopped with SIGTERM, exiting 0. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <volga.h>
#include "testutil.h"


static const char *const json_hdr[] = {"Content-Type: application/json", NULL};

START_TEST(todo_crud)
{
    tu_sample s;
    tu_response r;
    json_t *j;
    char *loc, path[64];

    tu_sample_start(&s, "todo", false);
    r = tu_request(s.port, "POST", "/todos", "{\"title\":\"milk\"}", 16, json_hdr);
    ck_assert_int_eq(r.status, 201);
    loc = tu_header(&r, "Location");
    ck_assert_ptr_nonnull(loc);
    j = json_loads(r.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "title")), "milk");
    ck_assert(json_is_false(json_object_get(j, "done")));
    snprintf(path, sizeof path, "/todos/%s",
             json_string_value(json_object_get(j, "id")));
    ck_assert_str_eq(loc, path);
    json_decref(j);
    free(loc);
    tu_response_free(&r);

    r = tu_get(s.port, path);
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    r = tu_get(s.port, "/todos");
    ck_assert_int_eq(r.status, 200);
    j = json_loads(r.body, 0, NULL);
    ck_assert_uint_eq(json_array_size(j), 1);
    json_decref(j);
    tu_response_free(&r);

    r = tu_request(s.port, "PUT", path, "{\"title\":\"oat milk\",\"done\":true}",
                   32, json_hdr);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"done\":true"));
    tu_response_free(&r);

    r = tu_request(s.port, "POST", "/todos", "{nope", 5, json_hdr);
    ck_assert_int_eq(r.status, 400);
    tu_response_free(&r);
    r = tu_request(s.port, "POST", "/todos", "{\"title\":5}", 11, json_hdr);
    ck_assert_int_eq(r.status, 400);
    tu_response_free(&r);

    r = tu_request(s.port, "DELETE", path, NULL, 0, NULL);
    ck_assert_int_eq(r.status, 204);
    tu_response_free(&r);
    r = tu_get(s.port, path);
    ck_assert_int_eq(r.status, 404);
    tu_response_free(&r);
    r = tu_request(s.port, "DELETE", path, NULL, 0, NULL);
    ck_assert_int_eq(r.status, 404);
    tu_response_free(&r);
    r = tu_request(s.port, "PATCH", "/todos", NULL, 0, NULL);
    ck_assert_int_eq(r.status, 405);
    tu_response_free(&r);
    tu_sample_stop(&s);
}
END_TEST

START_TEST(hello_answers_text_and_json)
{
    tu_sample s;
    tu_response r;

    tu_sample_start(&s, "hello", false);
    r = tu_get(s.port, "/hello/Ada");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "Hello, Ada!");
    tu_response_free(&r);
    r = tu_get(s.port, "/json");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"message\":\"Hello, World!\",\"answer\":42}");
    tu_response_free(&r);
    r = tu_request(s.port, "POST", "/echo", "not json", 8, NULL);
    ck_assert_int_eq(r.status, 400);
    tu_response_free(&r);
    tu_sample_stop(&s);
}
END_TEST

static Suite *samples_suite(void)
{
    Suite *s = suite_create("samples");
    TCase *tc = tcase_create("samples");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, todo_crud);
    tcase_add_test(tc, hello_answers_text_and_json);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(samples_suite());
}
