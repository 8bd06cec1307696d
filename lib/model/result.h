/* result.h - the inside of a vg_result, read by the libmicrohttpd glue. */
#ifndef VG_RESULT_H
#define VG_RESULT_H

#include <stdbool.h>
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
    json_t *problem;      /* a problem document (vg_problem), serialized
                             into the body when the response is built */
};

/* What vg_defer returns: a marker, never a real answer. */
extern vg_result vg__deferred;

/* Takes the body out of `res` into *body (the caller now owns and frees
 * it; NULL for an empty body), leaving it empty. Lets the glue hand the
 * buffer to libmicrohttpd without a copy. A problem document is
 * serialized here. 0, or -ENOMEM. */
int vg__result_take_body(vg_result *res, char **body, size_t *len);

/* Whether name and value are acceptable as a response header set by user
 * code (vg_result_set_header's rules). */
bool vg__result_header_ok(const char *name, const char *value);

/* A result with `status` and a short text/plain body, for the library's own
 * error answers. NULL on ENOMEM. */
vg_result *vg__result_error(unsigned status, const char *text);

#endif
