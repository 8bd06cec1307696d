/* engine.h - the only layer that drives libmicrohttpd: libvolga's own event
 * threads, one libmicrohttpd daemon each (lib/engine/engine.c), the access-handler
 * state machine and suspend/resume (lib/engine/mhd_glue.c) and the disconnect and
 * deadline watcher (lib/model/watcher.c).
 *
 * The app (lib/app.c) starts and stops it with the functions below; the
 * request model (lib/model/request.c, lib/model/stream.c) reaches it only through the
 * vg__engine_ops the engine installs on each request; counters go through
 * lib/model/counters.c. Nothing in the engine calls back into lib/app.c. */
#ifndef VG_ENGINE_H
#define VG_ENGINE_H

#include <stdbool.h>

#include "volga.h"

typedef struct vg__engine vg__engine;
typedef struct vg__loop vg__loop;

/* One connection as the engine knows it: libmicrohttpd's socket context
 * (MHD_CONNECTION_INFO_SOCKET_CONTEXT), from the connection's start to its
 * close. Written only on the connection's event thread; `loop` never
 * changes, and another thread may read it while the connection is
 * suspended (then it cannot be freed), never after resuming it. */
typedef struct vg__conn {
    vg__loop *loop;               /* the thread whose daemon serves it */
    struct MHD_Connection *conn;
    int fd;
    vg_request *req;              /* its request in progress (the glue's) */
    bool hup;                     /* the client closed or half-closed */
    struct vg__tls_peer *tls_peer; /* its client certificate's verdict
                                     (lib/engine/tls_glue.c), or NULL */
} vg__conn;

/* Starts the engine on app->listen_fd with the app's settings: the
 * watcher, one daemon and one "vg-event" thread per event thread. NULL
 * with errno on failure (logged; nothing left running). The configuring
 * thread. */
vg__engine *vg__engine_start(vg_app *app);

/* Stops accepting connections (new ones wait in the backlog and are reset
 * when the socket is closed). Idempotent. Any thread. */
void vg__engine_quiesce(vg__engine *e);

/* Shutdown's last word to requests still suspended after the grace period:
 * closes the watcher's registry, cancels each with VG_CANCEL_SHUTDOWN and
 * answers 503, and waits until no resume is in progress. Supervisor. */
void vg__engine_end_suspended(vg__engine *e);

/* Stops the event threads and the daemons, closing every connection left
 * (DESIGN.md fact 8: call vg__engine_end_suspended first). Supervisor, or
 * the configuring thread when a start fails. */
void vg__engine_stop(vg__engine *e);

/* Frees the engine (the watcher with it). Handlers may still resume
 * requests until the worker pool is gone: free the pool first. NULL is a
 * no-op. */
void vg__engine_free(vg__engine *e);

/* Wakes event thread `l` (a connection's `loop`, read while the
 * connection is still suspended) so that it processes a resume at once.
 * Any thread. */
void vg__engine_wake(vg__loop *l);

/* Connections open right now, across every event thread. Any thread. */
unsigned vg__engine_connections(const vg__engine *e);

#endif
