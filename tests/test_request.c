/* test_request.c - the request's parsing helpers without a server: target
 * splitting and decoding, NUL rejection (DESIGN.md fact 14), query, headers,
 * params from a match, the body limit and lazy JSON. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "model/request.h"

static vg_request *with_target(const char *raw, const char *url, int expect)
{
    vg_request *req = vg__request_new(NULL);

    ck_assert_ptr_nonnull(req);
    ck_assert_int_eq(vg__request_set_uri(req, raw), 0);
    ck_assert_int_eq(vg__request_parse_target(req, url), expect);
    return req;
}

START_TEST(root_has_no_segments)
{
    vg_request *req = with_target("/", "/", 0);
    ck_assert_uint_eq(req->nseg, 0);
    ck_assert_str_eq(vg_request_path(req), "/");
    vg__request_unref(req);
}
END_TEST

START_TEST(segments_are_decoded_one_by_one)
{
    vg_request *req = with_target("/users/A%20B/x%2Fy?q=1", "/users/A B/x/y", 0);
    ck_assert_uint_eq(req->nseg, 3);
    ck_assert_str_eq(req->segs[0], "users");
    ck_assert_str_eq(req->segs[1], "A B");
    ck_assert_str_eq(req->segs[2], "x/y"); /* an encoded slash stays inside */
    ck_assert_str_eq(vg_request_path(req), "/users/A B/x/y");
    vg__request_unref(req);
}
END_TEST

START_TEST(one_trailing_slash_is_dropped)
{
    vg_request *req = with_target("/users/", "/users/", 0);
    ck_assert_uint_eq(req->nseg, 1);
    ck_assert_str_eq(req->segs[0], "users");
    vg__request_unref(req);
    req = with_target("/a//", "/a//", 0);
    ck_assert_uint_eq(req->nseg, 2); /* only one is dropped */
    ck_assert_str_eq(req->segs[1], "");
    vg__request_unref(req);
}
END_TEST

START_TEST(nul_in_path_is_rejected)
{
    vg_request *req = with_target("/hello%00.txt", "/hello", -EINVAL);
    vg__request_unref(req);
    req = with_target("/a/%00", "/a/", -EINVAL);
    vg__request_unref(req);
}
END_TEST

START_TEST(absolute_form_routes_by_its_path)
{
    vg_request *req = with_target("http://x:8080/a%20b/c?q=1", "http://x:8080/a b/c", 0);
    ck_assert_str_eq(vg_request_path(req), "/a b/c");
    ck_assert_uint_eq(req->nseg, 2);
    ck_assert_str_eq(req->segs[0], "a b");
    ck_assert_str_eq(req->authority, "x:8080");
    /* The target as sent is kept (the access log's). */
    ck_assert_str_eq(vg_request_target(req), "http://x:8080/a%20b/c?q=1");
    vg__request_unref(req);
    req = with_target("HTTPS://x", "HTTPS://x", 0);
    ck_assert_str_eq(vg_request_path(req), "/");
    ck_assert_uint_eq(req->nseg, 0);
    vg__request_unref(req);
    req = with_target("http://x?q", "http://x", 0);
    ck_assert_str_eq(vg_request_path(req), "/");
    vg__request_unref(req);
}
END_TEST

START_TEST(non_origin_targets_are_rejected)
{
    vg_request *req = with_target("ftp://x/y", "ftp://x/y", -EINVAL);
    vg__request_unref(req);
    req = with_target("http:///y", "http:///y", -EINVAL);
    vg__request_unref(req);
    req = with_target("*", "*", -EINVAL);
    vg__request_unref(req);
    req = with_target("/a#frag", "/a#frag", -EINVAL);
    vg__request_unref(req);
}
END_TEST

START_TEST(query_rejects_hidden_nul)
{
    vg_request *req = vg__request_new(NULL);

    ck_assert_int_eq(vg__request_add_query(req, "a", 1, "1", 1), 0);
    ck_assert_int_eq(vg__request_add_query(req, "flag", 4, NULL, 0), 0);
    ck_assert_int_eq(vg__request_add_query(req, "a", 1, "2", 1), 0);
    /* MHD reports a decoded length; a shorter C string hides a NUL. */
    ck_assert_int_eq(vg__request_add_query(req, "b", 1, "x\0y", 3), -EINVAL);
    ck_assert_int_eq(vg__request_add_query(req, "c\0d", 3, "v", 1), -EINVAL);
    ck_assert_str_eq(vg_request_query(req, "a"), "1"); /* first one wins */
    ck_assert_str_eq(vg_request_query(req, "flag"), "");
    ck_assert_ptr_null(vg_request_query(req, "b"));
    ck_assert_ptr_null(vg_request_query(req, "A")); /* names are exact */
    ck_assert_ptr_null(vg_request_query(req, NULL));
    vg__request_unref(req);
}
END_TEST

START_TEST(headers_are_case_insensitive)
{
    vg_request *req = vg__request_new(NULL);

    ck_assert_int_eq(vg__request_add_header(req, "Content-Type", "text/x"), 0);
    ck_assert_int_eq(vg__request_add_header(req, "X-Empty", ""), 0);
    ck_assert_str_eq(vg_request_header(req, "content-type"), "text/x");
    ck_assert_str_eq(vg_request_header(req, "CONTENT-TYPE"), "text/x");
    ck_assert_str_eq(vg_request_header(req, "x-empty"), "");
    ck_assert_ptr_null(vg_request_header(req, "Accept"));
    vg__request_unref(req);
}
END_TEST

START_TEST(many_headers_fit)
{
    vg_request *req = vg__request_new(NULL);
    char name[32], value[64];
    int i;

    for (i = 0; i < 500; i++) {
        snprintf(name, sizeof name, "X-H%d", i);
        snprintf(value, sizeof value, "value-%d-with-some-length", i);
        ck_assert_int_eq(vg__request_add_header(req, name, value), 0);
    }
    ck_assert_str_eq(vg_request_header(req, "x-h499"),
                     "value-499-with-some-length");
    ck_assert_str_eq(vg_request_header(req, "x-h0"), "value-0-with-some-length");
    vg__request_unref(req);
}
END_TEST

START_TEST(params_from_match_including_rest)
{
    vg_request *req = with_target("/files/a/b%20c/d", "/files/a/b c/d", 0);
    vg__match m;

    memset(&m, 0, sizeof m);
    m.nparams = 2;
    m.params[0].name = "first";
    m.params[0].seg = 1;
    m.params[1].name = "rest";
    m.params[1].seg = 2;
    m.params[1].rest = true;
    ck_assert_int_eq(vg__request_set_params(req, &m), 0);
    ck_assert_str_eq(vg_request_param(req, "first"), "a");
    ck_assert_str_eq(vg_request_param(req, "rest"), "b c/d");
    ck_assert_ptr_null(vg_request_param(req, "other"));
    vg__request_unref(req);
}
END_TEST

START_TEST(empty_rest_param)
{
    vg_request *req = with_target("/files", "/files", 0);
    vg__match m;

    memset(&m, 0, sizeof m);
    m.nparams = 1;
    m.params[0].name = "rest";
    m.params[0].seg = 1;
    m.params[0].rest = true;
    ck_assert_int_eq(vg__request_set_params(req, &m), 0);
    ck_assert_str_eq(vg_request_param(req, "rest"), "");
    vg__request_unref(req);
}
END_TEST

START_TEST(body_accumulates_and_is_terminated)
{
    vg_request *req = vg__request_new(NULL);
    size_t len = 99;
    const char *body = vg_request_body(req, &len);

    ck_assert_str_eq(body, "");
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(vg__request_append_body(req, "{\"a\":", 5, 100), 0);
    ck_assert_int_eq(vg__request_append_body(req, "1}", 2, 100), 0);
    body = vg_request_body(req, &len);
    ck_assert_uint_eq(len, 7);
    ck_assert_str_eq(body, "{\"a\":1}");
    ck_assert_ptr_nonnull(vg_request_json(req));
    ck_assert_ptr_eq(vg_request_json(req), vg_request_json(req));
    ck_assert_int_eq(json_integer_value(json_object_get(vg_request_json(req), "a")), 1);
    vg__request_unref(req);
}
END_TEST

START_TEST(body_limit_is_exact)
{
    vg_request *req = vg__request_new(NULL);
    char buf[64];

    memset(buf, 'x', sizeof buf);
    ck_assert_int_eq(vg__request_append_body(req, buf, 60, 64), 0);
    ck_assert_int_eq(vg__request_append_body(req, buf, 4, 64), 0);
    ck_assert(!req->body_too_large); /* exactly at the limit is fine */
    ck_assert_int_eq(vg__request_append_body(req, buf, 1, 64), 0);
    ck_assert(req->body_too_large);
    ck_assert_ptr_null(req->body); /* nothing kept of an oversized body */
    ck_assert_int_eq(vg__request_append_body(req, buf, 64, 64), 0);
    ck_assert_uint_eq(req->body_seen, 129);
    vg__request_unref(req);
}
END_TEST

START_TEST(invalid_or_deep_json_is_null)
{
    vg_request *req = vg__request_new(NULL);
    size_t n = 100000, i;
    char *deep = malloc(2 * n);

    ck_assert_int_eq(vg__request_append_body(req, "{nope", 5, 100), 0);
    ck_assert_ptr_null(vg_request_json(req));
    vg__request_unref(req);

    /* 100,000 nested arrays: refused by the parser, not a stack overflow. */
    for (i = 0; i < n; i++) {
        deep[i] = '[';
        deep[n + i] = ']';
    }
    req = vg__request_new(NULL);
    ck_assert_int_eq(vg__request_append_body(req, deep, 2 * n, 4 * n), 0);
    ck_assert_ptr_null(vg_request_json(req));
    vg__request_unref(req);
    free(deep);
}
END_TEST

START_TEST(every_request_has_its_own_token)
{
    vg_request *a = vg__request_new(NULL), *b = vg__request_new(NULL);

    ck_assert_ptr_nonnull(vg_request_token(a));
    ck_assert_ptr_ne(vg_request_token(a), vg_request_token(b));
    ck_assert(!vg_token_is_cancelled(vg_request_token(a)));
    vg__request_unref(a);
    vg__request_unref(b);
}
END_TEST

START_TEST(arena_handles_long_strings)
{
    vg_request *req = vg__request_new(NULL);
    size_t n = 10000;
    char *big = malloc(n + 1);
    const char *copy;

    memset(big, 'a', n);
    big[n] = '\0';
    copy = vg__request_strndup(req, big, n);
    ck_assert_ptr_nonnull(copy);
    ck_assert_uint_eq(strlen(copy), n);
    ck_assert_str_eq(vg__request_strndup(req, "small", 5), "small");
    free(big);
    vg__request_unref(req);
}
END_TEST

static Suite *request_suite(void)
{
    Suite *s = suite_create("request");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, root_has_no_segments);
    tcase_add_test(tc, segments_are_decoded_one_by_one);
    tcase_add_test(tc, one_trailing_slash_is_dropped);
    tcase_add_test(tc, nul_in_path_is_rejected);
    tcase_add_test(tc, absolute_form_routes_by_its_path);
    tcase_add_test(tc, non_origin_targets_are_rejected);
    tcase_add_test(tc, query_rejects_hidden_nul);
    tcase_add_test(tc, headers_are_case_insensitive);
    tcase_add_test(tc, many_headers_fit);
    tcase_add_test(tc, params_from_match_including_rest);
    tcase_add_test(tc, empty_rest_param);
    tcase_add_test(tc, body_accumulates_and_is_terminated);
    tcase_add_test(tc, body_limit_is_exact);
    tcase_add_test(tc, invalid_or_deep_json_is_null);
    tcase_add_test(tc, every_request_has_its_own_token);
    tcase_add_test(tc, arena_handles_long_strings);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(request_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
