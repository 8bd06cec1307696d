/* long_task.c - the seed's first example in C: a long-running job that
 * polls its request's cancellation token and stops when the client leaves.
 *
 *   ./samples/long_task [address]          (default localhost:7878)
 *   curl --max-time 3 localhost:7878/long-task      # stops after ~3 s
 *   curl localhost:7878/long-task?steps=2           # finishes: "done"
 *
 * Each step waits up to a second on the token (waking at once when it is
 * cancelled), then does its bit of work. The job logs to stderr when and why
 * it stopped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <volga.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static vg_result *long_task(vg_request *req, void *arg)
{
    vg_token *tok = vg_request_token(req);
    const char *limit = vg_request_query(req, "steps");
    long steps = 0, max = limit ? strtol(limit, NULL, 10) : -1;
    double start = now_s();

    (void)arg;
    /* Like `while !token.is_cancelled() { interval.tick().await; ... }`. */
    while (!vg_token_is_cancelled(tok) && (max < 0 || steps < max)) {
        if (vg_token_wait(tok, 1000))
            break;
        steps++; /* doing some long-running job... */
    }
    if (vg_token_is_cancelled(tok)) {
        fprintf(stderr, "long_task: job stopped after %ld steps, %.3f s: %s\n",
                steps, now_s() - start, vg_cancel_reason_name(vg_token_reason(tok)));
        return NULL; /* nobody will read an answer */
    }
    fprintf(stderr, "long_task: job finished after %ld steps, %.3f s\n", steps,
            now_s() - start);
    return vg_text("done");
}

int main(int argc, char **argv)
{
    const char *address = argc > 1 ? argv[1] : "localhost:7878";
    vg_app *app = vg_app_new(address);
    int rc;

    if (app == NULL) {
        perror("vg_app_new");
        return 1;
    }
    /* Warnings and one access-log line per request, to stderr. */
    vg_app_set_logger(app, vg_log_stderr, NULL, VG_LOG_INFO);
    if (vg_map_get(app, "/long-task", long_task, NULL) != 0) {
        vg_app_free(app);
        return 1;
    }
    rc = vg_app_start(app);
    if (rc != 0) {
        fprintf(stderr, "long_task: cannot start on %s: %s\n", address,
                strerror(-rc));
        vg_app_free(app);
        return 1;
    }
    printf("long_task: listening on port %u\n", (unsigned)vg_app_port(app));
    fflush(stdout);
    rc = vg_app_run(app);
    vg_app_free(app);
    return rc == 0 ? 0 : 1;
}
