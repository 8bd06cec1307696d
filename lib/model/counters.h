/* counters.h - the app's request counters and the drain signal: what the
 * engine reports as requests are cancelled and end, and what shutdown and
 * vg_app_stats read. A building block below both the app and the engine,
 * so that neither calls the other to count. */
#ifndef VG_COUNTERS_H
#define VG_COUNTERS_H

#include "volga.h"

/* Cancels a request's token on the library's behalf and counts it by
 * reason. The count is taken before the token can be seen cancelled (and
 * given back if another cancel won), so a handler that wakes on the token
 * always finds it in vg_app_stats. Any thread. */
void vg__app_cancel(vg_app *app, vg_token *tok, vg_cancel_reason reason);

/* Called when a handler finished, a deferred request was finished or a
 * live request completed, so that a shutdown (or vg_app_free) waiting for
 * them to drain can look again. Any thread. */
void vg__app_notify_drain(vg_app *app);

#endif
