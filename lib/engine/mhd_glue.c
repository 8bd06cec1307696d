/* mhd_glue.c - where a request flows from libmicrohttpd to a handler and
 * back.
 *
 *   URI log callback ....... vg__on_uri: create the vg_request (per request)
 *   access handler, 1st .... vg__on_access: what RFC 9110/9112 say a
 *                            server must refuse (lib/model/http_strict.c: 400,
 *                            501); 400 on ambiguous framing, 413 early on
 *                            a Content-Length over the route's limit;
 *                            then copy and route the head
 *                            (vg__route_head), so the route's body limits
 *                            are known before the body
 *   upload calls ........... append to the body (a chunked body's trailer
 *                            fields get the same field checks at the end);
 *                            feed a form body to libmicrohttpd's
 *                            PostProcessor (form_glue.c); past a limit drop
 *                            it all, read the rest (up to 1 MiB), 413
 *   final call ............. vg__dispatch: with the route the head found,
 *                            run its filters (lib/pipeline/pipeline.c); a filter's
 *                            answer or the library's own (404, 405,
 *                            OPTIONS with no app middleware) goes at once;
 *                            an inline route runs here (vg__run_inline);
 *                            otherwise suspend, register with the watcher,
 *                            queue on the pool
 *   worker ................. vg__run_handler: run the middleware chain and
 *                            the handler (vg__pipeline_run), build the
 *                            response, win the resume and resume (or leave
 *                            it to vg_request_finish after vg_defer)
 *   (resumed) access ....... vg__answer_resumed: queue the response; a
 *                            streamed one then pulls from lib/model/stream.c,
 *                            parking the connection while it is empty
 *   request completed ...... vg__on_completed: cancel the token unless the
 *                            request completed OK; run the completion
 *                            hooks (the access log); drop MHD's reference
 *
 * Resume arbitration (DESIGN.md fact 4): the worker (or a deferred
 * request's finisher, or a stream writer), the watcher (client gone,
 * deadline) and shutdown may each want to resume a suspended request.
 * Whoever clears req->suspended under req->lock wins, stores the response,
 * takes the request out of the watcher and resumes; the others do nothing.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <netinet/in.h>

#include <microhttpd.h>

#include "app.h"
#include "engine/engine.h"
#include "engine/form_glue.h"
#include "engine/tls_glue.h"
#include "model/http_strict.h"
#include "core/thread.h"
#include "engine/mhd_glue.h"
#include "pipeline/pipeline.h"
#include "pipeline/limits.h"
#include "model/request.h"
#include "model/result.h"
#include "model/stream.h"
#include "core/token.h"
#include "core/clock.h"
#include "model/counters.h"

/* ---- Responses ---- */

void vg__glue_response_drop(struct MHD_Response *resp)
{
    if (resp != NULL)
        MHD_destroy_response(resp);
}

/* What a result becomes: a response ready to queue, its status and its
 * body size (for the completion hooks; 0 for a stream, which counts its
 * bytes as they go). `resp` NULL: none could be built. */
typedef struct {
    struct MHD_Response *resp;
    unsigned status;
    unsigned long long len;
} vg__reply;

/* libmicrohttpd's content reader for a streamed body. */
static ssize_t vg__stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    ssize_t n = vg__stream_read(cls, buf, max);

    (void)pos;
    if (n == VG__STREAM_END)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n == VG__STREAM_ERROR)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    return n;
}

static void vg__stream_free_cb(void *cls)
{
    vg__stream_release(cls);
}

/* A chunked response that pulls from the result's stream, taking over the
 * result's reference to it. */
static struct MHD_Response *vg__stream_response(vg_result *res)
{
    struct MHD_Response *resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 16 * 1024, vg__stream_reader, res->stream,
        vg__stream_free_cb);

    if (resp != NULL)
        res->stream = NULL;
    return resp;
}

/* A file body (vg_file, static files): libmicrohttpd sends it with
 * sendfile() on plain connections (pread through its buffer under TLS) and
 * closes the fd when the response is destroyed, also when the client leaves
 * mid-download. A HEAD answer never reads it. */
static struct MHD_Response *vg__file_response(vg_result *res,
                                              unsigned long long *len_out)
{
    struct MHD_Response *resp;
    unsigned long long off, len;
    int fd;

    vg__result_take_fd(res, &fd, &off, &len);
    resp = MHD_create_response_from_fd_at_offset64(len, fd, off);
    if (resp == NULL) {
        close(fd);
        return NULL;
    }
    *len_out = len;
    return resp;
}

/* Adds one of the request's vg_request_add_response_header headers. */
static int vg__add_request_header(const char *name, const char *value,
                                  void *resp)
{
    return MHD_add_response_header(resp, name, value) == MHD_YES ? 0 : -1;
}

/* Turns a result into an MHD response, taking its body (the caller still
 * frees the result), with the request's own response headers. NULL if MHD
 * refused a header or memory ran out. */
static struct MHD_Response *vg__response_from(vg_request *req, vg_result *res,
                                              unsigned long long *len_out)
{
    struct MHD_Response *resp;
    size_t len = 0, i;
    char *body = NULL;

    *len_out = 0;
    if (res->stream != NULL) {
        resp = vg__stream_response(res);
        if (resp == NULL)
            return NULL;
        goto headers;
    }
    if (res->fd >= 0) {
        resp = vg__file_response(res, len_out);
        if (resp == NULL)
            return NULL;
        goto headers;
    }
    if (vg__result_take_body(res, &body, &len) != 0)
        return NULL;
    if (body != NULL)
        resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    else
        resp = MHD_create_response_from_buffer(0, (void *)"",
                                               MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        free(body);
        return NULL;
    }
    *len_out = len;
headers:
    if (res->ctype != NULL &&
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                res->ctype) != MHD_YES)
        goto fail;
    for (i = 0; i < res->nheaders; i++)
        if (MHD_add_response_header(resp, res->headers[i].name,
                                    res->headers[i].value) != MHD_YES)
            goto fail;
    if (vg__request_each_response_header(req, vg__add_request_header,
                                         resp) != 0)
        goto fail;
    return resp;
fail:
    MHD_destroy_response(resp);
    return NULL;
}

/* A plain-text error response from static text: the last resort when
 * memory runs out. */
static struct MHD_Response *vg__error_response(const char *text)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);

    if (resp != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "text/plain; charset=utf-8");
    return resp;
}

/* The reply to an error the library answers itself, shaped by the app's
 * error handler (lib/pipeline/pipeline.c), with the header the library needs
 * (Allow, Retry-After, Connection) if any. Falls back to static text when
 * memory runs out, so that an answer always goes. Any thread; no lock
 * held (the error handler is user code). */
static vg__reply vg__error_for(vg_request *req, unsigned status,
                               const char *detail, const char *hname,
                               const char *hvalue)
{
    vg_result *res = vg__pipeline_error(req, status, detail);
    vg__reply r = {NULL, status, 0};

    if (res != NULL && hname != NULL)
        res = vg_result_set_header(res, hname, hvalue);
    if (res != NULL) {
        r.resp = vg__response_from(req, res, &r.len);
        vg_result_free(res);
    }
    if (r.resp == NULL) {
        r.resp = vg__error_response(detail);
        r.len = strlen(detail);
        if (r.resp != NULL && hname != NULL)
            MHD_add_response_header(r.resp, hname, hvalue);
    }
    return r;
}

/* The reply for a handler's (or middleware's, or filter's) result, which
 * it consumes; NULL or an unbuildable result answers 500. */
static vg__reply vg__reply_for(vg_request *req, vg_result *res)
{
    vg__reply r = {NULL, 0, 0};

    if (res != NULL) {
        r.status = res->status;
        r.resp = vg__response_from(req, res, &r.len);
        vg_result_free(res);
        if (r.resp == NULL)
            vg__logf(&req->app->log, VG_LOG_ERROR,
                     "%s %s: the result could not be turned into a response",
                     req->method, req->path);
    } else {
        /* Returning NULL once the token fired is the normal way to give
         * up; only a NULL nobody asked for is worth a warning. */
        vg__logf(&req->app->log,
                 vg_token_is_cancelled(req->token) ? VG_LOG_DEBUG : VG_LOG_WARN,
                 "%s %s: handler returned NULL", req->method, req->path);
    }
    if (r.resp == NULL)
        r = vg__error_for(req, MHD_HTTP_INTERNAL_SERVER_ERROR,
                          "internal server error", NULL, NULL);
    return r;
}

/* Queues a reply (consumed) as the request's answer right now, on
 * libmicrohttpd's thread. */
static enum MHD_Result vg__queue(vg_request *req, struct MHD_Connection *conn,
                                 vg__reply r)
{
    enum MHD_Result ret;

    if (r.resp == NULL)
        return MHD_NO;
    req->state = VG__REQ_ANSWERED;
    req->sent_status = r.status;
    /* A HEAD answer carries the GET's headers, but its body never goes. */
    if (req->method == NULL || strcmp(req->method, "HEAD") != 0)
        req->bytes_out += r.len;
    ret = MHD_queue_response(conn, r.status, r.resp);
    MHD_destroy_response(r.resp);
    return ret;
}

/* Queues a result (consumed; NULL: 500) as the answer right now:
 * inline routes, filters, the library's answers. */
static enum MHD_Result vg__answer_result(vg_request *req,
                                         struct MHD_Connection *conn,
                                         vg_result *res)
{
    return vg__queue(req, conn, vg__reply_for(req, res));
}

/* Queues an error the library answers itself right now. */
static enum MHD_Result vg__answer_now(vg_request *req, struct MHD_Connection *conn,
                                     unsigned status, const char *detail,
                                     const char *hname, const char *hvalue)
{
    return vg__queue(req, conn, vg__error_for(req, status, detail, hname,
                                              hvalue));
}

/* ---- Resume arbitration ---- */

/* Tries to win the right to resume `req`; on success stores `r` as the
 * answer (which the re-invoked access handler queues) and counts this
 * thread in app->resuming until vg__resume_do. On failure the reply is
 * dropped: someone else already answered, or the client is gone. */
static bool vg__resume_win(vg_request *req, vg__reply r)
{
    bool win;

    pthread_mutex_lock(&req->lock);
    win = req->suspended;
    if (win) {
        req->suspended = false;
        req->response = r.resp;
        req->status = r.status;
        req->response_len = r.len;
        atomic_fetch_add(&req->app->resuming, 1);
    }
    pthread_mutex_unlock(&req->lock);
    if (!win)
        vg__glue_response_drop(r.resp);
    return win;
}

/* Whether the request still waits for an answer from this thread: once
 * the watcher or shutdown has answered it (or its client left), building a
 * reply would run user code (the error handler, for a NULL result) for an
 * answer nobody sends. A stale true is harmless: the win then fails and
 * the reply is dropped. */
static bool vg__awaits_answer(vg_request *req)
{
    bool waiting;

    pthread_mutex_lock(&req->lock);
    waiting = req->suspended;
    pthread_mutex_unlock(&req->lock);
    return waiting;
}

/* No answer: the connection is resumed only to be closed (client gone) or
 * to go on pulling from its stream. */
static const vg__reply vg__no_reply = {NULL, 0, 0};

/* The reply for `res` (consumed) if the request still awaits one. */
static vg__reply vg__reply_if_awaited(vg_request *req, vg_result *res)
{
    if (vg__awaits_answer(req))
        return vg__reply_for(req, res);
    vg_result_free(res);
    return vg__no_reply;
}

/* The winner's half: out of the watcher first, while the fd is surely
 * still the client's (fact 7), then resume exactly once. */
static void vg__resume_do(vg_request *req)
{
    vg_app *app = req->app;

    /* The thread to wake is read first: once resumed, the connection and
     * the engine's record of it may be freed at any moment (fact 4). */
    vg__loop *loop = req->conn_ctx ? req->conn_ctx->loop : NULL;

    vg__watcher_remove(app->watcher, req);
    MHD_resume_connection(req->conn);
    vg__engine_wake(loop);
    atomic_fetch_sub(&app->resuming, 1);
}

void vg__glue_wait_resumes(vg_app *app)
{
    /* The window is a few instructions long (a table removal and a mutex in
     * MHD), and this runs once per shutdown: yielding is enough. */
    while (atomic_load(&app->resuming) != 0)
        sched_yield();
}

/* ---- Streams ---- */

/* Whether the engine already saw this request's client close or
 * half-close (lib/engine/engine.c, vg__conn_hangup): suspending it would wait for
 * an event that has come and gone. */
static bool vg__client_left(const vg_request *req)
{
    return req->app->watch && req->conn_ctx != NULL && req->conn_ctx->hup;
}

static int vg__glue_park(vg_request *req)
{
    vg_app *app = req->app;

    if (vg__client_left(req)) {
        vg__app_cancel(app, req->token, VG_CANCEL_CLIENT_GONE);
        return -EPIPE;
    }
    MHD_suspend_connection(req->conn);
    pthread_mutex_lock(&req->lock);
    req->suspended = true;
    pthread_mutex_unlock(&req->lock);
    if (vg__watcher_add(app->watcher, req, 0) != 0) {
        /* Shutdown closed the registry: the stream ends here, and nobody
         * else can resume the connection. */
        vg__app_cancel(app, req->token, VG_CANCEL_SHUTDOWN);
        if (vg__resume_win(req, vg__no_reply))
            vg__resume_do(req);
        return -ESHUTDOWN;
    }
    return 0;
}

static void vg__glue_wake(vg_request *req)
{
    if (vg__resume_win(req, vg__no_reply))
        vg__resume_do(req);
}

/* A request's last reference is gone: drop a response stored for it that
 * was never queued (the completion callback normally takes it first). */
static void vg__glue_release(vg_request *req)
{
    vg__glue_response_drop(req->response);
    req->response = NULL;
}

/* What the request model may ask of this engine (request.h). */
static const vg__engine_ops vg__glue_ops = {vg__glue_park, vg__glue_wake,
                                            vg__glue_release};

/* ---- Worker side ---- */

/* Undoes a vg_defer whose handler then returned a real result. Returns
 * whether there was one to undo. */
static bool vg__undefer(vg_request *req)
{
    bool was;

    pthread_mutex_lock(&req->lock);
    was = req->deferred && !req->finished;
    req->deferred = false;
    pthread_mutex_unlock(&req->lock);
    if (was)
        atomic_fetch_sub(&req->app->deferred, 1);
    return was;
}

vg_result *vg_defer(vg_request *req)
{
    bool first;

    /* An inline handler's connection is not suspended: nothing could
     * finish it later. */
    if (req == NULL || !req->running || req->inline_) {
        errno = EINVAL;
        return NULL;
    }
    pthread_mutex_lock(&req->lock);
    first = !req->deferred;
    req->deferred = true;
    pthread_mutex_unlock(&req->lock);
    if (first)
        atomic_fetch_add(&req->app->deferred, 1);
    return &vg__deferred;
}

int vg_request_finish(vg_request *req, vg_result *res)
{
    vg_app *app;
    bool ok;
    int rc = -ECANCELED;

    if (req == NULL) {
        vg_result_free(res);
        return -EINVAL;
    }
    pthread_mutex_lock(&req->lock);
    ok = req->deferred && !req->finished;
    req->finished = true;
    pthread_mutex_unlock(&req->lock);
    if (!ok) {
        vg_result_free(res);
        return -EINVAL;
    }
    app = req->app;
    /* If the watcher (client gone, deadline) or shutdown already answered,
     * the win fails and the response is dropped. */
    if (vg__resume_win(req, vg__reply_if_awaited(req, res))) {
        vg__resume_do(req);
        rc = 0;
    }
    atomic_fetch_sub(&app->in_flight, 1);
    atomic_fetch_sub(&app->deferred, 1);
    vg__app_notify_drain(app);
    vg__request_unref(req);
    return rc;
}

static void vg__run_handler(vg__task *task)
{
    vg_request *req = (vg_request *)task;
    vg_app *app = req->app;
    vg_result *res = NULL;
    vg__reply reply = vg__no_reply;

    /* A client that left while the request waited in the queue will never
     * read an answer: skip the work entirely. */
    if (!vg_token_is_cancelled(req->token)) {
        res = vg__pipeline_run(req);
        /* Deferred: this worker's reference and the in-flight count now
         * belong to vg_request_finish, which may already have run on
         * another thread, so `req` must not be touched again here. */
        if (res == &vg__deferred)
            return;
        if (vg__undefer(req))
            vg__logf(&app->log, VG_LOG_ERROR,
                     "%s %s: vg_defer was called but a result returned",
                     req->method, req->path);
        reply = vg__reply_if_awaited(req, res);
    }
    /* With no response (skipped, or no memory at all) a win still resumes:
     * the connection then closes instead of staying suspended forever. */
    if (vg__resume_win(req, reply))
        vg__resume_do(req);
    atomic_fetch_sub(&app->in_flight, 1);
    vg__app_notify_drain(app);
    vg__request_unref(req);
}

/* ---- Watcher and shutdown side ---- */

void vg__glue_client_gone(vg_request *req)
{
    if (!vg__resume_win(req, vg__no_reply))
        return;
    vg__app_cancel(req->app, req->token, VG_CANCEL_CLIENT_GONE);
    vg__resume_do(req);
}

/* Ends a suspended request on the library's behalf: cancel its token with
 * `why` and answer `status`. The token is cancelled before the answer is
 * built, so that the error handler sees why (a problem document says
 * "cancelled": "timeout"). Even without a response (no memory) the winner
 * resumes; the connection is then simply closed. */
static void vg__end_with(vg_request *req, vg_cancel_reason why,
                         unsigned status, const char *detail, bool close)
{
    vg__reply r;

    /* An inline handler runs on MHD's thread right now: its token is all
     * that can be told; it answers when it returns. */
    if (req->inline_) {
        vg__app_cancel(req->app, req->token, why);
        return;
    }
    if (!vg__resume_win(req, vg__no_reply))
        return;
    vg__app_cancel(req->app, req->token, why);
    /* Won: nobody else touches the response until the resume below. */
    r = vg__error_for(req, status, detail,
                      close ? MHD_HTTP_HEADER_CONNECTION : NULL, "close");
    pthread_mutex_lock(&req->lock);
    req->response = r.resp;
    req->status = r.status;
    req->response_len = r.len;
    pthread_mutex_unlock(&req->lock);
    vg__resume_do(req);
}

void vg__glue_deadline(vg_request *req)
{
    vg__end_with(req, VG_CANCEL_TIMEOUT, MHD_HTTP_GATEWAY_TIMEOUT,
                 "request timed out", false);
}

void vg__glue_shutdown(vg_request *req)
{
    vg__end_with(req, VG_CANCEL_SHUTDOWN, MHD_HTTP_SERVICE_UNAVAILABLE,
                 "shutting down", true);
}

/* ---- libmicrohttpd callbacks ---- */

static void *vg__on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci;
    vg_app *app = cls;
    vg_request *req;

    req = vg__request_new(app);
    if (req == NULL)
        return NULL;
    if (vg__request_set_uri(req, uri) != 0) {
        vg__request_unref(req);
        return NULL;
    }
    req->uri_at = uri;
    req->conn = conn;
    req->engine = &vg__glue_ops;
    /* The engine's view of the connection (lib/engine/engine.c): the event thread
     * to wake after a resume, and where a client leaving is noticed. */
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    req->conn_ctx = ci ? ci->socket_context : NULL;
    if (req->conn_ctx != NULL)
        req->conn_ctx->req = req;
    /* Only completion hooks (the access log is one) need the clock. */
    if (vg__pipeline_has_hooks(&app->pipe))
        req->start_ms = vg__now_ms();
    atomic_fetch_add(&app->live, 1);
    return req;
}

static void vg__on_completed(void *cls, struct MHD_Connection *conn,
                             void **con_cls,
                             enum MHD_RequestTerminationCode toe)
{
    vg_app *app = cls;
    vg_request *req = *con_cls;
    struct MHD_Response *unsent;
    vg_cancel_reason why;

    (void)conn;
    if (req == NULL)
        return;
    *con_cls = NULL;
    if (req->conn_ctx != NULL && req->conn_ctx->req == req)
        req->conn_ctx->req = NULL;
    /* A winner's response that MHD never asked for (it closed the
     * connection instead of calling the handler again) must go now: a
     * stream's response references the request, which would otherwise
     * never be freed. */
    pthread_mutex_lock(&req->lock);
    unsent = req->response;
    req->response = NULL;
    pthread_mutex_unlock(&req->lock);
    vg__glue_response_drop(unsent);
    vg__form_glue_drop(req); /* a body cut short */
    /* After a FIN or RST MHD reports WITH_ERROR, READ_ERROR, CLIENT_ABORT
     * and more (fact 2): any end but a clean one means nobody is listening
     * any more. Only routed requests count: others never had a handler. */
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && req->fn != NULL) {
        why = toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN
                  ? VG_CANCEL_SHUTDOWN : VG_CANCEL_CLIENT_GONE;
        vg__app_cancel(app, req->token, why);
    }
    if (vg__pipeline_has_hooks(&app->pipe))
        vg__pipeline_complete(req);
    atomic_fetch_add(&app->requests, 1);
    atomic_fetch_sub(&app->live, 1);
    vg__app_notify_drain(app);
    vg__request_unref(req);
}

static enum MHD_Result vg__copy_header(void *cls, enum MHD_ValueKind kind,
                                       const char *key, const char *value)
{
    (void)kind;
    return vg__request_add_header(cls, key, value ? value : "") == 0 ? MHD_YES
                                                                    : MHD_NO;
}

static enum MHD_Result vg__copy_query(void *cls, enum MHD_ValueKind kind,
                                      const char *key, size_t key_size,
                                      const char *value, size_t value_size)
{
    vg_request *req = cls;
    int rc = vg__request_add_query(req, key, key_size, value, value_size);

    (void)kind;
    if (rc == 0)
        return MHD_YES;
    req->bad_query = rc;
    return MHD_NO;
}

/* Copies what the handler needs out of MHD's per-connection pool, which
 * may die while the worker still runs (fact 5). 0, or an HTTP status. */
static unsigned vg__copy_request(vg_request *req, struct MHD_Connection *conn,
                                 const char *url)
{
    const union MHD_ConnectionInfo *ci;
    size_t nhdr;
    int rc = vg__request_parse_target(req, url);

    if (rc == -EINVAL)
        return MHD_HTTP_BAD_REQUEST;
    if (rc != 0)
        return MHD_HTTP_INTERNAL_SERVER_ERROR;
    /* A query argument hiding a NUL (fact 14) stops the iteration and is
     * recorded: MHD's count alone cannot tell when the last one stopped it. */
    MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, vg__copy_query,
                                req);
    if (req->bad_query == -EINVAL)
        return MHD_HTTP_BAD_REQUEST;
    if (req->bad_query != 0)
        return MHD_HTTP_INTERNAL_SERVER_ERROR;
    nhdr = (size_t)MHD_get_connection_values(conn, MHD_HEADER_KIND, NULL, NULL);
    if ((size_t)MHD_get_connection_values(conn, MHD_HEADER_KIND,
                                          vg__copy_header, req) != nhdr)
        return MHD_HTTP_INTERNAL_SERVER_ERROR;
    if (req->authority != NULL &&
        vg__request_add_header(req, MHD_HTTP_HEADER_HOST, req->authority) != 0)
        return MHD_HTTP_INTERNAL_SERVER_ERROR;
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci != NULL && ci->client_addr != NULL)
        vg__request_set_peer(req, ci->client_addr,
                             ci->client_addr->sa_family == AF_INET6
                                 ? sizeof(struct sockaddr_in6)
                                 : sizeof(struct sockaddr_in));
    return 0;
}

/* Suspends the connection and hands the request to a worker. */
static enum MHD_Result vg__suspend_and_queue(vg_app *app, vg_request *req,
                                             struct MHD_Connection *conn)
{
    req->state = VG__REQ_DISPATCHED;
    req->suspended = true;
    MHD_suspend_connection(conn);
    if (vg__watcher_add(app->watcher, req, req->timeout_ms) != 0) {
        /* Shutdown closed the registry between our check and now (or no
         * memory): nobody else knows this request, so resume it ourselves
         * with a 503 that the re-invoked handler will queue. */
        if (vg__resume_win(req, vg__error_for(req, MHD_HTTP_SERVICE_UNAVAILABLE,
                                              "shutting down",
                                              MHD_HTTP_HEADER_CONNECTION,
                                              "close")))
            vg__resume_do(req);
        return MHD_YES;
    }
    atomic_fetch_add(&app->in_flight, 1);
    vg__request_ref(req); /* the worker's */
    req->task.run = vg__run_handler;
    if (!vg__pool_submit(app->pool, &req->task)) {
        /* Every worker is busy and the queue is full: shed load now
         * rather than let memory grow. The request never ran, so its
         * token stays uncancelled. */
        if (vg__resume_win(req, vg__error_for(req, MHD_HTTP_SERVICE_UNAVAILABLE,
                                              "server busy",
                                              MHD_HTTP_HEADER_RETRY_AFTER,
                                              "1")))
            vg__resume_do(req);
        atomic_fetch_sub(&app->in_flight, 1);
        vg__app_notify_drain(app);
        vg__request_unref(req);
        vg__logf(&app->log, VG_LOG_WARN, "worker queue full: answered 503");
    }
    return MHD_YES;
}

/* Runs an inline route's handler (and its middleware) right here on MHD's
 * thread and queues its answer: no suspend, no hand-off. The request is
 * registered (without its socket) so that deadlines and shutdown can still
 * cancel its token; a deadline that passed while it ran turns the answer
 * into a 504. */
static enum MHD_Result vg__run_inline(vg_app *app, vg_request *req,
                                      struct MHD_Connection *conn)
{
    enum MHD_Result ret;
    vg_result *res;

    if (vg__watcher_add(app->watcher, req, req->timeout_ms) != 0)
        return vg__answer_now(req, conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                              "shutting down", MHD_HTTP_HEADER_CONNECTION,
                              "close");
    atomic_fetch_add(&app->in_flight, 1);
    res = vg__pipeline_run(req);
    vg__watcher_remove(app->watcher, req);
    if (vg_token_reason(req->token) == VG_CANCEL_TIMEOUT) {
        vg_result_free(res);
        res = vg__pipeline_error(req, MHD_HTTP_GATEWAY_TIMEOUT,
                                 "request timed out");
    }
    ret = vg__answer_result(req, conn, res);
    atomic_fetch_sub(&app->in_flight, 1);
    vg__app_notify_drain(app);
    return ret;
}

/* What the router says about the request, in the pipeline's terms.
 * "OPTIONS *" (asterisk-form, RFC 9112 3.2.4) asks about the server, not a
 * path: it has nothing to match. */
static vg__answer_kind vg__route(vg_app *app, vg_request *req, vg__match *m)
{
    vg__match_kind kind;

    memset(m, 0, sizeof *m);
    if (req->asterisk)
        return VG__ANSWER_ASTERISK;
    kind = vg__router_match(app->router, req->method,
                            (const char *const *)req->segs, req->nseg, m);
    return kind == VG__MATCH_FOUND       ? VG__ANSWER_HANDLER
           : kind == VG__MATCH_NO_METHOD ? VG__ANSWER_NO_METHOD
                                         : VG__ANSWER_NOT_FOUND;
}

static enum MHD_Result vg__scan_trailer(void *cls, enum MHD_ValueKind kind,
                                        const char *key, const char *value)
{
    (void)kind;
    vg__strict_field(cls, key, value);
    return MHD_YES;
}

/* The trailer fields of a chunked body, parsed by libmicrohttpd as it
 * parses the head (obs-fold glued onto names included): the same checks
 * on each field, without the head's line accounting or Host rules. */
static vg__strict_verdict vg__trailer_check(struct MHD_Connection *conn)
{
    vg__strict s;

    vg__strict_begin(&s, NULL, NULL, 0, NULL);
    MHD_get_connection_values(conn, MHD_FOOTER_KIND, vg__scan_trailer, &s);
    return s.verdict;
}

/* Copies the request out of MHD and routes it as soon as its head is in,
 * so that its route's body limits (lib/pipeline/limits.c) apply to the
 * body; nothing is answered yet (fact 11): vg__dispatch answers what this
 * found once the body is read, or a limit's 413 goes first. */
static void vg__route_head(vg_app *app, vg_request *req,
                           struct MHD_Connection *conn, const char *url)
{
    vg__match m;
    vg__answer_kind kind;

    req->head_status = vg__copy_request(req, conn, url);
    if (req->head_status != 0)
        return;
    kind = vg__route(app, req, &m);
    req->on_worker = vg__pipeline_route(app, req, kind, &m);
    if (vg__request_set_params(req, &m) != 0)
        req->head_status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    if (req->deadline_body && req->timeout_ms > 0)
        req->head_ns = vg__clock_ns();
}

/* For a route whose deadline covers its body (vg_map_deadline_body): the
 * milliseconds left of it since the head came in, 0 once it has passed;
 * UINT_MAX for any other request. */
static unsigned vg__body_deadline_left(const vg_request *req)
{
    uint64_t spent, limit;

    if (!req->deadline_body || req->timeout_ms == 0 || req->head_ns == 0)
        return UINT_MAX;
    spent = vg__clock_ns() - req->head_ns;
    limit = (uint64_t)req->timeout_ms * 1000000u;
    if (spent >= limit)
        return 0;
    return (unsigned)((limit - spent + 999999u) / 1000000u);
}

/* The deadline passed while the body was still arriving: the token fires
 * (VG_CANCEL_TIMEOUT, counted), the files already written go at once and
 * nothing more is read or decoded; the handler never runs. */
static void vg__body_deadline_passed(vg_app *app, vg_request *req)
{
    vg__app_cancel(app, req->token, VG_CANCEL_TIMEOUT);
    vg__form_glue_discard(req);
    vg__logf(&app->log, VG_LOG_INFO,
             "%s %s: the deadline (%u ms) passed while the body arrived",
             req->method, req->path ? req->path : "", req->timeout_ms);
}

/* The body limit of the request's route (or the app's). */
static size_t vg__body_limit(const vg_app *app, const vg_request *req)
{
    return req->limits != NULL ? req->limits->body : app->body_limit;
}

/* How much of a body past a breached limit is read (and dropped) so that
 * the 413 can still be sent. */
#define VG__DRAIN_MAX (1024 * 1024)

/* A limit was breached (or an upload could not be stored): what was kept
 * of the body and its form goes now, nothing more is stored or decoded.
 * libmicrohttpd 0.9.75 cannot queue an answer before the body is over
 * (MHD_queue_response refuses while upload data is still due), so the rest
 * is read and dropped, and the 413 goes when it ends; if more than
 * VG__DRAIN_MAX remains the connection is closed without an answer rather
 * than reading on. */
static enum MHD_Result vg__drain_too_large(vg_request *req)
{
    vg__form_glue_discard(req);
    if (req->breach_at == 0)
        req->breach_at = req->body_seen;
    return req->body_seen - req->breach_at > VG__DRAIN_MAX ? MHD_NO : MHD_YES;
}

/* An upload could not be written (lib/model/upload.c): the server's
 * fault, 500; the files go at once. */
static enum MHD_Result vg__answer_upload_failed(vg_request *req,
                                                struct MHD_Connection *conn)
{
    vg__form_glue_discard(req);
    return vg__answer_now(req, conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                          "upload could not be stored",
                          MHD_HTTP_HEADER_CONNECTION, "close");
}

static enum MHD_Result vg__dispatch(vg_app *app, vg_request *req,
                                    struct MHD_Connection *conn)
{
    vg_result *res;
    unsigned status;
    bool on_worker;
    vg__strict_verdict v;
    unsigned left;

    if (req->body_too_large)
        return vg__answer_now(req, conn, MHD_HTTP_CONTENT_TOO_LARGE,
                              "request body too large",
                              MHD_HTTP_HEADER_CONNECTION, "close");
    if (req->store_failed)
        return vg__answer_upload_failed(req, conn);
    left = vg__body_deadline_left(req);
    if (left == 0) {
        vg__body_deadline_passed(app, req);
        return vg__answer_now(req, conn, MHD_HTTP_GATEWAY_TIMEOUT,
                              "request timed out",
                              MHD_HTTP_HEADER_CONNECTION, "close");
    }
    if (left != UINT_MAX)
        req->timeout_ms = left; /* what is left of it for the handler */
    if (req->chunked && (v = vg__trailer_check(conn)).status != 0)
        return vg__answer_now(req, conn, v.status, v.detail,
                              MHD_HTTP_HEADER_CONNECTION, "close");
    vg__form_glue_finish(req, conn);
    if (req->store_failed) /* the uploads' last bytes (form_glue.c) */
        return vg__answer_upload_failed(req, conn);
    status = req->head_status;
    if (status == MHD_HTTP_BAD_REQUEST)
        return vg__answer_now(req, conn, status, "bad request", NULL, NULL);
    if (status != 0)
        return vg__answer_now(req, conn, status, "internal server error",
                              NULL, NULL);
    on_worker = req->on_worker;
    if (on_worker && atomic_load(&app->stopping))
        return vg__answer_now(req, conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                              "shutting down", MHD_HTTP_HEADER_CONNECTION,
                              "close");
    if (app->tls_client_mode != 0 && !vg__tls_glue_check(req, conn))
        return vg__answer_now(req, conn, MHD_HTTP_FORBIDDEN,
                              "a verified client certificate is required",
                              MHD_HTTP_HEADER_CONNECTION, "close");
    res = vg__pipeline_filter(req);
    if (res != NULL)
        return vg__answer_result(req, conn, res);
    if (!on_worker)
        return vg__answer_result(req, conn, vg__pipeline_library(req));
    if (vg__client_left(req)) {
        /* Nobody to answer: no handler runs, the connection closes. */
        vg__app_cancel(app, req->token, VG_CANCEL_CLIENT_GONE);
        return MHD_NO;
    }
    if (req->inline_)
        return vg__run_inline(app, req, conn);
    return vg__suspend_and_queue(app, req, conn);
}

/* The access handler called again after a resume (fact 3). */
static enum MHD_Result vg__answer_resumed(vg_request *req,
                                          struct MHD_Connection *conn)
{
    vg__reply r = {req->response, req->status, req->response_len};

    if (r.resp == NULL)
        return MHD_NO; /* the client is gone: close without an answer */
    req->response = NULL;
    return vg__queue(req, conn, r);
}

/* What the head says about the body's length, gathered in one pass with
 * the walk of lib/model/http_strict.c over the same fields. */
typedef struct {
    unsigned cl_count, te_count;
    const char *cl, *te;
    bool cl_differ, bad_name;
    vg__strict strict;
} vg__framing;

static enum MHD_Result vg__scan_framing(void *cls, enum MHD_ValueKind kind,
                                        const char *key, const char *value)
{
    vg__framing *f = cls;

    (void)kind;
    vg__strict_field(&f->strict, key, value);
    if (strpbrk(key, " \t") != NULL)
        f->bad_name = true;
    else if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (f->cl != NULL && strcmp(f->cl, value ? value : "") != 0)
            f->cl_differ = true;
        f->cl = value ? value : "";
        f->cl_count++;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->te = value ? value : "";
        f->te_count++;
    }
    return MHD_YES;
}

/* Refuses a head whose body length two parsers could read differently,
 * the stuff of request smuggling behind a proxy (RFC 9112, 6.1-6.3):
 * conflicting or malformed Content-Length, Transfer-Encoding together with
 * Content-Length, a coding other than plain "chunked", whitespace before a
 * colon. Answered on the first call, so MHD closes the connection and
 * nothing of the body is read as a next request. */
static bool vg__framing_ok(const vg__framing *f)
{
    if (f->bad_name || f->cl_differ)
        return false;
    if (f->cl != NULL && (f->cl[0] == '\0' || strspn(f->cl, "0123456789") != strlen(f->cl)))
        return false;
    if (f->te_count > 0 && (f->cl_count > 0 || f->te_count > 1 ||
                           strcasecmp(f->te, "chunked") != 0))
        return false;
    return true;
}

/* The longest method any route maps, asked only about a method longer
 * than any standard one (rare: a list is built). */
static size_t vg__longest_mapped(vg_app *app)
{
    char *list = vg__router_methods(app->router), *p;
    size_t n, longest = 0;

    for (p = list; p != NULL && *p != '\0'; p += n + strspn(p + n, ", ")) {
        n = strcspn(p, ", ");
        if (n > longest)
            longest = n;
    }
    free(list);
    return longest;
}

/* The checks of lib/model/http_strict.c on the head, and the framing scan, in
 * one pass over the fields. Any refusal's verdict, status 0 if none;
 * `framing` holds what the head says about the body. */
static vg__strict_verdict vg__head_check(vg_app *app, vg_request *req,
                                         struct MHD_Connection *conn,
                                         const char *method,
                                         const char *version,
                                         vg__framing *framing)
{
    const union MHD_ConnectionInfo *ci;
    size_t mlen = strlen(method), tlen;
    vg__strict_verdict v = vg__strict_method(method, mlen, 0);
    vg__strict_absolute abs;

    /* A long method may still be one the app maps itself. */
    if (v.status == 501 && vg__strict_method(method, mlen,
                                             vg__longest_mapped(app)).status == 0)
        v.status = 0;
    if (v.status != 0)
        return v;
    tlen = strlen(req->raw_uri);
    v = vg__strict_target(req->raw_uri, tlen);
    if (v.status != 0)
        return v;
    memset(framing, 0, sizeof *framing);
    vg__strict_begin(&framing->strict, method, req->uri_at,
                     tlen, version);
    MHD_get_connection_values(conn, MHD_HEADER_KIND, vg__scan_framing, framing);
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    v = vg__strict_end(&framing->strict, vg__strict_is_http11(version),
                       ci != NULL ? method + ci->header_size : NULL);
    if (v.status == 0 && vg__strict_absolute_form(req->raw_uri, &abs))
        v = vg__strict_host(abs.authority, abs.authority_len);
    return v;
}

/* True if the declared body is over the limit, so 413 can go out before a
 * single byte of it is read. */
static bool vg__declared_too_large(vg_app *app, vg_request *req,
                                   struct MHD_Connection *conn)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long n;
    char *end;

    if (cl == NULL)
        return false;
    errno = 0;
    n = strtoull(cl, &end, 10);
    return errno == ERANGE || (end != cl && n > vg__body_limit(app, req));
}

static enum MHD_Result vg__on_access(void *cls, struct MHD_Connection *conn,
                                     const char *url, const char *method,
                                     const char *version,
                                     const char *upload_data,
                                     size_t *upload_data_size, void **con_cls)
{
    vg_app *app = cls;
    vg_request *req = *con_cls;
    vg__strict_verdict v;
    vg__framing framing;

    if (req == NULL)
        return MHD_NO; /* the URI callback ran out of memory */
    switch (req->state) {
    case VG__REQ_NEW:
        req->state = VG__REQ_READING;
        req->method = vg__request_strndup(req, method, strlen(method));
        if (req->method == NULL)
            return MHD_NO;
        /* Answering on this first call makes MHD close the connection
         * (fact 11); right for a head we refuse or a body we refuse to
         * read, wrong otherwise. */
        v = vg__head_check(app, req, conn, method, version, &framing);
        if (v.status != 0)
            return vg__answer_now(req, conn, v.status, v.detail,
                                  MHD_HTTP_HEADER_CONNECTION, "close");
        req->chunked = framing.te_count > 0;
        if (!vg__framing_ok(&framing))
            return vg__answer_now(req, conn, MHD_HTTP_BAD_REQUEST,
                                  "bad request framing",
                                  MHD_HTTP_HEADER_CONNECTION, "close");
        vg__route_head(app, req, conn, url);
        if (vg__declared_too_large(app, req, conn))
            return vg__answer_now(req, conn, MHD_HTTP_CONTENT_TOO_LARGE,
                                  "request body too large",
                                  MHD_HTTP_HEADER_CONNECTION, "close");
        return MHD_YES;
    case VG__REQ_READING:
        if (*upload_data_size != 0) {
            size_t n = *upload_data_size;
            *upload_data_size = 0;
            /* An uploads route keeps no raw body: its files go to disk. */
            if (vg__form_glue_streams(req))
                vg__request_count_body(req, n, vg__body_limit(app, req));
            else if (vg__request_append_body(req, upload_data, n,
                                             vg__body_limit(app, req)) != 0)
                return MHD_NO;
            /* Forms are decoded as they arrive (lib/engine/form_glue.c),
             * which may find a form limit breached. */
            if (!req->body_too_large)
                vg__form_glue_feed(req, conn, upload_data, n);
            if (req->body_too_large || req->store_failed)
                return vg__drain_too_large(req);
            /* libmicrohttpd cannot queue the 504 while body is due (as
             * with the 413 above): the connection is closed instead. */
            if (vg__body_deadline_left(req) == 0) {
                vg__body_deadline_passed(app, req);
                return MHD_NO;
            }
            return MHD_YES;
        }
        return vg__dispatch(app, req, conn);
    case VG__REQ_DISPATCHED:
        return vg__answer_resumed(req, conn);
    case VG__REQ_ANSWERED:
    default:
        /* Called again after a final answer: nothing sane to add. Closing
         * beats letting MHD spin on an answer that never comes. */
        return MHD_NO;
    }
}

static void vg__mhd_log(void *cls, const char *fmt, va_list ap)
{
    vg_app *app = cls;
    char line[512];
    size_t n;

    vsnprintf(line, sizeof line, fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    vg__logf(&app->log, VG_LOG_DEBUG, "libmicrohttpd: %s", line);
}

struct MHD_Daemon *vg__glue_daemon(vg_app *app,
                                   MHD_NotifyConnectionCallback on_conn,
                                   void *on_conn_cls)
{
    struct MHD_Daemon *d;
    /* HTTPS (vg_app_set_tls, lib/web/tls.c): the certificate comes from a
     * callback on every handshake, so that a reload takes effect at once
     * without restarting the daemon or dropping a connection. */
    struct MHD_OptionItem tls[] = {
        {MHD_OPTION_HTTPS_CERT_CALLBACK, 0, app->tls_cert_cb},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)app->tls_priorities},
        /* Makes libmicrohttpd request a client certificate; it is
         * verified by lib/engine/tls_glue.c, not by libmicrohttpd. */
        {MHD_OPTION_HTTPS_MEM_TRUST, 0, (void *)app->tls_trust_pem},
        {MHD_OPTION_END, 0, NULL}};
    unsigned flags = app->tls_cert_cb ? MHD_USE_TLS : 0;

    if (app->tls_cert_cb == NULL)
        tls[0].option = MHD_OPTION_END;
    else if (app->tls_trust_pem == NULL)
        tls[2].option = MHD_OPTION_END;
    /* No thread and no listening socket of its own: an event thread of
     * lib/engine/engine.c accepts connections for it and runs it. */
    /* MHD_OPTION_STRICT_FOR_CLIENT stays 0: at 1 libmicrohttpd answers a
     * missing Host itself (its status line written twice, past the error
     * handler) and closes on a space in the target without an answer;
     * lib/model/http_strict.c refuses both, and more (README
     * "Conformance"). */
    d = MHD_start_daemon(
        flags | MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET |
            MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
        0, NULL, NULL, vg__on_access, app,
        MHD_OPTION_CONNECTION_LIMIT, app->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, app->idle_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, app->header_limit,
        MHD_OPTION_URI_LOG_CALLBACK, vg__on_uri, app,
        MHD_OPTION_NOTIFY_COMPLETED, vg__on_completed, app,
        MHD_OPTION_NOTIFY_CONNECTION, on_conn, on_conn_cls,
        MHD_OPTION_EXTERNAL_LOGGER, vg__mhd_log, app,
        /* The event threads block SIGPIPE (lib/engine/engine.c), so
         * file bodies may go by sendfile. */
        MHD_OPTION_SIGPIPE_HANDLED_BY_APP, (int)1,
        MHD_OPTION_ARRAY, tls,
        MHD_OPTION_END);
    if (d == NULL)
        vg__logf(&app->log, VG_LOG_ERROR, "libmicrohttpd refused to start");
    return d;
}
