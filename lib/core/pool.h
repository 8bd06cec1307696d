/* pool.h - a fixed set of worker threads that run queued tasks in order. */
#ifndef VG_POOL_H
#define VG_POOL_H

#include <stdbool.h>

typedef struct vg__task vg__task;
typedef void (*vg__task_fn)(vg__task *task);

/* Embedded in what is queued, so that queueing never allocates. */
struct vg__task {
    vg__task *next;
    vg__task_fn run;
    unsigned long long queued_ns; /* set by vg__pool_submit */
};

typedef struct vg__pool vg__pool;

/* Starts `nthreads` workers; at most `max_queued` tasks may wait for one.
 * A task is queued without waking a sleeping worker while `fresh_enough`
 * workers are fresh: woken already, or running a task that started less
 * than `fresh_us` ago (see pool.c). With `batch` the workers run under
 * SCHED_BATCH (thread.h). NULL with errno on failure (nothing left
 * running). */
vg__pool *vg__pool_new(unsigned nthreads, unsigned max_queued,
                       unsigned fresh_enough, unsigned fresh_us, bool batch);

/* Queues `task` (task->run must be set); a worker runs it soon, in FIFO
 * order. Returns false, queueing nothing, if `max_queued` tasks already
 * wait. Never blocks. Any thread. */
bool vg__pool_submit(vg__pool *pool, vg__task *task);

/* Workers idle right now (waiting for a task). For tests. */
unsigned vg__pool_idle(vg__pool *pool);
/* Waits up to `ms` until exactly `n` workers are idle; returns whether they
 * were. For tests: costs the workers one load while nobody waits. */
bool vg__pool_wait_idle(vg__pool *pool, unsigned n, int ms);

/* Runs every task still queued, waits for all to return, joins the workers
 * and frees the pool. NULL is a no-op. Not from a worker. */
void vg__pool_free(vg__pool *pool);

#endif
