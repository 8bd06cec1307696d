/* proc.h - internal side of vg_proc_wait (see volga.h for the API). */
#ifndef VG_PROC_H
#define VG_PROC_H

#include <stdbool.h>

/* Whether vg_proc_wait may use pidfd_open (default true; it falls back by
 * itself where the kernel lacks it). Tests turn it off to exercise the
 * fallback on kernels that have it. Not thread-safe: set before use. */
void vg__proc_use_pidfd(bool use);

#endif
