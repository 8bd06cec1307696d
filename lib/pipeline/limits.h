/* limits.h - what a route lets its request body be: the body limit, the
 * form limits (fields, files) and, for uploads, where file parts go. Set
 * on the app, a group or a route before start, resolved once at start
 * into one record per route (route's own, then its groups' from the
 * innermost out, then the app's, then the defaults), so that a request
 * finds its route's record in the router match, with no lookup, before a
 * byte of its body is read. */
#ifndef VG_LIMITS_H
#define VG_LIMITS_H

#include <stdbool.h>
#include <stddef.h>

#include "volga.h"
#include "core/router.h"

/* One resolved record; a 0 in an unresolved one means "inherit". */
typedef struct vg__limits {
    size_t body;        /* the whole body */
    size_t file_size;   /* one file part */
    size_t files;       /* file parts */
    size_t fields;      /* text fields */
    size_t field_size;  /* one text field's value */
    int uploads;        /* file parts streamed to disk: 1 on, 0 off, -1 inherit */
    const char *upload_dir; /* where (owned by the registry); NULL: inherit */
} vg__limits;

/* The defaults past the app's own settings. */
#define VG__DEFAULT_FIELDS 10000
#define VG__DEFAULT_FIELD_SIZE (1024 * 1024)
#define VG__DEFAULT_FILES 100

/* Resolves every route's record and the app's (for requests no route
 * serves). 0 or -ENOMEM. At start, from vg__pipeline_prepare. */
int vg__limits_prepare(vg_app *app);

/* The record for a request: its route's (`m_body` from the match), or
 * the app's when NULL; NULL only before any prepare (requests made by
 * unit tests), where the app's body limit and the defaults apply. */
const vg__limits *vg__limits_of(const vg_app *app, const void *m_body);

/* Frees everything the limits registry holds. */
void vg__limits_free(vg_app *app);

#endif
