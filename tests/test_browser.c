/*
 * test_browser.c - cancellation as a real browser causes it: headless
 * Chromium opens a page, the page's script starts a request, the test
 * closes the tab, and the server must see its token cancelled with
 * VG_CANCEL_CLIENT_GONE.
 *
 *  - fetch_cancelled_when_tab_closes: an app in this process serves a page
 *    whose script calls fetch('/long-task'); that handler waits on its
 *    token. Closing the tab must wake it with client_gone.
 *  - sse_clock_page_stops_producer: the samples/sse_clock program, run as
 *    a process. Its page subscribes to /clock with EventSource; once the
 *    page shows a tick, closing the tab must make the sample log that the
 *    stream's client left (client_gone), that its producer stopped, and an
 *    access line for /clock ending in "cancelled: client_gone".
 *  - browser_form_upload_streams_files: a page with a multipart form (a
 *    note and a file input taking several files); the test gives the
 *    input two files (DOM.setFileInputFiles) and submits the form, so the
 *    multipart body is the one Chromium builds; the uploads route must see
 *    the note and both files, names and bytes as on disk.
 *
 * The browser is driven over the DevTools protocol (see cdp.h). Nothing
 * sleeps to synchronise: the test waits on latches, on the protocol's
 * replies and on the sample's log, each bounded by seconds only to catch
 * hangs. Without /usr/bin/chromium the program exits 77 (automake's SKIP)
 * and says why; any other failure to start the browser is a failure.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <volga.h>
#include "cdp.h"
#include "testutil.h"


/* Bound on each thing the browser does: start and open a tab, load a page,
 * run a script, close a tab. Each takes under a second on an idle machine
 * but has taken 10 s on a loaded one; this only catches hangs. */
#define BROWSER_MS 30000
/* The longest the /long-task handler waits for its token. Longer than
 * BROWSER_MS, so a token that never fires shows as "not cancelled", not
 * as a handler that gave up first. */
#define HANDLER_MS 45000

/* Fails the test with the browser's last error unless `cond` holds. */
#define ck_cdp(cond, b) ck_assert_msg((cond), "devtools: %s", (b)->err)

static void launch(cdp_browser *b)
{
    ck_cdp(cdp_launch(b, CDP_CHROMIUM), b);
}

/* Opens `url` in a new tab; returns its target id (malloc'd). */
static char *open_tab(cdp_browser *b, const char *url)
{
    json_t *r = cdp_call(b, NULL, "Target.createTarget", BROWSER_MS,
                         "{s:s}", "url", url);
    const char *id;
    char *copy;

    ck_cdp(r != NULL, b);
    id = json_string_value(json_object_get(r, "targetId"));
    ck_assert_ptr_nonnull(id);
    copy = strdup(id);
    json_decref(r);
    return copy;
}

/* Closes the tab, as a user closing it would: its page and every request
 * the page has open go away. */
static void close_tab(cdp_browser *b, const char *target)
{
    json_t *r = cdp_call(b, NULL, "Target.closeTarget", BROWSER_MS,
                         "{s:s}", "targetId", target);
    ck_cdp(r != NULL, b);
    json_decref(r);
}

/* ------------------------------------------------------------------------
 * A page that fetches /long-task, served by this process
 */

static const char fetch_page[] =
    "<!doctype html>\n<meta charset=utf-8>\n<title>long task</title>\n"
    "<p id=out>waiting for /long-task...</p>\n<script>\n"
    "fetch('/long-task').then(r => r.text())\n"
    "  .then(t => document.getElementById('out').textContent = t);\n"
    "</script>\n";

typedef struct {
    tu_latch started;       /* the handler runs */
    tu_latch finished;      /* it recorded what it saw */
    atomic_int calls;
    /* Written by the handler before `finished`, read after it. */
    bool woke;              /* its token fired (not the HANDLER_MS bound) */
    vg_cancel_reason reason;
    double woke_ms;
} long_task;

static vg_result *serve_page(vg_request *req, void *arg)
{
    (void)req;
    return vg_result_set_header(vg_text(arg), "Content-Type",
                                "text/html; charset=utf-8");
}

static vg_result *serve_long_task(vg_request *req, void *arg)
{
    long_task *lt = arg;
    vg_token *tok = vg_request_token(req);

    atomic_fetch_add(&lt->calls, 1);
    tu_latch_add(&lt->started, 1);
    lt->woke = vg_token_wait(tok, HANDLER_MS);
    lt->woke_ms = tu_now_ms();
    lt->reason = vg_token_reason(tok);
    tu_latch_add(&lt->finished, 1);
    return vg_text("done\n");
}

START_TEST(fetch_cancelled_when_tab_closes)
{
    cdp_browser b;
    long_task lt = {0};
    vg_app *app;
    vg_stats st;
    char url[64], *tab;
    double closed_ms;

    /* The browser is forked before the app starts its threads. */
    launch(&b);
    tu_latch_init(&lt.started);
    tu_latch_init(&lt.finished);
    app = tu_app_new();
    ck_assert_int_eq(vg_map_get(app, "/", serve_page, (void *)fetch_page), 0);
    ck_assert_int_eq(vg_map_get(app, "/long-task", serve_long_task, &lt), 0);
    tu_start(app);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", (unsigned)vg_app_port(app));

    tab = open_tab(&b, url);
    ck_assert_msg(tu_latch_wait(&lt.started, 1, BROWSER_MS),
                  "the page's fetch('/long-task') never reached the server");
    /* Still running: nothing has cancelled it before the tab closes. */
    ck_assert(!tu_latch_wait(&lt.finished, 1, 0));
    close_tab(&b, tab);
    closed_ms = tu_now_ms();

    ck_assert_msg(tu_latch_wait(&lt.finished, 1, HANDLER_MS + 5000),
                  "the /long-task handler never returned");
    ck_assert_msg(lt.woke, "closing the tab did not cancel /long-task");
    ck_assert_str_eq(vg_cancel_reason_name(lt.reason),
                     vg_cancel_reason_name(VG_CANCEL_CLIENT_GONE));
    ck_assert_int_eq(atomic_load(&lt.calls), 1);
    /* At least: the browser may drop another request of the page (such as
     * a favicon) with the tab, which the library may count too. */
    vg_app_stats(app, &st);
    ck_assert_uint_ge(st.cancelled_client_gone, 1);
    fprintf(stderr, "test_browser: /long-task cancelled (client_gone) "
            "%.1f ms after Target.closeTarget returned\n",
            lt.woke_ms - closed_ms);

    free(tab);
    cdp_quit(&b, BROWSER_MS);
    vg_app_free(app);
    tu_latch_destroy(&lt.started);
    tu_latch_destroy(&lt.finished);
}
END_TEST

/* ------------------------------------------------------------------------
 * samples/sse_clock, run as a process
 */

typedef struct {
    tu_sample proc;         /* its stderr is on proc.err */
    char log[65536];        /* everything read from stderr so far */
    size_t len;
} sample;

/* Reads more of the sample's stderr into s->log; false on EOF, error or
 * when `ms` pass without any. */
static bool sample_read_log(sample *s, int ms)
{
    struct pollfd pfd = {s->proc.err, POLLIN, 0};
    ssize_t n;

    if (s->len + 1 >= sizeof s->log || poll(&pfd, 1, ms) != 1)
        return false;
    n = read(s->proc.err, s->log + s->len, sizeof s->log - 1 - s->len);
    if (n <= 0)
        return false;
    s->len += (size_t)n;
    s->log[s->len] = '\0';
    return true;
}

/* Waits up to `ms` for `needle` in the log at or after offset `from`;
 * returns where it starts, or NULL. */
static const char *sample_wait_log(sample *s, size_t from, const char *needle,
                                   int ms)
{
    double deadline = tu_now_ms() + ms;
    const char *at;

    while ((at = strstr(s->log + from, needle)) == NULL) {
        double left = deadline - tu_now_ms();
        if (left <= 0 || !sample_read_log(s, (int)left + 1))
            return NULL;
    }
    return at;
}

/* Starts samples/sse_clock with its stderr (its log) on a pipe. */
static void sample_start(sample *s)
{
    s->len = 0;
    s->log[0] = '\0';
    tu_sample_start(&s->proc, "sse_clock", true);
}

/* Resolves with the text of the page's newest tick once it shows one.
 * Evaluated only after the sample has seen the page's EventSource connect,
 * so the page's document is the final one (no navigation can discard the
 * promise). */
static const char first_tick_js[] =
    "new Promise(done => {\n"
    "  const look = () => {\n"
    "    const li = document.querySelector('#log li');\n"
    "    if (li) done(li.textContent); else setTimeout(look, 20);\n"
    "  };\n"
    "  look();\n"
    "})";

START_TEST(sse_clock_page_stops_producer)
{
    cdp_browser b;
    sample s;
    json_t *r;
    static const char gone[] = " cancelled: client_gone";
    const char *session, *tick, *at, *eol;
    char url[64], *tab, *sid;
    size_t closed_at;

    launch(&b);
    sample_start(&s);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", (unsigned)s.proc.port);
    tab = open_tab(&b, url);
    ck_assert_msg(sample_wait_log(&s, 0, "sse_clock: stream 1 opened\n",
                                  BROWSER_MS) != NULL,
                  "the page never opened /clock; sample log:\n%s", s.log);

    /* The page shows a tick: the browser reads the stream. */
    r = cdp_call(&b, NULL, "Target.attachToTarget", BROWSER_MS, "{s:s, s:b}",
                 "targetId", tab, "flatten", 1);
    ck_cdp(r != NULL, &b);
    session = json_string_value(json_object_get(r, "sessionId"));
    ck_assert_ptr_nonnull(session);
    sid = strdup(session);
    json_decref(r);
    r = cdp_call(&b, sid, "Runtime.evaluate", BROWSER_MS, "{s:s, s:b, s:b}",
                 "expression", first_tick_js, "awaitPromise", 1,
                 "returnByValue", 1);
    ck_cdp(r != NULL, &b);
    tick = json_string_value(json_object_get(json_object_get(r, "result"),
                                             "value"));
    ck_assert_msg(tick != NULL && strncmp(tick, "tick ", 5) == 0,
                  "the page shows no tick: %s",
                  json_dumps(r, JSON_COMPACT)); /* leaks only on failure */
    json_decref(r);

    /* Nothing has ended the stream before the tab closes (read all the
     * sample has logged so far first). */
    while (sample_read_log(&s, 0))
        ;
    ck_assert_ptr_null(strstr(s.log, "client left"));
    ck_assert_ptr_null(strstr(s.log, "producer stopped"));
    closed_at = s.len;
    close_tab(&b, tab);

    ck_assert_msg(sample_wait_log(&s, closed_at,
                                  "sse_clock: stream 1: client left (client_gone)\n",
                                  BROWSER_MS) != NULL,
                  "no client_gone cancellation after the tab closed; "
                  "sample log:\n%s", s.log);
    ck_assert_msg(sample_wait_log(&s, closed_at,
                                  "sse_clock: stream 1: producer stopped",
                                  BROWSER_MS) != NULL,
                  "the producer did not stop; sample log:\n%s", s.log);
    at = sample_wait_log(&s, closed_at, "volga: info: GET /clock 200 ",
                         BROWSER_MS);
    ck_assert_msg(at != NULL, "no access line for /clock; sample log:\n%s",
                  s.log);
    eol = sample_wait_log(&s, (size_t)(at - s.log), "\n", BROWSER_MS);
    ck_assert_ptr_nonnull(eol);
    ck_assert_msg((size_t)(eol - at) > strlen(gone) &&
                  strncmp(eol - strlen(gone), gone, strlen(gone)) == 0,
                  "access line: %.*s", (int)(eol - at), at);

    free(sid);
    free(tab);
    cdp_quit(&b, BROWSER_MS);
    tu_sample_stop(&s.proc);
}
END_TEST

/* ------------------------------------------------------------------------
 * A form submitted by the browser to an uploads route
 */

static const char form_page[] =
    "<!doctype html>\n<meta charset=utf-8>\n<title>upload</title>\n"
    "<form method=post action=/up enctype=multipart/form-data>\n"
    "<input type=text name=note value='from the browser'>\n"
    "<input type=file name=file multiple>\n</form>\n";

typedef struct {
    tu_latch done;
    char seen[1024]; /* written by the handler before `done` */
} form_seen;

static int note_upload(const vg_upload *u, void *arg)
{
    char *out = arg, buf[64];
    ssize_t n = pread(vg_upload_fd(u), buf, sizeof buf - 1, 0);
    size_t used = strlen(out);

    buf[n > 0 ? n : 0] = '\0';
    snprintf(out + used, 1024 - used, "%s|%s|%zu|%s\n", vg_upload_name(u),
             vg_upload_filename(u), vg_upload_size(u), buf);
    return 0;
}

static vg_result *take_form(vg_request *req, void *arg)
{
    form_seen *fs = arg;
    const char *note = vg_request_form(req, "note");

    snprintf(fs->seen, sizeof fs->seen, "note=%s\n", note ? note : "-");
    vg_request_uploads(req, note_upload, fs->seen);
    tu_latch_add(&fs->done, 1);
    return vg_text("stored\n");
}

/* Writes `text` to `dir`/`name`; returns the path (malloc'd). */
static char *write_file(const char *dir, const char *name, const char *text)
{
    char *path;
    FILE *f;

    ck_assert_int_gt(asprintf(&path, "%s/%s", dir, name), 0);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static const char find_input_js[] =
    "new Promise(ok => {\n"
    "  const look = () => document.querySelector('input[type=file]')\n"
    "    ? ok(document.querySelector('input[type=file]'))\n"
    "    : setTimeout(look, 20);\n"
    "  look();\n"
    "})";

START_TEST(browser_form_upload_streams_files)
{
    cdp_browser b;
    form_seen fs;
    vg_app *app;
    json_t *r;
    char url[64], *tab, *sid, *a, *c;
    const char *session, *object;
    char updir[] = "/tmp/volga-browser-up-XXXXXX";
    char srcdir[] = "/tmp/volga-browser-src-XXXXXX";

    launch(&b);
    memset(&fs, 0, sizeof fs);
    tu_latch_init(&fs.done);
    ck_assert_ptr_nonnull(mkdtemp(updir));
    ck_assert_ptr_nonnull(mkdtemp(srcdir));
    a = write_file(srcdir, "a.txt", "first file\n");
    c = write_file(srcdir, "c d.csv", "x,y\n1,2\n");
    app = tu_app_new();
    ck_assert_int_eq(vg_map_get(app, "/", serve_page, (void *)form_page), 0);
    ck_assert_int_eq(vg_map_post(app, "/up", take_form, &fs), 0);
    ck_assert_int_eq(vg_map_uploads(app, "POST", "/up", updir), 0);
    tu_start(app);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", (unsigned)vg_app_port(app));

    tab = open_tab(&b, url);
    r = cdp_call(&b, NULL, "Target.attachToTarget", BROWSER_MS, "{s:s, s:b}",
                 "targetId", tab, "flatten", 1);
    ck_cdp(r != NULL, &b);
    session = json_string_value(json_object_get(r, "sessionId"));
    ck_assert_ptr_nonnull(session);
    sid = strdup(session);
    json_decref(r);
    /* The file input, once the page has it, as a remote object. The tab
     * may still be on about:blank when attached: its context is destroyed
     * by the navigation to the page, and the evaluation is asked again
     * (each try bounded, a few tries). */
    for (int tries = 0; tries < 20; tries++) {
        r = cdp_call(&b, sid, "Runtime.evaluate", BROWSER_MS, "{s:s, s:b}",
                     "expression", find_input_js, "awaitPromise", 1);
        if (r != NULL || strstr(b.err, "context was destroyed") == NULL)
            break;
    }
    ck_cdp(r != NULL, &b);
    object = json_string_value(json_object_get(json_object_get(r, "result"),
                                               "objectId"));
    ck_assert_ptr_nonnull(object);
    /* ...given two files, as a user picking them would. */
    {
        json_t *set = cdp_call(&b, sid, "DOM.setFileInputFiles", BROWSER_MS,
                               "{s:[s,s], s:s}", "files", a, c, "objectId",
                               object);
        ck_cdp(set != NULL, &b);
        json_decref(set);
    }
    json_decref(r);
    /* Submitted after the reply, so that the navigation it starts does not
     * destroy the context the evaluation answers from. */
    r = cdp_call(&b, sid, "Runtime.evaluate", BROWSER_MS, "{s:s}",
                 "expression", "setTimeout(() => document.forms[0].submit(), 0)");
    ck_cdp(r != NULL, &b);
    json_decref(r);

    ck_assert_msg(tu_latch_wait(&fs.done, 1, BROWSER_MS),
                  "the form never reached the upload route");
    ck_assert_str_eq(fs.seen, "note=from the browser\n"
                              "file|a.txt|11|first file\n\n"
                              "file|c d.csv|8|x,y\n1,2\n\n");

    free(sid);
    free(tab);
    cdp_quit(&b, BROWSER_MS);
    vg_app_free(app);
    tu_latch_destroy(&fs.done);
    free(a);
    free(c);
    tu_remove_tree(srcdir);
    tu_remove_tree(updir);
}
END_TEST

static Suite *browser_suite(void)
{
    Suite *s = suite_create("browser");
    TCase *tc = tcase_create("browser");

    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, fetch_cancelled_when_tab_closes);
    tcase_add_test(tc, sse_clock_page_stops_producer);
    tcase_add_test(tc, browser_form_upload_streams_files);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (access(CDP_CHROMIUM, X_OK) != 0) {
        fprintf(stderr, "test_browser: SKIP: %s not found (apt-get install "
                "chromium; ./dev.sh check installs it)\n", CDP_CHROMIUM);
        return 77;
    }
    return tu_main(browser_suite());
}
