/* test_tls_redirect.c - vg_app_new_https_redirect: every method and path
 * gets 308 to the same target over HTTPS on the configured port, the host
 * taken only from the request's own Host (or absolute-form authority),
 * checked (userinfo, junk, missing -> 400; outside the allow-list -> 421,
 * no Location); a path like "//evil" stays a path; libcurl following the
 * redirect ends on the HTTPS app with the same path and query. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <curl/curl.h>
#include <volga.h>
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmp[64], cert[128], key[128];
static vg_app *tls_app, *redir;
static unsigned short tls_port, redir_port;

static void make_cert(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/vg-redir.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    snprintf(cert, sizeof cert, "%s/cert.pem", tmp);
    snprintf(key, sizeof key, "%s/key.pem", tmp);
    ck_assert_msg(tu_make_cert(cert, key, "localhost"), "openssl req failed");
}

/* The HTTPS side tells what it was asked. */
static vg_result *h_echo(vg_request *req, void *arg)
{
    (void)arg;
    return vg_textf("%s %s", vg_request_method(req), vg_request_target(req));
}

static void start(const vg_https_redirect_options *opts_in)
{
    vg_https_redirect_options opts = {0};

    make_cert();
    tls_app = tu_app_new();
    ck_assert_int_eq(vg_app_set_tls(tls_app, cert, key), 0);
    ck_assert_int_eq(vg_app_set_fallback(tls_app, h_echo, NULL), 0);
    tu_start(tls_app);
    tls_port = vg_app_port(tls_app);
    if (opts_in != NULL)
        opts = *opts_in;
    if (opts.https_port == 1)
        opts.https_port = tls_port;
    redir = vg_app_new_https_redirect("127.0.0.1:0", &opts);
    ck_assert_ptr_nonnull(redir);
    vg_app_set_logger(redir, vg_log_stderr, NULL, VG_LOG_ERROR);
    tu_start(redir);
    redir_port = vg_app_port(redir);
}

static void teardown(void)
{
    vg_app_free(redir);
    vg_app_free(tls_app);
    redir = tls_app = NULL;
    tu_remove_tree(tmp);
}

/* Sends `head` (a whole request head) to the redirector; returns the status
 * and copies the Location value (or "") into `loc`. */
static int raw(const char *head, char *loc, size_t cap)
{
    char buf[4096], *p;
    int fd = tu_connect(redir_port), status = 0;

    ck_assert(tu_send_all(fd, head, strlen(head)));
    ck_assert(tu_recv_response(fd, buf, sizeof buf) > 0);
    close(fd);
    ck_assert(sscanf(buf, "HTTP/1.%*c %d", &status) == 1);
    loc[0] = '\0';
    if ((p = strcasestr(buf, "\r\nLocation: ")) != NULL) {
        p += 12;
        snprintf(loc, cap, "%.*s", (int)strcspn(p, "\r\n"), p);
    }
    return status;
}

static void expect(const char *head, int status, const char *location)
{
    char loc[1024], want[1024];

    snprintf(want, sizeof want, location, (unsigned)tls_port);
    ck_assert_msg(raw(head, loc, sizeof loc) == status, "%s: not %d", head, status);
    ck_assert_msg(strcmp(loc, want) == 0, "%s: Location \"%s\", not \"%s\"", head,
                  loc, want);
}

/* 1 stands for the HTTPS app's port. */
static const vg_https_redirect_options to_tls = {1, NULL};

START_TEST(test_redirects_keep_path_and_query)
{
    start(&to_tls);
    expect("GET /a/b?x=1&y=%20z HTTP/1.1\r\nHost: localhost:8080\r\n\r\n", 308,
           "https://localhost:%u/a/b?x=1&y=%%20z");
    expect("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 308, "https://127.0.0.1:%u/");
    expect("GET /v6 HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", 308, "https://[::1]:%u/v6");
    expect("POST /form HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc",
           308, "https://localhost:%u/form");
    expect("DELETE /x/7 HTTP/1.1\r\nHost: localhost\r\n\r\n", 308,
           "https://localhost:%u/x/7");
    /* A path that looks like an authority stays a path under our host. */
    expect("GET //evil.example/x HTTP/1.1\r\nHost: localhost\r\n\r\n", 308,
           "https://localhost:%u//evil.example/x");
    /* Absolute form: its authority is the host (RFC 9112 3.2.2). */
    expect("GET http://localhost:81/p?q=1 HTTP/1.1\r\nHost: localhost:81\r\n\r\n",
           308, "https://localhost:%u/p?q=1");
}
END_TEST

START_TEST(test_bad_hosts_refused)
{
    start(&to_tls);
    expect("GET / HTTP/1.1\r\nHost: user@evil.example\r\n\r\n", 400, "");
    expect("GET / HTTP/1.1\r\nHost: evil.example/x\r\n\r\n", 400, "");
    expect("GET / HTTP/1.1\r\nHost: %65vil.example\r\n\r\n", 400, "");
    expect("GET / HTTP/1.1\r\nHost: a,b\r\n\r\n", 400, "");
    expect("GET / HTTP/1.0\r\n\r\n", 400, "");
    /* Asks about the server, not a resource: the library's 200, no Location. */
    expect("OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n", 200, "");
}
END_TEST

START_TEST(test_allow_list)
{
    static const char *const hosts[] = {"localhost", "[::1]", NULL};
    vg_https_redirect_options o = {1, hosts};

    start(&o);
    expect("GET /ok HTTP/1.1\r\nHost: LocalHost:8080\r\n\r\n", 308,
           "https://LocalHost:%u/ok");
    expect("GET /ok HTTP/1.1\r\nHost: [::1]\r\n\r\n", 308, "https://[::1]:%u/ok");
    expect("GET /x HTTP/1.1\r\nHost: evil.example\r\n\r\n", 421, "");
    expect("GET /x HTTP/1.1\r\nHost: localhost.evil.example\r\n\r\n", 421, "");
    expect("GET http://evil.example/x HTTP/1.1\r\nHost: evil.example\r\n\r\n", 421, "");
}
END_TEST

START_TEST(test_default_port_named_nowhere)
{
    start(NULL);
    expect("GET /x?y HTTP/1.1\r\nHost: localhost:8080\r\n\r\n", 308,
           "https://localhost/x?y");
}
END_TEST

/* curl follows the 308 to the HTTPS app: same method, path and query. */
START_TEST(test_curl_follows_to_https)
{
    CURL *c;
    tu_response r;

    start(&to_tls);
    c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_CAINFO, cert);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
    r = tu_curl_perform(c, redir_port, "/items/3?full=1");
    ck_assert_msg(r.curl_code == CURLE_OK, "curl: %s", curl_easy_strerror(r.curl_code));
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "PUT /items/3?full=1");
    tu_response_free(&r);
    curl_easy_cleanup(c);
}
END_TEST

START_TEST(test_redirect_configuration_errors)
{
    static const char *const bad[] = {"ok.example", "evil/x", NULL};
    static const char *const withport[] = {"ok.example:80", NULL};
    vg_https_redirect_options o = {0, bad};

    errno = 0;
    ck_assert_ptr_null(vg_app_new_https_redirect(NULL, NULL));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(vg_app_new_https_redirect("127.0.0.1:0", &o));
    ck_assert_int_eq(errno, EINVAL);
    o.hosts = withport;
    errno = 0;
    ck_assert_ptr_null(vg_app_new_https_redirect("127.0.0.1:0", &o));
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

static Suite *redirect_suite(void)
{
    Suite *s = suite_create("https_redirect");
    TCase *tc = tcase_create("redirect");

    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_redirects_keep_path_and_query);
    tcase_add_test(tc, test_bad_hosts_refused);
    tcase_add_test(tc, test_allow_list);
    tcase_add_test(tc, test_default_port_named_nowhere);
    tcase_add_test(tc, test_curl_follows_to_https);
    suite_add_tcase(s, tc);
    tc = tcase_create("config");
    tcase_add_test(tc, test_redirect_configuration_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (access("/usr/bin/openssl", X_OK) != 0) {
        fprintf(stderr, "SKIP: test_tls_redirect needs /usr/bin/openssl (apt-get install openssl)\n");
        return 77;
    }
    return tu_main(redirect_suite());
}
