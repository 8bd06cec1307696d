/* static.h - the parsers behind static files, internal so that unit tests
 * and the fuzz target reach them. */
#ifndef VG_STATIC_H
#define VG_STATIC_H

#include <stdbool.h>
#include <time.h>

/* What a Range header asks of a representation of `size` bytes. */
typedef enum {
    VG__RANGE_WHOLE = 0,     /* absent, malformed, not bytes, or several
                                ranges: answer 200 with everything */
    VG__RANGE_ONE,           /* one satisfiable range: 206 */
    VG__RANGE_UNSATISFIABLE  /* 416, Content-Range with only the size */
} vg__range_kind;

/* Parses `hdr` (may be NULL); for VG__RANGE_ONE sets the inclusive
 * [*first, *last], clamped to the size. */
vg__range_kind vg__range_parse(const char *hdr, unsigned long long size,
                               unsigned long long *first,
                               unsigned long long *last);

/* Whether the comma-separated entity-tag list `list` ("*" included)
 * matches `etag`: weakly (W/ prefixes ignored) or strongly (a weak tag on
 * either side never matches). */
bool vg__etag_match(const char *list, const char *etag, bool weak);

/* Parses an HTTP date (IMF-fixdate, RFC 9110 5.6.7) into *out; false for
 * anything else, which callers treat as an absent header. */
bool vg__http_date_parse(const char *s, time_t *out);

/* The q-value (0-1000) an Accept-Encoding header gives `coding`, through
 * its own entry or "*"; -1 when neither is listed. A NULL header lists
 * nothing. "identity" is not special here: callers apply RFC 9110's rule
 * that it stays acceptable unless refused. */
int vg__accept_q(const char *ae, const char *coding);

/* Tests only: true makes file lookups use the O_NOFOLLOW walk even where
 * openat2(RESOLVE_BENEATH) exists. */
extern bool vg__static_force_walk;

#endif
