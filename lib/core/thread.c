/* thread.c - what the library's own threads are: their names, and the
 * scheduling policy of those that hand requests around.
 *
 * Why SCHED_BATCH: a request answered by a worker crosses two threads, libmicrohttpd's
 * and the worker's. With both under SCHED_OTHER, each wake-up may preempt
 * the thread that caused it, and on a busy CPU the two ping-pong once per
 * request. Under SCHED_BATCH a woken thread waits for the current one to
 * finish its turn, which lets each side hand over several requests at a
 * time (bench/RESULTS.md: context switches per request 0.6 -> 0.2). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* SCHED_BATCH, pthread_setname_np */
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>

#include "core/thread.h"

void vg__thread_name(const char *name)
{
#ifdef __GLIBC__
    (void)pthread_setname_np(pthread_self(), name);
#else
    (void)name;
#endif
}

int vg__thread_batch(void)
{
#ifdef SCHED_BATCH
    struct sched_param sp = {0};
    int policy, rc;

    rc = pthread_getschedparam(pthread_self(), &policy, &sp);
    if (rc != 0)
        return -rc;
    /* A real-time thread was made so on purpose: never demote it. */
    if (policy != SCHED_OTHER)
        return policy == SCHED_BATCH ? 0 : -EPERM;
    sp.sched_priority = 0;
    return -pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
#else
    return -ENOSYS;
#endif
}
