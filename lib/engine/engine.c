/* engine.c - libvolga's event threads, each driving one libmicrohttpd
 * daemon in external epoll mode.
 *
 * libmicrohttpd's own epoll threads stall: after a full batch of 128 events
 * MHD 0.9.75 calls epoll_wait again with the blocking timeout, and the
 * connections of that batch wait unserved (bench/RESULTS.md, "Stalls").
 * Here each "vg-event" thread owns one daemon started without a listening
 * socket and without a thread, and an epoll set of its own holding:
 *   - the daemon's epoll fd (MHD_DAEMON_INFO_EPOLL_FD), readable whenever
 *     one of its connections has an event or a resume rang its bell;
 *   - the listening socket, shared by every thread with EPOLLEXCLUSIVE so
 *     that a new connection wakes one thread, which accepts it and hands
 *     it to its own daemon (MHD_add_connection);
 *   - an eventfd the app rings to stop the thread.
 * After every wake the thread calls MHD_run, which processes everything
 * ready without blocking (its inner epoll_wait has a zero timeout there),
 * and then waits at most until MHD_get_timeout's next connection timeout.
 * No wait ever blocks with events left unprocessed.
 *
 * Accepting here also puts the connection limits in one place: the total
 * (vg_app_set_max_connections) and per-IP (vg_app_set_per_ip_limit) counts
 * are the engine's, across all threads, reserved at accept and given back
 * when libmicrohttpd reports the connection closed. Quiescing at shutdown
 * is just taking the listening socket out of the epoll sets.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>

#include <microhttpd.h>

#include "app.h"
#include "engine/engine.h"
#include "engine/tls_glue.h"
#include "engine/iptab.h"
#include "engine/mhd_glue.h"
#include "model/request.h"
#include "core/thread.h"
#include "model/watcher.h"

/* Connections one wake accepts at most, so that a burst spreads over the
 * threads instead of landing on whichever woke first. */
#define VG__ACCEPT_BATCH 4

/* Keys in a thread's epoll set. */
#define VG__KEY_DAEMON 1
#define VG__KEY_LISTEN 2
#define VG__KEY_BELL 3

/* One event thread and the daemon it drives. */
struct vg__loop {
    vg__engine *engine;
    struct MHD_Daemon *daemon;
    int epfd;          /* the daemon's epoll fd, the listening socket, bell */
    int bell;          /* eventfd: rung after a resume, and to stop */
    atomic_bool rung;  /* the bell is rung and the thread has not woken */
    int spare_fd;      /* given up to refuse a connection when out of fds */
    bool started;      /* libmicrohttpd reported the last added connection */
    bool running;      /* the thread was created */
    pthread_t thread;
};

struct vg__engine {
    vg_app *app;
    int listen_fd;                /* the app's; closed by the app */
    unsigned max_connections;
    atomic_uint connections;      /* open, or reserved at accept */
    vg__iptab *iptab;             /* per-IP counts, with a per-IP limit only */
    vg__watcher *watcher;
    vg__loop *loops;
    unsigned nloops;
    atomic_bool quiesced;         /* the listening socket is out of the sets */
    atomic_bool stopping_threads;
};

static void vg__loop_shed(vg__loop *l);

/* Event threads: one per CPU, at least two, at most sixteen. */
static unsigned vg__event_threads(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus > 2 ? (unsigned)(cpus > 16 ? 16 : cpus) : 2;
}

/* ---- Connection accounting ---- */

/* Reserves room for a connection from `sa`: false (nothing reserved) if
 * the total or its address's share is used up. Any event thread. */
static bool vg__reserve(vg__engine *e, const struct sockaddr *sa)
{
    if (atomic_fetch_add(&e->connections, 1) >= e->max_connections) {
        atomic_fetch_sub(&e->connections, 1);
        return false;
    }
    if (e->iptab != NULL && !vg__iptab_take(e->iptab, sa)) {
        atomic_fetch_sub(&e->connections, 1);
        return false;
    }
    return true;
}

static void vg__release(vg__engine *e, const struct sockaddr *sa)
{
    if (e->iptab != NULL)
        vg__iptab_give(e->iptab, sa);
    atomic_fetch_sub(&e->connections, 1);
}

/* ---- Watching connections for the client leaving ----
 *
 * Every connection's socket is also in its thread's own epoll set, for
 * EPOLLRDHUP only (edge-triggered, so once, when the client's FIN or RST
 * arrives), for the connection's whole life. That one registration does
 * two jobs:
 *   - a request suspended while its handler runs, its answer is deferred
 *     or its stream is parked is invisible to libmicrohttpd (DESIGN.md fact
 *     1): the event tells the glue the client has gone, which cancels the
 *     token at once; a FIN seen before the request was suspended is
 *     remembered (`hup`) and acted on when it is;
 *   - libmicrohttpd 0.9.75 in epoll mode takes a short read as "socket
 *     drained", so a FIN that came with the last bytes of a request cut
 *     short is never read and the socket would sit in CLOSE_WAIT until the
 *     idle timeout: on the event the engine shuts its side of the socket
 *     down too, and libmicrohttpd, which always hears of a hung-up socket,
 *     closes the connection at once.
 * No epoll_ctl is made per request: only when a connection opens and
 * closes. */

static vg__conn *vg__conn_new(vg__loop *l, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    vg__conn *c = calloc(1, sizeof *c);
    struct epoll_event ev;

    if (c == NULL)
        return NULL; /* the connection is served, just not watched */
    c->loop = l;
    c->conn = conn;
    c->fd = ci ? ci->connect_fd : -1;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLRDHUP | EPOLLET;
    ev.data.ptr = c;
    if (c->fd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        c->fd = -1;
    return c;
}

static void vg__conn_free(vg__conn *c)
{
    if (c == NULL)
        return;
    /* Still open here: libmicrohttpd closes the socket after telling. */
    if (c->fd >= 0)
        epoll_ctl(c->loop->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    vg__tls_peer_free(c->tls_peer);
    free(c);
}

/* The client of `c` closed, reset or half-closed. Event thread. */
static void vg__conn_hangup(vg__conn *c)
{
    vg__loop *l = c->loop;

    c->hup = true;
    if (c->req != NULL && l->engine->app->watch)
        vg__glue_client_gone(c->req); /* nothing if it is not suspended */
    /* Shutting our side too turns the half-closed socket into a hung-up
     * one, which libmicrohttpd treats as an error and closes whatever it
     * was doing with it, even where it would never have read the end of
     * the stream. (A client that half-closes is treated as gone, DESIGN.md
     * fact 13.) A suspended socket is closed when it is resumed. */
    shutdown(c->fd, SHUT_RDWR);
}

/* libmicrohttpd's word that a connection started or closed. STARTED marks
 * the reservation as libmicrohttpd's to give back (through CLOSED); see
 * vg__accept_one. The event thread of the connection's daemon. */
static void vg__on_connection(void *cls, struct MHD_Connection *conn,
                              void **socket_context,
                              enum MHD_ConnectionNotificationCode code)
{
    vg__loop *l = cls;
    const union MHD_ConnectionInfo *ci;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        l->started = true;
        *socket_context = vg__conn_new(l, conn);
        vg__tls_glue_started(l->engine->app, conn);
        return;
    }
    vg__conn_free(*socket_context);
    *socket_context = NULL;
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    vg__release(l->engine, ci != NULL ? ci->client_addr : NULL);
}

unsigned vg__engine_connections(const vg__engine *e)
{
    return e ? atomic_load(&((vg__engine *)e)->connections) : 0;
}

/* ---- Accepting ---- */

/* Accepts one connection and hands it to this thread's daemon. Returns
 * false when there is nothing more to accept now. */
static bool vg__accept_one(vg__loop *l)
{
    vg__engine *e = l->engine;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd;

    fd = accept4(e->listen_fd, (struct sockaddr *)&ss, &len,
                 SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE)
            vg__loop_shed(l);
        return false;
    }
    if (!vg__reserve(e, (struct sockaddr *)&ss)) {
        close(fd); /* over a limit: refused at once, as libmicrohttpd does */
        return true;
    }
    l->started = false;
    if (MHD_add_connection(l->daemon, fd, (struct sockaddr *)&ss, len) !=
            MHD_YES &&
        !l->started)
        vg__release(e, (struct sockaddr *)&ss); /* it closed the socket */
    return true;
}

static void vg__loop_shed(vg__loop *l)
{
    int fd;

    /* Out of descriptors, the pending connection would wake every thread
     * forever: give up the spare descriptor, take the connection, close
     * it, and take the spare back. */
    if (l->spare_fd < 0)
        return;
    close(l->spare_fd);
    fd = accept4(l->engine->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0)
        close(fd);
    l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    vg__logf(&l->engine->app->log, VG_LOG_WARN,
             "out of file descriptors: refused a connection");
}

/* ---- Waking a thread ---- */

static void vg__loop_ring(vg__loop *l)
{
    uint64_t one = 1;

    /* libmicrohttpd 0.9.75 has no wake-up of its own in external mode
     * (MHD_USE_ITC is dropped without an internal thread): whoever resumes
     * a connection rings its thread's bell. A bell already rung and not
     * yet heard needs no second write: the thread drains the bell, clears
     * `rung`, then runs the daemon, which looks at every resume made
     * before the clear. */
    if (l == NULL || atomic_exchange(&l->rung, true))
        return;
    if (write(l->bell, &one, sizeof one) < 0)
        vg__logf(&l->engine->app->log, VG_LOG_ERROR,
                 "cannot wake an event thread: %s", strerror(errno));
}

void vg__engine_wake(vg__loop *l)
{
    if (l != NULL)
        vg__loop_ring(l);
}

/* ---- The event thread ---- */

/* How long the thread may sleep: until libmicrohttpd's next connection
 * timeout, or for ever. */
static int vg__loop_timeout(vg__loop *l)
{
    MHD_UNSIGNED_LONG_LONG ms;

    if (MHD_get_timeout(l->daemon, &ms) != MHD_YES)
        return -1;
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

static void *vg__loop_main(void *arg)
{
    vg__loop *l = arg;
    vg__engine *e = l->engine;
    struct epoll_event ev[64];
    uint64_t v;
    int n, i, k;

    vg__thread_name("vg-event");
    vg__event_app = e->app; /* for the TLS certificate callback */
    /* sendfile() to a peer that has gone raises SIGPIPE, which no flag
     * suppresses: blocked on this thread (it stays pending, harmlessly),
     * the call just fails with EPIPE. The glue tells libmicrohttpd so
     * (MHD_OPTION_SIGPIPE_HANDLED_BY_APP), which then sends file bodies
     * with sendfile instead of pread + send. */
    {
        sigset_t pipe_set;
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
    }
    /* This thread hands requests to workers: the same policy as theirs. */
    if (e->app->batch)
        vg__thread_batch();
    while (!atomic_load(&e->stopping_threads)) {
        n = epoll_wait(l->epfd, ev, 64, vg__loop_timeout(l));
        if (n < 0 && errno != EINTR) {
            vg__logf(&e->app->log, VG_LOG_ERROR, "event thread: epoll_wait: %s",
                     strerror(errno));
            break;
        }
        for (i = 0; i < n; i++) {
            if (ev[i].data.u64 == VG__KEY_BELL) {
                /* Drain first, then clear: a ring that skipped its write
                 * because `rung` was still set came before the clear, so
                 * the MHD_run below sees its resume; any later ring writes
                 * again and wakes the next epoll_wait. */
                if (read(l->bell, &v, sizeof v) < 0)
                    v = 0; /* drained by an earlier wake */
                atomic_store(&l->rung, false);
            } else if (ev[i].data.u64 == VG__KEY_LISTEN) {
                for (k = 0; k < VG__ACCEPT_BATCH && vg__accept_one(l); k++)
                    ;
            } else if (ev[i].data.u64 > VG__KEY_BELL) {
                vg__conn_hangup(ev[i].data.ptr);
            }
        }
        MHD_run(l->daemon);
    }
    return NULL;
}

/* ---- Start and stop ---- */

static int vg__epoll_add(int epfd, int fd, uint32_t events, uint64_t key)
{
    struct epoll_event ev;

    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = key;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Sets up thread `l`'s daemon and epoll set. 0 or -errno (logged). */
static int vg__loop_init(vg__engine *e, vg__loop *l)
{
    const union MHD_DaemonInfo *di;

    l->engine = e;
    l->epfd = l->bell = l->spare_fd = -1;
    l->daemon = vg__glue_daemon(e->app, vg__on_connection, l);
    if (l->daemon == NULL)
        return -EIO;
    di = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (di == NULL || l->epfd < 0 || l->bell < 0 ||
        vg__epoll_add(l->epfd, di->epoll_fd, EPOLLIN, VG__KEY_DAEMON) != 0 ||
        vg__epoll_add(l->epfd, l->bell, EPOLLIN, VG__KEY_BELL) != 0 ||
        vg__epoll_add(l->epfd, e->listen_fd, EPOLLIN | EPOLLEXCLUSIVE,
                      VG__KEY_LISTEN) != 0) {
        int err = errno ? errno : EIO;
        vg__logf(&e->app->log, VG_LOG_ERROR,
                 "cannot set up an event thread: %s", strerror(err));
        return -err;
    }
    return 0;
}


vg__engine *vg__engine_start(vg_app *app)
{
    vg__engine *e = calloc(1, sizeof *e);
    unsigned i;
    int rc = 0;

    if (e == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    e->app = app;
    e->listen_fd = app->listen_fd;
    e->max_connections = app->max_connections;
    e->nloops = vg__event_threads();
    e->loops = calloc(e->nloops, sizeof *e->loops);
    if (app->per_ip_limit > 0)
        e->iptab = vg__iptab_new(app->per_ip_limit);
    /* The event threads watch sockets themselves (vg__conn_hangup): the
     * watcher keeps the registry and the deadlines. */
    e->watcher = vg__watcher_new(
        app->request_timeout_ms > 0 || app->route_timeouts,
        vg__glue_deadline, &app->log);
    if (e->loops == NULL || e->watcher == NULL ||
        (app->per_ip_limit > 0 && e->iptab == NULL)) {
        rc = -ENOMEM;
        vg__logf(&app->log, VG_LOG_ERROR, "cannot start the engine: %s",
                 strerror(errno ? errno : ENOMEM));
        goto fail;
    }
    app->watcher = e->watcher;
    for (i = 0; i < e->nloops && rc == 0; i++)
        rc = vg__loop_init(e, &e->loops[i]);
    for (i = 0; i < e->nloops && rc == 0; i++) {
        rc = -pthread_create(&e->loops[i].thread, NULL, vg__loop_main,
                             &e->loops[i]);
        e->loops[i].running = rc == 0;
    }
    if (rc == 0)
        return e;
fail:
    vg__engine_stop(e);
    vg__engine_free(e);
    errno = -rc;
    return NULL;
}

void vg__engine_quiesce(vg__engine *e)
{
    unsigned i;

    if (e == NULL || atomic_exchange(&e->quiesced, true))
        return;
    /* epoll_ctl may be called while another thread waits on the set. */
    for (i = 0; i < e->nloops; i++)
        if (e->loops[i].epfd >= 0)
            epoll_ctl(e->loops[i].epfd, EPOLL_CTL_DEL, e->listen_fd, NULL);
}

void vg__engine_end_suspended(vg__engine *e)
{
    vg_request **left = NULL;
    size_t n, i;

    n = vg__watcher_close(e->watcher, &left);
    for (i = 0; i < n; i++) {
        vg__glue_shutdown(left[i]);
        vg__request_unref(left[i]);
    }
    free(left);
    vg__glue_wait_resumes(e->app);
}

void vg__engine_stop(vg__engine *e)
{
    unsigned i;

    if (e == NULL || e->loops == NULL)
        return;
    vg__engine_quiesce(e);
    atomic_store(&e->stopping_threads, true);
    for (i = 0; i < e->nloops; i++)
        if (e->loops[i].bell >= 0) {
            atomic_store(&e->loops[i].rung, false);
            vg__loop_ring(&e->loops[i]);
        }
    for (i = 0; i < e->nloops; i++) {
        vg__loop *l = &e->loops[i];
        if (l->running)
            pthread_join(l->thread, NULL);
        l->running = false;
        /* No thread runs it now: stopping it here closes its connections
         * (their completion callbacks run on this thread). */
        if (l->daemon != NULL)
            MHD_stop_daemon(l->daemon);
        l->daemon = NULL;
        if (l->epfd >= 0)
            close(l->epfd);
        if (l->bell >= 0)
            close(l->bell);
        if (l->spare_fd >= 0)
            close(l->spare_fd);
        l->epfd = l->bell = l->spare_fd = -1;
    }
}

void vg__engine_free(vg__engine *e)
{
    if (e == NULL)
        return;
    vg__engine_stop(e);
    vg__watcher_free(e->watcher);
    if (e->app->watcher == e->watcher)
        e->app->watcher = NULL;
    vg__iptab_free(e->iptab);
    free(e->loops);
    free(e);
}
