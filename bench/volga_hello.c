/* volga_hello.c - the libvolga side of the hello benchmark: the same two
 * answers as raw_mhd.c (/hello and /json), but through libvolga's routing,
 * worker pool and (unless --no-watch) disconnect watcher.
 *
 * Usage: volga_hello PORT [--no-watch] [--workers N] [--max-connections N]
 *                         [--inline] [--no-batch] [--middleware N]
 * --max-connections 1024 or less makes libmicrohttpd use poll() (see
 * vg_app_set_max_connections); --inline maps both routes inline;
 * --no-batch keeps the threads under SCHED_OTHER
 * (vg_app_set_batch_scheduling); --middleware N wraps every request in N
 * app middlewares that only pass it on (the pipeline's own cost).
 * Binds 127.0.0.1:PORT only; stops on SIGINT/SIGTERM. Run by bench/run-suite.
 */
#include <errno.h>
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

static vg_result *json(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_json(json_pack("{s:s, s:i}", "message", "Hello, World!",
                             "answer", 42));
}

/* A middleware that does nothing but run the rest of the chain. */
static vg_result *pass(vg_request *req, vg_next *next, void *arg)
{
    (void)req;
    (void)arg;
    return vg_next_run(next);
}

static void usage(void)
{
    fprintf(stderr, "usage: volga_hello PORT [--no-watch] [--workers N] "
                    "[--max-connections N] [--inline] [--no-batch] "
                    "[--middleware N]\n");
}

/* Parses a decimal unsigned in [lo, hi]; returns 0 on success. */
static int parse_uint(const char *s, unsigned long lo, unsigned long hi,
                      unsigned long *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long port, workers = 0, maxconn = 0, nmw = 0, k;
    bool watch = true, inl = false, batch = true;
    char address[64];
    vg_app *app;
    int i, rc;

    if (argc < 2 || parse_uint(argv[1], 0, 65535, &port) != 0) {
        usage();
        return 2;
    }
    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--no-watch") == 0) {
            watch = false;
        } else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc &&
                   parse_uint(argv[i + 1], 1, 100000, &workers) == 0) {
            i++;
        } else if (strcmp(argv[i], "--max-connections") == 0 && i + 1 < argc &&
                   parse_uint(argv[i + 1], 1, 1000000, &maxconn) == 0) {
            i++;
        } else if (strcmp(argv[i], "--inline") == 0) {
            inl = true;
        } else if (strcmp(argv[i], "--no-batch") == 0) {
            batch = false;
        } else if (strcmp(argv[i], "--middleware") == 0 && i + 1 < argc &&
                   parse_uint(argv[i + 1], 0, 1000, &nmw) == 0) {
            i++;
        } else {
            usage();
            return 2;
        }
    }
    snprintf(address, sizeof address, "127.0.0.1:%lu", port);
    app = vg_app_new(address);
    if (app == NULL) {
        perror("volga_hello: vg_app_new");
        return 1;
    }
    for (k = 0; k < nmw; k++)
        if (vg_app_use(app, pass, NULL) != 0) {
            fprintf(stderr, "volga_hello: cannot add a middleware\n");
            vg_app_free(app);
            return 1;
        }
    if ((workers != 0 && vg_app_set_workers(app, (unsigned)workers) != 0) ||
        vg_app_set_disconnect_watch(app, watch) != 0 ||
        vg_app_set_batch_scheduling(app, batch) != 0 ||
        vg_map_get(app, "/hello", hello, NULL) != 0 ||
        vg_map_get(app, "/json", json, NULL) != 0 ||
        (maxconn != 0 &&
         vg_app_set_max_connections(app, (unsigned)maxconn) != 0) ||
        (inl && (vg_map_inline(app, "GET", "/hello", true) != 0 ||
                 vg_map_inline(app, "GET", "/json", true) != 0))) {
        fprintf(stderr, "volga_hello: cannot configure the app\n");
        vg_app_free(app);
        return 1;
    }
    rc = vg_app_start(app);
    if (rc != 0) {
        fprintf(stderr, "volga_hello: cannot start on %s: %s\n", address,
                strerror(-rc));
        vg_app_free(app);
        return 1;
    }
    printf("volga_hello: listening on port %u\n", (unsigned)vg_app_port(app));
    fflush(stdout);
    rc = vg_app_run(app);
    vg_app_free(app);
    return rc == 0 ? 0 : 1;
}
