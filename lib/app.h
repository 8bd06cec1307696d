/* app.h - the inside of a vg_app: settings, the running parts, counters. */
#ifndef VG_APP_H
#define VG_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "volga.h"
#include "log.h"
#include "pipeline.h"
#include "pool.h"
#include "router.h"
#include "watcher.h"

struct MHD_Daemon;

typedef enum {
    VG__APP_NEW = 0,   /* configurable */
    VG__APP_RUNNING,   /* serving */
    VG__APP_STOPPING,  /* stop asked; the supervisor is shutting down */
    VG__APP_STOPPED    /* daemon gone; only vg_app_free remains */
} vg__app_state;

struct vg_app {
    /* Settings, fixed once started. */
    char host[256];
    char port[8];
    unsigned workers;
    unsigned request_timeout_ms;
    bool route_timeouts;          /* some route has its own deadline */
    unsigned shutdown_grace_ms;
    unsigned max_connections;
    unsigned per_ip_limit;
    unsigned idle_timeout_s;
    unsigned queue_limit;
    size_t header_limit;
    size_t body_limit;
    bool watch;
    bool batch;                   /* SCHED_BATCH workers and MHD threads */
    bool reuse_port;              /* SO_REUSEPORT on the socket we bind */
    vg__log log;
    vg__router *router;
    vg__pipeline pipe;            /* middleware, groups, errors, hooks */

    /* Running parts. */
    atomic_int state;             /* vg__app_state */
    struct MHD_Daemon *daemon;
    int listen_fd;
    bool listen_adopted;          /* given by vg_app_set_listen_fd */
    unsigned short bound_port;
    vg__pool *pool;
    vg__watcher *watcher;
    int stop_fd;                  /* eventfd: vg_app_stop's async-signal-safe bell */
    pthread_t supervisor;
    bool supervisor_started, supervisor_joined;

    /* The supervisor waits on `cond` for in-flight handlers and live
     * requests to drain during shutdown. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    atomic_bool stopping;         /* answers new requests 503 */
    atomic_uint resuming;         /* threads between winning a resume and doing it */

    /* Counters (vg_app_stats). */
    atomic_ullong requests;
    atomic_ullong in_flight;
    atomic_ullong deferred;       /* deferred requests not finished yet */
    atomic_ullong live;           /* request objects between URI log and completion */
    atomic_ullong cancelled_client_gone;
    atomic_ullong cancelled_timeout;
    atomic_ullong cancelled_shutdown;
};

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
