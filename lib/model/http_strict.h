/* http_strict.h - what RFC 9110/9112 say a server MUST refuse, checked
 * above libmicrohttpd's parser (issue 15).
 *
 * Pure functions: no libmicrohttpd call, no allocation, no global state,
 * so that they can be unit-tested (tests/test_http_strict.c) and fuzzed
 * (tests/fuzz/fuzz_strict.c) without a socket. lib/engine/mhd_glue.c feeds them
 * once per request, on the first access-handler call, before routing.
 *
 * libmicrohttpd 0.9.75 parses the head in place in its read buffer: the
 * method, the target, the version and each header's name and value are
 * NUL-terminated strings at their place in the bytes received (CR, LF,
 * the space after the method and the colon replaced by NULs). Some things
 * it lets through leave no trace in the strings but do in where they lie:
 * a NUL inside a value cuts the value short, so the next line does not
 * start where the value seems to end; an obs-fold continuation line is
 * glued onto the previous header's *name*, which libmicrohttpd moves to a
 * new block of its pool, away from its value. The layout checks
 * (vg__strict_begin / vg__strict_field / vg__strict_end) account for
 * those bytes. They only compare the pointers given and read bytes lying
 * between two strings of the same head.
 */
#ifndef VG_HTTP_STRICT_H
#define VG_HTTP_STRICT_H

#include <stdbool.h>
#include <stddef.h>

/* A refusal: the status to answer (400, 501) and a detail for the
 * problem document, with no trailing newline. status 0: acceptable. */
typedef struct {
    unsigned status;
    const char *detail;
} vg__strict_verdict;

/* Methods longer than this that no route maps are answered 501: a server
 * may refuse a method it does not implement (RFC 9110 9.1), and no
 * registered method is this long. */
#define VG__STRICT_METHOD_MAX 32

/* The method: a token (else 400); longer than VG__STRICT_METHOD_MAX and
 * longer than `longest_mapped` (the longest method any route maps): 501. */
vg__strict_verdict vg__strict_method(const char *method, size_t len,
                                     size_t longest_mapped);

/* The request target as received (`raw`, `len` bytes, before any
 * percent-decoding): no space, control byte, NUL or non-ASCII byte; and
 * once percent-decoded, no overlong UTF-8 sequence (a "%C0%AE" that is a
 * '.' to a lax decoder). The %00 rule is the request model's
 * (lib/model/request.c). */
vg__strict_verdict vg__strict_target(const char *raw, size_t len);

/* Where an absolute-form target ("http://host:8080/p?q", RFC 9112 3.2.2)
 * keeps its parts: `authority` (host[:port]) of `authority_len` bytes
 * and the origin-form rest at `rest` ("/p?q"; "" when the target ends
 * after the authority, meaning "/"). */
typedef struct {
    const char *authority;
    size_t authority_len;
    const char *rest;
} vg__strict_absolute;

/* Whether `raw` (NUL-terminated) is an absolute-form target with an http
 * or https scheme; fills `out` if so. A target of another scheme, or with
 * an empty authority, is not one (and then fails origin-form parsing). */
bool vg__strict_absolute_form(const char *raw, vg__strict_absolute *out);

/* A Host value (or an absolute target's authority), `len` bytes:
 * uri-host [ ":" port ] with no userinfo, path, comma list or space;
 * empty is refused. */
vg__strict_verdict vg__strict_host(const char *value, size_t len);

/* A header name: a non-empty token of ASCII tchars. */
vg__strict_verdict vg__strict_field_name(const char *name, size_t len);

/* A header value: no NUL, CR, LF or other control byte but HTAB (obs-text,
 * bytes 0x80-0xFF, is allowed). */
vg__strict_verdict vg__strict_field_value(const char *value, size_t len);

/* The walk over one head, field by field in the order received. */
typedef struct {
    const char *line_end;  /* where the previous line's last string ends,
                              NULL when not known (no request line) */
    bool layout_lost;      /* a field not laid out by MHD: stop following */
    unsigned hosts;        /* Host fields seen */
    const char *host;      /* the first one's value */
    vg__strict_verdict verdict; /* the first refusal */
} vg__strict;

/* Starts the walk over a head whose request line libmicrohttpd split into
 * `method`, the target (at `uri` as the URI callback saw it, `uri_len`
 * bytes by strlen at that time) and `version`, all in its read buffer.
 * Checks that the request line holds no NUL (the target must end right
 * before the version). `version` "" (none sent): the layout is not
 * followed. */
void vg__strict_begin(vg__strict *s, const char *method, const char *uri,
                      size_t uri_len, const char *version);

/* One header, as libmicrohttpd holds it (NUL-terminated name and value
 * in its read buffer). */
void vg__strict_field(vg__strict *s, const char *name, const char *value);

/* The verdict on the whole head: the first refusal seen, else the end of
 * the head (`head_end`: where libmicrohttpd says the head ends, the
 * method plus MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE; NULL if unknown)
 * and the Host rules (HTTP/1.1, `http11`, needs exactly one Host field; a
 * Host field that is present must be valid; an absolute-form target's
 * authority is checked apart, with vg__strict_host). */
vg__strict_verdict vg__strict_end(vg__strict *s, bool http11,
                                  const char *head_end);

/* Whether `version` ("HTTP/1.1") is HTTP/1.1 or a later 1.x, which must
 * carry Host (RFC 9112 3.2). */
bool vg__strict_is_http11(const char *version);

#endif
