/* result.c - what handlers answer with: status, headers and a body. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "model/result.h"
#include "model/stream.h"

vg_result vg__deferred;

static const char vg__ctype_text[] = "text/plain; charset=utf-8";
static const char vg__ctype_json[] = "application/json";

static vg_result *vg__result_new(unsigned status, const char *ctype)
{
    vg_result *res = calloc(1, sizeof *res);
    if (res == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    res->status = status;
    res->ctype = ctype;
    res->fd = -1;
    return res;
}

/* Builds a result that owns `body` (which may be NULL when len is 0). */
static vg_result *vg__result_with_body(unsigned status, const char *ctype,
                                       char *body, size_t len)
{
    vg_result *res = vg__result_new(status, ctype);
    if (res == NULL) {
        free(body);
        return NULL;
    }
    res->body = body;
    res->body_len = len;
    return res;
}

vg_result *vg_text(const char *text)
{
    size_t len = text ? strlen(text) : 0;
    char *body = NULL;

    if (len > 0) {
        body = malloc(len);
        if (body == NULL) {
            errno = ENOMEM;
            return NULL;
        }
        memcpy(body, text, len);
    }
    return vg__result_with_body(200, vg__ctype_text, body, len);
}

vg_result *vg_textf(const char *fmt, ...)
{
    va_list ap;
    char *body = NULL;
    int n;

    if (fmt == NULL) {
        errno = EINVAL;
        return NULL;
    }
    va_start(ap, fmt);
    n = vasprintf(&body, fmt, ap);
    va_end(ap);
    if (n < 0) {
        errno = ENOMEM;
        return NULL;
    }
    return vg__result_with_body(200, vg__ctype_text, body, (size_t)n);
}

vg_result *vg_json(json_t *value)
{
    char *body;

    if (value == NULL) {
        errno = EINVAL;
        return NULL;
    }
    /* JSON_ENCODE_ANY lets handlers answer scalars ("42", "null") too. */
    body = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(value);
    if (body == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    return vg__result_with_body(200, vg__ctype_json, body, strlen(body));
}

/* A handler answers with a final response: 1xx codes are interim ones
 * that libmicrohttpd would follow by asking for another answer. */
static bool vg__status_valid(unsigned code)
{
    return code >= 200 && code <= 999;
}

vg_result *vg_status(unsigned code)
{
    if (!vg__status_valid(code)) {
        errno = EINVAL;
        return NULL;
    }
    return vg__result_new(code, NULL);
}

vg_result *vg_result_set_status(vg_result *res, unsigned code)
{
    if (res == NULL || res == &vg__deferred)
        return res; /* the deferred answer comes later: nothing to set */
    if (!vg__status_valid(code)) {
        /* Keep the chain alive but make the mistake visible: a wrong
         * status silently replaced would be worse than a 500. */
        vg_result_free(res);
        errno = EINVAL;
        return NULL;
    }
    res->status = code;
    return res;
}

/* RFC 9110 token characters, the only ones a field name may hold. */
static bool vg__is_tchar(unsigned char c)
{
    /* '-' is in almost every name: tested before the strchr. */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' ||
           (c != 0 && strchr("!#$%&'*+.^_`|~", c));
}

static bool vg__header_name_ok(const char *name)
{
    if (*name == '\0')
        return false;
    for (; *name; name++)
        if (!vg__is_tchar((unsigned char)*name))
            return false;
    return true;
}

/* A value may not smuggle a second header or response line in. */
static bool vg__header_value_ok(const char *value)
{
    return strpbrk(value, "\r\n") == NULL;
}

/* The framing headers are the library's (and libmicrohttpd's) business: a
 * wrong Content-Length set by hand would corrupt the connection. */
static bool vg__header_reserved(const char *name)
{
    size_t n = strlen(name);

    return (n == 14 && strcasecmp(name, "Content-Length") == 0) ||
           (n == 17 && strcasecmp(name, "Transfer-Encoding") == 0);
}

static int vg__result_set_ctype(vg_result *res, const char *value)
{
    char *copy = strdup(value);
    if (copy == NULL)
        return -ENOMEM;
    free(res->ctype_owned);
    res->ctype_owned = copy;
    res->ctype = copy;
    return 0;
}

static int vg__result_add_header(vg_result *res, const char *name,
                                 const char *value)
{
    vg__header h;

    if (res->nheaders == res->cap_headers) {
        size_t cap = res->cap_headers ? res->cap_headers * 2 : 4;
        vg__header *grown = realloc(res->headers, cap * sizeof *grown);
        if (grown == NULL)
            return -ENOMEM;
        res->headers = grown;
        res->cap_headers = cap;
    }
    h.name = strdup(name);
    h.value = strdup(value);
    if (h.name == NULL || h.value == NULL) {
        free(h.name);
        free(h.value);
        return -ENOMEM;
    }
    res->headers[res->nheaders++] = h;
    return 0;
}

bool vg__result_header_ok(const char *name, const char *value)
{
    return name != NULL && value != NULL && vg__header_name_ok(name) &&
           vg__header_value_ok(value) && !vg__header_reserved(name);
}

vg_result *vg_result_set_header(vg_result *res, const char *name,
                                const char *value)
{
    int rc;

    if (res == NULL || res == &vg__deferred)
        return res; /* the deferred answer comes later: nothing to set */
    if (!vg__result_header_ok(name, value)) {
        vg_result_free(res);
        errno = EINVAL;
        return NULL;
    }
    if (strcasecmp(name, "Content-Type") == 0)
        rc = vg__result_set_ctype(res, value);
    else
        rc = vg__result_add_header(res, name, value);
    if (rc != 0) {
        vg_result_free(res);
        errno = -rc;
        return NULL;
    }
    return res;
}

void vg_result_free(vg_result *res)
{
    size_t i;

    if (res == NULL || res == &vg__deferred)
        return;
    for (i = 0; i < res->nheaders; i++) {
        free(res->headers[i].name);
        free(res->headers[i].value);
    }
    free(res->headers);
    free(res->ctype_owned);
    free(res->body);
    json_decref(res->problem);
    if (res->fd >= 0)
        close(res->fd);
    if (res->stream != NULL)
        vg__stream_abandon(res->stream);
    free(res);
}

int vg__result_take_body(vg_result *res, char **body, size_t *len)
{
    *body = res->body;
    *len = res->body_len;
    res->body = NULL;
    res->body_len = 0;
    if (res->problem == NULL)
        return 0;
    /* Serialized only now, so that members can be added until the end. */
    free(*body);
    *body = json_dumps(res->problem, JSON_COMPACT);
    *len = *body ? strlen(*body) : 0;
    return *body ? 0 : -ENOMEM;
}

vg_result *vg__result_fd(int fd, unsigned long long off,
                         unsigned long long len)
{
    vg_result *res = vg__result_new(200, NULL);

    if (res == NULL) {
        close(fd);
        return NULL;
    }
    res->fd = fd;
    res->fd_off = off;
    res->fd_len = len;
    return res;
}

void vg__result_take_fd(vg_result *res, int *fd, unsigned long long *off,
                        unsigned long long *len)
{
    *fd = res->fd;
    *off = res->fd_off;
    *len = res->fd_len;
    res->fd = -1;
}

void vg__result_set_body(vg_result *res, char *body, size_t len)
{
    free(res->body);
    res->body = body;
    res->body_len = len;
    json_decref(res->problem);
    res->problem = NULL;
    if (res->fd >= 0)
        close(res->fd);
    res->fd = -1;
}

int vg__result_replace_header(vg_result *res, const char *name,
                              const char *value)
{
    size_t i;

    for (i = 0; i < res->nheaders; i++)
        if (strcasecmp(res->headers[i].name, name) == 0) {
            char *copy = strdup(value);
            if (copy == NULL)
                return -ENOMEM;
            free(res->headers[i].value);
            res->headers[i].value = copy;
            return 0;
        }
    return vg__result_add_header(res, name, value);
}

unsigned vg_result_status(const vg_result *res)
{
    return res == NULL || res == &vg__deferred ? 0 : res->status;
}

const char *vg_result_header(const vg_result *res, const char *name)
{
    size_t i;

    if (res == NULL || res == &vg__deferred || name == NULL)
        return NULL;
    if (strcasecmp(name, "Content-Type") == 0)
        return res->ctype;
    for (i = 0; i < res->nheaders; i++)
        if (strcasecmp(res->headers[i].name, name) == 0)
            return res->headers[i].value;
    return NULL;
}

bool vg_result_is_deferred(const vg_result *res)
{
    return res == &vg__deferred;
}

vg_result *vg__result_error(unsigned status, const char *text)
{
    vg_result *res = vg_text(text);
    return vg_result_set_status(res, status);
}
