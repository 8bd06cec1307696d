/* thread.h - what the library's own threads are: their names and the
 * scheduling policy of those that hand requests around. */
#ifndef VG_THREAD_H
#define VG_THREAD_H

/* Names the calling thread (at most 15 characters are kept), so that top -H,
 * gdb and perf tell "vg-worker" from "vg-watcher". Best effort: nothing
 * happens where threads cannot be named. */
void vg__thread_name(const char *name);

/* Puts the calling thread under SCHED_BATCH (Linux). A thread of that
 * policy does not preempt the running thread when it is woken, so work
 * handed between two threads on a busy CPU is taken up in batches instead
 * of one context switch per item. Leaves a real-time thread alone. Returns
 * 0, or -errno (-ENOSYS where the policy does not exist); the thread keeps
 * its policy on failure. */
int vg__thread_batch(void);

#endif
