/* test_cookie.c - cookies (lib/web/cookie.c): reading Cookie fields as
 * sent (one, several, joined), RFC 6265 validation on both sides,
 * Set-Cookie attributes byte for byte, signed cookies (round trip, key
 * rotation, every byte of the signature and of the signed text altered,
 * renaming, expiry checked against an independent HMAC made here with
 * nettle) and hostile Cookie headers (10,000 pairs, 64 KiB, control bytes,
 * duplicates), on a real app on 127.0.0.1:0 and raw sockets. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nettle/base64.h>
#include <nettle/hmac.h>

#include <volga.h>
#include "web/cookie.h"
#include "testutil.h"

static const char key1[] = "0123456789abcdef0123456789abcdef";  /* 32 bytes */
static const char key2[] = "another key, also 32 bytes long!";

/* ---- Handlers ---- */

/* GET /c?name=N answers the cookie's value, "(none)" if absent. */
static vg_result *read_cookie(vg_request *req, void *arg)
{
    const char *name = vg_request_query(req, "name");
    const char *v = vg_request_cookie(req, name ? name : "");
    (void)arg;
    return vg_textf("%s", v ? v : "(none)");
}

/* GET /s?name=N answers the signed cookie's value under the keys in arg. */
static vg_result *read_signed(vg_request *req, void *arg)
{
    const char *name = vg_request_query(req, "name");
    const char *v = vg_request_signed_cookie(req, arg, name ? name : "");
    (void)arg;
    return vg_textf("%s", v ? v : "(none)");
}

/* GET /bad sets a cookie with an invalid value: the chain's NULL is 500. */
static vg_result *set_bad(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_result_set_cookie(vg_text("x"), "ok", "has space", NULL);
}

static vg_app *cookie_app(vg_cookie_keys *keys)
{
    vg_app *app = tu_app_new();

    ck_assert_int_eq(vg_app_set_header_limit(app, 1024 * 1024), 0);
    ck_assert_int_eq(vg_map_get(app, "/c", read_cookie, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/s", read_signed, keys), 0);
    ck_assert_int_eq(vg_map_get(app, "/bad", set_bad, NULL), 0);
    tu_start(app);
    return app;
}

/* Sends GET `path` with the raw header lines `head` (each ending in CRLF)
 * on a new connection; returns the body (malloc'd) and the status. */
static char *raw_get(unsigned short port, const char *path, const char *head,
                     int *status)
{
    size_t cap = strlen(head) + 512, got, blen = 256 * 1024;
    char *req = malloc(cap), *buf = malloc(blen), *body;
    int fd = tu_connect(port);

    snprintf(req, cap, "GET %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n",
             path, head);
    ck_assert(tu_send_all(fd, req, strlen(req)));
    got = tu_recv_all(fd, buf, blen);
    close(fd);
    free(req);
    ck_assert_uint_gt(got, 12);
    *status = atoi(buf + 9);
    body = strstr(buf, "\r\n\r\n");
    ck_assert_ptr_nonnull(body);
    body = strdup(body + 4);
    free(buf);
    return body;
}

/* The body of GET `path` with one "Cookie: `cookie`" field. */
static char *with_cookie(unsigned short port, const char *path,
                         const char *cookie)
{
    size_t len = strlen(cookie) + 16;
    char *head = malloc(len), *body;
    int status;

    snprintf(head, len, "Cookie: %s\r\n", cookie);
    body = raw_get(port, path, head, &status);
    ck_assert_int_eq(status, 200);
    free(head);
    return body;
}

static void expect_body(char *body, const char *want)
{
    ck_assert_str_eq(body, want);
    free(body);
}

/* The Set-Cookie value a result carries (borrowed). */
static const char *set_cookie_of(const vg_result *res)
{
    const char *v = vg_result_header(res, "Set-Cookie");

    ck_assert_ptr_nonnull(v);
    return v;
}

/* ---- Reading ---- */

START_TEST(reads_pairs_quotes_and_whitespace)
{
    vg_app *app = cookie_app(NULL);
    unsigned short p = vg_app_port(app);
    static const char jar[] =
        "a=1; b=two;c=\"quoted\" ;  d =  spaced ; e=; noequals; bad name=x; "
        "f=comma,no; g=back\\slash; h=ok";

    expect_body(with_cookie(p, "/c?name=a", jar), "1");
    expect_body(with_cookie(p, "/c?name=b", jar), "two");
    expect_body(with_cookie(p, "/c?name=c", jar), "quoted");
    expect_body(with_cookie(p, "/c?name=d", jar), "spaced");
    expect_body(with_cookie(p, "/c?name=e", jar), "");
    expect_body(with_cookie(p, "/c?name=noequals", jar), "(none)");
    expect_body(with_cookie(p, "/c?name=bad%20name", jar), "(none)");
    expect_body(with_cookie(p, "/c?name=f", jar), "(none)");
    expect_body(with_cookie(p, "/c?name=g", jar), "(none)");
    expect_body(with_cookie(p, "/c?name=h", jar), "ok");
    expect_body(with_cookie(p, "/c?name=A", jar), "(none)"); /* case */
    vg_app_free(app);
}
END_TEST

START_TEST(reads_several_cookie_fields_first_wins)
{
    vg_app *app = cookie_app(NULL);
    unsigned short p = vg_app_port(app);
    static const char two[] = "Cookie: a=1; dup=first\r\nCookie: b=2; dup=second\r\n";
    int status;

    expect_body(raw_get(p, "/c?name=a", two, &status), "1");
    expect_body(raw_get(p, "/c?name=b", two, &status), "2");
    expect_body(raw_get(p, "/c?name=dup", two, &status), "first");
    expect_body(with_cookie(p, "/c?name=x", "x=1; x=2; x=3"), "1");
    expect_body(raw_get(p, "/c?name=a", "", &status), "(none)");
    vg_app_free(app);
}
END_TEST

START_TEST(hostile_cookie_headers)
{
    vg_app *app = cookie_app(NULL);
    unsigned short p = vg_app_port(app);
    enum { PAIRS = 10000 };
    size_t cap = PAIRS * 16 + 70000, len = 0, i;
    char *jar = malloc(cap), *head, *body;
    int status;

    /* 10,000 pairs in one field. */
    for (i = 0; i < PAIRS; i++)
        len += (size_t)snprintf(jar + len, cap - len, "c%zu=%zu; ", i, i * 7);
    expect_body(with_cookie(p, "/c?name=c0", jar), "0");
    expect_body(with_cookie(p, "/c?name=c9999", jar), "69993");
    expect_body(with_cookie(p, "/c?name=c10000", jar), "(none)");
    /* One value of 64 KiB. */
    memcpy(jar, "big=", 4);
    memset(jar + 4, 'v', 65536);
    strcpy(jar + 4 + 65536, "; after=1");
    body = with_cookie(p, "/c?name=big", jar);
    ck_assert_uint_eq(strlen(body), 65536);
    ck_assert(body[0] == 'v' && body[65535] == 'v');
    free(body);
    expect_body(with_cookie(p, "/c?name=after", jar), "1");
    /* Control bytes: the pair holding one is dropped, the rest read. If
     * libmicrohttpd refuses the field itself, that is a 400, not a
     * crash. */
    head = "Cookie: a=1; b=x\x01y; c=3; d=\x7f; e=\xc3\xa9\r\n";
    body = raw_get(p, "/c?name=a", head, &status);
    if (status == 200) {
        ck_assert_str_eq(body, "1");
        free(body);
        expect_body(raw_get(p, "/c?name=b", head, &status), "(none)");
        expect_body(raw_get(p, "/c?name=c", head, &status), "3");
        expect_body(raw_get(p, "/c?name=d", head, &status), "(none)");
        expect_body(raw_get(p, "/c?name=e", head, &status), "(none)");
    } else {
        ck_assert_int_eq(status, 400);
        free(body);
    }
    /* 200 Cookie fields, each a duplicate of the name. */
    len = 0;
    for (i = 0; i < 200; i++)
        len += (size_t)snprintf(jar + len, cap - len, "Cookie: d=%zu\r\n", i);
    expect_body(raw_get(p, "/c?name=d", jar, &status), "0");
    /* Only separators and junk. */
    expect_body(with_cookie(p, "/c?name=a", ";;;; ; = ; =x; ;"), "(none)");
    free(jar);
    vg_app_free(app);
}
END_TEST

/* The parser alone: what it keeps and that it never reads past the end. */
START_TEST(parser_keeps_only_valid_pairs)
{
    char buf[] = " a=1;b=\"\";=x;c=\"unterminated;d=4;  ;e=5";
    vg__cookie_pair pairs[8];
    size_t n = vg__cookie_parse(buf, sizeof buf - 1, pairs, 8);

    ck_assert_uint_eq(n, 4);
    ck_assert_str_eq(pairs[0].name, "a");
    ck_assert_str_eq(pairs[0].value, "1");
    ck_assert_str_eq(pairs[1].name, "b");
    ck_assert_str_eq(pairs[1].value, "");
    ck_assert_str_eq(pairs[2].name, "d");
    ck_assert_str_eq(pairs[3].name, "e");
    ck_assert_str_eq(pairs[3].value, "5");
    /* Room for fewer: stops there. */
    {
        char b2[] = "a=1;b=2;c=3";
        ck_assert_uint_eq(vg__cookie_parse(b2, sizeof b2 - 1, pairs, 2), 2);
    }
}
END_TEST

/* ---- Setting ---- */

START_TEST(attributes_byte_for_byte)
{
    vg_cookie_attrs *a = vg_cookie_attrs_new();
    vg_result *res;

    ck_assert_ptr_nonnull(a);
    res = vg_result_set_cookie(vg_text("x"), "sid", "abc", NULL);
    ck_assert_str_eq(set_cookie_of(res), "sid=abc");
    vg_result_free(res);

    ck_assert_int_eq(vg_cookie_attrs_set_path(a, "/app"), 0);
    ck_assert_int_eq(vg_cookie_attrs_set_domain(a, "example.com"), 0);
    ck_assert_int_eq(vg_cookie_attrs_set_max_age(a, 3600), 0);
    ck_assert_int_eq(vg_cookie_attrs_set_expires(a, 1445412480), 0);
    ck_assert_int_eq(vg_cookie_attrs_set_secure(a, true), 0);
    ck_assert_int_eq(vg_cookie_attrs_set_http_only(a, true), 0);
    ck_assert_int_eq(vg_cookie_attrs_set_same_site(a, VG_SAME_SITE_STRICT), 0);
    ck_assert_int_eq(vg_cookie_attrs_set_partitioned(a, true), 0);
    res = vg_result_set_cookie(vg_text("x"), "sid", "abc", a);
    ck_assert_str_eq(set_cookie_of(res),
                     "sid=abc; Path=/app; Domain=example.com; Max-Age=3600; "
                     "Expires=Wed, 21 Oct 2015 07:28:00 GMT; Secure; HttpOnly; "
                     "SameSite=Strict; Partitioned");
    vg_result_free(res);

    /* SameSite=None and Partitioned force Secure. */
    ck_assert_int_eq(vg_cookie_attrs_set_path(a, NULL), 0);
    ck_assert_int_eq(vg_cookie_attrs_set_domain(a, NULL), 0);
    ck_assert_int_eq(vg_cookie_attrs_set_max_age(a, -1), 0);
    ck_assert_int_eq(vg_cookie_attrs_set_expires(a, -1), 0);
    ck_assert_int_eq(vg_cookie_attrs_set_secure(a, false), 0);
    ck_assert_int_eq(vg_cookie_attrs_set_http_only(a, false), 0);
    ck_assert_int_eq(vg_cookie_attrs_set_partitioned(a, false), 0);
    ck_assert_int_eq(vg_cookie_attrs_set_same_site(a, VG_SAME_SITE_NONE), 0);
    res = vg_result_set_cookie(vg_text("x"), "t", "1", a);
    ck_assert_str_eq(set_cookie_of(res), "t=1; Secure; SameSite=None");
    vg_result_free(res);
    ck_assert_int_eq(vg_cookie_attrs_set_same_site(a, VG_SAME_SITE_LAX), 0);
    res = vg_result_set_cookie(vg_text("x"), "t", "1", a);
    ck_assert_str_eq(set_cookie_of(res), "t=1; SameSite=Lax");
    vg_result_free(res);
    ck_assert_int_eq(vg_cookie_attrs_set_same_site(a, VG_SAME_SITE_DEFAULT), 0);
    ck_assert_int_eq(vg_cookie_attrs_set_partitioned(a, true), 0);
    res = vg_result_set_cookie(vg_text("x"), "t", "1", a);
    ck_assert_str_eq(set_cookie_of(res), "t=1; Secure; Partitioned");
    vg_result_free(res);

    /* Clearing keeps Path and Domain, which must match. */
    ck_assert_int_eq(vg_cookie_attrs_set_partitioned(a, false), 0);
    ck_assert_int_eq(vg_cookie_attrs_set_path(a, "/"), 0);
    res = vg_result_clear_cookie(vg_text("x"), "sid", a);
    ck_assert_str_eq(set_cookie_of(res),
                     "sid=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
    vg_result_free(res);
    /* Two cookies: two fields. */
    res = vg_result_set_cookie(vg_result_set_cookie(vg_text("x"), "a", "1", NULL),
                               "b", "2", NULL);
    ck_assert_ptr_nonnull(res);
    ck_assert_str_eq(set_cookie_of(res), "a=1");
    vg_result_free(res);
    vg_cookie_attrs_free(a);
    vg_cookie_attrs_free(NULL);
}
END_TEST

START_TEST(invalid_names_values_and_attributes_refused)
{
    static const char *const bad_values[] = {
        "has space", "semi;colon", "comma,", "quote\"", "back\\slash",
        "ctl\x01", "del\x7f", "caf\xc3\xa9", "tab\t",
    };
    static const char *const bad_names[] = {"", "a b", "a=b", "a;b", "a\"b",
                                            "(x)", "a\x01", "\xc3\xa9"};
    vg_cookie_attrs *a = vg_cookie_attrs_new();
    size_t i;

    for (i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
        errno = 0;
        ck_assert_ptr_null(vg_result_set_cookie(vg_text("x"), "n", bad_values[i], NULL));
        ck_assert_int_eq(errno, EINVAL);
    }
    for (i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
        ck_assert_ptr_null(vg_result_set_cookie(vg_text("x"), bad_names[i], "v", NULL));
    ck_assert_ptr_null(vg_result_set_cookie(vg_text("x"), NULL, "v", NULL));
    ck_assert_ptr_null(vg_result_set_cookie(vg_text("x"), "n", NULL, NULL));
    ck_assert_ptr_null(vg_result_set_cookie(NULL, "n", "v", NULL));
    ck_assert_int_eq(vg_cookie_attrs_set_path(a, "relative"), -EINVAL);
    ck_assert_int_eq(vg_cookie_attrs_set_path(a, "/a;b"), -EINVAL);
    ck_assert_int_eq(vg_cookie_attrs_set_path(a, "/a\r\n"), -EINVAL);
    ck_assert_int_eq(vg_cookie_attrs_set_domain(a, "ex ample.com"), -EINVAL);
    ck_assert_int_eq(vg_cookie_attrs_set_domain(a, "example.com/"), -EINVAL);
    ck_assert_int_eq(vg_cookie_attrs_set_domain(a, ""), -EINVAL);
    ck_assert_int_eq(vg_cookie_attrs_set_max_age(a, -2), -EINVAL);
    ck_assert_int_eq(vg_cookie_attrs_set_expires(a, 253402300800LL), -EINVAL);
    ck_assert_int_eq(vg_cookie_attrs_set_same_site(a, (vg_same_site)9), -EINVAL);
    ck_assert_int_eq(vg_cookie_attrs_set_secure(NULL, true), -EINVAL);
    vg_cookie_attrs_free(a);
}
END_TEST

START_TEST(invalid_cookie_in_handler_answers_500)
{
    vg_app *app = cookie_app(NULL);
    tu_response r = tu_get(vg_app_port(app), "/bad");

    ck_assert_int_eq(r.status, 500);
    ck_assert_ptr_null(strcasestr(r.headers, "Set-Cookie"));
    tu_response_free(&r);
    vg_app_free(app);
}
END_TEST

/* ---- Signed cookies ---- */

/* The value part ("v.EXP.MAC") of a signed Set-Cookie, malloc'd. */
static char *sign(const vg_cookie_keys *k, const char *name, const char *value,
                  long ttl)
{
    vg_result *res = vg_result_set_signed_cookie(vg_text("x"), k, name, value,
                                                 ttl, NULL);
    const char *line = set_cookie_of(res);
    char *v;

    ck_assert(strncmp(line, name, strlen(name)) == 0 && line[strlen(name)] == '=');
    v = strdup(line + strlen(name) + 1);
    vg_result_free(res);
    return v;
}

static int verify(const vg_cookie_keys *k, const char *name, const char *raw)
{
    size_t len;
    return vg__cookie_verify(k, name, raw, &len);
}

START_TEST(signed_round_trip_over_http)
{
    vg_cookie_keys *k = vg_cookie_keys_new(key1, 32);
    vg_app *app = cookie_app(k);
    unsigned short p = vg_app_port(app);
    char *v = sign(k, "session", "user.42", 0), jar[256];

    /* The value keeps its own dots: parsing is from the right. */
    ck_assert_msg(strncmp(v, "user.42.0.", 10) == 0, "%s", v);
    ck_assert_uint_eq(strlen(v), 10 + 43);
    snprintf(jar, sizeof jar, "other=1; session=%s", v);
    expect_body(with_cookie(p, "/s?name=session", jar), "user.42");
    /* The unsigned reader sees the whole signed text. */
    expect_body(with_cookie(p, "/c?name=session", jar), v);
    /* Under another name it does not verify. */
    snprintf(jar, sizeof jar, "admin=%s", v);
    expect_body(with_cookie(p, "/s?name=admin", jar), "(none)");
    /* An unsigned cookie does not either. */
    expect_body(with_cookie(p, "/s?name=session", "session=user.42"), "(none)");
    expect_body(with_cookie(p, "/s?name=session", "a=b"), "(none)");
    free(v);
    vg_app_free(app);
    vg_cookie_keys_free(k);
}
END_TEST

START_TEST(signed_key_rotation)
{
    vg_cookie_keys *old = vg_cookie_keys_new(key1, 32);
    vg_cookie_keys *rotated = vg_cookie_keys_new(key2, 32);
    vg_cookie_keys *only_new = vg_cookie_keys_new(key2, 32);
    char *by_old, *by_new;

    ck_assert_int_eq(vg_cookie_keys_add(rotated, key1, 32), 0);
    by_old = sign(old, "s", "v", 0);
    by_new = sign(rotated, "s", "v", 0);
    ck_assert_str_ne(by_old, by_new);
    ck_assert_int_eq(verify(old, "s", by_old), 0);
    ck_assert_int_eq(verify(rotated, "s", by_old), 0);   /* old keys verify */
    ck_assert_int_eq(verify(rotated, "s", by_new), 0);
    ck_assert_int_eq(verify(only_new, "s", by_new), 0);  /* the first signs */
    ck_assert_int_eq(verify(old, "s", by_new), -EBADMSG);
    ck_assert_int_eq(verify(only_new, "s", by_old), -EBADMSG);
    free(by_old);
    free(by_new);
    vg_cookie_keys_free(old);
    vg_cookie_keys_free(rotated);
    vg_cookie_keys_free(only_new);
}
END_TEST

START_TEST(signed_every_byte_altered_is_rejected)
{
    static const char b64url[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    vg_cookie_keys *k = vg_cookie_keys_new(key1, 32);
    char *v = sign(k, "s", "value-7", 3600), *t;
    size_t n = strlen(v), i, j;

    ck_assert_int_eq(verify(k, "s", v), 0);
    t = strdup(v);
    for (i = 0; i < n; i++) {
        /* Every other character at this place, including the dots. */
        for (j = 0; j < sizeof b64url - 1; j++) {
            if (b64url[j] == v[i])
                continue;
            t[i] = b64url[j];
            ck_assert_msg(verify(k, "s", t) != 0, "altered %s verifies", t);
        }
        t[i] = '.';
        if (v[i] != '.')
            ck_assert_int_ne(verify(k, "s", t), 0);
        t[i] = v[i];
    }
    /* Cut short, lengthened, emptied. */
    t[n - 1] = '\0';
    ck_assert_int_ne(verify(k, "s", t), 0);
    free(t);
    t = malloc(n + 2);
    snprintf(t, n + 2, "%sA", v);
    ck_assert_int_ne(verify(k, "s", t), 0);
    free(t);
    ck_assert_int_ne(verify(k, "s", ""), 0);
    ck_assert_int_ne(verify(k, "s", "..."), 0);
    free(v);
    vg_cookie_keys_free(k);
}
END_TEST

/* A signed value made here, independently of the library, with nettle:
 * HMAC-SHA256 over "name=value.expiry", unpadded base64url. */
static char *forge(const char *key, const char *name, const char *value,
                   long long expiry)
{
    struct hmac_sha256_ctx ctx;
    struct base64_encode_ctx b64;
    uint8_t d[SHA256_DIGEST_SIZE];
    char msg[256], mac[64], *out = malloc(512);
    size_t n;

    snprintf(msg, sizeof msg, "%s=%s.%lld", name, value, expiry);
    hmac_sha256_set_key(&ctx, 32, (const uint8_t *)key);
    hmac_sha256_update(&ctx, strlen(msg), (const uint8_t *)msg);
    hmac_sha256_digest(&ctx, sizeof d, d);
    base64url_encode_init(&b64);
    n = base64_encode_update(&b64, mac, sizeof d, d);
    n += base64_encode_final(&b64, mac + n);
    while (n > 0 && mac[n - 1] == '=')
        n--;
    mac[n] = '\0';
    snprintf(out, 512, "%s.%lld.%s", value, expiry, mac);
    return out;
}

START_TEST(signed_expiry_inside_the_mac)
{
    vg_cookie_keys *k = vg_cookie_keys_new(key1, 32);
    vg_app *app = cookie_app(k);
    unsigned short p = vg_app_port(app);
    long long now = (long long)time(NULL);
    char *past = forge(key1, "s", "v", now - 5);
    char *future = forge(key1, "s", "v", now + 3600);
    char *never = forge(key1, "s", "v", 0);
    char *ours = sign(k, "s", "v", 3600), jar[256], *dot;
    long long exp;

    ck_assert_int_eq(verify(k, "s", past), -ETIME);
    ck_assert_int_eq(verify(k, "s", future), 0);
    ck_assert_int_eq(verify(k, "s", never), 0);
    /* The library's own cookie says now + ttl, and is what forge makes. */
    exp = strtoll(ours + 2, &dot, 10);
    ck_assert(exp >= now + 3600 && exp <= now + 3600 + 5);
    {
        char *same = forge(key1, "s", "v", exp);
        ck_assert_str_eq(ours, same);
        free(same);
    }
    snprintf(jar, sizeof jar, "s=%s", past);
    expect_body(with_cookie(p, "/s?name=s", jar), "(none)");
    snprintf(jar, sizeof jar, "s=%s", future);
    expect_body(with_cookie(p, "/s?name=s", jar), "v");
    /* Moving the expiry voids the MAC. */
    snprintf(jar, sizeof jar, "s=v.%lld.%s", now + 99999, strrchr(past, '.') + 1);
    expect_body(with_cookie(p, "/s?name=s", jar), "(none)");
    free(past);
    free(future);
    free(never);
    free(ours);
    vg_app_free(app);
    vg_cookie_keys_free(k);
}
END_TEST

START_TEST(signed_configuration_errors)
{
    vg_cookie_keys *k;

    errno = 0;
    ck_assert_ptr_null(vg_cookie_keys_new(key1, 31));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(vg_cookie_keys_new(NULL, 32));
    k = vg_cookie_keys_new(key1, 32);
    ck_assert_int_eq(vg_cookie_keys_add(k, key2, 16), -EINVAL);
    ck_assert_int_eq(vg_cookie_keys_add(NULL, key2, 32), -EINVAL);
    ck_assert_ptr_null(vg_result_set_signed_cookie(vg_text("x"), NULL, "s", "v", 0, NULL));
    ck_assert_ptr_null(vg_result_set_signed_cookie(vg_text("x"), k, "s", "v", -1, NULL));
    ck_assert_ptr_null(vg_result_set_signed_cookie(vg_text("x"), k, "s", "a b", 0, NULL));
    ck_assert_ptr_null(vg_result_set_signed_cookie(vg_text("x"), k, "a b", "v", 0, NULL));
    ck_assert_ptr_null(vg_request_signed_cookie(NULL, k, "s"));
    ck_assert_ptr_null(vg_request_cookie(NULL, "s"));
    vg_cookie_keys_free(k);
    vg_cookie_keys_free(NULL);
}
END_TEST

static Suite *cookie_suite(void)
{
    Suite *s = suite_create("cookie");
    TCase *tc = tcase_create("cookie");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, reads_pairs_quotes_and_whitespace);
    tcase_add_test(tc, reads_several_cookie_fields_first_wins);
    tcase_add_test(tc, hostile_cookie_headers);
    tcase_add_test(tc, parser_keeps_only_valid_pairs);
    tcase_add_test(tc, attributes_byte_for_byte);
    tcase_add_test(tc, invalid_names_values_and_attributes_refused);
    tcase_add_test(tc, invalid_cookie_in_handler_answers_500);
    tcase_add_test(tc, signed_round_trip_over_http);
    tcase_add_test(tc, signed_key_rotation);
    tcase_add_test(tc, signed_every_byte_altered_is_rejected);
    tcase_add_test(tc, signed_expiry_inside_the_mac);
    tcase_add_test(tc, signed_configuration_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(cookie_suite());
}
