/* upload.h - files of a multipart body streamed to anonymous temporary
 * files as they arrive (the model side; lib/engine/form_glue.c feeds it
 * from libmicrohttpd's PostProcessor). The files are O_TMPFILE files (or
 * mkstemp files unlinked at once), so they have no name until
 * vg_upload_save gives them one, and closing them at the end of the
 * request is all it takes for the unsaved ones to disappear, whether the
 * request completed or its client left mid-body. */
#ifndef VG_UPLOAD_H
#define VG_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "volga.h"

/* Starts a new file for part `name` (filename and content type as sent,
 * copied; content_type may be NULL) in directory `dir`; the part begun
 * before is complete and its last bytes are written. 0, or a negative
 * errno (the directory is gone, no space, no memory). libmicrohttpd's
 * thread. */
int vg__upload_begin(vg_request *req, const char *dir, const char *name,
                     const char *filename, const char *content_type);
/* Appends to the file begun last (gathered, and written 256 KiB at a time:
 * see upload.c). 0 or a negative errno (ENOMEM, EIO, ENOSPC...), which may
 * be a failure to write earlier bytes. */
int vg__upload_write(vg_request *req, const char *data, size_t size);
/* The body is complete: writes what is still gathered, then rewinds every
 * file so that a handler reads it from its start. 0, or a negative errno
 * if the last bytes could not be written. */
int vg__uploads_done(vg_request *req);
/* Closes and frees the request's uploads (unsaved ones vanish). NULL is a
 * no-op. The request's last reference. */
void vg__uploads_free(vg_upload *head);

/* Tests only: never try O_TMPFILE, so that the mkstemp+unlink fallback
 * runs. */
extern bool vg__upload_no_tmpfile;

#endif
