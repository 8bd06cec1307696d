/* result.h - the inside of a vg_result, read by the libmicrohttpd glue. */
#ifndef VG_RESULT_H
#define VG_RESULT_H

#include <stddef.h>
#include "volga.h"

typedef struct {
    char *name;
    char *value;
} vg__header;

struct vg_result {
    unsigned status;
    const char *ctype;    /* Content-Type, NULL for none; static or == ctype_owned */
    char *ctype_owned;    /* a Content-Type set by the user, owned */
    char *body;           /* owned, malloc'd; NULL when empty */
    size_t body_len;
    vg__header *headers;  /* owned array of owned strings */
    size_t nheaders;
    size_t cap_headers;
    vg_stream *stream;    /* a streamed body (vg_stream_new), referenced */
};

/* What vg_defer returns: a marker, never a real answer. */
extern vg_result vg__deferred;

/* Takes the body out of `res` (the caller now owns and frees it), leaving
 * it empty. Lets the glue hand the buffer to libmicrohttpd without a copy. */
char *vg__result_take_body(vg_result *res, size_t *len);

/* A result with `status` and a short text/plain body, for the library's own
 * error answers. NULL on ENOMEM. */
vg_result *vg__result_error(unsigned status, const char *text);

#endif
