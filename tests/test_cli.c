/*
 * test_cli.c - command-line clients that give up: a Python script using the
 * standard library's http.client (tests/abort_client.py) sends a request,
 * waits for the answer with a 0.5 s read timeout, times out and closes the
 * connection; the running handler's token must be cancelled with
 * VG_CANCEL_CLIENT_GONE and the job must stop. (`curl --max-time 1` against
 * samples/long_task, the other command-line client of issue 8, is
 * test_cancel's test_long_task_sample_curl_max_time.)
 *
 * The script runs as a child process of the test (not under the test's
 * sanitizers or valgrind), found as $top_srcdir/tests/abort_client.py so
 * that VPATH builds and make distcheck find it. The program exits 77
 * (automake's SKIP) when there is no python3.
 *
 * Nothing sleeps to synchronise: the script waits for "go" on its stdin,
 * sent once the handler runs, so it cannot leave before the job starts;
 * the test waits on latches and the script's exit, each bounded.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <volga.h>
#include "testutil.h"

/* The longest the handler waits for its token: a client whose leaving is
 * never noticed fails an assertion instead of hanging the test. */
#define HANDLER_MS 20000
/* How long the test waits for something that should take well under a
 * second. */
#define HANG_MS 10000

/* The python3 the script runs with: see find_python. */
static char python[512];

typedef struct {
    tu_latch started;        /* the handler runs */
    tu_latch finished;       /* the handler is returning */
    atomic_int calls;
    /* Written by the handler before `finished`, read after it. */
    bool woke;               /* its wait ended because of cancellation */
    vg_cancel_reason reason; /* the token's reason then */
    double woke_ms;
} job;

/* A long job: waits on its token, as samples/long_task does step by step. */
static vg_result *h_long(vg_request *req, void *arg)
{
    job *j = arg;
    vg_token *tok = vg_request_token(req);
    bool woke;

    atomic_fetch_add(&j->calls, 1);
    tu_latch_add(&j->started, 1);
    woke = vg_token_wait(tok, HANDLER_MS);
    j->woke = woke;
    j->woke_ms = tu_now_ms();
    j->reason = vg_token_reason(tok);
    tu_latch_add(&j->finished, 1);
    return woke ? NULL : vg_text("nobody cancelled\n");
}

/* Reads what is in a pipe whose writer has exited; NUL-terminated. */
static void read_pipe(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    ssize_t n;

    while (got + 1 < cap) {
        do
            n = read(fd, buf + got, cap - 1 - got);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
}

START_TEST(test_python_client_timeout_stops_job)
{
    const char *top = getenv("top_srcdir");
    char script[1024], port[16], out[512];
    char *argv[] = {python, script, port, NULL};
    job *j = calloc(1, sizeof *j);
    vg_app *app = tu_app_new();
    int in[2], outp[2], status = -1;
    bool started, finished = false, exited;
    double go_ms = 0;
    vg_stats st;
    pid_t pid;

    ck_assert_ptr_nonnull(j);
    tu_latch_init(&j->started);
    tu_latch_init(&j->finished);
    snprintf(script, sizeof script, "%s/tests/abort_client.py",
             top != NULL && *top != '\0' ? top : ".");
    ck_assert_msg(access(script, R_OK) == 0,
                  "%s is missing (top_srcdir is set by make check)", script);
    ck_assert_int_eq(vg_map_get(app, "/long-task", h_long, j), 0);
    tu_start(app);
    snprintf(port, sizeof port, "%u", (unsigned)vg_app_port(app));

    ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(outp, O_CLOEXEC), 0);
    /* Its stderr is ours, so a Python traceback lands in the test's log. */
    pid = tu_spawn(argv, in[0], outp[1], 2);
    close(in[0]);
    close(outp[1]);
    ck_assert_msg(pid > 0, "cannot start %s: %s", python, strerror(errno));

    /* Everything below records; the script is reaped before any assert. */
    started = tu_latch_wait(&j->started, 1, HANG_MS);
    if (started) {
        go_ms = tu_now_ms();
        /* Three bytes into an empty pipe: one write, never partial. */
        if (write(in[1], "go\n", 3) != 3)
            fprintf(stderr, "test_cli: cannot tell the script to go: %s\n",
                    strerror(errno));
        finished = tu_latch_wait(&j->finished, 1, HANG_MS);
    }
    close(in[1]);
    exited = tu_wait_exit(pid, HANG_MS, &status);
    if (!exited)
        tu_stop_child(pid, SIGKILL, HANG_MS);
    read_pipe(outp[0], out, sizeof out);
    close(outp[0]);

    ck_assert_msg(started, "the handler did not start within %d ms", HANG_MS);
    ck_assert_msg(exited, "abort_client.py did not exit within %d ms", HANG_MS);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "abort_client.py ended with status 0x%x (3: it got an "
                  "answer); its stdout: %s", (unsigned)status, out);
    ck_assert_msg(strstr(out, "gave up") != NULL,
                  "abort_client.py did not give up; its stdout: %s", out);
    ck_assert_msg(finished, "the job did not stop within %d ms of the "
                            "script's go", HANG_MS);
    ck_assert_msg(j->woke, "the handler's wait ran out: nothing cancelled "
                           "its token");
    ck_assert_msg(j->reason == VG_CANCEL_CLIENT_GONE,
                  "token cancelled for %s, not client_gone",
                  vg_cancel_reason_name(j->reason));
    fprintf(stderr, "test_cli: python http.client gave up; the job stopped "
                    "%.0f ms after its go (0.5 s of that is its timeout)\n",
            j->woke_ms - go_ms);

    ck_assert_msg(tu_wait_settled(app, 1, HANG_MS, &st), "requests %llu, in flight %llu",
                  st.requests, st.in_flight);
    ck_assert_uint_eq(st.requests, 1);
    ck_assert_uint_eq(st.cancelled_client_gone, 1);
    ck_assert_uint_eq(st.cancelled_timeout, 0);
    vg_app_free(app);
    ck_assert_int_eq(atomic_load(&j->calls), 1);
    tu_latch_destroy(&j->started);
    tu_latch_destroy(&j->finished);
    free(j);
}
END_TEST

/* Debian's /usr/bin/python3 (the package dev.sh installs) if present,
 * else the first python3 on PATH, into `python`; false if none. Debian's
 * comes first because a version manager's shim earlier on PATH (pyenv's)
 * can take seconds to start. */
static bool find_python(void)
{
    const char *path = getenv("PATH");
    char *dirs, *dir, *save = NULL;
    bool found = false;

    snprintf(python, sizeof python, "/usr/bin/python3");
    if (access(python, X_OK) == 0)
        return true;
    dirs = strdup(path != NULL && *path != '\0' ? path : "/usr/bin:/bin");
    if (dirs == NULL)
        return false;
    for (dir = strtok_r(dirs, ":", &save); dir != NULL && !found;
         dir = strtok_r(NULL, ":", &save)) {
        snprintf(python, sizeof python, "%s/python3", *dir ? dir : ".");
        found = access(python, X_OK) == 0;
    }
    free(dirs);
    return found;
}

static Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("python");

    tcase_add_test(tc, test_python_client_timeout_stops_job);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (!find_python()) {
        fprintf(stderr, "test_cli: SKIP: no python3 on PATH (Debian package "
                        "python3; ./dev.sh check installs it)\n");
        return 77;
    }
    return tu_main(cli_suite());
}
