/*
 * test_site.c - samples/site in a real browser, over HTTP and then HTTPS:
 * headless Chromium (driven through tests/cdp.c) loads the sample's page
 * (over HTTPS with a certificate made by openssl for this run), and the
 * sample's access log must show every asset (the page, its CSS, its
 * script, its image) answered 200, then 304 on reload (see visit() for
 * the document over HTTPS); the style sheet must arrive
 * compressed (Resource Timing: fewer bytes on the wire than decoded); the
 * SSE clock must tick in the page; a reload and then closing the tab must
 * each cancel the page's /clock stream (client_gone). Exits 77 (SKIP)
 * without /usr/bin/chromium or /usr/bin/openssl.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <volga.h>
#include "cdp.h"
#include "testutil.h"

#define BROWSER_MS 30000
#define ck_cdp(cond, b) ck_assert_msg((cond), "devtools: %s", (b)->err)

typedef struct {
    pid_t pid;
    int out, err;
    unsigned short port;
    char log[131072];
    size_t len;
} site_proc;

static char tmp[64], cert[128], key[128];

static bool run_openssl(void)
{
    return tu_make_cert(cert, key, "localhost");
}

/* Reads more of the sample's stderr (its access log) into s->log. */
static bool site_read(site_proc *s, int fd, int ms)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    ssize_t n;

    if (s->len + 1 >= sizeof s->log || poll(&pfd, 1, ms) != 1)
        return false;
    n = read(fd, s->log + s->len, sizeof s->log - 1 - s->len);
    if (n <= 0)
        return false;
    s->len += (size_t)n;
    s->log[s->len] = '\0';
    return true;
}

/* Waits up to `ms` for `needle` in the log after `from`. */
static const char *site_wait(site_proc *s, size_t from, const char *needle,
                             int ms)
{
    double deadline = tu_now_ms() + ms;
    const char *at;

    while ((at = strstr(s->log + from, needle)) == NULL) {
        double left = deadline - tu_now_ms();
        if (left <= 0 || !site_read(s, s->err, (int)left + 1))
            return NULL;
    }
    return at;
}

/* Starts samples/site (over HTTPS if `https`) and reads its port line. */
static void site_start(site_proc *s, bool https)
{
    const char *top = getenv("top_builddir");
    char path[512], line[256];
    char *argv[] = {path, "127.0.0.1:0", https ? "--tls" : NULL, cert, key,
                    NULL};
    int out[2], err[2];
    size_t n = 0;
    const char *p;

    snprintf(path, sizeof path, "%s/samples/site", top ? top : ".");
    ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
    s->pid = tu_spawn(argv, -1, out[1], err[1]);
    ck_assert_msg(s->pid > 0, "cannot run %s", path);
    close(out[1]);
    close(err[1]);
    s->out = out[0];
    s->err = err[0];
    s->len = 0;
    s->log[0] = '\0';
    while (n + 1 < sizeof line) {
        struct pollfd pfd = {s->out, POLLIN, 0};
        ssize_t k;
        ck_assert_msg(poll(&pfd, 1, 10000) == 1, "samples/site printed no port");
        k = read(s->out, line + n, sizeof line - 1 - n);
        ck_assert_int_gt(k, 0);
        n += (size_t)k;
        line[n] = '\0';
        if (strchr(line, '\n') != NULL)
            break;
    }
    p = strstr(line, "on port ");
    ck_assert_msg(p != NULL && (strstr(line, "https") != NULL) == https,
                  "unexpected: %s", line);
    s->port = (unsigned short)atoi(p + 8);
}

static void site_stop(site_proc *s)
{
    int st = tu_stop_child(s->pid, SIGTERM, 10000);

    close(s->out);
    close(s->err);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "samples/site did not exit cleanly (%d)", st);
}

/* Evaluates `js` (a promise) in the page; returns its value as a new
 * reference. */
static json_t *eval(cdp_browser *b, const char *session, const char *js)
{
    json_t *r = cdp_call(b, session, "Runtime.evaluate", BROWSER_MS,
                         "{s:s, s:b, s:b}", "expression", js, "awaitPromise", 1,
                         "returnByValue", 1);
    json_t *v;

    ck_cdp(r != NULL, b);
    v = json_object_get(json_object_get(r, "result"), "value");
    ck_assert_msg(v != NULL, "no value: %s", json_dumps(r, 0));
    json_incref(v);
    json_decref(r);
    return v;
}

static const char *const assets[] = {"/ ", "/style.css ", "/app.js ",
                                     "/volga.svg "};

/* Every asset from assets[first] on in the log after `from` with
 * `status`. */
static void expect_assets(site_proc *s, size_t from, size_t first,
                          const char *status)
{
    size_t i;
    char needle[64];

    for (i = first; i < sizeof assets / sizeof assets[0]; i++) {
        snprintf(needle, sizeof needle, "GET %s%s ", assets[i], status);
        ck_assert_msg(site_wait(s, from, needle, BROWSER_MS) != NULL,
                      "no \"%s\" in the log:\n%s", needle, s->log + from);
    }
}

/* Resolves once the page has shown a tick of the SSE clock. */
static const char ticked_js[] =
    "new Promise(done => { const look = () => window.volgaTicks > 0 ? "
    "done(window.volgaTicks) : setTimeout(look, 20); look(); })";

/* The style sheet's bytes on the wire and decoded (Resource Timing). */
static const char css_sizes_js[] =
    "new Promise(done => { const look = () => { const e = performance"
    ".getEntriesByType('resource').find(e => e.name.endsWith('/style.css'));"
    " if (e && e.decodedBodySize) done([e.encodedBodySize, e.decodedBodySize]);"
    " else setTimeout(look, 20); }; look(); })";

/* One visit: load, reload, close the tab. Over HTTPS the browser is
 * told to ignore this run's certificate (Security.setIgnoreCertificate
 * Errors); Chromium then fetches the document itself again on reload
 * without a validator (seen: "GET / 200"), so there the 304 is asserted
 * for the page's subresources, and over HTTP for all four. */
static void visit(cdp_browser *b, bool https)
{
    site_proc s;
    json_t *r, *v;
    char url[64], *tab, *sid;
    const char *id, *session;
    size_t mark;

    site_start(&s, https);
    snprintf(url, sizeof url, "%s://127.0.0.1:%u/", https ? "https" : "http",
             (unsigned)s.port);
    r = cdp_call(b, NULL, "Target.createTarget", BROWSER_MS, "{s:s}", "url", url);
    ck_cdp(r != NULL, b);
    id = json_string_value(json_object_get(r, "targetId"));
    ck_assert_ptr_nonnull(id);
    tab = strdup(id);
    json_decref(r);
    r = cdp_call(b, NULL, "Target.attachToTarget", BROWSER_MS, "{s:s, s:b}",
                 "targetId", tab, "flatten", 1);
    ck_cdp(r != NULL, b);
    session = json_string_value(json_object_get(r, "sessionId"));
    ck_assert_ptr_nonnull(session);
    sid = strdup(session);
    json_decref(r);

    /* First visit: everything 200, the clock ticks, CSS compressed. */
    expect_assets(&s, 0, 0, "200");
    v = eval(b, sid, ticked_js);
    ck_assert_int_gt(json_integer_value(v), 0);
    json_decref(v);
    v = eval(b, sid, css_sizes_js);
    ck_assert_msg(json_integer_value(json_array_get(v, 0)) <
                      json_integer_value(json_array_get(v, 1)),
                  "style.css was not compressed: %lld on the wire, %lld decoded",
                  json_integer_value(json_array_get(v, 0)),
                  json_integer_value(json_array_get(v, 1)));
    json_decref(v);

    /* Reload: the assets revalidated, 304; the old page's clock stream is
     * cancelled as its connection goes. */
    mark = s.len;
    r = cdp_call(b, sid, "Page.reload", BROWSER_MS, NULL);
    ck_cdp(r != NULL, b);
    json_decref(r);
    expect_assets(&s, mark, https ? 1 : 0, "304");
    ck_assert_msg(site_wait(&s, mark, " cancelled: client_gone", BROWSER_MS),
                  "the reload did not cancel /clock:\n%s", s.log + mark);

    /* Closing the tab cancels the new page's stream. */
    v = eval(b, sid, ticked_js);
    json_decref(v);
    mark = s.len;
    r = cdp_call(b, NULL, "Target.closeTarget", BROWSER_MS, "{s:s}",
                 "targetId", tab);
    ck_cdp(r != NULL, b);
    json_decref(r);
    ck_assert_msg(site_wait(&s, mark, "GET /clock 200", BROWSER_MS) &&
                      site_wait(&s, mark, " cancelled: client_gone", BROWSER_MS),
                  "closing the tab did not cancel /clock:\n%s", s.log + mark);
    free(tab);
    free(sid);
    site_stop(&s);
}

START_TEST(test_site_assets_200_then_304)
{
    cdp_browser b;
    json_t *r;

    ck_cdp(cdp_launch(&b, CDP_CHROMIUM), &b);
    snprintf(tmp, sizeof tmp, "/tmp/vg-site.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    snprintf(cert, sizeof cert, "%s/cert.pem", tmp);
    snprintf(key, sizeof key, "%s/key.pem", tmp);
    ck_assert_msg(run_openssl(), "openssl req failed");
    /* The certificate is this run's own: trust it for this browser only. */
    r = cdp_call(&b, NULL, "Security.setIgnoreCertificateErrors", BROWSER_MS,
                 "{s:b}", "ignore", 1);
    ck_cdp(r != NULL, &b);
    json_decref(r);
    visit(&b, false);
    visit(&b, true);
    cdp_quit(&b, BROWSER_MS);
    tu_remove_tree(tmp);
}
END_TEST

int main(void)
{
    Suite *s;
    TCase *tc;

    if (access(CDP_CHROMIUM, X_OK) != 0 || access("/usr/bin/openssl", X_OK) != 0) {
        fprintf(stderr, "SKIP: test_site needs %s and /usr/bin/openssl "
                        "(apt-get install chromium openssl)\n", CDP_CHROMIUM);
        return 77;
    }
    s = suite_create("site");
    tc = tcase_create("browser");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_site_assets_200_then_304);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
