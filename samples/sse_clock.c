/* sse_clock.c - a Server-Sent Events stream of clock ticks, with a page
 * that shows them. Open http://localhost:7878/ in a browser; close the tab
 * and the server logs that the stream's producer stopped.
 *
 *   ./samples/sse_clock [address]          (default localhost:7878)
 *   curl -N localhost:7878/clock           # ticks every second
 *
 * One ticker thread serves every stream: a stream holds no thread of its
 * own. A stream whose client left is noticed at once (its token's cancel
 * callback logs it) and dropped by the ticker, whose write then fails.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <volga.h>

static const char page[] =
    "<!doctype html>\n<meta charset=utf-8>\n<title>volga clock</title>\n"
    "<h1 id=clock>connecting...</h1>\n<ol id=log></ol>\n<script>\n"
    "const es = new EventSource('/clock');\n"
    "es.addEventListener('tick', e => {\n"
    "  document.getElementById('clock').textContent = e.data;\n"
    "  const li = document.createElement('li');\n"
    "  li.textContent = 'tick ' + e.lastEventId + ': ' + e.data;\n"
    "  document.getElementById('log').prepend(li);\n"
    "});\n</script>\n";

typedef struct sub {
    struct sub *next;
    vg_stream *stream;
    unsigned long id;
} sub;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static sub *subs;
static unsigned long next_id = 1;

static vg_result *index_page(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_result_set_header(vg_text(page), "Content-Type",
                                "text/html; charset=utf-8");
}

static void on_gone(vg_token *tok, void *arg)
{
    fprintf(stderr, "sse_clock: stream %lu: client left (%s)\n",
            (unsigned long)(size_t)arg, vg_cancel_reason_name(vg_token_reason(tok)));
}

static vg_result *clock_stream(vg_request *req, void *arg)
{
    sub *s = calloc(1, sizeof *s);
    vg_result *res;

    (void)arg;
    if (s == NULL)
        return vg_result_set_status(vg_text("out of memory\n"), 503);
    res = vg_sse_new(req, &s->stream);
    if (res == NULL) {
        free(s);
        return NULL;
    }
    vg_sse_retry(s->stream, 2000);
    pthread_mutex_lock(&lock);
    s->id = next_id++;
    s->next = subs;
    subs = s;
    pthread_mutex_unlock(&lock);
    vg_token_on_cancel(vg_stream_token(s->stream), on_gone,
                       (void *)(size_t)s->id);
    fprintf(stderr, "sse_clock: stream %lu opened\n", s->id);
    return res;
}

/* Sends one tick to every stream; drops those whose client is gone. */
static void tick(unsigned long n)
{
    char now[64], id[32];
    time_t t = time(NULL);
    struct tm tm;
    sub **pp, *s;

    strftime(now, sizeof now, "%H:%M:%S", localtime_r(&t, &tm));
    snprintf(id, sizeof id, "%lu", n);
    pthread_mutex_lock(&lock);
    for (pp = &subs; (s = *pp) != NULL;) {
        int rc = vg_sse_event(s->stream, "tick", now, id);
        if (rc == 0 || rc == -EAGAIN) { /* -EAGAIN: a slow reader skips one */
            pp = &s->next;
            continue;
        }
        fprintf(stderr, "sse_clock: stream %lu: producer stopped (%s)\n",
                s->id, strerror(-rc));
        *pp = s->next;
        vg_stream_end(s->stream);
        free(s);
    }
    pthread_mutex_unlock(&lock);
}

static void *ticker(void *arg)
{
    vg_token *stop = arg;
    unsigned long n = 0;

    while (!vg_token_wait(stop, 1000))
        tick(++n);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *address = argc > 1 ? argv[1] : "localhost:7878";
    vg_app *app = vg_app_new(address);
    vg_token *stop = vg_token_new();
    pthread_t thread;
    sub *s;
    int rc = 1;

    if (app == NULL || stop == NULL) {
        perror("sse_clock");
        goto out;
    }
    vg_app_set_logger(app, vg_log_stderr, NULL, VG_LOG_INFO);
    if (vg_map_get(app, "/", index_page, NULL) != 0 ||
        vg_map_get(app, "/clock", clock_stream, NULL) != 0)
        goto out;
    rc = vg_app_start(app);
    if (rc != 0) {
        fprintf(stderr, "sse_clock: cannot start on %s: %s\n", address,
                strerror(-rc));
        rc = 1;
        goto out;
    }
    if (pthread_create(&thread, NULL, ticker, stop) != 0) {
        rc = 1;
        goto out;
    }
    printf("sse_clock: listening on port %u\n", (unsigned)vg_app_port(app));
    fflush(stdout);
    rc = vg_app_run(app) == 0 ? 0 : 1;
    vg_token_cancel(stop);
    pthread_join(thread, NULL);
out:
    /* Streams are ended before the app is freed. */
    pthread_mutex_lock(&lock);
    while ((s = subs) != NULL) {
        subs = s->next;
        vg_stream_end(s->stream);
        free(s);
    }
    pthread_mutex_unlock(&lock);
    vg_app_free(app);
    vg_token_unref(stop);
    return rc;
}
