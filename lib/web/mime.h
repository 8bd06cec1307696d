/* mime.h - Content-Type from a file name: a built-in table for the types a
 * site serves, then the system's /etc/mime.types (Debian media-types). */
#ifndef VG_MIME_H
#define VG_MIME_H

/* The Content-Type for a file called `name` (its last extension, compared
 * case-insensitively), with "; charset=utf-8" on text types, or
 * "application/octet-stream" when nothing is known. Static storage, never
 * NULL. /etc/mime.types is read once, on first use. Any thread. */
const char *vg__mime_for(const char *name);

/* Whether a Content-Type is worth compressing: text, JSON and XML (and
 * their +json/+xml relatives), JavaScript, SVG, wasm. NULL is not. */
int vg__mime_compressible(const char *ctype);

#endif
