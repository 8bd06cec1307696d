/* web_hello.c - /hello with the web essentials of lib/web/ turned on one
 * at a time, to count what each adds to a request (bench/run-callgrind;
 * see bench/RESULTS.md "Web essentials").
 *
 * Usage: web_hello PORT [--inline] [--cors] [--request-id] [--signed-cookie]
 *                        [--ratelimit] [--metrics] [--all]
 *   --cors           a CORS policy allowing http://page.example on the app
 *                    (send "Origin: http://page.example" to exercise it)
 *   --request-id     vg_app_use_request_id (untrusted: always generated)
 *   --signed-cookie  the handler reads signed cookie "s" under the key
 *                    BENCH_KEY and answers 500 if it does not verify (send
 *                    the cookie bench/run-callgrind's users compute, see
 *                    RESULTS.md)
 *   --ratelimit      vg_app_use_ratelimit keyed by client address, a limit
 *                    no run reaches, no headers on allowed answers
 *   --metrics        vg_app_use_metrics, exposition at /metrics
 *   --all            the five above together (issue 17's "together")
 * Binds 127.0.0.1:PORT only; stops on SIGINT/SIGTERM.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <volga.h>

/* 32 bytes; the cookie "s=user42.0.<MAC>" is signed with it. */
#define BENCH_KEY "bench key, exactly thirty-two b!"

static vg_cookie_keys *keys;

static vg_result *hello(vg_request *req, void *arg)
{
    (void)arg;
    if (keys != NULL && vg_request_signed_cookie(req, keys, "s") == NULL)
        return NULL; /* a cookie that does not verify fails the run */
    return vg_text("Hello, World!");
}

int main(int argc, char **argv)
{
    bool inl = false, cors = false, rid = false, cookie = false;
    bool rl_on = false, mx_on = false;
    vg_cors *policy = NULL;
    vg_ratelimit *rl = NULL;
    vg_metrics *mx = NULL;
    char address[64];
    vg_app *app;
    int i, rc = 1;

    if (argc < 2 || atoi(argv[1]) < 0 || atoi(argv[1]) > 65535) {
        fprintf(stderr, "usage: web_hello PORT [--inline] [--cors] "
                        "[--request-id] [--signed-cookie] [--ratelimit] "
                        "[--metrics] [--all]\n");
        return 2;
    }
    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--inline") == 0)
            inl = true;
        else if (strcmp(argv[i], "--cors") == 0)
            cors = true;
        else if (strcmp(argv[i], "--request-id") == 0)
            rid = true;
        else if (strcmp(argv[i], "--signed-cookie") == 0)
            cookie = true;
        else if (strcmp(argv[i], "--ratelimit") == 0)
            rl_on = true;
        else if (strcmp(argv[i], "--metrics") == 0)
            mx_on = true;
        else if (strcmp(argv[i], "--all") == 0)
            cors = rid = cookie = rl_on = mx_on = true;
        else {
            fprintf(stderr, "web_hello: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    snprintf(address, sizeof address, "127.0.0.1:%d", atoi(argv[1]));
    app = vg_app_new(address);
    if (app == NULL) {
        perror("web_hello");
        return 1;
    }
    if (cookie && (keys = vg_cookie_keys_new(BENCH_KEY, 32)) == NULL)
        goto out;
    if (cors && ((policy = vg_cors_new()) == NULL ||
                 vg_cors_allow_origin(policy, "http://page.example") != 0 ||
                 vg_app_use_cors(app, policy) != 0))
        goto out;
    if (rl_on && ((rl = vg_ratelimit_new(1000000000u, 1000)) == NULL ||
                  vg_app_use_ratelimit(app, rl) != 0))
        goto out;
    if (mx_on && ((mx = vg_metrics_new()) == NULL ||
                  vg_app_use_metrics(app, mx, "/metrics") != 0))
        goto out;
    if ((rid && vg_app_use_request_id(app, false) != 0) ||
        vg_map_get(app, "/hello", hello, NULL) != 0 ||
        (inl && vg_map_inline(app, "GET", "/hello", true) != 0))
        goto out;
    if (vg_app_start(app) != 0)
        goto out;
    printf("web_hello: listening on port %u\n", (unsigned)vg_app_port(app));
    fflush(stdout);
    rc = vg_app_run(app) == 0 ? 0 : 1;
out:
    if (rc != 0)
        fprintf(stderr, "web_hello: cannot set up the app\n");
    vg_app_free(app);
    vg_cors_free(policy);
    vg_cookie_keys_free(keys);
    vg_ratelimit_free(rl);
    vg_metrics_free(mx);
    return rc;
}
