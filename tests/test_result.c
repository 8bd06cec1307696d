/* test_result.c - building results: statuses, content types, headers,
 * ownership of JSON values, and the chaining rules on bad input. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "model/result.h"

START_TEST(text_is_200_plain_utf8)
{
    vg_result *r = vg_text("hi");
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->status, 200);
    ck_assert_str_eq(r->ctype, "text/plain; charset=utf-8");
    ck_assert_uint_eq(r->body_len, 2);
    ck_assert_int_eq(memcmp(r->body, "hi", 2), 0);
    vg_result_free(r);
}
END_TEST

START_TEST(text_null_and_empty_have_no_body)
{
    vg_result *a = vg_text(NULL), *b = vg_text("");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(a->body_len, 0);
    ck_assert_uint_eq(b->body_len, 0);
    vg_result_free(a);
    vg_result_free(b);
}
END_TEST

START_TEST(textf_formats)
{
    vg_result *r = vg_textf("%s-%d-%.1f", "x", 42, 1.5);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->body_len, strlen("x-42-1.5"));
    ck_assert_int_eq(memcmp(r->body, "x-42-1.5", r->body_len), 0);
    vg_result_free(r);
}
END_TEST

START_TEST(json_serializes_and_steals)
{
    json_t *v = json_pack("{s:i}", "a", 1);
    vg_result *r;

    json_incref(v); /* keep one reference to observe the steal */
    ck_assert_int_eq(v->refcount, 2);
    r = vg_json(v);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(v->refcount, 1);
    ck_assert_str_eq(r->ctype, "application/json");
    ck_assert_uint_eq(r->body_len, strlen("{\"a\":1}"));
    ck_assert_int_eq(memcmp(r->body, "{\"a\":1}", r->body_len), 0);
    json_decref(v);
    vg_result_free(r);
}
END_TEST

START_TEST(json_scalar_and_null)
{
    vg_result *r = vg_json(json_integer(7));
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(memcmp(r->body, "7", 1), 0);
    vg_result_free(r);
    errno = 0;
    ck_assert_ptr_null(vg_json(NULL));
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(status_has_no_body_or_type)
{
    vg_result *r = vg_status(204);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->status, 204);
    ck_assert_ptr_null(r->ctype);
    ck_assert_uint_eq(r->body_len, 0);
    vg_result_free(r);
    ck_assert_ptr_null(vg_status(99));
    ck_assert_ptr_null(vg_status(102)); /* interim codes are not answers */
    ck_assert_ptr_null(vg_status(199));
    ck_assert_ptr_null(vg_status(1000));
}
END_TEST

START_TEST(set_status_valid_and_invalid)
{
    vg_result *r = vg_result_set_status(vg_text("x"), 418);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->status, 418);
    errno = 0;
    ck_assert_ptr_null(vg_result_set_status(r, 42)); /* frees r */
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(vg_result_set_status(NULL, 200));
}
END_TEST

START_TEST(set_header_copies_and_chains)
{
    char name[] = "X-One", value[] = "1";
    vg_result *r = vg_result_set_header(vg_text("x"), name, value);

    ck_assert_ptr_nonnull(r);
    name[0] = value[0] = '?'; /* the result kept copies */
    r = vg_result_set_header(r, "X-Two", "");
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->nheaders, 2);
    ck_assert_str_eq(r->headers[0].name, "X-One");
    ck_assert_str_eq(r->headers[0].value, "1");
    ck_assert_str_eq(r->headers[1].name, "X-Two");
    vg_result_free(r);
}
END_TEST

START_TEST(content_type_replaces_default)
{
    vg_result *r = vg_result_set_header(vg_text("<p>"), "content-type",
                                        "text/html");
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->ctype, "text/html");
    ck_assert_uint_eq(r->nheaders, 0);
    r = vg_result_set_header(r, "Content-Type", "text/css");
    ck_assert_str_eq(r->ctype, "text/css");
    vg_result_free(r);
}
END_TEST

START_TEST(bad_headers_free_and_return_null)
{
    static const char *const bad[][2] = {
        {"", "v"}, {"Bad Name", "v"}, {"X\r\nY", "v"}, {"X-A", "a\r\nB: c"},
        {"X-A", "line\n"}, {"Content-Length", "3"},
        {"transfer-encoding", "chunked"}, {"X:Y", "v"},
    };
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        ck_assert_ptr_null(vg_result_set_header(vg_text("x"), bad[i][0], bad[i][1]));
        ck_assert_int_eq(errno, EINVAL);
    }
    ck_assert_ptr_null(vg_result_set_header(vg_text("x"), NULL, "v"));
    ck_assert_ptr_null(vg_result_set_header(vg_text("x"), "X", NULL));
    ck_assert_ptr_null(vg_result_set_header(NULL, "X", "v"));
}
END_TEST

START_TEST(many_headers_grow)
{
    vg_result *r = vg_text("x");
    char name[32];
    int i;

    for (i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "X-H%d", i);
        r = vg_result_set_header(r, name, "v");
        ck_assert_ptr_nonnull(r);
    }
    ck_assert_uint_eq(r->nheaders, 100);
    ck_assert_str_eq(r->headers[99].name, "X-H99");
    vg_result_free(r);
}
END_TEST

START_TEST(take_body_moves_ownership)
{
    vg_result *r = vg_text("abc");
    size_t len;
    char *body;

    ck_assert_int_eq(vg__result_take_body(r, &body, &len), 0);
    ck_assert_uint_eq(len, 3);
    ck_assert_int_eq(memcmp(body, "abc", 3), 0);
    ck_assert_ptr_null(r->body);
    ck_assert_uint_eq(r->body_len, 0);
    free(body);
    vg_result_free(r);
    vg_result_free(NULL);
}
END_TEST

START_TEST(error_result)
{
    vg_result *r = vg__result_error(503, "busy");
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->status, 503);
    ck_assert_int_eq(memcmp(r->body, "busy", 4), 0);
    vg_result_free(r);
}
END_TEST

static Suite *result_suite(void)
{
    Suite *s = suite_create("result");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, text_is_200_plain_utf8);
    tcase_add_test(tc, text_null_and_empty_have_no_body);
    tcase_add_test(tc, textf_formats);
    tcase_add_test(tc, json_serializes_and_steals);
    tcase_add_test(tc, json_scalar_and_null);
    tcase_add_test(tc, status_has_no_body_or_type);
    tcase_add_test(tc, set_status_valid_and_invalid);
    tcase_add_test(tc, set_header_copies_and_chains);
    tcase_add_test(tc, content_type_replaces_default);
    tcase_add_test(tc, bad_headers_free_and_return_null);
    tcase_add_test(tc, many_headers_grow);
    tcase_add_test(tc, take_body_moves_ownership);
    tcase_add_test(tc, error_result);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(result_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
