/* benchutil.h - small helpers the cancellation benchmarks share
 * (bench/cancel_bench.c, bench/chain_bench.c): loopback connections,
 * whole sends, waiting for an app to go idle, timestamps. Single-threaded
 * use per call; nothing here keeps state. */
#ifndef VG_BENCHUTIL_H
#define VG_BENCHUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <volga.h>

/* A CLOCK_MONOTONIC timestamp in milliseconds. */
double bu_ts_ms(const struct timespec *t);

/* A blocking TCP connection to 127.0.0.1:port, or -1. */
int bu_connect(unsigned short port);

/* Sends all of buf (retrying short sends and EINTR); false on error. */
bool bu_send_all(int fd, const char *buf, size_t len);

/* Waits up to `ms` for no request in flight on `app`. The counters have
 * no notification, so this looks every millisecond. */
bool bu_wait_idle(vg_app *app, int ms);

/* qsort comparison of doubles, ascending. */
int bu_cmp_double(const void *a, const void *b);

#endif
