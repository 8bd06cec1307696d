/*
 * test_proc.c - vg_proc_wait (lib/proc.c) with real child processes
 * (/bin/sh scripts): the exit status on a normal end, the child and its
 * own children gone on cancel, SIGKILL after the grace when SIGTERM is
 * ignored, nothing left a zombie, processes that are not ours never
 * signalled; each with pidfd and with the polling fallback.
 *
 * The test process makes itself a child subreaper, so grandchildren
 * orphaned by a stopped child are re-parented to it and their end can be
 * waited for and inspected (killed by which signal) rather than guessed.
 * Children report readiness on a pipe; nothing here sleeps to synchronise.
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
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <volga.h>
#include "core/proc.h"
#include "testutil.h"

extern char **environ;

/* ------------------------------------------------------------------------
 * Helpers
 */

/* Starts `/bin/sh -c script` with stdout on a pipe (*out, close-on-exec in
 * this process), in a process group of its own unless `same_group`.
 * SIGTERM gets its default action in the child whatever ours is. */
static pid_t spawn_sh(const char *script, bool same_group, int *out)
{
    char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, def;
    int pfd[2];
    pid_t pid;

    ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
    ck_assert_int_eq(posix_spawn_file_actions_init(&fa), 0);
    ck_assert_int_eq(posix_spawn_file_actions_adddup2(&fa, pfd[1], 1), 0);
    ck_assert_int_eq(posix_spawnattr_init(&attr), 0);
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGTERM);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, (short)(POSIX_SPAWN_SETSIGMASK |
                                            POSIX_SPAWN_SETSIGDEF |
                                            (same_group ? 0 : POSIX_SPAWN_SETPGROUP)));
    ck_assert_int_eq(posix_spawn(&pid, argv[0], &fa, &attr, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(pfd[1]);
    *out = pfd[0];
    return pid;
}

/* Reads from `fd` until `n` newlines arrived (10 s at most) into buf. */
static void read_lines(int fd, char *buf, size_t len, int n)
{
    size_t got = 0;
    double t0 = tu_now_ms();
    int lines = 0;

    while (lines < n) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t r;
        size_t i;

        ck_assert_msg(tu_now_ms() - t0 < 10000, "child said only '%.*s'",
                      (int)got, buf);
        if (poll(&p, 1, 1000) <= 0)
            continue;
        r = read(fd, buf + got, len - 1 - got);
        ck_assert_int_gt(r, 0);
        for (i = got; i < got + (size_t)r; i++)
            lines += buf[i] == '\n';
        got += (size_t)r;
    }
    buf[got] = '\0';
}

/* The pid after "tag " in buf. */
static pid_t pid_after(const char *buf, const char *tag)
{
    const char *p = strstr(buf, tag);

    ck_assert_msg(p != NULL, "no '%s' in '%s'", tag, buf);
    return (pid_t)atoi(p + strlen(tag));
}

/* Whether `pid` is one of our unreaped children. */
static bool is_our_child(pid_t pid)
{
    siginfo_t si;

    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

/* A thread blocked in waitpid for an adopted grandchild (no pidfd: it
 * must also work under valgrind, which lacks pidfd_open). */
typedef struct {
    pid_t pid;
    int st;
    tu_latch done;
} reaper;

static void *reaper_main(void *arg)
{
    reaper *r = arg;

    while (waitpid(r->pid, &r->st, 0) < 0 && errno == EINTR)
        ;
    tu_latch_add(&r->done, 1);
    return NULL;
}

/* Waits (10 s at most) for the adopted grandchild `pid` to end, reaps it
 * and returns its wait status; fails the test if it does not end (and
 * then kills it, so that nothing is left behind). */
static int reap_adopted(pid_t pid)
{
    reaper r = {.pid = pid, .st = 0};
    pthread_t th;
    bool ended;

    tu_latch_init(&r.done);
    ck_assert_int_eq(pthread_create(&th, NULL, reaper_main, &r), 0);
    ended = tu_latch_wait(&r.done, 1, 10000);
    if (!ended)
        kill(pid, SIGKILL);
    pthread_join(th, NULL);
    tu_latch_destroy(&r.done);
    ck_assert_msg(ended, "grandchild %d still ran", (int)pid);
    return r.st;
}

static void become_subreaper(void)
{
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
}

/* Each test runs twice: _i == 0 with pidfd, 1 with the polling fallback. */
static void choose_waiter(int i)
{
    vg__proc_use_pidfd(i == 0);
}

/* ------------------------------------------------------------------------
 * Tests
 */

START_TEST(normal_exit_gives_status_and_reaps)
{
    vg_token *tok = vg_token_new();
    int out, st = -1;
    pid_t pid;

    choose_waiter(_i);
    pid = spawn_sh("exit 3", false, &out);
    ck_assert_int_eq(vg_proc_wait(pid, tok, 1000, &st), 0);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 3);
    ck_assert(!is_our_child(pid));   /* reaped: no zombie */
    ck_assert(!vg_token_is_cancelled(tok));
    close(out);
    vg_token_unref(tok);
}
END_TEST

START_TEST(normal_exit_after_a_while)
{
    vg_token *tok = vg_token_new();
    char buf[256];
    int out, st = -1;
    pid_t pid;

    choose_waiter(_i);
    /* The child's own work takes a while (its sleep is the work, not a
     * synchronisation), so that vg_proc_wait really waits for the exit. */
    pid = spawn_sh("echo started; sleep 0.2; exit 0", false, &out);
    read_lines(out, buf, sizeof buf, 1);
    ck_assert_int_eq(vg_proc_wait(pid, tok, 1000, &st), 0);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    ck_assert(!is_our_child(pid));
    close(out);
    vg_token_unref(tok);
}
END_TEST

START_TEST(status_may_be_null)
{
    vg_token *tok = vg_token_new();
    int out;
    pid_t pid;

    choose_waiter(_i);
    pid = spawn_sh("exit 0", false, &out);
    ck_assert_int_eq(vg_proc_wait(pid, tok, 1000, NULL), 0);
    ck_assert(!is_our_child(pid));
    close(out);
    vg_token_unref(tok);
}
END_TEST

/* A child that starts a grandchild: both go when the token fires while we
 * wait; SIGTERM does it, well within the grace. */
START_TEST(cancel_stops_child_and_grandchild)
{
    vg_token *root = vg_token_new();
    vg_token *tok;
    char buf[256];
    int out, st = -1, gst;
    pid_t pid, gpid;
    double t0, elapsed;

    choose_waiter(_i);
    become_subreaper();
    pid = spawn_sh("sleep 60 & echo grandchild $!; exec sleep 60", false, &out);
    read_lines(out, buf, sizeof buf, 1);
    gpid = pid_after(buf, "grandchild ");
    /* The token fires on its own while vg_proc_wait waits. */
    tok = vg_token_child_timeout(root, 100);
    t0 = tu_now_ms();
    ck_assert_int_eq(vg_proc_wait(pid, tok, 10000, &st), -ECANCELED);
    elapsed = tu_now_ms() - t0;
    ck_assert(WIFSIGNALED(st));
    ck_assert_int_eq(WTERMSIG(st), SIGTERM);
    ck_assert_msg(elapsed < 5000, "took %.0f ms (grace 10 s)", elapsed);
    ck_assert(!is_our_child(pid));
    gst = reap_adopted(gpid);
    ck_assert(WIFSIGNALED(gst));
    close(out);
    vg_token_unref(tok);
    vg_token_unref(root);
}
END_TEST

START_TEST(already_cancelled_stops_at_once)
{
    vg_token *tok = vg_token_new();
    char buf[64];
    int out, st = -1;
    pid_t pid;

    choose_waiter(_i);
    pid = spawn_sh("echo up; exec sleep 60", false, &out);
    read_lines(out, buf, sizeof buf, 1);
    vg_token_cancel(tok);
    ck_assert_int_eq(vg_proc_wait(pid, tok, 5000, &st), -ECANCELED);
    ck_assert(WIFSIGNALED(st));
    ck_assert_int_eq(WTERMSIG(st), SIGTERM);
    ck_assert(!is_our_child(pid));
    close(out);
    vg_token_unref(tok);
}
END_TEST

/* SIGTERM ignored: SIGKILL once the grace has passed, not before. */
START_TEST(sigkill_after_grace_when_sigterm_ignored)
{
    vg_token *tok = vg_token_new();
    char buf[64];
    int out, st = -1;
    pid_t pid;
    double t0, elapsed;

    choose_waiter(_i);
    pid = spawn_sh("trap '' TERM; echo ready; exec sleep 60", false, &out);
    read_lines(out, buf, sizeof buf, 1);
    vg_token_cancel(tok);
    t0 = tu_now_ms();
    ck_assert_int_eq(vg_proc_wait(pid, tok, 300, &st), -ECANCELED);
    elapsed = tu_now_ms() - t0;
    ck_assert(WIFSIGNALED(st));
    ck_assert_int_eq(WTERMSIG(st), SIGKILL);
    ck_assert_msg(elapsed >= 299, "SIGKILL after %.0f ms, grace 300", elapsed);
    ck_assert_msg(elapsed < 10000, "took %.0f ms", elapsed);
    ck_assert(!is_our_child(pid));
    close(out);
    vg_token_unref(tok);
}
END_TEST

/* The child obeys SIGTERM but its own child ignores it: the grandchild is
 * killed as soon as the child has gone, not after the whole grace. */
START_TEST(grandchild_ignoring_sigterm_killed_when_child_ends)
{
    vg_token *tok = vg_token_new();
    char buf[256];
    int out, st = -1, gst;
    pid_t pid, gpid;
    double t0, elapsed;

    choose_waiter(_i);
    become_subreaper();
    pid = spawn_sh("sh -c \"trap '' TERM; echo ready; exec sleep 60\" & "
                   "echo grandchild $!; exec sleep 60", false, &out);
    read_lines(out, buf, sizeof buf, 2);    /* "grandchild N" and "ready" */
    gpid = pid_after(buf, "grandchild ");
    ck_assert_ptr_nonnull(strstr(buf, "ready"));
    vg_token_cancel(tok);
    t0 = tu_now_ms();
    ck_assert_int_eq(vg_proc_wait(pid, tok, 20000, &st), -ECANCELED);
    elapsed = tu_now_ms() - t0;
    ck_assert(WIFSIGNALED(st));
    ck_assert_int_eq(WTERMSIG(st), SIGTERM);
    ck_assert_msg(elapsed < 10000, "took %.0f ms (grace 20 s)", elapsed);
    gst = reap_adopted(gpid);
    ck_assert(WIFSIGNALED(gst));
    ck_assert_int_eq(WTERMSIG(gst), SIGKILL);
    close(out);
    vg_token_unref(tok);
}
END_TEST

/* A child left in our own process group is stopped alone: signalling the
 * group would have hit this test process too. */
START_TEST(child_in_our_group_signalled_alone)
{
    vg_token *tok = vg_token_new();
    char buf[64];
    int out, st = -1;
    pid_t pid;

    choose_waiter(_i);
    pid = spawn_sh("echo up; exec sleep 60", true, &out);
    ck_assert_int_eq(getpgid(pid), getpgrp());
    read_lines(out, buf, sizeof buf, 1);
    vg_token_cancel(tok);
    ck_assert_int_eq(vg_proc_wait(pid, tok, 5000, &st), -ECANCELED);
    ck_assert(WIFSIGNALED(st));
    ck_assert_int_eq(WTERMSIG(st), SIGTERM);
    ck_assert(!is_our_child(pid));
    close(out);
    vg_token_unref(tok);
}
END_TEST

/* The child finished before anyone looked, then the token fired: the work
 * was done, so it is reported as a normal exit. */
START_TEST(exited_child_with_cancelled_token_is_normal_exit)
{
    vg_token *tok = vg_token_new();
    siginfo_t si;
    int out, st = -1;
    pid_t pid;

    choose_waiter(_i);
    pid = spawn_sh("exit 7", false, &out);
    ck_assert_int_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
    vg_token_cancel(tok);
    ck_assert_int_eq(vg_proc_wait(pid, tok, 1000, &st), 0);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 7);
    ck_assert(!is_our_child(pid));
    close(out);
    vg_token_unref(tok);
}
END_TEST

START_TEST(not_our_child_never_signalled)
{
    vg_token *tok = vg_token_new();
    int st = 12345;

    vg_token_cancel(tok);
    /* Our parent (the test runner) must survive this. */
    ck_assert_int_eq(vg_proc_wait((int)getppid(), tok, 0, &st), -ECHILD);
    ck_assert_int_eq(st, 12345);
    ck_assert_int_eq(kill(getppid(), 0), 0);
    ck_assert_int_eq(vg_proc_wait(0, tok, 0, &st), -EINVAL);
    ck_assert_int_eq(vg_proc_wait(-1, tok, 0, &st), -EINVAL);
    ck_assert_int_eq(vg_proc_wait(1, NULL, 0, &st), -EINVAL);
    vg_token_unref(tok);
}
END_TEST

START_TEST(already_reaped_child_is_echild)
{
    vg_token *tok = vg_token_new();
    int out, st;
    pid_t pid;

    pid = spawn_sh("exit 0", false, &out);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_int_eq(vg_proc_wait(pid, tok, 0, &st), -ECHILD);
    close(out);
    vg_token_unref(tok);
}
END_TEST

/* Several waits at once on one token, from several threads: one cancel
 * stops every child. */
typedef struct {
    pid_t pid;
    vg_token *tok;
    int rc, st;
} waiter;

static void *wait_main(void *arg)
{
    waiter *w = arg;

    w->rc = vg_proc_wait(w->pid, w->tok, 5000, &w->st);
    return NULL;
}

START_TEST(one_token_stops_many_children)
{
    enum { N = 8 };
    vg_token *tok = vg_token_new();
    waiter w[N];
    pthread_t th[N];
    int out[N], i;
    char buf[64];

    choose_waiter(_i);
    for (i = 0; i < N; i++) {
        w[i].pid = spawn_sh("echo up; exec sleep 60", false, &out[i]);
        read_lines(out[i], buf, sizeof buf, 1);
        w[i].tok = tok;
        ck_assert_int_eq(pthread_create(&th[i], NULL, wait_main, &w[i]), 0);
    }
    vg_token_cancel(tok);
    for (i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(w[i].rc, -ECANCELED);
        ck_assert(WIFSIGNALED(w[i].st));
        ck_assert(!is_our_child(w[i].pid));
        close(out[i]);
    }
    vg_token_unref(tok);
}
END_TEST

static Suite *proc_suite(void)
{
    Suite *s = suite_create("proc");
    TCase *tc = tcase_create("wait");

    tcase_add_loop_test(tc, normal_exit_gives_status_and_reaps, 0, 2);
    tcase_add_loop_test(tc, normal_exit_after_a_while, 0, 2);
    tcase_add_loop_test(tc, status_may_be_null, 0, 2);
    tcase_add_loop_test(tc, exited_child_with_cancelled_token_is_normal_exit, 0, 2);
    tcase_add_test(tc, not_our_child_never_signalled);
    tcase_add_test(tc, already_reaped_child_is_echild);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("cancel");
    tcase_add_loop_test(tc, cancel_stops_child_and_grandchild, 0, 2);
    tcase_add_loop_test(tc, already_cancelled_stops_at_once, 0, 2);
    tcase_add_loop_test(tc, sigkill_after_grace_when_sigterm_ignored, 0, 2);
    tcase_add_loop_test(tc, grandchild_ignoring_sigterm_killed_when_child_ends, 0, 2);
    tcase_add_loop_test(tc, child_in_our_group_signalled_alone, 0, 2);
    tcase_add_loop_test(tc, one_token_stops_many_children, 0, 2);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(proc_suite());
}
