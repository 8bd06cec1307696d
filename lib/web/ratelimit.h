/* ratelimit.h - the limiter's table, reachable by the unit tests with an
 * injected clock (tests/test_ratelimit.c). Not installed. */
#ifndef VG_WEB_RATELIMIT_H
#define VG_WEB_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "volga.h"

/* vg_ratelimit_take at the monotonic time `now_ns` instead of the clock's
 * time now: the same decision, the same table. Any thread. */
int vg__ratelimit_take_at(vg_ratelimit *rl, const char *key, size_t len,
                          uint64_t now_ns, vg_ratelimit_info *info);

/* Bytes the limiter's table holds (fixed once configured). */
size_t vg__ratelimit_table_bytes(const vg_ratelimit *rl);

#endif
