/* pipeline.h - what runs around a handler: filters on libmicrohttpd's
 * thread, middleware on the handler's thread, the library's own answers
 * (404, 405, OPTIONS, errors) and the completion hooks.
 *
 * The engine (lib/engine/mhd_glue.c) calls four functions of this file per
 * request and knows nothing else about middleware:
 *   vg__pipeline_route    after routing: which handler and chain serve it
 *   vg__pipeline_filter   on libmicrohttpd's thread, before any hand-off
 *   vg__pipeline_run      on the handler's thread: middleware, then handler
 *   vg__pipeline_complete when the request has really ended
 * and vg__pipeline_error for every error it answers itself. */
#ifndef VG_PIPELINE_H
#define VG_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>

#include "volga.h"
#include "core/router.h"

/* A middleware or filter as registered: the function and its argument. */
typedef struct {
    vg_middleware fn;
    void *arg;
} vg__mw;

typedef struct {
    vg_filter fn;
    void *arg;
} vg__filter;

typedef struct {
    vg_complete_fn fn;
    void *arg;
} vg__hook;

/* The resolved chain of one route (or of the app, for the library's own
 * answers and the fallback): app entries first, then each enclosing
 * group's from the outermost in. Built once at start, never changed after,
 * shared by every route of a group: a request walks it without a lock or
 * an allocation. */
typedef struct vg__chain {
    vg__mw *mw;
    size_t nmw;
    vg__filter *filters;
    size_t nfilters;
} vg__chain;

/* The pipeline's part of an app. Configured before start from one thread;
 * read-only once started. */
typedef struct {
    vg__mw *mw;                  /* vg_app_use, in registration order */
    size_t nmw;
    vg__filter *filters;         /* vg_app_filter */
    size_t nfilters;
    vg__hook *hooks;             /* vg_app_on_complete (and the access log) */
    size_t nhooks;
    vg_group **groups;           /* every group, in creation order */
    size_t ngroups;
    vg_handler fallback;         /* vg_app_set_fallback, or NULL */
    void *fallback_arg;
    vg_error_fn error_fn;        /* vg_app_set_error_handler, or NULL */
    void *error_arg;
    vg__chain chain;             /* the app's own chain, resolved at start */
    char *all_methods;           /* the Allow of "OPTIONS *", at start */
    bool access_logged;          /* the access-log hook is registered */
    struct vg__limits_reg *limits; /* body and form limits (limits.c) */
} vg__pipeline;

/* Which kind of answer a request gets, as vg__pipeline_route decides. */
typedef enum {
    VG__ANSWER_HANDLER = 0, /* a route's handler (or the fallback) */
    VG__ANSWER_NOT_FOUND,   /* 404 */
    VG__ANSWER_NO_METHOD,   /* 405 with Allow */
    VG__ANSWER_OPTIONS,     /* OPTIONS on a routed path: 204 with Allow */
    VG__ANSWER_ASTERISK     /* OPTIONS *: 200 with the app's methods */
} vg__answer_kind;

/* Resolves every chain, deadline and the "OPTIONS *" list at start, and
 * adds the access log (lib/core/log.c) as a completion hook when the app logs
 * at VG_LOG_INFO. Safe to call again after a start that failed. 0 or
 * -ENOMEM (logged). The configuring thread. */
int vg__pipeline_prepare(vg_app *app);
/* Frees everything the pipeline holds, groups included. */
void vg__pipeline_free(vg_app *app);

/* Sets the request's handler, chain, route and deadline from a match, or
 * for a miss (kind given by the router, or ASTERISK) the library's own
 * answer or the fallback. Returns whether the answer must run on a worker
 * like a handler (false: answer it inline, with vg__pipeline_library).
 * libmicrohttpd's thread. */
bool vg__pipeline_route(vg_app *app, vg_request *req, vg__answer_kind kind,
                        const vg__match *m);

/* Runs the request's filters (app, then groups); the first result any
 * returns answers the request at once, and is returned; NULL lets it
 * through. libmicrohttpd's thread. */
vg_result *vg__pipeline_filter(vg_request *req);

/* Runs the middleware chain and the handler; returns the handler's (or a
 * middleware's) result, which may be the deferred marker. The handler's
 * thread. */
vg_result *vg__pipeline_run(vg_request *req);

/* The library's own answer for the request's answer kind (404, 405,
 * OPTIONS): what the built-in handler of a miss returns. Any thread. */
vg_result *vg__pipeline_library(vg_request *req);

/* The result for an error the library answers itself: the app's error
 * handler's, or the built-in plain-text one. Never NULL unless memory ran
 * out. `detail` is static text. Any thread (the one answering). */
vg_result *vg__pipeline_error(vg_request *req, unsigned status,
                              const char *detail);

/* Whether completion hooks exist (the request then records its start). */
static inline bool vg__pipeline_has_hooks(const vg__pipeline *p)
{
    return p->nhooks > 0;
}

/* Runs the completion hooks for a request that has ended. The thread that
 * saw it end (libmicrohttpd's). */
void vg__pipeline_complete(vg_request *req);

#endif
