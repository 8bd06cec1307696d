/* test_proxy_trust.c - the client behind trusted proxies (lib/web/proxy.c):
 * networks and prefixes, the walk over X-Forwarded-For and Forwarded
 * (RFC 7239) from the nearest hop, broken and malformed chains, then over
 * HTTP: vg_request_client_addr and vg_request_peer_addr in a handler,
 * headers from an untrusted peer ignored, and a rate limiter keyed by the
 * real client that spoofed hops cannot escape. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <volga.h>
#include "web/proxy.h"
#include "testutil.h"

/* ---- Configuration ---- */

START_TEST(test_add_accepts_addresses_and_prefixes)
{
    vg_proxy_trust *t = vg_proxy_trust_new();

    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(vg_proxy_trust_add(t, "127.0.0.1"), 0);
    ck_assert_int_eq(vg_proxy_trust_add(t, "10.0.0.0/8"), 0);
    ck_assert_int_eq(vg_proxy_trust_add(t, "::1"), 0);
    ck_assert_int_eq(vg_proxy_trust_add(t, "fd00::/8"), 0);
    ck_assert_int_eq(vg_proxy_trust_add(t, "192.168.1.77/24"), 0);
    ck_assert_int_eq(vg_proxy_trust_add(t, "0.0.0.0/0"), 0);
    ck_assert_int_eq(vg_proxy_trust_add(t, "10.0.0.0/33"), -EINVAL);
    ck_assert_int_eq(vg_proxy_trust_add(t, "10.0.0.0/"), -EINVAL);
    ck_assert_int_eq(vg_proxy_trust_add(t, "10.0.0.0/-1"), -EINVAL);
    ck_assert_int_eq(vg_proxy_trust_add(t, "10.0.0.0/8x"), -EINVAL);
    ck_assert_int_eq(vg_proxy_trust_add(t, "::/129"), -EINVAL);
    ck_assert_int_eq(vg_proxy_trust_add(t, "example.com"), -EINVAL);
    ck_assert_int_eq(vg_proxy_trust_add(t, "1.2.3.4:80"), -EINVAL);
    ck_assert_int_eq(vg_proxy_trust_add(t, ""), -EINVAL);
    ck_assert_int_eq(vg_proxy_trust_add(t, NULL), -EINVAL);
    ck_assert_int_eq(vg_proxy_trust_add(NULL, "1.2.3.4"), -EINVAL);
    vg_proxy_trust_free(t);
    vg_proxy_trust_free(NULL);
}
END_TEST

START_TEST(test_empty_trust_cannot_be_attached)
{
    vg_proxy_trust *t = vg_proxy_trust_new();
    vg_app *app = tu_app_new();

    ck_assert_int_eq(vg_app_use_proxy_trust(app, t), -EINVAL);
    ck_assert_int_eq(vg_proxy_trust_add(t, "127.0.0.1"), 0);
    ck_assert_int_eq(vg_app_use_proxy_trust(app, t), 0);
    ck_assert_int_eq(vg_proxy_trust_add(t, "10.0.0.1"), -EBUSY);
    vg_app_free(app);
    vg_proxy_trust_free(t);
}
END_TEST

/* ---- The walk ---- */

static vg_proxy_trust *trust;

static void setup_trust(void)
{
    trust = vg_proxy_trust_new();
    ck_assert_int_eq(vg_proxy_trust_add(trust, "127.0.0.1"), 0);
    ck_assert_int_eq(vg_proxy_trust_add(trust, "10.0.0.0/8"), 0);
    ck_assert_int_eq(vg_proxy_trust_add(trust, "fd00::/64"), 0);
}

static void teardown_trust(void)
{
    vg_proxy_trust_free(trust);
}

/* The client resolve finds, and whether it came from a header. */
static const char *resolve(const char *peer, const char *fwd,
                           const char *xff, int want)
{
    static char out[VG__PROXY_ADDR_MAX];

    ck_assert_int_eq(vg__proxy_resolve(trust, peer, fwd, xff, out), want);
    return out;
}

START_TEST(test_untrusted_peer_headers_ignored)
{
    ck_assert_str_eq(resolve("198.51.100.1", NULL, "203.0.113.9", 0),
                     "198.51.100.1");
    ck_assert_str_eq(resolve("198.51.100.1", "for=203.0.113.9", NULL, 0),
                     "198.51.100.1");
    /* Just outside a prefix. */
    ck_assert_str_eq(resolve("11.0.0.1", NULL, "203.0.113.9", 0), "11.0.0.1");
    ck_assert_str_eq(resolve("fd00:0:0:1::1", NULL, "203.0.113.9", 0),
                     "fd00:0:0:1::1");
}
END_TEST

START_TEST(test_trusted_peer_walks_from_the_nearest_hop)
{
    ck_assert_str_eq(resolve("127.0.0.1", NULL, "203.0.113.9", 1),
                     "203.0.113.9");
    /* A trusted hop in between hands over; what the client claimed left
     * of its own address is ignored. */
    ck_assert_str_eq(resolve("127.0.0.1", NULL,
                             "1.1.1.1, 203.0.113.9, 10.1.2.3", 1),
                     "203.0.113.9");
    ck_assert_str_eq(resolve("10.9.9.9", NULL, " 2.2.2.2 ,\t203.0.113.9 ", 1),
                     "203.0.113.9");
    /* Only proxies: the farthest of them. */
    ck_assert_str_eq(resolve("127.0.0.1", NULL, "10.0.0.5, 10.0.0.6", 1),
                     "10.0.0.5");
    /* Prefixes of IPv6 proxies; canonical text out. */
    ck_assert_str_eq(resolve("fd00::1", NULL, "2001:DB8:0::7", 1),
                     "2001:db8::7");
    ck_assert_str_eq(resolve("::ffff:127.0.0.1", NULL, "::ffff:192.0.2.1", 1),
                     "192.0.2.1");
    ck_assert_str_eq(resolve("127.0.0.1", NULL, "192.0.2.1:5555", 1),
                     "192.0.2.1");
    ck_assert_str_eq(resolve("127.0.0.1", NULL, "[2001:db8::1]:80", 1),
                     "2001:db8::1");
}
END_TEST

START_TEST(test_broken_chain_stops_at_what_is_known)
{
    /* Garbage next to the proxy: the proxy is all we know. */
    ck_assert_str_eq(resolve("127.0.0.1", NULL, "203.0.113.9, bogus", 0),
                     "127.0.0.1");
    ck_assert_str_eq(resolve("127.0.0.1", NULL, "", 0), "127.0.0.1");
    ck_assert_str_eq(resolve("127.0.0.1", NULL, ",", 0), "127.0.0.1");
    /* Garbage behind a trusted hop: that hop. */
    ck_assert_str_eq(resolve("127.0.0.1", NULL, "unknown, 10.0.0.8", 1),
                     "10.0.0.8");
    ck_assert_str_eq(resolve("127.0.0.1", NULL, "1.2.3.4.5", 0), "127.0.0.1");
    ck_assert_str_eq(resolve("127.0.0.1", NULL, "1.2.3.4:", 0), "127.0.0.1");
    ck_assert_str_eq(resolve("127.0.0.1", NULL, "[::1", 0), "127.0.0.1");
    ck_assert_str_eq(resolve("127.0.0.1", NULL, "::1]:80", 0), "127.0.0.1");
    ck_assert_int_eq(vg__proxy_resolve(trust, "nonsense", NULL, NULL,
                                       (char[VG__PROXY_ADDR_MAX]){0}),
                     -EINVAL);
}
END_TEST

START_TEST(test_forwarded_elements_and_quoting)
{
    ck_assert_str_eq(resolve("127.0.0.1", "for=203.0.113.9", NULL, 1),
                     "203.0.113.9");
    ck_assert_str_eq(resolve("127.0.0.1",
                             "for=1.1.1.1, FOR=\"[2001:db8::5]:4711\";"
                             "proto=https;by=10.0.0.1, for=10.0.0.2",
                             NULL, 1),
                     "2001:db8::5");
    ck_assert_str_eq(resolve("127.0.0.1", "for=\"203.0.113.9:80\" ; host=x",
                             NULL, 1),
                     "203.0.113.9");
    /* Forwarded wins over X-Forwarded-For. */
    ck_assert_str_eq(resolve("127.0.0.1", "for=192.0.2.60", "198.51.100.3",
                             1),
                     "192.0.2.60");
    /* Obfuscated, unknown, missing or escaped: the chain ends there. */
    ck_assert_str_eq(resolve("127.0.0.1", "for=_hidden", NULL, 0),
                     "127.0.0.1");
    ck_assert_str_eq(resolve("127.0.0.1", "for=unknown, for=10.0.0.3", NULL,
                             1),
                     "10.0.0.3");
    ck_assert_str_eq(resolve("127.0.0.1", "proto=http", NULL, 0),
                     "127.0.0.1");
    ck_assert_str_eq(resolve("127.0.0.1", "for=\"1.2.3\\.4\"", NULL, 0),
                     "127.0.0.1");
    /* Empty list elements are allowed. */
    ck_assert_str_eq(resolve("127.0.0.1", ", for=192.0.2.7 ,", NULL, 1),
                     "192.0.2.7");
}
END_TEST

START_TEST(test_malformed_forwarded_believed_in_nothing)
{
    static const char *const bad[] = {
        "for", "for=", "for=\"1.2.3.4", "=1.2.3.4", "for=1.2.3.4 x",
        "for=1.2.3.4;for=5.6.7.8", "for=[::1]", "for=\"a\x01\"",
        "for=1.2.3.4;", "for=\"\\",
    };
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(strcmp(resolve("127.0.0.1", bad[i], "192.0.2.1", 0),
                             "127.0.0.1") == 0,
                      "believed \"%s\"", bad[i]);
}
END_TEST

START_TEST(test_long_chain_keeps_its_nearest_hops)
{
    char xff[4096];
    size_t len = 0;
    int i;

    /* 200 trusted hops after the client: more than are remembered, so the
     * walk ends at the farthest hop remembered, still a proxy. */
    len += (size_t)snprintf(xff + len, sizeof xff - len, "203.0.113.1");
    for (i = 0; i < 200; i++)
        len += (size_t)snprintf(xff + len, sizeof xff - len, ", 10.0.%d.%d",
                                i / 250, i % 250);
    ck_assert_str_eq(resolve("127.0.0.1", NULL, xff, 1), "10.0.0.136");
}
END_TEST

/* ---- Over HTTP ---- */

static vg_result *whoami(vg_request *req, void *arg)
{
    (void)arg;
    return vg_textf("%s %s", vg_request_client_addr(req),
                    vg_request_peer_addr(req));
}

static vg_app *app_trusting(const char *net)
{
    vg_app *app = tu_app_new();

    trust = vg_proxy_trust_new();
    ck_assert_int_eq(vg_proxy_trust_add(trust, net), 0);
    ck_assert_int_eq(vg_app_use_proxy_trust(app, trust), 0);
    ck_assert_int_eq(vg_map_get(app, "/who", whoami, NULL), 0);
    return app;
}

START_TEST(test_http_client_addr_from_trusted_proxy)
{
    vg_app *app = app_trusting("127.0.0.0/8");
    const char *one[] = {"X-Forwarded-For: 203.0.113.9", NULL};
    const char *two[] = {"X-Forwarded-For: 1.1.1.1",
                         "X-Forwarded-For: 198.51.100.4", NULL};
    const char *fwd[] = {"Forwarded: for=\"[2001:db8::9]\"",
                         "X-Forwarded-For: 198.51.100.4", NULL};
    unsigned short port;
    tu_response r;

    tu_start(app);
    port = vg_app_port(app);
    r = tu_request(port, "GET", "/who", NULL, 0, one);
    ck_assert_str_eq(r.body, "203.0.113.9 127.0.0.1");
    tu_response_free(&r);
    /* Several lines are one list, in order. */
    r = tu_request(port, "GET", "/who", NULL, 0, two);
    ck_assert_str_eq(r.body, "198.51.100.4 127.0.0.1");
    tu_response_free(&r);
    r = tu_request(port, "GET", "/who", NULL, 0, fwd);
    ck_assert_str_eq(r.body, "2001:db8::9 127.0.0.1");
    tu_response_free(&r);
    r = tu_get(port, "/who");
    ck_assert_str_eq(r.body, "127.0.0.1 127.0.0.1");
    tu_response_free(&r);
    vg_app_free(app);
    vg_proxy_trust_free(trust);
}
END_TEST

START_TEST(test_http_untrusted_peer_cannot_spoof)
{
    vg_app *app = app_trusting("10.0.0.0/8");
    const char *spoof[] = {"X-Forwarded-For: 203.0.113.9",
                           "Forwarded: for=203.0.113.9", NULL};
    tu_response r;

    tu_start(app);
    r = tu_request(vg_app_port(app), "GET", "/who", NULL, 0, spoof);
    ck_assert_str_eq(r.body, "127.0.0.1 127.0.0.1");
    tu_response_free(&r);
    vg_app_free(app);
    vg_proxy_trust_free(trust);
}
END_TEST

START_TEST(test_http_limiter_keys_the_real_client)
{
    vg_app *app = app_trusting("127.0.0.1");
    vg_ratelimit *rl = vg_ratelimit_new(1, 60000);
    const char *a[] = {"X-Forwarded-For: 203.0.113.1", NULL};
    const char *b[] = {"X-Forwarded-For: 203.0.113.2", NULL};
    /* The client claims another address left of its own, which the
     * proxy appended: the claim buys nothing. */
    const char *a_spoofing[] = {"X-Forwarded-For: 9.9.9.9, 203.0.113.1",
                                NULL};
    unsigned short port;
    tu_response r;

    ck_assert_int_eq(vg_app_use_ratelimit(app, rl), 0);
    tu_start(app);
    port = vg_app_port(app);
    r = tu_request(port, "GET", "/who", NULL, 0, a);
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    r = tu_request(port, "GET", "/who", NULL, 0, b);
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    r = tu_request(port, "GET", "/who", NULL, 0, a_spoofing);
    ck_assert_int_eq(r.status, 429);
    tu_response_free(&r);
    vg_app_free(app);
    vg_ratelimit_free(rl);
    vg_proxy_trust_free(trust);
}
END_TEST

static Suite *proxy_trust_suite(void)
{
    Suite *s = suite_create("proxy_trust");
    TCase *c = tcase_create("config");
    TCase *w = tcase_create("walk");
    TCase *h = tcase_create("http");

    tcase_add_test(c, test_add_accepts_addresses_and_prefixes);
    tcase_add_test(c, test_empty_trust_cannot_be_attached);
    suite_add_tcase(s, c);
    tcase_add_checked_fixture(w, setup_trust, teardown_trust);
    tcase_add_test(w, test_untrusted_peer_headers_ignored);
    tcase_add_test(w, test_trusted_peer_walks_from_the_nearest_hop);
    tcase_add_test(w, test_broken_chain_stops_at_what_is_known);
    tcase_add_test(w, test_forwarded_elements_and_quoting);
    tcase_add_test(w, test_malformed_forwarded_believed_in_nothing);
    tcase_add_test(w, test_long_chain_keeps_its_nearest_hops);
    suite_add_tcase(s, w);
    tcase_set_timeout(h, 60);
    tcase_add_test(h, test_http_client_addr_from_trusted_proxy);
    tcase_add_test(h, test_http_untrusted_peer_cannot_spoof);
    tcase_add_test(h, test_http_limiter_keys_the_real_client);
    suite_add_tcase(s, h);
    return s;
}

int main(void)
{
    return tu_main(proxy_trust_suite());
}
