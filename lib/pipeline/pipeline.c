/* pipeline.c - what runs around a handler: filters, middleware, the
 * library's own answers, the error builder and the completion hooks.
 *
 * A request's way through it, as the engine (lib/engine/mhd_glue.c) drives it:
 *
 *   routed .............. vg__pipeline_route: the route's handler, chain
 *                         and deadline; a miss gets the fallback or the
 *                         library's answer (404, 405, OPTIONS), on a
 *                         worker when app middleware must see it
 *   libmicrohttpd thread  vg__pipeline_filter: app filters, then groups'
 *   handler's thread .... vg__pipeline_run: middleware from the outermost
 *                         in, each calling vg_next_run, then the handler;
 *                         results unwind in reverse
 *   ended ............... vg__pipeline_complete: the completion hooks
 *
 * Chains are arrays built at start (vg__pipeline_prepare) and only read
 * afterwards; vg_next lives on the stack of the middleware that calls it,
 * so running a chain allocates nothing and takes no lock.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "pipeline/group.h"
#include "core/log.h"
#include "pipeline/pipeline.h"
#include "pipeline/limits.h"
#include "model/request.h"
#include "model/result.h"

struct vg_next {
    vg_request *req;
    const vg__mw *mw;  /* the next middleware to run */
    size_t left;       /* middleware still to run; 0: the handler is next */
    bool used;
};

/* ---- Configuration ---- */

static int vg__pipeline_configurable(const vg_app *app)
{
    if (app == NULL)
        return -EINVAL;
    return atomic_load(&app->state) == VG__APP_NEW ? 0 : -EBUSY;
}

int vg_app_use(vg_app *app, vg_middleware fn, void *arg)
{
    vg__mw mw = {fn, arg};
    int rc = vg__pipeline_configurable(app);

    if (rc != 0)
        return rc;
    if (fn == NULL)
        return -EINVAL;
    return vg__grow((void **)&app->pipe.mw, &app->pipe.nmw, sizeof mw, &mw);
}

int vg_app_filter(vg_app *app, vg_filter fn, void *arg)
{
    vg__filter f = {fn, arg};
    int rc = vg__pipeline_configurable(app);

    if (rc != 0)
        return rc;
    if (fn == NULL)
        return -EINVAL;
    return vg__grow((void **)&app->pipe.filters, &app->pipe.nfilters,
                    sizeof f, &f);
}

int vg_app_on_complete(vg_app *app, vg_complete_fn fn, void *arg)
{
    vg__hook h = {fn, arg};
    int rc = vg__pipeline_configurable(app);

    if (rc != 0)
        return rc;
    if (fn == NULL)
        return -EINVAL;
    return vg__grow((void **)&app->pipe.hooks, &app->pipe.nhooks, sizeof h,
                    &h);
}

int vg_app_set_fallback(vg_app *app, vg_handler fn, void *arg)
{
    int rc = vg__pipeline_configurable(app);

    if (rc != 0)
        return rc;
    app->pipe.fallback = fn;
    app->pipe.fallback_arg = arg;
    return 0;
}

int vg_app_set_error_handler(vg_app *app, vg_error_fn fn, void *arg)
{
    int rc = vg__pipeline_configurable(app);

    if (rc != 0)
        return rc;
    app->pipe.error_fn = fn;
    app->pipe.error_arg = arg;
    return 0;
}

/* ---- Start ---- */

/* Points every route at its group's chain and gives it the group's
 * deadline unless it has its own. */
static void vg__attach_route(void *ctx, const vg__route_view *route)
{
    vg_app *app = ctx;
    vg_group *g = route->owner;

    *route->ext = g ? &g->chain : &app->pipe.chain;
    if (g != NULL && *route->timeout_ms < 0 && g->effective_ms >= 0)
        *route->timeout_ms = g->effective_ms;
}

/* Copies the value of an X-Request-Id the request's answer carries (lib/
 * web/request_id.c adds one with vg_request_add_response_header). */
static int vg__access_find_id(const char *name, const char *value, void *arg)
{
    char *id = arg;

    if (strcasecmp(name, "X-Request-Id") != 0)
        return 0;
    snprintf(id, 160, "%s", value);
    return 1;
}

/* The access log as a completion hook (`arg`: the app's vg__log). It
 * shows the answer's X-Request-Id, whoever set it. */
static void vg__pipeline_access(const vg_completion *c, void *arg)
{
    char id[160] = "";

    vg__request_each_response_header((vg_request *)c->req,
                                     vg__access_find_id, id);
    vg__log_access(arg, c, id[0] ? id : NULL);
}

int vg__pipeline_prepare(vg_app *app)
{
    vg__pipeline *p = &app->pipe;
    vg__hook access = {vg__pipeline_access, &app->log};
    size_t i;

    if (!p->access_logged && vg__log_enabled(&app->log, VG_LOG_INFO)) {
        if (vg__grow((void **)&p->hooks, &p->nhooks, sizeof access,
                     &access) != 0)
            goto nomem;
        p->access_logged = true;
    }
    p->chain.mw = p->mw;
    p->chain.nmw = p->nmw;
    p->chain.filters = p->filters;
    p->chain.nfilters = p->nfilters;
    /* Groups are stored in creation order, parents before children. */
    for (i = 0; i < p->ngroups; i++)
        if (vg__group_resolve(p->groups[i], &p->chain) != 0)
            goto nomem;
    vg__router_visit(app->router, vg__attach_route, app);
    if (vg__limits_prepare(app) != 0)
        goto nomem;
    free(p->all_methods);
    p->all_methods = vg__router_methods(app->router);
    if (p->all_methods == NULL)
        goto nomem;
    return 0;
nomem:
    vg__logf(&app->log, VG_LOG_ERROR, "cannot resolve the middleware chains: "
             "out of memory");
    return -ENOMEM;
}

void vg__pipeline_free(vg_app *app)
{
    vg__pipeline *p = &app->pipe;
    size_t i;

    for (i = 0; i < p->ngroups; i++)
        vg__group_free(p->groups[i]);
    free(p->groups);
    free(p->mw);
    free(p->filters);
    free(p->hooks);
    free(p->all_methods);
    vg__limits_free(app);
    memset(p, 0, sizeof *p);
}

/* ---- Per request ---- */

static vg_result *vg__library_handler(vg_request *req, void *arg)
{
    (void)arg;
    return vg__pipeline_library(req);
}

/* The chain for an OPTIONS request the library answers. A CORS preflight
 * (Access-Control-Request-Method) asks about another route of the path:
 * it gets that route's chain, so a group's filters (lib/web/cors.c
 * attached to a group) see preflights for the group's routes whether or
 * not the path has an OPTIONS route. Anything else gets the app's. */
static const vg__chain *vg__preflight_chain(vg_app *app, vg_request *req)
{
    const char *asked = vg_request_header(req, "Access-Control-Request-Method");
    vg__match m;

    if (asked == NULL || vg__router_match(app->router, asked,
                                          (const char *const *)req->segs,
                                          req->nseg, &m) != VG__MATCH_FOUND ||
        m.ext == NULL)
        return &app->pipe.chain;
    return m.ext;
}

bool vg__pipeline_route(vg_app *app, vg_request *req, vg__answer_kind kind,
                        const vg__match *m)
{
    vg__pipeline *p = &app->pipe;

    req->allow = m->allow;
    req->timeout_ms = app->request_timeout_ms;
    req->limits = vg__limits_of(app, kind == VG__ANSWER_HANDLER ? m->body
                                                                : NULL);
    if (kind == VG__ANSWER_HANDLER) {
        req->fn = m->fn;
        req->fn_arg = m->arg;
        req->route = m->pattern;
        req->chain = m->ext ? m->ext : &p->chain;
        req->inline_ = m->inline_;
        req->deadline_body = m->deadline_body;
        if (m->timeout_ms >= 0)
            req->timeout_ms = (unsigned)m->timeout_ms;
        return true;
    }
    req->chain = &p->chain;
    if (kind == VG__ANSWER_NO_METHOD && strcmp(req->method, "OPTIONS") == 0) {
        kind = VG__ANSWER_OPTIONS;
        req->chain = vg__preflight_chain(app, req);
    }
    req->answer = kind;
    if (kind == VG__ANSWER_NOT_FOUND && p->fallback != NULL) {
        req->fn = p->fallback;
        req->fn_arg = p->fallback_arg;
        return true;
    }
    /* App middleware must see the library's answers, and must not run on
     * libmicrohttpd's thread: then the answer is made on a worker. */
    if (p->nmw > 0) {
        req->fn = vg__library_handler;
        req->fn_arg = NULL;
        return true;
    }
    return false;
}

vg_result *vg__pipeline_filter(vg_request *req)
{
    const vg__chain *c = req->chain;
    vg_result *res;
    size_t i;

    if (c == NULL)
        return NULL;
    for (i = 0; i < c->nfilters; i++) {
        res = c->filters[i].fn(req, c->filters[i].arg);
        if (res == NULL)
            continue;
        if (vg_result_is_deferred(res)) {
            /* A filter cannot defer (it runs before any hand-off). */
            vg__logf(&req->app->log, VG_LOG_ERROR,
                     "%s %s: a filter returned vg_defer's marker",
                     req->method, req->path);
            return vg__pipeline_error(req, 500, "internal server error");
        }
        return res;
    }
    return NULL;
}

vg_result *vg_next_run(vg_next *next)
{
    vg_next inner;

    if (next == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (next->used) {
        errno = EALREADY;
        return NULL;
    }
    next->used = true;
    if (next->left == 0)
        return next->req->fn(next->req, next->req->fn_arg);
    inner.req = next->req;
    inner.mw = next->mw + 1;
    inner.left = next->left - 1;
    inner.used = false;
    return next->mw->fn(next->req, &inner, next->mw->arg);
}

vg_result *vg__pipeline_run(vg_request *req)
{
    const vg__chain *c = req->chain;
    vg_result *res;
    vg_next first;

    req->running = true;
    if (c == NULL || c->nmw == 0)
        return req->fn(req, req->fn_arg);
    /* A handler that defers hands its request to whoever finishes it,
     * possibly at once on another thread, while the middleware still
     * unwinds here: this reference keeps the request readable until they
     * are done. */
    vg__request_ref(req);
    first.req = req;
    first.mw = c->mw;
    first.left = c->nmw;
    first.used = false;
    res = vg_next_run(&first);
    vg__request_unref(req);
    return res;
}

vg_result *vg__pipeline_library(vg_request *req)
{
    switch ((vg__answer_kind)req->answer) {
    case VG__ANSWER_NO_METHOD:
        return vg_result_set_header(
            vg__pipeline_error(req, 405, "method not allowed"), "Allow",
            req->allow);
    case VG__ANSWER_OPTIONS:
        return vg_result_set_header(vg_status(204), "Allow", req->allow);
    case VG__ANSWER_ASTERISK:
        return vg_result_set_header(vg_status(200), "Allow",
                                    req->app->pipe.all_methods);
    case VG__ANSWER_NOT_FOUND:
    case VG__ANSWER_HANDLER:
    default:
        return vg__pipeline_error(req, 404, "not found");
    }
}

vg_result *vg__pipeline_error(vg_request *req, unsigned status,
                              const char *detail)
{
    const vg__pipeline *p = &req->app->pipe;
    vg_result *res = NULL;

    if (p->error_fn != NULL) {
        res = p->error_fn(req, status, detail, p->error_arg);
        if (vg_result_is_deferred(res))
            res = NULL; /* nothing would ever finish it */
        res = vg_result_set_status(res, status);
    }
    if (res == NULL)
        res = vg_result_set_status(vg_textf("%s\n", detail), status);
    return res;
}

void vg__pipeline_complete(vg_request *req)
{
    const vg__pipeline *p = &req->app->pipe;
    vg_completion c;
    size_t i;

    c.req = req;
    c.method = req->method ? req->method : "-";
    c.target = req->raw_uri ? req->raw_uri : "-";
    c.route = req->route;
    c.status = req->sent_status;
    c.body_bytes = req->bytes_out;
    c.duration_ms = req->start_ms > 0 ? vg__now_ms() - req->start_ms : 0;
    c.cancelled = vg_token_reason(req->token);
    for (i = 0; i < p->nhooks; i++)
        p->hooks[i].fn(&c, p->hooks[i].arg);
}
