/* long_poll.c - clients wait for a message that another request posts,
 * holding no thread while they wait (vg_defer / vg_request_finish).
 *
 *   ./samples/long_poll [address]          (default localhost:7878)
 *   curl localhost:7878/messages/wait &    # waits (up to 30 s: then 504)
 *   curl -d 'hello' localhost:7878/messages      # every waiter gets "hello"
 *
 * A waiter whose client leaves (or whose deadline passes) is dropped at
 * once through its token's cancel callback.
 */
#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <volga.h>

typedef enum { PENDING, LISTED, CANCELLED_EARLY, TAKEN } waiter_state;

typedef struct waiter {
    struct waiter *next, *prev;
    vg_request *req;
    unsigned long cb;        /* the cancel callback's id */
    waiter_state state;      /* guarded by `lock` */
} waiter;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static waiter *waiters;      /* LISTED waiters, doubly linked */

static void unlink_waiter(waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
}

/* The waiter's client left or its deadline passed. Whoever moves a waiter
 * out of LISTED finishes it, so each request is finished exactly once. */
static void on_cancel(vg_token *tok, void *arg)
{
    waiter *w = arg;
    bool mine = false;

    pthread_mutex_lock(&lock);
    if (w->state == LISTED) {
        unlink_waiter(w);
        w->state = TAKEN;
        mine = true;
    } else if (w->state == PENDING) {
        w->state = CANCELLED_EARLY; /* the handler sees it and gives up */
    }
    pthread_mutex_unlock(&lock);
    if (!mine)
        return;
    fprintf(stderr, "long_poll: waiter dropped: %s\n",
            vg_cancel_reason_name(vg_token_reason(tok)));
    vg_request_finish(w->req, NULL); /* -ECANCELED: nobody to answer */
    free(w);
}

static vg_result *wait_message(vg_request *req, void *arg)
{
    vg_token *tok = vg_request_token(req);
    waiter *w = calloc(1, sizeof *w);
    vg_result *res;

    (void)arg;
    if (w == NULL)
        return vg_result_set_status(vg_text("out of memory\n"), 503);
    w->req = req;
    w->state = PENDING;
    /* Registered before the waiter is listed, and outside the lock: if the
     * token is already cancelled the callback runs right here. */
    w->cb = vg_token_on_cancel(tok, on_cancel, w);
    pthread_mutex_lock(&lock);
    if (w->state == CANCELLED_EARLY || w->cb == 0) {
        pthread_mutex_unlock(&lock);
        vg_token_off(tok, w->cb);
        free(w);
        return NULL; /* the client is gone: nothing to answer */
    }
    w->state = LISTED;
    w->prev = NULL;
    w->next = waiters;
    if (waiters)
        waiters->prev = w;
    waiters = w;
    /* Deferred under the lock, so no poster can finish it first; `req` is
     * not touched after this. */
    res = vg_defer(req);
    pthread_mutex_unlock(&lock);
    return res;
}

static vg_result *post_message(vg_request *req, void *arg)
{
    size_t len, n = 0;
    const char *body = vg_request_body(req, &len);
    waiter *list, *w, *next;

    (void)arg;
    if (len == 0)
        return vg_result_set_status(vg_text("empty message\n"), 400);
    pthread_mutex_lock(&lock);
    list = waiters;
    waiters = NULL;
    for (w = list; w; w = w->next)
        w->state = TAKEN;
    pthread_mutex_unlock(&lock);
    for (w = list; w; w = next) {
        next = w->next;
        /* Stop its callback (waiting if it runs right now) before the
         * request can be freed by finishing it. */
        vg_token_off(vg_request_token(w->req), w->cb);
        if (vg_request_finish(w->req, vg_textf("%.*s", (int)len, body)) == 0)
            n++;
        free(w);
    }
    return vg_result_set_status(vg_textf("delivered to %zu\n", n), 202);
}

int main(int argc, char **argv)
{
    const char *address = argc > 1 ? argv[1] : "localhost:7878";
    vg_app *app = vg_app_new(address);
    int rc;

    if (app == NULL) {
        perror("vg_app_new");
        return 1;
    }
    vg_app_set_logger(app, vg_log_stderr, NULL, VG_LOG_INFO);
    if (vg_map_get(app, "/messages/wait", wait_message, NULL) != 0 ||
        vg_map_post(app, "/messages", post_message, NULL) != 0 ||
        vg_map_timeout(app, "GET", "/messages/wait", 30000) != 0) {
        vg_app_free(app);
        return 1;
    }
    rc = vg_app_start(app);
    if (rc != 0) {
        fprintf(stderr, "long_poll: cannot start on %s: %s\n", address,
                strerror(-rc));
        vg_app_free(app);
        return 1;
    }
    printf("long_poll: listening on port %u\n", (unsigned)vg_app_port(app));
    fflush(stdout);
    rc = vg_app_run(app);
    vg_app_free(app);
    return rc == 0 ? 0 : 1;
}
