/*
 * fuzz_cors.c - libFuzzer target for the CORS filter (lib/web/cors.c):
 * the Origin, Access-Control-Request-Method and -Headers a request
 * carries, its method and the path's Allow, against policies built once,
 * without a server (the request is built as the engine builds it).
 *
 * Input: five fields separated by '\n': METHOD, ORIGIN, ASKED-METHOD,
 * ASKED-HEADERS, ALLOW; an empty ORIGIN/ASKED field means the header is
 * absent. The first byte picks the policy: an origin list with echoed
 * headers and credentials, or any origin with a fixed header list.
 *
 * What must hold:
 *  - a preflight is answered (a 204 result) only for OPTIONS with an
 *    allowed Origin and an asked method that the Allow list holds; its
 *    Access-Control-Allow-Origin is exactly the Origin sent (or "*" for
 *    the any-origin policy), its Allow-Methods the Allow list, and echoed
 *    Allow-Headers exactly what was asked;
 *  - any other request is let through (NULL) and gets
 *    Access-Control-Allow-Origin only when its Origin is allowed, equal to
 *    it (or "*");
 *  - no crash, leak or undefined behaviour whatever the bytes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <volga.h>
#include "app.h"
#include "model/request.h"
#include "model/result.h"

#include "fuzz_check.h"

#define ORIGIN "https://app.example"

static vg_app *list_app, *any_app;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    vg_cors *a = vg_cors_new(), *b = vg_cors_new();

    (void)argc;
    (void)argv;
    list_app = vg_app_new("127.0.0.1:0");
    any_app = vg_app_new("127.0.0.1:0");
    CHECK(a && b && list_app && any_app);
    CHECK(vg_cors_allow_origin(a, ORIGIN) == 0);
    CHECK(vg_cors_allow_origin(a, "null") == 0);
    CHECK(vg_cors_echo_headers(a) == 0);
    CHECK(vg_cors_set_credentials(a, true) == 0);
    CHECK(vg_app_use_cors(list_app, a) == 0);
    CHECK(vg_cors_allow_any_origin(b) == 0);
    CHECK(vg_cors_set_headers(b, "X-Token") == 0);
    CHECK(vg_app_use_cors(any_app, b) == 0);
    /* The policies live as long as the process, like the apps. */
    return 0;
}

/* The value of a response header the filter added, or NULL. */
typedef struct {
    const char *name;
    const char *value;
} lookup;

static int find(const char *name, const char *value, void *arg)
{
    lookup *l = arg;

    if (strcasecmp(name, l->name) != 0)
        return 0;
    l->value = value;
    return 1;
}

static const char *added(vg_request *req, const char *name)
{
    lookup l = {name, NULL};

    vg__request_each_response_header(req, find, &l);
    return l.value;
}

/* Whether the comma-separated `list` holds `item` exactly. */
static bool holds(const char *list, const char *item)
{
    size_t n = strlen(item);
    const char *p = list;

    while ((p = strstr(p, item)) != NULL) {
        bool start = p == list || p[-1] == ' ' || p[-1] == ',' || p[-1] == '\t';
        char end = p[n];
        if (start && (end == '\0' || end == ',' || end == ' ' || end == '\t'))
            return true;
        p++;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy, *f[5] = {NULL}, *p;
    bool any;
    vg_app *app;
    vg_request *req;
    vg_result *res;
    const vg__filter *filt;
    int i;

    if (size < 1)
        return 0;
    any = data[0] & 1;
    copy = strndup((const char *)data + 1, size - 1);
    CHECK(copy != NULL);
    p = copy;
    for (i = 0; i < 5; i++) {
        f[i] = p;
        p = strchr(p, '\n');
        if (p == NULL)
            break;
        *p++ = '\0';
    }
    if (i < 4) {
        free(copy);
        return 0;
    }
    app = any ? any_app : list_app;
    filt = app->pipe.filters;
    req = vg__request_new(app);
    CHECK(req != NULL);
    req->method = f[0];
    req->allow = *f[4] ? f[4] : NULL;
    if (*f[1])
        CHECK(vg__request_add_header(req, "Origin", f[1]) == 0);
    if (*f[2])
        CHECK(vg__request_add_header(req, "Access-Control-Request-Method", f[2]) == 0);
    if (*f[3])
        CHECK(vg__request_add_header(req, "Access-Control-Request-Headers", f[3]) == 0);

    res = filt[0].fn(req, filt[0].arg);
    {
        bool allowed = *f[1] && (any || strcmp(f[1], ORIGIN) == 0 ||
                                 strcmp(f[1], "null") == 0);
        bool preflight = strcmp(f[0], "OPTIONS") == 0 && *f[2];

        if (res != NULL) {
            const char *acao = vg_result_header(res, "Access-Control-Allow-Origin");
            CHECK(preflight && allowed);
            CHECK(vg_result_status(res) == 204);
            CHECK(req->allow != NULL && holds(req->allow, f[2]));
            CHECK(acao != NULL && strcmp(acao, any ? "*" : f[1]) == 0);
            CHECK(strcmp(vg_result_header(res, "Access-Control-Allow-Methods"),
                         req->allow) == 0);
            if (!any && *f[3])
                CHECK(strcmp(vg_result_header(res, "Access-Control-Allow-Headers"),
                             f[3]) == 0);
            vg_result_free(res);
        } else {
            const char *acao = added(req, "Access-Control-Allow-Origin");
            if (acao != NULL) {
                CHECK(allowed && !preflight);
                CHECK(strcmp(acao, any ? "*" : f[1]) == 0);
            } else {
                CHECK(!allowed || preflight);
            }
        }
    }
    vg__request_unref(req);
    free(copy);
    return 0;
}
