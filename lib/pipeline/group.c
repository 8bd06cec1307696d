/* group.c - route groups: a prefix joined to every pattern mapped through
 * the group, plus middleware, filters and a deadline for those routes.
 *
 * A group adds nothing at match time: its routes go into the app's one
 * router under their joined patterns, and at start each group's chain (the
 * app's entries, then every enclosing group's, then its own) is built once
 * into arrays that its routes share. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "pipeline/group.h"

int vg__grow(void **items, size_t *n, size_t size, const void *item)
{
    char *grown = realloc(*items, (*n + 1) * size);

    if (grown == NULL)
        return -ENOMEM;
    memcpy(grown + *n * size, item, size);
    *items = grown;
    (*n)++;
    return 0;
}

/* A prefix is a pattern without {*rest}: "/" (no prefix) or segments with
 * no trailing '/'. */
static bool vg__prefix_valid(const char *prefix)
{
    if (prefix == NULL || prefix[0] != '/')
        return false;
    if (strcmp(prefix, "/") == 0)
        return true;
    return strstr(prefix, "{*") == NULL && vg__router_pattern_valid(prefix);
}

static vg_group *vg__group_new(vg_app *app, vg_group *parent,
                               const char *prefix)
{
    const char *base = parent ? parent->prefix : "";
    vg_group *g;
    int rc;

    if (app == NULL || !vg__prefix_valid(prefix)) {
        if (app != NULL)
            vg__logf(&app->log, VG_LOG_ERROR, "cannot create a group %s%s: "
                     "invalid prefix", base, prefix ? prefix : "(null)");
        errno = EINVAL;
        return NULL;
    }
    if (atomic_load(&app->state) != VG__APP_NEW) {
        errno = EBUSY;
        return NULL;
    }
    g = calloc(1, sizeof *g);
    if (g == NULL ||
        asprintf(&g->prefix, "%s%s", base,
                 strcmp(prefix, "/") == 0 ? "" : prefix) < 0) {
        free(g);
        errno = ENOMEM;
        return NULL;
    }
    g->app = app;
    g->parent = parent;
    g->timeout_ms = -1;
    g->effective_ms = -1;
    rc = vg__grow((void **)&app->pipe.groups, &app->pipe.ngroups,
                  sizeof g, &g);
    if (rc != 0) {
        vg__group_free(g);
        errno = ENOMEM;
        return NULL;
    }
    return g;
}

vg_group *vg_app_group(vg_app *app, const char *prefix)
{
    return vg__group_new(app, NULL, prefix);
}

vg_group *vg_group_group(vg_group *g, const char *prefix)
{
    if (g == NULL) {
        errno = EINVAL;
        return NULL;
    }
    return vg__group_new(g->app, g, prefix);
}

void vg__group_free(vg_group *g)
{
    if (g == NULL)
        return;
    free(g->chain.mw);
    free(g->chain.filters);
    free(g->mw);
    free(g->filters);
    free(g->prefix);
    free(g);
}

/* 0 if the group may still be configured. */
static int vg__group_configurable(const vg_group *g)
{
    if (g == NULL)
        return -EINVAL;
    return atomic_load(&g->app->state) == VG__APP_NEW ? 0 : -EBUSY;
}

int vg_group_use(vg_group *g, vg_middleware fn, void *arg)
{
    vg__mw mw = {fn, arg};
    int rc = vg__group_configurable(g);

    if (rc != 0)
        return rc;
    if (fn == NULL)
        return -EINVAL;
    return vg__grow((void **)&g->mw, &g->nmw, sizeof mw, &mw);
}

int vg_group_filter(vg_group *g, vg_filter fn, void *arg)
{
    vg__filter f = {fn, arg};
    int rc = vg__group_configurable(g);

    if (rc != 0)
        return rc;
    if (fn == NULL)
        return -EINVAL;
    return vg__grow((void **)&g->filters, &g->nfilters, sizeof f, &f);
}

int vg_group_set_timeout(vg_group *g, unsigned ms)
{
    int rc = vg__group_configurable(g);

    if (rc != 0)
        return rc;
    if (ms > (unsigned)INT32_MAX)
        return -EINVAL;
    g->timeout_ms = (long)ms;
    if (ms > 0)
        g->app->route_timeouts = true; /* the watcher needs its timers */
    return 0;
}

/* The group's prefix joined with `pattern`; "/" maps the prefix itself. */
static char *vg__join(const vg_group *g, const char *pattern)
{
    char *joined;

    if (g->prefix[0] == '\0')
        return strdup(pattern);
    if (asprintf(&joined, "%s%s", g->prefix,
                 strcmp(pattern, "/") == 0 ? "" : pattern) < 0)
        return NULL;
    return joined;
}

int vg_group_map(vg_group *g, const char *method, const char *pattern,
                 vg_handler fn, void *arg)
{
    char *joined;
    int rc = vg__group_configurable(g);

    if (rc != 0)
        return rc;
    if (pattern == NULL || pattern[0] != '/') {
        vg__logf(&g->app->log, VG_LOG_ERROR, "cannot map %s %s%s: %s",
                 method ? method : "(null)", g->prefix,
                 pattern ? pattern : "(null)", strerror(EINVAL));
        return -EINVAL;
    }
    joined = vg__join(g, pattern);
    if (joined == NULL)
        return -ENOMEM;
    rc = vg_map(g->app, method, joined, fn, arg); /* logs the joined pattern */
    if (rc == 0)
        rc = vg__router_set_owner(g->app->router, method, joined, g);
    free(joined);
    return rc;
}

int vg_group_map_get(vg_group *g, const char *pattern, vg_handler fn,
                     void *arg)
{
    return vg_group_map(g, "GET", pattern, fn, arg);
}

int vg_group_map_post(vg_group *g, const char *pattern, vg_handler fn,
                      void *arg)
{
    return vg_group_map(g, "POST", pattern, fn, arg);
}

int vg_group_map_put(vg_group *g, const char *pattern, vg_handler fn,
                     void *arg)
{
    return vg_group_map(g, "PUT", pattern, fn, arg);
}

int vg_group_map_patch(vg_group *g, const char *pattern, vg_handler fn,
                       void *arg)
{
    return vg_group_map(g, "PATCH", pattern, fn, arg);
}

int vg_group_map_delete(vg_group *g, const char *pattern, vg_handler fn,
                        void *arg)
{
    return vg_group_map(g, "DELETE", pattern, fn, arg);
}

/* Concatenates two arrays of `size`-byte entries into a new one (NULL
 * when both are empty). 0 or -ENOMEM. */
static int vg__concat(void **out, size_t *nout, const void *a, size_t na,
                      const void *b, size_t nb, size_t size)
{
    char *all;

    *out = NULL;
    *nout = na + nb;
    if (*nout == 0)
        return 0;
    all = malloc(*nout * size);
    if (all == NULL)
        return -ENOMEM;
    if (na > 0)
        memcpy(all, a, na * size);
    if (nb > 0)
        memcpy(all + na * size, b, nb * size);
    *out = all;
    return 0;
}

int vg__group_resolve(vg_group *g, const vg__chain *app_chain)
{
    const vg__chain *base = g->parent ? &g->parent->chain : app_chain;

    g->effective_ms = g->timeout_ms >= 0 ? g->timeout_ms
                      : g->parent        ? g->parent->effective_ms
                                         : -1;
    /* A start that failed may be tried again: resolve afresh. */
    free(g->chain.mw);
    free(g->chain.filters);
    if (vg__concat((void **)&g->chain.mw, &g->chain.nmw, base->mw, base->nmw,
                   g->mw, g->nmw, sizeof *g->mw) != 0 ||
        vg__concat((void **)&g->chain.filters, &g->chain.nfilters,
                   base->filters, base->nfilters, g->filters, g->nfilters,
                   sizeof *g->filters) != 0)
        return -ENOMEM;
    return 0;
}
