/* https_redirect.c - vg_app_new_https_redirect: a small plain-HTTP app
 * whose only answer is 308 to the same path and query over HTTPS.
 *
 * Where it may send a client: the host comes from the request itself (its
 * Host field, or an absolute-form target's authority, which RFC 9112 3.2.2
 * says wins), since a redirector in front of many names cannot know them
 * all. That is not an open redirect in the usual sense -- nothing in the
 * path or query chooses the destination, and a client that sends Host X is
 * only sent to https://X, where it was going anyway -- but a Host that a
 * shared cache or a confused proxy passes along could be used to poison
 * what others are sent. So the host is checked strictly (RFC 3986
 * reg-name or IP literal, no userinfo, no path, no percent-encoding: the
 * request parser's own rule, lib/model/http_strict.c) and the Location is
 * built from parts each checked on its own: "https://", the host, the
 * configured port (never the client's), then the request-target's path and
 * query, which always begin with '/' (so "//evil" cannot turn into an
 * authority: it stays a path after our own authority). With an allow-list
 * (opts->hosts) any other host gets 421 and no Location at all. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "model/http_strict.h"

typedef struct {
    unsigned short port;      /* 0: the default, 443 */
    char **hosts;             /* NULL-terminated copy, or NULL: any */
} vg__redirect;

static void vg__redirect_free(void *arg)
{
    vg__redirect *r = arg;
    size_t i;

    for (i = 0; r->hosts != NULL && r->hosts[i] != NULL; i++)
        free(r->hosts[i]);
    free(r->hosts);
    free(r);
}

/* The host of an authority ("example.com:80" -> "example.com", "[::1]:80"
 * -> "[::1]"): its length, or 0 if the authority is not well formed. */
static size_t vg__host_part(const char *auth, size_t len)
{
    const char *colon;

    if (len == 0 || vg__strict_host(auth, len).status != 0)
        return 0;
    if (auth[0] == '[')
        return (size_t)((const char *)memchr(auth, ']', len) - auth) + 1;
    colon = memchr(auth, ':', len);
    return colon != NULL ? (size_t)(colon - auth) : len;
}

static bool vg__host_allowed(const vg__redirect *r, const char *host, size_t len)
{
    size_t i;

    if (r->hosts == NULL)
        return true;
    for (i = 0; r->hosts[i] != NULL; i++)
        if (strlen(r->hosts[i]) == len && strncasecmp(r->hosts[i], host, len) == 0)
            return true;
    return false;
}

/* Only printable ASCII without spaces may go into Location as it is. */
static bool vg__printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

static vg_result *vg__redirect_answer(vg_request *req, void *arg)
{
    vg__redirect *r = arg;
    const char *target = vg_request_target(req), *auth = NULL, *rest;
    size_t alen = 0, hlen;
    char port[8] = "", *loc;
    vg_result *res;

    if (target == NULL || !vg__printable(target))
        return vg_problem(400, "invalid request-target");
    if (strncasecmp(target, "http://", 7) == 0 ||
        strncasecmp(target, "https://", 8) == 0) {
        auth = strchr(target, '/') + 2;
        alen = strcspn(auth, "/?#");
        rest = auth + alen;
    } else if (target[0] == '/') {
        rest = target;
        auth = vg_request_header(req, "Host");
        alen = auth != NULL ? strlen(auth) : 0;
    } else {
        return vg_problem(400, "no path to redirect");
    }
    hlen = auth != NULL ? vg__host_part(auth, alen) : 0;
    if (hlen == 0)
        return vg_problem(400, "a valid Host is needed to redirect");
    if (!vg__host_allowed(r, auth, hlen))
        return vg_problem(421, "this host is not served here");
    if (r->port != 0 && r->port != 443)
        snprintf(port, sizeof port, ":%u", (unsigned)r->port);
    /* "http://h?q" has an empty path: "/" it is. */
    if (asprintf(&loc, "https://%.*s%s%s%s", (int)hlen, auth, port,
                 rest[0] == '/' ? "" : "/", rest) < 0)
        return NULL;
    res = vg_result_set_header(vg_result_set_status(vg_textf("%s\n", loc), 308),
                               "Location", loc);
    free(loc);
    return res;
}

static int vg__hosts_copy(vg__redirect *r, const char *const *hosts)
{
    size_t n = 0, i;

    if (hosts == NULL)
        return 0;
    while (hosts[n] != NULL)
        n++;
    if ((r->hosts = calloc(n + 1, sizeof *r->hosts)) == NULL)
        return -ENOMEM;
    for (i = 0; i < n; i++) {
        /* A name as it may appear in Host, without a port. */
        size_t len = strlen(hosts[i]);
        if (vg__host_part(hosts[i], len) != len)
            return -EINVAL;
        if ((r->hosts[i] = strdup(hosts[i])) == NULL)
            return -ENOMEM;
    }
    return 0;
}

vg_app *vg_app_new_https_redirect(const char *address,
                                  const vg_https_redirect_options *opts)
{
    vg_app *app;
    vg__redirect *r;
    int rc;

    if (address == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if ((app = vg_app_new(address)) == NULL)
        return NULL;
    if ((r = calloc(1, sizeof *r)) == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    r->port = opts != NULL ? opts->https_port : 0;
    rc = vg__hosts_copy(r, opts != NULL ? opts->hosts : NULL);
    if (rc != 0) {
        vg__redirect_free(r);
        goto fail;
    }
    if ((rc = vg__app_add_cleanup(app, vg__redirect_free, r)) != 0) {
        vg__redirect_free(r);
        goto fail;
    }
    if ((rc = vg_app_set_fallback(app, vg__redirect_answer, r)) != 0)
        goto fail;
    return app;
fail:
    vg_app_free(app);
    errno = -rc;
    return NULL;
}
