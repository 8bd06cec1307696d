/* log.h - the app's log sink and a printf-style helper around it. */
#ifndef VG_LOG_H
#define VG_LOG_H

#include <stdbool.h>

#include "volga.h"

/* Where an app's messages go; copied into the app, read-only once started. */
typedef struct {
    vg_log_fn fn;       /* NULL: discard */
    void *arg;
    vg_log_level max;   /* messages above this level are dropped */
} vg__log;

/* The default sink: VG_LOG_WARN and below to stderr. */
void vg__log_init_default(vg__log *log);

/* Whether a message at `level` would be emitted: lets callers skip work
 * (a clock read, formatting) that only logging needs. */
static inline bool vg__log_enabled(const vg__log *log, vg_log_level level)
{
    return log->fn != NULL && level <= log->max;
}

/* CLOCK_MONOTONIC in milliseconds. */
double vg__now_ms(void);

/* Formats and emits one message if its level passes. Any thread. */
void vg__logf(const vg__log *log, vg_log_level level, const char *fmt, ...)
    VG_PRINTF(3, 4);

/* One access-log line at VG_LOG_INFO, "GET /path?q 200 0.153 ms", with
 * " id=ID" when `id` is not NULL, " cancelled: client_gone" (or another
 * reason) when its token fired and "-" for a status never sent. The
 * pipeline calls it from a completion hook (lib/pipeline/pipeline.c). */
void vg__log_access(const vg__log *log, const vg_completion *c,
                    const char *id);

#endif
