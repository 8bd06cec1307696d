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
    /* A file body (vg__result_fd, lib/web/static.c): `fd_len` bytes of
     * `fd` from `fd_off`, sent zero-copy by the glue. -1: none. Owned. */
    int fd;
    unsigned long long fd_off, fd_len;
};

/* What vg_defer returns: a marker, never a real answer. */
extern vg_result vg__deferred;

/* Takes the body out of `res` into *body (the caller now owns and frees
 * it; NULL for an empty body), leaving it empty. Lets the glue hand the
 * buffer to libmicrohttpd without a copy. A problem document is
 * serialized here. 0, or -ENOMEM. */
int vg__result_take_body(vg_result *res, char **body, size_t *len);

/* A 200 result whose body is `len` bytes of the open file `fd` starting at
 * `off`, sent without copying (sendfile where the connection allows). Takes
 * `fd` in every case: it is closed when the result or its response is
 * freed. NULL (ENOMEM) on failure. Any thread. */
vg_result *vg__result_fd(int fd, unsigned long long off,
                         unsigned long long len);

/* Takes the file body out of `res`: *fd (-1 if none) is then the caller's
 * to close. */
void vg__result_take_fd(vg_result *res, int *fd, unsigned long long *off,
                        unsigned long long *len);

/* Replaces the body of `res` with `body` (taken; malloc'd, len bytes), a
 * file body or problem document included: for middleware that rewrites
 * bodies (lib/web/compress.c). */
void vg__result_set_body(vg_result *res, char *body, size_t len);

/* Sets header `name` to `value` (copied), replacing the first one of that
 * name if any. 0 or -ENOMEM. */
int vg__result_replace_header(vg_result *res, const char *name,
                              const char *value);

/* Whether name and value are acceptable as a response header set by user
 * code (vg_result_set_header's rules). */
bool vg__result_header_ok(const char *name, const char *value);

/* A result with `status` and a short text/plain body, for the library's own
 * error answers. NULL on ENOMEM. */
vg_result *vg__result_error(unsigned status, const char *text);

#endif
