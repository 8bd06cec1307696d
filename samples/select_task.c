/* select_task.c - the seed's second example in C: a long job raced against
 * the request's cancellation token, like `tokio::select!`.
 *
 *   ./samples/select_task [address]        (default localhost:7878)
 *   curl --max-time 2 localhost:7878/long-task     # stops within ~1 ms of the abort
 *   curl localhost:7878/long-task?ticks=5          # finishes: "done"
 *
 * The job is an interval ticking every 100 ms (a timerfd) that does a bit
 * of work per tick. The handler poll()s the job's fd together with
 * vg_token_fd(): whichever is ready first wins, so cancellation is noticed
 * between ticks without any polling delay. It logs when and why it stopped.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <volga.h>

/* The long-running job: an interval of 100 ms ticks. */
static int job_start(void)
{
    struct itimerspec every = {{0, 100000000L}, {0, 100000000L}};
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);

    if (fd >= 0 && timerfd_settime(fd, 0, &every, NULL) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static vg_result *long_task(vg_request *req, void *arg)
{
    vg_token *tok = vg_request_token(req);
    const char *limit = vg_request_query(req, "ticks");
    long ticks = 0, max = limit ? strtol(limit, NULL, 10) : -1;
    struct pollfd fds[2];
    uint64_t expirations;
    int job = job_start(), cancel_fd = vg_token_fd(tok);

    (void)arg;
    if (job < 0 || cancel_fd < 0) {
        if (job >= 0)
            close(job);
        return vg_result_set_status(vg_text("cannot start the job\n"), 500);
    }
    fds[0].fd = cancel_fd;
    fds[0].events = POLLIN;
    fds[1].fd = job;
    fds[1].events = POLLIN;
    while (max < 0 || ticks < max) {
        if (poll(fds, 2, -1) < 0 && errno != EINTR)
            break;
        if (fds[0].revents & POLLIN)
            break; /* `_ = token.cancelled() => ()` */
        if ((fds[1].revents & POLLIN) &&
            read(job, &expirations, sizeof expirations) == sizeof expirations)
            ticks += (long)expirations; /* some long-running job... */
    }
    close(job);
    if (vg_token_is_cancelled(tok)) {
        fprintf(stderr, "select_task: job stopped after %ld ticks: %s\n", ticks,
                vg_cancel_reason_name(vg_token_reason(tok)));
        return NULL;
    }
    fprintf(stderr, "select_task: job finished after %ld ticks\n", ticks);
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
        fprintf(stderr, "select_task: cannot start on %s: %s\n", address,
                strerror(-rc));
        vg_app_free(app);
        return 1;
    }
    printf("select_task: listening on port %u\n", (unsigned)vg_app_port(app));
    fflush(stdout);
    rc = vg_app_run(app);
    vg_app_free(app);
    return rc == 0 ? 0 : 1;
}
