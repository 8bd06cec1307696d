/* timer.h - one-shot timers on one shared thread, for deadlines that belong
 * to no app (vg_token_child_timeout). Request deadlines stay with the
 * watcher (lib/watcher.c), which knows the request's connection. */
#ifndef VG_TIMER_H
#define VG_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Runs on the timer thread ("vg-timer") once the timer is due, with no
 * library lock held. */
typedef void (*vg__timer_fn)(void *arg);

/* A timer, embedded in its owner. Zero-initialise it; the fields are the
 * timer module's (guarded by its lock). */
typedef struct vg__timer {
    uint64_t due_ns;      /* CLOCK_MONOTONIC */
    size_t slot;          /* heap index + 1; 0 while not armed */
    vg__timer_fn fn;
    void *arg;
} vg__timer;

/* Arms `t` (which must not be armed) to call fn(arg) at `due_ns` on the
 * CLOCK_MONOTONIC clock (now or in the past: as soon as possible). Starts
 * the timer thread on first use. 0, or -ENOMEM / -EAGAIN (no thread).
 * Any thread. */
int vg__timer_arm(vg__timer *t, uint64_t due_ns, vg__timer_fn fn, void *arg);

/* Disarms `t`. Returns true if it was armed and now will never fire; false
 * if it was not armed, or its callback has started. With `wait`, a callback
 * running right now on the timer thread is waited for first (except when
 * the timer thread itself asks, from inside that callback), so that after
 * this returns the memory holding `t` and `arg` may be freed. Any thread. */
bool vg__timer_disarm(vg__timer *t, bool wait);

/* Timers armed and not yet fired or disarmed (for tests). Any thread. */
size_t vg__timer_pending(void);

#endif
