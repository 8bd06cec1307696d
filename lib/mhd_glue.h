/* mhd_glue.h - the libmicrohttpd side of a request's journey: the access
 * handler state machine, suspend/resume, and the request-completed hook.
 * Together with app.c the only code that drives libmicrohttpd. */
#ifndef VG_MHD_GLUE_H
#define VG_MHD_GLUE_H

#include <stdbool.h>

#include "volga.h"

struct MHD_Daemon;
struct MHD_Response;

/* Starts the daemon on app->listen_fd with the app's settings. NULL on
 * failure (logged). */
struct MHD_Daemon *vg__glue_start(vg_app *app);

/* Whether MHD_quiesce_daemon is safe for this app's daemon (poll mode). */
bool vg__glue_can_quiesce(const vg_app *app);

/* The watcher's report: the client of a suspended request went away.
 * Cancels its token (VG_CANCEL_CLIENT_GONE) and resumes it, unless the
 * worker already won the right to resume. Watcher thread. */
void vg__glue_client_gone(vg_request *req);

/* The watcher's report: the request's deadline passed. Cancels its token
 * (VG_CANCEL_TIMEOUT) and answers 504 at once, unless someone else already
 * won the resume. Watcher thread. */
void vg__glue_deadline(vg_request *req);

/* Shutdown's last word to a request still suspended after the grace
 * period: cancel with VG_CANCEL_SHUTDOWN and answer 503. Supervisor. */
void vg__glue_shutdown(vg_request *req);

/* Parks a connection whose streamed response has nothing to send yet:
 * suspends it and registers it with the watcher (no deadline). 0, or
 * -ESHUTDOWN if the app is stopping (then it is resumed at once). Called
 * from the content reader, on libmicrohttpd's thread. */
int vg__glue_park(vg_request *req);

/* Resumes a parked connection if this thread wins the right to. Any
 * thread. */
void vg__glue_wake(vg_request *req);

/* Releases a response that was built but never queued. Any thread. */
void vg__glue_response_drop(struct MHD_Response *resp);

/* Waits until no thread is between winning a request's resume and
 * finishing MHD_resume_connection; shutdown calls it before stopping the
 * daemon (DESIGN.md fact 8). */
void vg__glue_wait_resumes(vg_app *app);

#endif
