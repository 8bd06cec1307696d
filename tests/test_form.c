/* test_form.c - form fields (vg_request_form, vg_request_form_each) decoded
 * by libmicrohttpd's PostProcessor from urlencoded and multipart bodies
 * sent by libcurl, and what hostile form bodies get. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <volga.h>
#include "testutil.h"

/* Writes `s` (len bytes) with anything but printable ASCII as \xHH, so
 * that the test sees exactly which bytes the library stored. */
static void put_escaped(FILE *f, const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            fputc(c, f);
        else
            fprintf(f, "\\x%02x", c);
    }
}

typedef struct {
    FILE *out;
    size_t n;
} dump_ctx;

static int dump_field(const char *name, const char *value, size_t len,
                      void *arg)
{
    dump_ctx *d = arg;

    /* Past 20 fields only count: the 100,000-field test needs the count. */
    if (d->n++ < 20) {
        put_escaped(d->out, name, strlen(name));
        fputc('=', d->out);
        put_escaped(d->out, value, len);
        fputc('\n', d->out);
    }
    return 0;
}

/* Answers "a:<first a or the errno>\nn:<fields or the error>\n" then each
 * field as name=value. */
static vg_result *dump(vg_request *req, void *arg)
{
    dump_ctx d = {0};
    const char *a;
    char *text = NULL;
    size_t size = 0;
    vg_result *res;
    int rc;

    (void)arg;
    d.out = open_memstream(&text, &size);
    if (d.out == NULL)
        return NULL;
    errno = 0;
    a = vg_request_form(req, "a");
    if (a != NULL)
        fprintf(d.out, "a:%s\n", a);
    else
        fprintf(d.out, "a:%s\n", errno == ENOENT    ? "ENOENT"
                                 : errno == EBADMSG ? "EBADMSG"
                                                    : "other");
    /* Repeated calls give the same answer: decoded once. */
    if (vg_request_form(req, "a") != a)
        fprintf(d.out, "unstable\n");
    rc = vg_request_form_each(req, dump_field, &d);
    if (rc == 0)
        fprintf(d.out, "n:%zu\n", d.n);
    else
        fprintf(d.out, "n:%s\n", rc == -ENOENT    ? "ENOENT"
                                 : rc == -EBADMSG ? "EBADMSG"
                                                  : "other");
    fclose(d.out);
    /* The fields come first in the dump but read better after the counts:
     * the handler printed them as it went, so reorder nothing, just send. */
    res = vg_text(text);
    free(text);
    return res;
}

static vg_app *form_app(void)
{
    vg_app *app = tu_app_new();

    ck_assert_int_eq(vg_map_post(app, "/form", dump, NULL), 0);
    tu_start(app);
    return app;
}

/* POSTs `body` with Content-Type `ctype` and returns the dump. */
static tu_response post_form(vg_app *app, const char *ctype, const char *body,
                             size_t len)
{
    char h[20000];
    const char *headers[] = {h, NULL};

    snprintf(h, sizeof h, "Content-Type: %s", ctype);
    return tu_request(vg_app_port(app), "POST", "/form", body, len, headers);
}

#define ck_assert_body(r, want)                                             \
    do {                                                                    \
        ck_assert_int_eq((r).status, 200);                                  \
        ck_assert_str_eq((r).body, (want));                                 \
    } while (0)

START_TEST(urlencoded_fields_first_value_and_all_in_order)
{
    vg_app *app = form_app();
    const char body[] = "a=1&b=x%20y+z&a=2&c=&d&e=5&&f";
    tu_response r = post_form(app, "application/x-www-form-urlencoded",
                              body, strlen(body));

    /* The first "a" wins; the iterator shows both, in order. */
    ck_assert_body(r, "a:1\na=1\nb=x y z\na=2\nc=\nd=\ne=5\nf=\nn:7\n");
    tu_response_free(&r);
    vg_app_free(app);
}
END_TEST

START_TEST(urlencoded_value_with_nul_keeps_its_length)
{
    vg_app *app = form_app();
    const char body[] = "a=x%00y";
    tu_response r = post_form(app, "application/x-www-form-urlencoded",
                              body, strlen(body));

    ck_assert_body(r, "a:x\na=x\\x00y\nn:1\n");
    tu_response_free(&r);
    vg_app_free(app);
}
END_TEST

START_TEST(content_type_parameters_and_case_are_accepted)
{
    vg_app *app = form_app();
    const char body[] = "a=ok";
    tu_response r = post_form(app,
                              "Application/X-WWW-Form-URLEncoded; charset=utf-8",
                              body, strlen(body));

    ck_assert_body(r, "a:ok\na=ok\nn:1\n");
    tu_response_free(&r);
    vg_app_free(app);
}
END_TEST

START_TEST(multipart_text_parts_are_fields_file_parts_are_not)
{
    vg_app *app = form_app();
    CURL *c = curl_easy_init();
    curl_mime *mime = curl_mime_init(c);
    curl_mimepart *p;
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    tu_response r;

    /* What curl -F a=first -F a=second -F note=... -F up=@file sends. */
    p = curl_mime_addpart(mime);
    curl_mime_name(p, "a");
    curl_mime_data(p, "first", CURL_ZERO_TERMINATED);
    p = curl_mime_addpart(mime);
    curl_mime_name(p, "up");
    curl_mime_filename(p, "notes.txt");
    curl_mime_data(p, "file bytes", CURL_ZERO_TERMINATED);
    p = curl_mime_addpart(mime);
    curl_mime_name(p, "a");
    curl_mime_data(p, "second", CURL_ZERO_TERMINATED);
    p = curl_mime_addpart(mime);
    curl_mime_name(p, "note");
    curl_mime_data(p, "line 1\r\nline 2", CURL_ZERO_TERMINATED);
    curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    r = tu_curl_perform(c, vg_app_port(app), "/form");
    ck_assert_body(r, "a:first\na=first\na=second\n"
                      "note=line 1\\x0d\\x0aline 2\nn:3\n");
    tu_response_free(&r);
    curl_mime_free(mime);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    vg_app_free(app);
}
END_TEST

START_TEST(a_long_multipart_value_is_stored_whole)
{
    vg_app *app = form_app();
    CURL *c = curl_easy_init();
    curl_mime *mime = curl_mime_init(c);
    curl_mimepart *p;
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    size_t len = 200000;
    char *big = malloc(len + 1), *want;
    tu_response r;

    /* Far more than the decoder's buffer: it arrives in many pieces. */
    memset(big, 'v', len);
    big[len] = '\0';
    p = curl_mime_addpart(mime);
    curl_mime_name(p, "a");
    curl_mime_data(p, big, CURL_ZERO_TERMINATED);
    curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    r = tu_curl_perform(c, vg_app_port(app), "/form");
    want = malloc(2 * len + 32);
    snprintf(want, 2 * len + 32, "a:%s\na=%s\nn:1\n", big, big);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strcmp(r.body, want) == 0, "got %zu bytes, not the %zu sent",
                  r.body_len, strlen(want));
    tu_response_free(&r);
    free(want);
    free(big);
    curl_mime_free(mime);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    vg_app_free(app);
}
END_TEST

START_TEST(other_bodies_are_not_forms)
{
    vg_app *app = form_app();
    const char json[] = "{\"a\":1}";
    tu_response r = post_form(app, "application/json", json, strlen(json));

    ck_assert_body(r, "a:ENOENT\nn:ENOENT\n");
    tu_response_free(&r);
    /* A prefix of a form type is not one. */
    r = post_form(app, "application/x-www-form-urlencodedX", "a=1", 3);
    ck_assert_body(r, "a:ENOENT\nn:ENOENT\n");
    tu_response_free(&r);
    /* No body, no Content-Type. */
    r = tu_request(vg_app_port(app), "POST", "/form", NULL, 0, NULL);
    ck_assert_body(r, "a:ENOENT\nn:ENOENT\n");
    tu_response_free(&r);
    vg_app_free(app);
}
END_TEST

START_TEST(an_absent_field_is_enoent_in_a_good_form)
{
    vg_app *app = form_app();
    tu_response r = post_form(app, "application/x-www-form-urlencoded",
                              "b=1", 3);

    ck_assert_body(r, "a:ENOENT\nb=1\nn:1\n");
    tu_response_free(&r);
    /* An empty form body is a form with no fields. */
    r = post_form(app, "application/x-www-form-urlencoded", "", 0);
    ck_assert_body(r, "a:ENOENT\nn:0\n");
    tu_response_free(&r);
    vg_app_free(app);
}
END_TEST

static const char part_a[] = "--XyZ\r\n"
                             "Content-Disposition: form-data; name=\"a\"\r\n"
                             "\r\n"
                             "1\r\n";

START_TEST(multipart_without_boundary_is_undecodable)
{
    vg_app *app = form_app();
    tu_response r = post_form(app, "multipart/form-data", part_a,
                              strlen(part_a));

    ck_assert_body(r, "a:EBADMSG\nn:EBADMSG\n");
    tu_response_free(&r);
    r = post_form(app, "multipart/form-data; boundary=", part_a,
                  strlen(part_a));
    ck_assert_body(r, "a:EBADMSG\nn:EBADMSG\n");
    tu_response_free(&r);
    vg_app_free(app);
}
END_TEST

START_TEST(an_absurd_boundary_is_undecodable)
{
    vg_app *app = form_app();
    char ctype[16100];
    tu_response r;

    /* 16,000 characters: legal in a header, more than the decoder takes. */
    strcpy(ctype, "multipart/form-data; boundary=");
    memset(ctype + strlen(ctype), 'b', 16000);
    ctype[30 + 16000] = '\0';
    r = post_form(app, ctype, part_a, strlen(part_a));
    ck_assert_body(r, "a:EBADMSG\nn:EBADMSG\n");
    tu_response_free(&r);
    vg_app_free(app);
}
END_TEST

START_TEST(an_unterminated_multipart_body_is_undecodable)
{
    vg_app *app = form_app();
    tu_response r;
    char body[256];

    /* The part never ends... */
    r = post_form(app, "multipart/form-data; boundary=XyZ", part_a,
                  strlen(part_a));
    ck_assert_body(r, "a:EBADMSG\nn:EBADMSG\n");
    tu_response_free(&r);
    /* ...while the same part closed by the final boundary decodes. */
    snprintf(body, sizeof body, "%s--XyZ--\r\n", part_a);
    r = post_form(app, "multipart/form-data; boundary=XyZ", body,
                  strlen(body));
    ck_assert_body(r, "a:1\na=1\nn:1\n");
    tu_response_free(&r);
    /* A quoted boundary is the same boundary. */
    r = post_form(app, "multipart/form-data; boundary=\"XyZ\"", body,
                  strlen(body));
    ck_assert_body(r, "a:1\na=1\nn:1\n");
    tu_response_free(&r);
    vg_app_free(app);
}
END_TEST

START_TEST(a_hundred_thousand_fields_are_all_kept)
{
    vg_app *app = form_app();
    size_t n = 100000, i;
    char *body = malloc(4 * n + 1), *p = body;
    tu_response r;

    for (i = 0; i < n; i++) {
        memcpy(p, i == 0 ? "a=0&" : "x=1&", 4);
        p += 4;
    }
    *p = '\0';
    r = post_form(app, "application/x-www-form-urlencoded", body,
                  strlen(body) - 1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\nn:100000\n"));
    ck_assert(strncmp(r.body, "a:0\n", 4) == 0);
    tu_response_free(&r);
    free(body);
    vg_app_free(app);
}
END_TEST

START_TEST(a_64k_field_name_is_refused_cleanly)
{
    vg_app *app = form_app();
    size_t n = 64 * 1024;
    char *body = malloc(n + 300);
    tu_response r;

    /* urlencoded: a name longer than the decoder's buffer. */
    memset(body, 'k', n);
    strcpy(body + n, "=1");
    r = post_form(app, "application/x-www-form-urlencoded", body, n + 2);
    ck_assert_body(r, "a:EBADMSG\nn:EBADMSG\n");
    tu_response_free(&r);
    /* multipart: a part header line longer than the buffer. */
    strcpy(body, "--XyZ\r\nContent-Disposition: form-data; name=\"");
    memset(body + strlen(body), 'k', n);
    strcpy(body + 46 + n, "\"\r\n\r\n1\r\n--XyZ--\r\n");
    r = post_form(app, "multipart/form-data; boundary=XyZ", body,
                  strlen(body));
    ck_assert_body(r, "a:EBADMSG\nn:EBADMSG\n");
    tu_response_free(&r);
    /* The server is fine afterwards. */
    r = post_form(app, "application/x-www-form-urlencoded", "a=still", 7);
    ck_assert_body(r, "a:still\na=still\nn:1\n");
    tu_response_free(&r);
    free(body);
    vg_app_free(app);
}
END_TEST

START_TEST(non_utf8_names_and_values_are_kept_as_bytes)
{
    vg_app *app = form_app();
    const char url[] = "%FF%FE=%C0%80&a=%E9";
    const char mp[] = "--XyZ\r\n"
                      "Content-Disposition: form-data; name=\"\xff\xfe\"\r\n"
                      "\r\n"
                      "\xc0\x80\r\n"
                      "--XyZ--\r\n";
    tu_response r = post_form(app, "application/x-www-form-urlencoded", url,
                              strlen(url));

    ck_assert_body(r, "a:\xe9\n\\xff\\xfe=\\xc0\\x80\na=\\xe9\nn:2\n");
    tu_response_free(&r);
    r = post_form(app, "multipart/form-data; boundary=XyZ", mp, strlen(mp));
    ck_assert_body(r, "a:ENOENT\n\\xff\\xfe=\\xc0\\x80\nn:1\n");
    tu_response_free(&r);
    vg_app_free(app);
}
END_TEST

START_TEST(a_part_claiming_a_huge_content_length_is_read_by_its_boundary)
{
    vg_app *app = form_app();
    const char mp[] = "--XyZ\r\n"
                      "Content-Disposition: form-data; name=\"a\"\r\n"
                      "Content-Length: 99999999999999999999\r\n"
                      "\r\n"
                      "short\r\n"
                      "--XyZ\r\n"
                      "Content-Disposition: form-data; name=\"b\"\r\n"
                      "\r\n"
                      "2\r\n"
                      "--XyZ--\r\n";
    tu_response r = post_form(app, "multipart/form-data; boundary=XyZ", mp,
                              strlen(mp));

    /* The boundary ends a part, whatever the part says of itself. */
    ck_assert_body(r, "a:short\na=short\nb=2\nn:2\n");
    tu_response_free(&r);
    vg_app_free(app);
}
END_TEST

START_TEST(form_getters_refuse_null_arguments)
{
    errno = 0;
    ck_assert_ptr_null(vg_request_form(NULL, "a"));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(vg_request_form_each(NULL, dump_field, NULL), -EINVAL);
}
END_TEST

static Suite *form_suite(void)
{
    Suite *s = suite_create("form");
    TCase *tc = tcase_create("form");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, urlencoded_fields_first_value_and_all_in_order);
    tcase_add_test(tc, urlencoded_value_with_nul_keeps_its_length);
    tcase_add_test(tc, content_type_parameters_and_case_are_accepted);
    tcase_add_test(tc, multipart_text_parts_are_fields_file_parts_are_not);
    tcase_add_test(tc, a_long_multipart_value_is_stored_whole);
    tcase_add_test(tc, other_bodies_are_not_forms);
    tcase_add_test(tc, an_absent_field_is_enoent_in_a_good_form);
    tcase_add_test(tc, multipart_without_boundary_is_undecodable);
    tcase_add_test(tc, an_absurd_boundary_is_undecodable);
    tcase_add_test(tc, an_unterminated_multipart_body_is_undecodable);
    tcase_add_test(tc, a_hundred_thousand_fields_are_all_kept);
    tcase_add_test(tc, a_64k_field_name_is_refused_cleanly);
    tcase_add_test(tc, non_utf8_names_and_values_are_kept_as_bytes);
    tcase_add_test(tc, a_part_claiming_a_huge_content_length_is_read_by_its_boundary);
    tcase_add_test(tc, form_getters_refuse_null_arguments);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(form_suite());
}
