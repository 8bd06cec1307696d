/* mhd_glue.h - the libmicrohttpd side of a request's journey: the access
 * handler state machine, suspend/resume, and the request-completed hook.
 * Part of the engine (engine.h), the only code that drives libmicrohttpd. */
#ifndef VG_MHD_GLUE_H
#define VG_MHD_GLUE_H

#include <stdbool.h>

#include "volga.h"

#include <microhttpd.h>

/* A daemon for one event thread (lib/engine/engine.c) with the app's settings and
 * the access handler: external epoll mode, no listening socket, no thread.
 * `on_conn` hears of every connection starting and closing. NULL on
 * failure (logged). */
struct MHD_Daemon *vg__glue_daemon(vg_app *app,
                                   MHD_NotifyConnectionCallback on_conn,
                                   void *on_conn_cls);

/* The event thread's report: the client of a request went away. If the
 * request is suspended, cancels its token (VG_CANCEL_CLIENT_GONE) and
 * resumes it, unless someone already won the right to resume; otherwise
 * does nothing. The request's event thread. */
void vg__glue_client_gone(vg_request *req);

/* The watcher's report: the request's deadline passed. Cancels its token
 * (VG_CANCEL_TIMEOUT) and answers 504 at once, unless someone else already
 * won the resume. Watcher thread. */
void vg__glue_deadline(vg_request *req);

/* Shutdown's last word to a request still suspended after the grace
 * period: cancel with VG_CANCEL_SHUTDOWN and answer 503. Supervisor. */
void vg__glue_shutdown(vg_request *req);

/* Releases a response that was built but never queued. Any thread. */
void vg__glue_response_drop(struct MHD_Response *resp);

/* Waits until no thread is between winning a request's resume and
 * finishing MHD_resume_connection; shutdown calls it before stopping the
 * daemon (DESIGN.md fact 8). */
void vg__glue_wait_resumes(vg_app *app);

#endif
