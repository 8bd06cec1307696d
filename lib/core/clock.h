/* clock.h - CLOCK_MONOTONIC for the library: the time now, deadlines, and
 * condition variables whose timed waits use it. */
#ifndef VG_CLOCK_H
#define VG_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Nanoseconds on CLOCK_MONOTONIC. Any thread. */
uint64_t vg__clock_ns(void);

/* Sets `ts` to the CLOCK_MONOTONIC time `ns` nanoseconds from now, as
 * pthread_cond_timedwait wants it for a vg__cond_init_monotonic cond. */
void vg__clock_deadline(struct timespec *ts, uint64_t ns);

/* Initialises `cond` to measure timed waits on CLOCK_MONOTONIC, so that a
 * wall-clock change (NTP, an administrator) neither cuts a wait short nor
 * stretches it. Returns 0 or an error number. */
int vg__cond_init_monotonic(pthread_cond_t *cond);

#endif
