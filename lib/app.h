/* app.h - the inside of a vg_app: settings, the running parts, counters. */
#ifndef VG_APP_H
#define VG_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "volga.h"
#include "core/log.h"
#include "pipeline/pipeline.h"
#include "core/pool.h"
#include "core/router.h"
#include "model/watcher.h"

struct vg__engine;

/* Something a feature (lib/web/) attached to the app, freed by
 * vg_app_free once no request can use it any more. */
typedef struct vg__app_cleanup {
    void (*fn)(void *arg);
    void *arg;
    struct vg__app_cleanup *next;
} vg__app_cleanup;

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
    unsigned drain_delay_ms;      /* serving on after a stop, before the grace */
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
    vg__app_cleanup *cleanups;    /* vg__app_add_cleanup, newest first */
    /* HTTPS (lib/web/tls.c sets these; the glue hands them to
     * libmicrohttpd): a gnutls_certificate_retrieve_function2, which finds
     * its app through vg__event_app, and the priority string. NULL: HTTP. */
    void *tls_cert_cb;
    const char *tls_priorities;
    void *tls;                    /* lib/web/tls.c's state, owned there */
    /* Client certificates (vg_app_set_tls_client_ca): the CA file's PEM
     * text for MHD_OPTION_HTTPS_MEM_TRUST, and 0 (none asked) or a
     * vg_tls_client_mode, which lib/engine/tls_glue.c enforces. */
    const char *tls_trust_pem;
    int tls_client_mode;
    /* Session tickets (resumption): the key lib/web/tls.c generated, a
     * gnutls_datum_t that lib/engine/tls_glue.c enables on each new
     * session; NULL: none (plain HTTP, or client certificates asked). */
    const void *tls_ticket_key;
    int hup_fd;                   /* eventfd vg_app_run rings on SIGHUP; -1 */

    /* Running parts. */
    atomic_int state;             /* vg__app_state */
    struct vg__engine *engine;    /* event threads, daemons, watcher */
    int listen_fd;
    bool listen_adopted;          /* given by vg_app_set_listen_fd */
    unsigned short bound_port;
    vg__pool *pool;
    vg__watcher *watcher;         /* the engine's (lib/engine/engine.c) */
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

#include "model/counters.h"

/* The app whose event thread is the calling thread (set by
 * lib/engine/engine.c for each "vg-event" thread), NULL elsewhere: how
 * callbacks libmicrohttpd gives no argument (TLS certificate selection)
 * find their app. */
extern __thread vg_app *vg__event_app;

/* Has vg_app_free call fn(arg) after the last request is gone (features
 * keep their per-app state this way). 0, or -ENOMEM (then fn is NOT
 * called: the caller frees arg itself). Thread: the configuring thread. */
int vg__app_add_cleanup(vg_app *app, void (*fn)(void *), void *arg);

#endif
