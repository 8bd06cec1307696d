/* cookie.c - reading and setting cookies (RFC 6265), signed ones too,
 * written against the public API only.
 *
 * Reading: the first vg_request_cookie of a request copies every Cookie
 * field it got (vg_request_headers: each field as sent, or the joined
 * value where fields were joined with "; ") into one buffer, parses it in
 * place and attaches the result to the request (vg_request_set_data), so
 * later lookups are a scan of an array and every string stays valid for
 * the request's life.
 *
 * Signed cookies carry "VALUE.EXPIRY.MAC": EXPIRY is the Unix time after
 * which the cookie is void, 0 for none, and MAC is HMAC-SHA256 (nettle)
 * over "NAME=VALUE.EXPIRY" in unpadded base64url, so neither the value,
 * the expiry nor the name can change without the key. The first key signs;
 * every key verifies (rotation). The comparison is constant-time over the
 * encoded MACs (vg__cookie_mac_equal), so nothing sent by the client is
 * decoded before it is trusted. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <nettle/base64.h>
#include <nettle/hmac.h>

#include <volga.h>
#include "web/cookie.h"

/* Shortest key accepted: 256 bits, SHA-256's own output size. */
#define VG__COOKIE_MIN_KEY 32
/* Unpadded base64url of a SHA-256 MAC. */
#define VG__COOKIE_MAC_LEN 43

/* ---- Characters (RFC 6265 section 4.1.1) ---- */

/* Classes of each byte, looked up once per byte of every cookie a request
 * carries (a loop of range tests and a strchr per byte cost as much as
 * the HMAC that follows: bench/RESULTS.md "All five together"). */
#define VG__CK_TCHAR 1u /* token character: cookie names */
#define VG__CK_OCTET 2u /* cookie-octet: cookie values */

/* token: ALPHA, DIGIT and "!#$%&'*+-.^_`|~". cookie-octet: US-ASCII
 * without CTLs, whitespace, DQUOTE, comma, semicolon and backslash
 * (0x21, 0x23-0x2b, 0x2d-0x3a, 0x3c-0x5b, 0x5d-0x7e). */
#define VG__CK_T (VG__CK_TCHAR | VG__CK_OCTET)
#define VG__CK_O VG__CK_OCTET
static const unsigned char vg__cookie_class[256] = {
    ['!'] = VG__CK_T, ['"'] = 0, ['#'] = VG__CK_T, ['$'] = VG__CK_T,
    ['%'] = VG__CK_T, ['&'] = VG__CK_T, ['\''] = VG__CK_T, ['('] = VG__CK_O,
    [')'] = VG__CK_O, ['*'] = VG__CK_T, ['+'] = VG__CK_T, ['-'] = VG__CK_T,
    ['.'] = VG__CK_T, ['/'] = VG__CK_O,
    ['0'] = VG__CK_T, ['1'] = VG__CK_T, ['2'] = VG__CK_T, ['3'] = VG__CK_T,
    ['4'] = VG__CK_T, ['5'] = VG__CK_T, ['6'] = VG__CK_T, ['7'] = VG__CK_T,
    ['8'] = VG__CK_T, ['9'] = VG__CK_T, [':'] = VG__CK_O, ['<'] = VG__CK_O,
    ['='] = VG__CK_O, ['>'] = VG__CK_O, ['?'] = VG__CK_O, ['@'] = VG__CK_O,
    ['A'] = VG__CK_T, ['B'] = VG__CK_T, ['C'] = VG__CK_T, ['D'] = VG__CK_T,
    ['E'] = VG__CK_T, ['F'] = VG__CK_T, ['G'] = VG__CK_T, ['H'] = VG__CK_T,
    ['I'] = VG__CK_T, ['J'] = VG__CK_T, ['K'] = VG__CK_T, ['L'] = VG__CK_T,
    ['M'] = VG__CK_T, ['N'] = VG__CK_T, ['O'] = VG__CK_T, ['P'] = VG__CK_T,
    ['Q'] = VG__CK_T, ['R'] = VG__CK_T, ['S'] = VG__CK_T, ['T'] = VG__CK_T,
    ['U'] = VG__CK_T, ['V'] = VG__CK_T, ['W'] = VG__CK_T, ['X'] = VG__CK_T,
    ['Y'] = VG__CK_T, ['Z'] = VG__CK_T, ['['] = VG__CK_O, [']'] = VG__CK_O,
    ['^'] = VG__CK_T, ['_'] = VG__CK_T, ['`'] = VG__CK_T,
    ['a'] = VG__CK_T, ['b'] = VG__CK_T, ['c'] = VG__CK_T, ['d'] = VG__CK_T,
    ['e'] = VG__CK_T, ['f'] = VG__CK_T, ['g'] = VG__CK_T, ['h'] = VG__CK_T,
    ['i'] = VG__CK_T, ['j'] = VG__CK_T, ['k'] = VG__CK_T, ['l'] = VG__CK_T,
    ['m'] = VG__CK_T, ['n'] = VG__CK_T, ['o'] = VG__CK_T, ['p'] = VG__CK_T,
    ['q'] = VG__CK_T, ['r'] = VG__CK_T, ['s'] = VG__CK_T, ['t'] = VG__CK_T,
    ['u'] = VG__CK_T, ['v'] = VG__CK_T, ['w'] = VG__CK_T, ['x'] = VG__CK_T,
    ['y'] = VG__CK_T, ['z'] = VG__CK_T, ['{'] = VG__CK_O, ['|'] = VG__CK_T,
    ['}'] = VG__CK_O, ['~'] = VG__CK_T,
};
#undef VG__CK_T
#undef VG__CK_O

static bool vg__cookie_tchar(unsigned char c)
{
    return (vg__cookie_class[c] & VG__CK_TCHAR) != 0;
}

static bool vg__cookie_octet(unsigned char c)
{
    return (vg__cookie_class[c] & VG__CK_OCTET) != 0;
}

int vg__cookie_name_ok(const char *name)
{
    const char *p;

    if (name == NULL || *name == '\0')
        return 0;
    for (p = name; *p != '\0'; p++)
        if (!vg__cookie_tchar((unsigned char)*p))
            return 0;
    return 1;
}

int vg__cookie_value_ok(const char *value)
{
    const char *p;

    if (value == NULL)
        return 0;
    for (p = value; *p != '\0'; p++)
        if (!vg__cookie_octet((unsigned char)*p))
            return 0;
    return 1;
}

/* ---- Parsing ---- */

static bool vg__cookie_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Checks one "name=value" piece (NUL-terminated, in place); on success
 * points the pair into it. */
static bool vg__cookie_piece(char *s, char *end, vg__cookie_pair *pair)
{
    char *eq, *name_end, *v;
    size_t vlen;

    while (s < end && vg__cookie_ows(*s))
        s++;
    while (end > s && vg__cookie_ows(end[-1]))
        end--;
    *end = '\0';
    eq = memchr(s, '=', (size_t)(end - s));
    if (eq == NULL)
        return false;
    name_end = eq;
    while (name_end > s && vg__cookie_ows(name_end[-1]))
        name_end--;
    *name_end = '\0';
    v = eq + 1;
    while (v < end && vg__cookie_ows(*v))
        v++;
    vlen = (size_t)(end - v);
    if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
        v[vlen - 1] = '\0';
        v++;
    }
    if (!vg__cookie_name_ok(s) || !vg__cookie_value_ok(v))
        return false;
    pair->name = s;
    pair->value = v;
    return true;
}

size_t vg__cookie_parse(char *buf, size_t len, vg__cookie_pair *out,
                        size_t max)
{
    size_t n = 0;
    char *p = buf, *end = buf + len, *semi;

    while (p < end && n < max) {
        semi = memchr(p, ';', (size_t)(end - p));
        if (semi == NULL)
            semi = end;
        /* A NUL inside a piece (never from a header, possible from a
         * fuzzer) ends it early: memchr above already bounded it. */
        if (memchr(p, '\0', (size_t)(semi - p)) == NULL &&
            vg__cookie_piece(p, semi, &out[n]))
            n++;
        p = semi + 1;
    }
    return n;
}

/* ---- The request's jar ---- */

/* A value handed out by vg_request_signed_cookie when the jar's own room
 * for them is used up (several signed cookies read from one request). */
typedef struct vg__cookie_copy {
    struct vg__cookie_copy *next;
    char value[];
} vg__cookie_copy;

/* One allocation per request that reads cookies: this header, the pairs,
 * the Cookie text joined with ';', and as much room again for the values
 * vg_request_signed_cookie hands out (each shorter than its raw value). */
typedef struct {
    vg__cookie_pair *pairs;
    size_t n;
    char *spare;               /* the free part of the room for values */
    size_t spare_left;
    vg__cookie_copy *copies;   /* values that did not fit there */
} vg__cookie_jar;

/* What the first pass over the headers learns, and the second fills. */
typedef struct {
    size_t len, semis;         /* bytes of Cookie text, ';' among them */
    char *w;                   /* the second pass's write position */
} vg__cookie_scan;

static const char vg__cookie_key;

static void vg__cookie_jar_free(void *p)
{
    vg__cookie_jar *jar = p;
    vg__cookie_copy *c, *next;

    for (c = jar->copies; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    free(jar);
}

/* Whether a header is a Cookie field; the first letter settles most. */
static bool vg__cookie_field(const char *name)
{
    return (name[0] | 0x20) == 'c' && strcasecmp(name, "Cookie") == 0;
}

static int vg__cookie_measure(const char *name, const char *value, void *arg)
{
    vg__cookie_scan *sc = arg;
    const char *p;

    if (!vg__cookie_field(name))
        return 0;
    for (p = value; *p != '\0'; p++)
        sc->semis += *p == ';';
    sc->len += (size_t)(p - value) + 1;
    return 0;
}

static int vg__cookie_copy_text(const char *name, const char *value, void *arg)
{
    vg__cookie_scan *sc = arg;
    size_t n;

    if (!vg__cookie_field(name))
        return 0;
    n = strlen(value);
    memcpy(sc->w, value, n);
    sc->w[n] = ';';
    sc->w += n + 1;
    return 0;
}

/* The request's parsed cookies, built on first use; NULL without memory. */
static vg__cookie_jar *vg__cookie_jar_get(const vg_request *req)
{
    vg__cookie_jar *jar = vg_request_data(req, &vg__cookie_key);
    vg__cookie_scan sc = {0, 0, NULL};
    size_t max;
    char *text;

    if (jar != NULL)
        return jar;
    /* Two passes over the headers cost less than growing a buffer. */
    vg_request_headers(req, vg__cookie_measure, &sc);
    max = sc.semis + (sc.len > 0 ? 1 : 0) + 1;
    jar = malloc(sizeof *jar + max * sizeof *jar->pairs + 2 * sc.len + 1);
    if (jar == NULL)
        return NULL;
    jar->pairs = (vg__cookie_pair *)(jar + 1);
    text = (char *)(jar->pairs + max);
    sc.w = text;
    vg_request_headers(req, vg__cookie_copy_text, &sc);
    jar->n = vg__cookie_parse(text, sc.len, jar->pairs, max);
    jar->spare = text + sc.len;
    jar->spare_left = sc.len + 1;
    jar->copies = NULL;
    /* The request's data is the request's own, not its readers': the
     * contract's const accessor may still fill its cache. */
    if (vg_request_set_data((vg_request *)req, &vg__cookie_key, jar,
                            vg__cookie_jar_free) != 0)
        return NULL;
    return jar;
}

const char *vg_request_cookie(const vg_request *req, const char *name)
{
    vg__cookie_jar *jar;
    size_t i;

    if (req == NULL || name == NULL)
        return NULL;
    jar = vg__cookie_jar_get(req);
    if (jar == NULL)
        return NULL;
    /* RFC 6265 5.4: the more specific cookie (longer path) is sent first. */
    for (i = 0; i < jar->n; i++)
        if (strcmp(jar->pairs[i].name, name) == 0)
            return jar->pairs[i].value;
    return NULL;
}

/* ---- Attributes and Set-Cookie ---- */

struct vg_cookie_attrs {
    char *path;
    char *domain;
    long max_age;          /* -1: none */
    long long expires;     /* Unix time; -1: none */
    bool secure, http_only, partitioned;
    vg_same_site same_site;
};

vg_cookie_attrs *vg_cookie_attrs_new(void)
{
    vg_cookie_attrs *a = calloc(1, sizeof *a);

    if (a == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    a->max_age = -1;
    a->expires = -1;
    return a;
}

void vg_cookie_attrs_free(vg_cookie_attrs *a)
{
    if (a == NULL)
        return;
    free(a->path);
    free(a->domain);
    free(a);
}

static int vg__cookie_set_text(char **slot, const char *text, bool domain)
{
    const char *p;
    char *copy = NULL;

    if (text != NULL) {
        if (*text == '\0')
            return -EINVAL;
        for (p = text; *p != '\0'; p++) {
            unsigned char c = (unsigned char)*p;
            /* path-value: any CHAR but CTLs and ';'. A domain is a host
             * name: letters, digits, '-' and '.'. */
            if (domain ? !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c >= '0' && c <= '9') || c == '-' || c == '.')
                       : (c < 0x20 || c >= 0x7f || c == ';'))
                return -EINVAL;
        }
        copy = strdup(text);
        if (copy == NULL)
            return -ENOMEM;
    }
    free(*slot);
    *slot = copy;
    return 0;
}

int vg_cookie_attrs_set_path(vg_cookie_attrs *a, const char *path)
{
    if (a == NULL || (path != NULL && path[0] != '/'))
        return -EINVAL;
    return vg__cookie_set_text(&a->path, path, false);
}

int vg_cookie_attrs_set_domain(vg_cookie_attrs *a, const char *domain)
{
    if (a == NULL)
        return -EINVAL;
    return vg__cookie_set_text(&a->domain, domain, true);
}

int vg_cookie_attrs_set_max_age(vg_cookie_attrs *a, long seconds)
{
    if (a == NULL || seconds < -1)
        return -EINVAL;
    a->max_age = seconds;
    return 0;
}

int vg_cookie_attrs_set_expires(vg_cookie_attrs *a, long long unix_time)
{
    /* Year 9999 at most: RFC 6265's dates have four-digit years. */
    if (a == NULL || unix_time < -1 || unix_time > 253402300799LL)
        return -EINVAL;
    a->expires = unix_time;
    return 0;
}

int vg_cookie_attrs_set_secure(vg_cookie_attrs *a, bool on)
{
    if (a == NULL)
        return -EINVAL;
    a->secure = on;
    return 0;
}

int vg_cookie_attrs_set_http_only(vg_cookie_attrs *a, bool on)
{
    if (a == NULL)
        return -EINVAL;
    a->http_only = on;
    return 0;
}

int vg_cookie_attrs_set_same_site(vg_cookie_attrs *a, vg_same_site s)
{
    if (a == NULL || (unsigned)s > VG_SAME_SITE_NONE)
        return -EINVAL;
    a->same_site = s;
    return 0;
}

int vg_cookie_attrs_set_partitioned(vg_cookie_attrs *a, bool on)
{
    if (a == NULL)
        return -EINVAL;
    a->partitioned = on;
    return 0;
}

/* An IMF-fixdate (RFC 9110 5.6.7), in English whatever the locale. */
static void vg__cookie_date(char *out, size_t len, long long t)
{
    static const char days[][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    snprintf(out, len, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
}

/* Appends "; text" to the header being built. */
static void vg__cookie_append(char *buf, size_t cap, size_t *len,
                              const char *a, const char *b)
{
    int n = snprintf(buf + *len, cap - *len, "; %s%s", a, b ? b : "");

    if (n > 0)
        *len += (size_t)n;
}

vg_result *vg_result_set_cookie(vg_result *res, const char *name,
                                const char *value, const vg_cookie_attrs *a)
{
    static const char *const same[] = {NULL, "Lax", "Strict", "None"};
    char *line, num[32], date[40];
    size_t cap, len;
    bool secure;

    if (res == NULL)
        return NULL;
    if (!vg__cookie_name_ok(name) || !vg__cookie_value_ok(value)) {
        vg_result_free(res);
        errno = EINVAL;
        return NULL;
    }
    cap = strlen(name) + strlen(value) + 200 +
          (a && a->path ? strlen(a->path) : 0) +
          (a && a->domain ? strlen(a->domain) : 0);
    line = malloc(cap);
    if (line == NULL) {
        vg_result_free(res);
        errno = ENOMEM;
        return NULL;
    }
    len = (size_t)snprintf(line, cap, "%s=%s", name, value);
    if (a != NULL) {
        if (a->path)
            vg__cookie_append(line, cap, &len, "Path=", a->path);
        if (a->domain)
            vg__cookie_append(line, cap, &len, "Domain=", a->domain);
        if (a->max_age >= 0) {
            snprintf(num, sizeof num, "%ld", a->max_age);
            vg__cookie_append(line, cap, &len, "Max-Age=", num);
        }
        if (a->expires >= 0) {
            vg__cookie_date(date, sizeof date, a->expires);
            vg__cookie_append(line, cap, &len, "Expires=", date);
        }
        /* Browsers reject SameSite=None and Partitioned without Secure. */
        secure = a->secure || a->same_site == VG_SAME_SITE_NONE ||
                 a->partitioned;
        if (secure)
            vg__cookie_append(line, cap, &len, "Secure", NULL);
        if (a->http_only)
            vg__cookie_append(line, cap, &len, "HttpOnly", NULL);
        if (same[a->same_site] != NULL)
            vg__cookie_append(line, cap, &len, "SameSite=", same[a->same_site]);
        if (a->partitioned)
            vg__cookie_append(line, cap, &len, "Partitioned", NULL);
    }
    res = vg_result_set_header(res, "Set-Cookie", line);
    free(line);
    return res;
}

vg_result *vg_result_clear_cookie(vg_result *res, const char *name,
                                  const vg_cookie_attrs *a)
{
    vg_cookie_attrs gone = {0};

    if (a != NULL)
        gone = *a;
    gone.max_age = 0;
    gone.expires = 0; /* Thu, 01 Jan 1970: for clients without Max-Age */
    return vg_result_set_cookie(res, name, "", &gone);
}

/* ---- Signed cookies ---- */

struct vg_cookie_keys {
    struct hmac_sha256_ctx *keys; /* keyed once; copied per MAC */
    size_t n;
};

static int vg__cookie_keys_grow(vg_cookie_keys *k, const void *key, size_t len)
{
    struct hmac_sha256_ctx *grown;

    if (key == NULL || len < VG__COOKIE_MIN_KEY)
        return -EINVAL;
    grown = realloc(k->keys, (k->n + 1) * sizeof *grown);
    if (grown == NULL)
        return -ENOMEM;
    k->keys = grown;
    hmac_sha256_set_key(&k->keys[k->n++], len, key);
    return 0;
}

vg_cookie_keys *vg_cookie_keys_new(const void *key, size_t len)
{
    vg_cookie_keys *k = calloc(1, sizeof *k);
    int rc;

    if (k == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    rc = vg__cookie_keys_grow(k, key, len);
    if (rc != 0) {
        free(k);
        errno = -rc;
        return NULL;
    }
    return k;
}

int vg_cookie_keys_add(vg_cookie_keys *k, const void *key, size_t len)
{
    if (k == NULL)
        return -EINVAL;
    return vg__cookie_keys_grow(k, key, len);
}

void vg_cookie_keys_free(vg_cookie_keys *k)
{
    if (k == NULL)
        return;
    /* The keyed states are as secret as the keys. */
    memset(k->keys, 0, k->n * sizeof *k->keys);
    free(k->keys);
    free(k);
}

/* The MAC of "name=value.expiry" (value: vlen bytes) under key `i`, in
 * unpadded base64url, NUL-terminated. */
static void vg__cookie_mac(const vg_cookie_keys *k, size_t i, const char *name,
                           const char *value, size_t vlen, const char *expiry,
                           char out[VG__COOKIE_MAC_LEN + 4])
{
    struct hmac_sha256_ctx ctx = k->keys[i];
    struct base64_encode_ctx b64;
    uint8_t digest[SHA256_DIGEST_SIZE];
    size_t n;

    hmac_sha256_update(&ctx, strlen(name), (const uint8_t *)name);
    hmac_sha256_update(&ctx, 1, (const uint8_t *)"=");
    hmac_sha256_update(&ctx, vlen, (const uint8_t *)value);
    hmac_sha256_update(&ctx, 1, (const uint8_t *)".");
    hmac_sha256_update(&ctx, strlen(expiry), (const uint8_t *)expiry);
    hmac_sha256_digest(&ctx, sizeof digest, digest);
    base64url_encode_init(&b64);
    n = base64_encode_update(&b64, out, sizeof digest, digest);
    n += base64_encode_final(&b64, out + n);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
}

vg_result *vg_result_set_signed_cookie(vg_result *res, const vg_cookie_keys *k,
                                       const char *name, const char *value,
                                       long ttl_seconds,
                                       const vg_cookie_attrs *a)
{
    char expiry[24], mac[VG__COOKIE_MAC_LEN + 4], *signed_value;
    size_t vlen;

    if (res == NULL)
        return NULL;
    if (k == NULL || ttl_seconds < 0 || !vg__cookie_name_ok(name) ||
        !vg__cookie_value_ok(value)) {
        vg_result_free(res);
        errno = EINVAL;
        return NULL;
    }
    snprintf(expiry, sizeof expiry, "%lld",
             ttl_seconds ? (long long)time(NULL) + ttl_seconds : 0LL);
    vlen = strlen(value);
    vg__cookie_mac(k, 0, name, value, vlen, expiry, mac);
    signed_value = malloc(vlen + strlen(expiry) + strlen(mac) + 3);
    if (signed_value == NULL) {
        vg_result_free(res);
        errno = ENOMEM;
        return NULL;
    }
    sprintf(signed_value, "%s.%s.%s", value, expiry, mac);
    res = vg_result_set_cookie(res, name, signed_value, a);
    free(signed_value);
    return res;
}

/* Whether `s` (n bytes) is a decimal Unix time: 1 to 19 digits. */
static bool vg__cookie_expiry(const char *s, size_t n, long long *out)
{
    long long v = 0;
    size_t i;

    if (n == 0 || n > 18)
        return false;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* Whether two MACs in base64url (VG__COOKIE_MAC_LEN characters each) are
 * equal, in a time that does not depend on where they differ. nettle's
 * memeql_sec does the same a byte at a time through volatile pointers,
 * which costs as much as half the HMAC; this compares 8-byte words and
 * folds every difference into one accumulator, with no branch on the
 * data, which compilers keep branch-free. */
static bool vg__cookie_mac_equal(const char *a, const char *b)
{
    char x[48] = {0}, y[48] = {0};
    uint64_t wa, wb, diff = 0;
    size_t i;

    memcpy(x, a, VG__COOKIE_MAC_LEN);
    memcpy(y, b, VG__COOKIE_MAC_LEN);
    for (i = 0; i < sizeof x; i += 8) {
        memcpy(&wa, x + i, 8);
        memcpy(&wb, y + i, 8);
        diff |= wa ^ wb;
    }
    return diff == 0;
}

int vg__cookie_verify(const vg_cookie_keys *k, const char *name,
                      const char *raw, size_t *value_len)
{
    const char *mac_at = strrchr(raw, '.'), *exp_at;
    char expiry[24], mac[VG__COOKIE_MAC_LEN + 4];
    long long when;
    bool ok = false;
    size_t i, elen;

    if (mac_at == NULL || strlen(mac_at + 1) != VG__COOKIE_MAC_LEN)
        return -EBADMSG;
    for (exp_at = mac_at; exp_at > raw && exp_at[-1] != '.'; exp_at--)
        ;
    if (exp_at == raw)
        return -EBADMSG;
    elen = (size_t)(mac_at - exp_at);
    if (!vg__cookie_expiry(exp_at, elen, &when))
        return -EBADMSG;
    memcpy(expiry, exp_at, elen);
    expiry[elen] = '\0';
    /* Every key is tried, whichever matches, so the time taken does not
     * say which key (or how much of a MAC) was right. */
    for (i = 0; i < k->n; i++) {
        vg__cookie_mac(k, i, name, raw, (size_t)(exp_at - 1 - raw), expiry, mac);
        ok |= vg__cookie_mac_equal(mac, mac_at + 1);
    }
    if (!ok)
        return -EBADMSG;
    if (when != 0 && (long long)time(NULL) >= when)
        return -ETIME;
    *value_len = (size_t)(exp_at - 1 - raw);
    return 0;
}

const char *vg_request_signed_cookie(const vg_request *req,
                                     const vg_cookie_keys *k, const char *name)
{
    const char *raw = vg_request_cookie(req, name);
    vg__cookie_jar *jar;
    vg__cookie_copy *c;
    size_t len;

    if (raw == NULL || k == NULL || vg__cookie_verify(k, name, raw, &len) != 0)
        return NULL;
    jar = vg_request_data(req, &vg__cookie_key);
    if (len + 1 <= jar->spare_left) {
        char *v = jar->spare;
        memcpy(v, raw, len);
        v[len] = '\0';
        jar->spare += len + 1;
        jar->spare_left -= len + 1;
        return v;
    }
    c = malloc(sizeof *c + len + 1);
    if (c == NULL)
        return NULL;
    memcpy(c->value, raw, len);
    c->value[len] = '\0';
    c->next = jar->copies;
    jar->copies = c;
    return c->value;
}
