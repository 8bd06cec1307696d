/* convert.c - a child process that stops when the client leaves.
 *
 *   ./samples/convert [address]                 (default localhost:7878)
 *   curl 'localhost:7878/convert?mb=16'          # gzip of 16 MiB: its size
 *   curl --max-time 1 'localhost:7878/convert?mb=4096'
 *                          # the client leaves after 1 s: gzip stops too
 *
 * The handler runs a shell pipeline (head -c N /dev/urandom | gzip -1) in a
 * process group of its own and reads the compressed stream from a pipe,
 * waiting on the pipe and the request's token at once (vg_token_poll).
 * When the token fires (the client left, the 60 s deadline passed, the app
 * is stopping), vg_proc_wait stops the whole group - the shell, head and
 * gzip - with SIGTERM, SIGKILL after a 2 s grace, and reaps the shell. Logs
 * to stderr when each conversion starts and how it ended.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <volga.h>

#define MAX_MB 4096
#define GRACE_MS 2000

extern char **environ;

/* Starts the pipeline for `bytes` bytes with its stdout on *out (our end,
 * close-on-exec); the pid of its shell, which leads a new process group,
 * or -1 with errno set. The byte count is passed as "$1", never spliced
 * into the script. */
static pid_t start_pipeline(const char *bytes, int *out)
{
    char *argv[] = {"/bin/sh", "-c", "head -c \"$1\" /dev/urandom | gzip -1",
                    "convert", (char *)bytes, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, dfl;
    int pfd[2], rc;
    pid_t pid = -1;

    if (pipe2(pfd, O_CLOEXEC) != 0)
        return -1;
    /* A group of its own (so that head and gzip are stopped with the
     * shell), no blocked signals, and the default action for the ones
     * that stop it, whatever this process ignores. */
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGTERM);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGPIPE);
    rc = posix_spawn_file_actions_init(&fa);
    if (rc == 0) {
        rc = posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
        if (rc == 0)
            rc = posix_spawnattr_init(&attr);
        if (rc == 0) {
            posix_spawnattr_setsigmask(&attr, &none);
            posix_spawnattr_setsigdefault(&attr, &dfl);
            posix_spawnattr_setpgroup(&attr, 0);
            posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
                                     POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
            rc = posix_spawn(&pid, argv[0], &fa, &attr, argv, environ);
            posix_spawnattr_destroy(&attr);
        }
        posix_spawn_file_actions_destroy(&fa);
    }
    close(pfd[1]);
    if (rc != 0) {
        close(pfd[0]);
        errno = rc;
        return -1;
    }
    *out = pfd[0];
    return pid;
}

/* Reads the pipe to its end, counting bytes; -ECANCELED as soon as the
 * token fires, or -errno. */
static long long drain(int fd, vg_token *tok)
{
    char buf[65536];
    long long total = 0;

    for (;;) {
        int rc = vg_token_poll(tok, fd, POLLIN, -1);
        ssize_t n;

        if (rc < 0)
            return rc;
        n = read(fd, buf, sizeof buf);
        if (n == 0)
            return total;
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n > 0)
            total += n;
    }
}

static vg_result *convert(vg_request *req, void *arg)
{
    vg_token *tok = vg_request_token(req);
    const char *mb_text = vg_request_query(req, "mb");
    char bytes[32], *end;
    long mb = mb_text ? strtol(mb_text, &end, 10) : 16;
    long long size;
    int out, st = 0, rc;
    pid_t pid;

    (void)arg;
    if ((mb_text && (*mb_text == '\0' || *end != '\0')) || mb < 1 || mb > MAX_MB)
        return vg_problem(400, "mb must be a whole number from 1 to 4096");
    snprintf(bytes, sizeof bytes, "%lld", (long long)mb * 1048576);
    pid = start_pipeline(bytes, &out);
    if (pid < 0) {
        fprintf(stderr, "convert: cannot start the pipeline: %s\n", strerror(errno));
        return vg_problem(500, "cannot start the converter");
    }
    fprintf(stderr, "convert: started pid %d for %ld MiB (deadline in %ld ms)\n",
            (int)pid, mb, vg_token_remaining_ms(tok));

    size = drain(out, tok);
    /* Waits for the exit after a full read; stops the group if the token
     * fired first (then rc is -ECANCELED). The pipe stays open until then,
     * so that what stops gzip is our signal, not a broken pipe. */
    rc = vg_proc_wait(pid, tok, GRACE_MS, &st);
    close(out);
    if (rc == -ECANCELED) {
        fprintf(stderr, "convert: stopped pid %d (%s): %s\n", (int)pid,
                WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "exited",
                vg_cancel_reason_name(vg_token_reason(tok)));
        return NULL; /* nobody is left to read an answer */
    }
    if (rc != 0 || size < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "convert: pid %d failed (wait %d, read %lld, status %d)\n",
                (int)pid, rc, size, st);
        return vg_problem(500, "the converter failed");
    }
    fprintf(stderr, "convert: pid %d done: %lld bytes\n", (int)pid, size);
    return vg_textf("%lld\n", size);
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
    vg_app_set_logger(app, vg_log_stderr, NULL, VG_LOG_INFO);
    if (vg_app_set_request_timeout(app, 60000) != 0 ||
        vg_map_get(app, "/convert", convert, NULL) != 0) {
        vg_app_free(app);
        return 1;
    }
    rc = vg_app_start(app);
    if (rc != 0) {
        fprintf(stderr, "convert: cannot start on %s: %s\n", address, strerror(-rc));
        vg_app_free(app);
        return 1;
    }
    printf("convert: listening on port %u\n", (unsigned)vg_app_port(app));
    fflush(stdout);
    rc = vg_app_run(app);
    vg_app_free(app);
    return rc == 0 ? 0 : 1;
}
