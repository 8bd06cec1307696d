/*
 * proc.c - vg_proc_wait: waiting for a child process that stops when the
 * request's token does.
 *
 * Written against the public token API, as a user's code would be. Where
 * the kernel has pidfd_open (Linux 5.3), the child's pidfd becomes readable
 * when it exits, so one vg_token_poll waits for the exit and the token at
 * once and wakes within a scheduling delay of either. Elsewhere (or when
 * descriptors run out) the child is polled with waitpid(WNOHANG) between
 * token waits, backing off from 1 ms to 20 ms.
 *
 * Stopping: SIGTERM to the child's process group (or only to the child if
 * it shares ours: signalling our own group would hit the caller), then, when
 * the child has exited or the grace has passed, SIGKILL to whatever of the
 * group is left, then reap. The child is reaped only after the SIGKILL:
 * while it is a zombie its pid, and so the group id, cannot be reused, so
 * the group signal can never reach a stranger.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "volga.h"
#include "core/clock.h"
#include "core/proc.h"

#define VG__BACKOFF_MAX_MS 20

static atomic_bool vg__pidfd_allowed = true;
/* Set once the kernel said ENOSYS, so that it is asked only once. */
static atomic_bool vg__pidfd_missing;

void vg__proc_use_pidfd(bool use)
{
    atomic_store(&vg__pidfd_allowed, use);
}

/* A pidfd for `pid`, or -1 where there is none to have. */
static int vg__pidfd_open(int pid)
{
#ifdef SYS_pidfd_open
    if (atomic_load(&vg__pidfd_allowed) && !atomic_load(&vg__pidfd_missing)) {
        int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);

        if (fd < 0 && errno == ENOSYS)
            atomic_store(&vg__pidfd_missing, true);
        return fd;
    }
#endif
    (void)pid;
    return -1;
}

/* Reaps `pid` if it has exited: 1 with *st set, 0 if it still runs, or
 * -errno (-ECHILD: somebody else reaped it). */
static int vg__reap(int pid, int *st, bool block)
{
    pid_t r;

    do
        r = waitpid((pid_t)pid, st, block ? 0 : WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    return r == (pid_t)pid ? 1 : 0;
}

/* Whether `pid` has exited, leaving it unreaped: 1, 0, or -errno. */
static int vg__exited(int pid)
{
    siginfo_t si;
    int rc;

    si.si_pid = 0;
    do
        rc = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
    while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return -errno;
    return si.si_pid != 0;
}

static void vg__sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Waits for the exit (reaped: 0) or the token (-ECANCELED, child left
 * running), by polling. */
static int vg__wait_polling(int pid, vg_token *tok, int *st)
{
    int step = 1, rc;

    for (;;) {
        rc = vg__reap(pid, st, false);
        if (rc != 0)
            return rc < 0 ? rc : 0;
        if (vg_token_wait(tok, step))
            break;
        if (step < VG__BACKOFF_MAX_MS)
            step *= 2;
    }
    /* Exited at the last moment: the work was done; report it so. */
    rc = vg__reap(pid, st, false);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    return -ECANCELED;
}

/* The same, with a pidfd. Falls back to polling if the token's own fd
 * cannot be had (EMFILE). */
static int vg__wait_pidfd(int pid, int pidfd, vg_token *tok, int *st)
{
    int rc;

    for (;;) {
        rc = vg_token_poll(tok, pidfd, POLLIN, -1);
        if (rc > 0 || rc == -ECANCELED) {
            int r = vg__reap(pid, st, false);

            if (r < 0)
                return r;
            if (r == 1)
                return 0;
            if (rc == -ECANCELED)
                return -ECANCELED;
            continue; /* readable but not yet reapable: look again */
        }
        return vg__wait_polling(pid, tok, st);
    }
}

/* Waits up to `ms` for `pid` to exit without reaping it. */
static void vg__wait_grace(int pid, int pidfd, unsigned ms)
{
    uint64_t end = vg__clock_ns() + (uint64_t)ms * 1000000u;
    int step = 1;

    for (;;) {
        uint64_t now = vg__clock_ns();
        int left;

        if (vg__exited(pid) != 0 || now >= end)
            return;
        left = (int)((end - now + 999999u) / 1000000u);
        if (pidfd >= 0) {
            struct pollfd p = {.fd = pidfd, .events = POLLIN};

            if (poll(&p, 1, left) >= 0 || errno != EINTR)
                return;
            continue;
        }
        vg__sleep_ms(step < left ? step : left);
        if (step < VG__BACKOFF_MAX_MS)
            step *= 2;
    }
}

/* SIGTERM, the grace, SIGKILL, reap. */
static int vg__stop(int pid, int pidfd, unsigned grace_ms, int *st)
{
    /* A child that leads its own group takes its descendants with it; one
     * in our group is signalled alone. */
    bool group = getpgid((pid_t)pid) == (pid_t)pid;
    pid_t target = group ? -(pid_t)pid : (pid_t)pid;
    int rc;

    kill(target, SIGTERM);
    if (grace_ms > 0)
        vg__wait_grace(pid, pidfd, grace_ms);
    kill(target, SIGKILL);
    rc = vg__reap(pid, st, true);
    return rc < 0 ? rc : -ECANCELED;
}

int vg_proc_wait(int pid, vg_token *tok, unsigned grace_ms, int *status)
{
    int st = 0, pidfd, rc;

    if (pid <= 0 || tok == NULL)
        return -EINVAL;
    /* Never signal a process that is not ours to reap. */
    rc = vg__exited(pid);
    if (rc < 0)
        return rc;
    pidfd = vg__pidfd_open(pid);
    if (pidfd >= 0)
        rc = vg__wait_pidfd(pid, pidfd, tok, &st);
    else
        rc = vg__wait_polling(pid, tok, &st);
    if (rc == -ECANCELED)
        rc = vg__stop(pid, pidfd, grace_ms, &st);
    if (pidfd >= 0)
        close(pidfd);
    if (status != NULL && (rc == 0 || rc == -ECANCELED))
        *status = st;
    return rc;
}
