/* log.c - routing the app's messages to a user sink (stderr by default). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"

void vg_log_stderr(vg_log_level level, const char *msg, void *arg)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    (void)arg;
    /* One fprintf per line keeps lines from different threads whole:
     * stdio locks the stream for the duration of the call. */
    fprintf(stderr, "volga: %s: %s\n",
            (unsigned)level < 4 ? names[level] : "log", msg);
}

void vg__log_init_default(vg__log *log)
{
    log->fn = vg_log_stderr;
    log->arg = NULL;
    log->max = VG_LOG_WARN;
}

void vg__logf(const vg__log *log, vg_log_level level, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    if (log == NULL || log->fn == NULL || level > log->max)
        return;
    va_start(ap, fmt);
    /* A message longer than the buffer is cut: log lines are short by
     * construction and a cut line is better than an allocation here. */
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log->fn(level, line, log->arg);
}

double vg__now_ms(void)
{
    return (double)vg__clock_ns() / 1e6;
}

void vg__log_access(const vg__log *log, const vg_completion *c,
                    const char *id)
{
    char status[16] = "-";

    if (c->status != 0)
        snprintf(status, sizeof status, "%u", c->status);
    vg__logf(log, VG_LOG_INFO, "%s %s %s %.3f ms%s%s%s%s", c->method,
             c->target, status, c->duration_ms, id ? " id=" : "",
             id ? id : "",
             c->cancelled != VG_CANCEL_NONE ? " cancelled: " : "",
             c->cancelled != VG_CANCEL_NONE
                 ? vg_cancel_reason_name(c->cancelled) : "");
}
