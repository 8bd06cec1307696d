/* auth.c - HTTP authentication helpers (RFC 7617 Basic, RFC 6750 Bearer),
 * a constant-time comparison and a Basic-auth middleware, written against
 * the public API only.
 *
 * Decoding uses nettle's base64 after checking the text is exactly one
 * padded base64 token (nettle alone would skip whitespace inside it). A
 * request's decoded credentials are attached to it (vg_request_set_data),
 * so the strings handed out live as long as the request and asking twice
 * decodes once. */
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

#include <nettle/base64.h>
#include <nettle/memops.h>

#include <volga.h>
#include "web/auth.h"

/* ---- Comparison ---- */

bool vg_secure_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    if (a == NULL || b == NULL)
        return false;
    if (alen != blen) {
        /* Spend the time a comparison of `a` would, so that only the
         * lengths show. */
        (void)memeql_sec(a, a, alen);
        return false;
    }
    return memeql_sec(a, b, alen) != 0;
}

/* ---- Basic ---- */

/* Skips the scheme name `scheme` and the spaces after it; NULL if the
 * field is of another scheme. */
static const char *vg__auth_scheme(const char *field, const char *scheme)
{
    size_t n = strlen(scheme);

    if (field == NULL || strncasecmp(field, scheme, n) != 0 ||
        (field[n] != ' ' && field[n] != '\0'))
        return NULL;
    field += n;
    while (*field == ' ')
        field++;
    return field;
}

/* Length of the credentials before trailing spaces. */
static size_t vg__auth_trimmed(const char *s)
{
    size_t n = strlen(s);

    while (n > 0 && s[n - 1] == ' ')
        n--;
    return n;
}

/* Whether s[0..n) is padded base64: groups of four, '=' only at the end. */
static bool vg__auth_base64(const char *s, size_t n)
{
    size_t i, pad = 0;

    if (n == 0 || n % 4 != 0)
        return false;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (c == '=') {
            pad++;
            continue;
        }
        if (pad > 0 || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                         (c >= '0' && c <= '9') || c == '+' || c == '/'))
            return false;
    }
    return pad <= 2;
}

int vg__basic_decode(const char *field, char **buf, const char **user,
                     const char **password)
{
    const char *b64 = vg__auth_scheme(field, "Basic");
    struct base64_decode_ctx ctx;
    size_t n, out_len, i;
    uint8_t *out;
    char *colon;

    *buf = NULL;
    if (b64 == NULL)
        return -ENOENT;
    n = vg__auth_trimmed(b64);
    if (!vg__auth_base64(b64, n))
        return -EINVAL;
    out = malloc(BASE64_DECODE_LENGTH(n) + 2);
    if (out == NULL)
        return -ENOMEM;
    base64_decode_init(&ctx);
    if (!base64_decode_update(&ctx, &out_len, out, n, b64) ||
        !base64_decode_final(&ctx))
        goto invalid;
    /* RFC 7617: no control characters in user-id or password; a NUL
     * would also cut the C strings short. */
    for (i = 0; i < out_len; i++)
        if (out[i] < 0x20 || out[i] == 0x7f)
            goto invalid;
    out[out_len] = '\0';
    colon = strchr((char *)out, ':');
    if (colon == NULL)
        goto invalid;
    *colon = '\0';
    *buf = (char *)out;
    *user = (char *)out;
    *password = colon + 1;
    return 0;
invalid:
    free(out);
    return -EINVAL;
}

/* What a request's Authorization decoded to, kept with the request. */
typedef struct {
    int rc;
    char *buf;
    const char *user, *password;
} vg__basic_creds;

static const char vg__basic_key;

static void vg__basic_creds_free(void *p)
{
    vg__basic_creds *c = p;

    if (c->buf != NULL) {
        /* A password should not outlive its request in freed memory. */
        memset(c->buf, 0, strlen(c->user) + strlen(c->password) + 2);
        free(c->buf);
    }
    free(c);
}

int vg_request_basic_auth(const vg_request *req, const char **user,
                          const char **password)
{
    vg__basic_creds *c;

    if (req == NULL || user == NULL || password == NULL)
        return -EINVAL;
    c = vg_request_data(req, &vg__basic_key);
    if (c == NULL) {
        c = calloc(1, sizeof *c);
        if (c == NULL)
            return -ENOMEM;
        c->rc = vg__basic_decode(vg_request_header(req, "Authorization"),
                                 &c->buf, &c->user, &c->password);
        if (c->rc == -ENOMEM) {
            free(c);
            return -ENOMEM;
        }
        /* The request's data is the request's own: the const accessor
         * may fill its cache (same threads as vg_request_set_data). */
        if (vg_request_set_data((vg_request *)req, &vg__basic_key, c,
                                vg__basic_creds_free) != 0)
            return -ENOMEM;
    }
    if (c->rc != 0)
        return c->rc;
    *user = c->user;
    *password = c->password;
    return 0;
}

/* ---- Bearer ---- */

int vg_request_bearer(const vg_request *req, const char **token)
{
    const char *t, *p;
    size_t n;

    if (req == NULL || token == NULL)
        return -EINVAL;
    t = vg__auth_scheme(vg_request_header(req, "Authorization"), "Bearer");
    if (t == NULL)
        return -ENOENT;
    /* b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" )
     * *"=" (RFC 6750 2.1); nothing may follow it. */
    n = strlen(t);
    for (p = t; (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                (*p >= '0' && *p <= '9') || (*p != '\0' && strchr("-._~+/", *p));
         p++)
        ;
    if (p == t)
        return -EINVAL;
    while (*p == '=')
        p++;
    if ((size_t)(p - t) != n)
        return -EINVAL;
    *token = t;
    return 0;
}

/* ---- Challenges ---- */

/* Appends `s` as a quoted-string (RFC 9110 5.6.4) at w; false if it holds
 * a character a header cannot carry. `w` must have room for 2*len+3. */
static bool vg__auth_quote(char *w, const char *s, bool allow_escapes)
{
    *w++ = '"';
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || ((c == '"' || c == '\\') && !allow_escapes)) {
            *w = '\0'; /* the caller may still measure what was written */
            return false;
        }
        if (c == '"' || c == '\\') {
            *w++ = '\\';
        }
        *w++ = (char)c;
    }
    *w++ = '"';
    *w = '\0';
    return true;
}

vg_result *vg_basic_challenge(const char *realm)
{
    char *v, *q;
    vg_result *res;

    if (realm == NULL) {
        errno = EINVAL;
        return NULL;
    }
    v = malloc(2 * strlen(realm) + 48);
    if (v == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    strcpy(v, "Basic realm=");
    q = v + strlen(v);
    if (!vg__auth_quote(q, realm, true)) {
        free(v);
        errno = EINVAL;
        return NULL;
    }
    /* RFC 7617 2.1: the only charset allowed, telling the client to send
     * UTF-8. */
    strcat(v, ", charset=\"UTF-8\"");
    res = vg_result_set_header(vg_status(401), "WWW-Authenticate", v);
    free(v);
    return res;
}

vg_result *vg_bearer_challenge(const char *realm, const char *error,
                               const char *description)
{
    size_t cap = 64 + 2 * (realm ? strlen(realm) : 0) +
                 (error ? strlen(error) : 0) +
                 (description ? strlen(description) : 0);
    unsigned status = 401;
    char *v = malloc(cap), *w;
    bool ok = true;
    vg_result *res;

    if (v == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    /* RFC 6750 3.1: the status that goes with each error code. */
    if (error != NULL) {
        if (strcmp(error, "invalid_request") == 0)
            status = 400;
        else if (strcmp(error, "insufficient_scope") == 0)
            status = 403;
        else if (strcmp(error, "invalid_token") != 0)
            ok = false;
    }
    strcpy(v, "Bearer");
    w = v + strlen(v);
    if (ok && realm != NULL) {
        strcpy(w, " realm=");
        w += strlen(w);
        ok = vg__auth_quote(w, realm, true);
        w += strlen(w);
    }
    if (ok && error != NULL) {
        strcpy(w, realm ? ", error=" : " error=");
        w += strlen(w);
        ok = vg__auth_quote(w, error, false);
        w += strlen(w);
    }
    /* error_description: %x20-21 / %x23-5B / %x5D-7E, no escapes. */
    if (ok && description != NULL) {
        strcpy(w, (realm || error) ? ", error_description=" : " error_description=");
        w += strlen(w);
        ok = vg__auth_quote(w, description, false);
    }
    if (!ok) {
        free(v);
        errno = EINVAL;
        return NULL;
    }
    res = vg_result_set_header(vg_status(status), "WWW-Authenticate", v);
    free(v);
    return res;
}

/* ---- The Basic-auth middleware ---- */

struct vg_basic_auth {
    char *realm;
    vg_basic_check_fn fn;
    void *arg;
};

vg_basic_auth *vg_basic_auth_new(const char *realm, vg_basic_check_fn fn,
                                 void *arg)
{
    vg_basic_auth *b;
    vg_result *probe;

    if (realm == NULL || fn == NULL) {
        errno = EINVAL;
        return NULL;
    }
    /* A realm the challenge could not carry is refused now, not at the
     * first request. */
    probe = vg_basic_challenge(realm);
    if (probe == NULL)
        return NULL;
    vg_result_free(probe);
    b = calloc(1, sizeof *b);
    if (b == NULL || (b->realm = strdup(realm)) == NULL) {
        free(b);
        errno = ENOMEM;
        return NULL;
    }
    b->fn = fn;
    b->arg = arg;
    return b;
}

void vg_basic_auth_free(vg_basic_auth *b)
{
    if (b == NULL)
        return;
    free(b->realm);
    free(b);
}

static vg_result *vg__basic_mw(vg_request *req, vg_next *next, void *arg)
{
    const vg_basic_auth *b = arg;
    const char *user, *password;
    int rc = vg_request_basic_auth(req, &user, &password);

    if (rc == -ENOMEM)
        return NULL;
    if (rc != 0 || !b->fn(req, user, password, b->arg))
        return vg_basic_challenge(b->realm);
    return vg_next_run(next);
}

int vg_app_use_basic_auth(vg_app *app, vg_basic_auth *b)
{
    if (b == NULL)
        return -EINVAL;
    return vg_app_use(app, vg__basic_mw, b);
}

int vg_group_use_basic_auth(vg_group *g, vg_basic_auth *b)
{
    if (b == NULL)
        return -EINVAL;
    return vg_group_use(g, vg__basic_mw, b);
}
