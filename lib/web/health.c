/* health.c - liveness and readiness endpoints.
 *
 * Liveness answers 200 inline: the process runs its event threads.
 * Readiness runs the application's checks (a database ping, say), but a
 * probe must answer within its timeout even when a check hangs, so the
 * checks never run on the probe's own thread: a dedicated thread
 * ("vg-health") runs one round at a time, and the probe (a handler on a
 * worker) waits for the round up to the timeout. The round's token is a
 * vg_token_child_timeout due when the probe that asked for the round
 * gives up, so at the timeout it cancels itself with VG_CANCEL_TIMEOUT
 * (a check can tell a deadline from any other stop, and forward
 * vg_token_remaining_ms), checks that watch it stop, and every probe
 * waiting for the round answers 503 at once. A check that ignores its
 * token only keeps the health thread busy: until it returns, probes join
 * its round, already timed out, and answer 503 at once. A round's answer
 * is cached (1 s by default), so probes from many load balancers cost one
 * round per second.
 *
 * From vg_app_stop on, readiness answers 503 without running anything
 * (vg_app_stopping), which together with vg_app_set_drain_delay lets a
 * load balancer take the instance out before connections are refused. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <volga.h>

#include "core/clock.h"
#include "core/thread.h"

typedef struct {
    char *name;
    vg_health_check_fn fn;
    void *arg;
} vg__hcheck;

struct vg_health {
    vg__hcheck *checks;
    size_t n;
    unsigned timeout_ms, cache_ms;
    const vg_app *app;

    pthread_mutex_t lock;
    pthread_cond_t wake;       /* the health thread waits here */
    pthread_cond_t done;       /* probes wait here for a round */
    pthread_t thread;
    bool started, closing;
    bool want;                 /* a probe asked for a round */
    bool running;              /* a round is under way */
    unsigned long long rounds; /* finished rounds */
    bool last_late;            /* the last round's token timed out */
    uint64_t round_due;        /* when the asking probe gives up */
    vg_token *root;            /* the parent of every round's token */
    vg_token *round_tok;       /* the running round's, while it runs (the
                                  health thread owns the reference) */
    uint64_t cached_at;        /* when the last round ended, 0: never */
    bool ready;                /* the last round's verdict */
    char *body;                /* the last round's JSON */
};

/* ---- Rounds (the health thread) ---- */

/* Runs every check with `tok` and returns the JSON report, malloc'd (NULL
 * without memory: reported as not ready). */
static char *vg__health_round(vg_health *h, vg_token *tok, bool *ready)
{
    json_t *doc = json_object(), *checks = json_object();
    char *text;
    size_t i;
    int rc;

    *ready = true;
    for (i = 0; i < h->n; i++) {
        const char *verdict;
        if (vg_token_is_cancelled(tok)) {
            verdict = "timeout"; /* not run: the round is over */
        } else {
            rc = h->checks[i].fn(tok, h->checks[i].arg);
            verdict = rc == 0 ? "ok" : vg_token_is_cancelled(tok) ? "timeout"
                                                                  : "fail";
        }
        if (strcmp(verdict, "ok") != 0)
            *ready = false;
        json_object_set_new(checks, h->checks[i].name, json_string(verdict));
    }
    json_object_set_new(doc, "status", json_string(*ready ? "ok" : "fail"));
    json_object_set_new(doc, "checks", checks);
    text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(doc);
    if (text == NULL)
        *ready = false;
    return text;
}

/* The round's token timed out (on the "vg-timer" thread): wakes the probes
 * waiting for the round, which answer 503 at once. */
static void vg__health_late(vg_token *tok, void *arg)
{
    vg_health *h = arg;

    (void)tok;
    pthread_mutex_lock(&h->lock);
    pthread_cond_broadcast(&h->done);
    pthread_mutex_unlock(&h->lock);
}

/* The round's token: due when the probe that asked gives up (born
 * cancelled if that has passed already), with vg__health_late watching it.
 * NULL without memory or a timer thread. Called without the lock: a
 * token born cancelled runs vg__health_late at once. */
static vg_token *vg__health_round_token(vg_health *h, uint64_t due,
                                        unsigned long *late_id)
{
    uint64_t now = vg__clock_ns();
    unsigned ms = due > now ? (unsigned)((due - now + 999999u) / 1000000u) : 0;
    vg_token *tok = vg_token_child_timeout(h->root, ms);

    *late_id = tok ? vg_token_on_cancel(tok, vg__health_late, h) : 0;
    return tok;
}

static void *vg__health_main(void *arg)
{
    vg_health *h = arg;
    unsigned long late_id;
    vg_token *tok;
    uint64_t due;
    char *body;
    bool ready;

    vg__thread_name("vg-health");
    pthread_mutex_lock(&h->lock);
    for (;;) {
        while (!h->want && !h->closing)
            pthread_cond_wait(&h->wake, &h->lock);
        if (h->closing)
            break;
        h->want = false;
        due = h->round_due;
        pthread_mutex_unlock(&h->lock);
        tok = vg__health_round_token(h, due, &late_id);
        pthread_mutex_lock(&h->lock);
        h->round_tok = tok;
        pthread_mutex_unlock(&h->lock);

        body = tok ? vg__health_round(h, tok, &ready) : NULL;
        if (body == NULL)
            ready = false;
        /* Outside the lock, which the callback takes: once off returns,
         * no callback of this round runs any more (vg_health_free may
         * follow). The reference is dropped outside it too, since freeing
         * a timed token waits for its timer callback. */
        if (late_id != 0)
            vg_token_off(tok, late_id);

        pthread_mutex_lock(&h->lock);
        h->round_tok = NULL;
        h->last_late = tok && vg_token_reason(tok) == VG_CANCEL_TIMEOUT;
        free(h->body);
        h->body = body;
        h->ready = ready;
        h->cached_at = vg__clock_ns();
        h->running = false;
        h->rounds++;
        pthread_cond_broadcast(&h->done);
        pthread_mutex_unlock(&h->lock);
        vg_token_unref(tok);
        pthread_mutex_lock(&h->lock);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

/* ---- Probes (workers, and an event thread for liveness) ---- */

static vg_result *vg__health_answer(bool ready, const char *body)
{
    vg_result *res = vg_text(body ? body : "{\"status\":\"fail\"}");

    res = vg_result_set_header(res, "Content-Type", "application/json");
    res = vg_result_set_header(res, "Cache-Control", "no-store");
    return vg_result_set_status(res, ready ? 200 : 503);
}

static vg_result *vg__health_ready(vg_request *req, void *arg)
{
    vg_health *h = arg;
    struct timespec until;
    unsigned long long seen;
    uint64_t timeout_ns, now;
    vg_result *res;
    bool fresh;

    (void)req;
    if (vg_app_stopping(h->app))
        return vg__health_answer(false, "{\"status\":\"stopping\"}");
    if (h->n == 0)
        return vg__health_answer(true, "{\"status\":\"ok\",\"checks\":{}}");
    timeout_ns = (uint64_t)h->timeout_ms * 1000000u;
    vg__clock_deadline(&until, timeout_ns);
    pthread_mutex_lock(&h->lock);
    now = vg__clock_ns();
    fresh = h->cached_at != 0 &&
            now - h->cached_at < (uint64_t)h->cache_ms * 1000000u;
    if (!fresh) {
        if (!h->running) {
            h->running = true;
            h->want = true;
            h->round_due = now + timeout_ns;
            pthread_cond_signal(&h->wake);
        }
        /* Until the round ends, its token times out (the round's own
         * deadline, maybe nearer than ours if we joined it late) or our
         * timeout passes (the round has not started, say). */
        seen = h->rounds;
        while (h->rounds == seen &&
               !(h->round_tok && vg_token_is_cancelled(h->round_tok)))
            if (pthread_cond_timedwait(&h->done, &h->lock, &until) ==
                ETIMEDOUT)
                break;
        /* The round is late; its token stops it (VG_CANCEL_TIMEOUT) by
         * itself, at our deadline or a moment later, and its checks may
         * then end it before we look: the answer is "timeout" either
         * way (the cached report names the checks cut short). */
        if (h->rounds == seen || (h->rounds == seen + 1 && h->last_late)) {
            pthread_mutex_unlock(&h->lock);
            return vg__health_answer(false, "{\"status\":\"timeout\"}");
        }
    }
    res = vg__health_answer(h->ready, h->body);
    pthread_mutex_unlock(&h->lock);
    return res;
}

static vg_result *vg__health_live(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_result_set_header(vg_text("{\"status\":\"ok\"}"),
                                "Content-Type", "application/json");
}

/* ---- Configuration ---- */

vg_health *vg_health_new(void)
{
    vg_health *h = calloc(1, sizeof *h);

    if (h == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    h->root = vg_token_new();
    if (h->root == NULL) {
        free(h);
        errno = ENOMEM;
        return NULL;
    }
    h->timeout_ms = 1000;
    h->cache_ms = 1000;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->wake, NULL);
    vg__cond_init_monotonic(&h->done);
    return h;
}

void vg_health_free(vg_health *h)
{
    size_t i;

    if (h == NULL)
        return;
    if (h->started) {
        pthread_mutex_lock(&h->lock);
        h->closing = true;
        pthread_cond_signal(&h->wake);
        pthread_mutex_unlock(&h->lock);
        /* Waits for a check still running: its code may not outlive us. */
        pthread_join(h->thread, NULL);
    }
    for (i = 0; i < h->n; i++)
        free(h->checks[i].name);
    free(h->checks);
    free(h->body);
    vg_token_unref(h->root);
    pthread_cond_destroy(&h->wake);
    pthread_cond_destroy(&h->done);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

int vg_health_add_check(vg_health *h, const char *name, vg_health_check_fn fn,
                        void *arg)
{
    vg__hcheck *grown;
    char *copy;

    if (h == NULL || name == NULL || *name == '\0' || fn == NULL)
        return -EINVAL;
    if (h->app != NULL)
        return -EBUSY;
    copy = strdup(name);
    grown = copy ? realloc(h->checks, (h->n + 1) * sizeof *grown) : NULL;
    if (grown == NULL) {
        free(copy);
        return -ENOMEM;
    }
    h->checks = grown;
    h->checks[h->n].name = copy;
    h->checks[h->n].fn = fn;
    h->checks[h->n].arg = arg;
    h->n++;
    return 0;
}

int vg_health_set_timeout(vg_health *h, unsigned ms)
{
    if (h == NULL || ms == 0)
        return -EINVAL;
    if (h->app != NULL)
        return -EBUSY;
    h->timeout_ms = ms;
    return 0;
}

int vg_health_set_cache(vg_health *h, unsigned ms)
{
    if (h == NULL)
        return -EINVAL;
    if (h->app != NULL)
        return -EBUSY;
    h->cache_ms = ms;
    return 0;
}

int vg_app_use_health(vg_app *app, vg_health *h, const char *livez,
                      const char *readyz)
{
    int rc;

    if (app == NULL || h == NULL || (livez == NULL && readyz == NULL))
        return -EINVAL;
    if (h->app != NULL)
        return -EBUSY;
    if (livez != NULL) {
        rc = vg_map_get(app, livez, vg__health_live, h);
        if (rc == 0)
            rc = vg_map_inline(app, "GET", livez, true);
        if (rc != 0)
            return rc;
    }
    if (readyz != NULL) {
        rc = vg_map_get(app, readyz, vg__health_ready, h);
        /* The probe's own deadline is the health timeout, not the app's. */
        if (rc == 0)
            rc = vg_map_timeout(app, "GET", readyz, 0);
        if (rc != 0)
            return rc;
        if (h->n > 0) {
            rc = pthread_create(&h->thread, NULL, vg__health_main, h);
            if (rc != 0)
                return -rc;
            h->started = true;
        }
    }
    h->app = app;
    return 0;
}
