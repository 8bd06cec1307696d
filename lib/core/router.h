/* router.h - route patterns compiled into a segment trie, and matching. */
#ifndef VG_ROUTER_H
#define VG_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include "volga.h"

/* Most parameters one pattern may hold ({name} and {*rest} together). */
#define VG__MAX_PARAMS 16

typedef struct vg__router vg__router;

/* One captured parameter of a match. For a {name} parameter the value is
 * segment `seg`; for a {*rest} parameter (`rest` true) it is segments
 * seg..nseg-1 joined with '/' (seg == nseg: the empty string). `name` is
 * borrowed from the router and lives as long as it does. */
typedef struct {
    const char *name;
    size_t seg;
    bool rest;
} vg__param;

typedef enum {
    VG__MATCH_FOUND = 0,  /* fn/arg/params are set */
    VG__MATCH_NO_PATH,    /* no pattern matches the path: 404 */
    VG__MATCH_NO_METHOD   /* patterns match but not for this method: 405, allow is set */
} vg__match_kind;

typedef struct {
    vg_handler fn;
    void *arg;
    long timeout_ms;     /* the route's deadline (0: none), -1: the app's */
    bool inline_;        /* run the handler on libmicrohttpd's thread */
    bool deadline_body;  /* the deadline counts from the head, body included */
    const char *pattern; /* the route's pattern as mapped; borrowed */
    const void *ext;     /* what vg__router_visit attached to the route */
    const void *body;    /* the route's body limits (lib/pipeline/limits.c) */
    const char *allow;   /* "GET, HEAD, POST, OPTIONS": methods of the matched
                            path (405, OPTIONS); borrowed */
    size_t nparams;
    vg__param params[VG__MAX_PARAMS];
} vg__match;

/* A new empty router, or NULL (ENOMEM). */
vg__router *vg__router_new(void);
/* Frees the router and everything it holds. NULL is a no-op. */
void vg__router_free(vg__router *r);

/*
 * Adds a route. `method` is an HTTP token (RFC 9110 tchar, case-sensitive);
 * `pattern` as documented in volga.h. Returns 0, -EINVAL (NULL argument, bad
 * method, bad pattern: not starting with '/', empty segment, trailing '/',
 * bad or duplicate parameter name, '{' or '}' inside a literal, {*rest} not
 * last, more than VG__MAX_PARAMS parameters), -EEXIST (same method and an
 * equivalent pattern, i.e. the same shape whatever the parameter names),
 * -ENOMEM. Not thread-safe: call before matching starts.
 */
int vg__router_add(vg__router *r, const char *method, const char *pattern,
                   vg_handler fn, void *arg);

/*
 * Gives the route mapped for exactly `method` and `pattern` (the same
 * shape; parameter names may differ) its own deadline: `timeout_ms` 0 for
 * none, -1 for the app's. Returns 0, -EINVAL (bad arguments) or -ENOENT (no
 * such route). Not thread-safe: call before matching starts.
 */
int vg__router_set_timeout(vg__router *r, const char *method,
                           const char *pattern, long timeout_ms);

/* Marks that route as inline (or not). Same returns as above. */
int vg__router_set_inline(vg__router *r, const char *method,
                          const char *pattern, bool on);

/* Makes that route's deadline count from its head (the body's arrival
 * included) or not. Same returns as above. */
int vg__router_set_deadline_body(vg__router *r, const char *method,
                                 const char *pattern, bool on);

/* Attaches the route's body limits (opaque here). Same returns as above. */
int vg__router_set_body(vg__router *r, const char *method,
                        const char *pattern, const void *body);

/* What vg__router_set_body attached (NULL if nothing), with *rc as the
 * returns above. */
const void *vg__router_body(vg__router *r, const char *method,
                            const char *pattern, int *rc);

/* Records who mapped the route (a group, for the pipeline). Same returns
 * as above. */
int vg__router_set_owner(vg__router *r, const char *method,
                         const char *pattern, void *owner);

/* Whether `pattern` is valid as vg__router_add would judge it. */
bool vg__router_pattern_valid(const char *pattern);

/* One route as vg__router_visit shows it: the pipeline reads who mapped it
 * and sets its deadline and attachment once, at start. */
typedef struct {
    const char *method;
    const char *pattern;
    void *owner;
    long *timeout_ms;   /* writable: -1 means the app's */
    const void **ext;   /* writable: returned by matches in vg__match.ext */
    const void **body;  /* writable: returned in vg__match.body */
} vg__route_view;
typedef void (*vg__route_visit_fn)(void *ctx, const vg__route_view *route);

/* Calls `fn` for every route. Not thread-safe: before matching starts. */
void vg__router_visit(vg__router *r, vg__route_visit_fn fn, void *ctx);

/* Every method mapped anywhere, ", "-separated, with HEAD when GET is
 * mapped and OPTIONS (the Allow of "OPTIONS *"). Malloc'd; NULL on ENOMEM. */
char *vg__router_methods(vg__router *r);

/*
 * Matches a request. `segs` are the path's percent-decoded segments (the
 * path "/" has none; the caller has already dropped one trailing empty
 * segment). Precedence at each position: literal, then {param}, then
 * {*rest}, backtracking when a more specific branch fails to match the
 * remainder. "HEAD" matches a GET route when the path has no HEAD route of
 * its own. Thread-safe for concurrent matching on a router no longer
 * modified; allocates nothing.
 */
vg__match_kind vg__router_match(const vg__router *r, const char *method,
                                const char *const *segs, size_t nseg,
                                vg__match *out);

#endif
