/* cookie.h - the parts of lib/web/cookie.c that the fuzz target
 * (tests/fuzz/fuzz_cookie.c) reaches without a request. Never installed. */
#ifndef VG_WEB_COOKIE_H
#define VG_WEB_COOKIE_H

#include <stddef.h>
#include <volga.h>

/* One cookie of a Cookie header: both strings point into the buffer that
 * was parsed. */
typedef struct {
    const char *name;
    const char *value;
} vg__cookie_pair;

/*
 * Parses `buf` (len bytes, modified in place: separators become NULs), the
 * value of one or more Cookie fields joined with ';', into `out` (room for
 * `max` pairs). RFC 6265 section 4.2.1 with section 5.4's leniency: pairs
 * are split on ';', whitespace around them is dropped, a name must be a
 * token and a value cookie-octets (optionally in double quotes, which are
 * removed); any other pair is skipped, as browsers would never have sent
 * it. Returns the number of pairs kept, in order.
 */
size_t vg__cookie_parse(char *buf, size_t len, vg__cookie_pair *out,
                        size_t max);

/* Whether `name` is an RFC 6265 cookie-name (an RFC 9110 token) and
 * `value` cookie-octets (may be empty). */
int vg__cookie_name_ok(const char *name);
int vg__cookie_value_ok(const char *value);

/* Checks a signed cookie's raw value "VALUE.EXPIRY.MAC" for `name`; on
 * success sets *value_len to the length of VALUE. 0, -EBADMSG (malformed,
 * or no key's MAC matches) or -ETIME (expired). */
int vg__cookie_verify(const vg_cookie_keys *k, const char *name,
                      const char *raw, size_t *value_len);

#endif
