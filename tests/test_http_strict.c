/* test_http_strict.c - the pure checks of lib/model/http_strict.c without a
 * server: methods, targets, Host values, field names and values, and the
 * walk over a head laid out as libmicrohttpd 0.9.75 leaves it (modelled
 * by tests/fuzz/mhd_head_model.h), where NULs and obs-fold are found from
 * where the strings lie. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "model/http_strict.h"
#include "fuzz/mhd_head_model.h"

#define ck_ok(v) ck_assert_msg((v).status == 0, "refused: %s", (v).detail)
#define ck_refused(v, st, text)                                              \
    do {                                                                     \
        vg__strict_verdict v_ = (v);                                         \
        ck_assert_uint_eq(v_.status, st);                                    \
        ck_assert_msg(strstr(v_.detail, text) != NULL, "detail: %s", v_.detail); \
        ck_assert(v_.detail[strlen(v_.detail) - 1] != '\n');                 \
    } while (0)

#define T(s) s, sizeof(s) - 1

START_TEST(methods_are_tokens_of_bounded_length)
{
    ck_ok(vg__strict_method(T("GET"), 0));
    ck_ok(vg__strict_method(T("M-SEARCH"), 0));
    ck_ok(vg__strict_method(T("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF"), 0)); /* 32 */
    ck_refused(vg__strict_method(T("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG"), 0), 501,
               "not implemented");
    ck_ok(vg__strict_method(T("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG"), 33));
    ck_refused(vg__strict_method(T("G(T"), 0), 400, "not a token");
    ck_refused(vg__strict_method(T("G\xc3\x89T"), 0), 400, "not a token");
    ck_refused(vg__strict_method("", 0, 0), 400, "empty method");
}
END_TEST

START_TEST(targets_refuse_raw_bytes_and_overlong_utf8)
{
    ck_ok(vg__strict_target(T("/a/b?c=d&e=%20%C3%A9")));
    ck_ok(vg__strict_target(T("/%E0%A0%80/%F0%90%80%80"))); /* shortest forms */
    ck_ok(vg__strict_target(T("/%zz%/%")));                 /* not escapes */
    ck_ok(vg__strict_target(T("http://h/x")));
    ck_refused(vg__strict_target(T("/a b")), 400, "space");
    ck_refused(vg__strict_target(T("/a\0b")), 400, "NUL");
    ck_refused(vg__strict_target(T("/a\tb")), 400, "control");
    ck_refused(vg__strict_target(T("/a\x7f")), 400, "control");
    ck_refused(vg__strict_target(T("/caf\xc3\xa9")), 400, "non-ASCII");
    ck_refused(vg__strict_target(T("/%C0%AE%C0%AE/etc")), 400, "overlong");
    ck_refused(vg__strict_target(T("/%c1%81")), 400, "overlong");
    ck_refused(vg__strict_target(T("/?q=%E0%80%AF")), 400, "overlong");
    ck_refused(vg__strict_target(T("/%F0%80%80%AF")), 400, "overlong");
    ck_refused(vg__strict_target(T("/%F0%8f")), 400, "overlong");
}
END_TEST

START_TEST(absolute_form_is_split)
{
    vg__strict_absolute a;

    ck_assert(vg__strict_absolute_form("http://h:80/p?q", &a));
    ck_assert_uint_eq(a.authority_len, 4);
    ck_assert(strncmp(a.authority, "h:80", 4) == 0);
    ck_assert_str_eq(a.rest, "/p?q");
    ck_assert(vg__strict_absolute_form("HTTPS://h", &a));
    ck_assert_str_eq(a.rest, "");
    ck_assert(!vg__strict_absolute_form("/p", &a));
    ck_assert(!vg__strict_absolute_form("ftp://h/p", &a));
    ck_assert(!vg__strict_absolute_form("http:///p", &a));
    ck_assert(!vg__strict_absolute_form("http:/h", &a));
}
END_TEST

START_TEST(host_values)
{
    ck_ok(vg__strict_host(T("example.com")));
    ck_ok(vg__strict_host(T("example.com:8080")));
    ck_ok(vg__strict_host(T("example.com:")));  /* port = *DIGIT */
    ck_ok(vg__strict_host(T("127.0.0.1:80")));
    ck_ok(vg__strict_host(T("[::1]:8080")));
    ck_ok(vg__strict_host(T("[::ffff:127.0.0.1]")));
    ck_refused(vg__strict_host("", 0), 400, "empty Host");
    ck_refused(vg__strict_host(T("user@h")), 400, "userinfo");
    ck_refused(vg__strict_host(T("h/p")), 400, "path");
    ck_refused(vg__strict_host(T("a,b")), 400, "more than one value");
    ck_refused(vg__strict_host(T("a b")), 400, "invalid Host");
    ck_refused(vg__strict_host(T(":80")), 400, "invalid Host");
    ck_refused(vg__strict_host(T("h:8x")), 400, "invalid Host");
    ck_refused(vg__strict_host(T("[]")), 400, "invalid Host");
    ck_refused(vg__strict_host(T("[::1")), 400, "invalid Host");
    ck_refused(vg__strict_host(T("h;x")), 400, "invalid Host");
    ck_refused(vg__strict_host(T("h%41")), 400, "invalid Host");
}
END_TEST

START_TEST(field_names_and_values)
{
    ck_ok(vg__strict_field_name(T("X-Forwarded-For")));
    ck_ok(vg__strict_field_name(T("!#$%&'*+-.^_`|~09azAZ")));
    ck_refused(vg__strict_field_name("", 0), 400, "empty header name");
    ck_refused(vg__strict_field_name(T("X Y")), 400, "not a token");
    ck_refused(vg__strict_field_name(T("X:Y")), 400, "not a token");
    ck_refused(vg__strict_field_name(T("X\xe9")), 400, "non-ASCII");
    ck_ok(vg__strict_field_value(T("a\tb c \xc3\xa9")));
    ck_ok(vg__strict_field_value("", 0));
    ck_refused(vg__strict_field_value(T("a\0b")), 400, "NUL");
    ck_refused(vg__strict_field_value(T("a\rb")), 400, "bare CR");
    ck_refused(vg__strict_field_value(T("a\nb")), 400, "control");
    ck_refused(vg__strict_field_value(T("a\x1f")), 400, "control");
    ck_refused(vg__strict_field_value(T("a\x7f")), 400, "control");
}
END_TEST

/* The byte table against the RFC's sets, spelled out. */
START_TEST(byte_classes_match_the_rfc_sets)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
                                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    char b[3];
    int c;

    for (c = 0; c < 256; c++) {
        b[0] = (char)c;
        b[1] = 'a';
        b[2] = '/';
        ck_assert_msg((vg__strict_field_name(b, 1).status == 0) ==
                          (c != 0 && strchr(tchar, c) != NULL), "name byte %d", c);
        ck_assert_msg((vg__strict_field_value(b, 1).status == 0) ==
                          (c == '\t' || (c >= 0x20 && c != 0x7f)), "value byte %d", c);
        ck_assert_msg((vg__strict_target(b + 2, 1).status == 0 &&
                       vg__strict_target(b, 1).status == 0) ==
                          (c > 0x20 && c < 0x7f), "target byte %d", c);
        ck_assert_msg((vg__strict_host(b, 2).status == 0) ==
                          ((c != 0 && strchr(tchar + 25, c) != NULL) || c == '-' ||
                           c == '.' || c == '_' || c == '~' ||
                           (c >= '0' && c <= '9')),
                      "host byte %d", c);
    }
}
END_TEST

START_TEST(versions)
{
    ck_assert(vg__strict_is_http11("HTTP/1.1"));
    ck_assert(vg__strict_is_http11("HTTP/1.2"));
    ck_assert(!vg__strict_is_http11("HTTP/1.0"));
    ck_assert(!vg__strict_is_http11(""));
    ck_assert(!vg__strict_is_http11(NULL));
}
END_TEST

/* The verdict on a head parsed by the model, as lib/engine/mhd_glue.c asks it. */
static vg__strict_verdict on_head(const char *in, size_t len)
{
    model_head m;
    vg__strict s;
    vg__strict_verdict v;
    size_t i;

    ck_assert_msg(model_parse(&m, in, len) == 1,
                  "libmicrohttpd would refuse this head itself");
    vg__strict_begin(&s, m.method, m.uri, m.uri_len, m.version);
    for (i = 0; i < m.n; i++)
        vg__strict_field(&s, m.names[i], m.values[i]);
    v = vg__strict_end(&s, vg__strict_is_http11(m.version), m.head_end);
    model_free(&m);
    return v;
}

START_TEST(well_formed_heads_pass)
{
    ck_ok(on_head(T("GET / HTTP/1.1\r\nHost: h\r\n\r\n")));
    ck_ok(on_head(T("GET / HTTP/1.1\nHost: h\n\n")));
    ck_ok(on_head(T("GET / HTTP/1.1\r\nHost: h\n\r\n")));
    ck_ok(on_head(T("GET / HTTP/1.1\nHost: h\r\n\n")));
    ck_ok(on_head(T("\r\n\nGET  /  HTTP/1.1\r\nHost:   h\r\nX:\r\nY:\t v \r\n\r\nbody")));
    ck_ok(on_head(T("GET / HTTP/1.0\r\n\r\n")));
    ck_ok(on_head(T("GET / HTTP/1.0\r\nX: 1\r\n\r\n\0\0\0")));
}
END_TEST

START_TEST(host_rules_on_the_head)
{
    ck_refused(on_head(T("GET / HTTP/1.1\r\n\r\n")), 400, "without Host");
    ck_refused(on_head(T("GET / HTTP/1.1\r\nX: y\r\n\r\n")), 400, "without Host");
    ck_refused(on_head(T("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n")), 400,
               "more than one Host");
    ck_refused(on_head(T("GET / HTTP/1.0\r\nHost: a@b\r\n\r\n")), 400, "userinfo");
    ck_refused(on_head(T("GET / HTTP/1.1\r\nHost: \r\n\r\n")), 400, "empty Host");
}
END_TEST

START_TEST(nul_is_found_from_the_layout)
{
    ck_refused(on_head(T("GET / HTTP/1.1\r\nX: a\0b\r\nHost: h\r\n\r\n")), 400, "NUL");
    ck_refused(on_head(T("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n")), 400, "NUL");
    ck_refused(on_head(T("GET / HTTP/1.1\r\nHost: h\r\nX: a\0\r\n\r\n")), 400, "NUL");
    ck_refused(on_head(T("GET / HTTP/1.1\r\nHost: h\r\nX: \0\r\nY: 1\r\n\r\n")), 400, "NUL");
    ck_refused(on_head(T("GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n")), 400,
               "NUL in the request target");
    ck_refused(on_head(T("GE\0T / HTTP/1.1\r\nHost: h\r\n\r\n")), 400,
               "NUL in the request line");
    ck_refused(on_head(T("GET / HTTP/1.1\r\nHost: h\r\n\0\r\n")), 400, "NUL");
    /* Out of reach, and harmless: a NUL where a CR could be, before an
     * LF, leaves every string as a CR would (README "Conformance"). */
    ck_ok(on_head(T("GET / HTTP/1.1\r\nX: a\0\nHost: h\r\n\r\n")));
}
END_TEST

START_TEST(obs_fold_is_found_from_the_layout)
{
    ck_refused(on_head(T("POST / HTTP/1.1\r\nHost: h\r\nX-A: b\r\n Transfer-Encoding: "
                         "chunked\r\nContent-Length: 3\r\n\r\n")), 400, "obs-fold");
    ck_refused(on_head(T("GET / HTTP/1.1\r\nHost: h\r\nX: b\r\n\tchunked\r\n\r\n")), 400,
               "obs-fold");
    ck_refused(on_head(T("GET / HTTP/1.1\r\nX: b\r\n c\r\n d\r\nHost: h\r\n\r\n")), 400,
               "obs-fold");
    ck_refused(on_head(T("GET / HTTP/1.1\r\nHost: h\r\nX: b\r\n \r\n\r\n")), 400,
               "obs-fold");
    /* A first header line that starts with a space is not a fold to
     * libmicrohttpd: its name then holds the space. */
    ck_refused(on_head(T("GET / HTTP/1.1\r\n X: b\r\nHost: h\r\n\r\n")), 400,
               "not a token");
}
END_TEST

START_TEST(empty_names_are_found)
{
    ck_refused(on_head(T("GET / HTTP/1.1\r\n: v\r\nHost: h\r\n\r\n")), 400,
               "empty header name");
    /* libmicrohttpd takes a later ": v" for the end of the head and drops
     * it: what is left between the last value and the end shows it. */
    ck_refused(on_head(T("GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n")), 400,
               "empty header name");
    ck_refused(on_head(T("GET / HTTP/1.1\r\nHost: h\r\n:\r\n\r\n")), 400,
               "empty header name");
    /* Out of reach: a bare ":" line no longer than an empty line's end
     * leaves the same bytes as one (README "Conformance"). */
    ck_ok(on_head(T("GET / HTTP/1.1\r\nHost: h\r\n:\nX: y\r\n\r\n")));
}
END_TEST

START_TEST(layout_unknown_is_not_followed)
{
    vg__strict s;
    char buf[] = "X\0v";

    /* No version (not a head libmicrohttpd hands over): each line is
     * judged alone, and a NULL value stops the layout walk. */
    vg__strict_begin(&s, "GET", "/", 1, "");
    vg__strict_field(&s, buf, buf + 2);
    vg__strict_field(&s, "X-N", NULL);
    ck_assert(s.layout_lost);
    vg__strict_field(&s, "Host", "h");
    ck_ok(vg__strict_end(&s, true, NULL));
    ck_assert_uint_eq(s.hosts, 1);
}
END_TEST

static Suite *http_strict_suite(void)
{
    Suite *s = suite_create("http_strict");
    TCase *tc = tcase_create("pure");

    tcase_add_test(tc, methods_are_tokens_of_bounded_length);
    tcase_add_test(tc, targets_refuse_raw_bytes_and_overlong_utf8);
    tcase_add_test(tc, absolute_form_is_split);
    tcase_add_test(tc, host_values);
    tcase_add_test(tc, field_names_and_values);
    tcase_add_test(tc, byte_classes_match_the_rfc_sets);
    tcase_add_test(tc, versions);
    tcase_add_test(tc, well_formed_heads_pass);
    tcase_add_test(tc, host_rules_on_the_head);
    tcase_add_test(tc, nul_is_found_from_the_layout);
    tcase_add_test(tc, obs_fold_is_found_from_the_layout);
    tcase_add_test(tc, empty_names_are_found);
    tcase_add_test(tc, layout_unknown_is_not_followed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(http_strict_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
