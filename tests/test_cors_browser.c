/*
 * test_cors_browser.c - CORS as a real browser enforces it. Headless
 * Chromium loads a page from one origin (app A, http://127.0.0.1:PORT_A)
 * whose script fetches from app B on another port, where CORS policies
 * (lib/web/cors.c) are attached to groups:
 *   /open   allows A's origin, echoes request headers, no credentials
 *   /closed allows only an unrelated origin
 *   /cred   allows A's origin with credentials
 * The page tries each case, then posts what it saw to A's /report:
 *  - a simple GET to /open succeeds and its body reads;
 *  - the same to /closed rejects (the browser blocks it);
 *  - a PUT with a custom header to /open goes through its preflight
 *    (answered by the policy: B has no OPTIONS route) and the handler sees
 *    the header; to /closed the preflight fails and the PUT never arrives;
 *  - credentials: "include" works on /cred (a cookie set by one fetch is
 *    sent back by the next) and rejects on /open.
 * Nothing sleeps: the test waits on the report (a latch), bounded only to
 * catch hangs. Without /usr/bin/chromium the program exits 77 (SKIP).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <volga.h>
#include "cdp.h"
#include "testutil.h"

/* Bound on the browser's start and the page's work; only catches hangs. */
#define BROWSER_MS 30000

#define ck_cdp(cond, b) ck_assert_msg((cond), "devtools: %s", (b)->err)

typedef struct {
    char page[4096];          /* set before the tab opens, under lock */
    tu_latch reported;
    pthread_mutex_t lock;
    char *report;             /* the page's JSON, under lock */
    atomic_int closed_puts;   /* PUT /closed/item reached its handler */
    atomic_int preflights;    /* OPTIONS answered 204 by B */
    atomic_int options_handled; /* B's handlers saw an OPTIONS */
} world;

/* The page: each case becomes "ok STATUS BODY" or "rejected". */
static const char page_fmt[] =
    "<!doctype html>\n<meta charset=utf-8>\n<title>cors</title>\n<script>\n"
    "const B = 'http://127.0.0.1:%u';\n"
    "async function attempt(path, opts) {\n"
    "  try {\n"
    "    const r = await fetch(B + path, opts);\n"
    "    return 'ok ' + r.status + ' ' + await r.text();\n"
    "  } catch (e) { return 'rejected'; }\n"
    "}\n"
    "(async () => {\n"
    "  const out = {};\n"
    "  out.simple_allowed = await attempt('/open/data');\n"
    "  out.simple_disallowed = await attempt('/closed/data');\n"
    "  out.preflight_allowed = await attempt('/open/item',\n"
    "    {method: 'PUT', headers: {'X-Custom': 'yes'}, body: 'x'});\n"
    "  out.preflight_disallowed = await attempt('/closed/item',\n"
    "    {method: 'PUT', headers: {'X-Custom': 'yes'}, body: 'x'});\n"
    "  out.cred_login = await attempt('/cred/login', {credentials: 'include'});\n"
    "  out.cred_who = await attempt('/cred/who', {credentials: 'include'});\n"
    "  out.cred_refused = await attempt('/open/data', {credentials: 'include'});\n"
    "  await fetch('/report', {method: 'POST', body: JSON.stringify(out)});\n"
    "})();\n"
    "</script>\n";

static vg_result *serve_page(vg_request *req, void *arg)
{
    world *w = arg;
    vg_result *res;

    (void)req;
    /* The page is written after this app started (it names B's port). */
    pthread_mutex_lock(&w->lock);
    res = vg_text(w->page);
    pthread_mutex_unlock(&w->lock);
    return vg_result_set_header(res, "Content-Type", "text/html; charset=utf-8");
}

static vg_result *serve_report(vg_request *req, void *arg)
{
    world *w = arg;
    size_t len;
    const char *body = vg_request_body(req, &len);

    pthread_mutex_lock(&w->lock);
    free(w->report);
    w->report = strndup(body, len);
    pthread_mutex_unlock(&w->lock);
    tu_latch_add(&w->reported, 1);
    return vg_status(204);
}

static vg_result *serve_text(vg_request *req, void *arg)
{
    (void)req;
    return vg_text(arg);
}

static vg_result *serve_put(vg_request *req, void *arg)
{
    const char *h = vg_request_header(req, "X-Custom");
    (void)arg;
    return vg_textf("put %s", h ? h : "(none)");
}

static vg_result *serve_closed_put(vg_request *req, void *arg)
{
    world *w = arg;
    (void)req;
    atomic_fetch_add(&w->closed_puts, 1);
    return vg_text("should not be reached");
}

static vg_result *serve_login(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_result_set_header(vg_text("logged in"), "Set-Cookie",
                                "sid=abc123; Path=/; SameSite=Lax");
}

static vg_result *serve_who(vg_request *req, void *arg)
{
    const char *c = vg_request_header(req, "Cookie");
    (void)arg;
    return vg_text(c ? c : "no cookie");
}

static void count_preflights(const vg_completion *c, void *arg)
{
    world *w = arg;

    if (strcmp(c->method, "OPTIONS") == 0 && c->status == 204)
        atomic_fetch_add(&w->preflights, 1);
}

static vg_cors *policy(const char *origin, bool credentials)
{
    vg_cors *c = vg_cors_new();

    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(vg_cors_allow_origin(c, origin), 0);
    ck_assert_int_eq(vg_cors_echo_headers(c), 0);
    ck_assert_int_eq(vg_cors_set_credentials(c, credentials), 0);
    return c;
}

/* The page's verdict for `name`. */
static void expect(json_t *report, const char *name, const char *want)
{
    const char *got = json_string_value(json_object_get(report, name));

    ck_assert_msg(got != NULL, "no result for %s", name);
    ck_assert_msg(strcmp(got, want) == 0, "%s: got \"%s\", want \"%s\"", name,
                  got, want);
}

START_TEST(browser_enforces_the_policies)
{
    cdp_browser b;
    world w;
    vg_app *a, *bapp;
    vg_group *open_g, *closed_g, *cred_g;
    vg_cors *open_p, *closed_p, *cred_p;
    char origin[64], url[80];
    json_t *r, *report;
    json_error_t err;

    memset(&w, 0, sizeof w);
    tu_latch_init(&w.reported);
    pthread_mutex_init(&w.lock, NULL);
    /* The browser is forked before the apps start their threads. */
    ck_cdp(cdp_launch(&b, CDP_CHROMIUM), &b);

    a = tu_app_new();
    ck_assert_int_eq(vg_map_get(a, "/", serve_page, &w), 0);
    ck_assert_int_eq(vg_map_post(a, "/report", serve_report, &w), 0);
    tu_start(a);
    snprintf(origin, sizeof origin, "http://127.0.0.1:%u",
             (unsigned)vg_app_port(a));

    bapp = tu_app_new();
    open_p = policy(origin, false);
    closed_p = policy("http://elsewhere.invalid", false);
    cred_p = policy(origin, true);
    open_g = vg_app_group(bapp, "/open");
    closed_g = vg_app_group(bapp, "/closed");
    cred_g = vg_app_group(bapp, "/cred");
    ck_assert_int_eq(vg_group_use_cors(open_g, open_p), 0);
    ck_assert_int_eq(vg_group_use_cors(closed_g, closed_p), 0);
    ck_assert_int_eq(vg_group_use_cors(cred_g, cred_p), 0);
    ck_assert_int_eq(vg_group_map_get(open_g, "/data", serve_text, "open data"), 0);
    ck_assert_int_eq(vg_group_map_put(open_g, "/item", serve_put, NULL), 0);
    ck_assert_int_eq(vg_group_map_get(closed_g, "/data", serve_text, "closed data"), 0);
    ck_assert_int_eq(vg_group_map_put(closed_g, "/item", serve_closed_put, &w), 0);
    ck_assert_int_eq(vg_group_map_get(cred_g, "/login", serve_login, NULL), 0);
    ck_assert_int_eq(vg_group_map_get(cred_g, "/who", serve_who, NULL), 0);
    ck_assert_int_eq(vg_app_on_complete(bapp, count_preflights, &w), 0);
    tu_start(bapp);
    pthread_mutex_lock(&w.lock);
    snprintf(w.page, sizeof w.page, page_fmt, (unsigned)vg_app_port(bapp));
    pthread_mutex_unlock(&w.lock);

    snprintf(url, sizeof url, "%s/", origin);
    r = cdp_call(&b, NULL, "Target.createTarget", BROWSER_MS, "{s:s}", "url", url);
    ck_cdp(r != NULL, &b);
    json_decref(r);
    ck_assert_msg(tu_latch_wait(&w.reported, 1, BROWSER_MS),
                  "the page never reported its results");

    pthread_mutex_lock(&w.lock);
    report = json_loads(w.report, 0, &err);
    pthread_mutex_unlock(&w.lock);
    ck_assert_msg(report != NULL, "report is not JSON: %s", err.text);
    expect(report, "simple_allowed", "ok 200 open data");
    expect(report, "simple_disallowed", "rejected");
    expect(report, "preflight_allowed", "ok 200 put yes");
    expect(report, "preflight_disallowed", "rejected");
    expect(report, "cred_login", "ok 200 logged in");
    expect(report, "cred_who", "ok 200 sid=abc123");
    expect(report, "cred_refused", "rejected");
    json_decref(report);
    /* The refused preflight kept the PUT away; the allowed one was
     * answered by the policy (B has no OPTIONS route to answer it). */
    ck_assert_int_eq(atomic_load(&w.closed_puts), 0);
    ck_assert_int_ge(atomic_load(&w.preflights), 1);

    cdp_quit(&b, BROWSER_MS);
    vg_app_free(bapp);
    vg_app_free(a);
    vg_cors_free(open_p);
    vg_cors_free(closed_p);
    vg_cors_free(cred_p);
    free(w.report);
    pthread_mutex_destroy(&w.lock);
    tu_latch_destroy(&w.reported);
}
END_TEST

static Suite *cors_browser_suite(void)
{
    Suite *s = suite_create("cors_browser");
    TCase *tc = tcase_create("browser");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, browser_enforces_the_policies);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (access(CDP_CHROMIUM, X_OK) != 0) {
        fprintf(stderr, "test_cors_browser: SKIP: %s not found (apt-get "
                "install chromium; ./dev.sh check installs it)\n",
                CDP_CHROMIUM);
        return 77;
    }
    return tu_main(cors_browser_suite());
}
