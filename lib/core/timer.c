/*
 * timer.c - one-shot timers on one shared thread ("vg-timer").
 *
 * vg_token_child_timeout needs a deadline for tokens that belong to no app,
 * so the per-app watcher cannot keep it. A thread per token would cost a
 * stack per deadline; instead every such timer sits in one binary min-heap
 * ordered by due time, and one thread sleeps on a CLOCK_MONOTONIC condition
 * variable until the earliest is due. Arming and disarming are O(log n):
 * each timer records its heap slot, so a timer that is disarmed early (the
 * common case: the work finished in time) leaves at once instead of
 * waiting for its due time.
 *
 * The thread starts on the first arm and is stopped and joined by a
 * destructor when the process exits normally, so leak checkers see no
 * thread left behind. A forked child never had the thread (fork copies
 * only the calling thread), so the destructor only joins in the process
 * that started it.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/thread.h"
#include "core/timer.h"

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;        /* the thread's sleep; disarm waiters */
    bool cond_ready;
    vg__timer **heap;           /* heap[0] is due first */
    size_t n, cap;
    bool started, stop;
    pid_t owner;                /* the process that started the thread */
    pthread_t thread;
    const vg__timer *running;   /* whose callback runs now, or NULL */
} vg__tm = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* ---- The heap; every function here is called with vg__tm.mu held. ---- */

static void vg__heap_put(size_t i, vg__timer *t)
{
    vg__tm.heap[i] = t;
    t->slot = i + 1;
}

static void vg__heap_up(size_t i)
{
    vg__timer *t = vg__tm.heap[i];

    while (i > 0) {
        size_t up = (i - 1) / 2;

        if (vg__tm.heap[up]->due_ns <= t->due_ns)
            break;
        vg__heap_put(i, vg__tm.heap[up]);
        i = up;
    }
    vg__heap_put(i, t);
}

static void vg__heap_down(size_t i)
{
    vg__timer *t = vg__tm.heap[i];

    for (;;) {
        size_t kid = 2 * i + 1;

        if (kid >= vg__tm.n)
            break;
        if (kid + 1 < vg__tm.n &&
            vg__tm.heap[kid + 1]->due_ns < vg__tm.heap[kid]->due_ns)
            kid++;
        if (t->due_ns <= vg__tm.heap[kid]->due_ns)
            break;
        vg__heap_put(i, vg__tm.heap[kid]);
        i = kid;
    }
    vg__heap_put(i, t);
}

/* Takes `t` out of the heap; it must be in it. */
static void vg__heap_remove(vg__timer *t)
{
    size_t i = t->slot - 1;
    vg__timer *last = vg__tm.heap[--vg__tm.n];

    t->slot = 0;
    if (last == t)
        return;
    vg__heap_put(i, last);
    /* The moved element may belong above or below its new place. */
    vg__heap_up(i);
    vg__heap_down(last->slot - 1);
}

/* ---- The thread ---- */

static void *vg__timer_main(void *unused)
{
    (void)unused;
    vg__thread_name("vg-timer");
    pthread_mutex_lock(&vg__tm.mu);
    while (!vg__tm.stop) {
        uint64_t now = vg__clock_ns();
        vg__timer *t;

        if (vg__tm.n == 0) {
            pthread_cond_wait(&vg__tm.cond, &vg__tm.mu);
            continue;
        }
        t = vg__tm.heap[0];
        if (t->due_ns > now) {
            struct timespec ts;

            vg__clock_deadline(&ts, t->due_ns - now);
            pthread_cond_timedwait(&vg__tm.cond, &vg__tm.mu, &ts);
            continue;
        }
        vg__heap_remove(t);
        /* From here until `running` is cleared, a waiting disarm knows the
         * callback may still touch its memory. */
        vg__tm.running = t;
        pthread_mutex_unlock(&vg__tm.mu);
        t->fn(t->arg);
        pthread_mutex_lock(&vg__tm.mu);
        vg__tm.running = NULL;
        pthread_cond_broadcast(&vg__tm.cond);
    }
    pthread_mutex_unlock(&vg__tm.mu);
    return NULL;
}

/* Starts the thread if it is not running; called with the lock held. */
static int vg__timer_start_locked(void)
{
    sigset_t all, old;
    int rc;

    if (vg__tm.started)
        return 0;
    if (!vg__tm.cond_ready) {
        rc = vg__cond_init_monotonic(&vg__tm.cond);
        if (rc != 0)
            return -rc;
        vg__tm.cond_ready = true;
    }
    vg__tm.stop = false;
    /* The thread inherits a mask with every signal blocked, so that a
     * process-directed signal meant for the application (SIGINT, SIGCHLD)
     * is never delivered to it. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&vg__tm.thread, NULL, vg__timer_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -rc;
    vg__tm.started = true;
    vg__tm.owner = getpid();
    return 0;
}

__attribute__((destructor)) static void vg__timer_atexit(void)
{
    pthread_t thread;

    pthread_mutex_lock(&vg__tm.mu);
    if (!vg__tm.started || vg__tm.owner != getpid() ||
        pthread_equal(vg__tm.thread, pthread_self())) {
        pthread_mutex_unlock(&vg__tm.mu);
        return;
    }
    vg__tm.stop = true;
    vg__tm.started = false;
    thread = vg__tm.thread;
    pthread_cond_broadcast(&vg__tm.cond);
    pthread_mutex_unlock(&vg__tm.mu);
    pthread_join(thread, NULL);

    pthread_mutex_lock(&vg__tm.mu);
    /* Timers still armed are forgotten, and say so, in case their owners
     * are freed by a later destructor. */
    while (vg__tm.n > 0)
        vg__tm.heap[--vg__tm.n]->slot = 0;
    free(vg__tm.heap);
    vg__tm.heap = NULL;
    vg__tm.n = vg__tm.cap = 0;
    pthread_mutex_unlock(&vg__tm.mu);
}

/* ---- The interface ---- */

int vg__timer_arm(vg__timer *t, uint64_t due_ns, vg__timer_fn fn, void *arg)
{
    int rc;

    pthread_mutex_lock(&vg__tm.mu);
    rc = vg__timer_start_locked();
    if (rc == 0 && vg__tm.n == vg__tm.cap) {
        size_t cap = vg__tm.cap ? vg__tm.cap * 2 : 64;
        vg__timer **grown = realloc(vg__tm.heap, cap * sizeof *grown);

        if (grown == NULL) {
            rc = -ENOMEM;
        } else {
            vg__tm.heap = grown;
            vg__tm.cap = cap;
        }
    }
    if (rc == 0) {
        t->due_ns = due_ns;
        t->fn = fn;
        t->arg = arg;
        vg__heap_put(vg__tm.n++, t);
        vg__heap_up(vg__tm.n - 1);
        /* Only a new earliest timer shortens the thread's sleep. */
        if (vg__tm.heap[0] == t)
            pthread_cond_broadcast(&vg__tm.cond);
    }
    pthread_mutex_unlock(&vg__tm.mu);
    return rc;
}

bool vg__timer_disarm(vg__timer *t, bool wait)
{
    bool removed = false;

    pthread_mutex_lock(&vg__tm.mu);
    if (t->slot != 0) {
        vg__heap_remove(t);
        removed = true;
    }
    while (!removed && wait && vg__tm.running == t &&
           !pthread_equal(vg__tm.thread, pthread_self()))
        pthread_cond_wait(&vg__tm.cond, &vg__tm.mu);
    pthread_mutex_unlock(&vg__tm.mu);
    return removed;
}

size_t vg__timer_pending(void)
{
    size_t n;

    pthread_mutex_lock(&vg__tm.mu);
    n = vg__tm.n;
    pthread_mutex_unlock(&vg__tm.mu);
    return n;
}
