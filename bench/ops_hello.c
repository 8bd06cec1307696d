/* ops_hello.c - an inline /hello with the operations features on top, for
 * bench/run-callgrind: what the rate limiter and the metrics add to one
 * request.
 *
 * Usage: ops_hello PORT [--ratelimit] [--headers] [--metrics] [--proxy]
 * --ratelimit keys every request by client address in a limiter too wide
 * to refuse any (the cost of an allowed decision; --headers adds the
 * RateLimit-Policy and RateLimit headers to every answer,
 * vg_ratelimit_set_headers);
 * --metrics counts every request in a registry (its completion hook);
 * --proxy trusts 10.0.0.0/8 (the cost for a peer that is not a proxy).
 * Serves until SIGINT or SIGTERM. Loopback only. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <volga.h>

static vg_result *hello(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_text("Hello, World!");
}

int main(int argc, char **argv)
{
    bool rl_on = false, headers = false, mx_on = false, px_on = false;
    vg_ratelimit *rl = NULL;
    vg_metrics *mx = NULL;
    vg_proxy_trust *px = NULL;
    char address[64];
    vg_app *app;
    int i, rc = 1;

    if (argc < 2) {
        fprintf(stderr, "usage: ops_hello PORT [--ratelimit] [--headers] "
                        "[--metrics] [--proxy]\n");
        return 2;
    }
    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--ratelimit") == 0)
            rl_on = true;
        else if (strcmp(argv[i], "--headers") == 0)
            headers = true;
        else if (strcmp(argv[i], "--metrics") == 0)
            mx_on = true;
        else if (strcmp(argv[i], "--proxy") == 0)
            px_on = true;
        else {
            fprintf(stderr, "ops_hello: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    snprintf(address, sizeof address, "127.0.0.1:%s", argv[1]);
    app = vg_app_new(address);
    if (app == NULL) {
        perror("ops_hello: vg_app_new");
        return 1;
    }
    if (px_on && ((px = vg_proxy_trust_new()) == NULL ||
                  vg_proxy_trust_add(px, "10.0.0.0/8") != 0 ||
                  vg_app_use_proxy_trust(app, px) != 0))
        goto out;
    if (rl_on && ((rl = vg_ratelimit_new(1000000000u, 1000)) == NULL ||
                  vg_ratelimit_set_headers(rl, headers) != 0 ||
                  vg_app_use_ratelimit(app, rl) != 0))
        goto out;
    if (mx_on && ((mx = vg_metrics_new()) == NULL ||
                  vg_app_use_metrics(app, mx, "/metrics") != 0))
        goto out;
    if (vg_map_get(app, "/hello", hello, NULL) != 0 ||
        vg_map_inline(app, "GET", "/hello", true) != 0 ||
        vg_app_start(app) != 0)
        goto out;
    printf("ops_hello: listening on port %u\n", (unsigned)vg_app_port(app));
    fflush(stdout);
    rc = vg_app_run(app) == 0 ? 0 : 1;
out:
    if (rc != 0 && vg_app_port(app) == 0)
        fprintf(stderr, "ops_hello: cannot configure or start the app\n");
    vg_app_free(app);
    vg_ratelimit_free(rl);
    vg_metrics_free(mx);
    vg_proxy_trust_free(px);
    return rc;
}
