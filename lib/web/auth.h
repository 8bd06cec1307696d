/* auth.h - the part of lib/web/auth.c that the fuzz target
 * (tests/fuzz/fuzz_basic.c) reaches without a request. Never installed. */
#ifndef VG_WEB_AUTH_H
#define VG_WEB_AUTH_H

#include <stddef.h>

/*
 * Decodes an Authorization field value of the Basic scheme (RFC 7617):
 * "Basic" (any case), one or more spaces, base64 (RFC 4648, padded, no
 * whitespace inside), optional trailing spaces. On success returns 0 and
 * sets *buf to a malloc'd "user\0password\0" (the caller frees it), *user
 * and *password pointing into it. -ENOENT for another scheme (or NULL),
 * -EINVAL when malformed (bad base64, no ':', a NUL or another control
 * character in the decoded text), -ENOMEM.
 */
int vg__basic_decode(const char *field, char **buf, const char **user,
                     const char **password);

#endif
