/* http_strict.c - the refusals RFC 9110/9112 require that libmicrohttpd
 * 0.9.75 does not make itself (see http_strict.h for how its in-place
 * parsing is read). Pure functions; no libmicrohttpd call. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "model/http_strict.h"

static const vg__strict_verdict vg__ok = {0, NULL};

static vg__strict_verdict vg__bad(const char *detail)
{
    vg__strict_verdict v = {400, detail};
    return v;
}

/* What each byte may be, looked up once per byte: these loops run over
 * every header name and value of every request (bench/RESULTS.md). */
#define VG__TCHAR 1 /* RFC 9110 5.6.2 tchar: header names, methods */
#define VG__HOST 2  /* uri-host reg-name, without sub-delims and '%' */
#define VG__VALUE 4 /* field-value: VCHAR, SP, HTAB, obs-text */
#define VG__TARGET 8 /* a request-target byte: VCHAR */
static const unsigned char vg__class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    4, 13, 12, 13, 13, 13, 13, 13, 12, 12, 13, 13, 12, 15, 15, 12,
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 12, 12, 12, 12, 12, 12,
    12, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 12, 12, 12, 13, 15,
    13, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 12, 13, 12, 15, 0,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
};

static bool vg__tchar(unsigned char c)
{
    return (vg__class[c] & VG__TCHAR) != 0;
}

vg__strict_verdict vg__strict_method(const char *method, size_t len,
                                     size_t longest_mapped)
{
    size_t i;

    if (len == 0)
        return vg__bad("empty method");
    for (i = 0; i < len; i++)
        if (!vg__tchar((unsigned char)method[i]))
            return vg__bad("method is not a token");
    if (len > VG__STRICT_METHOD_MAX && len > longest_mapped) {
        vg__strict_verdict v = {501, "method not implemented"};
        return v;
    }
    return vg__ok;
}

static int vg__hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (unsigned char)(c | 0x20);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The byte at raw[*i], percent-decoded (a '%' not followed by two hex
 * digits stays itself, as libmicrohttpd leaves it); advances *i. */
static unsigned char vg__decoded_at(const char *raw, size_t len, size_t *i)
{
    unsigned char c = (unsigned char)raw[*i];
    int hi, lo;

    if (c == '%' && *i + 2 < len) {
        hi = vg__hexval((unsigned char)raw[*i + 1]);
        lo = vg__hexval((unsigned char)raw[*i + 2]);
        if (hi >= 0 && lo >= 0) {
            *i += 3;
            return (unsigned char)(hi << 4 | lo);
        }
    }
    (*i)++;
    return c;
}

vg__strict_verdict vg__strict_target(const char *raw, size_t len)
{
    size_t i;
    unsigned char prev = 0, c;
    bool escaped = false;

    for (i = 0; i < len; i++) {
        c = (unsigned char)raw[i];
        if (!(vg__class[c] & VG__TARGET)) {
            if (c == ' ')
                return vg__bad("space in the request target");
            if (c == '\0')
                return vg__bad("NUL in the request target");
            if (c < 0x20 || c == 0x7f)
                return vg__bad("control character in the request target");
            return vg__bad("non-ASCII byte in the request target");
        }
        escaped |= c == '%';
    }
    if (!escaped)
        return vg__ok; /* only ASCII: nothing can be overlong */
    /* Overlong UTF-8 (RFC 3629 3): C0 and C1 only ever start one; E0 and
     * F0 do when the next byte is too small. A lax decoder further on
     * would read them as the shorter character ('.', '/'). */
    for (i = 0; i < len;) {
        c = vg__decoded_at(raw, len, &i);
        if (c == 0xc0 || c == 0xc1 || (prev == 0xe0 && c >= 0x80 && c < 0xa0) ||
            (prev == 0xf0 && c >= 0x80 && c < 0x90))
            return vg__bad("overlong UTF-8 in the request target");
        prev = c;
    }
    return vg__ok;
}

bool vg__strict_absolute_form(const char *raw, vg__strict_absolute *out)
{
    size_t skip, n;

    if (raw[0] != 'h' && raw[0] != 'H')
        return false; /* origin-form ("/..."), the usual case */
    if (strncasecmp(raw, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(raw, "https://", 8) == 0)
        skip = 8;
    else
        return false;
    n = strcspn(raw + skip, "/?#");
    if (n == 0)
        return false;
    out->authority = raw + skip;
    out->authority_len = n;
    out->rest = raw + skip + n;
    return true;
}

/* uri-host's reg-name without sub-delims (a comma list, ';' and the like
 * are what a proxy and a server could read differently) and without
 * pct-encoding (no real host name needs it, and an absolute-form target's
 * authority then decodes to itself, lib/model/request.c). */
static bool vg__hostchar(unsigned char c)
{
    return (vg__class[c] & VG__HOST) != 0;
}

/* Why a Host value is refused, from the first byte that does not fit. */
static vg__strict_verdict vg__bad_host(const char *value, size_t len)
{
    if (memchr(value, '@', len) != NULL)
        return vg__bad("userinfo in Host");
    if (memchr(value, '/', len) != NULL)
        return vg__bad("path in Host");
    if (memchr(value, ',', len) != NULL)
        return vg__bad("more than one value in Host");
    return vg__bad("invalid Host");
}

vg__strict_verdict vg__strict_host(const char *value, size_t len)
{
    size_t i = 0;

    if (len == 0)
        return vg__bad("empty Host");
    if (value[0] == '[') {
        /* IP-literal: hex digits, ':' and '.' (an IPv4 tail). */
        for (i = 1; i < len && value[i] != ']'; i++)
            if (vg__hexval((unsigned char)value[i]) < 0 && value[i] != ':' &&
                value[i] != '.')
                return vg__bad_host(value, len);
        if (i == len || i == 1)
            return vg__bad_host(value, len);
        i++;
    } else {
        while (i < len && vg__hostchar((unsigned char)value[i]))
            i++;
        if (i == 0)
            return vg__bad_host(value, len);
    }
    if (i < len && value[i] == ':')
        for (i++; i < len && value[i] >= '0' && value[i] <= '9'; i++)
            ;
    return i == len ? vg__ok : vg__bad_host(value, len);
}

vg__strict_verdict vg__strict_field_name(const char *name, size_t len)
{
    size_t i;

    if (len == 0)
        return vg__bad("empty header name");
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!vg__tchar(c))
            return vg__bad(c >= 0x80 ? "non-ASCII byte in a header name"
                                     : "header name is not a token");
    }
    return vg__ok;
}

vg__strict_verdict vg__strict_field_value(const char *value, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (!(vg__class[c] & VG__VALUE))
            return vg__bad(c == '\0' ? "NUL in a header value"
                           : c == '\r' ? "bare CR in a header value"
                                       : "control character in a header value");
    }
    return vg__ok;
}

bool vg__strict_is_http11(const char *version)
{
    static const char prefix[] = "HTTP/1.";
    size_t i;

    if (version == NULL)
        return false;
    /* Byte by byte: a shorter string stops at its NUL. */
    for (i = 0; i < sizeof prefix - 1; i++)
        if (version[i] != prefix[i])
            return false;
    return version[7] >= '1' && version[7] <= '9';
}

/* Whether the `n` bytes at `p` are all NUL. */
static bool vg__zeros(const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (p[i] != '\0')
            return false;
    return true;
}

/* Pointer distance b - a when b lies after a, else SIZE_MAX. Compared as
 * integers: after an obs-fold the two may lie in different blocks of
 * libmicrohttpd's pool. */
static size_t vg__gap(const char *a, const char *b)
{
    uintptr_t ua = (uintptr_t)a, ub = (uintptr_t)b;

    return ub >= ua ? (size_t)(ub - ua) : SIZE_MAX;
}

/* The longest run of spaces libmicrohttpd is allowed to have skipped
 * between two parts of the head that we follow; more would mean the two
 * strings do not lie next to each other. */
#define VG__STRICT_MAX_WS 256

void vg__strict_begin(vg__strict *s, const char *method, const char *uri,
                      size_t uri_len, const char *version)
{
    const char *mend;
    size_t gap, i;

    memset(s, 0, sizeof *s);
    if (version == NULL || version[0] == '\0' || method == NULL || uri == NULL)
        return; /* line_end NULL: each line is checked on its own */
    /* "METHOD SP+ target SP version": libmicrohttpd put a NUL at the first
     * space and skipped the others; anything else in between is the rest
     * of a method cut short by a NUL. */
    mend = method + strlen(method);
    gap = vg__gap(mend, uri);
    if (gap == 0 || gap > VG__STRICT_MAX_WS || mend[0] != '\0') {
        s->verdict = vg__bad("NUL in the request line");
        return;
    }
    for (i = 1; i < gap; i++)
        if (mend[i] != ' ') {
            s->verdict = vg__bad("NUL in the request line");
            return;
        }
    /* The target ends at the NUL that replaced the space before the
     * version; one that ends sooner held a NUL. */
    if (vg__gap(uri, version) != uri_len + 1) {
        s->verdict = vg__bad("NUL in the request target");
        return;
    }
    s->line_end = version + strlen(version);
}

/* Whether a field's name and value lie as libmicrohttpd leaves a line it
 * parsed in place, right after the previous line: see vg__strict_field. */
static const char *vg__strict_layout(vg__strict *s, const char *name,
                                     size_t nlen, const char *value)
{
    size_t gap, i;

    /* The value lies right after the name: its NUL (the colon), then
     * the spaces and tabs skipped. A name elsewhere is one libmicrohttpd
     * moved to glue an obs-fold continuation onto it (RFC 9112 5.2: a
     * server MUST refuse, or replace the fold by spaces in the value). */
    gap = vg__gap(name + nlen, value);
    if (gap == 0 || gap > VG__STRICT_MAX_WS)
        return "obs-fold (a header line continued)";
    for (i = 1; i < gap; i++)
        if (name[nlen + i] != ' ' && name[nlen + i] != '\t')
            return "obs-fold (a header line continued)";
    /* The line starts right after the previous one's CRLF (or bare LF),
     * both turned into NULs. A value cut short by a NUL leaves its rest
     * in between. */
    if (s->line_end != NULL) {
        gap = vg__gap(s->line_end, name);
        if ((gap != 1 && gap != 2) || !vg__zeros(s->line_end, gap))
            return "NUL in a header line";
    }
    return NULL;
}

/* The length of `str`, and whether each of its bytes has class `mask`,
 * in one pass (strlen and the check would be two). */
static size_t vg__scan(const char *str, unsigned char mask, bool *all)
{
    const unsigned char *p = (const unsigned char *)str;
    unsigned char acc = mask;

    /* Four bytes a round: the loop's own cost is most of it. */
    for (;; p += 4) {
        if (p[0] == '\0')
            break;
        acc &= vg__class[p[0]];
        if (p[1] == '\0') {
            p += 1;
            break;
        }
        acc &= vg__class[p[1]];
        if (p[2] == '\0') {
            p += 2;
            break;
        }
        acc &= vg__class[p[2]];
        if (p[3] == '\0') {
            p += 3;
            break;
        }
        acc &= vg__class[p[3]];
    }
    *all = acc == mask;
    return (size_t)(p - (const unsigned char *)str);
}

void vg__strict_field(vg__strict *s, const char *name, const char *value)
{
    size_t nlen, vlen;
    bool name_ok, value_ok;
    const char *bad;

    if (s->verdict.status != 0)
        return;
    if (value == NULL) {
        /* Not how libmicrohttpd 0.9.75 stores a header: stop following
         * the layout rather than guess. */
        value = "";
        s->layout_lost = true;
    }
    nlen = vg__scan(name, VG__TCHAR, &name_ok);
    vlen = vg__scan(value, VG__VALUE, &value_ok);
    if (!s->layout_lost && (bad = vg__strict_layout(s, name, nlen, value)) != NULL) {
        s->verdict = vg__bad(bad);
        return;
    }
    /* The slower checks only say why. */
    if (!name_ok || nlen == 0) {
        s->verdict = vg__strict_field_name(name, nlen);
        return;
    }
    if (!value_ok) {
        s->verdict = vg__strict_field_value(value, vlen);
        return;
    }
    if (nlen == 4 && strcasecmp(name, "Host") == 0 && s->hosts++ == 0)
        s->host = value;
    s->line_end = s->layout_lost ? NULL : value + vlen;
}

vg__strict_verdict vg__strict_end(vg__strict *s, bool http11,
                                  const char *head_end)
{
    size_t gap;

    if (s->verdict.status != 0)
        return s->verdict;
    /* Between the last line's last string and the end of the head lie
     * only that line's CRLF (or LF) and the empty line's, all NULs now:
     * 2 to 4 bytes. More is the rest of a value cut short by a NUL, or a
     * line libmicrohttpd took for the end of the head: one with an empty
     * name (": x"), whose colon it had already turned into a NUL. */
    if (!s->layout_lost && s->line_end != NULL && head_end != NULL) {
        gap = vg__gap(s->line_end, head_end);
        if (gap < 2 || gap > 4 || !vg__zeros(s->line_end, gap))
            return vg__bad("malformed end of the head (a NUL or an empty "
                           "header name)");
    }
    if (s->hosts > 1)
        return vg__bad("more than one Host field");
    if (s->hosts == 0)
        return http11 ? vg__bad("HTTP/1.1 request without Host") : vg__ok;
    return vg__strict_host(s->host, strlen(s->host));
}
