/* cors.c - Cross-Origin Resource Sharing (the Fetch standard's CORS
 * protocol) as a filter of the pipeline, written against the public API
 * only, as a user's filter would be.
 *
 * Everything is decided on the event thread, before any hand-off to a
 * worker: a preflight (OPTIONS with Origin and Access-Control-Request-
 * Method) for a method the path routes is answered here with 204, and an
 * actual request from an allowed origin gets its headers added with
 * vg_request_add_response_header, so they reach whatever answers it (the
 * handler, a middleware, a 404 or a 504). A disallowed origin gets no CORS
 * header at all: the browser then refuses the response to the page.
 *
 * A policy is configured before it is attached, then frozen: the filter
 * only reads it, from several event threads at once, without a lock. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <volga.h>

struct vg_cors {
    char **origins;        /* exact origins, "https://app.example:8443" */
    size_t norigins;
    bool any_origin;       /* "Access-Control-Allow-Origin: *" */
    char *methods;         /* NULL: the methods the path routes */
    char *headers;         /* allowed request headers, NULL: none */
    bool echo_headers;     /* allow what Access-Control-Request-Headers asks */
    char *expose;          /* Access-Control-Expose-Headers, NULL: none */
    bool credentials;
    long max_age;          /* seconds, -1: no Access-Control-Max-Age */
    bool frozen;           /* attached: read by filters from now on */
};

/* ---- Lists and tokens ---- */

/* RFC 9110 tchar. */
static bool vg__cors_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

/* Whether `s` is a comma-separated list of tokens (optional whitespace
 * around commas, no empty element): what Allow-Methods, Allow-Headers and
 * Expose-Headers carry. */
static bool vg__cors_token_list(const char *s)
{
    enum { START, TOKEN, AFTER } st = START;

    for (; *s != '\0'; s++) {
        if (vg__cors_tchar((unsigned char)*s)) {
            if (st == AFTER)
                return false; /* two tokens with only a space between */
            st = TOKEN;
        } else if (*s == ' ' || *s == '\t') {
            if (st == TOKEN)
                st = AFTER;
        } else if (*s == ',' && st != START) {
            st = START;
        } else {
            return false;
        }
    }
    return st != START;
}

/* Whether the comma-separated `list` holds the token `item`. */
static bool vg__cors_list_has(const char *list, const char *item, bool nocase)
{
    size_t n = strlen(item);
    const char *p = list, *end;

    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        end = p;
        while (*end != '\0' && *end != ',' && *end != ' ' && *end != '\t')
            end++;
        if ((size_t)(end - p) == n &&
            (nocase ? strncasecmp(p, item, n) : strncmp(p, item, n)) == 0)
            return true;
        p = end;
    }
    return false;
}

/* An origin as browsers serialise it: "null", or scheme "://" host
 * [":" port] with no path, no userinfo and nothing a header could not
 * carry. */
static bool vg__cors_origin_ok(const char *o)
{
    const char *host = strstr(o, "://"), *p;

    if (strcmp(o, "null") == 0)
        return true;
    if (host == NULL || host == o)
        return false;
    for (p = o; p < host; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (p > o && ((*p >= '0' && *p <= '9') || strchr("+-.", *p)))))
            return false;
    host += 3;
    if (*host == '\0')
        return false;
    for (p = host; *p != '\0'; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f ||
            strchr("/?#@,;\"\\", *p))
            return false;
    return true;
}

static int vg__cors_set_list(vg_cors *c, char **slot, const char *list)
{
    char *copy = NULL;

    if (c == NULL)
        return -EINVAL;
    if (c->frozen)
        return -EBUSY;
    if (list != NULL) {
        if (!vg__cors_token_list(list))
            return -EINVAL;
        /* With credentials "*" is a literal name to browsers, never a
         * wildcard: refusing it here keeps the meaning unambiguous. */
        if (c->credentials && vg__cors_list_has(list, "*", false))
            return -EINVAL;
        copy = strdup(list);
        if (copy == NULL)
            return -ENOMEM;
    }
    free(*slot);
    *slot = copy;
    return 0;
}

/* ---- Configuration ---- */

vg_cors *vg_cors_new(void)
{
    vg_cors *c = calloc(1, sizeof *c);

    if (c == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    c->max_age = -1;
    return c;
}

void vg_cors_free(vg_cors *c)
{
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; i < c->norigins; i++)
        free(c->origins[i]);
    free(c->origins);
    free(c->methods);
    free(c->headers);
    free(c->expose);
    free(c);
}

int vg_cors_allow_origin(vg_cors *c, const char *origin)
{
    char **grown, *copy;

    if (c == NULL || origin == NULL || !vg__cors_origin_ok(origin))
        return -EINVAL;
    if (c->frozen)
        return -EBUSY;
    copy = strdup(origin);
    grown = realloc(c->origins, (c->norigins + 1) * sizeof *grown);
    if (copy == NULL || grown == NULL) {
        free(copy);
        if (grown != NULL)
            c->origins = grown;
        return -ENOMEM;
    }
    c->origins = grown;
    c->origins[c->norigins++] = copy;
    return 0;
}

int vg_cors_allow_any_origin(vg_cors *c)
{
    if (c == NULL)
        return -EINVAL;
    if (c->frozen)
        return -EBUSY;
    if (c->credentials)
        return -EINVAL;
    c->any_origin = true;
    return 0;
}

int vg_cors_set_methods(vg_cors *c, const char *methods)
{
    return vg__cors_set_list(c, &c->methods, methods);
}

int vg_cors_set_headers(vg_cors *c, const char *headers)
{
    int rc = vg__cors_set_list(c, &c->headers, headers);

    if (rc == 0)
        c->echo_headers = false;
    return rc;
}

int vg_cors_echo_headers(vg_cors *c)
{
    if (c == NULL)
        return -EINVAL;
    if (c->frozen)
        return -EBUSY;
    free(c->headers);
    c->headers = NULL;
    c->echo_headers = true;
    return 0;
}

int vg_cors_set_expose_headers(vg_cors *c, const char *headers)
{
    return vg__cors_set_list(c, &c->expose, headers);
}

int vg_cors_set_credentials(vg_cors *c, bool on)
{
    if (c == NULL)
        return -EINVAL;
    if (c->frozen)
        return -EBUSY;
    /* The Fetch standard ignores "*" on a credentialed request: a policy
     * that asks for both could never work, so it is refused now rather
     * than failing in every browser later. */
    if (on && (c->any_origin ||
               (c->methods && vg__cors_list_has(c->methods, "*", false)) ||
               (c->headers && vg__cors_list_has(c->headers, "*", false)) ||
               (c->expose && vg__cors_list_has(c->expose, "*", false))))
        return -EINVAL;
    c->credentials = on;
    return 0;
}

int vg_cors_set_max_age(vg_cors *c, long seconds)
{
    if (c == NULL || seconds < -1 || seconds > 0x7fffffffL)
        return -EINVAL;
    if (c->frozen)
        return -EBUSY;
    c->max_age = seconds;
    return 0;
}

/* ---- Per request (event thread) ---- */

static bool vg__cors_origin_allowed(const vg_cors *c, const char *origin)
{
    size_t i;

    if (c->any_origin)
        return true;
    for (i = 0; i < c->norigins; i++)
        if (strcmp(c->origins[i], origin) == 0)
            return true;
    return false;
}

/* The answer to a preflight the policy allows: 204 with what the browser
 * asked about. NULL when the path does not route the asked method (or the
 * policy does not allow it): the request then goes on without CORS
 * headers, and the browser fails the page's request. */
static vg_result *vg__cors_preflight(const vg_cors *c, vg_request *req,
                                     const char *origin, const char *asked,
                                     bool vary_origin)
{
    const char *allow = vg_request_allow(req);
    const char *want = vg_request_header(req, "Access-Control-Request-Headers");
    const char *methods = c->methods ? c->methods : allow;
    const char *vary = vary_origin ? "Origin" : NULL;
    char age[24];
    vg_result *res;

    if (allow == NULL || !vg__cors_list_has(allow, asked, false) ||
        (c->methods != NULL && !vg__cors_list_has(c->methods, asked, false)))
        return NULL;
    if (c->echo_headers && want != NULL && *want != '\0' &&
        !vg__cors_token_list(want))
        return NULL; /* not a header list: nothing sensible to echo */
    res = vg_result_set_header(vg_status(204), "Access-Control-Allow-Origin",
                               c->any_origin ? "*" : origin);
    if (c->credentials)
        res = vg_result_set_header(res, "Access-Control-Allow-Credentials",
                                   "true");
    res = vg_result_set_header(res, "Access-Control-Allow-Methods", methods);
    if (c->echo_headers && want != NULL && *want != '\0')
        res = vg_result_set_header(res, "Access-Control-Allow-Headers", want);
    else if (c->headers != NULL)
        res = vg_result_set_header(res, "Access-Control-Allow-Headers",
                                   c->headers);
    if (c->max_age >= 0) {
        snprintf(age, sizeof age, "%ld", c->max_age);
        res = vg_result_set_header(res, "Access-Control-Max-Age", age);
    }
    if (c->echo_headers)
        vary = vary ? "Origin, Access-Control-Request-Headers"
                    : "Access-Control-Request-Headers";
    if (vary != NULL)
        res = vg_result_set_header(res, "Vary", vary);
    return res;
}

static vg_result *vg__cors_filter(vg_request *req, void *arg)
{
    const vg_cors *c = arg;
    const char *origin = vg_request_header(req, "Origin");
    const char *asked;
    /* With a list the answer depends on Origin, so caches must key on it
     * even when it carries no CORS header (absent or refused origin). */
    bool vary_origin = !c->any_origin;
    vg_result *res;

    if (origin == NULL || !vg__cors_origin_allowed(c, origin)) {
        if (vary_origin)
            vg_request_add_response_header(req, "Vary", "Origin");
        return NULL;
    }
    /* The method first: it is a short compare, the header a search. */
    asked = strcmp(vg_request_method(req), "OPTIONS") == 0
                ? vg_request_header(req, "Access-Control-Request-Method")
                : NULL;
    if (asked != NULL) {
        res = vg__cors_preflight(c, req, origin, asked, vary_origin);
        if (res != NULL)
            return res;
        if (vary_origin)
            vg_request_add_response_header(req, "Vary", "Origin");
        return NULL;
    }
    vg_request_add_response_header(req, "Access-Control-Allow-Origin",
                                   c->any_origin ? "*" : origin);
    if (c->credentials)
        vg_request_add_response_header(req, "Access-Control-Allow-Credentials",
                                       "true");
    if (c->expose != NULL)
        vg_request_add_response_header(req, "Access-Control-Expose-Headers",
                                       c->expose);
    if (vary_origin)
        vg_request_add_response_header(req, "Vary", "Origin");
    return NULL;
}

/* ---- Attachment ---- */

static int vg__cors_attachable(vg_cors *c)
{
    if (c == NULL || (!c->any_origin && c->norigins == 0))
        return -EINVAL;
    return 0;
}

int vg_app_use_cors(vg_app *app, vg_cors *c)
{
    int rc = vg__cors_attachable(c);

    if (rc == 0)
        rc = vg_app_filter(app, vg__cors_filter, c);
    if (rc == 0)
        c->frozen = true;
    return rc;
}

int vg_group_use_cors(vg_group *g, vg_cors *c)
{
    int rc = vg__cors_attachable(c);

    if (rc == 0)
        rc = vg_group_filter(g, vg__cors_filter, c);
    if (rc == 0)
        c->frozen = true;
    return rc;
}
