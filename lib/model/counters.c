/* counters.c - counting cancellations by reason, and waking a shutdown
 * that waits for requests to drain. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "app.h"
#include "model/counters.h"
#include "core/token.h"

static atomic_ullong *vg__cancel_counter(vg_app *app, vg_cancel_reason why)
{
    switch (why) {
    case VG_CANCEL_CLIENT_GONE:
        return &app->cancelled_client_gone;
    case VG_CANCEL_TIMEOUT:
        return &app->cancelled_timeout;
    case VG_CANCEL_SHUTDOWN:
        return &app->cancelled_shutdown;
    default:
        return NULL;
    }
}

void vg__app_cancel(vg_app *app, vg_token *tok, vg_cancel_reason reason)
{
    atomic_ullong *counter = vg__cancel_counter(app, reason);

    if (vg_token_is_cancelled(tok))
        return;
    if (counter != NULL)
        atomic_fetch_add(counter, 1);
    if (!vg__token_cancel_with(tok, reason) && counter != NULL)
        atomic_fetch_sub(counter, 1);
}

void vg__app_notify_drain(vg_app *app)
{
    /* Only a shutdown waits for the drain; the hot path pays one load. */
    if (!atomic_load_explicit(&app->stopping, memory_order_acquire))
        return;
    pthread_mutex_lock(&app->lock);
    pthread_cond_broadcast(&app->cond);
    pthread_mutex_unlock(&app->lock);
}
