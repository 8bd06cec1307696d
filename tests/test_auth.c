/* test_auth.c - HTTP authentication helpers (lib/web/auth.c): Basic
 * decoding (what is accepted and every way it is malformed: base64
 * garbage, a missing colon, a NUL or control byte inside, very long
 * credentials), Bearer tokens, the exact WWW-Authenticate of the 401 (and
 * 400/403) challenges, the constant-time comparison and the Basic-auth
 * middleware on a group, on a real app on 127.0.0.1:0. Credentials are
 * encoded here with nettle, independently of the library. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_getname_np */
#endif
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/base64.h>

#include <volga.h>
#include "web/auth.h"
#include "testutil.h"

/* "Authorization: Basic " + base64 of the `len` bytes at `raw`, malloc'd. */
static char *basic_line(const char *raw, size_t len)
{
    size_t cap = BASE64_ENCODE_RAW_LENGTH(len) + 32;
    char *line = malloc(cap);

    strcpy(line, "Authorization: Basic ");
    base64_encode_raw(line + strlen(line), len, (const uint8_t *)raw);
    line[21 + BASE64_ENCODE_RAW_LENGTH(len)] = '\0';
    return line;
}

/* GET /who answers "rc user password". */
static vg_result *who(vg_request *req, void *arg)
{
    const char *u = NULL, *p = NULL;
    int rc = vg_request_basic_auth(req, &u, &p);
    const char *u2 = NULL, *p2 = NULL;
    (void)arg;
    /* Asking again gives the same strings (decoded once). */
    if (rc == 0) {
        ck_assert_int_eq(vg_request_basic_auth(req, &u2, &p2), 0);
        ck_assert_ptr_eq(u, u2);
        ck_assert_ptr_eq(p, p2);
    }
    return vg_textf("%d %s %s", rc, u ? u : "-", p ? p : "-");
}

/* GET /token answers "rc token". */
static vg_result *token(vg_request *req, void *arg)
{
    const char *t = NULL;
    int rc = vg_request_bearer(req, &t);
    (void)arg;
    return vg_textf("%d %s", rc, t ? t : "-");
}

static vg_app *auth_app(size_t header_limit)
{
    vg_app *app = tu_app_new();

    if (header_limit)
        ck_assert_int_eq(vg_app_set_header_limit(app, header_limit), 0);
    ck_assert_int_eq(vg_map_get(app, "/who", who, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/token", token, NULL), 0);
    tu_start(app);
    return app;
}

/* The body of GET `path` with one extra header line (NULL: none). */
static char *ask(unsigned short port, const char *path, const char *line)
{
    const char *h[] = {line, NULL};
    tu_response r = tu_request(port, "GET", path, NULL, 0, line ? h : NULL);
    char *body;

    ck_assert_int_eq(r.status, 200);
    body = strdup(r.body);
    tu_response_free(&r);
    return body;
}

static void expect(char *got, const char *want)
{
    ck_assert_str_eq(got, want);
    free(got);
}

static void expect_basic(unsigned short port, const char *raw, size_t len,
                         const char *want)
{
    char *line = basic_line(raw, len);
    expect(ask(port, "/who", line), want);
    free(line);
}

/* ---- Basic ---- */

START_TEST(basic_decodes_user_and_password)
{
    vg_app *app = auth_app(0);
    unsigned short p = vg_app_port(app);

    expect_basic(p, "user:pass", 9, "0 user pass");
    expect_basic(p, "a:b:c", 5, "0 a b:c");       /* the first ':' splits */
    expect_basic(p, ":pw", 3, "0  pw");           /* empty user-id */
    expect_basic(p, "u:", 2, "0 u ");             /* empty password */
    expect_basic(p, "\xc3\xa9t\xc3\xa9:\xe2\x82\xac", 9,
                 "0 \xc3\xa9t\xc3\xa9 \xe2\x82\xac"); /* UTF-8 */
    /* Scheme in any case, several spaces, trailing spaces. */
    expect(ask(p, "/who", "Authorization: bAsIc   dXNlcjpwYXNz  "), "0 user pass");
    vg_app_free(app);
}
END_TEST

START_TEST(basic_absent_or_other_scheme_is_enoent)
{
    vg_app *app = auth_app(0);
    unsigned short p = vg_app_port(app);
    char want[32];

    snprintf(want, sizeof want, "%d - -", -ENOENT);
    expect(ask(p, "/who", NULL), want);
    expect(ask(p, "/who", "Authorization: Bearer dXNlcjpwYXNz"), want);
    expect(ask(p, "/who", "Authorization: Basicx dXNlcjpwYXNz"), want);
    expect(ask(p, "/who", "Authorization: Digest username=\"u\""), want);
    vg_app_free(app);
}
END_TEST

START_TEST(basic_malformed_is_einval)
{
    vg_app *app = auth_app(0);
    unsigned short p = vg_app_port(app);
    static const char *const bad[] = {
        "Authorization: Basic",                 /* nothing */
        "Authorization: Basic !!!!",            /* not base64 */
        "Authorization: Basic dXNlcjpwYXN",     /* not a multiple of 4 */
        "Authorization: Basic dXNl cjpwYXNz",   /* space inside */
        "Authorization: Basic dX==cjpw",        /* padding inside */
        "Authorization: Basic dXNlcjpwYXNz===", /* too much padding */
        "Authorization: Basic dXNlcjpwYXNz,x",  /* a list */
        "Authorization: Basic ====",
        "Authorization: Basic dXNlcjpwYXNz dXNlcjpwYXNz",
    };
    char want[32];
    size_t i;

    snprintf(want, sizeof want, "%d - -", -EINVAL);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *got = ask(p, "/who", bad[i]);
        ck_assert_msg(strcmp(got, want) == 0, "%s: %s", bad[i], got);
        free(got);
    }
    expect_basic(p, "userpass", 8, want);          /* no colon */
    expect_basic(p, "us\0er:pw", 8, want);         /* NUL in the user */
    expect_basic(p, "user:p\0w", 8, want);         /* NUL in the password */
    expect_basic(p, "user:p\x01w", 8, want);       /* control byte */
    expect_basic(p, "user:p\x7fw", 8, want);       /* DEL */
    expect_basic(p, "user:pw\n", 8, want);
    expect_basic(p, "", 0, want);
    vg_app_free(app);
}
END_TEST

START_TEST(basic_very_long_credentials)
{
    enum { LONG = 300 * 1024 };
    vg_app *app = auth_app(1024 * 1024), *small;
    char *raw = malloc(LONG + 1), *want = malloc(LONG + 8), *line;
    tu_response r;
    const char *h[2] = {NULL, NULL};

    memset(raw, 'u', LONG / 2);
    raw[LONG / 2] = ':';
    memset(raw + LONG / 2 + 1, 'p', LONG - LONG / 2 - 1);
    raw[LONG] = '\0';
    snprintf(want, LONG + 8, "0 %.*s %s", LONG / 2, raw, raw + LONG / 2 + 1);
    expect_basic(vg_app_port(app), raw, LONG, want);
    vg_app_free(app);
    /* Past the app's header limit: the library's 431, nothing decoded. */
    small = auth_app(0);
    line = basic_line(raw, 40 * 1024);
    h[0] = line;
    r = tu_request(vg_app_port(small), "GET", "/who", NULL, 0, h);
    ck_assert_int_eq(r.status, 431);
    tu_response_free(&r);
    free(line);
    vg_app_free(small);
    free(raw);
    free(want);
}
END_TEST

/* The decoder alone, including what a header could never carry. */
START_TEST(basic_decoder_unit)
{
    char *buf;
    const char *u, *pw;

    ck_assert_int_eq(vg__basic_decode(NULL, &buf, &u, &pw), -ENOENT);
    ck_assert_ptr_null(buf);
    ck_assert_int_eq(vg__basic_decode("", &buf, &u, &pw), -ENOENT);
    ck_assert_int_eq(vg__basic_decode("Basic\tdXNlcjpwYXNz", &buf, &u, &pw), -ENOENT);
    ck_assert_int_eq(vg__basic_decode("Basic dXNlcjpwYXNz\t", &buf, &u, &pw), -EINVAL);
    ck_assert_int_eq(vg__basic_decode("Basic YTpi", &buf, &u, &pw), 0);
    ck_assert_str_eq(u, "a");
    ck_assert_str_eq(pw, "b");
    free(buf);
}
END_TEST

/* ---- Bearer ---- */

START_TEST(bearer_tokens)
{
    vg_app *app = auth_app(0);
    unsigned short p = vg_app_port(app);
    char want[64];

    expect(ask(p, "/token", "Authorization: Bearer abc.DEF-_~+/=="),
           "0 abc.DEF-_~+/==");
    expect(ask(p, "/token", "Authorization: bearer  tok"), "0 tok");
    snprintf(want, sizeof want, "%d -", -ENOENT);
    expect(ask(p, "/token", NULL), want);
    expect(ask(p, "/token", "Authorization: Basic dXNlcjpwYXNz"), want);
    snprintf(want, sizeof want, "%d -", -EINVAL);
    expect(ask(p, "/token", "Authorization: Bearer"), want);
    expect(ask(p, "/token", "Authorization: Bearer a b"), want);
    expect(ask(p, "/token", "Authorization: Bearer a=b"), want);
    expect(ask(p, "/token", "Authorization: Bearer a,b"), want);
    expect(ask(p, "/token", "Authorization: Bearer =="), want);
    expect(ask(p, "/token", "Authorization: Bearer \"quoted\""), want);
    vg_app_free(app);
}
END_TEST

/* ---- Challenges ---- */

static void challenge_is(vg_result *res, unsigned status, const char *want)
{
    ck_assert_ptr_nonnull(res);
    ck_assert_uint_eq(vg_result_status(res), status);
    ck_assert_str_eq(vg_result_header(res, "WWW-Authenticate"), want);
    vg_result_free(res);
}

START_TEST(challenge_format)
{
    challenge_is(vg_basic_challenge("api"), 401,
                 "Basic realm=\"api\", charset=\"UTF-8\"");
    challenge_is(vg_basic_challenge("say \"hi\" \\o/"), 401,
                 "Basic realm=\"say \\\"hi\\\" \\\\o/\", charset=\"UTF-8\"");
    challenge_is(vg_basic_challenge(""), 401, "Basic realm=\"\", charset=\"UTF-8\"");
    errno = 0;
    ck_assert_ptr_null(vg_basic_challenge("bad\r\nX: y"));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(vg_basic_challenge(NULL));

    challenge_is(vg_bearer_challenge(NULL, NULL, NULL), 401, "Bearer");
    challenge_is(vg_bearer_challenge("example", NULL, NULL), 401,
                 "Bearer realm=\"example\"");
    challenge_is(vg_bearer_challenge("example", "invalid_token",
                                     "The access token expired"),
                 401,
                 "Bearer realm=\"example\", error=\"invalid_token\", "
                 "error_description=\"The access token expired\"");
    challenge_is(vg_bearer_challenge(NULL, "invalid_request", NULL), 400,
                 "Bearer error=\"invalid_request\"");
    challenge_is(vg_bearer_challenge(NULL, "insufficient_scope", "needs admin"),
                 403, "Bearer error=\"insufficient_scope\", "
                      "error_description=\"needs admin\"");
    challenge_is(vg_bearer_challenge(NULL, NULL, "why"), 401,
                 "Bearer error_description=\"why\"");
    ck_assert_ptr_null(vg_bearer_challenge(NULL, "made_up", NULL));
    ck_assert_ptr_null(vg_bearer_challenge(NULL, "invalid_token", "a \"quote\""));
    ck_assert_ptr_null(vg_bearer_challenge("r\n", NULL, NULL));
}
END_TEST

START_TEST(secure_equal)
{
    ck_assert(vg_secure_equal("secret", 6, "secret", 6));
    ck_assert(!vg_secure_equal("secret", 6, "secreT", 6));
    ck_assert(!vg_secure_equal("Secret", 6, "secret", 6));
    ck_assert(!vg_secure_equal("secret", 6, "secret!", 7));
    ck_assert(!vg_secure_equal("secret", 6, "secre", 5));
    ck_assert(vg_secure_equal("", 0, "", 0));
    ck_assert(!vg_secure_equal(NULL, 0, "", 0));
    ck_assert(!vg_secure_equal("", 0, NULL, 0));
    ck_assert(vg_secure_equal("a\0b", 3, "a\0b", 3));
    ck_assert(!vg_secure_equal("a\0b", 3, "a\0c", 3));
}
END_TEST

/* ---- The middleware ---- */

typedef struct {
    atomic_int checks, handled;
    atomic_bool check_on_worker;
} guard;

static bool check_user(vg_request *req, const char *user, const char *password,
                       void *arg)
{
    guard *g = arg;
    char name[32] = "";

    if (req == NULL)
        return false;
    pthread_getname_np(pthread_self(), name, sizeof name);
    atomic_store(&g->check_on_worker, strcmp(name, "vg-worker") == 0);
    atomic_fetch_add(&g->checks, 1);
    return vg_secure_equal(user, strlen(user), "admin", 5) &&
           vg_secure_equal(password, strlen(password), "s3:cret", 7);
}

static vg_result *admin_page(vg_request *req, void *arg)
{
    guard *g = arg;
    (void)req;
    atomic_fetch_add(&g->handled, 1);
    return vg_text("welcome");
}

START_TEST(basic_auth_middleware_guards_a_group)
{
    guard g = {0};
    vg_basic_auth *b = vg_basic_auth_new("admin area", check_user, &g);
    vg_app *app = tu_app_new();
    vg_group *admin = vg_app_group(app, "/admin");
    char *good = basic_line("admin:s3:cret", 13), *wrong = basic_line("admin:nope", 10);
    const char *h[2] = {NULL, NULL};
    tu_response r;
    char *v;

    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(vg_group_use_basic_auth(admin, b), 0);
    ck_assert_int_eq(vg_group_map_get(admin, "/page", admin_page, &g), 0);
    ck_assert_int_eq(vg_map_get(app, "/public", admin_page, &g), 0);
    tu_start(app);

    r = tu_get(vg_app_port(app), "/admin/page");
    ck_assert_int_eq(r.status, 401);
    v = tu_header(&r, "WWW-Authenticate");
    ck_assert_str_eq(v, "Basic realm=\"admin area\", charset=\"UTF-8\"");
    free(v);
    tu_response_free(&r);
    ck_assert_int_eq(atomic_load(&g.checks), 0); /* nothing to check */

    h[0] = wrong;
    r = tu_request(vg_app_port(app), "GET", "/admin/page", NULL, 0, h);
    ck_assert_int_eq(r.status, 401);
    tu_response_free(&r);
    ck_assert_int_eq(atomic_load(&g.checks), 1);

    h[0] = "Authorization: Basic !!!!";
    r = tu_request(vg_app_port(app), "GET", "/admin/page", NULL, 0, h);
    ck_assert_int_eq(r.status, 401);
    tu_response_free(&r);
    ck_assert_int_eq(atomic_load(&g.checks), 1);
    ck_assert_int_eq(atomic_load(&g.handled), 0);

    h[0] = good;
    r = tu_request(vg_app_port(app), "GET", "/admin/page", NULL, 0, h);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "welcome");
    tu_response_free(&r);
    ck_assert_int_eq(atomic_load(&g.checks), 2);
    ck_assert(atomic_load(&g.check_on_worker));

    r = tu_get(vg_app_port(app), "/public");
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    ck_assert_int_eq(atomic_load(&g.handled), 2);

    vg_app_free(app);
    vg_basic_auth_free(b);
    free(good);
    free(wrong);
}
END_TEST

START_TEST(basic_auth_configuration_errors)
{
    guard g = {0};
    vg_app *app = tu_app_new();

    errno = 0;
    ck_assert_ptr_null(vg_basic_auth_new(NULL, check_user, &g));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(vg_basic_auth_new("r", NULL, &g));
    ck_assert_ptr_null(vg_basic_auth_new("bad\nrealm", check_user, &g));
    ck_assert_int_eq(vg_app_use_basic_auth(app, NULL), -EINVAL);
    ck_assert_int_eq(vg_group_use_basic_auth(NULL, NULL), -EINVAL);
    vg_basic_auth_free(NULL);
    vg_app_free(app);
}
END_TEST

static Suite *auth_suite(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("auth");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, basic_decodes_user_and_password);
    tcase_add_test(tc, basic_absent_or_other_scheme_is_enoent);
    tcase_add_test(tc, basic_malformed_is_einval);
    tcase_add_test(tc, basic_very_long_credentials);
    tcase_add_test(tc, basic_decoder_unit);
    tcase_add_test(tc, bearer_tokens);
    tcase_add_test(tc, challenge_format);
    tcase_add_test(tc, secure_equal);
    tcase_add_test(tc, basic_auth_middleware_guards_a_group);
    tcase_add_test(tc, basic_auth_configuration_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(auth_suite());
}
