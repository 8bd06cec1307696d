/* park_server.c - a libvolga server for bench/run-park: GET /park defers
 * the request (parked until the server stops), GET /hello answers at once,
 * GET /parked reports how many are parked. Usage: park_server PORT. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <volga.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static vg_request **parked;
static size_t nparked, cap;

static vg_result *park(vg_request *req, void *arg)
{
    vg_result *res;

    (void)arg;
    pthread_mutex_lock(&lock);
    if (nparked == cap) {
        size_t ncap = cap ? cap * 2 : 1024;
        vg_request **grown = realloc(parked, ncap * sizeof *grown);
        if (grown == NULL) {
            pthread_mutex_unlock(&lock);
            return vg_status(503);
        }
        parked = grown;
        cap = ncap;
    }
    parked[nparked++] = req;
    res = vg_defer(req);
    pthread_mutex_unlock(&lock);
    return res;
}

static vg_result *count(vg_request *req, void *arg)
{
    size_t n;

    (void)req;
    (void)arg;
    pthread_mutex_lock(&lock);
    n = nparked;
    pthread_mutex_unlock(&lock);
    return vg_textf("%zu", n);
}

static vg_result *hello(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_text("Hello, World!");
}

int main(int argc, char **argv)
{
    char address[64];
    vg_app *app;
    size_t i;
    int rc;

    if (argc < 2) {
        fprintf(stderr, "usage: park_server PORT\n");
        return 2;
    }
    snprintf(address, sizeof address, "127.0.0.1:%s", argv[1]);
    app = vg_app_new(address);
    if (app == NULL || vg_app_set_max_connections(app, 20000) != 0 ||
        vg_app_set_shutdown_grace(app, 0) != 0 ||
        vg_map_get(app, "/park", park, NULL) != 0 ||
        vg_map_get(app, "/parked", count, NULL) != 0 ||
        vg_map_get(app, "/hello", hello, NULL) != 0)
        return 1;
    rc = vg_app_start(app);
    if (rc != 0) {
        fprintf(stderr, "park_server: cannot start: %s\n", strerror(-rc));
        return 1;
    }
    printf("park_server: listening on port %u\n", (unsigned)vg_app_port(app));
    fflush(stdout);
    vg_app_run(app);
    /* Shutdown cancelled the parked requests; finish them so free returns. */
    pthread_mutex_lock(&lock);
    for (i = 0; i < nparked; i++)
        vg_request_finish(parked[i], NULL);
    nparked = 0;
    pthread_mutex_unlock(&lock);
    vg_app_free(app);
    free(parked);
    return 0;
}
