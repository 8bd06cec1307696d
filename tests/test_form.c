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
#include <unistd.h>

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

/* An app whose /small route takes at most 1000 bytes while the app's
 * default stays; /form has the defaults. */
static vg_app *limited_app(const vg_body_limits *lim)
{
    vg_app *app = tu_app_new();

    ck_assert_int_eq(vg_map_post(app, "/form", dump, NULL), 0);
    ck_assert_int_eq(vg_map_post(app, "/small", dump, NULL), 0);
    ck_assert_int_eq(vg_map_body_limits(app, "POST", "/small", lim), 0);
    tu_start(app);
    return app;
}

/* Sends a head and `len` body bytes, then `tail`, on a raw socket and
 * expects a 413 with Connection: close. */
static void expect_413(vg_app *app, const char *head, size_t len,
                       const char *tail)
{
    char buf[8192], *body = malloc(len);
    int fd = tu_connect(vg_app_port(app));

    memset(body, 'a', len);
    ck_assert(tu_send_all(fd, head, strlen(head)));
    ck_assert(tu_send_all(fd, body, len));
    ck_assert(tu_send_all(fd, tail, strlen(tail)));
    ck_assert_uint_gt(tu_recv_all(fd, buf, sizeof buf), 0);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 413", 12) == 0, "got %.40s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "Connection: close"));
    close(fd);
    free(body);
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

/* "a=0&x=1&x=1..." with n fields. */
static char *many_fields(size_t n)
{
    char *body = malloc(4 * n + 1), *p = body;
    size_t i;

    for (i = 0; i < n; i++) {
        memcpy(p, i == 0 ? "a=0&" : "x=1&", 4);
        p += 4;
    }
    p[-1] = '\0'; /* no '&' after the last */
    return body;
}

START_TEST(a_hundred_thousand_fields_are_refused_by_default_kept_if_allowed)
{
    vg_body_limits lim = {.fields = 100000};
    vg_app *app = limited_app(&lim);
    char *body = many_fields(100000);
    tu_response r;

    /* The default of 10,000 fields: 413. */
    r = post_form(app, "application/x-www-form-urlencoded", body,
                  strlen(body));
    ck_assert_int_eq(r.status, 413);
    tu_response_free(&r);
    /* A route that allows them keeps them all. */
    r = tu_request(vg_app_port(app), "POST", "/small", body, strlen(body),
                   (const char *[]){"Content-Type: application/x-www-form-urlencoded", NULL});
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\nn:100000\n"));
    ck_assert(strncmp(r.body, "a:0\n", 4) == 0);
    tu_response_free(&r);
    free(body);
    vg_app_free(app);
}
END_TEST

static tu_response post_small(vg_app *app, const char *ctype,
                              const char *body, size_t len)
{
    char h[256];
    const char *headers[] = {h, NULL};

    snprintf(h, sizeof h, "Content-Type: %s", ctype);
    return tu_request(vg_app_port(app), "POST", "/small", body, len, headers);
}

START_TEST(field_limits_are_exact)
{
    vg_body_limits lim = {.fields = 3, .field_size = 5};
    vg_app *app = limited_app(&lim);
    tu_response r;

    r = post_small(app, "application/x-www-form-urlencoded", "a=1&b=2&c=3", 11);
    ck_assert_body(r, "a:1\na=1\nb=2\nc=3\nn:3\n");
    tu_response_free(&r);
    r = post_small(app, "application/x-www-form-urlencoded", "a=1&b=2&c=3&d=4",
                   15);
    ck_assert_int_eq(r.status, 413);
    tu_response_free(&r);
    /* 5 bytes decoded is the size, however many were sent. */
    r = post_small(app, "application/x-www-form-urlencoded", "a=%41bcde", 9);
    ck_assert_body(r, "a:Abcde\na=Abcde\nn:1\n");
    tu_response_free(&r);
    r = post_small(app, "application/x-www-form-urlencoded", "a=abcdef", 8);
    ck_assert_int_eq(r.status, 413);
    tu_response_free(&r);
    vg_app_free(app);
}
END_TEST

/* A multipart body with `nfiles` file parts of `size` bytes each. */
static char *files_body(size_t nfiles, size_t size, size_t *len)
{
    char *body = malloc(nfiles * (size + 200) + 16), *p = body;
    size_t i;

    for (i = 0; i < nfiles; i++) {
        p += sprintf(p, "--XyZ\r\nContent-Disposition: form-data; "
                        "name=\"f\"; filename=\"f%zu.bin\"\r\n"
                        "Content-Type: application/octet-stream\r\n\r\n",
                     i);
        memset(p, 'z', size);
        p += size;
        p += sprintf(p, "\r\n");
    }
    p += sprintf(p, "--XyZ--\r\n");
    *len = (size_t)(p - body);
    return body;
}

START_TEST(file_limits_are_exact)
{
    vg_body_limits lim = {.body = 100000, .files = 2, .file_size = 3000};
    vg_app *app = limited_app(&lim);
    const char *mp = "multipart/form-data; boundary=XyZ";
    size_t len;
    char *body;
    tu_response r;

    body = files_body(2, 3000, &len);
    r = post_small(app, mp, body, len);
    ck_assert_body(r, "a:ENOENT\nn:0\n");
    tu_response_free(&r);
    free(body);
    body = files_body(3, 10, &len);
    r = post_small(app, mp, body, len);
    ck_assert_int_eq(r.status, 413);
    tu_response_free(&r);
    free(body);
    body = files_body(1, 3001, &len);
    r = post_small(app, mp, body, len);
    ck_assert_int_eq(r.status, 413);
    tu_response_free(&r);
    free(body);
    vg_app_free(app);
}
END_TEST

static vg_result *shaped_413(const vg_request *req, unsigned status,
                             const char *detail, void *arg)
{
    (void)req;
    (void)arg;
    return vg_result_set_status(vg_textf("shaped %u %s", status, detail),
                                status);
}

START_TEST(group_limits_apply_and_the_error_handler_shapes_the_413)
{
    vg_app *app = tu_app_new();
    vg_group *g = vg_app_group(app, "/g");
    vg_body_limits glim = {.body = 10, .fields = 1};
    vg_body_limits rlim = {.body = 20};
    tu_response r;

    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(vg_app_set_error_handler(app, shaped_413, NULL), 0);
    ck_assert_int_eq(vg_group_set_body_limits(g, &glim), 0);
    ck_assert_int_eq(vg_group_map_post(g, "/a", dump, NULL), 0);
    ck_assert_int_eq(vg_group_map_post(g, "/b", dump, NULL), 0);
    /* A route of the group raises the body limit, keeps the field limit. */
    ck_assert_int_eq(vg_map_body_limits(app, "POST", "/g/b", &rlim), 0);
    ck_assert_int_eq(vg_map_body_limits(app, "POST", "/g/none", &rlim),
                     -ENOENT);
    ck_assert_int_eq(vg_map_body_limits(app, "POST", "/g/b", NULL), -EINVAL);
    tu_start(app);
    ck_assert_int_eq(vg_map_body_limits(app, "POST", "/g/b", &rlim), -EBUSY);
    r = tu_request(vg_app_port(app), "POST", "/g/a", "a=12345678", 10, NULL);
    ck_assert_body(r, "a:12345678\na=12345678\nn:1\n");
    tu_response_free(&r);
    r = tu_request(vg_app_port(app), "POST", "/g/a", "a=123456789", 11, NULL);
    ck_assert_int_eq(r.status, 413);
    ck_assert_str_eq(r.body, "shaped 413 request body too large");
    tu_response_free(&r);
    r = tu_request(vg_app_port(app), "POST", "/g/b", "a=123456789", 11, NULL);
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    r = tu_request(vg_app_port(app), "POST", "/g/b", "a=1&b=2", 7, NULL);
    ck_assert_int_eq(r.status, 413);
    ck_assert_str_eq(r.body, "shaped 413 request body too large");
    tu_response_free(&r);
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
    {
        size_t at = strlen(body);
        memset(body + at, 'k', n);
        strcpy(body + at + n, "\"\r\n\r\n1\r\n--XyZ--\r\n");
    }
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

START_TEST(a_route_body_limit_is_exact_and_answers_at_once)
{
    vg_body_limits lim = {.body = 1000};
    vg_app *app = limited_app(&lim);
    char *body = malloc(1002);
    const char *chunked[] = {"Transfer-Encoding: chunked",
                             "Content-Type: text/plain", NULL};
    tu_response r;

    memset(body, 'a', 1001);
    body[1001] = '\0';
    /* N bytes pass, N + 1 do not, declared or chunked. */
    r = tu_request(vg_app_port(app), "POST", "/small", body, 1000, NULL);
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    r = tu_request(vg_app_port(app), "POST", "/small", body, 1001, NULL);
    ck_assert_int_eq(r.status, 413);
    tu_response_free(&r);
    r = tu_request(vg_app_port(app), "POST", "/small", body, 1000, chunked);
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    /* The other route keeps the app's 1 MiB. */
    r = tu_request(vg_app_port(app), "POST", "/form", body, 1001, NULL);
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    /* A chunked body past the limit is dropped and answered when it ends
     * (libmicrohttpd 0.9.75 cannot answer before). */
    expect_413(app, "POST /small HTTP/1.1\r\nHost: x\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n"
                    "7d0\r\n", 2000, "\r\n0\r\n\r\n");
    free(body);
    vg_app_free(app);
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
    tcase_add_test(tc, a_hundred_thousand_fields_are_refused_by_default_kept_if_allowed);
    tcase_add_test(tc, field_limits_are_exact);
    tcase_add_test(tc, file_limits_are_exact);
    tcase_add_test(tc, group_limits_apply_and_the_error_handler_shapes_the_413);
    tcase_add_test(tc, a_64k_field_name_is_refused_cleanly);
    tcase_add_test(tc, non_utf8_names_and_values_are_kept_as_bytes);
    tcase_add_test(tc, a_part_claiming_a_huge_content_length_is_read_by_its_boundary);
    tcase_add_test(tc, form_getters_refuse_null_arguments);
    tcase_add_test(tc, a_route_body_limit_is_exact_and_answers_at_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(form_suite());
}
