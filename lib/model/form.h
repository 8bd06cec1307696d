/* form.h - the decoded fields of a form body (urlencoded or the text parts
 * of multipart/form-data), the model side of form decoding.
 *
 * The split: libmicrohttpd's PostProcessor does all the parsing, and only
 * the engine calls libmicrohttpd, so the PostProcessor lives in
 * lib/engine/form_glue.c; it hands each decoded piece to vg__form_feed
 * here, which stores it in the request. vg_request_form and
 * vg_request_form_each (public, volga.h) then only read what was stored:
 * the body is decoded exactly once, on libmicrohttpd's thread, while it
 * arrives. */
#ifndef VG_FORM_H
#define VG_FORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volga.h"

typedef struct vg__form vg__form;

/* Gives `req` an empty form (its body is a form). 0 or -ENOMEM. Called once,
 * by the engine, on libmicrohttpd's thread. */
int vg__form_begin(vg_request *req);

/* Stores a piece of field `name`'s value: `off` 0 starts a new field (a
 * repeated name is a new field too), a larger `off` continues the last one
 * (the PostProcessor splits long values). 0, -E2BIG past the route's
 * limits on the number of fields or the size of one (lib/pipeline/limits.h),
 * -EBADMSG for a continuation that does not fit, -ENOMEM. A form already
 * marked bad takes nothing. */
int vg__form_feed(vg_request *req, const char *name, const char *data,
                  uint64_t off, size_t size);

/* Counts a piece of a file part (`off` 0: a new file) against the route's
 * limits on files and their size. 0, -E2BIG past them, -EBADMSG on a bad
 * form. */
int vg__form_count_file(vg_request *req, uint64_t off, size_t size);

/* Marks the request's form as undecodable (`err` a negative errno: EBADMSG
 * for a malformed body); vg_request_form then fails with that errno. */
void vg__form_fail(vg_request *req, int err);

/* Frees a form; NULL is a no-op. The request's last reference. */
void vg__form_free(vg__form *form);

#endif
