/* group.h - the inside of a vg_group: a route prefix with its own
 * middleware, filters and deadline, resolved into a chain at start. */
#ifndef VG_GROUP_H
#define VG_GROUP_H

#include "volga.h"
#include "pipeline/pipeline.h"

struct vg_group {
    vg_app *app;
    vg_group *parent;       /* NULL for a group of the app */
    char *prefix;           /* joined with every parent's; "" for "/" */
    vg__mw *mw;             /* vg_group_use, in registration order */
    size_t nmw;
    vg__filter *filters;    /* vg_group_filter */
    size_t nfilters;
    long timeout_ms;        /* vg_group_set_timeout; -1: the parent's */
    long effective_ms;      /* resolved at start; -1: the app's */
    vg__chain chain;        /* resolved at start: app's, parents', own */
};

/* Resolves `g`'s chain and deadline from its parent's (already resolved:
 * parents are created, and so resolved, before their children) or the
 * app's chain. 0 or -ENOMEM. */
int vg__group_resolve(vg_group *g, const vg__chain *app_chain);

/* Frees a group and what it owns (not its children). NULL is a no-op. */
void vg__group_free(vg_group *g);

/* Grows a registration array by one entry of `size` bytes; 0 or -ENOMEM. */
int vg__grow(void **items, size_t *n, size_t size, const void *item);

#endif
