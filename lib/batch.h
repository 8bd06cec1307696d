/* batch.h - the scheduling policy of the library's throughput threads. */
#ifndef VG_BATCH_H
#define VG_BATCH_H

/* Puts the calling thread under SCHED_BATCH (Linux). A thread of that
 * policy does not preempt the running thread when it is woken, so work
 * handed between two threads on a busy CPU is taken up in batches instead
 * of one context switch per item. Leaves a real-time thread alone. Returns
 * 0, or -errno (-ENOSYS where the policy does not exist); the thread keeps
 * its policy on failure. */
int vg__batch_self(void);

/* vg__batch_self, once per thread: for threads the library does not
 * create (libmicrohttpd's), called from their callbacks. Costs one
 * thread-local load after the first call. */
void vg__batch_once(void);

#endif
