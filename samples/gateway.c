/* gateway.c - one request fanned out to two upstreams at once, both
 * stopped when the client leaves.
 *
 *   ./samples/gateway [address [upstream-a upstream-b]]
 *   curl 'localhost:7878/compare?ms=200'     # both answers, as JSON
 *   curl --max-time 1 'localhost:7878/compare?ms=30000'
 *                     # the client leaves after 1 s: both upstreams stop
 *
 * Without upstream URLs the sample starts two tiny upstream apps of its
 * own on 127.0.0.1 (any free port); each answers /quote?ms=N after N
 * milliseconds of "work" (a wait on its request's token) and logs when it
 * starts and how it ended. The gateway calls both with vg_curl_perform_all
 * on its request's token, forwarding what is left of its 60 s deadline:
 * when the client leaves, the token fires, both transfers stop and their
 * connections close, so each upstream's own token fires with client_gone
 * and its work stops too. The request's X-Request-Id goes along
 * (vg_curl_add_request_id), so the upstreams' logs name the same request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <volga.h>
#include <volga-curl.h>

#define MAX_BODY 65536

/* ---- The upstreams ---- */

static vg_result *quote(vg_request *req, void *arg)
{
    const char *name = arg, *ms_text = vg_request_query(req, "ms");
    long ms = ms_text ? strtol(ms_text, NULL, 10) : 100;
    vg_token *tok = vg_request_token(req);

    if (ms < 0 || ms > 600000)
        return vg_problem(400, "ms must be from 0 to 600000");
    fprintf(stderr, "gateway: upstream %s: working for %ld ms (request %s)\n",
            name, ms, vg_request_id(req) ? vg_request_id(req) : "-");
    if (vg_token_wait(tok, (int)ms)) {   /* the work, stopped early */
        fprintf(stderr, "gateway: upstream %s: stopped: %s\n", name,
                vg_cancel_reason_name(vg_token_reason(tok)));
        return NULL;
    }
    fprintf(stderr, "gateway: upstream %s: done\n", name);
    return vg_textf("%s after %ld ms", name, ms);
}

/* Starts an upstream app on 127.0.0.1:0 and writes its base URL. */
static vg_app *start_upstream(const char *name, char *url, size_t len)
{
    vg_app *app = vg_app_new("127.0.0.1:0");

    if (app == NULL)
        return NULL;
    /* Trusting the gateway's X-Request-Id, so both log the same ID. */
    if (vg_app_use_request_id(app, true) != 0 ||
        vg_map_get(app, "/quote", quote, (void *)name) != 0 ||
        vg_app_start(app) != 0) {
        vg_app_free(app);
        return NULL;
    }
    snprintf(url, len, "http://127.0.0.1:%u", (unsigned)vg_app_port(app));
    return app;
}

/* ---- The gateway ---- */

typedef struct {
    char data[MAX_BODY];
    size_t len;
} body;

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    body *b = arg;
    size_t room = sizeof b->data - 1 - b->len, take = size * n;

    if (take > room)
        return 0;           /* too big: libcurl ends the transfer */
    memcpy(b->data + b->len, p, take);
    b->len += take;
    b->data[b->len] = '\0';
    return take;
}

typedef struct {
    const char *url[2];
} gateway;

/* One upstream's outcome as JSON: its status and body, or the error. */
static json_t *outcome(CURL *easy, CURLcode rc, const body *b)
{
    long status = 0;

    if (rc != CURLE_OK)
        return json_pack("{s:s}", "error", curl_easy_strerror(rc));
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    return json_pack("{s:i,s:s}", "status", (int)status, "body", b->data);
}

static vg_result *compare(vg_request *req, void *arg)
{
    gateway *g = arg;
    vg_token *tok = vg_request_token(req);
    const char *ms_text = vg_request_query(req, "ms");
    long ms = ms_text ? strtol(ms_text, NULL, 10) : 100;
    CURL *easy[2] = {NULL, NULL};
    CURLcode res[2], rc = CURLE_OUT_OF_MEMORY;
    body *bodies = calloc(2, sizeof *bodies);
    struct curl_slist *hdrs = vg_curl_add_request_id(NULL, req);
    vg_result *out = NULL;
    char url[512];
    int i;

    if (bodies == NULL)
        return vg_status(500);
    for (i = 0; i < 2; i++) {
        if ((easy[i] = curl_easy_init()) == NULL)
            goto done;
        snprintf(url, sizeof url, "%s/quote?ms=%ld", g->url[i], ms);
        curl_easy_setopt(easy[i], CURLOPT_URL, url);
        curl_easy_setopt(easy[i], CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(easy[i], CURLOPT_WRITEDATA, &bodies[i]);
        curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, hdrs);
    }
    rc = vg_curl_perform_all(easy, 2, tok, VG_CURL_DEADLINE, res);
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
        fprintf(stderr, "gateway: fan-out stopped: %s\n",
                vg_cancel_reason_name(vg_token_reason(tok)));
        goto done;              /* nobody is left to read an answer */
    }
    if (rc != CURLE_OK) {
        out = vg_problem(502, curl_easy_strerror(rc));
        goto done;
    }
    out = vg_json(json_pack("{s:o,s:o}", "a", outcome(easy[0], res[0], &bodies[0]),
                            "b", outcome(easy[1], res[1], &bodies[1])));
done:
    for (i = 0; i < 2; i++)
        curl_easy_cleanup(easy[i]);
    curl_slist_free_all(hdrs);
    free(bodies);
    if (out == NULL && rc != CURLE_ABORTED_BY_CALLBACK)
        out = vg_status(500);
    return out;
}

int main(int argc, char **argv)
{
    const char *address = argc > 1 ? argv[1] : "localhost:7878";
    char url_a[64], url_b[64];
    vg_app *up_a = NULL, *up_b = NULL, *app = NULL;
    gateway g;
    int rc = 1;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    if (argc > 3) {
        g.url[0] = argv[2];
        g.url[1] = argv[3];
    } else {
        up_a = start_upstream("a", url_a, sizeof url_a);
        up_b = start_upstream("b", url_b, sizeof url_b);
        if (up_a == NULL || up_b == NULL) {
            fprintf(stderr, "gateway: cannot start the upstreams\n");
            goto out;
        }
        g.url[0] = url_a;
        g.url[1] = url_b;
        fprintf(stderr, "gateway: upstreams on %s and %s\n", url_a, url_b);
    }
    app = vg_app_new(address);
    if (app == NULL) {
        perror("vg_app_new");
        goto out;
    }
    vg_app_set_logger(app, vg_log_stderr, NULL, VG_LOG_INFO);
    if (vg_app_use_request_id(app, false) != 0 ||
        vg_app_set_request_timeout(app, 60000) != 0 ||
        vg_map_get(app, "/compare", compare, &g) != 0 || vg_app_start(app) != 0) {
        fprintf(stderr, "gateway: cannot start on %s\n", address);
        goto out;
    }
    printf("gateway: listening on port %u\n", (unsigned)vg_app_port(app));
    fflush(stdout);
    rc = vg_app_run(app) == 0 ? 0 : 1;
out:
    /* The apps' worker threads free their multi handles as they exit,
     * before libcurl is cleaned up. */
    vg_app_free(app);
    vg_app_free(up_a);
    vg_app_free(up_b);
    curl_global_cleanup();
    return rc;
}
